"""The tutorial's SimpleRNN, generalised, as PyTensor graphs built with ``scan``.

K models with the same architecture (one per weight seed) are stacked along a leading axis and
computed in one graph; nothing mixes the K slots, so slot k gives the numbers model k gives alone.

    hidden      h_t = f(x_t w_xh + b_h + h_{t-1} w_hh)          (T, K, H)
    prediction  y_t = h_t w_ho + b_o [+ x_t w_xo]               (T, K)   predicts x_{t+1}
    cost        mean_t (y_t - x_{t+1})^2 + l2 sum p^2 + l1 sum |p|   over all parameters

The gradient is back-propagation through time written out as a second, backward ``scan`` that
carries only dz_t = dcost/d(pre-activation); the weight gradients are then single contractions
over time outside the loop. ``gradient="autodiff"`` uses ``pytensor.grad`` instead (same numbers,
about twice the work: its backward scan accumulates every weight gradient step by step).
"""

from dataclasses import asdict, dataclass

import numpy as np

from . import backends

pytensor, pt = backends.import_pytensor()

NONLINEARITIES = ("tanh", "sigmoid", "relu", "linear")


def _activation(name, z):
    if name == "tanh":
        return pt.tanh(z)
    if name == "sigmoid":
        return pt.sigmoid(z)
    if name == "relu":
        return pt.maximum(z, 0.0)
    return z


def _activation_slope(name, h):
    """f'(z) written in terms of h = f(z)."""
    if name == "tanh":
        return 1.0 - h**2
    if name == "sigmoid":
        return h * (1.0 - h)
    if name == "relu":
        return pt.cast(h > 0, "float64")
    return pt.ones_like(h)


@dataclass(frozen=True)
class Spec:
    """Architecture and regularisation of one variant; the tutorial's values are the defaults."""

    hidden: int = 15
    nonlinearity: str = "tanh"
    init_scale_in: float = 0.01  # std of w_xh
    init_scale_rec: float = 0.02  # std of w_hh
    init_scale_out: float = 0.01  # std of w_ho
    skip: bool = False  # direct input -> output weight w_xo
    weight_noise: float = 0.0  # std of Gaussian noise added to the weights on each training pass
    l1: float = 0.0
    l2: float = 1e-4

    def __post_init__(self):
        if isinstance(self.hidden, bool) or int(self.hidden) != self.hidden or self.hidden < 1:
            raise ValueError(f"hidden must be an integer >= 1, got {self.hidden!r}")
        if self.nonlinearity not in NONLINEARITIES:
            raise ValueError(
                f"nonlinearity must be one of {', '.join(NONLINEARITIES)}; got {self.nonlinearity!r}")
        for name in ("init_scale_in", "init_scale_rec", "init_scale_out", "weight_noise", "l1", "l2"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not isinstance(self.skip, (bool, np.bool_)):
            raise ValueError(f"skip must be true or false, got {self.skip!r}")

    @classmethod
    def from_dict(cls, settings):
        """Build a Spec from a dict that may hold other (training) keys too."""
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in settings.items() if k in known})

    def to_dict(self):
        return asdict(self)

    @property
    def param_shapes(self):
        """Per-model shapes of the parameters, in the tutorial's names and order."""
        H = int(self.hidden)
        shapes = {"w_xh": (1, H), "w_hh": (H, H), "b_h": (H,), "w_ho": (H, 1), "b_o": (1,)}
        if self.skip:
            shapes["w_xo"] = (1, 1)
        return shapes

    @property
    def noisy(self):
        """Names of the parameters that get weight noise (the weight matrices, not the biases)."""
        return tuple(n for n in self.param_shapes if n.startswith("w_"))


def init_params(spec, seeds):
    """Stacked initial parameters for one model per seed: dict name -> (K, *shape) float64.

    Model k draws w_xh, w_hh, w_ho (in that order) from ``default_rng([seed_k, 0])``; biases and
    w_xo start at zero, so the skip variant starts from the baseline's weights.
    """
    scales = {"w_xh": spec.init_scale_in, "w_hh": spec.init_scale_rec, "w_ho": spec.init_scale_out}
    per_model = []
    for seed in seeds:
        rng = np.random.default_rng([int(seed), 0])
        p = {}
        for name, shape in spec.param_shapes.items():
            if name in scales:
                p[name] = rng.normal(0.0, scales[name], shape)
            else:
                p[name] = np.zeros(shape)
        per_model.append(p)
    return {name: np.stack([p[name] for p in per_model]) for name in spec.param_shapes}


def _symbolic_params(spec, K, prefix=""):
    return {n: pt.tensor(prefix + n, shape=(K, *s), dtype="float64") for n, s in spec.param_shapes.items()}


