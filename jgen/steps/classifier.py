"""Classifier steps: the feature network of the sample metrics, trained with cross-entropy.

Per-device code for `parallel.data_parallel`, like the other families. Dropout and random
shifts are keyed by the global example index, so a step does not depend on the device count.
"""

import jax
import jax.numpy as jnp
import optax

from jgen import augment, models, optim, parallel, update
from jgen.state import TrainState
from jgen.steps.task import Task


def _logits_train(model, params, images, keys):
  """Training-mode logits, each example's dropout mask drawn from its own key."""

  def one(image, key):
    return model.apply({'params': params}, image[None], train=True,
                       rngs={'dropout': key})['logits'][0]

  return jax.vmap(one)(images, keys)


def make_train_step(model, *, max_shift: int = 0, shift_prob: float = 1.0,
                    shift_steps: int | None = None, label_smoothing: float = 0.0,
                    dtype=jnp.float32):
  """Returns the per-device step: (state, batch) -> (state, {loss, accuracy, norms}), the
  network run in `dtype` (`jgen.update`); images are shifted in steps before `shift_steps`
  (None: in all)."""

  def step(state: TrainState, batch):
    key = jax.random.fold_in(state.rng, state.step)
    keys = parallel.example_keys(key, batch['image'].shape[0])
    shift_keys, dropout_keys = jax.vmap(jax.random.split, out_axes=1)(keys)
    images = augment.random_shift(batch['image'], shift_keys, max_shift, shift_prob,
                                  None if shift_steps is None else state.step < shift_steps)
    labels = batch['label']

    def loss_fn(params):
      logits = _logits_train(model, params, images.astype(dtype),
                             dropout_keys).astype(jnp.float32)
      targets = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1]), label_smoothing)
      loss = optax.softmax_cross_entropy(logits, targets).mean()
      return loss, (logits.argmax(-1) == labels).mean()

    (loss, accuracy), grads = update.gradients(loss_fn, state.params, dtype)
    new_state, norms = update.apply_to_state(state, grads)
    return new_state, jax.lax.pmean({'loss': loss, 'accuracy': accuracy, **norms},
                                    parallel.AXIS)

  return step


def make_eval_step(model):
  """Returns the per-device eval step: masked sums of the loss and of correct answers."""

  def step(state: TrainState, batch):
    logits = model.apply({'params': state.params}, batch['image'])['logits']
    mask, labels = batch['mask'], batch['label']
    sums = {'loss': (optax.softmax_cross_entropy_with_integer_labels(logits, labels) * mask).sum(),
            'accuracy': ((logits.argmax(-1) == labels) * mask).sum(), 'count': mask.sum()}
    return jax.lax.psum(sums, parallel.AXIS)

  return step


def build_task(config, image_shape) -> Task:
  """The classifier `Task`: the feature network, trained on the dataset's labels."""
  model = models.build_model(**config.model, image_shape=image_shape)
  tx = optim.build_optimizer(config.optimizer, config.num_train_steps)

  def init_state(rng):
    init_key, state_key = jax.random.split(rng)
    params = jax.jit(model.init)(init_key, jnp.zeros((1, *image_shape), jnp.float32))['params']
    return TrainState.create(apply_fn=model.apply, params=params, tx=tx, rng=state_key)

  until = config.augment.get('shift_until', 1.0)
  augment.check_shift(config.augment.max_shift, config.augment.get('shift_prob', 1.0), until)
  return Task(init_state=init_state,
              train_step=make_train_step(model, max_shift=config.augment.max_shift,
                                         shift_prob=config.augment.get('shift_prob', 1.0),
                                         shift_steps=augment.shift_steps(
                                             config.num_train_steps, until),
                                         label_smoothing=config.label_smoothing,
                                         dtype=update.compute_dtype(config.dtype)),
              eval_step=make_eval_step(model), progress_keys=('loss',),
              encode_step=lambda state, x: model.apply({'params': state.params}, x)['features'])
