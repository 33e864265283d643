"""Decodes a prepared TFDS dataset into the arrays `jgen.data.pipeline` reads.

This is the one place jgen uses TensorFlow (through TFDS's reader), once per dataset and
image transform: training and evaluation then read the arrays with NumPy alone.
"""

import json
import os
import shutil
import tempfile

import numpy as np

from jgen.data.pipeline import ImageTransform

_CHUNK = 4096


def _transform(tf, transform: ImageTransform, image):
  if transform.center_crop:
    h, w, crop = image.shape[0], image.shape[1], transform.center_crop
    image = tf.image.crop_to_bounding_box(image, (h - crop) // 2, (w - crop) // 2, crop, crop)
  if transform.resize:
    image = tf.image.resize(tf.cast(image, tf.float32), (transform.resize, transform.resize),
                            antialias=True)
    image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
  return image


def write_arrays(builder, transform: ImageTransform, path: str) -> None:
  """Writes every split of `builder` (prepared), transformed, as arrays into `path`.

  The directory appears whole or not at all (written beside it, then renamed), so that
  concurrent processes or an interrupted export never leave a partial one.
  """
  import tensorflow as tf
  import tensorflow_datasets as tfds

  tf.config.set_visible_devices([], 'GPU')  # Keep TF off accelerators JAX uses.
  features = builder.info.features
  has_label = 'label' in features
  parent = os.path.dirname(path)
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix='.partial-', dir=parent)
  try:
    splits = {}
    for split, split_info in builder.info.splits.items():
      n = split_info.num_examples
      shape = transform.shape(features['image'].shape)
      images = np.lib.format.open_memmap(os.path.join(tmp, f'{split}.images.npy'), mode='w+',
                                         dtype=np.uint8, shape=(n, *shape))
      labels = np.zeros(n, np.int32)
      ds = builder.as_dataset(split=split, shuffle_files=False,
                              read_config=tfds.ReadConfig(interleave_cycle_length=1))
      ds = ds.map(lambda ex: (_transform(tf, transform, ex['image']),
                              tf.cast(ex['label'], tf.int32) if has_label else 0),
                  num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
      i = 0
      for image, label in ds.batch(_CHUNK).as_numpy_iterator():
        images[i:i + len(image)], labels[i:i + len(image)] = image, label
        i += len(image)
      if i != n:
        raise RuntimeError(f'{builder.name} {split}: read {i} examples, its metadata says {n}')
      images.flush()
      del images
      np.save(os.path.join(tmp, f'{split}.labels.npy'), labels)
      splits[split] = n
    info = {'name': builder.name, 'version': str(builder.version),
            'image_shape': list(transform.shape(features['image'].shape)),
            'stored_shape': list(features['image'].shape),
            'num_classes': features['label'].num_classes if has_label else 0,
            'splits': splits}
    with open(os.path.join(tmp, 'info.json'), 'w') as f:
      json.dump(info, f, indent=1)
    os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide a shared data directory.
    try:
      os.rename(tmp, path)
    except OSError:  # Another process finished the same export first.
      if not os.path.exists(os.path.join(path, 'info.json')):
        raise
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
