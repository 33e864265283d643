"""GANs: a generator from latents to images, a discriminator from images to logits.

`GAN(generator, discriminator)` is the seed's composition. Generators end in tanh: images
live in [-1, 1] on the GAN side (for Goodfellow's sigmoid output on [0, 1] data this is the
same function, sigmoid(a) = (tanh(a / 2) + 1) / 2). Discriminators return a dict: `logits`
(B,), and for InfoGAN the Q head's `code_logits` (B, categories) and `code_mean`
(B, continuous), computed from the discriminator's last hidden layer.

The latent is noise concatenated with InfoGAN's codes (a one-hot categorical, continuous
codes uniform on [-1, 1]); `LatentSpec` describes it and `sample_latent` draws it.
"""

import dataclasses
import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jgen.models.layers import (
  BatchNorm,
  ConvStride2,
  ConvTransposeStride2,
  SubPixelConvTranspose,
  downsampled_size,
)

# Radford et al.: all weights from N(0, 0.02); batch-norm scales around 1 (as PyTorch's
# DCGAN example initialises them).
DCGAN_INIT = nn.initializers.normal(0.02)


def _bn_scale_init(key, shape, dtype=jnp.float32):
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


@dataclasses.dataclass(frozen=True)
class LatentSpec:
  """The generator's input: noise, then InfoGAN's categorical and continuous codes."""

  noise_dim: int = 100
  noise: str = 'normal'  # 'normal' N(0, 1), or 'uniform' on [-1, 1].
  categories: int = 0
  continuous: int = 0
  # Multiplies the noise: below 1 it carries less, so that the codes must carry the rest
  # (ClusterGAN's prior: sigma 0.1 Gaussian noise beside a one-hot category).
  noise_scale: float = 1.0

  @property
  def size(self) -> int:
    return self.noise_dim + self.categories + self.continuous


def sample_latent(key: jax.Array, spec: LatentSpec) -> dict[str, jax.Array]:
  """Draws one example's latent; vmap over keys for a batch.

  Returns:
    `z` (the generator's input), and for InfoGAN `category` (int) and `code` (continuous).
  """
  k_noise, k_cat, k_code = jax.random.split(key, 3)
  if spec.noise == 'uniform':
    noise = jax.random.uniform(k_noise, (spec.noise_dim,), minval=-1.0, maxval=1.0)
  else:
    noise = jax.random.normal(k_noise, (spec.noise_dim,))
  noise = noise * spec.noise_scale
  category = jax.random.randint(k_cat, (), 0, max(spec.categories, 1))
  code = jax.random.uniform(k_code, (spec.continuous,), minval=-1.0, maxval=1.0)
  parts = [noise]
  if spec.categories:
    parts.append(jax.nn.one_hot(category, spec.categories))
  parts.append(code)
  return {'z': jnp.concatenate(parts), 'category': category, 'code': code}


def latent_from_codes(noise: jax.Array, category: jax.Array, code: jax.Array,
                      spec: LatentSpec) -> jax.Array:
  """Builds generator inputs from given noise (B, noise_dim), categories (B,), codes (B, c)."""
  parts = [noise]
  if spec.categories:
    parts.append(jax.nn.one_hot(category, spec.categories))
  return jnp.concatenate([*parts, code], axis=-1)


BN_MOMENTUM = 0.9  # Of the GAN networks' batch-norm running averages.


def _norm(kind: str, train: bool, axis_name: str | None, name: str | None = None):
  """The normalisation layer `kind` ('batch', 'layer' or 'none'), as a callable."""
  if kind == 'batch':
    return BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM, axis_name=axis_name,
                     scale_init=_bn_scale_init, name=name)
  if kind == 'layer':  # Over all of an example's features (channels and positions).
    return lambda h: nn.LayerNorm(reduction_axes=tuple(range(1, h.ndim)), name=name)(h)
  if kind == 'none':
    return lambda h: h
  raise ValueError(f"unknown norm {kind!r}; known: 'batch', 'layer', 'none'")