MATVEC_DOT_FROM = 24  # hidden size from which a batched dot beats broadcast-multiply-and-sum


def _matvec(h, w):
    """Batched row-vector times matrix: (K, H) x (K, H, H') -> (K, H').

    Small H: broadcast, multiply and sum, which XLA fuses into one loop. From ``MATVEC_DOT_FROM``
    units on, a batched dot (XLA's dot emitter) is faster: 3.3x at H=60 on the CPU.
    """
    if w.type.shape[1] >= MATVEC_DOT_FROM:
        return pt.einsum("ki,kij->kj", h, w)
    return (h[:, :, None] * w).sum(axis=1)


def _step(spec, pre_t, h_prev, w_hh):
    return _activation(spec.nonlinearity, pre_t + _matvec(h_prev, w_hh))


def hidden_states(spec, x, p):
    """Teacher-forced hidden states over a (T, 1) series: (T, K, H), starting from h = 0."""
    K, H = p["w_hh"].type.shape[0], int(spec.hidden)
    pre = x[:, None, :] * p["w_xh"][None, :, 0, :] + p["b_h"]  # x_w_xh, outside the loop
    return pytensor.scan(lambda pre_t, h_prev, w_hh: _step(spec, pre_t, h_prev, w_hh),
                         sequences=[pre], outputs_info=[pt.zeros((K, H), dtype="float64")],
                         non_sequences=[p["w_hh"]], strict=True, return_updates=False)


def predictions(spec, x, h, p):
    """One-step predictions (T, K) from inputs (T, 1) and hidden states (T, K, H)."""
    y = (h * p["w_ho"][None, :, :, 0]).sum(axis=2) + p["b_o"][None, :, 0]
    if spec.skip:
        y = y + x * p["w_xo"][None, :, 0, 0]
    return y


def penalty(spec, p):
    """l2 sum p^2 + l1 sum |p| over every parameter, per model: (K,). Symbolic or NumPy params."""
    total = 0.0
    for v in p.values():
        flat = v.reshape((v.shape[0], -1))
        if spec.l2:
            total = total + spec.l2 * (flat**2).sum(axis=1)
        if spec.l1:
            total = total + spec.l1 * abs(flat).sum(axis=1)
    return total


def _bptt(spec, x, h, err, p):
    """Gradient of the mean squared error w.r.t. each parameter, by hand-written BPTT."""
    T = x.type.shape[0]
    K, H = p["w_hh"].type.shape[0], int(spec.hidden)
    g_y = pt.concatenate([2.0 * err / (T - 1), pt.zeros((1, K), dtype="float64")], axis=0)  # (T, K)
    g_h = g_y[:, :, None] * p["w_ho"][None, :, :, 0]  # (T, K, H)

    def back(g_h_t, h_t, dz_next, w_hh_t):
        return (g_h_t + _matvec(dz_next, w_hh_t)) * _activation_slope(spec.nonlinearity, h_t)

    dz = pytensor.scan(back, sequences=[g_h[::-1], h[::-1]],
                       outputs_info=[pt.zeros((K, H), dtype="float64")],
                       non_sequences=[p["w_hh"].transpose(0, 2, 1)],
                       strict=True, return_updates=False)[::-1]  # (T, K, H)
    h_prev = pt.concatenate([pt.zeros((1, K, H), dtype="float64"), h[:-1]], axis=0)
    grads = {
        "w_xh": (x[:, :, None] * dz).sum(axis=0)[:, None, :],
        "w_hh": pt.einsum("tki,tkj->kij", h_prev, dz),
        "b_h": dz.sum(axis=0),
        "w_ho": (h * g_y[:, :, None]).sum(axis=0)[:, :, None],
        "b_o": g_y.sum(axis=0)[:, None],
    }
    if spec.skip:
        grads["w_xo"] = (x * g_y).sum(axis=0)[:, None, None]
    return grads


GRADIENTS = ("bptt", "autodiff")


def _check_gradient(gradient):
    if gradient not in GRADIENTS:
        raise ValueError(f"gradient must be 'bptt' or 'autodiff', got {gradient!r}")
    return gradient


