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
from jgen.registry import ConfigError, Registry

MODELS = Registry('model')
MODELS.register('mlp_autoencoder')(mlp_autoencoder)
MODELS.register('conv_autoencoder')(conv_autoencoder)


def build_model(name: str, *, image_shape, **kwargs):
  """Builds the registered model `name` for images of `image_shape` (H, W, C)."""
  factory = MODELS.get(name)
  try:
    return factory(image_shape=tuple(image_shape), **kwargs)
  except TypeError as e:
    raise ConfigError(f'model {name!r} rejects its config: {e}') from None


__all__ = [
    'MODELS', 'Autoencoder', 'ConvDecoder', 'ConvEncoder', 'Decoder', 'Encoder', 'build_model'
]
