"""Models by registered name; each factory takes `image_shape` and its own kwargs."""

from jgen.models.autoencoders import (
    Autoencoder,
    ConvDecoder,
    ConvEncoder,
    Decoder,
    Encoder,
    conv_autoencoder,
    mlp_autoencoder,
)
from jgen.models.classifier import Classifier, classifier
from jgen.models.gans import (
    GAN,
    ConvDiscriminator,
    ConvGenerator,
    LatentSpec,
    MLPDiscriminator,
    MLPGenerator,
    dcgan,
    infogan,
    latent_from_codes,
    mlp_gan,
    sample_latent,
)
from jgen.models.vae import VAE, conv_vae, mlp_vae
from jgen.registry import ConfigError, Registry

MODELS = Registry('model')
MODELS.register('mlp_autoencoder')(mlp_autoencoder)
MODELS.register('conv_autoencoder')(conv_autoencoder)
MODELS.register('mlp_gan')(mlp_gan)
MODELS.register('dcgan')(dcgan)
MODELS.register('infogan')(infogan)
MODELS.register('mlp_vae')(mlp_vae)
MODELS.register('conv_vae')(conv_vae)
MODELS.register('classifier')(classifier)


def build_model(name: str, *, image_shape, **kwargs):
  """Builds the registered model `name` for images of `image_shape` (H, W, C)."""
  factory = MODELS.get(name)
  try:
    return factory(image_shape=tuple(image_shape), **kwargs)
  except TypeError as e:
    raise ConfigError(f'model {name!r} rejects its config: {e}') from None


__all__ = [
    'GAN', 'MODELS', 'VAE', 'Autoencoder', 'Classifier', 'ConvDecoder', 'ConvDiscriminator',
    'ConvEncoder', 'ConvGenerator', 'Decoder', 'Encoder', 'LatentSpec', 'MLPDiscriminator',
    'MLPGenerator', 'build_model', 'latent_from_codes', 'sample_latent'
]
