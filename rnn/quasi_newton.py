"""Quasi-Newton training of K stacked models: BFGS at O(n²) per iteration, and L-BFGS-B.

``minimize(fun, params, seeds, method)`` runs one optimizer per model on an objective over stacked
parameters, ``fun(params) -> (cost (K,), grads {name: (K, ...)})``, whose slot k depends only on
model k's parameters (the one-step loss of ``rnn.model``, a closed-loop loss, ...). It knows
nothing of models or data.

bfgs   scipy's ``minimize(method="BFGS")``, step for step: identity initial inverse Hessian, its
       first-step guess, its Wolfe line search (MINPACK's dcsrch, then the zoom search as a
       fallback: scipy's private ``_line_search_wolfe12``), its stopping rules (largest gradient
       component <= gtol, maxiter, precision loss). Only the inverse-Hessian update differs:
       ``scipy.optimize.BFGS``'s rank-two update in O(n²) (BLAS syr2 + syr, here in place) instead of
       minimize's two dense n x n products, O(n³); the iterates agree to rounding
       (tests/test_quasi_newton.py). Outside the objective, at n = 3781 (hidden 60): about 30 ms an
       iteration against 4 s; but the n x n matrix (114 MB a model there) is still read three times.
lbfgs  scipy's ``minimize(method="L-BFGS-B")``, unbounded, with its default 10 stored pairs: O(n)
       memory and work per iteration. On this study's cost it keeps pace with BFGS iteration for
       iteration (config/README.md), so it is the faster of the two from hidden 30 on.

Why threads. scipy's line searches and L-BFGS-B's driver call the objective themselves and offer no
way to hand a request back to the caller, so K optimizers cannot be stepped from one loop without
rewriting them. Each model's optimizer therefore runs in its own thread and asks for (cost, grad) at
its own point; once every live optimizer has asked, one call of ``fun`` answers all of them
(``_Lockstep``). Each model follows exactly the path it follows alone.

A model whose final cost is NaN or inf or above ``BLOWUP`` times its initial cost is put back at
its starting point and reported as diverged; models flagged in ``skip`` are not run and stay flagged.
"""

import logging
import threading
import warnings

import numpy as np
import scipy.optimize
from scipy.optimize import BFGS, OptimizeResult
from scipy.optimize._optimize import _line_search_wolfe12, _LineSearchError  # private: minimize's own

from .settings import BASELINE as _B

METHODS = ("bfgs", "lbfgs")
BLOWUP = 1e6  # a cost this many times the initial cost counts as diverged (on its way to inf)
MESSAGES = (  # minimize(method="BFGS")'s, by its status: success, maxiter, precision loss, NaN
    "Optimization terminated successfully.",
    "Maximum number of iterations has been exceeded.",
    "Desired error not necessarily achieved due to precision loss.",
    "NaN result encountered.",
)

log = logging.getLogger(__name__)


class _Memo:
    """One model's ``f(x) -> (cost, grad)``, evaluated once per point, as scipy's ScalarFunction does."""

    def __init__(self, f):
        self.f, self.x, self.nfev, self.ngev = f, None, 0, 0

    def __call__(self, x):
        if self.x is None or not np.array_equal(x, self.x):
            self.x = np.array(x, dtype=np.float64)
            self.value, self.graded = self.f(self.x), False
            self.nfev += 1
        return self.value

    def cost(self, x):
        return self(x)[0]

    def grad(self, x):
        value = self(x)
        self.ngev += not self.graded
        self.graded = True
        return value[1]


class _InPlaceBFGS(BFGS):
    """``scipy.optimize.BFGS`` with its two BLAS calls (syr2, syr) writing into H instead of a copy.

    The same operations and numbers; scipy's own copies the n x n matrix twice per update, which at
    n = 3781 made the update 8x slower (80 ms against 10 ms). Should scipy rename this method, the
    override goes unused and only speed is lost (tests/test_quasi_newton.py notices).
    """

    def _update_inverse_hessian(self, ys, Hy, yHy, s):
        self.H = self._syr2(-1.0 / ys, s, Hy, a=self.H, overwrite_a=True)
        self.H = self._syr((ys + yHy) / ys ** 2, s, a=self.H, overwrite_a=True)


