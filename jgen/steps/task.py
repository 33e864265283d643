"""The interface between a model family and the train loop."""

import dataclasses
from collections.abc import Callable

import numpy as np


@dataclasses.dataclass(frozen=True)
class Task:
  """What the train loop needs from a model family.

  Attributes:
    init_state: rng key -> host train state (with a `step` field).
    train_step: per-device (state, batch) -> (state, metrics dict of scalars).
    eval_step: per-device (state, batch with `mask`) -> dict of sums incl. `count`.
    image_step: per-device (state, inputs) -> images in [0, 1], one per input row; or None.
    image_name: the name of the main image grid (and of `--mode=sample` output).
    image_inputs: first test images (N, H, W, C) -> {grid name: (inputs, columns)}, the
      fixed inputs of the grids shown over training; None: reconstruct the test images.
    show_inputs: whether each grid row of inputs (images) is shown above its outputs.
    summarize: the eval step's summed (numpy) outputs -> metrics; None: their means.
    progress_keys: metrics in the progress line and `results.json` (`final_train_*`); a
      non-finite value of any of them stops the run.
    batch_multiplier: real examples a step consumes, in units of `batch_size` (a GAN's
      `n_critic`).
    sample_inputs: (key, n) -> n inputs of `image_step` that make new samples, or None if
      the family cannot sample.
  """

  init_state: Callable
  train_step: Callable
  eval_step: Callable
  image_step: Callable | None = None
  image_name: str = 'samples'
  image_inputs: Callable[[np.ndarray], dict] | None = None
  show_inputs: bool = False
  summarize: Callable[[dict], dict[str, float]] | None = None
  progress_keys: tuple[str, ...] = ('loss',)
  batch_multiplier: int = 1
  sample_inputs: Callable | None = None
