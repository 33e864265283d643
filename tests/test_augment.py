"""Random shifts against a numpy translation."""

import jax
import numpy as np

from jgen.augment import random_shift


def _np_shift(image, dy, dx):
  """Moves content down by dy and right by dx, zero-filled."""
  h, w, _ = image.shape
  out = np.zeros_like(image)
  out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = (
      image[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)])
  return out


def test_random_shift_translates_each_example_within_range():
  rng = np.random.default_rng(0)
  images = rng.uniform(size=(16, 9, 7, 2)).astype(np.float32)
  keys = jax.vmap(jax.random.PRNGKey)(np.arange(16))
  shifted = np.asarray(random_shift(images, keys, 2))
  seen = set()
  for image, out in zip(images, shifted, strict=True):
    matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
               if np.array_equal(out, _np_shift(image, dy, dx))]
    assert len(matches) == 1
    seen.add(matches[0])
  assert len(seen) > 4  # Shifts differ between examples.


def test_zero_shift_is_identity():
  images = np.ones((2, 4, 4, 1), np.float32)
  keys = jax.vmap(jax.random.PRNGKey)(np.arange(2))
  np.testing.assert_array_equal(random_shift(images, keys, 0), images)
