"""Reconstruction losses against plain numpy."""

import numpy as np
import pytest

from jgen import losses
from jgen.registry import ConfigError


def _np_sigmoid(x):
  return 1 / (1 + np.exp(-x))


@pytest.fixture
def data():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(4, 5, 3, 1)).astype(np.float32) * 3
  targets = rng.uniform(size=(4, 5, 3, 1)).astype(np.float32)
  return logits, targets


def test_mse(data):
  logits, targets = data
  want = ((_np_sigmoid(logits) - targets) ** 2).reshape(4, -1).sum(-1)
  got = losses.get_reconstruction_loss('mse')(logits=logits, targets=targets)
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_bce(data):
  logits, targets = data
  p = _np_sigmoid(logits.astype(np.float64))
  want = -(targets * np.log(p) + (1 - targets) * np.log(1 - p)).reshape(4, -1).sum(-1)
  got = losses.get_reconstruction_loss('bce')(logits=logits, targets=targets)
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_l1(data):
  logits, targets = data
  want = np.abs(_np_sigmoid(logits) - targets).reshape(4, -1).sum(-1)
  got = losses.get_reconstruction_loss('l1')(logits=logits, targets=targets)
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_bce_is_stable_for_large_logits():
  logits = np.array([[100.0, -100.0]], np.float32)
  targets = np.array([[1.0, 0.0]], np.float32)
  got = losses.get_reconstruction_loss('bce')(logits=logits, targets=targets)
  assert np.isfinite(got).all() and float(got[0]) < 1e-6


def test_losses_are_keyword_only(data):
  with pytest.raises(TypeError):
    losses.get_reconstruction_loss('mse')(*data)


def test_unknown_loss_lists_known_names():
  with pytest.raises(ConfigError, match="unknown reconstruction loss 'msee'; known: bce, l1, mse"):
    losses.get_reconstruction_loss('msee')
