"""The closed-loop ("rollout") training loss: what the network predicts when it feeds itself.

From every teacher-forced state h_t of the training segment after ``washout`` steps (or every
``rollout_stride``-th; with ``rollout_coverage``, sparser at long horizons: ``stride``), the
network free-runs ``rollout_steps`` = R steps, feeding each prediction back as the next input;
the loss is the mean squared error of those R predictions against x_{t+1} .. x_{t+R}, over all
start points:

    mse = mean over t in {washout, washout + stride, ...} < T - R, r in [0, R) of (y_t^(r) - x_{t+1+r})^2

y_t^(0) is the ordinary one-step prediction, so R = 1 with washout 0 is exactly the one-step loss.
All start points run side by side: the closed loop's states are (K, N, H), models first, so that
each step's recurrent product is one batched matrix product with nothing to transpose.

The gradient is exact, written out by hand like the one-step loss's: a backward ``scan`` through
the closed loop carries dz (dL/d pre-activation) and the total gradient of the fed-back
prediction; what reaches the start states h_t is then back-propagated through the teacher-forced
recurrence (``rnn.model.backprop_states``); every weight gradient is a contraction outside the
loops. ``gradient="autodiff"`` takes ``pytensor.grad`` through both loops instead (same numbers,
slower), for cross-checks.
"""

import numpy as np

from . import backends
from .settings import check_rollout
from .model import (activation_slope, add_penalty_gradient, backprop_states, batched_predictions, check_gradient,
                    free_run, hidden_states, matvec, penalty, perturbed, symbolic_noise, symbolic_params)

pytensor, pt = backends.import_pytensor()


