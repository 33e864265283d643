"""Datasets made by Python functions instead of TFDS, registered by name.

A registered dataset is used like a TFDS one (`config.data.name = NAME`): the same batches,
resume, multi-process reading, checkpoints and evaluators, from arrays its function makes
in memory on first use. jgen registers `ring8`, the 2-D ring of 8 Gaussians on which GAN
papers show mode collapse (Metz et al. 2017, Srivastava et al. 2017); user code registers
its own with `register`:

  jgen.data.register('two_moons', make_moons, example_shape=(1, 1, 2), num_classes=2)

A run whose work happens in other processes (a comparison's workers) sees only the
datasets registered on import of jgen.
"""

import dataclasses
from collections.abc import Callable

import numpy as np

from jgen.registry import ConfigError, Registry


@dataclasses.dataclass(frozen=True)
class ArrayDataset:
  """A dataset from a function.

  Attributes:
    make: () -> {split: (examples, labels)}; examples (N, H, W, C), uint8 in [0, 255] or
      float in [0, 1] (what the models see, like decoded images), labels int (N,) (zeros
      if the dataset has none).
    example_shape: (H, W, C) of one example; a 2-D point is (1, 1, 2).
    num_classes: label values (0: no labels; the representation probes are skipped).
    modes: (K, H, W, C) centres of the components of a mixture dataset in the examples'
      coordinates, or None; with `mode_std` they enable the `mode_coverage` evaluator.
    mode_std: the components' standard deviation per coordinate.
  """

  make: Callable[[], dict]
  example_shape: tuple[int, int, int]
  num_classes: int = 0
  modes: np.ndarray | None = None
  mode_std: float = 0.0


DATASETS = Registry('dataset')


def register(name: str, make: Callable[[], dict], *, example_shape, num_classes: int = 0,
             modes=None, mode_std: float = 0.0) -> ArrayDataset:
  """Registers `make` as the dataset `name` (see `ArrayDataset`); returns its entry.

  A name registered by user code may be registered again (a notebook cell run twice);
  jgen's own datasets may not be replaced.
  """
  shape = tuple(int(d) for d in example_shape)
  if len(shape) != 3:
    raise ConfigError(f'dataset {name!r}: example_shape {example_shape} must be (H, W, C); '
                      'a 2-D point is (1, 1, 2)')
  dataset = ArrayDataset(make, shape, num_classes,
                         None if modes is None else np.asarray(modes, np.float32), mode_std)
  DATASETS.register(name, replace=True)(dataset)
  return dataset


def get(name: str) -> ArrayDataset | None:
  """The registered dataset `name`, or None (then it is a TFDS name)."""
  return DATASETS.get(name) if name in DATASETS else None


def check_arrays(name: str, dataset: ArrayDataset, splits: dict) -> dict:
  """The splits `make` returned, as (float32 or uint8 examples, int32 labels); ConfigError
  naming the split and the problem otherwise."""
  out = {}
  for split, (examples, labels) in splits.items():
    examples, labels = np.asarray(examples), np.asarray(labels, np.int32)
    if examples.shape[1:] != dataset.example_shape or len(labels) != len(examples):
      raise ConfigError(f'dataset {name!r} split {split!r}: examples {examples.shape} and '
                        f'labels {labels.shape} do not match example_shape '
                        f'{dataset.example_shape}; fix its make function')
    if examples.dtype != np.uint8:
      examples = examples.astype(np.float32)
    out[split] = (examples, labels)
  return out


def ring_centres(num_modes: int = 8, radius: float = 0.4) -> np.ndarray:
  """(K, 1, 1, 2) centres evenly spaced on a circle around (0.5, 0.5)."""
  angles = 2 * np.pi * np.arange(num_modes) / num_modes
  xy = 0.5 + radius * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
  return xy.reshape(num_modes, 1, 1, 2).astype(np.float32)


RING_STD = 0.01  # 0.02 on the GANs' [-1, 1] scale, where the ring's radius is 0.8.


def make_ring(num_train: int = 50_000, num_test: int = 10_000, num_modes: int = 8,
              std: float = RING_STD, seed: int = 0) -> dict:
  """Points of an equal mixture of `num_modes` Gaussians on a ring; label: the component."""
  rng = np.random.default_rng(seed)
  centres = ring_centres(num_modes)
  out = {}
  for split, n in (('train', num_train), ('test', num_test)):
    labels = rng.integers(0, num_modes, n).astype(np.int32)
    points = centres[labels] + std * rng.standard_normal((n, 1, 1, 2)).astype(np.float32)
    out[split] = (points, labels)
  return out


register('ring8', make_ring, example_shape=(1, 1, 2), num_classes=8, modes=ring_centres(),
         mode_std=RING_STD)
DATASETS.freeze()


def mode_coverage(points: np.ndarray, modes: np.ndarray, std: float,
                  radius_in_std: float = 3.0, min_share: float = 0.25) -> dict[str, float]:
  """How well `points` (N, ...) cover a mixture's modes (K, ...), the toy-data metrics of
  Srivastava et al. (VEEGAN) and Metz et al. (unrolled GANs).

  A point is of high quality when it lies within `radius_in_std` standard deviations of its
  nearest mode (for a 2-D Gaussian 98.9% of real points do, at 3); a mode is covered when
  it holds at least `min_share` of its fair share (N / K) of the high-quality points.

  Returns:
    modes: covered modes; high_quality: the fraction of high-quality points;
    mode_kl: KL(high-quality points' distribution over modes || uniform) in nats (0 when
    they are spread evenly, log K when all fall on one mode).
  """
  points = np.asarray(points, np.float64).reshape(len(points), -1)
  modes = np.asarray(modes, np.float64).reshape(len(modes), -1)
  distances = np.sqrt(((points[:, None, :] - modes[None, :, :]) ** 2).sum(-1))
  nearest = distances.argmin(1)
  good = distances[np.arange(len(points)), nearest] <= radius_in_std * std
  counts = np.bincount(nearest[good], minlength=len(modes))
  k = len(modes)
  covered = int((counts >= min_share * len(points) / k).sum())
  p = counts / max(counts.sum(), 1)
  kl = float(np.sum(np.where(p > 0, p * np.log(np.maximum(p, 1e-300) * k), 0.0)))
  return {'modes': float(covered), 'high_quality': float(good.mean()),
          'mode_kl': kl if counts.sum() else float(np.log(k))}
