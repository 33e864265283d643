"""The one train loop shared by every model family: setup, steps, periodic actions.

`Trainer(config, workdir)` validates everything it can before any work (names, batch size,
dataset, workdir), then trains step by step, checkpoints, logs and evaluates; a rerun in
the same workdir resumes where the last checkpoint left off and ends exactly as if it had
never stopped. `train_and_evaluate` (what `run.py` calls) runs one to the end; a notebook
drives one itself.
"""

import functools
import json
import logging as logging_lib
import os
import signal
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from jgen import data, modes, optim, parallel, restarts, runtime, session
from jgen.checkpoint import Checkpointer, NonFiniteStateError
from jgen.data.prefetch import Prefetcher
from jgen.evaluate import evaluators, images, sampling
from jgen.lock import WorkdirLock
from jgen.registry import ConfigError
from jgen.session import Setup
from jgen.writer import MetricWriter

# Training batches kept on the devices ahead of the step (jgen.data.prefetch);
# bench/data_rate.py measures the step rate with them against device-resident batches.
PREFETCH = 2
# A run compiles a second, metric-free step for the steps that log nothing only if it has at
# least this many of them (the compilation costs more than it saves in short runs).
QUIET_STEPS = 2000


class QuietLibraries(logging_lib.Filter):
  """Drops INFO lines from Orbax and TFDS (every file they touch); install
  with `logging.get_absl_handler().addFilter(QuietLibraries())`."""

  NOISY = ('/orbax/', '/tensorflow_datasets/')

  def filter(self, record):
    noisy = any(part in record.pathname for part in self.NOISY)
    if noisy and record.exc_info:  # Their failures are reported in one line by jgen.
      record.exc_info = record.exc_text = None
    return record.levelno >= logging_lib.WARNING or not noisy


class NonFiniteLossError(RuntimeError):
  """The loss or the train state became NaN or infinite."""


class Stopped(RuntimeError):
  """SIGTERM or SIGINT stopped training after the step it was taking, with a checkpoint."""

  def __init__(self, message: str, signum: int):
    super().__init__(message)
    self.signum = signum

  def __reduce__(self):  # Raised in a comparison's worker process, re-raised in its parent.
    return Stopped, (str(self), self.signum)


class _StopOnSignal:
  """While entered (in the main thread), SIGTERM and SIGINT ask the loop to stop after the
  current step instead of killing it; a second signal stops at once.

  The processes of a multi-process run must stop at the same step (a checkpoint is saved by
  all together): they agree on log steps, where the host waits for the devices anyway, so
  they stop at the first log step after any of them was signalled.
  """

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self.signum, self._previous = None, {}

  def _handle(self, signum, frame):
    del frame
    if self.signum is not None:  # Asked twice: stop now, as the signal would have.
      self.__exit__()
      raise KeyboardInterrupt
    self.signum = signum
    logging.warning('%s: stopping after this step, with a checkpoint (again: at once)',
                    signal.Signals(signum).name)

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
    return self

  def agreed(self, log_step: bool) -> bool:
    """Whether to stop after this step: at once in a single process, at a log step with
    every process in a multi-process run (each calls this at every step)."""
    if jax.process_count() == 1:
      return self.signum is not None
    if not log_step:
      return False
    signums = parallel.all_processes(np.int32(self.signum or 0))
    self.signum = int(np.max(signums)) or None
    return self.signum is not None

  def __exit__(self, *exc):
    for s, handler in self._previous.items():
      signal.signal(s, handler)
    self._previous = {}


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


def _grids(s: Setup, fns: dict, state, examples: dict) -> dict[str, np.ndarray]:
  """The image grids of `state` (each row of inputs above its outputs where shown)."""
  pictures = {}
  for name, (sharded, inputs, ncols, show_inputs, fn) in examples.items():
    outputs = parallel.gather(fns[fn](state, sharded))[:len(inputs)]
    tiles = []
    for lo in range(0, len(inputs), ncols):
      tiles += ([inputs[lo:lo + ncols]] if show_inputs else []) + [
          outputs[lo:lo + ncols]]
    pictures[name] = images.grid(np.concatenate(tiles), ncols)
  return pictures


