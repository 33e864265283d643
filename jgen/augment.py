"""Data augmentation inside the jitted step, keyed per example."""

import jax
import jax.numpy as jnp


def random_shift(images: jax.Array, keys: jax.Array, max_shift: int) -> jax.Array:
  """Translates each image by up to `max_shift` pixels in each direction, zero-filled.

  Args:
    images: (B, H, W, C).
    keys: (B,) PRNG keys, one per example (see `parallel.example_keys`).
    max_shift: the largest shift in pixels; 0 returns `images` unchanged.
  """
  if max_shift == 0:
    return images
  k = max_shift
  _, h, w, c = images.shape
  padded = jnp.pad(images, ((0, 0), (k, k), (k, k), (0, 0)))

  def one(image, key):
    dy, dx = jax.random.randint(key, (2,), 0, 2 * k + 1)
    return jax.lax.dynamic_slice(image, (dy, dx, 0), (h, w, c))

  return jax.vmap(one)(padded, keys)
