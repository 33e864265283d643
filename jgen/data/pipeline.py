"""tf.data pipelines over TFDS image datasets, deterministic and resumable.

The training stream is a function of (seed, step) alone: epoch `e` is the split shuffled
with a seed derived from (seed, e), cut into global batches, and each JAX process keeps its
own rows of every global batch. A run that resumes at step `s` therefore sees exactly the
batches an uninterrupted run would, and the global batch does not depend on how many
processes or devices share it.
"""

import dataclasses
from collections.abc import Iterator

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

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

  def __call__(self, image: tf.Tensor) -> tf.Tensor:
    if self.center_crop:
      h, w = image.shape[0], image.shape[1]
      image = tf.image.crop_to_bounding_box(image, (h - self.center_crop) // 2,
                                            (w - self.center_crop) // 2, self.center_crop,
                                            self.center_crop)
    if self.resize:
      image = tf.image.resize(tf.cast(image, tf.float32), (self.resize, self.resize),
                              antialias=True)
      image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    return image


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What the rest of jgen needs to know about a dataset."""

  name: str
  image_shape: tuple[int, int, int]
  num_train: int
  num_test: int
  num_classes: int


def dataset_info(builder, train_split: str = 'train', test_split: str = 'test',
                 transform: ImageTransform = ImageTransform()) -> DatasetInfo:
  """Reads image shape (after `transform`), split sizes and class count from a TFDS builder.

  Datasets without a `label` feature (CelebA) get label 0 everywhere and num_classes 0.

  Raises:
    ConfigError: if the dataset lacks an `image` feature or the splits.
  """
  features = builder.info.features
  if 'image' not in features:
    raise ConfigError(f'dataset {builder.name!r} has no image feature; '
                      f'it has: {", ".join(features.keys())}')
  splits = builder.info.splits
  for split in (train_split, test_split):
    if split not in splits:
      raise ConfigError(f'dataset {builder.name!r} has no split {split!r}; '
                        f'it has: {", ".join(splits.keys())}')
  return DatasetInfo(
      name=builder.name,
      image_shape=transform.shape(features['image'].shape),
      num_train=splits[train_split].num_examples,
      num_test=splits[test_split].num_examples,
      num_classes=features['label'].num_classes if 'label' in features else 0,
  )


def _read(builder, split: str, transform: ImageTransform) -> tf.data.Dataset:
  """The split in its stored order, as (transformed) uint8 images and int32 labels."""
  ds = builder.as_dataset(split=split, shuffle_files=False,
                          read_config=tfds.ReadConfig(interleave_cycle_length=1))
  has_label = 'label' in builder.info.features

  def example(ex):
    label = tf.cast(ex['label'], tf.int32) if has_label else tf.constant(0, tf.int32)
    return {'image': transform(ex['image']), 'label': label}

  return ds.map(example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _to_float(batch):
  """uint8 [0, 255] images to float32 [0, 1], done per batch to keep the cache small."""
  return {**batch, 'image': tf.cast(batch['image'], tf.float32) / 255.0}


def _local_rows(global_batch_size: int, process_index: int, process_count: int):
  local = global_batch_size // process_count
  lo = process_index * local
  return lambda batch: {k: v[lo:lo + local] for k, v in batch.items()}


def epoch_seed(seed: int, epoch: int) -> int:
  """A distinct 31-bit shuffle seed per (seed, epoch)."""
  return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0] & 0x7FFFFFFF)


def train_batches(builder, *, split: str, global_batch_size: int, seed: int,
                  start_step: int = 0, process_index: int = 0, process_count: int = 1,
                  shuffle_buffer: int | None = None,
                  transform: ImageTransform = ImageTransform()) -> Iterator[dict[str, np.ndarray]]:
  """Yields this process's part of every global training batch, from `start_step` on.

  Args:
    builder: a prepared TFDS builder.
    split: the TFDS split to train on.
    global_batch_size: examples per step over all processes.
    seed: the data seed; with `start_step` it fixes the whole stream.
    start_step: the step to resume at; the stream skips what earlier steps consumed.
    process_index: this JAX process.
    process_count: how many JAX processes share each global batch.
    shuffle_buffer: None shuffles the whole split each epoch.
    transform: applied to every image before the (uint8, in-memory) cache.

  Yields:
    dicts of numpy arrays: `image` float32 (B, H, W, C) in [0, 1], `label` int32 (B,).
  """
  num_examples = builder.info.splits[split].num_examples
  steps_per_epoch = num_examples // global_batch_size
  if steps_per_epoch == 0:
    raise ConfigError(f'batch size {global_batch_size} exceeds the {num_examples} examples '
                      f'of split {split!r}; lower --config.batch_size')
  base = _read(builder, split, transform).cache()
  epoch, skip = divmod(start_step, steps_per_epoch)
  local_rows = _local_rows(global_batch_size, process_index, process_count)
  while True:
    ds = base.shuffle(shuffle_buffer or num_examples, seed=epoch_seed(seed, epoch),
                      reshuffle_each_iteration=False)
    ds = ds.batch(global_batch_size, drop_remainder=True).skip(skip)
    ds = ds.map(local_rows).map(_to_float, num_parallel_calls=tf.data.AUTOTUNE,
                                deterministic=True)
    yield from ds.prefetch(2).as_numpy_iterator()
    epoch, skip = epoch + 1, 0


def eval_batches(builder, *, split: str, global_batch_size: int, process_index: int = 0,
                 process_count: int = 1,
                 num_examples: int | None = None,
                 transform: ImageTransform = ImageTransform()) -> Iterator[dict[str, np.ndarray]]:
  """Yields every example of `split` once, the last batch padded, with a `mask`.

  No example is dropped: the last global batch is padded with zeros to full size and
  `mask` is 1.0 on real examples and 0.0 on padding, so metrics are exact. `index` (int32)
  is each example's position in the split, so that randomness in an evaluation (a fixed
  binarisation, corruption or importance samples) can be keyed by example, whatever the
  batch size, device count or process count.
  """
  ds = _read(builder, split, transform)
  if num_examples is not None:
    ds = ds.take(num_examples)
  ds = ds.enumerate().map(lambda i, ex: {**ex, 'mask': tf.constant(1.0, tf.float32),
                                         'index': tf.cast(i, tf.int32)})
  ds = ds.padded_batch(global_batch_size)

  def pad(batch):
    n = tf.shape(batch['mask'])[0]
    return {k: tf.pad(v, [[0, global_batch_size - n]] + [[0, 0]] * (len(v.shape) - 1))
            for k, v in batch.items()}

  ds = ds.map(pad).map(_local_rows(global_batch_size, process_index, process_count))
  yield from ds.map(_to_float).prefetch(2).as_numpy_iterator()
