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
    eval_step: per-device (state, batch with `mask`, `index`) -> dict of sums incl. `count`.
    final_eval_step: the eval step of the last step and of `--mode=eval` (a VAE's bound
      with many importance samples), or None: `eval_step`.
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
    sample_inputs: (key, n) -> n latents drawn from the model's prior, or None if it has
      none (a GAN's latents, a VAE's N(0, I)).
    sample_step: per-device (state, latents) -> images in [0, 1], or None: `image_step`
      makes samples (GANs). With `sample_inputs`, a `samples` grid is also shown in training.
    encode_step: per-device (state, images) -> codes (B, D), or None: the family has no
      encoder. Samples of an encoder without a prior decode draws from a density fitted to
      its training codes; latent tools (interpolations, 2-D maps) use it too.
    feature_steps: {name: per-device (state, images in [0, 1]) -> features (B, D)}, the
      representations the `representation` evaluator probes (an encoder's codes, a
      discriminator's penultimate layer, InfoGAN's Q); empty: none.
    train_features: what `train_step` reads of a batch (`image`, `label`); the loop reads
      and transfers nothing else.
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
  final_eval_step: Callable | None = None
  sample_step: Callable | None = None
  encode_step: Callable | None = None
  feature_steps: dict[str, Callable] = dataclasses.field(default_factory=dict)
  train_features: tuple[str, ...] = ('image', 'label')
