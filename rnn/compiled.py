"""The compiled functions a training job needs, for one backend, K stacked models and fixed sizes.

Every function takes and returns NumPy arrays (stacked parameters: dict name -> (K, ...)) and is
compiled on first use, once per set of static sizes (JAX needs static shapes).
"""

import numpy as np

from . import backends, generation, model, rollout

pytensor, pt = backends.import_pytensor()


class Compiled:
    """``loss_and_grad`` on the (train, 1) segment, ``generate`` on the (length, 1) series (the
    tutorial's continuation of ``horizon`` steps), ``generate_from`` start points, ``states``."""

    def __init__(self, spec, K, train, length, horizon, backend="jax", gradient="bptt"):
        self.spec, self.K, self.names = spec, int(K), tuple(spec.param_shapes)
        self.train, self.length, self.horizon = int(train), int(length), int(horizon)
        self.backend, self.gradient = backends.check(backend), model.check_gradient(gradient)
        self._functions = {}
        self._zero_noise = {n: np.zeros(s) for n, s in model.noise_shapes(spec, self.K, self.train).items()}
        if spec.rollout_steps > 1:
            rollout.check_rollout(self.train, spec.rollout_steps, spec.washout)

    def _compiled(self, key, graph):
        """The function for ``key``, built from ``graph()`` -> (inputs, outputs) on first use."""
        if key not in self._functions:
            inputs, outputs = graph()
            self._functions[key] = pytensor.function(inputs, outputs, mode=backends.mode(self.backend),
                                                     trust_input=True)
        return self._functions[key]

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
        noise = self._zero_noise if noise is None else noise
        mse, *grads = fn(x, *self._params(params), *(noise[n] for n in self._zero_noise))
        mse = np.asarray(mse)
        return mse + model.penalty(self.spec, params), mse, {n: np.asarray(g) for n, g in zip(self.names, grads)}

    def generate(self, x_full, params):
        """(y (length, K) teacher-forced predictions, continuation (horizon, K) after the training segment)."""
        fn = self._compiled("generate", lambda: generation.continuation_graph(
            self.spec, self.K, self.length, self.train, self.horizon))
        y, cont = fn(x_full, *self._params(params))
        return np.asarray(y), np.asarray(cont)

    def generate_from(self, x_warmup, params, horizon):
        """Continuations (horizon, S, K) after the warm-ups x_warmup (warmup, S) (``rnn.generation``)."""
        warmup, n_starts = x_warmup.shape
        fn = self._compiled(("starts", warmup, n_starts, int(horizon)), lambda: generation.starts_graph(
            self.spec, self.K, n_starts, warmup, int(horizon)))
        return np.asarray(fn(np.ascontiguousarray(x_warmup, dtype=np.float64), *self._params(params))[0])

    def states(self, u, params):
        """Teacher-forced hidden states (T, K, H) over inputs u (T, 1) or (T, K)."""
        names = ("w_xh", "w_hh", "b_h")  # the read-out does not enter the states

        def graph():
            u_sym = pt.tensor("u", shape=u.shape, dtype="float64")
            p = {n: v for n, v in model.symbolic_params(self.spec, self.K).items() if n in names}
            return [u_sym, *p.values()], [model.hidden_states(self.spec, u_sym, p)]

        fn = self._compiled(("states", u.shape), graph)
        return np.asarray(fn(np.ascontiguousarray(u, dtype=np.float64), *(params[n] for n in names))[0])
