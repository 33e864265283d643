"""Evaluation: exact metrics over whole splits, and image grids."""

from collections.abc import Callable, Iterable

import jax
import numpy as np

from jgen import parallel


def mean_of_sums(sums: dict) -> dict[str, float]:
  """Every sum divided by the number of real examples (the `count` sum)."""
  sums = dict(sums)
  count = float(sums.pop('count'))
  return {k: float(v) / count for k, v in sums.items()}


def evaluate(eval_step: Callable, state, batches: Iterable, mesh,
             summarize: Callable | None = None) -> dict[str, float]:
  """Runs a compiled eval step over `batches` and summarizes its sums (default: means).

  Args:
    eval_step: global (state, batch) -> dict of sums over the batch, including `count`.
    state: the train state.
    batches: this process's parts of padded global batches, each with a `mask`.
    mesh: the device mesh.

    summarize: the summed outputs (numpy) -> metrics; None: `mean_of_sums`.

  Returns:
    the metrics, by default each summed metric divided by the number of real examples.
  """
  totals = None
  for batch in batches:
    sums = eval_step(state, parallel.shard_batch(mesh, batch))
    totals = sums if totals is None else jax.tree.map(np.add, totals, sums)
  return (summarize or mean_of_sums)(jax.device_get(totals))
