"""Metrics to the log and to TensorBoard event files, without TensorFlow.

An event file is a sequence of records (length, masked CRC-32C of the length, an `Event`
protocol buffer, masked CRC-32C of the data), the format TensorBoard reads; the protocol
buffers are TensorBoard's own (`tensorboard.compat.proto`), which import no TensorFlow.
"""

import io
import os
import socket
import struct
import time

import numpy as np
from absl import logging
from PIL import Image
from tensorboard.compat.proto import event_pb2, summary_pb2


def _crc32c_table() -> list[int]:
  table = []
  for byte in range(256):
    crc = byte
    for _ in range(8):
      crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    table.append(crc)
  return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
  """CRC-32C (Castagnoli), the checksum of TFRecord framing."""
  crc = 0xFFFFFFFF
  for byte in data:
    crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
  return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> bytes:
  crc = crc32c(data)
  return struct.pack('<I', (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def _png(image: np.ndarray) -> tuple[bytes, int, int, int]:
  if image.dtype != np.uint8:
    image = np.clip(np.round(np.asarray(image, np.float32) * 255), 0, 255).astype(np.uint8)
  h, w, c = image.shape
  buf = io.BytesIO()
  Image.fromarray(image[..., 0] if c == 1 else image).save(buf, format='PNG')
  return buf.getvalue(), h, w, c


class MetricWriter:
  """Writes scalars and images of a step to the log and, unless `just_logging` (processes
  other than 0), to `logdir/events.out.tfevents.*`."""

  def __init__(self, logdir: str, just_logging: bool = False):
    self._file = None
    if not just_logging:
      name = f'events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}'
      self._file = open(os.path.join(logdir, name), 'ab')
      self._write(event_pb2.Event(wall_time=time.time(), file_version='brain.Event:2'))

  def _write(self, event) -> None:
    data = event.SerializeToString()
    header = struct.pack('<Q', len(data))
    self._file.write(header + _masked_crc(header) + data + _masked_crc(data))

  def _summary(self, step: int, values) -> None:
    if self._file is not None:
      self._write(event_pb2.Event(wall_time=time.time(), step=step,
                                  summary=summary_pb2.Summary(value=values)))

  def write_scalars(self, step: int, scalars: dict) -> None:
    logging.info('[%d] %s', step, ', '.join(f'{k}={v:.6g}' for k, v in scalars.items()))
    self._summary(step, [summary_pb2.Summary.Value(tag=k, simple_value=float(v))
                         for k, v in scalars.items()])

  def write_images(self, step: int, images: dict) -> None:
    """`images`: {tag: (N, H, W, C)}, uint8 or float in [0, 1]; the first of each is kept."""
    logging.info('[%d] images: %s', step, {k: np.shape(v) for k, v in images.items()})
    values = []
    for tag, batch in images.items():
      png, h, w, c = _png(np.asarray(batch)[0])
      values.append(summary_pb2.Summary.Value(tag=tag, image=summary_pb2.Summary.Image(
          height=h, width=w, colorspace=c, encoded_image_string=png)))
    self._summary(step, values)

  def flush(self) -> None:
    if self._file is not None:
      self._file.flush()

  def close(self) -> None:
    if self._file is not None:
      self._file.close()
      self._file = None
