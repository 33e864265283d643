"""Datasets: offline preparation and tf.data pipelines over TFDS."""

from jgen.data.pipeline import (
    DatasetInfo,
    ImageTransform,
    dataset_info,
    eval_batches,
    train_batches,
)
from jgen.data.prepare import ensure_prepared, get_builder

__all__ = ['DatasetInfo', 'ImageTransform', 'dataset_info', 'ensure_prepared', 'eval_batches',
           'get_builder', 'train_batches']
