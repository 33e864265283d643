"""Reconstruction losses: pure functions of decoder logits and target images.

Every decoder in jgen outputs logits; the image it stands for is `sigmoid(logits)`, in
[0, 1] like the targets. Each loss returns one value per example, summed over all pixels
(the convention of Hinton & Salakhutdinov's squared error per image), so that a masked
mean over the batch is left to the caller.
"""

import jax
import jax.numpy as jnp
import optax


def _per_example_sum(x: jax.Array) -> jax.Array:
  return x.reshape(x.shape[0], -1).sum(axis=-1)


def mse(*, logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Squared error of sigmoid(logits) against targets, summed per example."""
  return _per_example_sum(jnp.square(jax.nn.sigmoid(logits) - targets))


def bce(*, logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Binary cross-entropy of targets in [0, 1] under Bernoulli(sigmoid(logits)), summed."""
  return _per_example_sum(optax.sigmoid_binary_cross_entropy(logits, targets))


def l1(*, logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Absolute error of sigmoid(logits) against targets, summed per example."""
  return _per_example_sum(jnp.abs(jax.nn.sigmoid(logits) - targets))
