"""Data augmentation inside the jitted step, keyed per example."""

import jax
import jax.numpy as jnp


def check_shift(max_shift: int, probability: float, until: float = 1.0) -> None:
  """One line naming the bad field, before any work (a config's `augment`)."""
  from jgen.registry import ConfigError

  if max_shift < 0:
    raise ConfigError(f'augment.max_shift is {max_shift}; use 0 (none) or more pixels')
  if not 0.0 <= probability <= 1.0:
    raise ConfigError(f'augment.shift_prob is {probability}; use a probability in [0, 1]')
  if not 0.0 <= until <= 1.0:
    raise ConfigError(f'augment.shift_until is {until}; use a fraction of the run in [0, 1] '
                      '(1: shift throughout)')


def shift_steps(num_train_steps: int, until: float) -> int | None:
  """The number of steps, from the start, that shift (None: all of them)."""
  return None if until >= 1.0 else round(until * num_train_steps)


def random_shift(images: jax.Array, keys: jax.Array, max_shift: int,
                 probability: float = 1.0, active: jax.Array | None = None) -> jax.Array:
  """Translates each image by up to `max_shift` pixels in each direction, zero-filled.

  Args:
    images: (B, H, W, C).
    keys: (B,) PRNG keys, one per example (see `parallel.example_keys`).
    max_shift: the largest shift in pixels; 0 returns `images` unchanged.
    probability: the chance that an image is shifted at all (each offset pair, (0, 0)
      included, is drawn uniformly if it is); 1 draws exactly what it did before the
      argument existed.
    active: a traced boolean (a step's `step < shift_steps`): where False, `images` come
      back unchanged; None shifts always.
  """
  if not 0.0 <= probability <= 1.0:
    raise ValueError(f'shift probability {probability} is not in [0, 1]')
  if max_shift == 0 or probability == 0.0:
    return images
  k = max_shift
  _, h, w, c = images.shape
  padded = jnp.pad(images, ((0, 0), (k, k), (k, k), (0, 0)))

  def one(image, key):
    dy, dx = jax.random.randint(key, (2,), 0, 2 * k + 1)
    if probability < 1.0:
      shifted = jax.random.bernoulli(jax.random.fold_in(key, 1), probability)
      dy, dx = jnp.where(shifted, dy, k), jnp.where(shifted, dx, k)
    return jax.lax.dynamic_slice(image, (dy, dx, 0), (h, w, c))

  shifted = jax.vmap(one)(padded, keys)
  return shifted if active is None else jnp.where(active, shifted, images)


def affine_warp(images: jax.Array, matrices: jax.Array, offsets: jax.Array) -> jax.Array:
  """Warps each image by its own affine map about the image's centre, bilinear, zero-filled.

  Output pixel p (row, column, measured from the centre) takes the input's value at
  `matrices @ p + offsets` (from the centre too): the inverse map, so a translation by
  offsets (dy, dx) moves the content by (-dy, -dx).

  Args:
    images: (B, H, W, C).
    matrices: (B, 2, 2).
    offsets: (B, 2), in pixels.
  """
  _, h, w, _ = images.shape
  centre = jnp.array([(h - 1) / 2.0, (w - 1) / 2.0])
  grid = jnp.stack(jnp.meshgrid(jnp.arange(h), jnp.arange(w), indexing='ij'), -1) - centre

  def one(image, matrix, offset):
    coords = jnp.einsum('ij,hwj->ihw', matrix, grid) + (offset + centre)[:, None, None]
    def channel(plane):
      return jax.scipy.ndimage.map_coordinates(plane, list(coords), order=1, mode='constant',
                                               cval=0.0)
    return jax.vmap(channel, in_axes=-1, out_axes=-1)(image)

  return jax.vmap(one)(images, matrices, offsets)


def random_affine(images: jax.Array, keys: jax.Array, *, degrees: float, shear_degrees: float,
                  scale: float, shift: float) -> jax.Array:
  """Each image rotated by up to `degrees`, sheared horizontally by up to `shear_degrees`,
  zoomed by a factor in [1 - scale, 1 + scale] and moved by up to `shift` pixels along each
  axis (all uniform, about the centre; `affine_warp`), zero-filled.

  Args:
    images: (B, H, W, C).
    keys: (B,) PRNG keys, one per example (see `parallel.example_keys`).
  """
  def params(key):
    u = jax.random.uniform(key, (5,), minval=-1.0, maxval=1.0)
    angle, shear = jnp.deg2rad(degrees) * u[0], jnp.deg2rad(shear_degrees) * u[1]
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    rotation = jnp.array([[cos, -sin], [sin, cos]])
    shearing = jnp.array([[1.0, 0.0], [jnp.tan(shear), 1.0]])  # Column moves with row.
    return rotation @ shearing / (1.0 + scale * u[2]), shift * u[3:]

  matrices, offsets = jax.vmap(params)(keys)
  return affine_warp(images, matrices, offsets)
