"""The shipped feature classifiers: their weights, and features of images.

`jgen/evaluate/weights/DATASET.msgpack` holds a trained `models.Classifier`'s parameters and
`DATASET.json` its model options, image shape and test accuracy. They are written by
`python run.py --config configs/classifier_DATASET.py --workdir W --mode export` after
training that config (`make classifiers` does both for every dataset), so every machine
computes the same features from the same bytes.
"""

import functools
import json
import os

import jax
import numpy as np
from flax import serialization

from jgen import models
from jgen.registry import ConfigError

WEIGHTS_DIR = os.path.join(os.path.dirname(__file__), 'weights')


def paths(dataset: str, weights_dir: str = WEIGHTS_DIR) -> tuple[str, str]:
  """The (parameters, description) files of `dataset`'s classifier."""
  return (os.path.join(weights_dir, f'{dataset}.msgpack'),
          os.path.join(weights_dir, f'{dataset}.json'))


def available(weights_dir: str = WEIGHTS_DIR) -> list[str]:
  """Datasets with a shipped classifier."""
  if not os.path.isdir(weights_dir):
    return []
  return sorted(name[:-len('.msgpack')] for name in os.listdir(weights_dir)
                if name.endswith('.msgpack'))


def save(dataset: str, params, description: dict, weights_dir: str = WEIGHTS_DIR) -> None:
  """Writes a classifier's parameters and description (model options, image shape, ...)."""
  os.makedirs(weights_dir, exist_ok=True)
  params_path, info_path = paths(dataset, weights_dir)
  for path, data, mode in ((params_path, serialization.to_bytes(jax.device_get(params)), 'wb'),
                           (info_path, json.dumps(description, indent=2, sort_keys=True), 'w')):
    with open(path + '.tmp', mode) as f:
      f.write(data)
    os.replace(path + '.tmp', path)


class FeatureNet:
  """A shipped classifier: images in [0, 1] -> (penultimate features, class probabilities).

  Args:
    dataset: a name from `available()`.
    batch_size: images per compiled call; the last batch is padded, never dropped.

  Raises:
    ConfigError: if no classifier ships for `dataset`.
  """

  def __init__(self, dataset: str, batch_size: int = 500, weights_dir: str = WEIGHTS_DIR):
    params_path, info_path = paths(dataset, weights_dir)
    if not os.path.exists(params_path):
      raise ConfigError(
          f'no feature classifier for {dataset!r} (known: {", ".join(available(weights_dir))}); '
          f'train one: python run.py --config configs/classifier_{dataset}.py --workdir '
          f'runs/classifier_{dataset}, then the same with --mode export')
    with open(info_path) as f:
      self.description = json.load(f)
    self.image_shape = tuple(self.description['image_shape'])
    self.model = models.build_model(**self.description['model'], image_shape=self.image_shape)
    template = jax.eval_shape(self.model.init, jax.random.PRNGKey(0),
                              np.zeros((1, *self.image_shape), np.float32))['params']
    with open(params_path, 'rb') as f:
      self.params = serialization.from_bytes(
          jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), template), f.read())
    self.batch_size = batch_size
    self._apply = jax.jit(functools.partial(self.model.apply, train=False))

  def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Features (N, D) and class probabilities (N, K), float32, of images (N, H, W, C).

    Raises:
      ConfigError: if the images do not have the classifier's shape.
    """
    images = np.asarray(images, np.float32)
    if images.shape[1:] != self.image_shape:
      raise ConfigError(f'the feature classifier takes {self.image_shape} images, '
                        f'not {images.shape[1:]}')
    features, probs = [], []
    for lo in range(0, len(images), self.batch_size):
      batch = images[lo:lo + self.batch_size]
      pad = self.batch_size - len(batch)
      out = self._apply({'params': self.params}, np.pad(batch, ((0, pad), (0, 0), (0, 0),
                                                                (0, 0))))
      features.append(np.asarray(out['features'])[:len(batch)])
      probs.append(np.asarray(jax.nn.softmax(out['logits']))[:len(batch)])
    return np.concatenate(features), np.concatenate(probs)
