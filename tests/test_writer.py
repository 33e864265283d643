"""The TensorBoard event files jgen writes without TensorFlow, read back by TensorBoard."""

import numpy as np
import pytest

from jgen import writer


def test_crc32c_matches_the_standard_check_value():
  assert writer.crc32c(b'123456789') == 0xE3069283  # CRC-32C's published check value.
  assert writer.crc32c(b'') == 0


def test_tensorboard_reads_the_scalars_and_images(tmp_path):
  from tensorboard.backend.event_processing import event_accumulator

  w = writer.MetricWriter(str(tmp_path))
  w.write_scalars(10, {'train/loss': 1.5, 'test/loss': 2.0})
  w.write_scalars(20, {'train/loss': 0.25})
  w.write_images(20, {'samples': np.linspace(0, 1, 2 * 5 * 7 * 3).reshape(2, 5, 7, 3)})
  w.close()
  files = list(tmp_path.glob('events.out.tfevents.*'))
  assert len(files) == 1
  acc = event_accumulator.EventAccumulator(str(files[0]), size_guidance={'images': 0})
  acc.Reload()
  assert [(e.step, e.value) for e in acc.Scalars('train/loss')] == [(10, 1.5), (20, 0.25)]
  assert [e.value for e in acc.Scalars('test/loss')] == [2.0]
  (image,) = acc.Images('samples')
  assert (image.step, image.height, image.width) == (20, 5, 7)


def test_other_processes_only_log(tmp_path):
  w = writer.MetricWriter(str(tmp_path), just_logging=True)
  w.write_scalars(1, {'loss': 1.0})
  w.close()
  assert not list(tmp_path.iterdir())


@pytest.mark.parametrize('dtype', [np.uint8, np.float32])
def test_png_of_uint8_and_unit_float_images_agree(dtype):
  pixels = np.arange(0, 256, 5, dtype=np.uint8)[:48].reshape(4, 4, 3)
  image = pixels if dtype == np.uint8 else pixels.astype(np.float32) / 255
  assert writer._png(image) == writer._png(pixels)
