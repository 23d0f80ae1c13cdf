"""Training K stacked models: full-batch gradient descent (the tutorial's) and scipy's BFGS.

Both take a ``Compiled`` model (``rnn.model``), the training segment (T, 1) and stacked parameters
(dict name -> (K, ...)), and never let one model's failure stop the others: a model whose cost
becomes NaN or inf, or grows past ``BLOWUP`` times its initial cost, is frozen at the parameters
that gave that cost (no further update) and reported as diverged.
"""

import logging
import threading
import time
import warnings

import numpy as np
from scipy.optimize import minimize

OPTIMIZERS = ("sgd", "bfgs", "sgd+bfgs")
BLOWUP = 1e6  # a cost this many times the initial cost counts as diverged (on its way to inf)

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


class _Lockstep:
    """Runs one scipy BFGS per model in threads, batching their evaluations into one stacked call.

    Each optimizer asks for (cost, grad) at its own point; once every live optimizer has asked,
    one call of the compiled K-model function answers all of them. Slot k's numbers depend only
    on slot k's parameters, so each optimizer follows exactly the path it follows alone.
    """

    def __init__(self, compiled, x, params):
        self.compiled, self.x = compiled, x
        self.names = compiled.names
        self.shapes = {n: params[n].shape[1:] for n in self.names}
        self.current = {n: params[n].copy() for n in self.names}
        self.cond = threading.Condition()
        self.pending, self.answers, self.done = {}, {}, set()
        self.evaluations = 0
        self.initial_cost = {}  # each optimizer's first evaluation is at its starting point

    def flat(self, params, k):
        return np.concatenate([params[n][k].ravel() for n in self.names])

    def put(self, vector, k):
        offset = 0
        for n in self.names:
            size = int(np.prod(self.shapes[n]))
            self.current[n][k] = vector[offset:offset + size].reshape(self.shapes[n])
            offset += size

    def objective(self, k):
        def f(vector):
            with self.cond:
                self.pending[k] = np.array(vector, dtype=np.float64)
                self.cond.notify_all()
                self.cond.wait_for(lambda: k in self.answers)
                return self.answers.pop(k)
        return f

    def serve(self, K):
        while True:
            with self.cond:
                self.cond.wait_for(lambda: len(self.pending) + len(self.done) == K)
                if len(self.done) == K:
                    return
                batch, self.pending = self.pending, {}
            for k, vector in batch.items():
                self.put(vector, k)
            cost, _, grads = self.compiled.loss_and_grad(self.x, self.current)
            self.evaluations += 1
            with self.cond:
                for k in batch:
                    self.initial_cost.setdefault(k, float(cost[k]))
                    self.answers[k] = (float(cost[k]), self.flat(grads, k))
                self.cond.notify_all()


def bfgs(compiled, x, params, seeds, maxiter=500, skip=None, gtol=1e-5):
    """``scipy.optimize.minimize(method="BFGS")`` per model on the full training cost.

    Objective and gradient are the same cost (MSE + penalties, no weight noise: BFGS needs a
    deterministic objective), in float64; the final point is written back. Models flagged in
    ``skip`` (K,) are left as they are. Returns (params, infos, diverged) with one info dict per
    model: iterations, function and gradient evaluations, scipy's message, and the cost curve.
    """
    check_settings(bfgs_maxiter=maxiter, bfgs_gtol=gtol)
    K = compiled.K
    skip = np.zeros(K, dtype=bool) if skip is None else np.asarray(skip, dtype=bool)
    lock = _Lockstep(compiled, x, params)
    results, errors = [None] * K, []
    curves = [[] for _ in range(K)]

    def run(k):
        try:
            if skip[k]:
                return
            def record(intermediate_result):
                curves[k].append(float(intermediate_result.fun))
                log.info("seed %s bfgs iteration %d cost %.6g", seeds[k], len(curves[k]), intermediate_result.fun)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # overflow in a trial step is handled below
                results[k] = minimize(lock.objective(k), lock.flat(params, k), jac=True, method="BFGS",
                                      callback=record, options={"maxiter": int(maxiter), "gtol": float(gtol)})
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)
        finally:
            with lock.cond:
                lock.done.add(k)
                lock.cond.notify_all()

    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(K)]
    for t in threads:
        t.start()
    lock.serve(K)
    for t in threads:
        t.join()
    if errors:
        raise errors[0]

    final = {n: params[n].copy() for n in params}
    infos, diverged = [], skip.copy()
    for k, res in enumerate(results):
        if res is None:
            infos.append({"iterations": 0, "evaluations": 0, "message": "not run", "curve": []})
            continue
        initial = lock.initial_cost.get(k, np.inf)
        ok = np.isfinite(res.fun) and res.fun <= BLOWUP * initial and np.all(np.isfinite(res.x))
        if ok:
            lock.put(res.x, k)
            for n in final:
                final[n][k] = lock.current[n][k]
        else:
            diverged[k] = True
            log.warning("seed %s: BFGS ended at a non-finite point (%s)", seeds[k], res.message)
        infos.append({"iterations": int(res.nit), "evaluations": int(res.nfev),
                      "gradient_evaluations": int(res.njev), "message": str(res.message),
                      "cost": float(res.fun), "curve": curves[k]})
    log.info("BFGS: %d stacked evaluations for %d models", lock.evaluations, K)
    return final, infos, diverged


def train_all(compiled, x_train, seeds, optimizers, lr=0.3, epochs=1001, bfgs_maxiter=500,
              bfgs_gtol=1e-5, log_every=10, monitor=None, initial=None):
    """Train K seeds with each optimizer in ``optimizers``; ``sgd+bfgs`` starts BFGS from the SGD result.

    Returns {optimizer: {"params", "diverged", "seconds" (per model), "curve", "bfgs"}}.
    """
    from .model import init_params

    check_optimizers(optimizers)
    check_settings(lr=lr, epochs=epochs, bfgs_maxiter=bfgs_maxiter, bfgs_gtol=bfgs_gtol, log_every=log_every)
    K = compiled.K
    start = init_params(compiled.spec, seeds) if initial is None else initial
    out = {}
    if "sgd" in optimizers or "sgd+bfgs" in optimizers:
        t0 = time.perf_counter()
        params, curve, diverged = sgd(compiled, x_train, start, seeds, lr, epochs, log_every, monitor)
        seconds = (time.perf_counter() - t0) / K
        out["sgd"] = {"params": params, "diverged": diverged, "seconds": seconds, "curve": curve}
    if "bfgs" in optimizers:
        t0 = time.perf_counter()
        params, infos, diverged = bfgs(compiled, x_train, start, seeds, bfgs_maxiter, gtol=bfgs_gtol)
        out["bfgs"] = {"params": params, "diverged": diverged, "bfgs": infos,
                       "seconds": (time.perf_counter() - t0) / K}
    if "sgd+bfgs" in optimizers:
        sgd_run = out["sgd"]
        t0 = time.perf_counter()
        params, infos, diverged = bfgs(compiled, x_train, sgd_run["params"], seeds, bfgs_maxiter,
                                       skip=sgd_run["diverged"], gtol=bfgs_gtol)
        out["sgd+bfgs"] = {"params": params, "diverged": diverged, "bfgs": infos, "curve": sgd_run["curve"],
                           "seconds": sgd_run["seconds"] + (time.perf_counter() - t0) / K}
    return {o: out[o] for o in optimizers}
