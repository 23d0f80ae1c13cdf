"""The closed-loop ("rollout") training loss: what the network predicts when it feeds itself.

From every teacher-forced state h_t of the training segment after ``washout`` steps (or every
``rollout_stride``-th), the network free-runs ``rollout_steps`` = R steps, feeding each prediction
back as the next input; the loss is the mean squared error of those R predictions against
x_{t+1} .. x_{t+R}, over all start points:

    mse = mean over t in {washout, washout + stride, ...} < T - R, r in [0, R) of (y_t^(r) - x_{t+1+r})^2

y_t^(0) is the ordinary one-step prediction, so R = 1 with washout 0 is exactly the one-step loss.
All start points run side by side (a batch axis N), K stacked models as everywhere.

The gradient is exact, written out by hand like the one-step loss's: a backward ``scan`` through
the closed loop carries dz (dL/d pre-activation) and the total gradient of the fed-back
prediction; what reaches the start states h_t is then back-propagated through the teacher-forced
recurrence (``rnn.model.backprop_states``); every weight gradient is a contraction outside the
loops. ``gradient="autodiff"`` takes ``pytensor.grad`` through both loops instead (same numbers,
slower), for cross-checks.
"""

import numpy as np

from . import backends
from .model import (activation_slope, add_penalty_gradient, backprop_states, check_gradient, free_run, hidden_states,
                    matvec, penalty, perturbed, predictions, symbolic_noise, symbolic_params)

pytensor, pt = backends.import_pytensor()


def check_rollout(T, steps, washout):
    """Raise ValueError unless ``steps`` closed-loop steps after ``washout`` fit in a segment of T samples."""
    if T - steps - washout < 1:
        raise ValueError(f"rollout_steps ({steps}) + washout ({washout}) must be < the training length ({T}), "
                         "leaving at least one start point")


def _closed_loop_gradient(spec, u, h, u0, y, hs, err, p, washout, R, N, stride, T):
    """Gradients of mean(err^2) by hand: y (R, N, K) predictions, hs (R, N, K, H) their states
    (hs[0] the teacher-forced start states), u0 the inputs at the starts, h (T, K, H) the teacher-forced states."""
    K, H = p["w_hh"].type.shape[0], int(spec.hidden)
    g_y = 2.0 * err / (R * N)  # dL/dy_r, direct
    w_hh_t = p["w_hh"].transpose(0, 2, 1)
    w_in, w_out = p["w_xh"][:, 0, :], p["w_ho"][:, :, 0]  # (K, H)
    w_skip = p["w_xo"][:, 0, 0] if spec.skip else None

    def total(g_y_r, dz_next, gy_next):
        """dL/dy_r in all: directly, and as the input of step r + 1 (and its skip term)."""
        g = g_y_r + (dz_next * w_in).sum(axis=-1)
        return g + gy_next * w_skip if spec.skip else g

    zero_dz, zero_gy = pt.zeros((N, K, H), dtype="float64"), pt.zeros((N, K), dtype="float64")
    if R > 1:
        def back(g_y_r, h_r, dz_next, gy_next):
            gy = total(g_y_r, dz_next, gy_next)
            dz = (gy[..., None] * w_out + matvec(dz_next, w_hh_t)) * activation_slope(spec.nonlinearity, h_r)
            return dz, gy

        dz, gy = pytensor.scan(back, sequences=[g_y[1:][::-1], hs[1:][::-1]], outputs_info=[zero_dz, zero_gy],
                               non_sequences=[], strict=True, return_updates=False)
        dz, gy = dz[::-1], gy[::-1]  # steps 1 .. R-1
        dz1, gy1 = dz[0], gy[0]
    else:
        dz1, gy1 = zero_dz, zero_gy
    gy0 = total(g_y[0], dz1, gy1)
    g_h0 = gy0[..., None] * w_out + matvec(dz1, w_hh_t)  # dL/dh at the start states
    gy_all = pt.concatenate([gy0[None], gy], axis=0) if R > 1 else gy0[None]  # (R, N, K)
    grads = {"w_ho": pt.einsum("rnki,rnk->ki", hs, gy_all)[:, :, None], "b_o": gy_all.sum(axis=(0, 1))[:, None]}
    if spec.skip:
        fed = pt.concatenate([pt.broadcast_to(u0, (N, K))[None], y[:-1]], axis=0)  # what each prediction's skip saw
        grads["w_xo"] = (fed * gy_all).sum(axis=(0, 1))[:, None, None]
    # the teacher-forced recurrence, from dL/dh at the start states
    g_h = pt.set_subtensor(pt.zeros((T, K, H), dtype="float64")[washout:T - R:stride], g_h0)
    states = backprop_states(spec, u, h, g_h, p["w_hh"])
    if R > 1:  # and the closed loop's own recurrent steps 1 .. R-1
        fed, before = y[:-1], hs[:-1]
        states["w_xh"] = states["w_xh"] + (fed[..., None] * dz).sum(axis=(0, 1))[:, None, :]
        states["w_hh"] = states["w_hh"] + pt.einsum("rnki,rnkj->kij", before, dz)
        states["b_h"] = states["b_h"] + dz.sum(axis=(0, 1))
    return {**states, **grads}


def loss_terms(spec, x, p, noise, steps=None, gradient="bptt"):
    """(mse (K,), {name: grad of mse + penalty}) of the rollout loss for symbolic x (T, 1), params and
    noise; ``steps`` defaults to ``spec.rollout_steps`` (a schedule compiles one graph per horizon)."""
    steps = int(spec.rollout_steps if steps is None else steps)
    T, washout, stride = x.type.shape[0], int(spec.washout), int(spec.rollout_stride)
    check_rollout(T, steps, washout)
    N = len(range(washout, T - steps, stride))
    p_eff, u = perturbed(p, x, noise)
    h = hidden_states(spec, u, p_eff)  # (T, K, H)
    h0, u0 = h[washout:T - steps:stride], u[washout:T - steps:stride]  # the N start states and their inputs
    y0 = predictions(spec, u0, h0, p_eff)  # (N, K)
    if steps > 1:
        ys, hs = free_run(spec, p_eff, y0, h0, steps - 1, states=True)
        y = pt.concatenate([y0[None], ys], axis=0)  # (R, N, K)
        hs = pt.concatenate([h0[None], hs], axis=0)  # (R, N, K, H)
    else:
        y, hs = y0[None], h0[None]
    index = 1 + np.arange(steps)[:, None] + np.arange(washout, T - steps, stride)[None, :]
    err = y - x[:, 0][index][:, :, None]
    mse = (err**2).mean(axis=(0, 1))
    if gradient == "autodiff":
        return mse, dict(zip(p, pt.grad((mse + penalty(spec, p)).sum(), list(p.values()))))
    grads = _closed_loop_gradient(spec, u, h, u0, y, hs, err, p_eff, washout, steps, N, stride, T)
    return mse, add_penalty_gradient(spec, grads, p)


def loss_graph(spec, K, T, steps=None, gradient="bptt"):
    """Inputs [x (T, 1), *params, *noise] and outputs [mse (K,), *grads of mse + penalty] of the rollout loss."""
    check_gradient(gradient)
    x = pt.tensor("x", shape=(T, 1), dtype="float64")
    p = symbolic_params(spec, K)
    noise = symbolic_noise(spec, K, T)
    mse, grads = loss_terms(spec, x, p, noise, steps, gradient)
    return [x, *p.values(), *noise.values()], [mse, *(grads[n] for n in p)]
