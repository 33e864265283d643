"""Evaluation: exact metrics over whole splits, and image grids."""

from collections.abc import Callable, Iterable

import jax
import numpy as np

from jgen import parallel


def evaluate(eval_step: Callable, state, batches: Iterable, mesh) -> dict[str, float]:
  """Runs a compiled eval step over `batches` and returns the means of its sums.

  Args:
    eval_step: global (state, batch) -> dict of sums over the batch, including `count`.
    state: the train state.
    batches: this process's parts of padded global batches, each with a `mask`.
    mesh: the device mesh.

  Returns:
    each summed metric divided by the number of real (unmasked) examples.
  """
  totals = None
  for batch in batches:
    sums = eval_step(state, parallel.shard_batch(mesh, batch))
    totals = sums if totals is None else jax.tree.map(np.add, totals, sums)
  totals = jax.device_get(totals)
  count = float(totals.pop('count'))
  return {k: float(v) / count for k, v in totals.items()}
