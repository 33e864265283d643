"""Orbax checkpoints: periodic, keep-N, async, checked, and the resume order.

A checkpoint holds the whole train state: parameters, optimizer state, the step and the
run's base PRNG key. The data stream is a function of (seed, step) (see data/pipeline.py),
so the step is also the data position, and a resumed run continues exactly.

Every save also records a digest of the state (`digest`: integer sums of each array's bits,
exact on any device count) in `<workdir>/checkpoint_digests.json`. A resume restores the
newest checkpoint whose arrays restore and match their digest; a newer one that does not
(a torn or corrupted write) is moved to `<workdir>/checkpoints_unreadable/` with one warning
line naming its step and why, so nothing is deleted and the step can be saved again.
"""

import dataclasses
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from jgen.registry import ConfigError

DIGESTS = 'checkpoint_digests.json'
UNREADABLE = 'checkpoints_unreadable'


def _host(x) -> np.ndarray:
  """One host copy of a (replicated) array; PRNG keys as their key data."""
  if isinstance(x, jax.Array):
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      x = jax.random.key_data(x)
    if not x.is_fully_addressable:  # Multi-process: this process's replica.
      x = x.addressable_shards[0].data
  return np.asarray(x)


def _leaf_digest(x: np.ndarray) -> np.ndarray:
  """(2,) uint32: the sum of the array's 32-bit words and their position-weighted sum,
  modulo 2^32 (integer sums: the same for any summation order)."""
  x = np.ascontiguousarray(x).ravel()
  if x.dtype == np.bool_:
    words = x.astype(np.uint32)
  elif x.dtype.itemsize == 4:
    words = x.view(np.uint32)
  elif x.dtype.itemsize == 2:
    words = x.view(np.uint16).astype(np.uint32)
  else:
    words = x.view(np.uint8).astype(np.uint32)
  weights = np.arange(1, words.size + 1, dtype=np.uint32)
  return np.array([words.sum(dtype=np.uint32), (words * weights).sum(dtype=np.uint32)],
                  np.uint32)


def digest(tree) -> np.ndarray:
  """(leaves, 2) uint32 fingerprint of a pytree of arrays; any changed bit changes it.

  Computed on the host (NumPy), as the save reads the arrays anyway: a jitted version cost
  a compilation of seconds per run and state structure, more than a short run's saves.
  """
  return np.stack([_leaf_digest(_host(x)) for x in jax.tree.leaves(tree)])


def _all_finite(tree) -> bool:
  return all(np.isfinite(a).all() for a in map(_host, jax.tree.leaves(tree))
             if jnp.issubdtype(a.dtype, jnp.floating))


class NonFiniteStateError(ValueError):
  """A state to be saved holds NaN or infinite values (it is not saved)."""


class CheckpointWriteError(RuntimeError):
  """A checkpoint could not be written (a full disk, a lost mount); older ones are whole."""


_OS_REASONS = ('No space left on device', 'Disk quota exceeded', 'Read-only file system',
               'Permission denied', 'Input/output error')


def _reason(e: BaseException) -> str:
  text = ' '.join(str(e).split())
  return next((r for r in _OS_REASONS if r in text), f'{type(e).__name__}: {text[:150]}')


def _dotted(path) -> str:
  parts = []
  for key in path:
    for attr in ('key', 'name', 'idx'):
      if hasattr(key, attr):
        parts.append(str(getattr(key, attr)))
        break
  return '.'.join(parts)


def check_matches(metadata, state, what: str) -> None:
  """Raises ConfigError naming the first array whose shape or presence differs between a
  checkpoint's `metadata` (Orbax's tree of array metadata) and `state` (a checkpoint of
  another config)."""
  metadata = getattr(metadata, 'item_metadata', metadata)
  saved = {_dotted(p): tuple(m.shape) for p, m in jax.tree_util.tree_leaves_with_path(metadata)}
  wanted = {_dotted(p): tuple(np.shape(x)) for p, x in jax.tree_util.tree_leaves_with_path(state)}
  problem = None
  # Parameters first: they say which part of the model differs.
  for name in sorted(set(saved) | set(wanted), key=lambda n: ('params' not in n.split('.')[0], n)):
    if name not in saved:
      problem = f'{name} is not in it'
    elif name not in wanted:
      problem = f'it has {name}, which this config does not'
    elif saved[name] != wanted[name]:
      problem = f'{name} has shape {saved[name]} there and {wanted[name]} in this config'
    if problem:
      if 'opt_state' in name:
        problem += ' (the optimizer differs: its name, gradient clipping or ema_decay)'
      raise ConfigError(f'{what} does not match this config: {problem}; use the config it '
                        'was written with (or another --workdir)')


