"""Batches of a prepared dataset, read from its decoded arrays: deterministic, resumable,
and free of TensorFlow.

A prepared TFDS dataset is decoded once (`jgen.data.export`, the only place TensorFlow is
used) into uint8 image and int32 label arrays per split; training and evaluation read those
arrays, memory-mapped, with NumPy. The training stream is a function of (seed, step)
alone: epoch `e` is the split permuted with a seed derived from (seed, e), cut into global
batches, and each JAX process keeps its own rows of every global batch. A run that resumes
at step `s` therefore sees exactly the batches an uninterrupted run would, and the global
batch does not depend on how many processes or devices share it.
"""

import dataclasses
import json
import os
import re
from collections.abc import Iterator

import numpy as np

from jgen.registry import ConfigError


@dataclasses.dataclass(frozen=True)
class ImageTransform:
  """What is done to every stored image before anything else: a centred square crop of
  `center_crop` pixels, then a resize to `resize` x `resize` (0: leave as it is)."""

  center_crop: int = 0
  resize: int = 0

  def shape(self, stored_shape) -> tuple[int, int, int]:
    h, w, c = stored_shape
    if self.center_crop:
      if self.center_crop > min(h, w):
        raise ConfigError(f'data.center_crop={self.center_crop} exceeds the {h}x{w} images; '
                          'use a smaller crop')
      h = w = self.center_crop
    if self.resize:
      h = w = self.resize
    return (h, w, c)

  @property
  def key(self) -> str:
    """A directory name: decoded arrays are kept per transform."""
    parts = [f'crop{self.center_crop}'] * bool(self.center_crop) + (
        [f'resize{self.resize}'] * bool(self.resize))
    return '_'.join(parts) or 'stored'


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What the rest of jgen needs to know about a dataset."""

  name: str
  image_shape: tuple[int, int, int]
  num_train: int
  num_test: int
  num_classes: int


class Source:
  """A prepared dataset's splits as decoded arrays in `path` (see `jgen.data.export`).

  `path/info.json` holds the name, image shape (after the transform), class count (0 for
  datasets without labels) and split sizes; `path/SPLIT.images.npy` (uint8, N x H x W x C)
  and `path/SPLIT.labels.npy` (int32, N) the examples in TFDS's stored order.
  """

  def __init__(self, path: str):
    self.path = path
    with open(os.path.join(path, 'info.json')) as f:
      meta = json.load(f)
    self.name = meta['name']
    self.image_shape = tuple(meta['image_shape'])
    self.num_classes = meta['num_classes']
    self.splits = meta['splits']
    self._arrays = {}

  @classmethod
  def from_arrays(cls, name: str, splits: dict, num_classes: int) -> 'Source':
    """A source over in-memory arrays: {split: (examples (N, H, W, C), labels (N,))}."""
    source = cls.__new__(cls)
    source.path, source.name, source.num_classes = None, name, num_classes
    source._arrays = dict(splits)
    source.splits = {split: len(labels) for split, (_, labels) in splits.items()}
    source.image_shape = tuple(next(iter(splits.values()))[0].shape[1:])
    return source

  def _parse(self, split: str) -> tuple[str, slice]:
    """A split name, or a slice of one in TFDS's notation (`test[:1000]`, `train[100:200]`),
    as (name, slice); a ConfigError names the splits there are."""
    match = re.fullmatch(r'(\w+)(?:\[(-?\d*):(-?\d*)\])?', split)
    if not match or match[1] not in self.splits:
      raise ConfigError(f'dataset {self.name!r} has no split {split!r}; '
                        f'it has: {", ".join(self.splits)} (or a slice such as '
                        f'{next(iter(self.splits))}[:1000])')
    start, stop = (int(v) if v else None for v in match.group(2, 3))
    return match[1], slice(start, stop)

  def check_split(self, split: str) -> int:
    """The number of examples in `split` (a name or a slice of one), or a ConfigError."""
    name, part = self._parse(split)
    n = len(range(self.splits[name])[part])
    if not n and part != slice(None):
      raise ConfigError(f'split {split!r} of dataset {self.name!r} is empty (the split has '
                        f'{self.splits[name]} examples)')
    return n

  def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of `split` (a name or a slice of one), memory-mapped."""
    self.check_split(split)
    name, part = self._parse(split)
    if name not in self._arrays:
      self._arrays[name] = tuple(
          np.load(os.path.join(self.path, f'{name}.{kind}.npy'), mmap_mode='r')
          for kind in ('images', 'labels'))
    return tuple(a[part] for a in self._arrays[name])


