"""Autoencoder steps: `make_train_step(...)(state, batch) -> (state, metrics)`.

Both functions are per-device code for `parallel.data_parallel`: they see their shard of the
batch and average across devices with `lax.pmean` over `parallel.AXIS`.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jgen import augment, corrupt, losses, models, optim, parallel, update
from jgen.losses import reconstruction
from jgen.state import TrainState
from jgen.steps.task import Task


def _apply_train(model, params, images, keys, per_example_rng: bool):
  """Reconstruction logits in training mode.

  With `per_example_rng`, each example's dropout is drawn from its own key. Autoencoders do
  not mix examples of a batch, so applying them one example at a time (vectorised by vmap)
  changes nothing but where the randomness comes from: keyed by global example index, a
  step gives the same result on 1 device or 8. Without randomness in the model the plain
  batched call is used (about 13% faster on CPU).
  """
  if not per_example_rng:
    return model.apply({'params': params}, images, train=True)

  def one(image, key):
    return model.apply({'params': params}, image[None], train=True, rngs={'dropout': key})[0]

  return jax.vmap(one)(images, keys)


def make_train_step(model, loss_fn: Callable, *, max_shift: int = 0, shift_prob: float = 1.0,
                    shift_steps: int | None = None, per_example_rng: bool = True,
                    corruption: str = 'none', corruption_level: float = 0.0,
                    dtype=jnp.float32) -> Callable:
  """Returns the per-device train step of an autoencoder.

  Args:
    model: an `Autoencoder`.
    loss_fn: a reconstruction loss, (*, logits, targets) -> per-example loss.
    max_shift: random translation of each training image by up to this many pixels (the
      target is the translated image too); 0 for none.
    shift_prob: the chance that an image is translated at all.
    shift_steps: translate only in steps before this one (None: in every step).
    per_example_rng: whether the model draws randomness (dropout) in training.
    corruption: a `jgen.corrupt` name: the model sees the (shifted) images corrupted so,
      and reconstructs the clean ones (a denoising autoencoder); 'none' for a plain one.
    corruption_level: its strength.
    dtype: the compute dtype of the forward and backward passes (`jgen.update`).

  Returns:
    step(state, batch) -> (state, metrics): metrics is a flat dict of scalars, averaged
    over the global batch: `loss`, `sq_err_per_image` (both against the clean images),
    `l2_grads`, `l2_params`, `l2_updates`.
  """
  corrupt.check(corruption, corruption_level)
  # Each example's key is split in two (shift, dropout), or in three with a corruption:
  # without one, the randomness is what it was before corruptions existed. (With JAX's
  # default partitionable Threefry the first two of three keys equal the two of a split in
  # two, so a DAE also shifts its images as the plain autoencoder of the same seed does.)
  num_keys = 2 if corruption == 'none' else 3

  def step(state: TrainState, batch):
    key = jax.random.fold_in(state.rng, state.step)
    keys = parallel.example_keys(key, batch['image'].shape[0])
    split = jax.vmap(lambda k: jax.random.split(k, num_keys), out_axes=1)(keys)
    shift_keys, dropout_keys = split[0], split[1]
    images = augment.random_shift(batch['image'], shift_keys, max_shift, shift_prob,
                                  None if shift_steps is None else state.step < shift_steps)
    inputs = images
    if num_keys == 3:
      inputs = corrupt.corrupt(images, split[2], corruption, corruption_level)

    def loss_and_aux(params):
      logits = _apply_train(model, params, inputs.astype(dtype), dropout_keys,
                            per_example_rng).astype(jnp.float32)
      loss = loss_fn(logits=logits, targets=images).mean()
      sq_err = reconstruction.mse(logits=logits, targets=images).mean()
      return loss, {'sq_err_per_image': sq_err}

    (loss, aux), grads = update.gradients(loss_and_aux, state.params, dtype)
    new_state, norms = update.apply_to_state(state, grads)
    return new_state, jax.lax.pmean({'loss': loss, **aux, **norms}, parallel.AXIS)

  return step


def make_eval_step(model, loss_fn: Callable, *, corruption: str = 'none',
                   corruption_level: float = 0.0) -> Callable:
  """Returns the per-device eval step: (state, batch) -> masked sums over the global batch.

  The batch carries a `mask` (1 real, 0 padding); the sums are exact whatever the padding.
  With a corruption, it also sums `denoise_sq_err_per_image`: the squared error of the
  reconstruction of each corrupted image against the clean one. The corruption is keyed by
  the example's `index` in the split (`corrupt.eval_keys`), so every model, run and device
  count is measured on the same corrupted images.
  """
  corrupt.check(corruption, corruption_level)

  def step(state: TrainState, batch):
    images, mask = batch['image'], batch['mask']
    logits = model.apply({'params': state.params}, images, train=False)
    sums = {
        'loss': (loss_fn(logits=logits, targets=images) * mask).sum(),
        'sq_err_per_image': (reconstruction.mse(logits=logits, targets=images) * mask).sum(),
        'count': mask.sum(),
    }
    if corruption != 'none':
      if 'index' not in batch:
        raise ValueError('eval batches need an `index` feature to key the corruption '
                         '(data.eval_batches gives one)')
      noisy = corrupt.corrupt(images, corrupt.eval_keys(batch['index']), corruption,
                              corruption_level)
      denoised = model.apply({'params': state.params}, noisy, train=False)
      sums['denoise_sq_err_per_image'] = (
          reconstruction.mse(logits=denoised, targets=images) * mask).sum()
    return jax.lax.psum(sums, parallel.AXIS)

  return step


def make_reconstruct(model) -> Callable:
  """Returns the per-device function (state, images) -> reconstructed images in [0, 1]."""

  def reconstruct(state: TrainState, images):
    return model.apply({'params': state.params}, images, method='reconstruct')

  return reconstruct


def build_task(config, image_shape):
  """The autoencoder `Task`: model and loss by registered name, optimizer from config."""
  model = models.build_model(**config.model, image_shape=image_shape)
  loss_fn = losses.get_reconstruction_loss(config.loss)
  tx = optim.build_optimizer(config.optimizer, config.num_train_steps)

  def init_state(rng):
    init_key, state_key = jax.random.split(rng)
    dummy = jnp.zeros((1, *image_shape), jnp.float32)
    params = jax.jit(model.init)(init_key, dummy)['params']
    return TrainState.create(apply_fn=model.apply, params=params, tx=tx, rng=state_key)

  name, level = config.corrupt.name, config.corrupt.level
  corrupt.check(name, level)  # Before any work: a bad name or level is one error line.
  until = config.augment.get('shift_until', 1.0)
  augment.check_shift(config.augment.max_shift, config.augment.get('shift_prob', 1.0), until)
  train_step = make_train_step(model, loss_fn, max_shift=config.augment.max_shift,
                               shift_prob=config.augment.get('shift_prob', 1.0),
                               shift_steps=augment.shift_steps(config.num_train_steps, until),
                               per_example_rng=config.model.get('dropout', 0.0) > 0,
                               corruption=name if config.corrupt.train else 'none',
                               corruption_level=level,
                               dtype=update.compute_dtype(config.dtype))
  eval_step = make_eval_step(model, loss_fn, corruption=name, corruption_level=level)

  def image_inputs(images):
    """Test images to reconstruct; with a corruption, also their corrupted versions (the
    first test images, so corrupted as the eval step corrupts them)."""
    ncols = min(len(images), 16)
    grids = {'reconstructions': (images, ncols)}
    if name != 'none':
      keys = corrupt.eval_keys(jnp.arange(len(images)))
      grids['denoised'] = (np.asarray(corrupt.corrupt(images, keys, name, level)), ncols)
    return grids

  def encode(state, x):
    return model.apply({'params': state.params}, x, method='encode')

  return Task(init_state=init_state, train_step=train_step, eval_step=eval_step,
              image_step=make_reconstruct(model), image_name='reconstructions',
              image_inputs=image_inputs, show_inputs=True, encode_step=encode,
              train_features=('image',),
              feature_steps={'code': encode},
              sample_step=lambda state, z: jax.nn.sigmoid(
                  model.apply({'params': state.params}, z, method='decode')))
