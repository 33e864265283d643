"""Random shifts against a numpy translation."""

import jax
import numpy as np
import pytest

from jgen import augment
from jgen.augment import random_shift
from jgen.registry import ConfigError


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


def test_shift_probability_leaves_the_rest_unshifted():
  """With probability p an image is shifted (by a uniform offset, (0, 0) among them), else
  left as it is: 1 - p + p/9 of the images come out unmoved for max_shift 1. p = 1 draws
  what the two-argument call draws."""
  rng = np.random.default_rng(0)
  n = 3000
  images = rng.uniform(size=(n, 6, 6, 1)).astype(np.float32)
  keys = jax.vmap(jax.random.PRNGKey)(np.arange(n))
  np.testing.assert_array_equal(random_shift(images, keys, 1, 1.0), random_shift(images, keys, 1))
  for p in (0.0, 0.3, 0.8):
    out = np.asarray(random_shift(images, keys, 1, p))
    unmoved = (out == images).reshape(n, -1).all(1).mean()
    want = 1 - p + p / 9
    assert abs(unmoved - want) < 4 * np.sqrt(want * (1 - want) / n) + 1e-9, (p, unmoved, want)


def test_bad_shift_fields_are_one_config_error():
  with pytest.raises(ConfigError, match='augment.shift_prob'):
    augment.check_shift(1, 1.5)
  with pytest.raises(ConfigError, match='augment.max_shift'):
    augment.check_shift(-1, 1.0)


def test_inactive_shift_returns_the_images():
  """`active` False (the steps after `augment.shift_until`) leaves every image as it is; True
  draws what the call without it draws."""
  rng = np.random.default_rng(1)
  images = rng.uniform(size=(32, 6, 6, 1)).astype(np.float32)
  keys = jax.vmap(jax.random.PRNGKey)(np.arange(32))
  shifted = np.asarray(random_shift(images, keys, 1))
  assert not np.array_equal(shifted, images)
  np.testing.assert_array_equal(random_shift(images, keys, 1, active=np.bool_(True)), shifted)
  np.testing.assert_array_equal(random_shift(images, keys, 1, active=np.bool_(False)), images)


def test_shift_steps_from_the_fraction():
  assert augment.shift_steps(1000, 1.0) is None
  assert augment.shift_steps(1000, 0.85) == 850
  assert augment.shift_steps(1000, 0.0) == 0
  with pytest.raises(ConfigError, match='augment.shift_until'):
    augment.check_shift(1, 1.0, 1.2)
