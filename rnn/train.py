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
from .settings import BASELINE, Training, defaults, definition

OPTIMIZERS = ("sgd", "bfgs", "sgd+bfgs", "lbfgs", "sgd+lbfgs", "ridge", "ridge+bfgs", "ridge+lbfgs")
SCHEDULES = tuple(definition("setting_properties")["properties"]["rollout_schedule"]["enum"])
TRAINING_KEYS = tuple(Training._keys())  # check_settings'
_B, _CURVE_EVERY = BASELINE, defaults("top")["curve_every"]

log = logging.getLogger(__name__)


def check_settings(log_every=_CURVE_EVERY, **training):
    """Raise ValueError naming the first bad training setting (``rnn.settings.Training``: the schema's
    types and ranges) or a bad ``log_every``; returns the settings with defaults filled in."""
    if isinstance(log_every, bool) or int(log_every) != log_every or log_every < 1:
        raise ValueError(f"log_every must be an integer >= 1, got {log_every!r}")
    unknown = sorted(set(training) - set(TRAINING_KEYS))
    if unknown:
        raise ValueError(f"{unknown[0]} is not a training setting; allowed: {', '.join(TRAINING_KEYS)}")
    return Training.from_dict(training).to_dict()


def check_optimizers(optimizers):
    """Raise ValueError unless ``optimizers`` is a non-empty list of names from OPTIMIZERS."""
    bad = [o for o in optimizers if o not in OPTIMIZERS]
    if bad or not optimizers:
        raise ValueError(f"optimizers must be a non-empty list from {', '.join(OPTIMIZERS)}; got {list(optimizers)!r}")


def horizons(rollout_steps, schedule="doubling"):
    """The loss horizons that training goes through: ``fixed``: [R]; ``doubling``: 1, 2, 4, ... then R.

    One-step first, then a horizon that doubles: a long closed-loop loss is hard to minimise from
    a poor starting point (its surface, not its gradients: on Mackey-Glass those grow only by about
    e^(0.006 R)), so each stage starts from the previous stage's optimum.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"rollout_schedule must be one of {', '.join(SCHEDULES)}; got {schedule!r}")
    if schedule == "fixed" or rollout_steps == 1:
        return [int(rollout_steps)]
    out = [1]
    while 2 * out[-1] < rollout_steps:
        out.append(2 * out[-1])
    return out + [int(rollout_steps)]


def noise_generators(seeds, stream=1):
    """One noise generator per model, independent of its weight draws: ``default_rng(seed_sequence(seed,
    stream))`` (stream 1: weight noise, 2: input noise; ``rnn.model.seed_sequence``)."""
    from .model import seed_sequence

    return [np.random.default_rng(seed_sequence(s, stream)) for s in seeds]


def noise_streams(spec, seeds):
    """(weight-noise generators or None, input-noise generators or None): SGD's fresh draws per epoch."""
    return (noise_generators(seeds, 1) if spec.weight_noise > 0 else None,
            noise_generators(seeds, 2) if spec.input_noise > 0 else None)


def _draw_noise(spec, weight_rngs, input_rngs, T):
    """One draw of the loss's noise inputs (``rnn.model.symbolic_noise``) for every model."""
    noise = {n: np.stack([r.normal(0.0, spec.weight_noise, spec.param_shapes[n]) for r in weight_rngs])
             for n in spec.noisy} if weight_rngs else {}
    if input_rngs:
        noise["x"] = np.stack([r.normal(0.0, spec.input_noise, T) for r in input_rngs], axis=1)
    return noise


WEIGHT_NOISE_DRAWS = 4  # weight-noise draws whose losses the deterministic objectives average


def fixed_input_noise(spec, seeds, T):
    """The fixed input-noise draw per model of the deterministic objectives, {"x": (T, K)}, or None."""
    return _draw_noise(spec, None, noise_generators(seeds, 2), T) if spec.input_noise > 0 else None


