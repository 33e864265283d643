"""The feature network of the sample metrics: a small convolutional classifier.

Sample-quality metrics (`jgen.evaluate.metrics`) compare generated and real images in the
penultimate layer of a classifier trained on the dataset itself (Inception's weights cannot
be had offline, and ImageNet features suit 28x28 digits poorly). The network is small so
that its weights ship inside the package (`jgen/evaluate/weights/`) and every machine
computes the same features.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jgen.models.layers import ACTIVATIONS


class Classifier(nn.Module):
  """3x3 convolutions (stride 1 for the first, then stride 2), a dense feature layer, logits.

  Attributes:
    features: channels of each convolution; all but the first halve the resolution.
    feature_dim: width of the penultimate (feature) layer.
    num_classes: output classes.
    dropout: dropout rate before the feature layer and before the logits (training only).
  """

  features: Sequence[int] = (32, 64, 128, 64)
  feature_dim: int = 128
  num_classes: int = 10
  activation: str = 'relu'
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> dict[str, jax.Array]:
    """Images in [0, 1] (B, H, W, C) -> {'features': (B, feature_dim), 'logits': (B, K)}."""
    act = ACTIVATIONS.get(self.activation)
    h = x * 2.0 - 1.0
    for i, f in enumerate(self.features):
      h = act(nn.Conv(f, (3, 3), strides=(1, 1) if i == 0 else (2, 2))(h))
    h = nn.Dropout(self.dropout, deterministic=not train)(h.reshape(h.shape[0], -1))
    features = act(nn.Dense(self.feature_dim, name='features')(h))
    logits = nn.Dense(self.num_classes, name='logits')(
        nn.Dropout(self.dropout, deterministic=not train)(features))
    return {'features': features.astype(jnp.float32), 'logits': logits.astype(jnp.float32)}


def classifier(*, image_shape, features=(32, 64, 128, 64), feature_dim=128, num_classes=10,
               activation='relu', dropout=0.0) -> Classifier:
  """The feature classifier; any image shape (28x28x1, 32x32x3, ...)."""
  del image_shape  # Convolutions and the dense layer adapt to it at init.
  return Classifier(tuple(features), feature_dim, num_classes, activation, dropout)
