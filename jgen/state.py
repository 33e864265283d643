"""Train states: explicit pytrees holding everything a step reads or writes."""

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct
from flax.training import train_state


class TrainState(train_state.TrainState):
  """A single-network state (autoencoders, VAEs).

  Attributes:
    rng: the run's base PRNG key (raw uint32); a step folds in its step number, so the
      randomness of step `s` depends only on (rng, s) and survives a resume exactly.
  """

  rng: jax.Array


class GANState(struct.PyTreeNode):
  """Both networks of a GAN, their optimizers, batch statistics and the EMA generator.

  Attributes:
    step: completed training steps (each: `n_critic` discriminator updates, one generator
      update).
    g_params, d_params: the generator's and the discriminator's parameters.
    g_opt_state, d_opt_state: their optimizer states.
    g_batch_stats, d_batch_stats: batch-norm running statistics (empty dicts without BN).
    ema_g_params: exponential moving average of `g_params`, used for samples.
    rng: the run's base PRNG key (raw uint32); step `s` folds in `s`.
    g_tx, d_tx: the two optimizers (static).
  """

  step: jax.Array
  g_params: Any
  d_params: Any
  g_opt_state: Any
  d_opt_state: Any
  g_batch_stats: Any
  d_batch_stats: Any
  ema_g_params: Any
  rng: jax.Array
  g_tx: optax.GradientTransformation = struct.field(pytree_node=False)
  d_tx: optax.GradientTransformation = struct.field(pytree_node=False)

  @classmethod
  def create(cls, *, variables, g_tx, d_tx, rng) -> 'GANState':
    """A fresh state from `GAN.init` variables ({'params', maybe 'batch_stats'})."""
    params = variables['params']
    stats = variables.get('batch_stats', {})
    return cls(step=jnp.zeros((), jnp.int32), g_params=params['generator'],
               d_params=params['discriminator'], g_opt_state=g_tx.init(params['generator']),
               d_opt_state=d_tx.init(params['discriminator']),
               g_batch_stats=stats.get('generator', {}),
               d_batch_stats=stats.get('discriminator', {}),
               ema_g_params=params['generator'], rng=rng, g_tx=g_tx, d_tx=d_tx)