def fixed_noise(spec, seeds, T):
    """The deterministic objectives' noise (BFGS, L-BFGS, ridge): a list of noise inputs of the loss, each
    with one fixed input-noise draw per model (the same in every element, from stream 2) and, with weight
    noise, its own fixed weight-noise draw per model (``WEIGHT_NOISE_DRAWS`` of them, from stream 1);
    [None] without noise. Averaging the loss over the list gives a deterministic objective that still
    asks the weights to work when perturbed; with one draw it would only shift them."""
    inputs = fixed_input_noise(spec, seeds, T) or {}
    if spec.weight_noise <= 0:
        return [inputs or None]
    weights = noise_generators(seeds, 1)
    return [{**_draw_noise(spec, weights, None, T), **inputs} for _ in range(WEIGHT_NOISE_DRAWS)]


def _chunks(first_epoch, epochs, log_every):
    """The epochs split after every monitored one (epoch % log_every == 0, and the last)."""
    chunk = []
    for epoch in range(first_epoch, first_epoch + epochs):
        chunk.append(epoch)
        if epoch % log_every == 0 or epoch == first_epoch + epochs - 1:
            yield chunk
            chunk = []


def sgd(compiled, x, params, seeds, lr=_B["lr"], epochs=_B["epochs"], log_every=_CURVE_EVERY, monitor=None, steps=None, frozen=None,
        first_epoch=0, rngs=None):
    """Full-batch gradient descent, ``epochs`` updates p <- p - lr * grad, as the tutorial.

    The loss is the one-step loss, or the closed-loop loss of ``steps`` steps. Weight and input
    noise are drawn afresh every epoch from ``rngs`` (default: ``noise_generators`` streams 1 and 2).
    The epochs run in compiled chunks (``Compiled.sgd_epochs``: the loop over epochs is part of the
    graph), each ending at a monitored epoch: ``monitor(params) -> dict of per-model arrays`` (e.g.
    clean train and validation MSE) is called every ``log_every`` epochs and at the end. Models
    flagged in ``frozen`` are not updated. Returns (params, curve, diverged) where curve is a list
    of dicts (epoch, seed, cost, ...), epochs counted from ``first_epoch``, and diverged a (K,) bool.
    """
    check_settings(lr=lr, epochs=epochs, log_every=log_every)
    spec, K, T = compiled.spec, compiled.K, len(x)
    rngs = noise_streams(spec, seeds) if rngs is None else rngs
    diverged = np.zeros(K, dtype=bool) if frozen is None else np.array(frozen, dtype=bool)
    limit = np.full(K, np.inf)
    length = min(log_every, epochs)  # one compiled chunk length; a shorter chunk runs with inactive epochs
    curve = []
    for chunk in _chunks(first_epoch, epochs, log_every):
        active = np.arange(length) < len(chunk)
        noise = None
        if any(rngs):  # drawn epoch by epoch, as a loop would, so the streams do not depend on the chunks
            draws = [_draw_noise(spec, *rngs, T) for _ in chunk]
            noise = {n: np.stack([d[n] for d in draws] + [np.zeros_like(draws[0][n])] * (length - len(chunk)))
                     for n in draws[0]}
        before = diverged
        params, limit, frozen_after, costs = compiled.sgd_epochs(x, params, lr, limit, diverged, active,
                                                                 np.arange(length) == first_epoch - chunk[0],
                                                                 noise, steps)
        diverged = frozen_after[len(chunk) - 1]
        for i, epoch in enumerate(chunk):
            for k in np.flatnonzero(frozen_after[i] & ~(frozen_after[i - 1] if i else before)):
                log.warning("seed %s diverged at epoch %d (cost %s); frozen", seeds[k], epoch, costs[i, k])
            if log.isEnabledFor(logging.INFO):
                log.info("epoch %d cost %s", epoch, " ".join(f"{c:.6g}" for c in costs[i]))
        # the cost is that of the parameters before the epoch's update (as the tutorial printed)
        extra = monitor(params) if monitor else {}
        for k, seed in enumerate(seeds):
            row = {"epoch": chunk[-1], "seed": seed, "cost": float(costs[len(chunk) - 1, k])}
            row.update({key: float(v[k]) for key, v in extra.items()})
            curve.append(row)
    return params, curve, diverged