def stride(spec, steps):
    """The start points' spacing at horizon ``steps``: ``rollout_stride``, or, with ``rollout_coverage``
    C, wider once the horizon passes C strides (ceil(steps / C)), so that no step lies in more than
    about C of the continuations and a horizon's cost stops growing with its length."""
    base = int(spec.rollout_stride)
    if spec.rollout_coverage is None:
        return base
    return max(base, -(-int(steps) // int(spec.rollout_coverage)))


def _closed_loop_gradient(spec, u, h, u0, y0, h0, ys, hs, g_y0, g_ys, p, starts, T):
    """Gradients of the loss by hand, given its direct gradients g_y0 (K, N) and g_ys (R-1, K, N) with
    respect to the predictions y0 (K, N) at the N start states h0 (K, N, H) (inputs u0 (K or 1, N))
    and ys (R-1, K, N) of the free run after them (states hs (R-1, K, N, H)); h (T, K, H) are the
    teacher-forced states over the inputs u, ``starts`` the slice of them that starts the runs.

    The closed loop is walked back step by step (a ``scan`` for steps R-1 .. 2, then steps 1 and 0);
    each step reads its states from ``hs`` by index (no reversed copy) and adds its share to the
    weight gradients while its (K, N, H) arrays are in cache.
    """
    R = g_ys.type.shape[0] + 1
    K, N, H = p["w_hh"].type.shape[0], g_y0.type.shape[1], int(spec.hidden)
    w_hh_t = p["w_hh"].transpose(0, 2, 1)
    w_in, w_out = p["w_xh"], p["w_ho"].transpose(0, 2, 1)  # (K, 1, H)
    names = ["w_xh", "w_hh", "b_h", "w_ho", "b_o"] + (["w_xo"] if spec.skip else [])

    def back(g_y_r, h_r, h_before, y_before, dz_next, gy_next, grads):
        """Step r >= 1 backwards: dL/dy_r in all (directly and as step r+1's input), dz_r = dL/d(its
        pre-activation), and the weight gradients of step r, whose input was y_before (K, N) and
        previous state h_before (K, N, H)."""
        gy = g_y_r + (dz_next * w_in).sum(axis=-1)
        if spec.skip:
            gy = gy + gy_next * p["w_xo"][:, 0]
        dz = (gy[..., None] * w_out + matvec(dz_next, w_hh_t)) * activation_slope(spec.nonlinearity, h_r)
        more = {"w_xh": pt.einsum("kn,knj->kj", y_before, dz)[:, None, :], "w_hh": pt.einsum("kni,knj->kij", h_before, dz),
                "b_h": dz.sum(axis=1), "w_ho": pt.einsum("kni,kn->ki", h_r, gy)[:, :, None], "b_o": gy.sum(axis=1)[:, None]}
        if spec.skip:
            more["w_xo"] = (y_before * gy).sum(axis=1)[:, None, None]
        return dz, gy, {n: grads[n] + more[n] for n in names}

    dz, gy = pt.zeros((K, N, H), dtype="float64"), pt.zeros((K, N), dtype="float64")
    grads = {n: pt.zeros(v.type.shape, dtype="float64") for n, v in p.items()}
    if R > 2:  # steps R-1 .. 2: everything they read is in ys and hs
        def step(r, dz_next, gy_next, *acc):
            dz, gy, out = back(g_ys[r - 1], hs[r - 1], hs[r - 2], ys[r - 2], dz_next, gy_next, dict(zip(names, acc)))
            return [dz, gy, *(out[n] for n in names)]

        dz, gy, *acc = pytensor.scan(step, sequences=[pt.arange(R - 1, 1, -1)],
                                     outputs_info=[dz, gy, *(grads[n] for n in names)], strict=False,
                                     return_updates=False)
        dz, gy, grads = dz[-1], gy[-1], {n: a[-1] for n, a in zip(names, acc)}
    if R > 1:  # step 1, whose input and previous state are the start's
        dz, gy, grads = back(g_ys[0], hs[0], h0, y0, dz, gy, grads)
    # step 0: the start's own prediction, then dL/dh at the start states
    gy0 = g_y0 + (dz * w_in).sum(axis=-1) + (gy * p["w_xo"][:, 0] if spec.skip else 0.0)
    g_h0 = gy0[..., None] * w_out + matvec(dz, w_hh_t)  # (K, N, H)
    grads["w_ho"] = grads["w_ho"] + pt.einsum("kni,kn->ki", h0, gy0)[:, :, None]
    grads["b_o"] = grads["b_o"] + gy0.sum(axis=1)[:, None]
    if spec.skip:
        grads["w_xo"] = grads["w_xo"] + (pt.broadcast_to(u0, (K, N)) * gy0).sum(axis=1)[:, None, None]
    # the teacher-forced recurrence, from dL/dh at the start states
    g_h = pt.set_subtensor(pt.zeros((T, K, H), dtype="float64")[starts], g_h0.transpose(1, 0, 2))
    states = backprop_states(spec, u, h, g_h, p["w_hh"])
    return {n: grads[n] + states[n] if n in states else grads[n] for n in p}


def loss_terms(spec, x, p, noise, steps=None, gradient="bptt"):
    """(mse (K,), {name: grad of mse + penalty}) of the rollout loss for symbolic x (T, 1), params and
    noise; ``steps`` defaults to ``spec.rollout_steps`` (a schedule compiles one graph per horizon)."""
    R = int(spec.rollout_steps if steps is None else steps)
    T, washout = x.type.shape[0], int(spec.washout)
    check_rollout(T, R, washout)
    starts = slice(washout, T - R, stride(spec, R))
    first = np.arange(T)[starts]  # the N start points
    N = len(first)
    p_eff, u = perturbed(p, x, noise)
    h = hidden_states(spec, u, p_eff)  # (T, K, H)
    h0, u0 = h[starts].transpose(1, 0, 2), u[starts].T  # the start states (K, N, H) and their inputs (K or 1, N)
    y0 = batched_predictions(spec, u0, h0, p_eff)  # (K, N): predictions of x[t + 1]
    err0 = y0 - x[first + 1, 0]
    total = (err0**2).sum(axis=1)
    if R > 1:
        ys, hs = free_run(spec, p_eff, y0, h0, R - 1, states=True)  # (R-1, K, N), (R-1, K, N, H)
        err = ys - x[:, 0][first[None, :] + np.arange(2, R + 1)[:, None]][:, None, :]
        total = total + (err**2).sum(axis=(0, 2))
    mse = total / (R * N)
    if gradient == "autodiff":
        return mse, dict(zip(p, pt.grad((mse + penalty(spec, p)).sum(), list(p.values()))))
    scale = 2.0 / (R * N)
    if R > 1:
        grads = _closed_loop_gradient(spec, u, h, u0, y0, h0, ys, hs, scale * err0, scale * err, p_eff, starts, T)
    else:
        empty = pt.zeros((0, *y0.type.shape), dtype="float64")
        grads = _closed_loop_gradient(spec, u, h, u0, y0, h0, empty, empty[..., None], scale * err0, empty, p_eff,
                                      starts, T)
    return mse, add_penalty_gradient(spec, grads, p)


def loss_graph(spec, K, T, steps=None, gradient="bptt"):
    """Inputs [x (T, 1), *params, *noise] and outputs [mse (K,), *grads of mse + penalty] of the rollout loss."""
    check_gradient(gradient)
    x = pt.tensor("x", shape=(T, 1), dtype="float64")
    p = symbolic_params(spec, K)
    noise = symbolic_noise(spec, K, T)
    mse, grads = loss_terms(spec, x, p, noise, steps, gradient)
    return [x, *p.values(), *noise.values()], [mse, *(grads[n] for n in p)]
