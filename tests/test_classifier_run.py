"""The feature-classifier recipe end to end: train, export, load as a feature network."""

import json

import numpy as np
from conftest import write_fake_tfds

from configs import classifier_cifar10
from jgen import modes, train
from jgen.evaluate import features


def test_cifar10_recipe_trains_exports_and_loads(tmp_path, fake_examples):
  """The recipe runs on CIFAR-10's 32x32x3 shapes (fake examples: no offline CIFAR-10) and its
  export loads as a feature network whose outputs are the trained network's."""
  data_dir = tmp_path / 'data'
  write_fake_tfds('cifar10', data_dir, {'train': 64, 'test': 40})
  config = classifier_cifar10.get_config('smoke')
  with config.unlocked():
    config.data.download = False
    config.data.data_dir = str(data_dir)
    config.num_train_steps = 4
  results = train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert np.isfinite(results['test_loss']) and 'test_accuracy' in results
  weights = tmp_path / 'weights'
  modes.export_classifier(config, str(tmp_path / 'run'), weights_dir=str(weights))
  assert features.available(str(weights)) == ['cifar10']
  description = json.loads((weights / 'cifar10.json').read_text())
  assert description['image_shape'] == [32, 32, 3]
  assert description['test_accuracy'] == results['test_accuracy']
  net = features.FeatureNet('cifar10', batch_size=16, weights_dir=str(weights))
  images = np.random.default_rng(0).uniform(size=(20, 32, 32, 3)).astype(np.float32)
  feats, probs = net(images)
  assert feats.shape == (20, 256) and probs.shape == (20, 10)
  # Padding the last batch changes nothing: each image's features are its own.
  alone, _ = net(images[17:18])
  np.testing.assert_allclose(alone[0], feats[17], rtol=1e-5, atol=1e-6)
