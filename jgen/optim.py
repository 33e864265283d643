"""Optimizers and learning-rate schedules from config."""

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


def build_optimizer(config, total_steps: int) -> optax.GradientTransformation:
  """Builds the optimizer from `config` (an `optimizer` ConfigDict).

  Fields: name, learning_rate, schedule, warmup_steps, grad_clip_norm (0 for none), and
  any keyword the optax optimizer takes (b1, b2, weight_decay, momentum, ...).
  """
  kwargs = dict(config)
  name = kwargs.pop('name')
  schedule = SCHEDULES.get(kwargs.pop('schedule'))(
      learning_rate=kwargs.pop('learning_rate'), warmup_steps=kwargs.pop('warmup_steps'),
      total_steps=total_steps)
  clip = kwargs.pop('grad_clip_norm', 0.0)
  try:
    tx = OPTIMIZERS.get(name)(schedule, **kwargs)
  except TypeError as e:
    raise ConfigError(f'optimizer {name!r} rejects its config: {e}') from None
  return optax.chain(optax.clip_by_global_norm(clip), tx) if clip else tx