def load_parameters(state, directory: str):
  """`state` with the parameters (and batch statistics, and a GAN's EMA generator) of the
  checkpoint item in `directory`: fine-tuning. The step, optimizer state and PRNG key stay
  `state`'s (a new run), so the checkpoint may come from another optimizer or schedule.

  Raises:
    ConfigError: if a parameter's shape differs from `state`'s, naming it.
  """
  names = [f.name for f in dataclasses.fields(state)
           if f.name.endswith(('params', 'batch_stats'))]
  wanted = {name: getattr(state, name) for name in names}
  with ocp.StandardCheckpointer() as reader:
    metadata = reader.metadata(directory)
    metadata = getattr(metadata, 'item_metadata', metadata)
    check_matches({n: metadata[n] for n in names if n in metadata}, wanted,
                  f'init_checkpoint {directory}')
    loaded = reader.restore(directory)
  placed = {name: jax.tree.map(
      lambda like, x: jax.make_array_from_process_local_data(like.sharding, np.asarray(x)),
      wanted[name], loaded[name]) for name in names}
  return state.replace(**placed)


class Checkpointer:
  """Saves and restores train states under `<workdir>/checkpoints`."""

  def __init__(self, workdir: str, *, every_steps: int = 1000, keep: int = 3,
               use_async: bool = True):
    self.workdir = os.path.abspath(workdir)
    self.directory = os.path.join(self.workdir, 'checkpoints')
    self.every_steps = every_steps
    self._pending = None  # The step of the save in flight.
    self.manager = ocp.CheckpointManager(
        self.directory, item_handlers=ocp.StandardCheckpointHandler(),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=keep, cleanup_tmp_directories=True,
            enable_async_checkpointing=use_async, create=True))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  # --- Digests ------------------------------------------------------------------------------

  def _digests(self) -> dict[str, list]:
    path = os.path.join(self.workdir, DIGESTS)
    try:
      with open(path) as f:
        return json.load(f)
    except (OSError, ValueError):  # None yet, or torn (then the checks are skipped).
      return {}

  def _record(self, step: int, value: np.ndarray) -> None:
    """Adds `step`'s digest (atomically; entries of deleted checkpoints are dropped)."""
    if jax.process_index() != 0:
      return
    kept = {str(s) for s in self.manager.all_steps()}
    table = {k: v for k, v in self._digests().items() if k in kept}
    table[str(step)] = np.asarray(value).tolist()
    path = os.path.join(self.workdir, DIGESTS)
    with open(path + '.tmp', 'w') as f:
      json.dump(table, f)
    os.replace(path + '.tmp', path)

  # --- Save and restore ---------------------------------------------------------------------

  def due(self, step: int) -> bool:
    """Whether `step` is a periodic checkpoint step."""
    return bool(self.every_steps) and step % self.every_steps == 0

  def save(self, step: int, state, *, force: bool = False) -> bool:
    """Saves `state` if `step` is a multiple of `every_steps` (or `force`).

    Returns whether a save started; with async checkpoints it finishes in the background.

    Raises:
      NonFiniteStateError: if a floating-point array of `state` holds NaN or infinity.
    """
    if not (force or self.due(step)):
      return False
    if not _all_finite(state):
      raise NonFiniteStateError(f'the state of step {step} holds non-finite values')
    value = digest(state)
    self.wait()  # The save in flight first (Orbax waits for it anyway): its errors are its own.
    try:
      started = self.manager.save(step, args=ocp.args.StandardSave(state), force=True)
      if started:
        self._record(step, value)
    except Exception as e:  # noqa: BLE001 - Orbax and TensorStore raise many kinds.
      self._failed(step, e)
    self._pending = step if started else None
    return started

  def _failed(self, step: int, e: BaseException):
    """Raises the one-line CheckpointWriteError of a save of `step` that failed with `e`."""
    self._pending = None
    good = [s for s in self.manager.all_steps() if s != step]
    resume = f'from step {max(good)}' if good else 'from the start'
    raise CheckpointWriteError(
        f'writing the checkpoint of step {step} in {self.directory} failed ({_reason(e)}); '
        f'the checkpoints before it are whole: make room and rerun to go on {resume}') from None

  def restore(self, state, step: int | None = None):
    """Restores `step` (default: the latest) into the structure, shapes and shardings of
    `state`, unchecked (`restore_newest_good` checks)."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    step = self.latest_step() if step is None else step
    return self.manager.restore(step, args=ocp.args.StandardRestore(abstract))

  def _restore_checked(self, state, step: int):
    """Restores `step` and checks it against its digest; raises ValueError if it differs."""
    try:
      metadata = self.manager.item_metadata(step)
    except Exception as e:  # noqa: BLE001 - unreadable metadata: the checkpoint is torn.
      raise ValueError(f'its metadata does not read ({type(e).__name__})') from None
    check_matches(metadata, state, f'the checkpoint of step {step} in {self.directory}')
    try:
      restored = self.restore(state, step)
    except Exception as e:  # noqa: BLE001 - Orbax and TensorStore raise many kinds.
      first = ' '.join(str(e).split())[:120]
      raise ValueError(f'it does not restore ({type(e).__name__}: {first})') from None
    recorded = self._digests().get(str(step))
    if recorded is not None and not np.array_equal(np.asarray(recorded), digest(restored)):
      raise ValueError('its arrays differ from what was saved (digest mismatch)')
    return restored

  def restore_newest_good(self, state):
    """The newest checkpoint that restores whole, as (state, step); (None, None) if there
    are none. Newer ones that do not are set aside under `<workdir>/checkpoints_unreadable`.

    Raises:
      ConfigError: if the checkpoints are of another config, or none of them restores.
    """
    bad = []
    for step in sorted(self.manager.all_steps(), reverse=True):
      try:
        restored = self._restore_checked(state, step)
      except ConfigError:
        raise
      except ValueError as e:
        bad.append((step, str(e)))
        continue
      for skipped, why in bad:
        self._set_aside(skipped)
        logging.warning('Skipped the checkpoint of step %d: %s; moved to %s/%d. Resuming '
                        'from step %d.', skipped, why, UNREADABLE, skipped, step)
      return restored, step
    if bad:
      listed = '; '.join(f'step {s}: {why}' for s, why in bad)
      raise ConfigError(f'no checkpoint in {self.directory} restores ({listed}); move that '
                        'directory away to start afresh')
    return None, None

  def _set_aside(self, step: int) -> None:
    if jax.process_index() == 0:
      target = os.path.join(self.workdir, UNREADABLE)
      os.makedirs(target, exist_ok=True)
      destination = os.path.join(target, str(step))
      if os.path.exists(destination):
        shutil.rmtree(destination)
      os.replace(os.path.join(self.directory, str(step)), destination)
    self.manager.reload()

  def restore_or_init(self, state, init_checkpoint: str = ''):
    """Returns the state to start from.

    Resume order: the newest checkpoint in the workdir that restores whole (a restart
    continues the run), then `init_checkpoint` (a checkpoint item directory whose parameters
    start a new run: `load_parameters`), then `state` (scratch).
    """
    restored, step = self.restore_newest_good(state)
    if restored is not None:
      logging.info('Resuming from %s step %d', self.directory, step)
      return restored
    if init_checkpoint:
      logging.info('Starting from the parameters of %s', init_checkpoint)
      return load_parameters(state, init_checkpoint)
    return state

  def wait(self) -> None:
    """Waits for the save in flight; raises CheckpointWriteError if it failed."""
    try:
      self.manager.wait_until_finished()
    except Exception as e:  # noqa: BLE001
      self._failed(self._pending or self.latest_step() or 0, e)
    self._pending = None

  def close(self) -> None:
    self.manager.close()
