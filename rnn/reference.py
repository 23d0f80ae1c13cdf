"""A hand-written reference: one full-batch epoch of the baseline network (tanh, L2) in Numba.

Forward pass, back-propagation through time and the update, with explicit loops and no graph
compiler: the yardstick the benchmark measures the PyTensor backends against, and an
independent check of their gradients. The time loops carry only what must be sequential; the
weight gradients are matrix products over all time steps afterwards.
"""

import numba
import numpy as np


@numba.njit(cache=True)
def loss_and_grad(x, w_xh, w_hh, b_h, w_ho, b_o, l2):
    """Cost (MSE + l2 * sum p^2) and its gradients for one model; x (T, 1), tutorial shapes."""
    T, H = x.shape[0], w_hh.shape[0]
    h = np.zeros((T + 1, H))  # h[t + 1] is the hidden state after input t
    for t in range(T):
        for j in range(H):
            s = x[t, 0] * w_xh[0, j] + b_h[j]
            for i in range(H):
                s += h[t, i] * w_hh[i, j]
            h[t + 1, j] = np.tanh(s)
    n = T - 1
    y = h[1:] @ w_ho  # (T, 1)
    g_y = np.zeros((T, 1))
    mse = 0.0
    for t in range(n):
        e = y[t, 0] + b_o[0] - x[t + 1, 0]
        mse += e * e
        g_y[t, 0] = 2.0 * e / n
    mse /= n
    dz = np.zeros((T + 1, H))  # dz[t] = d cost / d pre-activation at step t; dz[T] = 0
    for t in range(T - 1, -1, -1):
        for j in range(H):
            d = g_y[t, 0] * w_ho[j, 0]
            for k in range(H):
                d += w_hh[j, k] * dz[t + 1, k]
            dz[t, j] = d * (1.0 - h[t + 1, j] ** 2)
    dz = dz[:T]
    g_w_xh = x.T @ dz + 2 * l2 * w_xh
    g_w_hh = h[:T].T @ dz + 2 * l2 * w_hh
    g_b_h = dz.sum(axis=0) + 2 * l2 * b_h
    g_w_ho = h[1:].T @ g_y + 2 * l2 * w_ho
    g_b_o = g_y.sum(axis=0) + 2 * l2 * b_o
    penalty = (w_xh**2).sum() + (w_hh**2).sum() + (b_h**2).sum() + (w_ho**2).sum() + (b_o**2).sum()
    return mse + l2 * penalty, (g_w_xh, g_w_hh, g_b_h, g_w_ho, g_b_o)


NAMES = ("w_xh", "w_hh", "b_h", "w_ho", "b_o")


def sgd_epoch(x, params, lr=0.3, l2=1e-4):
    """One tutorial epoch on a single model's params (dict, tutorial shapes), in place; returns the cost."""
    cost, grads = loss_and_grad(x, *(params[n] for n in NAMES), l2)
    for n, g in zip(NAMES, grads):
        params[n] -= lr * g
    return cost


def jax_closed_loop(T, steps, stride, washout):
    """A plain-JAX reference of the closed-loop loss (``rnn.rollout``) and its gradient for stacked tanh
    models (no skip, no noise) on a (T, 1) series: ``lax.scan`` through the teacher-forced states and the R-step free runs, ``jax.value_and_grad``
    through both, ``jax.vmap`` over the models — what a user would write without PyTensor.

    Returns f(x (T, 1), params {name: (K, ...)}) -> (mse (K,), {name: grad (K, ...)}); no penalty.
    """
    from .backends import import_jax

    jax = import_jax()
    import jax.numpy as jnp
    first = np.arange(washout, T - steps, stride)
    targets = 1 + np.arange(steps)[:, None] + first[None, :]  # (R, N)

    def loss(q, x):
        u = x[:, 0]

        def teacher_forced(h, u_t):
            h = jnp.tanh(u_t * q["w_xh"][0] + q["b_h"] + h @ q["w_hh"])
            return h, h

        _, hs = jax.lax.scan(teacher_forced, jnp.zeros_like(q["b_h"]), u)
        h0 = hs[first]
        y0 = h0 @ q["w_ho"][:, 0] + q["b_o"][0]

        def free(carry, _):
            y, h = carry
            h = jnp.tanh(y[:, None] * q["w_xh"][0] + q["b_h"] + h @ q["w_hh"])
            y = h @ q["w_ho"][:, 0] + q["b_o"][0]
            return (y, h), y

        _, ys = jax.lax.scan(free, (y0, h0), None, length=steps - 1)
        return jnp.mean((jnp.concatenate([y0[None], ys]) - u[targets]) ** 2)

    value_and_grad = jax.jit(jax.vmap(jax.value_and_grad(loss), in_axes=(0, None)))

    def f(x, params):
        mse, grads = value_and_grad({n: jnp.asarray(v) for n, v in params.items()}, jnp.asarray(x))
        return np.asarray(mse), {n: np.asarray(g) for n, g in grads.items()}

    return f