def _write_images(s: Setup, fns: dict, state, examples: dict, writer, step: int) -> None:
  pictures = _grids(s, fns, state, examples)
  for name, picture in pictures.items():
    modes.save_grid(s, picture, 'images', f'{name}_{step:07d}.png')
  writer.write_images(step, {k: v[None] for k, v in pictures.items()})


def _row_head(s: Setup, step: int) -> dict[str, int]:
  """The start of a `metrics.jsonl` row: the step, and the training examples read up to it
  (the machine-independent measure of training time, as `examples_to_reach` reads it)."""
  return {'step': step, 'examples': step * s.config.batch_size * s.task.batch_multiplier}


def _append_jsonl(path: str, row: dict) -> None:
  if jax.process_index() == 0:
    with open(path, 'a') as f:
      f.write(json.dumps(row) + '\n')


def _jsonl_rows(path: str):
  """The rows of a `metrics.jsonl`; a line that does not parse (a torn append: a kill or a
  full disk mid-write) is skipped with a warning."""
  with open(path) as f:
    for number, line in enumerate(f, 1):
      try:
        row = json.loads(line)
      except ValueError:
        row = None
      if not isinstance(row, dict) or not isinstance(row.get('step'), int):
        logging.warning('%s line %d is torn or not a metrics row; dropped: %.80r', path,
                        number, line)
        continue
      yield row


def _truncate_jsonl(path: str, last_step: int) -> None:
  """Drops rows after `last_step` (a resumed run rewrites what came after its checkpoint)
  and torn lines; atomically."""
  if jax.process_index() == 0 and os.path.exists(path):
    rows = [json.dumps(row) + '\n' for row in _jsonl_rows(path) if row['step'] <= last_step]
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
  _append_jsonl(metrics_path, _row_head(s, step) | {
      f'train/{k}': v for k, v in metrics.items()})
  logging.info('%s', _progress_line(step, s.config.num_train_steps, losses, steps_per_s))
  return metrics


def _eval_and_show(s: Setup, entries, state, examples, writer, step: int, metrics_path: str,
                   *, final: bool, fns: dict, skipped: set) -> dict[str, float]:
  """Runs the evaluators due at `step`, logs them ({ENTRY/metric: value}), and writes
  image grids."""
  logged = evaluators.run(entries, s, state, step=step, final=final, skipped=skipped, sep='/')
  if logged:
    writer.write_scalars(step, logged)
    _append_jsonl(metrics_path, _row_head(s, step) | logged)
  if fns['image'] and (logged or final):
    _write_images(s, fns, state, examples, writer, step)
  return logged


def _image_fns(s: Setup) -> dict:
  """The compiled-on-first-use image functions of the task (none where examples are not
  images, such as 2-D points, or `num_image_examples` is 0)."""

  def images_fn(fn):
    return fn and parallel.data_parallel(fn, s.mesh, out_batched=True)

  if s.info.image_shape[-1] not in (1, 3) or s.config.num_image_examples < 1:
    return {'image': None, 'sample': None}
  return {'image': images_fn(s.task.image_step), 'sample': images_fn(s.task.sample_step)}


