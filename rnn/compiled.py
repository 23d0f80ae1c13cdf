"""The compiled functions a training job needs, for one backend, K stacked models and fixed sizes.

Every function takes and returns NumPy arrays (stacked parameters: dict name -> (K, ...)) and is
compiled on first use, once per set of static sizes (JAX needs static shapes). On the JAX backend a
program built before, by any process, is loaded from ``rnn.programs``' cache instead.
"""

import numpy as np

from . import backends, generation, model, programs, rollout
from .quasi_newton import BLOWUP

pytensor, pt = backends.import_pytensor()


def _loss_terms(spec, x, p, noise, steps, gradient, coefficients):
    if steps == 1:
        return model.loss_terms(spec, x, p, noise, gradient, coefficients)
    return rollout.loss_terms(spec, x, p, noise, steps, gradient, coefficients)


def sgd_graph(spec, K, T, n_epochs, steps, gradient="bptt", blowup=BLOWUP):
    """``n_epochs`` of full-batch gradient descent in one graph: a ``scan`` over epochs whose body is
    the loss and its gradient (their own scans inside) and the update p <- p - lr * grad.

    Inputs [x (T, 1), *params, lr, limit (K,), frozen (K,) bool, active (n,) bool, first (n,) bool,
    *noise (n, ...), l1, l2]; outputs [*params, limit, frozen (n, K), cost (n, K)]. As ``rnn.train.sgd``
    does epoch by epoch: at a ``first`` epoch the limit becomes ``blowup`` times its cost; a model
    whose cost is NaN, inf or above the limit, or whose gradient is not finite, is frozen from that
    epoch on; ``cost`` is each epoch's cost before its update. Inactive epochs change nothing (one
    compiled length serves a shorter last chunk).
    """
    x = pt.tensor("x", shape=(T, 1), dtype="float64")
    p0 = model.symbolic_params(spec, K)
    names = list(p0)
    noise_seq = {n: pt.tensor(f"noise_seq_{n}", shape=(n_epochs, *v.type.shape), dtype="float64")
                 for n, v in model.symbolic_noise(spec, K, T).items()}
    lr = pt.scalar("lr", dtype="float64")
    limit0 = pt.tensor("limit", shape=(K,), dtype="float64")
    frozen0 = pt.tensor("frozen", shape=(K,), dtype="bool")
    active, first = (pt.tensor(name, shape=(n_epochs,), dtype="bool") for name in ("active", "first"))
    coefficients = model.symbolic_penalty()

    def epoch(active_t, first_t, *args):
        noise = dict(zip(noise_seq, args[:len(noise_seq)]))
        p = dict(zip(names, args[len(noise_seq):len(noise_seq) + len(names)]))
        limit, frozen = args[-2:]
        mse, grads = _loss_terms(spec, x, p, noise, steps, gradient, coefficients)
        cost = mse + model.penalty(spec, p, coefficients)
        limit = pt.switch(first_t, blowup * pt.switch(pt.isfinite(cost), cost, np.inf), limit)
        finite = pt.all(pt.stack([pt.all(pt.isfinite(grads[n].reshape((K, -1))), axis=1) for n in names]), axis=0)
        frozen = frozen | (active_t & (~(cost <= limit) | ~finite))
        keep = frozen | ~active_t
        stepped = [pt.switch(keep.reshape((K,) + (1,) * (p[n].ndim - 1)), p[n], p[n] - lr * grads[n]) for n in names]
        return [*stepped, limit, frozen, cost]

    out = pytensor.scan(epoch, sequences=[active, first, *noise_seq.values()],
                        outputs_info=[*p0.values(), limit0, frozen0, None], return_updates=False)
    k = len(names)
    return ([x, *p0.values(), lr, limit0, frozen0, active, first, *noise_seq.values(), *coefficients.values()],
            [*(o[-1] for o in out[:k]), out[k][-1], out[k + 1], out[k + 2]])