class MLPGenerator(nn.Module):
  """Goodfellow et al. 2014's MNIST generator: ReLU hidden layers, then the image."""

  hidden_sizes: Sequence[int]
  image_shape: Sequence[int]

  @nn.compact
  def __call__(self, z: jax.Array, *, train: bool = False) -> jax.Array:
    del train
    h = z
    for size in self.hidden_sizes:
      h = nn.relu(nn.Dense(size)(h))
    out = nn.Dense(math.prod(self.image_shape), name='image')(h)
    return jnp.tanh(out).reshape(z.shape[0], *self.image_shape)


class MLPDiscriminator(nn.Module):
  """Goodfellow et al. 2014's MNIST discriminator: maxout layers with dropout."""

  hidden_sizes: Sequence[int]
  maxout_pieces: int = 5
  dropout: float = 0.5
  input_dropout: float = 0.2

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> dict[str, jax.Array]:
    h = x.reshape(x.shape[0], -1)
    h = nn.Dropout(self.input_dropout, deterministic=not train)(h)
    for i, size in enumerate(self.hidden_sizes):
      h = nn.Dense(size * self.maxout_pieces)(h)
      h = h.reshape(h.shape[0], size, self.maxout_pieces).max(axis=-1)
      if i < len(self.hidden_sizes) - 1:
        h = nn.Dropout(self.dropout, deterministic=not train)(h)
    return {'logits': nn.Dense(1, name='logits')(h)[:, 0], 'features': h}


