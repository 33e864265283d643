"""Image grids for TensorBoard and PNG files."""

import os

import numpy as np
from PIL import Image


def grid(images: np.ndarray, ncols: int, pad: int = 1) -> np.ndarray:
  """Tiles (N, H, W, C) images in [0, 1] into one (rows*H', ncols*W', C) image."""
  n, h, w, c = images.shape
  nrows = -(-n // ncols)
  out = np.ones((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), np.float32)
  for i, image in enumerate(images):
    r, col = divmod(i, ncols)
    top, left = pad + r * (h + pad), pad + col * (w + pad)
    out[top:top + h, left:left + w] = image
  return out


def save_png(image: np.ndarray, path: str, scale: int = 2) -> None:
  """Writes an (H, W, C) image in [0, 1] as a PNG, enlarged `scale` times."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  pixels = (np.clip(image, 0.0, 1.0) * 255).round().astype(np.uint8)
  if pixels.shape[-1] == 1:
    pixels = pixels[..., 0]
  img = Image.fromarray(pixels)
  if scale > 1:
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
  img.save(path + '.tmp', format='PNG')  # Whole or absent, never half-written.
  os.replace(path + '.tmp', path)
