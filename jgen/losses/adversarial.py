"""Adversarial losses and penalties: pure functions of discriminator outputs.

Each loss is a pair of functions of the discriminator's logits (raw outputs: for the
probability-based losses D(x) = sigmoid(logits); for the others they are critic values),
returning one value per example:

  d_loss(*, real_logits, fake_logits)  what the discriminator minimises
  g_loss(*, fake_logits)               what the generator minimises
  g_loss(*, fake_logits, real_logits)  the same, for losses that compare the two
                                       (`uses_real`, e.g. relativistic ones)

The seed's two formulas: D maximises log D(x) + log(1 - D(G(z))), and G minimises
log(1 - D(G(z))) (`minimax`) or, in practice, maximises log D(G(z)) (`non_saturating`).
log D = -softplus(-logits) and log(1 - D) = -softplus(logits), computed stably.

Penalties take the critic as a function of images (per-example logits; it must not mix
examples of a batch) and return one value per example.
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class AdversarialLoss:
  """A discriminator loss and the generator loss that goes with it."""

  d_loss: Callable[..., jax.Array]
  g_loss: Callable[..., jax.Array]
  # Whether logits are probabilities' logits (report sigmoid) or raw critic values.
  probabilistic: bool = True
  # Whether g_loss also takes `real_logits` (D on a real batch, for the generator update).
  uses_real: bool = False


def _bce_d_loss(*, real_logits, fake_logits):
  """-log D(x) - log(1 - D(G(z)))."""
  return jax.nn.softplus(-real_logits) + jax.nn.softplus(fake_logits)


def _minimax_g_loss(*, fake_logits):
  """log(1 - D(G(z))): saturates (vanishing gradient) when D rejects the samples."""
  return -jax.nn.softplus(fake_logits)


def _non_saturating_g_loss(*, fake_logits):
  """-log D(G(z))."""
  return jax.nn.softplus(-fake_logits)


def _hinge_d_loss(*, real_logits, fake_logits):
  """max(0, 1 - D(x)) + max(0, 1 + D(G(z)))."""
  return jax.nn.relu(1.0 - real_logits) + jax.nn.relu(1.0 + fake_logits)


def _critic_g_loss(*, fake_logits):
  """-D(G(z)): the generator loss of hinge and Wasserstein GANs."""
  return -fake_logits


def _least_squares_d_loss(*, real_logits, fake_logits):
  """Mao et al.'s LSGAN (targets 1 for real, 0 for fake): (D(x) - 1)^2 / 2 + D(G(z))^2 / 2."""
  return 0.5 * jnp.square(real_logits - 1.0) + 0.5 * jnp.square(fake_logits)


def _least_squares_g_loss(*, fake_logits):
  """(D(G(z)) - 1)^2 / 2."""
  return 0.5 * jnp.square(fake_logits - 1.0)


def _wasserstein_d_loss(*, real_logits, fake_logits):
  """D(G(z)) - D(x): the critic's side of the Kantorovich-Rubinstein dual."""
  return fake_logits - real_logits


minimax = AdversarialLoss(_bce_d_loss, _minimax_g_loss)
non_saturating = AdversarialLoss(_bce_d_loss, _non_saturating_g_loss)
hinge = AdversarialLoss(_hinge_d_loss, _critic_g_loss, probabilistic=False)
least_squares = AdversarialLoss(_least_squares_d_loss, _least_squares_g_loss,
                                probabilistic=False)
wasserstein = AdversarialLoss(_wasserstein_d_loss, _critic_g_loss, probabilistic=False)


def _input_grad_sq_norm(critic: Callable, x: jax.Array) -> jax.Array:
  """||d critic(x_i) / d x_i||^2 per example (the critic does not mix examples)."""
  grads = jax.grad(lambda x: critic(x).sum())(x)
  return jnp.square(grads).reshape(x.shape[0], -1).sum(axis=-1)


def gradient_penalty(*, critic: Callable, real: jax.Array, fake: jax.Array,
                     mix: jax.Array) -> jax.Array:
  """WGAN-GP (Gulrajani et al. 2017): (||grad critic(x_hat)|| - 1)^2 per example.

  Args:
    critic: images -> per-example logits.
    real, fake: (B, H, W, C) images.
    mix: (B,) weights in [0, 1]; x_hat = mix * real + (1 - mix) * fake.
  """
  mix = mix.reshape(-1, *([1] * (real.ndim - 1)))
  x_hat = mix * real + (1.0 - mix) * fake
  # The gradient norm at 0 has no gradient itself; the epsilon keeps it finite there.
  return jnp.square(jnp.sqrt(_input_grad_sq_norm(critic, x_hat) + 1e-12) - 1.0)


def r1(*, critic: Callable, real: jax.Array, fake: jax.Array | None = None,
       mix: jax.Array | None = None) -> jax.Array:
  """R1 (Mescheder et al. 2018): ||grad critic(x)||^2 / 2 per real example.

  `fake` and `mix` are unused: every penalty takes the same arguments.
  """
  del fake, mix
  return 0.5 * _input_grad_sq_norm(critic, real)
