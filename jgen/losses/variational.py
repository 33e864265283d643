"""The VAE's objective and its importance-sampled likelihood bound: pure functions.

Notation (Kingma & Welling 2014; Burda et al. 2016): encoder q(z|x) = N(mean, diag(exp(log_var))),
prior p(z) = N(0, I), decoder p(x|z). Every function returns one value per example (log
densities summed over latent dimensions or pixels); averaging is the caller's.
"""

import functools
import math

import jax
import jax.numpy as jnp

_LOG_2PI = math.log(2.0 * math.pi)


def _per_example_sum(x: jax.Array) -> jax.Array:
  return x.reshape(x.shape[0], -1).sum(axis=-1)


def gaussian_kl(*, mean: jax.Array, log_var: jax.Array) -> jax.Array:
  """KL(N(mean, diag(exp(log_var))) || N(0, I)), per example: (B, D) -> (B,)."""
  return 0.5 * (jnp.square(mean) + jnp.exp(log_var) - 1.0 - log_var).sum(axis=-1)


def log_normal(z: jax.Array, *, mean: jax.Array, log_var: jax.Array) -> jax.Array:
  """log N(z; mean, diag(exp(log_var))), summed over the last axis."""
  return -0.5 * (_LOG_2PI + log_var + jnp.square(z - mean) * jnp.exp(-log_var)).sum(axis=-1)


def log_standard_normal(z: jax.Array) -> jax.Array:
  """log N(z; 0, I), summed over the last axis."""
  return -0.5 * (_LOG_2PI + jnp.square(z)).sum(axis=-1)


def bernoulli_log_likelihood(*, logits: jax.Array, targets: jax.Array) -> jax.Array:
  """log Bernoulli(targets; sigmoid(logits)) summed over each example's pixels.

  For binary targets this is the exact log-probability; for targets in [0, 1] it is the
  negated binary cross-entropy.
  """
  return _per_example_sum(targets * logits - jax.nn.softplus(logits))


def bernoulli_log_likelihood_samples(*, logits: jax.Array, targets: jax.Array) -> jax.Array:
  """`bernoulli_log_likelihood` of K decodings of each example: (B, K, ...) logits against
  (B, ...) targets -> (B, K).

  The same sums, written as two matrix products (x . logits, and softplus(logits) . 1) so
  that XLA:CPU runs them on its matmul path instead of a slow fused reduction; this is most
  of the cost of a k = 5000 importance-sampled evaluation. Both ask for full float32
  precision (HIGHEST): a bound reported to many digits must not come from TF32 (GPUs) or
  bfloat16-pass (TPUs) products.
  """
  b, k = logits.shape[:2]
  flat = logits.reshape(b, k, -1).astype(jnp.float32)
  ones = jnp.ones(flat.shape[-1], jnp.float32)
  exact = functools.partial(jnp.einsum, precision=jax.lax.Precision.HIGHEST)
  return (exact('bkp,bp->bk', flat, targets.reshape(b, -1).astype(jnp.float32))
          - exact('bkp,p->bk', jax.nn.softplus(flat), ones))


def gaussian_log_likelihood(*, logits: jax.Array, targets: jax.Array,
                            log_scale: jax.Array) -> jax.Array:
  """log N(targets; sigmoid(logits), exp(log_scale)^2) summed over each example's pixels.

  `log_scale` (a scalar or per-pixel array) is the decoder's learned log standard deviation.
  """
  mean = jax.nn.sigmoid(logits)
  log_scale = jnp.broadcast_to(log_scale, mean.shape)
  return _per_example_sum(
      -0.5 * _LOG_2PI - log_scale - 0.5 * jnp.square((targets - mean) * jnp.exp(-log_scale)))


def reparameterize(eps: jax.Array, *, mean: jax.Array, log_var: jax.Array) -> jax.Array:
  """z = mean + std * eps: a sample of q(z|x) differentiable in its parameters."""
  return mean + jnp.exp(0.5 * log_var) * eps


def elbo(*, log_likelihood: jax.Array, kl: jax.Array) -> jax.Array:
  """The evidence lower bound log p(x|z) - KL(q(z|x) || p(z)), per example."""
  return log_likelihood - kl


def log_importance_weights(*, log_likelihood: jax.Array, z: jax.Array, mean: jax.Array,
                           log_var: jax.Array) -> jax.Array:
  """log w = log p(x|z) + log p(z) - log q(z|x) for samples z of q; shapes broadcast.

  Args:
    log_likelihood: log p(x|z), (..., K) for K samples.
    z: the samples, (..., K, D).
    mean, log_var: q's parameters, broadcastable against `z`.
  """
  return log_likelihood + log_standard_normal(z) - log_normal(z, mean=mean, log_var=log_var)


def iwae_bound(log_weights: jax.Array) -> jax.Array:
  """Burda et al.'s k-sample bound log (1/k) sum_i w_i, over the last axis (numerically safe).

  It is a lower bound on log p(x) that tightens as k grows; with k = 1 it is the ELBO.
  """
  k = log_weights.shape[-1]
  return jax.nn.logsumexp(log_weights, axis=-1) - math.log(k)
