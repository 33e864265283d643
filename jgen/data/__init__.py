"""Datasets: offline preparation through TFDS, decoded once into arrays that training and
evaluation read with NumPy."""

from jgen.data.pipeline import (
    DatasetInfo,
    ImageTransform,
    Source,
    dataset_info,
    eval_batches,
    split_images,
    train_batches,
)
from jgen.data.prepare import ensure_prepared, get_builder, load

__all__ = ['DatasetInfo', 'ImageTransform', 'Source', 'dataset_info', 'ensure_prepared',
           'eval_batches', 'get_builder', 'load', 'split_images', 'train_batches']