def bfgs(f, x0, maxiter=_B["bfgs_maxiter"], gtol=_B["bfgs_gtol"], callback=None):
    """``minimize(f, x0, jac=True, method="BFGS")`` with an O(n²) inverse-Hessian update.

    ``f(x) -> (cost, grad)`` on flat float64 vectors; ``callback(OptimizeResult(x, fun))`` after each
    iteration. Returns an OptimizeResult with x, fun, jac, nit, nfev, njev, status, message, success.
    """
    memo = _Memo(f)
    x = np.array(x0, dtype=np.float64).ravel()
    cost, g = memo.cost(x), memo.grad(x)
    # skip_update with min_curvature 0 skips only where y.s <= 0, where minimize's update would make H
    # indefinite (never after a Wolfe step, in exact arithmetic); damp_update would alter ordinary
    # steps (it acts below y.s = 0.2 y.Hy)
    H = _InPlaceBFGS(exception_strategy="skip_update", min_curvature=0.0, init_scale=1.0)
    H.initialize(x.size, "inv_hess")
    previous = cost + np.linalg.norm(g) / 2  # minimize's convention: a first step of length ~1
    k, status = 0, None  # status as minimize's: 0 success, 1 maxiter, 2 precision loss, 3 NaN
    gnorm = np.max(np.abs(g))
    while gnorm > gtol and k < maxiter:
        p = -H.dot(g)
        try:
            alpha, _, _, cost, previous, g_next = _line_search_wolfe12(
                memo.cost, memo.grad, x, p, g, cost, previous, amin=1e-100, amax=1e100)
        except _LineSearchError:
            status = 2
            break
        s = alpha * p
        x = x + s
        if g_next is None:
            g_next = memo.grad(x)
        y, g = g_next - g, g_next
        k += 1
        if callback is not None:
            callback(OptimizeResult(x=x, fun=cost))
        gnorm = np.max(np.abs(g))
        if gnorm <= gtol:
            break
        if not np.isfinite(cost):
            status = 2
            break
        H.update(s, y)
    if status is None:
        status = 1 if k >= maxiter else 3 if np.isnan(gnorm) or np.isnan(cost) or np.isnan(x).any() else 0
    return OptimizeResult(x=x, fun=cost, jac=g, nit=k, nfev=memo.nfev, njev=memo.ngev, status=status,
                          message=MESSAGES[status], success=status == 0)


def lbfgs(f, x0, maxiter=_B["bfgs_maxiter"], gtol=_B["bfgs_gtol"], callback=None):
    """``minimize(f, x0, jac=True, method="L-BFGS-B")`` stopping, like ``bfgs``, on gtol, maxiter or precision loss.

    ``ftol`` is 0: scipy's default stops once a step lowers the cost by less than 2.2e-9 *absolute*
    (for costs below 1): after 96 to 120 iterations on the tutorial's network (cost ~4e-4).
    """
    options = {"maxiter": int(maxiter), "gtol": float(gtol), "ftol": 0.0,
               "maxfun": 25 * int(maxiter)}  # never the limit: an iteration takes at most 20 evaluations
    return scipy.optimize.minimize(f, x0, jac=True, method="L-BFGS-B", callback=callback, options=options)


class _Lockstep:
    """Answers K optimizers' requests for (cost, grad) with one call of ``fun`` per round.

    Each optimizer asks at its own point; once every live optimizer has asked, one call of ``fun``
    on the stacked parameters answers all of them. Slot k's numbers depend only on slot k.
    """

    def __init__(self, fun, params):
        self.fun, self.names = fun, tuple(params)
        self.shapes = {n: params[n].shape[1:] for n in self.names}
        self.current = {n: np.array(params[n], dtype=np.float64) for n in self.names}
        self.K = len(next(iter(params.values())))
        self.cond = threading.Condition()
        self.pending, self.answers, self.done = {}, {}, set()
        self.failed, self.evaluations = None, 0
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
                if self.failed is None:
                    self.pending[k] = np.array(vector, dtype=np.float64)
                    self.cond.notify_all()
                    self.cond.wait_for(lambda: k in self.answers or self.failed is not None)
                if self.failed is not None:
                    raise RuntimeError("the stacked objective failed") from self.failed
                return self.answers.pop(k)
        return f

    def finish(self, k):
        with self.cond:
            self.done.add(k)
            self.pending.pop(k, None)
            self.cond.notify_all()

    def serve(self):
        """Answer rounds of requests until every optimizer has finished."""
        while True:
            with self.cond:
                self.cond.wait_for(lambda: len(self.pending) + len(self.done) == self.K)
                if len(self.done) == self.K:
                    return
                batch, self.pending = self.pending, {}
            for k, vector in batch.items():
                self.put(vector, k)
            try:
                cost, grads = self.fun(self.current)
                if np.shape(cost) != (self.K,) or set(grads) != set(self.names) or \
                        any(np.shape(grads[n]) != (self.K, *self.shapes[n]) for n in self.names):
                    raise ValueError(f"fun must return (cost ({self.K},), grads {{name: ({self.K}, ...)}}) "
                                     f"with the names and shapes of params; got cost {np.shape(cost)}")
            except BaseException as exc:  # every optimizer stops; minimize re-raises it
                with self.cond:
                    self.failed = exc
                    self.cond.notify_all()
                continue
            self.evaluations += 1
            with self.cond:
                for k in batch:
                    self.initial_cost.setdefault(k, float(cost[k]))
                    self.answers[k] = (float(cost[k]), self.flat(grads, k))
                self.cond.notify_all()


