"""Optimizers, learning-rate schedules and the parameter average, from config."""

from typing import Any, NamedTuple

import jax.numpy as jnp
import optax

from jgen.registry import ConfigError, Registry

SCHEDULES = Registry('learning-rate schedule')


@SCHEDULES.register('constant')
def _constant(*, learning_rate, warmup_steps, total_steps):
  del total_steps
  return optax.linear_schedule(0.0, learning_rate, warmup_steps) if warmup_steps else (
      optax.constant_schedule(learning_rate))


@SCHEDULES.register('cosine')
def _cosine(*, learning_rate, warmup_steps, total_steps):
  return optax.warmup_cosine_decay_schedule(0.0, learning_rate, warmup_steps,
                                            max(total_steps, warmup_steps + 1))


@SCHEDULES.register('linear')
def _linear(*, learning_rate, warmup_steps, total_steps):
  """Linear warm-up, then a straight line down to 0 at `total_steps`."""
  decay = optax.linear_schedule(learning_rate, 0.0, max(total_steps - warmup_steps, 1))
  if not warmup_steps:
    return decay
  return optax.join_schedules(
      [optax.linear_schedule(0.0, learning_rate, warmup_steps), decay], [warmup_steps])


OPTIMIZERS = Registry('optimizer')
OPTIMIZERS.register('adam')(optax.adam)
OPTIMIZERS.register('adamw')(optax.adamw)
OPTIMIZERS.register('sgd')(optax.sgd)


def warmed_up_decay(decay: float, count):
  """The decay of an average's update number `count` (0, 1, ...): `decay`, or less while
  (1 + count) / (10 + count) is less (TF's ExponentialMovingAverage warm-up), so that the
  average soon forgets the weights it started from (a random initialisation, or those a
  fine-tuning run replaced)."""
  return jnp.minimum(decay, (1.0 + count) / (10.0 + count))


class AveragedState(NamedTuple):
  """The state of `with_average`: the wrapped optimizer's state, the average, and how many
  updates it has averaged."""

  inner: Any
  average: Any
  count: Any


def with_average(tx: optax.GradientTransformation,
                 decay: float) -> optax.GradientTransformation:
  """`tx`, also keeping an exponential moving average of the parameters (Polyak-Ruppert
  averaging): after update t, `average <- d_t * average + (1 - d_t) * params`, with d_t
  `decay` after a warm-up (`warmed_up_decay`). The updates are `tx`'s, unchanged;
  evaluation reads the average (`evaluated`)."""

  def init(params):
    return AveragedState(tx.init(params), params, jnp.zeros((), jnp.int32))

  def update(updates, state, params=None):
    if params is None:
      raise ValueError('with_average needs the parameters: tx.update(grads, state, params)')
    updates, inner = tx.update(updates, state.inner, params)
    d = warmed_up_decay(decay, state.count)
    average = optax.incremental_update(optax.apply_updates(params, updates), state.average,
                                       step_size=1.0 - d)
    return updates, AveragedState(inner, average, state.count + 1)

  return optax.GradientTransformation(init, update)


def evaluated(state):
  """`state` with the parameters that evaluation, samples and exports read: the average
  where the optimizer keeps one (`optimizer.ema_decay`), else the parameters."""
  opt_state = getattr(state, 'opt_state', None)
  if isinstance(opt_state, AveragedState):
    return state.replace(params=opt_state.average)
  return state


def build_optimizer(config, total_steps: int) -> optax.GradientTransformation:
  """Builds the optimizer from `config` (an `optimizer` ConfigDict).

  Fields: name, learning_rate, schedule, warmup_steps, grad_clip_norm (0 for none),
  ema_decay (0 for none: `with_average`), and any keyword the optax optimizer takes (b1,
  b2, weight_decay, momentum, ...).
  """
  kwargs = dict(config)
  name = kwargs.pop('name')
  ema_decay = kwargs.pop('ema_decay', 0.0)
  schedule = SCHEDULES.get(kwargs.pop('schedule'))(
      learning_rate=kwargs.pop('learning_rate'), warmup_steps=kwargs.pop('warmup_steps'),
      total_steps=total_steps)
  clip = kwargs.pop('grad_clip_norm', 0.0)
  try:
    tx = OPTIMIZERS.get(name)(schedule, **kwargs)
  except TypeError as e:
    raise ConfigError(f'optimizer {name!r} rejects its config: {e}') from None
  tx = optax.chain(optax.clip_by_global_norm(clip), tx) if clip else tx
  return with_average(tx, ema_decay) if ema_decay else tx
