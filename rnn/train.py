"""Training K stacked models: full-batch gradient descent (the tutorial's), and every optimizer of the study.

``sgd`` takes a ``Compiled`` model (``rnn.model``), the training segment (T, 1) and stacked
parameters (dict name -> (K, ...)), and never lets one model's failure stop the others: a model
whose cost becomes NaN or inf, or grows past ``BLOWUP`` times its initial cost, is frozen at the
parameters that gave that cost (no further update) and reported as diverged. ``train_all`` runs
SGD and the quasi-Newton methods of ``rnn.quasi_newton`` (BFGS, L-BFGS-B) on the same models.
"""

import logging
import time

import numpy as np

from . import quasi_newton
from .quasi_newton import BLOWUP

OPTIMIZERS = ("sgd", "bfgs", "sgd+bfgs", "lbfgs", "sgd+lbfgs")

log = logging.getLogger(__name__)


def check_settings(lr=0.3, epochs=1001, bfgs_maxiter=500, bfgs_gtol=1e-5, log_every=10):
    """Raise ValueError naming the first bad training setting."""
    for name, value in (("lr", lr), ("bfgs_gtol", bfgs_gtol)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    for name, value in (("epochs", epochs), ("bfgs_maxiter", bfgs_maxiter), ("log_every", log_every)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def check_optimizers(optimizers):
    """Raise ValueError unless ``optimizers`` is a non-empty list of names from OPTIMIZERS."""
    bad = [o for o in optimizers if o not in OPTIMIZERS]
    if bad or not optimizers:
        raise ValueError(f"optimizers must be a non-empty list from {', '.join(OPTIMIZERS)}; got {list(optimizers)!r}")


def noise_generators(seeds):
    """One weight-noise generator per model, independent of its weight draws: ``default_rng([seed, 1])``."""
    return [np.random.default_rng([int(s), 1]) for s in seeds]


def _draw_noise(spec, rngs):
    return {n: np.stack([r.normal(0.0, spec.weight_noise, spec.param_shapes[n]) for r in rngs])
            for n in spec.noisy}


def _select(mask, new, old):
    """Per-model choice between two stacked parameter dicts."""
    return {n: np.where(mask.reshape((-1,) + (1,) * (old[n].ndim - 1)), new[n], old[n]) for n in old}


def sgd(compiled, x, params, seeds, lr=0.3, epochs=1001, log_every=10, monitor=None):
    """Full-batch gradient descent, ``epochs`` updates p <- p - lr * grad, as the tutorial.

    ``monitor(params) -> dict of per-model arrays`` (e.g. clean train and validation MSE) is called
    every ``log_every`` epochs and at the end. Returns (params, curve, diverged) where curve is a
    list of dicts (epoch, seed, cost, ...) and diverged a (K,) bool array.
    """
    check_settings(lr=lr, epochs=epochs, log_every=log_every)
    spec, K = compiled.spec, compiled.K
    rngs = noise_generators(seeds) if spec.weight_noise > 0 else None
    diverged = np.zeros(K, dtype=bool)
    curve = []
    for epoch in range(epochs):
        noise = _draw_noise(spec, rngs) if rngs else None
        cost, _, grads = compiled.loss_and_grad(x, params, noise)
        if epoch == 0:
            limit = BLOWUP * np.where(np.isfinite(cost), cost, np.inf)
        bad = ~(cost <= limit) | ~np.all([np.isfinite(g).reshape(K, -1).all(axis=1) for g in grads.values()], axis=0)
        newly = bad & ~diverged
        for k in np.flatnonzero(newly):
            log.warning("seed %s diverged at epoch %d (cost %s); frozen", seeds[k], epoch, cost[k])
        diverged |= bad
        stepped = {n: params[n] - lr * grads[n] for n in params}
        params = _select(~diverged, stepped, params)
        if log.isEnabledFor(logging.INFO):
            log.info("epoch %d cost %s", epoch, " ".join(f"{c:.6g}" for c in cost))
        last = epoch == epochs - 1
        if epoch % log_every == 0 or last:
            # the cost is that of the parameters before this epoch's update (as the tutorial printed)
            extra = monitor(params) if monitor else {}
            for k, seed in enumerate(seeds):
                row = {"epoch": epoch, "seed": seed, "cost": float(cost[k])}
                row.update({key: float(v[k]) for key, v in extra.items()})
                curve.append(row)
    return params, curve, diverged


def train_all(compiled, x_train, seeds, optimizers, lr=0.3, epochs=1001, bfgs_maxiter=500,
              bfgs_gtol=1e-5, log_every=10, monitor=None, initial=None):
    """Train K seeds with each optimizer in ``optimizers``; ``sgd+<method>`` starts from the SGD result.

    ``bfgs`` and ``lbfgs`` (``rnn.quasi_newton``) minimise the cost without weight noise, each with
    ``bfgs_maxiter`` and ``bfgs_gtol``. Returns {optimizer: {"params", "diverged", "seconds" (per
    model), "curve" (SGD's), "bfgs" (the quasi-Newton infos, either method)}}.
    """
    from .model import init_params

    check_optimizers(optimizers)
    check_settings(lr=lr, epochs=epochs, bfgs_maxiter=bfgs_maxiter, bfgs_gtol=bfgs_gtol, log_every=log_every)
    K = compiled.K
    start = init_params(compiled.spec, seeds) if initial is None else initial
    out = {}
    if any(o.startswith("sgd") for o in optimizers):
        t0 = time.perf_counter()
        params, curve, diverged = sgd(compiled, x_train, start, seeds, lr, epochs, log_every, monitor)
        seconds = (time.perf_counter() - t0) / K
        out["sgd"] = {"params": params, "diverged": diverged, "seconds": seconds, "curve": curve}

    def cost_and_grads(params):
        return compiled.loss_and_grad(x_train, params)[::2]

    for opt in optimizers:
        if opt == "sgd":
            continue
        first, _, method = opt.rpartition("+")
        before = out["sgd"] if first else {"params": start, "diverged": None, "seconds": 0.0}
        t0 = time.perf_counter()
        params, infos, diverged = quasi_newton.minimize(cost_and_grads, before["params"], seeds, method,
                                                        bfgs_maxiter, bfgs_gtol, skip=before["diverged"])
        out[opt] = {"params": params, "diverged": diverged, "bfgs": infos,
                    "seconds": before["seconds"] + (time.perf_counter() - t0) / K}
        if first:
            out[opt]["curve"] = before["curve"]
    return {o: out[o] for o in optimizers}
