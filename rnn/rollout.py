"""The closed-loop ("rollout") training loss: what the network predicts when it feeds itself.

From every teacher-forced state h_t of the training segment after ``washout`` steps (or every
``rollout_stride``-th; with ``rollout_coverage``, sparser at long horizons: ``stride``), the
network free-runs ``rollout_steps`` = R steps, feeding each prediction back as the next input;
the loss is the mean squared error of those R predictions against x_{t+1} .. x_{t+R}, over all
start points:

    mse = mean over t in {washout, washout + stride, ...} < T - R, r in [0, R) of (y_t^(r) - x_{t+1+r})^2

y_t^(0) is the ordinary one-step prediction, so R = 1 with washout 0 is exactly the one-step loss.

Teacher forcing inside the closed loop (off by default; ``forcing``, ``forced_run``): the
data-inferred state j steps into the continuation from t is the teacher-forced one, h_{t+j} and the
input then fed, u_{t+j+1} (already computed: the states the start points are taken from). After
step j = 0 .. R-2 the continuation's state and fed-back prediction are mixed,

    h <- (1 - a_j) h + a_j h_{t+j},    y <- (1 - a_j) y + a_j u_{t+j+1},

a_j = ``rollout_forcing`` (alpha), or 1 at j = tau, 2 tau, ... (tau = ``rollout_forcing_interval``),

and every prediction is scored before its mixing: generalized teacher forcing (Hess et al. 2023, alpha
fixed here) and sparse teacher forcing (Mikhaeil et al. 2022) of the hidden state, not only of the input.
a = 1 at every step is the one-step loss over the windows [t, t + R).

All start points run side by side: the closed loop's states are (K, N, H), models first, so that
each step's recurrent product is one batched matrix product with nothing to transpose.

The gradient is exact, written out by hand like the one-step loss's: a backward ``scan`` through
the closed loop carries dz (dL/d pre-activation) and the total gradient of the fed-back
prediction; what reaches the start states h_t is then back-propagated through the teacher-forced
recurrence (``rnn.model.backprop_states``); every weight gradient is a contraction outside the
loops. ``gradient="autodiff"`` takes ``pytensor.grad`` through both loops instead (same numbers,
slower), for cross-checks. With forcing, what reaches a mixed state is split between the model's
state (1 - a_j) and the teacher-forced one (a_j), which joins the start states' in the teacher-forced
recurrence.
"""

import numpy as np

from . import backends
from .settings import check_rollout
from .model import (activation_slope, add_penalty_gradient, backprop_states, batched_predictions, check_gradient,
                    free_run, hidden_states, hidden_step, matvec, penalty, perturbed, symbolic_noise, symbolic_penalty,
                    symbolic_params)

pytensor, pt = backends.import_pytensor()