class Compiled:
    """``loss_and_grad`` on the (train, 1) segment, ``generate`` on the (length, 1) series (the
    tutorial's continuation of ``horizon`` steps), ``generate_from`` start points, ``states``."""

    def __init__(self, spec, K, train, length, horizon, backend="jax", gradient="bptt"):
        self.spec, self.K, self.names = spec, int(K), tuple(spec.param_shapes)
        self.train, self.length, self.horizon = int(train), int(length), int(horizon)
        self.backend, self.gradient = backends.check(backend), model.check_gradient(gradient)
        self._functions = {}
        self._zero_noise = {n: np.zeros(s) for n, s in model.noise_shapes(spec, self.K, self.train).items()}
        self._coefficients = [np.array(getattr(spec, name), dtype=np.float64) for name in model.PENALTIES]  # l1, l2
        if spec.rollout_steps > 1:
            rollout.check_rollout(self.train, spec.rollout_steps, spec.washout)

    def _compiled(self, key, graph, training=True):
        """The function for ``key``, built from ``graph()`` -> (inputs, outputs) on first use, or loaded
        from the program cache, whose key holds everything ``graph`` reads: ``key``, this object's sizes and
        the spec's fields, all of them for a ``training`` graph (the loss, SGD), else the architecture only
        (``programs.architecture_fields``: a graph that runs a trained network)."""
        if key not in self._functions:
            folder = programs.directory() if self.backend == "jax" else None
            name = folder and self._program_name(key, training)
            function = programs.load(folder, name) if folder else None
            if function is None and folder:
                with programs.building(folder, name):  # another job may be building it: wait, then load it
                    function = programs.load(folder, name) or self._build(graph, folder, name)
            elif function is None:
                function = self._build(graph)
            self._functions[key] = function
        return self._functions[key]

    def _program_name(self, key, training=True):
        """The program cache's name for graph ``key`` (``_compiled``)."""
        fields = programs.training_fields(self.spec) if training else programs.architecture_fields(self.spec)
        return programs.key({"graph": key, "spec": fields, "K": self.K, "train": self.train, "length": self.length,
                             "horizon": self.horizon, "gradient": self.gradient})

    def _build(self, graph, folder=None, name=None):
        """PyTensor's function of ``graph()``; with a cache ``folder``, the program stored under ``name`` from
        now on runs instead (the same numbers)."""
        inputs, outputs = graph()
        function = pytensor.function(inputs, outputs, mode=backends.mode(self.backend), trust_input=True)
        return (programs.save(folder, name, function) or function) if folder else function

    def _params(self, params):
        return [params[n] for n in self.names]

    def loss_and_grad(self, x, params, noise=None, steps=None):
        """(cost (K,), mse (K,), grads) of the training loss: the one-step loss, or the closed-loop
        loss of ``steps`` (default ``spec.rollout_steps``) steps. ``noise``: the weight and input
        noise of ``rnn.model.symbolic_noise`` (zero when None)."""
        steps = int(self.spec.rollout_steps if steps is None else steps)
        if steps == 1:
            fn = self._compiled(("loss", 1), lambda: model.loss_graph(self.spec, self.K, self.train, self.gradient))
        else:
            fn = self._compiled(("loss", steps), lambda: rollout.loss_graph(self.spec, self.K, self.train, steps, self.gradient))
        noise = {} if noise is None else noise
        mse, *grads = fn(x, *self._params(params), *(noise.get(n, zero) for n, zero in self._zero_noise.items()),
                         *self._coefficients)
        mse = np.asarray(mse)
        return mse + model.penalty(self.spec, params), mse, {n: np.asarray(g) for n, g in zip(self.names, grads)}

    def sgd_epochs(self, x, params, lr, limit, frozen, active, first, noise=None, steps=None):
        """Up to len(active) epochs of SGD in one call (``sgd_graph``; one compile per chunk length).

        ``noise``: {name: (n, ...)}, one draw per epoch (zeros where None or left out). Returns (params, limit (K,),
        frozen (n, K) after each epoch, cost (n, K) before each update)."""
        steps = int(self.spec.rollout_steps if steps is None else steps)
        n = len(active)
        if self.backend == "c":
            return self._sgd_epochs_in_python(x, params, lr, limit, frozen, active, first, noise, steps)
        fn = self._compiled(("sgd", steps, n), lambda: sgd_graph(self.spec, self.K, self.train, n, steps,
                                                                 self.gradient))
        noise = {} if noise is None else noise
        seq = [noise[name] if name in noise else np.zeros((n, *z.shape)) for name, z in self._zero_noise.items()]
        *new, limit, frozen, cost = fn(x, *self._params(params), np.float64(lr), np.asarray(limit, dtype=np.float64),
                                       np.asarray(frozen, dtype=bool), np.asarray(active, dtype=bool),
                                       np.asarray(first, dtype=bool), *seq, *self._coefficients)
        return ({n: np.asarray(v) for n, v in zip(self.names, new)}, np.asarray(limit), np.asarray(frozen),
                np.asarray(cost))

    def _sgd_epochs_in_python(self, x, params, lr, limit, frozen, active, first, noise, steps):
        """``sgd_epochs`` epoch by epoch through ``loss_and_grad``: PyTensor 3.0's C backend fails to run
        the epochs' nested scan ("DimShuffle: Input has less dimensions than expected")."""
        limit, frozen = np.array(limit, dtype=float), np.array(frozen, dtype=bool)
        frozen_seq, costs = [], []
        for t in range(len(active)):
            step_noise = None if noise is None else {n: v[t] for n, v in noise.items()}
            cost, _, grads = self.loss_and_grad(x, params, step_noise, steps)
            if first[t]:
                limit = BLOWUP * np.where(np.isfinite(cost), cost, np.inf)
            if active[t]:
                finite = np.all([np.isfinite(g).reshape(self.K, -1).all(axis=1) for g in grads.values()], axis=0)
                frozen = frozen | ~(cost <= limit) | ~finite
                params = {n: np.where(frozen.reshape((-1,) + (1,) * (v.ndim - 1)), v, v - lr * grads[n])
                          for n, v in params.items()}
            frozen_seq.append(frozen.copy())
            costs.append(cost)
        return params, limit, np.array(frozen_seq), np.array(costs)

    def generate(self, x_full, params):
        """(y (length, K) teacher-forced predictions, continuation (horizon, K) after the training segment)."""
        fn = self._compiled("generate", lambda: generation.continuation_graph(
            self.spec, self.K, self.length, self.train, self.horizon), training=False)
        y, cont = fn(x_full, *self._params(params))
        return np.asarray(y), np.asarray(cont)

    def one_step(self, x_seen, params):
        """Teacher-forced predictions (n, K) over the first n samples x_seen (n, 1): the learning curves'
        monitor, cheaper than ``generate`` (no continuation, only the samples the curves score)."""
        fn = self._compiled(("one_step", len(x_seen)), lambda: generation.one_step_graph(self.spec, self.K, len(x_seen)),
                            training=False)
        return np.asarray(fn(x_seen, *self._params(params))[0])

    def generate_from(self, x_warmup, params, horizon):
        """Continuations (horizon, S, K) after the warm-ups x_warmup (warmup, S) (``rnn.generation``)."""
        warmup, n_starts = x_warmup.shape
        fn = self._compiled(("starts", warmup, n_starts, int(horizon)), lambda: generation.starts_graph(
            self.spec, self.K, n_starts, warmup, int(horizon)), training=False)
        return np.asarray(fn(np.ascontiguousarray(x_warmup, dtype=np.float64), *self._params(params))[0])

    def states(self, u, params):
        """Teacher-forced hidden states (T, K, H) over inputs u (T, 1) or (T, K)."""
        names = ("w_xh", "w_hh", "b_h")  # the read-out does not enter the states

        def graph():
            u_sym = pt.tensor("u", shape=u.shape, dtype="float64")
            p = {n: v for n, v in model.symbolic_params(self.spec, self.K).items() if n in names}
            return [u_sym, *p.values()], [model.hidden_states(self.spec, u_sym, p)]

        fn = self._compiled(("states", u.shape), graph, training=False)
        return np.asarray(fn(np.ascontiguousarray(u, dtype=np.float64), *(params[n] for n in names))[0])
