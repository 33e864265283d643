"""The shipped feature classifiers, and the sample metrics on their features of real MNIST."""

import os

import numpy as np
import pytest
from conftest import data_dir, is_prepared

from jgen import data
from jgen.evaluate import features, metrics

ACCURACY = {'mnist': 0.993, 'fashion_mnist': 0.92}


def _split(name: str, split: str, n: int | None = None):
  source = data.load(name, data_dir(), download=False)
  images, labels = [], []
  for batch in data.eval_batches(source, split=split, global_batch_size=1000, num_examples=n):
    real = batch['mask'] > 0
    images.append(batch['image'][real])
    labels.append(batch['label'][real])
  return np.concatenate(images), np.concatenate(labels)


@pytest.mark.parametrize('dataset', sorted(ACCURACY))
def test_shipped_classifier_is_small_and_accurate_on_the_real_test_split(dataset):
  assert dataset in features.available(), f'no classifier ships for {dataset}; make classifiers'
  params_path, _ = features.paths(dataset)
  assert os.path.getsize(params_path) < 2 * 1024 * 1024
  if not is_prepared(dataset):
    pytest.skip(f'{dataset} not prepared (needs its offline source or the internet)')
  net = features.FeatureNet(dataset)
  images, labels = _split(dataset, 'test')
  assert len(images) == 10_000
  feats, probs = net(images)
  assert feats.shape == (10_000, net.description['model']['feature_dim'])
  np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
  accuracy = float((probs.argmax(1) == labels).mean())
  assert accuracy >= ACCURACY[dataset]
  assert accuracy == pytest.approx(net.description['test_accuracy'], abs=1e-4)


@pytest.fixture(scope='module')
def mnist_features(mnist_source):
  """Features and probabilities of 2,000 test and 4,000 training images of MNIST."""
  net = features.FeatureNet('mnist')
  test_images, test_labels = _split('mnist', 'test', 2000)
  train_images, _ = _split('mnist', 'train', 4000)
  return net, test_images, test_labels, net(test_images), net(train_images), train_images


def _score(fake, real_features, labels):
  frequencies = np.bincount(labels, minlength=10) / len(labels)
  return metrics.sample_metrics(*fake, real_features, frequencies, kid_subsets=20)


def test_real_images_sit_at_the_floor_and_noise_and_collapse_far_above(mnist_features):
  net, test_images, labels, (test_feats, _), (train_feats, train_probs), train_images = (
      mnist_features)
  # Two disjoint sets of real training images: both are the floor, and they agree.
  floor = _score((train_feats[:2000], train_probs[:2000]), test_feats, labels)
  other = _score((train_feats[2000:], train_probs[2000:]), test_feats, labels)
  assert other['frechet'] < 2 * floor['frechet']
  assert abs(floor['kid']) < 3 * floor['kid_std'] + 1e-3
  for key in ('precision', 'recall', 'coverage'):
    assert floor[key] > 0.6 and abs(floor[key] - other[key]) < 0.05, key
  assert floor['classes_covered'] == 10 and floor['class_max_deviation'] < 0.25
  assert floor['confidence'] > 0.95 and floor['classifier_score'] > 9

  noise = net(np.random.default_rng(0).uniform(size=test_images.shape).astype(np.float32))
  noisy = _score(noise, test_feats, labels)
  assert noisy['frechet'] > 20 * floor['frechet']
  assert noisy['kid'] > 20 * floor['kid_std']
  assert noisy['precision'] < 0.1 and noisy['coverage'] < 0.1

  collapsed = net(np.repeat(train_images[:1], 2000, axis=0))  # One real digit, repeated.
  mode = _score(collapsed, test_feats, labels)
  assert mode['frechet'] > 20 * floor['frechet']
  assert mode['recall'] == 0.0 and mode['coverage'] < 0.05
  assert mode['classes_covered'] == 1 and mode['class_max_deviation'] > 8
  assert mode['classifier_score'] == pytest.approx(1.0, abs=0.05)
