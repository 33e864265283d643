"""Orbax checkpoints: periodic, keep-N, async, and the resume order.

A checkpoint holds the whole train state: parameters, optimizer state, the step and the
run's base PRNG key. The data stream is a function of (seed, step) (see data/pipeline.py),
so the step is also the data position, and a resumed run continues exactly.
"""

import os

import jax
import orbax.checkpoint as ocp
from absl import logging


class Checkpointer:
  """Saves and restores train states under `<workdir>/checkpoints`."""

  def __init__(self, workdir: str, *, every_steps: int = 1000, keep: int = 3,
               use_async: bool = True):
    self.directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
    self.every_steps = every_steps
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=keep, cleanup_tmp_directories=True,
            enable_async_checkpointing=use_async, create=True))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state, *, force: bool = False) -> bool:
    """Saves `state` if `step` is a multiple of `every_steps` (or `force`).

    Returns whether a save started; with async checkpoints it finishes in the background.
    """
    if not (force or (self.every_steps and step % self.every_steps == 0)):
      return False
    return self.manager.save(step, args=ocp.args.StandardSave(state), force=True)

  def restore(self, state, step: int | None = None, directory: str | None = None):
    """Restores into the structure, shapes and shardings of `state`."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    if directory:
      return ocp.StandardCheckpointer().restore(directory, abstract)
    step = self.latest_step() if step is None else step
    return self.manager.restore(step, args=ocp.args.StandardRestore(abstract))

  def restore_or_init(self, state, init_checkpoint: str = ''):
    """Returns the state to start from.

    Resume order: the latest checkpoint in the workdir (a restart continues the run), then
    `init_checkpoint` (a checkpoint step directory to start from), then `state` (scratch).
    """
    if self.latest_step() is not None:
      logging.info('Resuming from %s step %d', self.directory, self.latest_step())
      return self.restore(state)
    if init_checkpoint:
      logging.info('Starting from init checkpoint %s', init_checkpoint)
      return self.restore(state, directory=init_checkpoint)
    return state

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.close()
