"""Variational autoencoders (Kingma & Welling 2014): a Gaussian encoder, a decoder of pixels.

`VAE(encoder, decoder, latent_dim)` reuses the autoencoders' encoders and decoders: the
encoder's code layer has 2 * latent_dim units (mean, then log-variance of q(z|x)); the
decoder maps z to pixel logits. The pixel likelihood is `bernoulli` (binary or [0, 1]
targets) or `gaussian` (mean sigmoid(logits), one learned standard deviation).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from jgen.losses import variational
from jgen.models.autoencoders import ConvDecoder, ConvEncoder, Decoder, Encoder

LIKELIHOODS = ('bernoulli', 'gaussian')


class VAE(nn.Module):
  """Encoder to q(z|x), decoder to p(x|z), standard normal prior."""

  encoder: nn.Module
  decoder: nn.Module
  latent_dim: int
  likelihood: str = 'bernoulli'

  def setup(self):
    if self.likelihood not in LIKELIHOODS:
      raise ValueError(f'unknown likelihood {self.likelihood!r}; known: {LIKELIHOODS}')
    if self.likelihood == 'gaussian':
      self.log_scale = self.param('log_scale', nn.initializers.zeros_init(), ())

  def __call__(self, x: jax.Array, eps: jax.Array, *, train: bool = False) -> dict:
    """One reparameterised pass: q's parameters, the sample z and the decoder's logits."""
    mean, log_var = self.encode(x, train=train)
    z = variational.reparameterize(eps, mean=mean, log_var=log_var)
    return {'mean': mean, 'log_var': log_var, 'z': z, 'logits': self.decode(z, train=train)}

  def encode(self, x: jax.Array, *, train: bool = False) -> tuple[jax.Array, jax.Array]:
    """q(z|x)'s mean and log-variance, each (B, latent_dim)."""
    h = self.encoder(x, train=train)
    return h[:, :self.latent_dim], h[:, self.latent_dim:]

  def decode(self, z: jax.Array, *, train: bool = False) -> jax.Array:
    return self.decoder(z, train=train)

  def log_likelihood(self, logits: jax.Array, targets: jax.Array) -> jax.Array:
    """log p(x|z) per example, from the decoder's logits."""
    if self.likelihood == 'gaussian':
      return variational.gaussian_log_likelihood(logits=logits, targets=targets,
                                                 log_scale=self.log_scale)
    return variational.bernoulli_log_likelihood(logits=logits, targets=targets)

  def log_likelihood_samples(self, logits: jax.Array, targets: jax.Array) -> jax.Array:
    """log p(x|z) of K decodings per example: (B, K, ...) logits, (B, ...) targets -> (B, K)."""
    if self.likelihood == 'gaussian':
      b, k = logits.shape[:2]
      flat = logits.reshape(b * k, *logits.shape[2:])
      return self.log_likelihood(flat, jnp.repeat(targets, k, axis=0)).reshape(b, k)
    return variational.bernoulli_log_likelihood_samples(logits=logits, targets=targets)

  def reconstruct(self, x: jax.Array) -> jax.Array:
    """The decoder's mean image at q's mean, in [0, 1]."""
    return self.generate(self.encode(x)[0])

  def generate(self, z: jax.Array) -> jax.Array:
    """The decoder's mean image for codes z, in [0, 1] (Bernoulli: pixel probabilities)."""
    return jax.nn.sigmoid(self.decode(z)).astype(jnp.float32)


def mlp_vae(*, image_shape, hidden_sizes=(200, 200), latent_dim=50, activation='tanh',
            likelihood='bernoulli') -> VAE:
  """Burda et al.'s MNIST VAE by default: 784-200-200-(50 Gaussian), tanh, mirrored."""
  hidden_sizes = tuple(hidden_sizes)
  return VAE(encoder=Encoder(hidden_sizes, 2 * latent_dim, activation),
             decoder=Decoder(hidden_sizes[::-1], tuple(image_shape), activation),
             latent_dim=latent_dim, likelihood=likelihood)


def conv_vae(*, image_shape, features=(32, 64), latent_dim=32, activation='relu',
             likelihood='bernoulli') -> VAE:
  """A convolutional VAE: the conv autoencoder's encoder and decoder around a Gaussian z."""
  features = tuple(features)
  return VAE(encoder=ConvEncoder(features, 2 * latent_dim, activation),
             decoder=ConvDecoder(features, tuple(image_shape), activation),
             latent_dim=latent_dim, likelihood=likelihood)