def dataset_info(source: Source, train_split: str = 'train',
                 test_split: str = 'test') -> DatasetInfo:
  """Image shape, split sizes and class count of the splits a run uses.

  Raises:
    ConfigError: if a split does not exist.
  """
  return DatasetInfo(name=source.name, image_shape=source.image_shape,
                     num_train=source.check_split(train_split),
                     num_test=source.check_split(test_split), num_classes=source.num_classes)


def _to_float(images: np.ndarray) -> np.ndarray:
  """uint8 [0, 255] images to float32 [0, 1]; float arrays (registered datasets) as they are."""
  if images.dtype != np.uint8:
    return np.asarray(images, np.float32)
  return images.astype(np.float32) / np.float32(255.0)


def split_images(source: Source, split: str,
                 num_examples: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """The first `num_examples` (None: all) images of `split` as float32 (N, H, W, C) in
  [0, 1], and their labels, in the stored order."""
  images, labels = source.arrays(split)
  return _to_float(images[:num_examples]), np.array(labels[:num_examples])


def epoch_seed(seed: int, epoch: int) -> int:
  """A distinct 31-bit shuffle seed per (seed, epoch)."""
  return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0] & 0x7FFFFFFF)


def epoch_order(seed: int, epoch: int, num_examples: int) -> np.ndarray:
  """The order in which epoch `epoch` visits the split's examples."""
  return np.random.default_rng(epoch_seed(seed, epoch)).permutation(num_examples)


def train_batches(source: Source, *, split: str, global_batch_size: int, seed: int,
                  start_step: int = 0, process_index: int = 0, process_count: int = 1,
                  features: tuple[str, ...] = ('image', 'label')
                  ) -> Iterator[dict[str, np.ndarray]]:
  """Yields this process's part of every global training batch, from `start_step` on.

  Args:
    source: a prepared dataset.
    split: the split to train on.
    global_batch_size: examples per step over all processes.
    seed: the data seed; with `start_step` it fixes the whole stream.
    start_step: the step to resume at; the stream skips what earlier steps consumed.
    process_index: this JAX process.
    process_count: how many JAX processes share each global batch.
    features: which of `image` and `label` to read (a step that reads no labels saves
      their gather and transfer).

  Yields:
    dicts of numpy arrays: `image` float32 (B, H, W, C) in [0, 1], `label` int32 (B,).
  """
  images, labels = source.arrays(split)
  num_examples = len(labels)
  steps_per_epoch = num_examples // global_batch_size
  if steps_per_epoch == 0:
    raise ConfigError(f'batch size {global_batch_size} exceeds the {num_examples} examples '
                      f'of split {split!r}; lower --config.batch_size')
  local = global_batch_size // process_count
  lo = process_index * local
  epoch, first = divmod(start_step, steps_per_epoch)
  while True:
    order = epoch_order(seed, epoch, num_examples)
    for step in range(first, steps_per_epoch):
      rows = order[step * global_batch_size:][lo:lo + local]
      batch = {}
      if 'image' in features:
        batch['image'] = _to_float(images[rows])
      if 'label' in features:
        batch['label'] = np.asarray(labels[rows])
      yield batch
    epoch, first = epoch + 1, 0


def eval_batches(source: Source, *, split: str, global_batch_size: int, process_index: int = 0,
                 process_count: int = 1,
                 num_examples: int | None = None) -> Iterator[dict[str, np.ndarray]]:
  """Yields every example of `split` (or its first `num_examples`) once, the last batch
  padded, with a `mask`.

  No example is dropped: the last global batch is padded with zeros to full size and
  `mask` is 1.0 on real examples and 0.0 on padding, so metrics are exact. `index` (int32)
  is each example's position in the split, so that randomness in an evaluation (a fixed
  binarisation, corruption or importance samples) can be keyed by example, whatever the
  batch size, device count or process count.
  """
  images, labels = source.arrays(split)
  n = len(labels) if num_examples is None else min(num_examples, len(labels))
  local = global_batch_size // process_count
  for start in range(0, n, global_batch_size):
    lo = start + process_index * local
    hi = min(lo + local, n)
    real = max(hi - lo, 0)
    index = np.arange(lo, lo + local, dtype=np.int32)
    image = np.zeros((local, *images.shape[1:]), np.float32)
    label = np.zeros(local, np.int32)
    if real:
      image[:real] = _to_float(images[lo:hi])
      label[:real] = labels[lo:hi]
    index[real:] = 0
    yield {'image': image, 'label': label, 'mask': (np.arange(local) < real).astype(np.float32),
           'index': index}
