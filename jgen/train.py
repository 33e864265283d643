"""The one train loop shared by every model family: setup, steps, periodic actions.

`train_and_evaluate(config, workdir)` validates everything it can before any work (names,
batch size, dataset, workdir), then trains, checkpoints, logs and evaluates; a rerun in the
same workdir resumes where the last checkpoint left off and ends exactly as if it had
never stopped.
"""

import json
import logging as logging_lib
import os
import time

import jax
import numpy as np
from absl import logging

from jgen import data, modes, parallel, session
from jgen.checkpoint import Checkpointer
from jgen.evaluate import evaluators, images
from jgen.session import Setup
from jgen.writer import MetricWriter


class QuietLibraries(logging_lib.Filter):
  """Drops INFO lines from Orbax and TFDS (every file they touch); install
  with `logging.get_absl_handler().addFilter(QuietLibraries())`."""

  NOISY = ('/orbax/', '/tensorflow_datasets/')

  def filter(self, record):
    noisy = any(part in record.pathname for part in self.NOISY)
    return record.levelno >= logging_lib.WARNING or not noisy


class NonFiniteLossError(RuntimeError):
  """The loss became NaN or infinite."""


def _image_examples(s: Setup) -> dict:
  """The fixed inputs of the image grids, sharded once for the whole run.

  Returns:
    {grid name: (sharded inputs, host inputs, columns, show inputs, which function)}.
  """
  n = s.config.num_image_examples
  batch = next(data.eval_batches(s.source, split=s.config.data.test_split, global_batch_size=n,
                                 process_index=0, process_count=1))
  groups = {name: (rows, ncols, s.task.show_inputs, 'image')
            for name, (rows, ncols) in s.task.image_inputs(batch['image']).items()}
  if s.task.sample_step and s.task.sample_inputs:  # Decoded prior draws (a VAE's samples).
    groups['samples'] = (s.task.sample_inputs(jax.random.PRNGKey(0), n),
                         int(np.ceil(np.sqrt(n))), False, 'sample')
  return {name: (parallel.shard_rows(s.mesh, rows), rows, ncols, show, fn)
          for name, (rows, ncols, show, fn) in groups.items()}


def _write_images(s: Setup, fns: dict, state, examples: dict, writer, step: int) -> None:
  pictures = {}
  for name, (sharded, inputs, ncols, show_inputs, fn) in examples.items():
    outputs = parallel.gather(fns[fn](state, sharded))[:len(inputs)]
    tiles = []
    for lo in range(0, len(inputs), ncols):  # Each row of inputs above its outputs.
      tiles += ([inputs[lo:lo + ncols]] if show_inputs else []) + [
          outputs[lo:lo + ncols]]
    pictures[name] = images.grid(np.concatenate(tiles), ncols)
    modes.save_grid(s, pictures[name], 'images', f'{name}_{step:07d}.png')
  writer.write_images(step, {k: v[None] for k, v in pictures.items()})


def _append_jsonl(path: str, row: dict) -> None:
  if jax.process_index() == 0:
    with open(path, 'a') as f:
      f.write(json.dumps(row) + '\n')


def _truncate_jsonl(path: str, last_step: int) -> None:
  """Drops rows after `last_step`: a resumed run rewrites what came after its checkpoint."""
  if jax.process_index() == 0 and os.path.exists(path):
    with open(path) as f:
      rows = [line for line in f if json.loads(line)['step'] <= last_step]
    with open(path + '.tmp', 'w') as f:
      f.writelines(rows)
    os.replace(path + '.tmp', path)


class _SpeedMeter:
  """Training steps/s and seconds, leaving out the first step's compilation and evaluation."""

  def __init__(self):
    self.last_step, self.last_time, self.steps, self.seconds = 0, None, 0, 0.0

  def start(self, step: int) -> None:
    self.last_step, self.last_time = step, time.time()

  def lap(self, step: int) -> float:
    """Returns steps/s since the last lap and adds the interval to the totals."""
    now = time.time()
    elapsed = max(now - self.last_time, 1e-9)
    rate = (step - self.last_step) / elapsed
    self.steps += step - self.last_step
    self.seconds += elapsed
    self.last_step, self.last_time = step, now
    return rate

  def exclude(self, seconds: float) -> None:
    self.last_time += seconds


def _progress_line(step: int, total: int, losses: dict[str, float], steps_per_s: float) -> str:
  eta = (total - step) / steps_per_s if steps_per_s > 0 else float('nan')
  eta_text = time.strftime('%H:%M:%S', time.gmtime(eta)) if np.isfinite(eta) else '?'
  loss_text = ' | '.join(f'{k} {v:.4f}' for k, v in losses.items())
  return f'step {step}/{total} | {loss_text} | {steps_per_s:.1f} steps/s | ETA {eta_text}'


def _log_train(s: Setup, step: int, metrics, steps_per_s: float, writer,
               metrics_path: str) -> dict[str, float]:
  """Fetches the step's metrics (the only host read), stops on a non-finite loss, logs."""
  metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
  losses = {k: metrics[k] for k in s.task.progress_keys}
  for k, v in losses.items():
    if not np.isfinite(v):
      raise NonFiniteLossError(f'{k} is {v} at step {step}; '
                               'lower the learning rate or check the data')
  writer.write_scalars(step, {f'train/{k}': v for k, v in metrics.items()} | {
      'steps_per_sec': steps_per_s})
  _append_jsonl(metrics_path, {'step': step} | {f'train/{k}': v for k, v in metrics.items()})
  logging.info('%s', _progress_line(step, s.config.num_train_steps, losses, steps_per_s))
  return metrics


