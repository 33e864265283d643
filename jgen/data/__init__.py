"""Datasets: offline preparation through TFDS, decoded once into arrays that training and
evaluation read with NumPy; or arrays made by a registered function (`register`)."""

from jgen.data.pipeline import (
    DatasetInfo,
    ImageTransform,
    Source,
    dataset_info,
    eval_batches,
    split_images,
    train_batches,
)
from jgen.data.prepare import ensure_prepared, example_shape, get_builder, load
from jgen.data.registered import register

__all__ = ['DatasetInfo', 'ImageTransform', 'Source', 'dataset_info', 'ensure_prepared',
           'eval_batches', 'example_shape', 'get_builder', 'load', 'register', 'split_images',
           'train_batches']