def stride(spec, steps):
    """The start points' spacing at horizon ``steps``: ``rollout_stride``, or, with ``rollout_coverage``
    C, wider once the horizon passes C strides (ceil(steps / C)), so that no step lies in more than
    about C of the continuations and a horizon's cost stops growing with its length."""
    base = int(spec.rollout_stride)
    if spec.rollout_coverage is None:
        return base
    return max(base, -(-int(steps) // int(spec.rollout_coverage)))


def _closed_loop_gradient(spec, u, h, u0, y0, h0, ys, hs, g_y0, g_ys, p, starts, T, forced=None):
    """Gradients of the loss by hand, given its direct gradients g_y0 (K, N) and g_ys (R-1, K, N) with
    respect to the predictions y0 (K, N) at the N start states h0 (K, N, H) (inputs u0 (K or 1, N))
    and ys (R-1, K, N) of the free run after them (states hs (R-1, K, N, H)); h (T, K, H) are the
    teacher-forced states over the inputs u, ``starts`` the slice of them that starts the runs.
    ``forced``: (alpha (R-1,), u_data, h_data, first) of a teacher-forced run (``forced_run``), or None.

    The closed loop is walked back step by step (a ``scan`` for steps R-1 .. 2, then steps 1 and 0);
    each step reads its states from ``hs`` by index (no reversed copy) and adds its share to the
    weight gradients while its (K, N, H) arrays are in cache. With teacher forcing, what reaches the
    state mixed in after step r is split: (1 - a_r) to the model's state and prediction, a_r to the
    teacher-forced state h_{t+r} (back-propagated through the teacher-forced recurrence with the
    start states'); the step's weight gradients use the mixed input and state it was fed.
    """
    R = g_ys.type.shape[0] + 1
    K, N, H = p["w_hh"].type.shape[0], g_y0.type.shape[1], int(spec.hidden)
    w_hh_t = p["w_hh"].transpose(0, 2, 1)
    w_in, w_out = p["w_xh"], p["w_ho"].transpose(0, 2, 1)  # (K, 1, H)
    names = ["w_xh", "w_hh", "b_h", "w_ho", "b_o"] + (["w_xo"] if spec.skip else [])
    if forced is not None:
        alpha, u_data, h_data, first = forced
        a_all = pt.as_tensor(np.append(alpha, 0.0))  # a_j, j = 0 .. R-1 (nothing mixed after the last step)

    def back(g_y_r, h_r, h_before, y_before, dz_next, gy_next, grads, r=None):
        """Step r >= 1 backwards: dL/dy_r in all (directly and as step r+1's input), dz_r = dL/d(its
        pre-activation), and the weight gradients of step r, whose input was y_before (K, N) and
        previous state h_before (K, N, H) (mixed with the data's, with forcing). With forcing, also
        dL/d(the teacher-forced state mixed in after step r)."""
        back_h = matvec(dz_next, w_hh_t)
        if forced is None:
            gy = g_y_r + (dz_next * w_in).sum(axis=-1)
            if spec.skip:
                gy = gy + gy_next * p["w_xo"][:, 0]
        else:
            fed = (dz_next * w_in).sum(axis=-1)
            if spec.skip:
                fed = fed + gy_next * p["w_xo"][:, 0]
            a_out, a_in = a_all[r], a_all[r - 1]
            gy, to_data, back_h = g_y_r + (1.0 - a_out) * fed, a_out * back_h, (1.0 - a_out) * back_h
            y_before = (1.0 - a_in) * y_before + a_in * u_data[r - 1]
            if not isinstance(r, int) or r > 1:  # before step 1 the state is the start's own: no mixing
                h_before = (1.0 - a_in) * h_before + a_in * h_data[r - 1]
        dz = (gy[..., None] * w_out + back_h) * activation_slope(spec.nonlinearity, h_r)
        more = {"w_xh": pt.einsum("kn,knj->kj", y_before, dz)[:, None, :], "w_hh": pt.einsum("kni,knj->kij", h_before, dz),
                "b_h": dz.sum(axis=1), "w_ho": pt.einsum("kni,kn->ki", h_r, gy)[:, :, None], "b_o": gy.sum(axis=1)[:, None]}
        if spec.skip:
            more["w_xo"] = (y_before * gy).sum(axis=1)[:, None, None]
        out = (dz, gy, {n: grads[n] + more[n] for n in names})
        return out + ((to_data,) if forced is not None else ())

    dz, gy = pt.zeros((K, N, H), dtype="float64"), pt.zeros((K, N), dtype="float64")
    grads = {n: pt.zeros(v.type.shape, dtype="float64") for n, v in p.items()}
    to_data = []  # with forcing: dL/dh_data[r] (K, N, H) for r = R-2 .. 1
    if R > 2:  # steps R-1 .. 2: everything they read is in ys and hs
        def step(r, dz_next, gy_next, *acc):
            out = back(g_ys[r - 1], hs[r - 1], hs[r - 2], ys[r - 2], dz_next, gy_next, dict(zip(names, acc)), r)
            dz, gy, more = out[:3]
            return [dz, gy, *(more[n] for n in names), *out[3:]]

        extra = [None] if forced is not None else []
        dz, gy, *acc = pytensor.scan(step, sequences=[pt.arange(R - 1, 1, -1)],
                                     outputs_info=[dz, gy, *(grads[n] for n in names), *extra], strict=False,
                                     return_updates=False)
        if forced is not None:
            to_data.append(acc.pop()[1:])  # the scan's r = R-2 .. 2 (its first, r = R-1, mixes nothing after)
        dz, gy, grads = dz[-1], gy[-1], {n: a[-1] for n, a in zip(names, acc)}
    if R > 1:  # step 1, whose input and previous state are the start's
        dz, gy, grads, *more = back(g_ys[0], hs[0], h0, y0, dz, gy, grads, 1)
        if forced is not None and R > 2:
            to_data.append(more[0][None])
    # step 0: the start's own prediction, then dL/dh at the start states
    if forced is None:
        gy0 = g_y0 + (dz * w_in).sum(axis=-1) + (gy * p["w_xo"][:, 0] if spec.skip else 0.0)
    else:  # the start's prediction was fed back mixed with a_0 of the data's
        gy0 = g_y0 + (1.0 - float(alpha[0])) * ((dz * w_in).sum(axis=-1) + (gy * p["w_xo"][:, 0] if spec.skip else 0.0))
    g_h0 = gy0[..., None] * w_out + matvec(dz, w_hh_t)  # (K, N, H)
    grads["w_ho"] = grads["w_ho"] + pt.einsum("kni,kn->ki", h0, gy0)[:, :, None]
    grads["b_o"] = grads["b_o"] + gy0.sum(axis=1)[:, None]
    if spec.skip:
        grads["w_xo"] = grads["w_xo"] + (pt.broadcast_to(u0, (K, N)) * gy0).sum(axis=1)[:, None, None]
    # the teacher-forced recurrence, from dL/dh at the start states (and at the states forced in)
    g_h = pt.set_subtensor(pt.zeros((T, K, H), dtype="float64")[starts], g_h0.transpose(1, 0, 2))
    if to_data:
        g_data = pt.concatenate(to_data, axis=0)  # (R-2, K, N, H): r = R-2 .. 1
        rows = np.arange(R - 2, 0, -1)
        used = np.flatnonzero(alpha[rows] > 0)  # only the steps that mix anything in
        if len(used):
            where = (first[None, :] + rows[used][:, None]).ravel()
            g_h = pt.inc_subtensor(g_h[where], g_data[used].transpose(0, 2, 1, 3).reshape((len(used) * N, K, H)))
    states = backprop_states(spec, u, h, g_h, p["w_hh"])
    return {n: grads[n] + states[n] if n in states else grads[n] for n in p}


def forcing(spec, steps):
    """alpha_j (R-1,), j = 0 .. R-2: how much of the teacher-forced state replaces the closed loop's state
    after its j-th step, before step j+1: ``rollout_forcing``, and 1 at every positive multiple of
    ``rollout_forcing_interval``; None when neither is set (the plain closed loop)."""
    R, every = int(steps), spec.rollout_forcing_interval
    if not spec.rollout_forcing and every is None:
        return None
    alpha = np.full(max(R - 1, 0), float(spec.rollout_forcing))
    if every is not None:
        alpha[int(every)::int(every)] = 1.0
    return alpha


def forced_run(spec, p, y0, h0, alpha, u_data, h_data):
    """The closed loop with teacher forcing: from states h0 (K, N, H) and predictions y0 (K, N), each step
    j = 0 .. R-2 first mixes the state, h <- (1 - a_j) h + a_j h_data[j] (K, N, H) and the prediction to be
    fed back, y <- (1 - a_j) y + a_j u_data[j] (K or 1, N), then steps the network; returns the R-1 further
    predictions (R-1, K, N) and states (R-1, K, N, H), both before their mixing (what the loss sees)."""
    from .model import _batched_drive

    def step(a, u_d, h_d, y_prev, h_prev, *weights):
        q = dict(zip(p, weights))
        y_in = (1.0 - a) * y_prev + a * u_d
        h_in = (1.0 - a) * h_prev + a * h_d
        h_t = hidden_step(spec, _batched_drive(y_in, q), h_in, q["w_hh"])
        return batched_predictions(spec, y_in, h_t, q), h_t

    ys, hs = pytensor.scan(step, sequences=[pt.as_tensor(alpha), u_data, h_data], outputs_info=[y0, h0],
                           non_sequences=list(p.values()), strict=True, return_updates=False)
    n = len(alpha)  # the static length, which the hand-written gradient reads
    return pt.specify_shape(ys, (n, *y0.type.shape)), pt.specify_shape(hs, (n, *h0.type.shape))


def loss_terms(spec, x, p, noise, steps=None, gradient="bptt", coefficients=None):
    """(mse (K,), {name: grad of mse + penalty}) of the rollout loss for symbolic x (T, 1), params,
    noise and penalty ``coefficients`` (``rnn.model.symbolic_penalty``; None: the spec's values);
    ``steps`` defaults to ``spec.rollout_steps`` (a schedule compiles one graph per horizon)."""
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
    alpha = forcing(spec, R)
    if R > 1 and alpha is not None:  # teacher forcing: the data's states after j = 0 .. R-2 steps
        later = first[None, :] + np.arange(R - 1)[:, None]  # (R-1, N)
        h_data = h[later].transpose(0, 2, 1, 3)  # (R-1, K, N, H)
        u_data = u[later + 1].transpose(0, 2, 1)  # (R-1, K or 1, N): the inputs fed after them
        ys, hs = forced_run(spec, p_eff, y0, h0, alpha, u_data, h_data)
    elif R > 1:
        ys, hs = free_run(spec, p_eff, y0, h0, R - 1, states=True)  # (R-1, K, N), (R-1, K, N, H)
    if R > 1:
        err = ys - x[:, 0][first[None, :] + np.arange(2, R + 1)[:, None]][:, None, :]
        total = total + (err**2).sum(axis=(0, 2))
    mse = total / (R * N)
    if gradient == "autodiff":
        return mse, dict(zip(p, pt.grad((mse + penalty(spec, p, coefficients)).sum(), list(p.values()))))
    scale = 2.0 / (R * N)
    if R > 1:
        forced = None if alpha is None else (alpha, u_data, h_data, first)
        grads = _closed_loop_gradient(spec, u, h, u0, y0, h0, ys, hs, scale * err0, scale * err, p_eff, starts, T,
                                      forced)
    else:
        empty = pt.zeros((0, *y0.type.shape), dtype="float64")
        grads = _closed_loop_gradient(spec, u, h, u0, y0, h0, empty, empty[..., None], scale * err0, empty, p_eff,
                                      starts, T)
    return mse, add_penalty_gradient(spec, grads, p, coefficients)


def loss_graph(spec, K, T, steps=None, gradient="bptt"):
    """Inputs [x (T, 1), *params, *noise, l1, l2] and outputs [mse (K,), *grads of mse + penalty] of the
    rollout loss."""
    check_gradient(gradient)
    x = pt.tensor("x", shape=(T, 1), dtype="float64")
    p = symbolic_params(spec, K)
    noise, coefficients = symbolic_noise(spec, K, T), symbolic_penalty()
    mse, grads = loss_terms(spec, x, p, noise, steps, gradient, coefficients)
    return [x, *p.values(), *noise.values(), *coefficients.values()], [mse, *(grads[n] for n in p)]
