"""The interface between a model family and the train loop."""

import dataclasses
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class Task:
  """What the train loop needs from a model family.

  Attributes:
    init_state: rng key -> host train state.
    train_step: per-device (state, batch) -> (state, metrics dict of scalars).
    eval_step: per-device (state, batch with `mask`) -> dict of sums incl. `count`.
    image_step: per-device (state, images) -> images in [0, 1] of the same batch size, or
      None; the loop shows inputs above outputs.
    image_name: the name of those image grids.
  """

  init_state: Callable
  train_step: Callable
  eval_step: Callable
  image_step: Callable | None = None
  image_name: str = 'samples'
