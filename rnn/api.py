"""The study from a notebook: its config with every default, one variant trained and scored as the workflow
trains and scores it, in a few lines::

    from rnn import api

    config = api.load()                       # config/config.yaml, every default filled in
    runs = api.train(config, "baseline", data_seed=0, optimizers=["bfgs"])
    runs[["optimizer", "seed", "val_mse", "vpt_lyapunov_test", "d_stsp", "d_h"]]

``load`` takes another config file and ``overrides`` (merged as Snakemake merges a ``--configfile``);
``train`` returns the rows the workflow writes to ``results/tables/runs.csv`` for that variant and series
(valid time on the test start points in Lyapunov times, the long-term measures, the settings that ran).
The series, the generator's exponent and the long-term reference are computed here as the ``data``,
``lyapunov`` and ``attractor`` rules compute them (a few seconds).
"""

from functools import lru_cache

import pandas as pd

from . import settings as _settings


def load(path=None, overrides=None):
    """The resolved study config (``rnn.settings.load``): a dict with every key, as the workflow reads it."""
    return _settings.load(path, overrides)


def series(config, data_seed):
    """One series of the study (train | validation | test), as the ``data`` rule generates it: (L, 1)."""
    from .data import generate

    data = config["data"]
    return generate(data["generator"], _settings.data_length(data), tau=data["tau"], seed=int(data_seed))


def lyapunov(config):
    """The generator's largest Lyapunov exponent per sample, as the ``lyapunov`` rule finds it."""
    data = config["data"]
    return _exponent(data["generator"], data["tau"], data["lyapunov"])


@lru_cache(maxsize=8)
def _exponent(generator, tau, given):
    from .lyapunov import exponent_record

    return float(exponent_record(generator, tau, given)["lyapunov_per_sample"])


def attractor(config):
    """The long-term reference as the ``attractor`` rule makes it: {"settings", "reference", "embedding"}."""
    from .longterm import reference_of

    return reference_of(config["data"]["generator"], config["longterm"], config["data"]["tau"])


def train(config, variant="baseline", data_seed=None, seeds=None, optimizers=None):
    """Train and score one variant of ``config`` on one series (default: its first) as the ``train`` rule
    does; ``seeds`` and ``optimizers`` narrow what runs. Returns the variant's rows of ``runs.csv``."""
    from .experiment import run_variant
    from .study import run_rows

    table = _settings.variants(config)
    if variant not in table:
        raise ValueError(f"variant {variant!r} is not in the config; it has: {', '.join(table)}")
    meta = table[variant]
    data_seed = meta["data_seeds"][0] if data_seed is None else int(data_seed)
    if data_seed not in meta["data_seeds"]:
        raise ValueError(f"data_seed {data_seed} is not a series variant {variant} runs on: {meta['data_seeds']}")
    arguments = _settings.train_arguments(config, variant, table)
    if seeds is not None:
        arguments["seeds"] = [int(s) for s in seeds]
    if optimizers is not None:
        arguments["optimizers"] = list(optimizers)
    if arguments["longterm"] is not None:
        arguments["longterm"] = attractor(config)
    from threadpoolctl import threadpool_limits

    x, exponent = series(config, data_seed), lyapunov(config)
    with threadpool_limits(limits=1):  # a job's one BLAS thread (Snakemake's threads: 1): the same last bits
        result = run_variant(x, lyapunov=exponent, **arguments)
    metrics = pd.DataFrame(result["rows"]).assign(**{f"job_{k}": v for k, v in result["timing"].items()})
    return run_rows(metrics, variant, meta, data_seed, config["backend"])