def _eval_and_show(s: Setup, entries, state, examples, writer, step: int, metrics_path: str,
                   *, final: bool, fns: dict, skipped: set) -> dict[str, float]:
  """Runs the evaluators due at `step`, logs them, and writes image grids."""
  logged = evaluators.run(entries, s, state, step=step, final=final, skipped=skipped, sep='/')
  if logged:
    writer.write_scalars(step, logged)
    _append_jsonl(metrics_path, {'step': step} | logged)
  if fns['image'] and (logged or final):
    _write_images(s, fns, state, examples, writer, step)
  return {k.replace('/', '_', 1): v for k, v in logged.items()}


def _image_fns(s: Setup) -> dict:
  """The compiled-on-first-use image functions of the task."""

  def images_fn(fn):
    return fn and parallel.data_parallel(fn, s.mesh, out_batched=True)

  return {'image': images_fn(s.task.image_step), 'sample': images_fn(s.task.sample_step)}


def train_and_evaluate(config, workdir: str) -> dict[str, float]:
  """Trains `config` in `workdir` (resuming if it holds checkpoints); returns the results.

  Writes TensorBoard events, `metrics.jsonl` (one row per log or eval step; a resumed run
  replaces the rows after its checkpoint), image grids under `images/`, checkpoints under
  `checkpoints/`, and `results.json` at the end.
  """
  t_start = time.time()
  s = session.setup(config, workdir)
  writer = MetricWriter(s.workdir, just_logging=jax.process_index() > 0)
  ckpt = Checkpointer(s.workdir, every_steps=config.checkpoint_every_steps,
                      keep=config.keep_checkpoints, use_async=config.async_checkpoints)
  state = parallel.replicate(s.mesh, s.task.init_state(jax.random.PRNGKey(config.seed)))
  state = ckpt.restore_or_init(state, config.init_checkpoint)
  start_step, total = int(jax.device_get(state.step)), config.num_train_steps
  logging.info('Training %s on %s from step %d to %d on %d devices (%d processes)',
               config.model.name, s.info.name, start_step, total, jax.device_count(),
               jax.process_count())

  train_fn = parallel.data_parallel(s.task.train_step, s.mesh, donate_argnums=(0,))
  # Steps that log nothing run the same step without its metrics, so XLA drops their
  # computation (norms, extra losses): bench/ae_step.py measures what that saves.
  quiet_fn = parallel.data_parallel(lambda st, batch: s.task.train_step(st, batch)[0], s.mesh,
                                    donate_argnums=(0,))
  fns = _image_fns(s)
  entries, skipped = evaluators.build(config), set()
  examples = _image_examples(s) if fns['image'] else None
  examples_per_step = config.batch_size * s.task.batch_multiplier
  batches = data.train_batches(
      s.source, split=config.data.train_split, global_batch_size=examples_per_step,
      seed=config.seed, start_step=start_step, process_index=jax.process_index(),
      process_count=jax.process_count())
  metrics_path = os.path.join(s.workdir, 'metrics.jsonl')
  _truncate_jsonl(metrics_path, start_step)
  meter, train_metrics, evaluated = _SpeedMeter(), {}, None
  for step in range(start_step + 1, total + 1):
    log = step % config.log_every_steps == 0 or step == total
    batch = parallel.shard_batch(s.mesh, next(batches))
    if log:
      state, metrics = train_fn(state, batch)
    else:
      state = quiet_fn(state, batch)
    if meter.last_time is None:
      jax.block_until_ready(state)
      meter.start(step)
    if log:
      train_metrics = _log_train(s, step, metrics, meter.lap(step), writer, metrics_path)
    ckpt.save(step, state, force=step == total)
    if any(entry.due(step, step == total) for entry in entries):
      t_eval = time.time()
      evaluated = _eval_and_show(s, entries, state, examples, writer, step, metrics_path,
                                 final=step == total, fns=fns, skipped=skipped)
      meter.exclude(time.time() - t_eval)
  ckpt.wait()
  ckpt.close()
  writer.close()
  if evaluated is None:  # Nothing left to train: evaluate the final checkpoint.
    evaluated = evaluators.run(entries, s, state, step=total, final=True, skipped=skipped)

  results = evaluated | {
      f'final_train_{k}': train_metrics.get(k, float('nan')) for k in s.task.progress_keys} | {
      'train_examples_per_sec': (meter.steps * examples_per_step / meter.seconds
                                 if meter.steps else float('nan')),
      'train_seconds': meter.seconds,
      'wall_clock_s': time.time() - t_start,
      'num_train_steps': total,
      'steps_this_run': total - start_step,
      'num_devices': jax.device_count(),
      'num_processes': jax.process_count(),
      'seed': config.seed,
  }
  modes.write_json(os.path.join(s.workdir, 'results.json'), results)
  logging.info('Results: %s', json.dumps(results, sort_keys=True))
  return results
