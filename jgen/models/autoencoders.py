"""Autoencoders: an encoder to a code, a decoder back to image logits.

`Autoencoder(encoder, decoder)` is the seed's composition. Decoders output logits of the
image's shape; `sigmoid(logits)` is the reconstruction. No module mixes examples of a
batch (no BatchNorm), so a step may apply them per example.
"""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jgen.models.layers import ACTIVATIONS, depth_to_space, downsampled_size


class Encoder(nn.Module):
  """The MLP encoder of Hinton & Salakhutdinov: flatten, hidden layers, a linear code layer."""

  hidden_sizes: Sequence[int]
  latent_dim: int
  activation: str = 'relu'
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    act = ACTIVATIONS.get(self.activation)
    h = x.reshape(x.shape[0], -1)
    for size in self.hidden_sizes:
      h = act(nn.Dense(size)(h))
      h = nn.Dropout(self.dropout, deterministic=not train)(h)
    return nn.Dense(self.latent_dim, name='code')(h)


class Decoder(nn.Module):
  """The MLP decoder: hidden layers, then logits reshaped to `image_shape`."""

  hidden_sizes: Sequence[int]
  image_shape: Sequence[int]
  activation: str = 'relu'
  dropout: float = 0.0

  @nn.compact
  def __call__(self, z: jax.Array, *, train: bool = False) -> jax.Array:
    act = ACTIVATIONS.get(self.activation)
    h = z
    for size in self.hidden_sizes:
      h = act(nn.Dense(size)(h))
      h = nn.Dropout(self.dropout, deterministic=not train)(h)
    logits = nn.Dense(math.prod(self.image_shape), name='logits')(h)
    return logits.reshape(z.shape[0], *self.image_shape)


class ConvEncoder(nn.Module):
  """Stride-2 3x3 convolutions, then a linear code layer."""

  features: Sequence[int]
  latent_dim: int
  activation: str = 'relu'
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    act = ACTIVATIONS.get(self.activation)
    h = x
    for f in self.features:
      h = act(nn.Conv(f, (3, 3), strides=(2, 2))(h))
    h = h.reshape(h.shape[0], -1)
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    return nn.Dense(self.latent_dim, name='code')(h)


class ConvDecoder(nn.Module):
  """Mirror of ConvEncoder, upsampling by sub-pixel convolution, cropped to `image_shape`.

  Sub-pixel convolution (a stride-1 convolution to 4x the channels, then depth-to-space)
  upsamples without a transposed convolution, whose kernel gradient is slow on XLA:CPU.
  """

  features: Sequence[int]
  image_shape: Sequence[int]
  activation: str = 'relu'
  dropout: float = 0.0

  @nn.compact
  def __call__(self, z: jax.Array, *, train: bool = False) -> jax.Array:
    act = ACTIVATIONS.get(self.activation)
    height, width, channels = self.image_shape
    n = len(self.features)
    h0, w0 = downsampled_size(height, n), downsampled_size(width, n)
    h = act(nn.Dense(h0 * w0 * self.features[-1])(z))
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    h = h.reshape(z.shape[0], h0, w0, self.features[-1])
    for f in reversed(self.features):
      h = act(depth_to_space(nn.Conv(4 * f, (3, 3))(h), 2))
    logits = nn.Conv(channels, (3, 3), name='logits')(h)
    return logits[:, :height, :width, :]


class Autoencoder(nn.Module):
  """The seed's `Autoencoder(encoder, decoder)`: returns reconstruction logits."""

  encoder: nn.Module
  decoder: nn.Module

  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    return self.decoder(self.encoder(x, train=train), train=train)

  def encode(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    return self.encoder(x, train=train)

  def decode(self, z: jax.Array, *, train: bool = False) -> jax.Array:
    return self.decoder(z, train=train)

  def reconstruct(self, x: jax.Array) -> jax.Array:
    """The reconstructed image in [0, 1], in inference mode."""
    return jax.nn.sigmoid(self(x, train=False)).astype(jnp.float32)


def mlp_autoencoder(*, image_shape, hidden_sizes=(1000, 500, 250), latent_dim=30,
                    activation='relu', dropout=0.0) -> Autoencoder:
  """Hinton & Salakhutdinov's deep autoencoder by default: 784-1000-500-250-30, mirrored."""
  hidden_sizes = tuple(hidden_sizes)
  return Autoencoder(
      encoder=Encoder(hidden_sizes, latent_dim, activation, dropout),
      decoder=Decoder(hidden_sizes[::-1], tuple(image_shape), activation, dropout))


def conv_autoencoder(*, image_shape, features=(32, 64), latent_dim=32,
                     activation='relu', dropout=0.0) -> Autoencoder:
  """A convolutional autoencoder: stride-2 convolutions down, sub-pixel convolutions up."""
  features = tuple(features)
  return Autoencoder(
      encoder=ConvEncoder(features, latent_dim, activation, dropout),
      decoder=ConvDecoder(features, tuple(image_shape), activation, dropout))
