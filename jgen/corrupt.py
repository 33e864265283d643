"""Input corruptions of a denoising autoencoder, chosen by name and keyed per example.

Each corruption is a pure function `(image, key, level) -> image` of ONE image with pixels
in [0, 1]; `corrupt` applies one to a batch with one key per example (vmapped), so that a
batch keyed by global example index (`parallel.example_keys`, or the example's index in the
test split) is corrupted the same way on any number of devices.

Names and what `level` means:
  none:            the image unchanged (`level` is ignored);
  gaussian:        N(0, level^2) noise added to every pixel, then clipped to [0, 1];
  masking:         each pixel independently set to 0 with probability `level`;
  salt_and_pepper: each pixel independently, with probability `level`, set to 0 or to 1
                   (each with probability 1/2).
"""

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from jgen.registry import ConfigError, Registry

CORRUPTIONS = Registry('corruption')
# The largest valid level of each corruption (the smallest is 0): probabilities stop at 1.
_MAX_LEVEL: dict[str, float] = {}


def _register(name: str, max_level: float) -> Callable:
  def decorate(fn):
    _MAX_LEVEL[name] = max_level
    return CORRUPTIONS.register(name)(fn)

  return decorate


@_register('none', math.inf)
def none(image: jax.Array, key: jax.Array, level: float) -> jax.Array:
  """The image unchanged."""
  del key, level
  return image


@_register('gaussian', math.inf)
def gaussian(image: jax.Array, key: jax.Array, level: float) -> jax.Array:
  """Adds N(0, level^2) noise to every pixel and clips to [0, 1]."""
  noise = jax.random.normal(key, image.shape, image.dtype)
  return jnp.clip(image + level * noise, 0.0, 1.0)


@_register('masking', 1.0)
def masking(image: jax.Array, key: jax.Array, level: float) -> jax.Array:
  """Sets each pixel to 0 with probability `level`, independently."""
  hit = jax.random.bernoulli(key, level, image.shape)
  return jnp.where(hit, jnp.zeros_like(image), image)


@_register('salt_and_pepper', 1.0)
def salt_and_pepper(image: jax.Array, key: jax.Array, level: float) -> jax.Array:
  """With probability `level` per pixel, independently, sets it to 0 or 1 (a fair coin)."""
  hit_key, salt_key = jax.random.split(key)
  hit = jax.random.bernoulli(hit_key, level, image.shape)
  salt = jax.random.bernoulli(salt_key, 0.5, image.shape)
  return jnp.where(hit, salt.astype(image.dtype), image)


def check(name: str, level: float, what: str = 'corrupt.level') -> Callable:
  """Returns the corruption called `name` if `level` is valid for it.

  Args:
    name: a registered corruption.
    level: its strength: a probability in [0, 1], or for `gaussian` a standard deviation
      >= 0; ignored by `none`.
    what: how the level is called in the message (the config field).

  Raises:
    ConfigError: for an unknown name (the message lists the known ones) or a level out of
      range, in one line.
  """
  fn = CORRUPTIONS.get(name)
  if name == 'none':
    return fn
  high = _MAX_LEVEL[name]
  if not 0 <= level <= high:  # Also refuses NaN.
    valid = 'a standard deviation >= 0' if high == math.inf else f'a probability in [0, {high:g}]'
    raise ConfigError(f'{what}={level} is out of range for corruption {name!r}: it must be '
                      f'{valid}')
  return fn


def corrupt(images: jax.Array, keys: jax.Array, name: str, level: float) -> jax.Array:
  """Corrupts every image of a batch with its own key.

  Args:
    images: (B, H, W, C) in [0, 1].
    keys: (B,) PRNG keys, one per example.
    name: a registered corruption (see the module docstring).
    level: its strength.

  Raises:
    ConfigError: as `check` does.
  """
  fn = check(name, level)
  if name == 'none':
    return images
  return jax.vmap(fn, in_axes=(0, 0, None))(images, keys, level)


def eval_keys(index: jax.Array, seed: int = 1234) -> jax.Array:
  """Keys of the fixed corruption of test examples, from their indices in the split.

  The same for every model, run, batch size and device count, so that the denoising error
  of any two models is measured on the same corrupted images.

  Args:
    index: (B,) int, each example's position in its split (the `index` of eval batches).
    seed: of the fixed key the indices are folded into.
  """
  return jax.vmap(jax.random.fold_in, (None, 0))(jax.random.PRNGKey(seed), index)
