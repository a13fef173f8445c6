"""A VAE with binary latents trained by direct evolutionary optimization (Drefs, Guiraud,
Panagiotou and Luecke 2023): no encoder; each example keeps a set of latent states that
an evolutionary algorithm improves, and the decoder follows the gradient of the
truncated free energy of those sets."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from tensorflow.python.ops.resource_variable_ops import ResourceVariable

from vaezoo._tf import keras, tf, tfd
from vaezoo.losses import positive_int
from vaezoo.models.base import BaseVAE, _ensure_memory

_BITS = 31  # state bits packed per int32 word: packed codes are >= 0, so -1 marks an empty slot
_WAYS = 4  # slots per hash set of the state store
_PRIME = 2_147_483_629  # the largest prime below 2**31: example hashes are sums modulo it


@keras.saving.register_keras_serializable(package="vaezoo")
class BernoulliPrior(keras.layers.Layer):
    """p(s) = prod_h Bernoulli(s_h; pi_h) over binary latents, pi_h = Phi(t_h) with a
    learned probit threshold t_h (Phi: the standard normal CDF).

    A prior sample is a threshold of standard-normal noise, ``s = 1[eps < t]``: the
    deterministic ``from_noise`` that exported sampler graphs use (two ops: Less, Cast).

    Args:
        latent_dim: H, the number of binary latents.
        probability: the initial pi_h, in (0, 1).

    Example:
        >>> prior = BernoulliPrior(3, probability=0.5)
        >>> prior.from_noise(np.array([[-1.0, 0.0, 2.0]], "float32")).numpy().tolist()
        [[1.0, 0.0, 0.0]]
        >>> round(float(prior.distribution().log_prob([[1.0, 0.0, 1.0]])[0]), 4)  # 3 log(1/2)
        -2.0794
    """

    def __init__(self, latent_dim: int, probability: float = 0.1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.latent_dim = positive_int("latent_dim", latent_dim)
        if not 0.0 < float(probability) < 1.0:
            raise ValueError(f"probability must be in (0, 1), got {probability!r}")
        self.probability = float(probability)
        self.build(None)

    def build(self, input_shape=None):
        start = float(tfd.Normal(0.0, 1.0).quantile(self.probability))
        self.threshold = self.add_weight(
            name="threshold", shape=(self.latent_dim,), initializer=keras.initializers.Constant(start)
        )
        self.built = True

    @property
    def noise_shape(self) -> tuple[int, ...]:
        """Shape (without batch) of the standard-normal noise that ``from_noise`` takes."""
        return (self.latent_dim,)

    def log_probabilities(self) -> tuple[tf.Tensor, tf.Tensor]:
        """(log pi_h, log(1 - pi_h)), each of shape (H,), computed stably."""
        t = tf.cast(self.threshold, tf.float32)  # float32 also inside a mixed-precision model's call
        standard = tfd.Normal(0.0, 1.0)
        return standard.log_cdf(t), standard.log_cdf(-t)

    def log_prob(self, s: tf.Tensor) -> tf.Tensor:
        """log p(s) of binary states ``s`` (..., H), summed over the latents."""
        log_on, log_off = self.log_probabilities()
        s = tf.cast(s, tf.float32)
        return tf.reduce_sum(s * log_on + (1.0 - s) * log_off, -1)

    def distribution(self) -> tfd.Distribution:
        """The prior as a ``tfd`` distribution with event shape ``[latent_dim]``."""
        log_on, log_off = self.log_probabilities()
        return tfd.Independent(tfd.Bernoulli(logits=log_on - log_off, dtype=tf.float32), 1)

    def from_noise(self, eps: tf.Tensor) -> tf.Tensor:
        """Binary states for standard-normal noise ``eps``: ``1[eps < t]``."""
        return tf.cast(tf.cast(eps, tf.float32) < tf.cast(self.threshold, tf.float32), tf.float32)

    def call(self, eps: tf.Tensor) -> tf.Tensor:
        return self.from_noise(eps)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "latent_dim": self.latent_dim, "probability": self.probability}


class _StateStore:
    """The truncated posteriors K^(n) of the examples seen in training, keyed by the
    example's content: a 4-way set-associative table of ``slots`` entries, each the
    packed states of one example and a tag of its hash.

    A plain object, so Keras does not track its variables: the states belong to a data
    set, not to the model, and are not saved with it.
    """

    def __init__(self, slots: int, num_states: int, words: int, data_size: int) -> None:
        _ensure_memory(4 * slots * (num_states * words + 1), f"the state store ({slots} examples x {num_states} states)")
        self.slots = slots
        self.sets = slots // _WAYS
        # ResourceVariable itself, not tf.Variable: a distribution strategy in scope would
        # mirror a tf.Variable, and mirrored variables take no scatter updates from
        # replicas. So every replica of a worker shares one store, and each worker has its own.
        with tf.init_scope():
            self.tags = ResourceVariable(tf.zeros([slots], tf.int64), trainable=False, name="state_tags")
            self.codes = ResourceVariable(tf.fill([slots, num_states, words], -1), trainable=False, name="state_codes")
        rng = np.random.default_rng(20230918)
        self.multipliers = rng.integers(1, _PRIME, size=(2, data_size), dtype=np.int64)

    def reset(self) -> None:
        self.tags.assign(tf.zeros_like(self.tags))
        self.codes.assign(tf.fill(tf.shape(self.codes), -1))

    def keys(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(set index, tag >= 1) of every example of ``x``, from its pixels quantized to 1/255."""
        flat = tf.reshape(tf.cast(x, tf.float32), [tf.shape(x)[0], -1])
        quantized = tf.cast(tf.clip_by_value(tf.round(flat * 255.0), -(2.0**16), 2.0**16), tf.int64)
        # |terms| < 2**47 and data of up to 2**16 values: the int64 sums cannot overflow.
        hashes = tf.math.floormod(tf.reduce_sum(quantized[:, None, :] * tf.constant(self.multipliers)[None], -1), _PRIME)
        return tf.math.floormod(hashes[:, 0], self.sets), hashes[:, 1] + 1

    def lookup(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """(slot, tag, hit, codes) for every example: its slot (its own, else an empty or
        evicted one of its set), whether the slot held its states, and those states."""
        index, tag = self.keys(x)
        slots = index[:, None] * _WAYS + tf.range(_WAYS, dtype=tf.int64)[None, :]
        tags = tf.gather(self.tags, slots)
        hit = tf.equal(tags, tag[:, None])
        empty = tf.equal(tags, 0)
        victim = tf.math.floormod(tag, _WAYS)
        way = tf.where(
            tf.reduce_any(hit, 1),
            tf.argmax(tf.cast(hit, tf.int32), 1),
            tf.where(tf.reduce_any(empty, 1), tf.argmax(tf.cast(empty, tf.int32), 1), victim),
        )
        slot = index * _WAYS + way
        return slot, tag, tf.reduce_any(hit, 1), tf.gather(self.codes, slot)

    def write(self, slot: tf.Tensor, tag: tf.Tensor, codes: tf.Tensor) -> None:
        self.tags.scatter_nd_update(slot[:, None], tag)
        self.codes.scatter_nd_update(slot[:, None], codes)


@keras.saving.register_keras_serializable(package="vaezoo")
class DEOBinaryVAE(BaseVAE):
    """A VAE with binary latents and no encoder, trained by direct evolutionary optimization.

    Drefs, Guiraud, Panagiotou and Luecke, "Direct Evolutionary Optimization of
    Variational Autoencoders with Binary Latents", ECML-PKDD 2022 (LNCS 2023).

    Generative model p(s) = prod_h Bernoulli(s_h; pi_h) (:class:`BernoulliPrior`) over
    H binary latents and p(x|s) from a decoder network. Each example x^(n) has a
    truncated posterior: a set K^(n) of at most S distinct states with
    q^(n)(s) = p(x^(n), s) / sum_{s' in K^(n)} p(x^(n), s') on K^(n). The objective is
    the truncated free energy, a lower bound of the log-likelihood,

        F = sum_n log sum_{s in K^(n)} p(x^(n), s)

    Each training step is an E-step, then an M-step, on the batch:

    - E-step (no gradient): from K^(n), ``generations`` times, select ``parents``
      states with probability proportional to their fitness log p(x, s) - 2 min(log p(x, s'), 0)
      (with replacement; the first generation's parents come from K^(n), later ones
      from the previous generation's children), and make ``children`` children of each
      by flipping one bit (a different bit per child); then keep the S states of
      highest log p(x, s) among K^(n) and all children, duplicates removed. K^(n) is
      part of the candidates, so no example's best log-joint ever goes down.
    - M-step: one optimizer step on the decoder and the prior's pi along the gradient
      of -F / batch.

    The sets K^(n) live in a state store keyed by the content of the example (a hash
    of its pixels quantized to 1/255, in a table of ``state_slots`` entries), so
    ``fit(x)`` with any input pipeline (arrays, ``tf.data``, ``vaezoo train``) finds
    them again every epoch; an example seen for the first time, or evicted by another
    of the same hash set, starts from S states drawn from the prior. Validation and
    ``evaluate`` run E-steps on their examples too (no M-step), as the authors do for
    test data. The store is not saved with the model; ``reset_states()`` empties it.
    Under ``tf.distribute`` the replicas of a worker share its store, and each worker
    keeps the states of the examples it sees.

    Without a store (``call``/``reconstruct``, ``encode``, ``free_energy``,
    ``importance_estimates``), the E-step starts from prior samples and runs
    ``inference_generations`` generations with a fixed seed: a deterministic
    function of the weights. ``importance_estimates`` samples a mixture centred on
    that K(x) (a state of K drawn by q, each bit flipped with probability 1/H), so
    its log-likelihood estimate tends to log p(x) as the number of samples grows.

    Metrics: ``loss`` = -F / N; ``elbo`` = F / N; ``reconstruction`` = -E_q[log p(x|s)]
    and ``kl`` = KL(q(s) || p(s)) under the truncated posteriors (so
    elbo = -(reconstruction + kl)); ``new_states``: states per example that the E-step
    put into K^(n).

    There is no encoder network: ``encoder`` is the identity (the E-step searches on x
    itself), so export has ``decoder`` (states ``z`` -> likelihood parameters and
    ``mean``) and ``sampler`` (standard-normal ``eps`` -> z = 1[eps < t] -> image) parts only.

    Args:
        num_states: S, states per truncated posterior.
        parents: parents selected per generation.
        children: children per parent (each flips a different bit), <= H.
        generations: generations per E-step of training.
        inference_generations: generations of the E-step from prior samples that
            ``call``, ``encode``, ``free_energy`` and ``importance_estimates`` run.
        state_slots: capacity of the state store (examples), a multiple of 4; make it a
            few times the number of training examples.
        **kwargs: the arguments of :class:`vaezoo.models.base.BaseVAE` but ``posterior``
            (``latent_dim`` is H; the hidden units are the decoder's, last to first layer
            reversed as in BaseVAE; ``prior`` None is ``BernoulliPrior(H, 1 / (H + 1))``).

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import DEOBinaryVAE
        >>> x = (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.5).astype("float32")
        >>> model = DEOBinaryVAE(latent_dim=8, hidden_units=(16,), num_states=4, state_slots=256)
        >>> model.compile(optimizer="adam")
        >>> sorted(model.fit(x, epochs=2, batch_size=32, verbose=0).history)
        ['elbo', 'kl', 'loss', 'new_states', 'reconstruction']
        >>> model.sample(2).shape, model.reconstruct(x[:2]).shape
        ((2, 28, 28, 1), (2, 28, 28, 1))
    """

    metric_names = ("loss", "elbo", "reconstruction", "kl", "new_states")

    def __init__(
        self,
        num_states: int = 32,
        parents: int = 4,
        children: int = 4,
        generations: int = 2,
        inference_generations: int = 20,
        state_slots: int = 2**16,
        **kwargs: Any,
    ) -> None:
        self.num_states = positive_int("num_states", num_states)
        self.parents = positive_int("parents", parents)
        self.children = positive_int("children", children)
        self.generations = positive_int("generations", generations)
        self.inference_generations = positive_int("inference_generations", inference_generations)
        self.state_slots = positive_int("state_slots", state_slots)
        if self.state_slots % _WAYS:
            raise ValueError(f"state_slots must be a multiple of {_WAYS}, got {state_slots!r}")
        super().__init__(posterior=None, **kwargs)
        if self.children > self.latent_dim:
            raise ValueError(
                f"children must be <= latent_dim ({self.latent_dim}): each flips a different bit; got {children!r}"
            )
        self._words = -(-self.latent_dim // _BITS)
        self._store = _StateStore(self.state_slots, self.num_states, self._words, math.prod(self.data_shape))

    def _make_posterior(self, posterior: str | None) -> None:
        return None  # no encoder: the E-step searches the states of x itself

    def _make_prior(self, prior):
        if prior is None:
            prior = BernoulliPrior(self.latent_dim, probability=1.0 / (self.latent_dim + 1), name="prior", dtype="float32")
        return super()._make_prior(prior)

    def get_config(self) -> dict[str, Any]:
        config = {k: v for k, v in super().get_config().items() if k != "posterior"}
        return {
            **config,
            "num_states": self.num_states,
            "parents": self.parents,
            "children": self.children,
            "generations": self.generations,
            "inference_generations": self.inference_generations,
            "state_slots": self.state_slots,
        }

    def reset_states(self) -> None:
        """Forget every stored truncated posterior (the next epoch starts from the prior)."""
        self._store.reset()

    # ------------------------------------------------------------------ states

    def _pack(self, states: tf.Tensor) -> tf.Tensor:
        """Binary states (..., H) as int32 codes (..., words), 31 bits per word."""
        pad = self._words * _BITS - self.latent_dim
        bits = tf.cast(tf.pad(states, [[0, 0]] * (len(states.shape) - 1) + [[0, pad]]), tf.int32)
        bits = tf.reshape(bits, tf.concat([tf.shape(states)[:-1], [self._words, _BITS]], 0))
        return tf.reduce_sum(bits * tf.bitwise.left_shift(1, tf.range(_BITS)), -1)

    def _unpack_states(self, codes: tf.Tensor) -> tf.Tensor:
        bits = tf.bitwise.bitwise_and(tf.bitwise.right_shift(tf.maximum(codes, 0)[..., None], tf.range(_BITS)), 1)
        bits = tf.reshape(bits, tf.concat([tf.shape(codes)[:-1], [self._words * _BITS]], 0))
        return tf.cast(bits[..., : self.latent_dim], tf.float32)

    def log_joint_terms(self, x, states, training: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
        """(log p(x|s), log p(s)) for every example of ``x`` (batch, ...) and each of its
        states ``states`` (batch, M, H); each of shape (batch, M)."""
        x = self._as_float(x)
        batch, count = tf.shape(states)[0], tf.shape(states)[1]
        params = self.decoder_params(tf.reshape(states, [-1, self.latent_dim]), training)
        targets = tf.repeat(self.likelihood.prepare_targets(x), count, axis=0)  # row b * M + m
        log_px = tf.reshape(self.likelihood.distribution(params).log_prob(targets), [batch, count])
        return log_px, self.prior.log_prob(states)

    def log_joint(self, x, states) -> tf.Tensor:
        """log p(x, s) for every example of ``x`` and each of its ``states`` (batch, M, H)."""
        log_px, log_ps = self.log_joint_terms(x, tf.convert_to_tensor(states, tf.float32))
        return log_px + log_ps

    def _prior_states(self, batch, seed) -> tuple[tf.Tensor, tf.Tensor]:
        eps = tf.random.stateless_normal([batch, self.num_states, self.latent_dim], seed)
        states = self.prior.from_noise(eps)
        return states, self._first_occurrences(self._pack(states), tf.ones([batch, self.num_states], tf.bool))

    @staticmethod
    def _first_occurrences(codes, valid) -> tf.Tensor:
        """Which states (batch, M) are valid and differ from every valid earlier one."""
        same = tf.reduce_all(tf.equal(codes[:, :, None, :], codes[:, None, :, :]), -1)  # (batch, M, M)
        count = tf.shape(codes)[1]
        earlier = tf.range(count)[None, :] < tf.range(count)[:, None]  # [i, j]: j < i
        duplicate = tf.reduce_any(same & earlier[None] & valid[:, None, :], -1)
        return valid & tf.logical_not(duplicate)

    def _select_parents(self, states, log_joints, valid, seed) -> tf.Tensor:
        """Fitness-proportional selection with replacement; fitness log p - 2 min(log p, 0)."""
        low = tf.reduce_min(tf.where(valid, log_joints, np.inf), -1, keepdims=True)
        fitness = log_joints - 2.0 * tf.minimum(low, 0.0)
        logits = tf.where(valid, tf.math.log(tf.maximum(fitness, 1e-30)), -np.inf)
        index = tf.random.stateless_categorical(logits, self.parents, seed, dtype=tf.int32)
        return tf.gather(states, index, batch_dims=1)

    def _mutate(self, parents, seed) -> tf.Tensor:
        """``children`` copies of every parent, each with a different bit flipped."""
        noise = tf.random.stateless_uniform(tf.shape(parents), seed)
        flips = tf.one_hot(tf.math.top_k(noise, self.children).indices, self.latent_dim)  # (B, P, C, H)
        children = tf.abs(parents[:, :, None, :] - flips)
        return tf.reshape(children, [tf.shape(parents)[0], self.parents * self.children, self.latent_dim])

    def evolve(self, x, states, log_joints, valid, seed, generations: int | None = None, training: bool = False):
        """One E-step: ``generations`` generations of selection and bit-flip mutation from
        the states (batch, S, H), then the S best distinct states of the old and new ones.

        Returns ``(states, log_joints, valid)``; invalid (empty) places have log-joint -inf.
        Elitist: every example's best log-joint is at least its best before.
        """
        seeds = tf.random.experimental.stateless_split(tf.convert_to_tensor(seed, tf.int32), 2 * (generations or self.generations))
        candidates, scores, usable = [states], [tf.where(valid, log_joints, -np.inf)], [valid]
        pool, pool_scores, pool_valid = states, log_joints, valid
        for g in range(generations or self.generations):
            parents = self._select_parents(pool, pool_scores, pool_valid, seeds[2 * g])
            pool = self._mutate(parents, seeds[2 * g + 1])
            pool_scores = tf.add_n(self.log_joint_terms(x, pool, training))
            pool_valid = tf.ones(tf.shape(pool_scores), tf.bool)
            candidates.append(pool)
            scores.append(pool_scores)
            usable.append(pool_valid)
        candidates = tf.concat(candidates, 1)
        keep = self._first_occurrences(self._pack(candidates), tf.concat(usable, 1))
        best = tf.math.top_k(tf.where(keep, tf.concat(scores, 1), -np.inf), self.num_states)
        new_states = tf.gather(candidates, best.indices, batch_dims=1)
        return new_states, best.values, tf.math.is_finite(best.values)

    def e_step(self, x, generations: int | None = None, seed: int | tf.Tensor = 0):
        """The E-step from prior samples (no store): S states drawn from p(s), then
        ``generations`` (default ``inference_generations``) generations; returns
        ``(states, log_joints, valid)`` as :meth:`evolve` does."""
        x = self._as_float(x)
        seed = tf.convert_to_tensor([seed, 0] if isinstance(seed, (int, np.integer)) else seed, tf.int32)
        init, grow = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        states, valid = self._prior_states(tf.shape(x)[0], init)
        log_joints = tf.where(valid, self.log_joint(x, states), -np.inf)
        return self.evolve(x, states, log_joints, valid, grow, generations or self.inference_generations)

    # ------------------------------------------------------------------ the model

    def encode(self, x, training: bool = False) -> tfd.Distribution:
        """The truncated posterior q(s|x) of an E-step from prior samples: a mixture of
        point masses on its states, weighted by their joint probability."""
        states, log_joints, _ = self.e_step(x)
        return tfd.MixtureSameFamily(
            tfd.Categorical(logits=log_joints), tfd.Independent(tfd.Deterministic(states), 1)
        )

    def call(self, x, training: bool = False):
        """The likelihood mean at the most probable state found by an E-step from prior samples."""
        states, log_joints, _ = self.e_step(x)
        best = tf.gather(states, tf.argmax(log_joints, -1, output_type=tf.int32), batch_dims=1)
        return self.likelihood.mean(self.decoder_params(best, training))

    def free_energy(self, x, generations: int | None = None, batch_size: int = 100, seed: int = 0) -> np.ndarray:
        """Per-example truncated free energy log sum_{s in K} p(x, s) (nats) of an E-step
        from prior samples: a lower bound of log p(x) that grows with ``generations``.

        Example:
            >>> import numpy as np
            >>> from vaezoo.models import DEOBinaryVAE
            >>> model = DEOBinaryVAE(latent_dim=4, hidden_units=(8,), num_states=4, state_slots=16)
            >>> model.free_energy(np.zeros((3, 28, 28, 1)), generations=2).shape
            (3,)
        """
        x = self.check_data(x)
        out = []
        for start in range(0, len(x), int(batch_size)):
            _, log_joints, _ = self.e_step(tf.constant(x[start : start + int(batch_size)]), generations, seed)
            out.append(tf.reduce_logsumexp(log_joints, -1).numpy())
        return np.concatenate(out)

    def _truncated_terms(self, x, states, valid, training) -> dict[str, tf.Tensor]:
        """The batch's terms under the truncated posteriors of ``states``."""
        log_px, log_ps = self.log_joint_terms(x, states, training)
        log_joints = tf.where(valid, log_px + log_ps, -np.inf)
        free_energy = tf.reduce_logsumexp(log_joints, -1)
        q = tf.exp(log_joints - free_energy[:, None])
        log_q = tf.where(valid, log_joints - free_energy[:, None], 0.0)
        reconstruction = -tf.reduce_sum(tf.where(valid, q * log_px, 0.0), -1)
        kl = tf.reduce_sum(tf.where(valid, q * (log_q - log_ps), 0.0), -1)
        elbo = tf.reduce_mean(free_energy)
        return {
            "loss": -elbo,
            "elbo": elbo,
            "reconstruction": tf.reduce_mean(reconstruction),
            "kl": tf.reduce_mean(kl),
        }

    def _stored_e_step(self, x, training) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """E-step on the stored K^(n) (prior samples for unseen examples); writes back."""
        store = self._store
        slot, tag, hit, codes = store.lookup(x)
        batch = tf.shape(x)[0]
        fresh, fresh_valid = self._prior_states(batch, self._next_seed())
        states = tf.where(hit[:, None, None], self._unpack_states(codes), fresh)
        valid = tf.where(hit[:, None], codes[..., 0] >= 0, fresh_valid)
        log_joints = tf.where(valid, tf.add_n(self.log_joint_terms(x, states, training)), -np.inf)
        new_states, _, new_valid = self.evolve(x, states, log_joints, valid, self._next_seed())
        new_codes = self._pack(new_states)
        old_codes = tf.where(valid[..., None], self._pack(states), -1)
        kept = tf.reduce_any(tf.reduce_all(tf.equal(new_codes[:, :, None], old_codes[:, None]), -1), -1)
        new_count = tf.reduce_mean(tf.reduce_sum(tf.cast(new_valid & tf.logical_not(kept), tf.float32), -1))
        store.write(slot, tag, tf.where(new_valid[..., None], new_codes, -1))
        return tf.stop_gradient(new_states), new_valid, new_count

    def train_step(self, data):
        x = self._unpack(data)
        states, valid, new_count = self._stored_e_step(x, training=False)
        with tf.GradientTape() as tape:
            terms = self._with_regularisers(self._truncated_terms(x, states, valid, training=True))
        terms["new_states"] = new_count
        return self._apply_updates(x, terms, [(tape, "loss", self.optimizer, self.optimizer_variables())])

    def test_step(self, data):
        x = self._unpack(data)
        states, valid, new_count = self._stored_e_step(x, training=False)
        terms = self._with_regularisers(self._truncated_terms(x, states, valid, training=False))
        return self._log({**terms, "new_states": new_count}, x)

    def objective(self, x, training=False):
        states, _, valid = self.e_step(x)
        return {**self._truncated_terms(x, states, valid, training), "new_states": tf.constant(0.0)}

    # ------------------------------------------------------------------ estimates

    def _log_weights(self, x, seed, num_samples):
        """log w = log p(x, s) - log r(s), s ~ r: a state of K(x) drawn by q, each bit then
        flipped with probability 1/H; K(x) from the E-step with the estimate's base seed."""
        states, log_joints, _ = self.e_step(x, seed=tf.stack([seed[0], 7]))
        draw, flip = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        h = float(self.latent_dim)
        centre = tf.random.stateless_categorical(log_joints, num_samples, draw, dtype=tf.int32)  # (B, k)
        centres = tf.gather(states, centre, batch_dims=1)  # (B, k, H)
        flips = tf.cast(tf.random.stateless_uniform(tf.shape(centres), flip) < 1.0 / h, tf.float32)
        samples = tf.abs(centres - flips)
        distance = tf.einsum("bkh,bsh->bks", samples, 1.0 - states) + tf.einsum("bkh,bsh->bks", 1.0 - samples, states)
        log_q = tf.nn.log_softmax(log_joints)[:, None, :]
        log_kernel = distance * math.log(1.0 / h) + (h - distance) * math.log1p(-1.0 / h)
        log_r = tf.reduce_logsumexp(log_q + log_kernel, -1)
        log_w = self.log_joint(x, samples) - log_r  # (B, k)
        return tf.transpose(log_w)

    def _chunk_size(self, batch_size: int) -> int:
        per_sample = 4 * math.prod(self.likelihood.network_output_shape) + 2 * sum(self.hidden_units) + 8 * self.num_states
        return max(1, 2**26 // (batch_size * per_sample))

    # ------------------------------------------------------------------ export

    def export_parts(self) -> dict[str, Any]:
        """``decoder``: ``z`` (batch, H), binary states s -> the likelihood's parameters and
        ``mean``; ``sampler``: standard-normal ``eps`` -> ``z = 1[eps < t]`` (the prior's
        thresholds) -> the decoder's outputs and ``z``. (``z`` as in every vaezoo export,
        so ``runtime.EdgeModel.decode`` and ``sample`` apply.) No encoder: see the class docstring."""
        from vaezoo.export.manifest import TensorInfo
        from vaezoo.export.parts import ExportPart, _noise

        z_info = TensorInfo("z", (None, self.latent_dim), "float32")
        eps_info = TensorInfo("eps", (None, self.latent_dim), "float32")

        def decoder(z):
            params = dict(self.decoder_params(z))
            return {**params, "mean": self.likelihood.mean(params)}

        def sampler(eps):
            z = self.prior.from_noise(eps)
            return {"z": z, **decoder(z)}

        def decoder_feeds(x):
            states, log_joints, _ = self.e_step(tf.constant(x, tf.float32), generations=2)
            best = tf.gather(states, tf.argmax(log_joints, -1, output_type=tf.int32), batch_dims=1)
            return {"z": np.asarray(best, np.float32)}

        return {
            "decoder": ExportPart("decoder", (z_info,), decoder, decoder_feeds),
            "sampler": ExportPart("sampler", (eps_info,), sampler, lambda x: {"eps": _noise(len(x), (self.latent_dim,), 2)}),
        }
