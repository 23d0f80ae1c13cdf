"""A hand-written reference: one full-batch epoch of the baseline network (tanh, L2) in Numba.

Forward pass, back-propagation through time and the update, with explicit loops and no graph
compiler: the yardstick the benchmark measures the PyTensor backends against, and an
independent check of their gradients.
"""

import numba
import numpy as np


@numba.njit(cache=True)
def loss_and_grad(x, w_xh, w_hh, b_h, w_ho, b_o, l2):
    """Cost (MSE + l2 * sum p^2) and its gradients for one model; x (T, 1), tutorial shapes."""
    T, H = x.shape[0], w_hh.shape[0]
    h = np.zeros((T + 1, H))  # h[t + 1] is the hidden state after input t
    s = np.empty(H)
    for t in range(T):
        for j in range(H):
            s[j] = x[t, 0] * w_xh[0, j] + b_h[j]
        for i in range(H):  # row-wise, so the inner loop runs over contiguous memory
            for j in range(H):
                s[j] += h[t, i] * w_hh[i, j]
        for j in range(H):
            h[t + 1, j] = np.tanh(s[j])
    n = T - 1
    g_y = np.zeros(T)
    mse = 0.0
    for t in range(n):
        y = b_o[0]
        for j in range(H):
            y += h[t + 1, j] * w_ho[j, 0]
        e = y - x[t + 1, 0]
        mse += e * e
        g_y[t] = 2.0 * e / n
    mse /= n
    g_w_xh, g_w_hh, g_b_h = np.zeros_like(w_xh), np.zeros_like(w_hh), np.zeros_like(b_h)
    g_w_ho, g_b_o = np.zeros_like(w_ho), np.zeros_like(b_o)
    dz_next, dz = np.zeros(H), np.zeros(H)
    for t in range(T - 1, -1, -1):
        g_b_o[0] += g_y[t]
        for j in range(H):
            g_w_ho[j, 0] += h[t + 1, j] * g_y[t]
            d = g_y[t] * w_ho[j, 0]
            for k in range(H):
                d += w_hh[j, k] * dz_next[k]
            dz[j] = d * (1.0 - h[t + 1, j] ** 2)
        for j in range(H):
            g_b_h[j] += dz[j]
            g_w_xh[0, j] += x[t, 0] * dz[j]
            for i in range(H):
                g_w_hh[i, j] += h[t, i] * dz[j]
        dz_next[:] = dz
    penalty = (w_xh**2).sum() + (w_hh**2).sum() + (b_h**2).sum() + (w_ho**2).sum() + (b_o**2).sum()
    g_w_xh += 2 * l2 * w_xh
    g_w_hh += 2 * l2 * w_hh
    g_b_h += 2 * l2 * b_h
    g_w_ho += 2 * l2 * w_ho
    g_b_o += 2 * l2 * b_o
    return mse + l2 * penalty, (g_w_xh, g_w_hh, g_b_h, g_w_ho, g_b_o)


NAMES = ("w_xh", "w_hh", "b_h", "w_ho", "b_o")


def sgd_epoch(x, params, lr=0.3, l2=1e-4):
    """One tutorial epoch on a single model's params (dict, tutorial shapes), in place; returns the cost."""
    cost, grads = loss_and_grad(x, *(params[n] for n in NAMES), l2)
    for n, g in zip(NAMES, grads):
        params[n] -= lr * g
    return cost
