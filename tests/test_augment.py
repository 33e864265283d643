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


def test_affine_warp_is_identity_shift_and_quarter_turn_exactly():
  """The inverse map: identity leaves images as they are, offsets (dy, dx) move the content
  by (-dy, -dx) with zeros filling in, and the map (r, c) -> (-c, r) about the centre turns
  a square image a quarter clockwise."""
  rng = np.random.default_rng(0)
  images = rng.uniform(size=(3, 9, 7, 2)).astype(np.float32)
  eye = np.tile(np.eye(2, dtype=np.float32), (3, 1, 1))
  np.testing.assert_array_equal(augment.affine_warp(images, eye, np.zeros((3, 2))), images)
  moved = np.asarray(augment.affine_warp(images, eye, np.tile([[1.0, -2.0]], (3, 1))))
  for image, out in zip(images, moved, strict=True):
    np.testing.assert_allclose(out, _np_shift(image, -1, 2), atol=1e-6)
  square = rng.uniform(size=(2, 7, 7, 1)).astype(np.float32)
  turn = np.tile(np.array([[0.0, -1.0], [1.0, 0.0]], np.float32), (2, 1, 1))
  np.testing.assert_allclose(augment.affine_warp(square, turn, np.zeros((2, 2))),
                             np.rot90(square, -1, axes=(1, 2)), atol=1e-6)


def _centroids(images):
  """Each image's brightness centroid (row, column), from the centre."""
  _, h, w, _ = images.shape
  rows, cols = np.meshgrid(np.arange(h) - (h - 1) / 2, np.arange(w) - (w - 1) / 2,
                           indexing='ij')
  mass = images[..., 0].sum((1, 2))
  return np.stack([(images[..., 0] * rows).sum((1, 2)) / mass,
                   (images[..., 0] * cols).sum((1, 2)) / mass], -1)


@pytest.mark.parametrize('kind', ['degrees', 'shear_degrees', 'scale', 'shift'])
def test_random_affine_moves_a_dot_within_each_range(kind):
  """A dot 4 pixels right of a 15x15 image's centre, under one kind of transform at a time:
  a rotation by up to 15 degrees keeps its distance and turns it by at most 15 degrees; a
  shear of up to 15 degrees (columns moving with rows) moves a dot 4 pixels below the
  centre sideways by at most 4 tan 15; a zoom of up to 10% moves it to between 4 / 1.1 and
  4 / 0.9 from the centre; a shift moves it by up to 2 pixels along each axis. Each kind
  spreads its draws over most of its range."""
  ranges = dict(degrees=0.0, shear_degrees=0.0, scale=0.0, shift=0.0)
  ranges[kind] = {'degrees': 15.0, 'shear_degrees': 15.0, 'scale': 0.1, 'shift': 2.0}[kind]
  dot = np.zeros((64, 15, 15, 1), np.float32)
  dot[:, 7 + 4 * (kind == 'shear_degrees'), 7 + 4 * (kind != 'shear_degrees')] = 1.0
  keys = jax.vmap(jax.random.PRNGKey)(np.arange(64))
  row, col = _centroids(np.asarray(augment.random_affine(dot, keys, **ranges))).T
  if kind == 'degrees':
    turn = np.degrees(np.arctan2(row, col))
    np.testing.assert_allclose(np.hypot(row, col), 4.0, atol=0.3)
    assert np.abs(turn).max() <= 15.5 and np.abs(turn).max() > 12
  elif kind == 'shear_degrees':
    np.testing.assert_allclose(row, 4.0, atol=0.1)
    assert np.abs(col).max() <= 4 * np.tan(np.radians(15)) + 0.1 and np.abs(col).max() > 0.8
  elif kind == 'scale':
    np.testing.assert_allclose(row, 0.0, atol=0.1)
    assert col.min() >= 4 / 1.1 - 0.1 and col.max() <= 4 / 0.9 + 0.1
    assert col.max() - col.min() > 0.6
  else:
    assert np.abs(row).max() <= 2.1 and np.abs(col - 4).max() <= 2.1
    assert np.abs(row).max() > 1.5 and np.abs(col - 4).max() > 1.5
