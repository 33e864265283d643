"""Latent-space pictures: interpolations, the decoded 2-D manifold, the scatter of codes.

Pure numpy: these functions make codes to decode and draw images; the train loop's
`--mode=latent` runs the model on them (`jgen/train.py`).
"""

import numpy as np
import scipy.stats

# Tableau's 10 colours (matplotlib's tab10), for labels 0..9 in order.
PALETTE = np.array([
    [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
    [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]],
    np.float32) / 255.0


def interpolate(start: np.ndarray, end: np.ndarray, steps: int) -> np.ndarray:
  """Codes on the straight line from each start to each end, ends included.

  Args:
    start, end: (P, D) codes.
    steps: points per line (>= 2).

  Returns:
    (P * steps, D): row p * steps + i is start_p + (end_p - start_p) * i / (steps - 1).
  """
  t = np.linspace(0.0, 1.0, steps)[None, :, None]
  return (start[:, None] + (end - start)[:, None] * t).reshape(-1, start.shape[-1])


def gaussian_grid(n: int, margin: float = 0.05) -> np.ndarray:
  """An n x n grid of 2-D codes at the standard normal's quantiles (Kingma & Welling's
  figure 4): equal prior mass between neighbours. Row-major, the second dimension
  decreasing down the rows so that the picture has the usual axes."""
  q = scipy.stats.norm.ppf(np.linspace(margin, 1.0 - margin, n))
  return _grid(q, q)


def range_grid(n: int, low: np.ndarray, high: np.ndarray) -> np.ndarray:
  """An n x n grid of 2-D codes spanning [low, high] in each dimension (row-major as above)."""
  return _grid(np.linspace(low[0], high[0], n), np.linspace(low[1], high[1], n))


def _grid(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
  y, x = np.meshgrid(ys[::-1], xs, indexing='ij')
  return np.stack([x.ravel(), y.ravel()], axis=1).astype(np.float32)


def scatter_image(codes: np.ndarray, labels: np.ndarray, *, size: int = 512,
                  low: np.ndarray | None = None, high: np.ndarray | None = None,
                  dot: int = 2) -> np.ndarray:
  """Draws 2-D codes as dots coloured by label (PALETTE) on white: (size, size, 3) in [0, 1].

  The view spans [low, high] (default: the codes' 0.5th to 99.5th percentiles, so a few
  outliers do not shrink the picture); codes outside it are not drawn.
  """
  codes = np.asarray(codes, np.float64)
  low = np.percentile(codes, 0.5, axis=0) if low is None else np.asarray(low)
  high = np.percentile(codes, 99.5, axis=0) if high is None else np.asarray(high)
  span = np.where(high > low, high - low, 1.0)
  pixels = (codes - low) / span * (size - dot)
  col, row = pixels[:, 0], (size - dot) - pixels[:, 1]  # Second dimension upwards.
  inside = (col >= 0) & (col <= size - dot) & (row >= 0) & (row <= size - dot)
  image = np.ones((size, size, 3), np.float32)
  colors = PALETTE[np.asarray(labels) % len(PALETTE)]
  for r, c, color in zip(row[inside].astype(int), col[inside].astype(int), colors[inside],
                         strict=True):
    image[r:r + dot, c:c + dot] = color
  return image