def stage_budgets(total, n_stages, first_weight=1.0):
    """``total`` iterations (or epochs) shared out among ``n_stages`` stages in proportion to their weights,
    ``first_weight`` for the first (a schedule's one-step stage) and 1 for each other, in whole numbers
    (largest remainders first, the earlier stage on a tie: equal weights share as equally as possible)."""
    weights = [float(first_weight)] + [1.0] * (n_stages - 1)
    exact = [total * w / sum(weights) for w in weights]
    out = [int(e) for e in exact]
    for i in sorted(range(n_stages), key=lambda i: out[i] - exact[i])[:total - sum(out)]:
        out[i] += 1
    return out


def _quasi_newton(compiled, x, params, seeds, method, steps, maxiter, gtol, skip, first_weight=1.0):
    """``rnn.quasi_newton.minimize`` through the loss horizons ``steps``, each stage from the last's
    optimum with its share of ``maxiter``; the infos add up the iterations and evaluations and
    join the cost curves. With weight noise the objective is the mean loss over ``fixed_noise``'s draws."""
    draws = fixed_noise(compiled.spec, seeds, len(x))
    infos = None
    for R, budget in zip(steps, stage_budgets(maxiter, len(steps), first_weight)):
        if budget == 0:
            continue
        def cost_and_grads(p, R=R):
            parts = [compiled.loss_and_grad(x, p, noise, R)[::2] for noise in draws]
            if len(parts) == 1:
                return parts[0]
            return (np.mean([c for c, _ in parts], axis=0),
                    {n: np.mean([g[n] for _, g in parts], axis=0) for n in parts[0][1]})

        params, stage, skip = quasi_newton.minimize(cost_and_grads, params, seeds, method, budget, gtol, skip=skip)
        if len(steps) > 1:
            log.info("%s: rollout horizon %d done", method, R)
        if infos is None:
            infos = stage
            continue
        for info, more in zip(infos, stage):
            for key in ("iterations", "evaluations", "gradient_evaluations"):
                info[key] = info.get(key, 0) + more.get(key, 0)
            info["curve"] = info.get("curve", []) + more.get("curve", [])
            info["message"], info["cost"] = more.get("message", ""), more.get("cost", np.nan)
    return params, infos, skip


def fit_ridge(compiled, x, params, seeds, ridge):
    """The reservoir read-out (``rnn.ridge``) on states driven by x (plus the fixed input noise, if any)."""
    from .ridge import fit_readout

    spec = compiled.spec
    noise = fixed_input_noise(spec, seeds, len(x))
    u = x if noise is None else x + noise["x"]
    readout, ok = fit_readout(compiled.states(u, params), x, spec.washout, ridge, spec.skip, inputs=u)
    fitted = {n: v.copy() for n, v in params.items()}
    for n, v in readout.items():
        fitted[n][ok] = v[ok]
    for k in np.flatnonzero(~ok):
        log.warning("seed %s: the ridge read-out could not be solved; reported as diverged", seeds[k])
    return fitted, ~ok


def warm_up(compiled, x, params, optimizers, epochs=_B["epochs"], log_every=_CURVE_EVERY,
            rollout_schedule=_B["rollout_schedule"], onestep_weight=_B["onestep_weight"]):
    """Call once every compiled function that ``train_all`` will call with these settings (SGD's epoch
    chunks and the quasi-Newton losses of each horizon, the ridge fit's states), so that the JIT's
    compiling is timed apart from training. The calls change nothing: SGD's epochs are all inactive."""
    K, steps = compiled.K, horizons(compiled.spec.rollout_steps, rollout_schedule)
    methods = {o.rpartition("+")[::2] for o in optimizers}  # (first phase or "", method)
    if any("sgd" in pair for pair in methods):
        for R, budget in zip(steps, stage_budgets(epochs, len(steps), onestep_weight)):
            n = min(log_every, budget)
            if n:
                compiled.sgd_epochs(x, params, 0.0, np.full(K, np.inf), np.zeros(K, bool), np.zeros(n, bool),
                                    np.zeros(n, bool), None, R)
    for first, method in methods:
        if method in quasi_newton.METHODS:
            for R in (steps[-1:] if first == "sgd" else steps):
                compiled.loss_and_grad(x, params, None, R)
    if any("ridge" in pair for pair in methods):
        compiled.states(x, params)