def check_arguments(params, seeds, method, maxiter, gtol, skip):
    """Raise ValueError naming the first bad argument of ``minimize``; return K."""
    if not isinstance(params, dict) or not params or \
            len({np.shape(v)[:1] for v in params.values()}) != 1 or min(np.ndim(v) for v in params.values()) < 1:
        raise ValueError("params must be a non-empty dict name -> stacked array (K, ...) with one K")
    K = len(next(iter(params.values())))
    if len(seeds) != K:
        raise ValueError(f"seeds must have one entry per model ({K}), got {len(seeds)}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if isinstance(maxiter, bool) or int(maxiter) != maxiter or maxiter < 1:
        raise ValueError(f"maxiter must be an integer >= 1, got {maxiter!r}")
    if isinstance(gtol, bool) or not isinstance(gtol, (int, float)) or not np.isfinite(gtol) or gtol <= 0:
        raise ValueError(f"gtol must be a finite number > 0, got {gtol!r}")
    if skip is not None and np.shape(skip) != (K,):
        raise ValueError(f"skip must be None or one flag per model ({K}), got shape {np.shape(skip)}")
    return K


def minimize(fun, params, seeds, method="bfgs", maxiter=_B["bfgs_maxiter"], gtol=_B["bfgs_gtol"], skip=None):
    """Minimize each of K stacked models with ``method`` ("bfgs" or "lbfgs"), all evaluations batched.

    ``fun(params) -> (cost (K,), grads {name: (K, ...)})``; ``params`` dict name -> (K, ...) float64
    (not modified); ``seeds`` (K,) name the models in the log; models flagged in ``skip`` (K,) are
    left as they are. Returns (params, infos, diverged): the final points, one dict per model
    (iterations, evaluations, gradient_evaluations, message, cost, curve = cost per iteration) and
    a (K,) bool array.
    """
    K = check_arguments(params, seeds, method, maxiter, gtol, skip)
    skip = np.zeros(K, dtype=bool) if skip is None else np.asarray(skip, dtype=bool)
    run_one = bfgs if method == "bfgs" else lbfgs
    lock = _Lockstep(fun, params)
    results, errors = [None] * K, []
    curves = [[] for _ in range(K)]

    def run(k):
        try:
            if skip[k]:
                return

            def record(intermediate_result):
                curves[k].append(float(intermediate_result.fun))
                log.info("seed %s %s iteration %d cost %.6g", seeds[k], method, len(curves[k]),
                         intermediate_result.fun)
            results[k] = run_one(lock.objective(k), lock.flat(params, k), maxiter, gtol, record)
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)
        finally:
            lock.finish(k)

    # trial steps may overflow (handled below); warnings' filters are process-wide, so they are
    # set here, around all the threads, and restored once every thread has ended
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(K)]
        for t in threads:
            t.start()
        lock.serve()
        for t in threads:
            t.join()
    if lock.failed is not None:
        raise lock.failed
    if errors:
        raise errors[0]

    final = {n: np.array(params[n], dtype=np.float64) for n in params}
    infos, diverged = [], skip.copy()
    for k, res in enumerate(results):
        if res is None:
            infos.append({"iterations": 0, "evaluations": 0, "gradient_evaluations": 0, "message": "not run",
                          "cost": float("nan"), "curve": []})
            continue
        initial = lock.initial_cost.get(k, np.inf)
        if np.isfinite(res.fun) and res.fun <= BLOWUP * initial and np.all(np.isfinite(res.x)):
            lock.put(res.x, k)
            for n in final:
                final[n][k] = lock.current[n][k]
        else:
            diverged[k] = True
            log.warning("seed %s: %s ended at a non-finite or blown-up point (%s); put back at its start",
                        seeds[k], method, res.message)
        infos.append({"iterations": int(res.nit), "evaluations": int(res.nfev),
                      "gradient_evaluations": int(res.njev), "message": str(res.message),
                      "cost": float(res.fun), "curve": curves[k]})
    log.info("%s: %d stacked evaluations for %d models", method, lock.evaluations, K)
    return final, infos, diverged