def read_metrics(workdir: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """A run's `metrics.jsonl` as {metric: (steps, values)}, for plotting."""
  series: dict[str, tuple[list, list]] = {}
  path = os.path.join(workdir, 'metrics.jsonl')
  if os.path.exists(path):
    for row in _jsonl_rows(path):
      for k, v in row.items():
        if k not in ('step', 'examples'):
          series.setdefault(k, ([], []))[0].append(row['step'])
          series[k][1].append(v)
  return {k: (np.asarray(steps), np.asarray(values)) for k, (steps, values) in series.items()}


def examples_to_reach(workdir: str, metric: str, target: float, *,
                      lower_is_better: bool = True) -> dict | None:
  """Time to quality: the first logged step of a run at which `metric` (a `metrics.jsonl`
  key, e.g. 'test/sq_err_per_image') reached `target`, as {'step', 'examples', 'value'};
  None if it never did. Examples count every training example read, on all devices."""
  path = os.path.join(workdir, 'metrics.jsonl')
  for row in _jsonl_rows(path):
    value = row.get(metric)
    if value is not None and (value <= target if lower_is_better else value >= target):
      if 'examples' not in row:
        raise ValueError(f'{path} has no examples column (written before jgen logged it); '
                         'multiply the step by the examples per step instead')
      return {'step': row['step'], 'examples': row['examples'], 'value': value}
  return None


class Trainer:
  """One run of `config` in `workdir`, step by step: what `run.py` trains with, and what a
  notebook or script drives.

    trainer = Trainer(config, workdir)  # validates; restores the latest checkpoint or starts
    for step, logged in trainer.steps(until=500):  # logged: the metrics logged at `step`
      ...
    results = trainer.train()  # on to config.num_train_steps: evaluates, writes results.json

  Creating one validates everything it can before any work (names, batch size, dataset,
  workdir), takes the workdir's lock (`jgen.lock`: another process's run there stops with
  its name; released by `close`, which `finish` calls) and restores the workdir's newest
  whole checkpoint (else the parameters of `init_checkpoint`, else a fresh state from
  `config.seed`); a run continued in a new Trainer (or process) ends exactly as if it had
  never stopped. `state` is the current (device) train state; `sample`, `generate`,
  `encode`, `reconstruct`, `grids` and `evaluate` read `eval_state` (the same, with the
  parameter average in place of the parameters where the optimizer keeps one).
  """

  def __init__(self, config, workdir: str):
    self._t_start = time.time()
    if config.family == 'compare':
      raise ConfigError('a comparison config trains many runs and writes a report: call '
                        'jgen.compare.run(config, workdir), or run.py with it')
    if config.get('gan') and config.gan.get('restarts'):
      raise ConfigError('gan.restarts trains several restarts before the run: call '
                        'jgen.train.train_and_evaluate(config, workdir), or run.py with it')
    self.config = config
    s = self.setup = session.setup(config, workdir)
    self.workdir = s.workdir
    self._ckpt = self._stop = None
    # One run per workdir (process 0 holds the lock for all processes of a run).
    self._lock = WorkdirLock(s.workdir)
    if jax.process_index() == 0:
      self._lock.acquire()
    try:
      self._ckpt = Checkpointer(s.workdir, every_steps=config.checkpoint_every_steps,
                                keep=config.keep_checkpoints,
                                use_async=config.async_checkpoints)
      state = parallel.replicate(s.mesh, s.task.init_state(jax.random.PRNGKey(config.seed)))
      self.state = self._ckpt.restore_or_init(state, config.init_checkpoint)
    except BaseException:
      self.close()
      raise
    self.step = self._start_step = int(jax.device_get(self.state.step))
    self._saved_step = self._ckpt.latest_step()
    # Every step also folds into `_first_bad` the first step whose loss was not finite (0:
    # none), on the devices; the host reads it only when it logs or saves.
    self._first_bad = parallel.replicate(s.mesh, np.int32(0))
    keys = s.task.progress_keys

    def watched(st, batch, first_bad):
      st, metrics = s.task.train_step(st, batch)
      finite = jnp.all(jnp.stack([jnp.isfinite(metrics[k]) for k in keys]))
      return st, metrics, jnp.where((first_bad == 0) & ~finite, st.step, first_bad)

    self._train_fn = parallel.data_parallel(watched, s.mesh, num_args=3, donate_argnums=(0,))
    # Steps that log nothing run the same step without its metrics, so XLA drops their
    # computation (norms, extra losses): bench/ae_step.py measures what that saves. That
    # second program compiles in seconds, so only configs with many such steps have it
    # (decided by the config alone, so that a resumed run steps as the first did).
    self._quiet_fn = self._train_fn
    if config.num_train_steps - config.num_train_steps // config.log_every_steps >= QUIET_STEPS:
      self._quiet_fn = parallel.data_parallel(
          lambda st, batch, first_bad: (lambda out: (out[0], out[2]))(
              watched(st, batch, first_bad)), s.mesh, num_args=3, donate_argnums=(0,))
    self._fns = _image_fns(s)
    self._entries, self._skipped = evaluators.build(config), set()
    self._examples = self._writer = self._batches = None
    self._examples_per_step = config.batch_size * s.task.batch_multiplier
    self._metrics_path = os.path.join(s.workdir, 'metrics.jsonl')
    self._meter, self.train_metrics, self._evaluated = _SpeedMeter(), {}, None
    self.results = None

  def _start(self) -> None:
    """What the first step needs: the writer, the data stream from this step, the grids."""
    if self._batches is not None:
      return
    config, s = self.config, self.setup
    logging.info('Training %s on %s from step %d to %d on %d devices (%d processes)',
                 config.model.name, s.info.name, self.step, config.num_train_steps,
                 jax.device_count(), jax.process_count())
    self._writer = MetricWriter(s.workdir, just_logging=jax.process_index() > 0)
    if self._fns['image']:
      self._examples = _image_examples(s)
    # Two device batches ahead: the next steps' are on the devices while this one runs;
    # made on a thread where the cores are not XLA's own (GPU, TPU).
    self._batches = Prefetcher(data.train_batches(
        s.source, split=config.data.train_split, global_batch_size=self._examples_per_step,
        seed=config.seed, start_step=self.step, process_index=jax.process_index(),
        process_count=jax.process_count(), features=s.task.train_features),
        functools.partial(parallel.shard_batch, s.mesh),
        size=PREFETCH, threaded=not runtime.on_cpu())
    _truncate_jsonl(self._metrics_path, self.step)

  def steps(self, until: int | None = None):
    """Trains from the current step to `until` (default: `config.num_train_steps`), one
    step per iteration, with the run's logging, checkpoints and evaluations.

    Yields:
      (step, logged): the step just taken, and what was logged at it (`train/...` metrics
      on logging steps, `ENTRY/...` on evaluation steps; empty otherwise).

    A loop that runs to its end leaves a finished checkpoint at `until`; one left with
    `break` does not (call `save`).
    """
    total = self.config.num_train_steps
    until = total if until is None else until
    if self._ckpt is None:
      raise ConfigError('this Trainer is closed; open a new one on its workdir to go on '
                        '(it restores the latest checkpoint)')
    if not self.step <= until <= total:
      raise ConfigError(f'until={until} must lie between the current step {self.step} and '
                        f'num_train_steps={total}; raise num_train_steps to train longer')
    self._start()
    s, config = self.setup, self.config
    if self._meter.last_time is not None:
      self._meter.start(self.step)  # Time between calls is not training time.
    while self.step < until:
      step = self.step + 1
      log = step % config.log_every_steps == 0 or step == total
      batch = next(self._batches)
      if log:
        self.state, metrics, self._first_bad = self._train_fn(self.state, batch,
                                                              self._first_bad)
      else:
        self.state, *_, self._first_bad = self._quiet_fn(self.state, batch, self._first_bad)
      self.step = step
      if self._meter.last_time is None:
        jax.block_until_ready(self.state)
        self._meter.start(step)
      logged = {}
      if log:
        self._check_finite()
        self.train_metrics = _log_train(s, step, metrics, self._meter.lap(step), self._writer,
                                        self._metrics_path)
        logged = {f'train/{k}': v for k, v in self.train_metrics.items()}
      if self._checkpoint(step, force=step == total):
        self._saved_step = step
      if any(entry.due(step, step == total) for entry in self._entries):
        t_eval = time.time()
        evaluated = _eval_and_show(s, self._entries, self.eval_state, self._examples,
                                   self._writer, step, self._metrics_path,
                                   final=step == total, fns=self._fns, skipped=self._skipped)
        self._evaluated = {k.replace('/', '_', 1): v for k, v in evaluated.items()}
        logged |= evaluated
        self._meter.exclude(time.time() - t_eval)
      yield step, logged
      if self._stop is not None and self._stop.agreed(log) and self.step < total:
        self.save()
        name = signal.Signals(self._stop.signum).name
        raise Stopped(f'{name} after step {self.step}, saved in '
                      f'{self._ckpt.directory}/{self.step}; rerun the same command to go on',
                      self._stop.signum)
    self.save()

  def _check_finite(self) -> None:
    """Stops the run if a step's loss was not finite, naming the first such step."""
    first_bad = int(jax.device_get(self._first_bad))
    if first_bad:
      keys = ' or '.join(self.setup.task.progress_keys)
      raise NonFiniteLossError(
          f'{keys} is not finite at step {first_bad} (the first such step); the last '
          f'checkpoint is step {self._saved_step}; lower the learning rate or check the data')

  def _checkpoint(self, step: int, *, force: bool = False) -> bool:
    """Saves `step` if due (or `force`), never a state with a non-finite value or one past
    a non-finite loss."""
    if not (force or self._ckpt.due(step)):
      return False
    self._check_finite()
    try:
      return self._ckpt.save(step, self.state, force=True)
    except NonFiniteStateError as e:
      raise NonFiniteLossError(f'{e}: not saved (the last checkpoint is step '
                               f'{self._saved_step}); lower the learning rate or check the '
                               'data') from None

  def save(self) -> None:
    """Checkpoints the current state (if this step has no checkpoint yet) and waits until
    every checkpoint write has finished, so that the process may end."""
    if self._saved_step != self.step:
      self._checkpoint(self.step, force=True)
      self._saved_step = self.step
    self._ckpt.wait()

  def train(self, until: int | None = None) -> dict[str, float]:
    """Trains to `until` (default: the end); at the end, evaluates and writes `results.json`.

    Returns:
      the results (as in `results.json`) at the end of training, else the last logged
      training metrics.
    """
    for _ in self.steps(until):
      pass
    if self.step < self.config.num_train_steps:
      return dict(self.train_metrics)
    return self.finish()

  def finish(self) -> dict[str, float]:
    """Waits for checkpoints, closes the writer, evaluates what is left, writes results."""
    if self.results is not None:
      return self.results
    s, config = self.setup, self.config
    self.close()
    evaluated = self._evaluated
    if evaluated is None:  # Nothing left to train: evaluate the final checkpoint.
      evaluated = evaluators.run(self._entries, s, self.eval_state, step=self.step, final=True,
                                 skipped=self._skipped)
    meter = self._meter
    self.results = evaluated | {
        f'final_train_{k}': self.train_metrics.get(k, float('nan'))
        for k in s.task.progress_keys} | {
        'train_examples_per_sec': (meter.steps * self._examples_per_step / meter.seconds
                                   if meter.steps else float('nan')),
        'train_seconds': meter.seconds,
        'wall_clock_s': time.time() - self._t_start,
        'num_train_steps': config.num_train_steps,
        'steps_this_run': config.num_train_steps - self._start_step,
        'num_devices': jax.device_count(),
        'num_processes': jax.process_count(),
        'seed': config.seed,
    }
    modes.write_json(os.path.join(s.workdir, 'results.json'), self.results)
    logging.info('Results: %s', json.dumps(self.results, sort_keys=True))
    return self.results

  def close(self) -> None:
    """Finishes pending checkpoint writes and closes files; the state stays readable."""
    if getattr(self, '_batches', None) is not None:
      self._batches.close()
    if self._ckpt is not None:
      ckpt, self._ckpt = self._ckpt, None
      try:
        ckpt.wait()
      finally:
        ckpt.close()
    if getattr(self, '_writer', None) is not None:
      self._writer.close()
      self._writer = None
    self._lock.release()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  # What a notebook reads of the current state.

  @property
  def eval_state(self):
    """The current state as evaluation, samples and exports read it: with the parameter
    average in place of the parameters where the optimizer keeps one (`optim.evaluated`)."""
    return optim.evaluated(self.state)

  def sample(self, num_samples: int, *, seed: int = 0, sampler: str = '') -> np.ndarray:
    """`num_samples` new examples (N, H, W, C) in [0, 1]: `sampler` as `--mode=sample`
    ('' the model's default: its prior, or a GMM of an autoencoder's training codes)."""
    sampler = sampling.check_sampler(self.setup.task, sampler, self.config.family)
    return sampling.draw(self.setup, self.eval_state, num_samples, sampler=sampler, seed=seed)

  def latents(self, num_samples: int, *, seed: int = 0) -> np.ndarray:
    """`num_samples` draws of the model's prior (the generator's inputs)."""
    if self.setup.task.sample_inputs is None:
      raise ConfigError(f'model family {self.config.family!r} has no prior to draw from')
    return self.setup.task.sample_inputs(jax.random.PRNGKey(seed), num_samples)

  def generate(self, latents) -> np.ndarray:
    """Decodes latents (N, D) into examples in [0, 1] (a GAN's EMA generator, a decoder)."""
    task = self.setup.task
    fn = task.sample_step or (task.image_step if task.sample_inputs is not None else None)
    if fn is None:
      raise ConfigError(f'model family {self.config.family!r} has nothing that decodes latents')
    return sampling.apply_rows(self.setup, fn, self.eval_state, np.asarray(latents, np.float32))

  def encode(self, examples) -> np.ndarray:
    """Codes (N, D) of examples (N, H, W, C) in [0, 1] (an autoencoder's or a VAE's)."""
    if self.setup.task.encode_step is None:
      raise ConfigError(f'model family {self.config.family!r} has no encoder')
    return sampling.apply_rows(self.setup, self.setup.task.encode_step, self.eval_state,
                               np.asarray(examples, np.float32))

  def reconstruct(self, examples) -> np.ndarray:
    """An autoencoder's or a VAE's reconstructions of examples in [0, 1]."""
    if self.setup.task.encode_step is None:
      raise ConfigError(f'model family {self.config.family!r} does not reconstruct')
    return sampling.apply_rows(self.setup, self.setup.task.image_step, self.eval_state,
                               np.asarray(examples, np.float32))

  def test_examples(self, num_examples: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `num_examples` test examples in [0, 1] and their labels."""
    return data.split_images(self.setup.source, self.config.data.test_split, num_examples)

  def grids(self) -> dict[str, np.ndarray]:
    """The image grids the run writes under `images/` (samples, reconstructions,
    InfoGAN's traversals), of the current state: {name: (H, W, C) in [0, 1]}."""
    if not self._fns['image']:
      return {}
    if self._examples is None:
      self._examples = _image_examples(self.setup)
    return _grids(self.setup, self._fns, self.eval_state, self._examples)

  def evaluate(self) -> dict[str, float]:
    """Every configured evaluator that applies, on the current state (as `--mode=eval`)."""
    return evaluators.run(self._entries, self.setup, self.eval_state, step=self.step, final=True,
                          skipped=self._skipped)


def train_and_evaluate(config, workdir: str) -> dict[str, float]:
  """Trains `config` in `workdir` (resuming if it holds checkpoints); returns the results.

  Writes TensorBoard events, `metrics.jsonl` (one row per log or eval step; a resumed run
  replaces the rows after its checkpoint), image grids under `images/`, checkpoints under
  `checkpoints/`, and `results.json` at the end.

  SIGTERM or SIGINT (a scheduler's preemption, Ctrl-C) stops it after the current step with
  a checkpoint, raising `Stopped`; rerunning goes on exactly.

  With `gan.restarts` (InfoGAN), the restarts train first and the run goes on from the one
  chosen without labels (`jgen.restarts`).
  """
  if config.get('gan') and config.gan.get('restarts'):
    restarts.check(config, workdir)
    with _StopOnSignal() as stop:  # One for the restarts and the run: no signal is lost.
      config = restarts.choose(config, workdir, functools.partial(_restart, stop=stop))
      _stop_between(stop, 'after the restarts')
      with Trainer(config, workdir) as trainer:
        trainer._stop = stop
        return trainer.train()
  with Trainer(config, workdir) as trainer, _StopOnSignal() as stop:
    trainer._stop = stop
    return trainer.train()


def _stop_between(stop: _StopOnSignal, where: str) -> None:
  """Raises `Stopped` if a signal came while no step was running (everything is saved)."""
  if stop.signum is not None:
    raise Stopped(f'{signal.Signals(stop.signum).name} {where}; rerun the same command to go '
                  'on', stop.signum)


def _restart(config, workdir: str, steps: int, *, stop: _StopOnSignal) -> float:
  """Trains one restart (`jgen.restarts`) to `steps`, saved; its label-free statistic, or
  -inf if its loss went non-finite (the other restarts are chosen from)."""
  _stop_between(stop, f'before the restart of seed {config.seed}')
  with Trainer(config, workdir) as trainer:
    trainer._stop = stop
    try:
      trainer.train(until=steps)
    except NonFiniteLossError as e:
      logging.warning('The restart of seed %d is left out: %s', config.seed, e)
      return float('-inf')
    trainer.save()
    return restarts.statistic(trainer)