def loss_graph(spec, K, T, gradient="bptt"):
    """Symbolic inputs and outputs of the training loss for K stacked models on a (T, 1) series.

    Returns (inputs, outputs) with inputs [x, *params, *noise] (noise only when
    spec.weight_noise > 0, one per weight matrix) and outputs [mse (K,), *grads of the cost].
    The cost is mse + ``penalty(spec, params)``; ``Compiled`` adds the penalty in NumPy, row by
    row, so that a model's cost is bitwise the same however many models are stacked (a backend
    may sum a stacked penalty in another order, and BFGS's line search amplifies one ulp).
    """
    _check_gradient(gradient)
    x = pt.tensor("x", shape=(T, 1), dtype="float64")
    p = _symbolic_params(spec, K)
    noise = _symbolic_params(spec, K, "noise_") if spec.weight_noise > 0 else {}
    noise = {n: v for n, v in noise.items() if n in spec.noisy}
    p_eff = {n: v + noise[n] if n in noise else v for n, v in p.items()}
    h = hidden_states(spec, x, p_eff)
    err = predictions(spec, x, h, p_eff)[:-1] - x[1:]  # (T-1, K)
    mse = (err**2).mean(axis=0)
    if gradient == "autodiff":
        grads = dict(zip(p, pt.grad((mse + penalty(spec, p)).sum(), list(p.values()))))
    else:
        grads = _bptt(spec, x, h, err, p_eff)
        for n, v in p.items():
            if spec.l2:
                grads[n] = grads[n] + 2.0 * spec.l2 * v
            if spec.l1:
                grads[n] = grads[n] + spec.l1 * pt.sign(v)
    inputs = [x, *p.values(), *noise.values()]
    return inputs, [mse, *(grads[n] for n in p)]


def generation_graph(spec, K, length, train, horizon):
    """Teacher-forced predictions over a (length, 1) series and the closed-loop continuation.

    Outputs [y (length, K), continuation (horizon, K)]: y_t predicts x_{t+1}; the continuation
    starts with y_{train-1} (the prediction of x_train made after teacher-forcing x_0..x_{train-1})
    and feeds each output back as the next input.
    """
    x = pt.tensor("x", shape=(length, 1), dtype="float64")
    p = _symbolic_params(spec, K)
    h = hidden_states(spec, x, p)
    y = predictions(spec, x, h, p)

    def free_step(y_prev, h_prev, *weights):
        q = dict(zip(p, weights))
        pre = y_prev[:, None] * q["w_xh"][:, 0, :] + q["b_h"]
        h_t = _step(spec, pre, h_prev, q["w_hh"])
        y_t = (h_t * q["w_ho"][:, :, 0]).sum(axis=1) + q["b_o"][:, 0]
        if spec.skip:
            y_t = y_t + y_prev * q["w_xo"][:, 0, 0]
        return y_t, h_t

    y0, h0 = y[train - 1], h[train - 1]
    if horizon > 1:
        ys, _ = pytensor.scan(free_step, outputs_info=[y0, h0], non_sequences=list(p.values()),
                              n_steps=horizon - 1, strict=True, return_updates=False)
        continuation = pt.concatenate([y0[None], ys], axis=0)
    else:
        continuation = y0[None]
    return [x, *p.values()], [y, continuation]


class Compiled:
    """The two functions a training job needs, for one backend, K stacked models and fixed sizes.

    ``loss_and_grad(x, params, noise=None) -> (cost, mse, grads)`` on the (train, 1) segment and
    ``generate(x_full, params) -> (y, continuation)`` on the (length, 1) series take and return
    NumPy arrays / dicts. Each is compiled on first use.
    """

    def __init__(self, spec, K, train, length, horizon, backend="jax", gradient="bptt"):
        self.spec, self.K, self.names = spec, int(K), tuple(spec.param_shapes)
        self.train, self.length, self.horizon = int(train), int(length), int(horizon)
        self.backend, self.gradient = backends.check(backend), _check_gradient(gradient)
        self._loss = self._gen = None
        self._zero_noise = {n: np.zeros((self.K, *spec.param_shapes[n])) for n in spec.noisy} \
            if spec.weight_noise > 0 else {}

    def _function(self, graph):
        inputs, outputs = graph
        return pytensor.function(inputs, outputs, mode=backends.mode(self.backend), trust_input=True)

    def loss_and_grad(self, x, params, noise=None):
        if self._loss is None:
            self._loss = self._function(loss_graph(self.spec, self.K, self.train, self.gradient))
        args = [x, *(params[n] for n in self.names)]
        if self._zero_noise:
            noise = self._zero_noise if noise is None else noise
            args += [noise[n] for n in self._zero_noise]
        mse, *grads = self._loss(*args)
        mse = np.asarray(mse)
        return mse + penalty(self.spec, params), mse, {n: np.asarray(g) for n, g in zip(self.names, grads)}

    def generate(self, x_full, params):
        if self._gen is None:
            self._gen = self._function(generation_graph(self.spec, self.K, self.length, self.train, self.horizon))
        y, cont = self._gen(x_full, *(params[n] for n in self.names))
        return np.asarray(y), np.asarray(cont)