def train_all(compiled, x_train, seeds, optimizers, lr=_B["lr"], epochs=_B["epochs"], bfgs_maxiter=_B["bfgs_maxiter"],
              bfgs_gtol=_B["bfgs_gtol"], ridge=_B["ridge"], rollout_schedule=_B["rollout_schedule"],
              onestep_weight=_B["onestep_weight"], log_every=_CURVE_EVERY, monitor=None, initial=None):
    """Train K seeds with each optimizer in ``optimizers``; ``<first>+<method>`` starts ``method``
    from the result of ``first`` (``sgd`` or ``ridge``).

    The loss goes through the horizons ``horizons(spec.rollout_steps, rollout_schedule)`` (just the
    one-step loss at the tutorial's settings), each stage with an equal share of the budget (the one-step
    stage ``onestep_weight`` shares, ``stage_budgets``): SGD's
    ``epochs``, and the ``bfgs_maxiter`` iterations of ``bfgs`` and ``lbfgs`` (``rnn.quasi_newton``),
    which minimise the cost without weight noise and with one fixed input-noise draw per model (a
    deterministic objective); after SGD (which went through the horizons) they run the last horizon
    only, with the whole budget. ``ridge`` fits the read-out of the initial weights (``rnn.ridge``).
    Returns {optimizer: {"params", "diverged", "seconds" (per model), "curve" (SGD's), "bfgs" (the
    quasi-Newton infos, either method)}}.
    """
    from .model import init_params

    check_optimizers(optimizers)
    check_settings(lr=lr, epochs=epochs, bfgs_maxiter=bfgs_maxiter, bfgs_gtol=bfgs_gtol, log_every=log_every,
                   ridge=ridge, rollout_schedule=rollout_schedule, onestep_weight=onestep_weight)
    spec, K = compiled.spec, compiled.K
    steps = horizons(spec.rollout_steps, rollout_schedule)
    start = init_params(spec, seeds) if initial is None else initial
    out = {}

    def first_phase(name):
        """The SGD run or the ridge fit, once, however many optimizers start from it."""
        if name in out:
            return out[name]
        t0 = time.perf_counter()
        if name == "ridge":
            params, diverged = fit_ridge(compiled, x_train, start, seeds, ridge)
            result = {"params": params, "diverged": diverged}
        else:
            params, curve, diverged, done = start, [], None, 0
            rngs = noise_streams(spec, seeds)  # one stream through every horizon
            for R, budget in zip(steps, stage_budgets(epochs, len(steps), onestep_weight)):
                if budget == 0:
                    continue
                params, more, diverged = sgd(compiled, x_train, params, seeds, lr, budget, log_every, monitor,
                                             steps=R, frozen=diverged, first_epoch=done, rngs=rngs)
                curve += more
                done += budget
            result = {"params": params, "diverged": diverged, "curve": curve}
        out[name] = {**result, "seconds": (time.perf_counter() - t0) / K}
        return out[name]

    for opt in optimizers:
        if opt in ("sgd", "ridge"):
            first_phase(opt)
            continue
        first, _, method = opt.rpartition("+")
        before = first_phase(first) if first else {"params": start, "diverged": None, "seconds": 0.0}
        t0 = time.perf_counter()
        params, infos, diverged = _quasi_newton(compiled, x_train, before["params"], seeds, method,
                                                steps[-1:] if first == "sgd" else steps, bfgs_maxiter, bfgs_gtol,
                                                before["diverged"], onestep_weight)
        out[opt] = {"params": params, "diverged": diverged, "bfgs": infos,
                    "seconds": before["seconds"] + (time.perf_counter() - t0) / K}
        if "curve" in before:
            out[opt]["curve"] = before["curve"]
    return {o: out[o] for o in optimizers}
