"""Module shapes and parameter counts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen import models
from jgen.models.layers import depth_to_space
from jgen.registry import ConfigError


def _init(model, shape):
  x = jnp.zeros((2, *shape), jnp.float32)
  params = model.init(jax.random.PRNGKey(0), x)['params']
  return params, model.apply({'params': params}, x)


def _count(params):
  return sum(x.size for x in jax.tree.leaves(params))


def test_hinton_autoencoder_has_the_paper_layers():
  model = models.build_model('mlp_autoencoder', image_shape=(28, 28, 1))
  params, logits = _init(model, (28, 28, 1))
  assert logits.shape == (2, 28, 28, 1)
  sizes = [784, 1000, 500, 250, 30, 250, 500, 1000, 784]
  want = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
  assert _count(params) == want == 2_837_314
  code = model.apply({'params': params}, jnp.zeros((3, 28, 28, 1)), method='encode')
  assert code.shape == (3, 30)


@pytest.mark.parametrize('shape', [(28, 28, 1), (32, 32, 3), (64, 64, 3), (27, 30, 2)])
def test_autoencoders_take_any_image_shape(shape):
  for name in ('mlp_autoencoder', 'conv_autoencoder'):
    model = models.build_model(name, image_shape=shape, latent_dim=8)
    params, logits = _init(model, shape)
    assert logits.shape == (2, *shape), name
    assert np.isfinite(np.asarray(logits)).all()


def test_conv_autoencoder_parameter_count():
  model = models.build_model('conv_autoencoder', image_shape=(28, 28, 1), features=(32, 64),
                             latent_dim=32)
  params, _ = _init(model, (28, 28, 1))
  enc = (9 * 1 * 32 + 32) + (9 * 32 * 64 + 64) + (7 * 7 * 64 * 32 + 32)
  dec = (32 * 7 * 7 * 64 + 7 * 7 * 64) + (9 * 64 * 256 + 256) + (9 * 64 * 128 + 128) + (
      9 * 32 * 1 + 1)
  assert _count(params) == enc + dec


def test_dropout_is_active_only_in_training():
  model = models.build_model('mlp_autoencoder', image_shape=(4, 4, 1), hidden_sizes=(64,),
                             latent_dim=4, dropout=0.5)
  x = jnp.ones((2, 4, 4, 1))
  params = model.init(jax.random.PRNGKey(0), x)['params']
  eval_a = model.apply({'params': params}, x)
  eval_b = model.apply({'params': params}, x)
  np.testing.assert_array_equal(eval_a, eval_b)
  train = model.apply({'params': params}, x, train=True, rngs={'dropout': jax.random.PRNGKey(1)})
  assert not np.allclose(train, eval_a)


def test_depth_to_space_places_channels_as_pixels():
  x = jnp.arange(8.0).reshape(1, 1, 2, 4)  # Two pixels, 2x2 blocks of one channel.
  y = depth_to_space(x, 2)
  np.testing.assert_array_equal(y[0, :, :, 0], [[0, 1, 4, 5], [2, 3, 6, 7]])


def test_unknown_model_and_bad_option_are_config_errors():
  with pytest.raises(ConfigError, match="unknown model 'mlp'; known: classifier, conv_autoencoder"):
    models.build_model('mlp', image_shape=(28, 28, 1))
  with pytest.raises(ConfigError, match="model 'mlp_autoencoder' rejects its config"):
    models.build_model('mlp_autoencoder', image_shape=(28, 28, 1), widht=3)