class ConvGenerator(nn.Module):
  """DCGAN's generator (and InfoGAN's, with `dense_sizes`).

  Latent -> dense hidden layers -> projection to a small (base, base, C) map -> stride-2
  upsamplings halving the channels -> tanh image, cropped to `image_shape`. Batch norm and
  ReLU after every layer but the output (Radford et al.).
  """

  image_shape: Sequence[int]
  features: int = 64  # Channels of the last hidden map; each earlier one has twice as many.
  num_upsamples: int = 2
  kernel_size: int = 4
  dense_sizes: Sequence[int] = ()
  norm: str = 'batch'
  axis_name: str | None = None  # The device axis to average batch statistics over.
  # The same function of the same parameters, three ways (bench/dcgan_step.py times them):
  # 'strided' (nn.ConvTranspose's function, its gradients as stride-2 convolutions: the
  # fastest on CPU), 'subpixel' (a stride-1 convolution + depth-to-space) or 'transpose'
  # (nn.ConvTranspose itself, autodiff).
  upsampling: str = 'strided'

  def _upsample(self, features: int, use_bias: bool, name: str | None = None):
    if self.upsampling == 'transpose':
      pad = ((self.kernel_size // 2,) * 2,) * 2
      return nn.ConvTranspose(features, (self.kernel_size,) * 2, strides=(2, 2), padding=pad,
                              use_bias=use_bias, kernel_init=DCGAN_INIT, name=name)
    if self.upsampling == 'strided':
      return ConvTransposeStride2(features, self.kernel_size, use_bias=use_bias,
                                  kernel_init=DCGAN_INIT, name=name)
    if self.upsampling == 'subpixel':
      return SubPixelConvTranspose(features, self.kernel_size, use_bias=use_bias,
                                   kernel_init=DCGAN_INIT, name=name)
    raise ValueError(f"unknown upsampling {self.upsampling!r}; "
                     "known: 'strided', 'subpixel', 'transpose'")

  @nn.compact
  def __call__(self, z: jax.Array, *, train: bool = False) -> jax.Array:
    height, width, channels = self.image_shape
    base_h = downsampled_size(height, self.num_upsamples)
    base_w = downsampled_size(width, self.num_upsamples)
    width0 = self.features * 2 ** (self.num_upsamples - 1)
    bias = self.norm != 'batch'  # Batch norm removes a bias (and Adam would chase its noise).
    h = z
    for size in self.dense_sizes:
      h = nn.Dense(size, use_bias=bias, kernel_init=DCGAN_INIT)(h)
      h = nn.relu(_norm(self.norm, train, self.axis_name)(h))
    h = nn.Dense(base_h * base_w * width0, use_bias=bias, kernel_init=DCGAN_INIT,
                 name='project')(h)
    h = h.reshape(z.shape[0], base_h, base_w, width0)
    h = nn.relu(_norm(self.norm, train, self.axis_name)(h))
    for i in range(self.num_upsamples - 1):
      h = self._upsample(width0 // 2 ** (i + 1), bias, name=f'up{i}')(h)
      h = nn.relu(_norm(self.norm, train, self.axis_name)(h))
    h = self._upsample(channels, True, name='image')(h)
    return jnp.tanh(h[:, :height, :width])


class QHead(nn.Module):
  """InfoGAN's Q: from the discriminator's features to the codes' posterior parameters."""

  categories: int
  continuous: int
  hidden_size: int = 128
  norm: str = 'batch'
  axis_name: str | None = None
  leak: float = 0.2  # LeakyReLU's negative slope.

  @nn.compact
  def __call__(self, h: jax.Array, *, train: bool = False) -> dict[str, jax.Array]:
    h = nn.Dense(self.hidden_size, use_bias=self.norm != 'batch', kernel_init=DCGAN_INIT)(h)
    h = nn.leaky_relu(_norm(self.norm, train, self.axis_name)(h), self.leak)
    out = {'q_features': h}
    if self.categories:
      out['code_logits'] = nn.Dense(self.categories, kernel_init=DCGAN_INIT, name='category')(h)
    if self.continuous:
      out['code_mean'] = nn.Dense(self.continuous, kernel_init=DCGAN_INIT, name='code')(h)
    return out


class ConvDiscriminator(nn.Module):
  """DCGAN's discriminator (and InfoGAN's, with `dense_sizes` and a Q head).

  Stride-2 convolutions doubling the channels, LeakyReLU (slope `leak`), normalisation on
  every layer but the input one (Radford et al.), optional dense layers, a linear logit.
  """

  features: int = 64  # Channels of the first convolution.
  num_downsamples: int = 2
  kernel_size: int = 4
  dense_sizes: Sequence[int] = ()
  norm: str = 'batch'
  axis_name: str | None = None
  q_categories: int = 0
  q_continuous: int = 0
  q_hidden_size: int = 128
  leak: float = 0.2  # LeakyReLU's negative slope: 0.2 in DCGAN, 0.1 in InfoGAN.

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> dict[str, jax.Array]:
    h = x
    bias = self.norm != 'batch'  # Batch norm removes a bias (and Adam would chase its noise).
    for i in range(self.num_downsamples):
      # nn.Conv(..., strides=(2, 2), padding='SAME') by its parameter names, whose input
      # gradient differentiates fast on CPU (a gradient penalty's second derivative).
      h = ConvStride2(self.features * 2 ** i, self.kernel_size, use_bias=bias or i == 0,
                      kernel_init=DCGAN_INIT, name=f'Conv_{i}')(h)
      if i > 0:
        h = _norm(self.norm, train, self.axis_name)(h)
      h = nn.leaky_relu(h, self.leak)
    # Representation (probed by the `representation` evaluator): the last dense layer, or
    # the last feature map averaged over positions (a vector per channel).
    features = h.mean(axis=(1, 2))
    h = h.reshape(h.shape[0], -1)
    for size in self.dense_sizes:
      h = nn.Dense(size, use_bias=bias, kernel_init=DCGAN_INIT)(h)
      h = nn.leaky_relu(_norm(self.norm, train, self.axis_name)(h), self.leak)
      features = h
    out = {'logits': nn.Dense(1, kernel_init=DCGAN_INIT, name='logits')(h)[:, 0],
           'features': features}
    if self.q_categories or self.q_continuous:
      out |= QHead(self.q_categories, self.q_continuous, self.q_hidden_size, self.norm,
                   self.axis_name, self.leak, name='q')(h, train=train)
    return out


class GAN(nn.Module):
  """The seed's GAN: `generate` maps latents to images, `discriminate` images to logits."""

  generator: nn.Module
  discriminator: nn.Module
  latent: LatentSpec

  def __call__(self, z: jax.Array, *, train: bool = False) -> dict[str, jax.Array]:
    return self.discriminate(self.generate(z, train=train), train=train)

  def generate(self, z: jax.Array, *, train: bool = False) -> jax.Array:
    return self.generator(z, train=train)

  def discriminate(self, x: jax.Array, *, train: bool = False) -> dict[str, jax.Array]:
    return self.discriminator(x, train=train)


def mlp_gan(*, image_shape, generator_sizes=(1200, 1200), discriminator_sizes=(240, 240),
            maxout_pieces=5, dropout=0.5, input_dropout=0.2, noise_dim=100,
            noise='uniform', axis_name=None) -> GAN:
  """Goodfellow et al. 2014's MNIST GAN (their code's sizes: 1200-unit ReLU layers in G,
  240-unit maxout layers of 5 pieces with dropout in D, uniform noise). No batch norm, so
  `axis_name` is unused."""
  del axis_name
  return GAN(MLPGenerator(generator_sizes, image_shape),
             MLPDiscriminator(discriminator_sizes, maxout_pieces, dropout, input_dropout),
             LatentSpec(noise_dim, noise))


def _num_resamples(image_shape, num_resamples):
  """Stride-2 stages to a base map of about 4-7 pixels, unless given: 28 -> 2, 32 -> 3, 64 -> 4."""
  if num_resamples:
    return num_resamples
  size, n = min(image_shape[:2]), 0
  while size > 7:
    size, n = -(-size // 2), n + 1
  return max(n, 1)


def dcgan(*, image_shape, features=64, num_resamples=0, kernel_size=4, norm='batch',
          discriminator_norm='', noise_dim=100, noise='normal', upsampling='strided',
          axis_name=None) -> GAN:
  """Radford et al. 2015's DCGAN, sized for `image_shape`.

  Args:
    image_shape: (H, W, C).
    features: channels of G's last hidden map and D's first convolution.
    num_resamples: stride-2 stages in each network; 0 picks them from the image size.
    kernel_size: of every (transposed) convolution; even (4, as PyTorch's DCGAN example).
    norm: 'batch' (DCGAN), 'layer' or 'none', for G and, unless `discriminator_norm`, D.
    discriminator_norm: D's own normalisation (WGAN-GP's critic must not use 'batch').
    noise_dim, noise: the latent.
    upsampling: 'strided', 'subpixel' or 'transpose', the same layer computed three ways.
    axis_name: the device axis batch statistics are averaged over.
  """
  n = _num_resamples(image_shape, num_resamples)
  g = ConvGenerator(image_shape, features, n, kernel_size, (), norm, axis_name, upsampling)
  d = ConvDiscriminator(features, n, kernel_size, (), discriminator_norm or norm, axis_name)
  return GAN(g, d, LatentSpec(noise_dim, noise))


def infogan(*, image_shape, features=64, num_resamples=0, kernel_size=4, dense_size=1024,
            noise_dim=62, categories=10, continuous=2, q_hidden_size=128, leak=0.1,
            noise_scale=1.0, axis_name=None) -> GAN:
  """Chen et al. 2016's MNIST InfoGAN: DCGAN-like networks with a 1024-unit dense layer in
  each, 62 noise dims, one 10-way categorical and two continuous codes, a Q head of 128 units
  on D's last hidden layer, LeakyReLU with slope 0.1 in D and Q (their appendix; their
  code's default is 0.01). `noise_scale` shrinks the uniform noise's range to
  [-noise_scale, noise_scale]."""
  n = _num_resamples(image_shape, num_resamples)
  g = ConvGenerator(image_shape, features, n, kernel_size, (dense_size,), 'batch', axis_name)
  d = ConvDiscriminator(features, n, kernel_size, (dense_size,), 'batch', axis_name,
                        categories, continuous, q_hidden_size, leak)
  return GAN(g, d, LatentSpec(noise_dim, 'uniform', categories, continuous, noise_scale))
