"""The one train loop shared by every model family: setup, steps, periodic actions.

`train_and_evaluate(config, workdir)` validates everything it can before any work (names,
batch size, dataset, workdir), then trains, checkpoints, logs and evaluates; a rerun in the
same workdir resumes where the last checkpoint left off and ends exactly as if it had
never stopped.
"""

import dataclasses
import json
import logging as logging_lib
import os
import time

import jax
import numpy as np
from absl import logging
from clu import metric_writers, periodic_actions

from jgen import data, parallel, steps
from jgen.checkpoint import Checkpointer
from jgen.evaluate import density, evaluate, images, latent
from jgen.registry import ConfigError


class QuietLibraries(logging_lib.Filter):
  """Drops INFO lines from Orbax and TFDS (every file they touch) and clu's notes; install
  with `logging.get_absl_handler().addFilter(QuietLibraries())`."""

  NOISY = ('/orbax/', '/tensorflow_datasets/', '/clu/platform/')

  def filter(self, record):
    noisy = any(part in record.pathname for part in self.NOISY)
    return record.levelno >= logging_lib.WARNING or not noisy


class NonFiniteLossError(RuntimeError):
  """The loss became NaN or infinite."""


@dataclasses.dataclass
class Setup:
  """Everything validated and built before the first step."""

  config: object
  workdir: str
  builder: object
  info: data.DatasetInfo
  task: steps.Task
  mesh: object
  transform: data.ImageTransform


def check_workdir(workdir: str) -> str:
  """Creates `workdir` if needed and checks it can be written; changes nothing in it.

  Raises:
    ConfigError: if it cannot be created or written.
  """
  workdir = os.path.abspath(os.path.expanduser(workdir))
  probe = os.path.join(workdir, f'.write_probe_{os.getpid()}')
  try:
    os.makedirs(workdir, exist_ok=True)
    with open(probe, 'w') as f:
      f.write('')
    os.remove(probe)
  except OSError as e:
    raise ConfigError(f'workdir {workdir} cannot be written ({e.strerror}); '
                      'pass a writable --workdir') from None
  return workdir


def setup(config, workdir: str) -> Setup:
  """Validates the config and builds the task, cheapest checks first; writes nothing.

  Raises:
    ConfigError: for any problem the user can fix, with a one-line message.
  """
  if config.num_train_steps < 1:
    raise ConfigError(f'num_train_steps={config.num_train_steps} must be at least 1')
  if config.init_checkpoint and not os.path.isdir(config.init_checkpoint):
    raise ConfigError(f'init_checkpoint {config.init_checkpoint!r} is not a directory; give a '
                      'checkpoint item directory such as WORKDIR/checkpoints/1000/default')
  parallel.check_batch_size(config.batch_size, 'batch_size')
  parallel.check_batch_size(config.eval_batch_size, 'eval_batch_size')
  # Names and model options are checked on abstract values, from the dataset's static
  # metadata, before anything is prepared or written.
  task, transform = build_task(config)
  jax.eval_shape(task.init_state, jax.random.PRNGKey(0))
  workdir = check_workdir(workdir)
  builder = data.ensure_prepared(config.data.name, config.data.data_dir or None,
                                 download=config.data.download)
  info = data.dataset_info(builder, config.data.train_split, config.data.test_split, transform)
  return Setup(config, workdir, builder, info, task, parallel.make_mesh(), transform)


def build_task(config) -> tuple[steps.Task, data.ImageTransform]:
  """The config's task, for the image shape its dataset has after the config's transform
  (from the dataset's static metadata: nothing is read or prepared)."""
  builder = data.get_builder(config.data.name, config.data.data_dir or None)
  transform = data.ImageTransform(config.data.center_crop, config.data.resize)
  return steps.build_task(config, transform.shape(builder.info.features['image'].shape)), (
      transform)


def _shard_rows(s: Setup, rows: np.ndarray):
  """Pads host rows (the same on every process) to fill every device and shards them."""
  pad = -len(rows) % jax.device_count()
  rows = np.concatenate([rows, np.repeat(rows[-1:], pad, axis=0)])
  per_process = len(rows) // jax.process_count()
  lo = jax.process_index() * per_process
  return parallel.shard_batch(s.mesh, rows[lo:lo + per_process])


def _image_examples(s: Setup) -> dict:
  """The fixed inputs of the image grids, sharded once for the whole run.

  Returns:
    {grid name: (sharded inputs, host inputs, columns, show inputs, which function)}.
  """
  n = s.config.num_image_examples
  batch = next(data.eval_batches(s.builder, split=s.config.data.test_split, global_batch_size=n,
                                 process_index=0, process_count=1, transform=s.transform))
  groups = {name: (rows, ncols, s.task.show_inputs, 'image')
            for name, (rows, ncols) in s.task.image_inputs(batch['image']).items()}
  if s.task.sample_step and s.task.sample_inputs:  # Decoded prior draws (a VAE's samples).
    groups['samples'] = (s.task.sample_inputs(jax.random.PRNGKey(0), n),
                         int(np.ceil(np.sqrt(n))), False, 'sample')
  return {name: (_shard_rows(s, rows), rows, ncols, show, fn)
          for name, (rows, ncols, show, fn) in groups.items()}


def _save_grid(s: Setup, picture: np.ndarray, subdir: str, name: str) -> None:
  if jax.process_index() == 0:
    images.save_png(picture, os.path.join(s.workdir, subdir, name))


def _write_images(s: Setup, fns: dict, state, examples: dict, writer, step: int) -> None:
  pictures = {}
  for name, (sharded, inputs, ncols, show_inputs, fn) in examples.items():
    outputs = parallel.gather(fns[fn](state, sharded))[:len(inputs)]
    tiles = []
    for lo in range(0, len(inputs), ncols):  # Each row of inputs above its outputs.
      tiles += ([inputs[lo:lo + ncols]] if show_inputs else []) + [
          outputs[lo:lo + ncols]]
    pictures[name] = images.grid(np.concatenate(tiles), ncols)
    _save_grid(s, pictures[name], 'images', f'{name}_{step:07d}.png')
  writer.write_images(step, {k: v[None] for k, v in pictures.items()})


def _evaluate(s: Setup, eval_fn, state) -> dict[str, float]:
  batches = data.eval_batches(s.builder, split=s.config.data.test_split,
                              global_batch_size=s.config.eval_batch_size,
                              process_index=jax.process_index(),
                              process_count=jax.process_count(), transform=s.transform)
  return evaluate(eval_fn, state, batches, s.mesh, s.task.summarize)


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


def _write_json(path: str, obj: dict) -> None:
  if jax.process_index() == 0:
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
      json.dump(obj, f, indent=2, sort_keys=True)
    os.replace(tmp, path)  # Never leave a half-written results file.


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
  writer.write_scalars(step, {f'train/{k}': v for k, v in metrics.items()})
  _append_jsonl(metrics_path, {'step': step} | {f'train/{k}': v for k, v in metrics.items()})
  logging.info('%s', _progress_line(step, s.config.num_train_steps, losses, steps_per_s))
  return metrics


def _eval_and_show(s: Setup, fns: dict, state, examples, writer, step: int,
                   metrics_path: str, final: bool = False) -> dict[str, float]:
  """Evaluates on the whole test split, logs it, and writes image grids."""
  results = _evaluate(s, fns['final_eval' if final else 'eval'], state)
  writer.write_scalars(step, {f'test/{k}': v for k, v in results.items()})
  _append_jsonl(metrics_path, {'step': step} | {f'test/{k}': v for k, v in results.items()})
  if fns['image']:
    _write_images(s, fns, state, examples, writer, step)
  return results


def _eval_fns(s: Setup) -> dict:
  """The compiled-on-first-use eval and image functions of the task."""
  task = s.task

  def images_fn(fn):
    return fn and parallel.data_parallel(fn, s.mesh, out_batched=True)

  return {'eval': parallel.data_parallel(task.eval_step, s.mesh),
          'final_eval': parallel.data_parallel(task.final_eval_step or task.eval_step, s.mesh),
          'image': images_fn(task.image_step), 'sample': images_fn(task.sample_step)}


def train_and_evaluate(config, workdir: str) -> dict[str, float]:
  """Trains `config` in `workdir` (resuming if it holds checkpoints); returns the results.

  Writes TensorBoard events, `metrics.jsonl` (one row per log or eval step; a resumed run
  replaces the rows after its checkpoint), image grids under `images/`, checkpoints under
  `checkpoints/`, and `results.json` at the end.
  """
  t_start = time.time()
  s = setup(config, workdir)
  writer = metric_writers.create_default_writer(s.workdir, just_logging=jax.process_index() > 0)
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
  fns = _eval_fns(s)
  examples = _image_examples(s) if fns['image'] else None
  examples_per_step = config.batch_size * s.task.batch_multiplier
  batches = data.train_batches(
      s.builder, split=config.data.train_split, global_batch_size=examples_per_step,
      seed=config.seed, start_step=start_step, process_index=jax.process_index(),
      process_count=jax.process_count(), shuffle_buffer=config.data.shuffle_buffer or None,
      transform=s.transform)
  report = periodic_actions.ReportProgress(num_train_steps=total, writer=writer,
                                           every_steps=config.log_every_steps, every_secs=None)
  metrics_path = os.path.join(s.workdir, 'metrics.jsonl')
  _truncate_jsonl(metrics_path, start_step)
  meter, train_metrics, test = _SpeedMeter(), {}, None
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
    report(step)
    if log:
      train_metrics = _log_train(s, step, metrics, meter.lap(step), writer, metrics_path)
    ckpt.save(step, state, force=step == total)
    if (config.eval_every_steps and step % config.eval_every_steps == 0) or step == total:
      t_eval = time.time()
      test = _eval_and_show(s, fns, state, examples, writer, step, metrics_path,
                            final=step == total)
      meter.exclude(time.time() - t_eval)
  ckpt.wait()
  ckpt.close()
  writer.flush()
  if test is None:  # Nothing left to train: evaluate the final checkpoint.
    test = _evaluate(s, fns['final_eval'], state)

  results = {f'test_{k}': v for k, v in test.items()} | {
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
  _write_json(os.path.join(s.workdir, 'results.json'), results)
  logging.info('Results: %s', json.dumps(results, sort_keys=True))
  return results


def _restore_latest(config, workdir: str):
  """Sets up and restores the latest checkpoint in `workdir`: (setup, state, step).

  Raises:
    ConfigError: if `workdir` has no checkpoint.
  """
  checkpoints = os.path.join(os.path.abspath(workdir), 'checkpoints')
  if not os.path.isdir(checkpoints) or not os.listdir(checkpoints):
    raise ConfigError(f'no checkpoint in {checkpoints}; train first (--mode=train)')
  s = setup(config, workdir)
  ckpt = Checkpointer(s.workdir, every_steps=config.checkpoint_every_steps,
                      keep=config.keep_checkpoints, use_async=False)
  if ckpt.latest_step() is None:
    raise ConfigError(f'no checkpoint in {checkpoints}; train first (--mode=train)')
  state = ckpt.restore(parallel.replicate(s.mesh, s.task.init_state(jax.random.PRNGKey(0))))
  ckpt.close()
  return s, state, int(jax.device_get(state.step))


def evaluate_checkpoint(config, workdir: str) -> dict[str, float]:
  """Evaluates the latest checkpoint in `workdir` on the test split; writes `eval.json`.

  Raises:
    ConfigError: if `workdir` has no checkpoint.
  """
  s, state, step = _restore_latest(config, workdir)
  results = _evaluate(s, _eval_fns(s)['final_eval'], state)
  out = {'step': step} | {f'test_{k}': v for k, v in results.items()}
  _write_json(os.path.join(s.workdir, 'eval.json'), out)
  logging.info('Eval of step %d: %s', step, json.dumps(out, sort_keys=True))
  return out


def _encode_split(s: Setup, state, split: str) -> tuple[np.ndarray, np.ndarray]:
  """The encoder's codes (N, D) and the labels (N,) of every example of `split`."""
  fn = parallel.data_parallel(s.task.encode_step, s.mesh, out_batched=True)
  codes, labels = [], []
  for batch in data.eval_batches(s.builder, split=split,
                                 global_batch_size=s.config.eval_batch_size,
                                 process_index=jax.process_index(),
                                 process_count=jax.process_count(), transform=s.transform):
    sharded = parallel.shard_batch(s.mesh, batch)
    real = parallel.gather(sharded['mask']) > 0
    codes.append(parallel.gather(fn(state, sharded['image']))[real])
    labels.append(parallel.gather(sharded['label'])[real])
  return np.concatenate(codes), np.concatenate(labels)


def _decode(s: Setup, state, codes: np.ndarray) -> np.ndarray:
  fn = parallel.data_parallel(s.task.sample_step, s.mesh, out_batched=True)
  return parallel.gather(fn(state, _shard_rows(s, np.asarray(codes, np.float32))))[:len(codes)]


SAMPLERS = ('prior', 'gaussian', 'gmm')


def sample_checkpoint(config, workdir: str, num_samples: int, seed: int = 0,
                      sampler: str = '', num_components: int = 10) -> str:
  """Writes `num_samples` new samples of the latest checkpoint in `workdir`.

  `sampler`: 'prior' decodes draws of the model's prior (GANs, VAEs; the default where
  there is one); 'gaussian' or 'gmm' (`num_components` components) decode draws of a
  density fitted to the encoder's codes of the training split (the default, 'gmm', for
  deterministic autoencoders). Files: `samples/NAME_STEP.png` (a grid) and
  `samples/NAME_STEP.npz` (`images`, uint8 (N, H, W, C)), NAME `samples` for the prior and
  `samples_gaussian` / `samples_gmm` otherwise. Returns the .npz path.

  Raises:
    ConfigError: if `num_samples` < 1, the sampler is unknown or the model has no way to
      use it, or there is no checkpoint.
  """
  if num_samples < 1:
    raise ConfigError(f'num_samples={num_samples} must be at least 1')
  task, _ = build_task(config)
  has_prior, has_encoder = task.sample_inputs is not None, task.encode_step is not None
  sampler = sampler or ('prior' if has_prior else 'gmm')
  if sampler not in SAMPLERS:
    raise ConfigError(f'unknown sampler {sampler!r}; known: {", ".join(SAMPLERS)}')
  if (sampler == 'prior' and not has_prior) or (sampler != 'prior' and not has_encoder):
    raise ConfigError(f'model family {config.family!r} cannot sample with {sampler!r}: it has '
                      f'no {"prior" if sampler == "prior" else "encoder"}; use --sampler='
                      f'{"gmm" if has_encoder else "prior"}')
  s, state, step = _restore_latest(config, workdir)
  if sampler == 'prior':
    inputs = s.task.sample_inputs(jax.random.PRNGKey(seed), num_samples)
    fn = parallel.data_parallel(s.task.sample_step or s.task.image_step, s.mesh,
                                out_batched=True)
    samples = parallel.gather(fn(state, _shard_rows(s, inputs)))[:num_samples]
    name = f'{s.task.image_name if s.task.sample_step is None else "samples"}_{step:07d}'
  else:
    codes, _ = _encode_split(s, state, config.data.train_split)
    fitted = density.fit(sampler, codes, num_components, seed=seed)
    logging.info('Fitted a %s to %d training codes: mean log-density %.3f', sampler,
                 len(codes), float(fitted.log_prob(codes).mean()))
    samples = _decode(s, state, fitted.sample(np.random.default_rng(seed), num_samples))
    name = f'samples_{sampler}_{step:07d}'
  _save_grid(s, images.grid(samples, int(np.ceil(np.sqrt(num_samples)))), 'samples',
             f'{name}.png')
  path = os.path.join(s.workdir, 'samples', f'{name}.npz')
  if jax.process_index() == 0:
    np.savez_compressed(path, images=(np.clip(samples, 0, 1) * 255).round().astype(np.uint8))
  logging.info('Wrote %d samples of step %d to %s', num_samples, step, path)
  return path


def latent_checkpoint(config, workdir: str, num_pairs: int = 8, steps: int = 10,
                      grid_size: int = 20) -> list[str]:
  """Writes latent-space pictures of the latest checkpoint in `workdir` under `latent/`
  (PNGs) and to TensorBoard (`latent/*` images at the checkpoint's step).

  * `interpolation_STEP.png`: test image i and test image i + num_pairs at each row's ends,
    between them the decodings of `steps` codes on the line between their codes.
  * For a 2-D latent: `manifold_STEP.png`, the decodings of a grid_size^2 grid of codes (the
    prior's quantiles for a VAE, the test codes' range for an autoencoder), and
    `scatter_STEP.png`, the test set's codes coloured by label (colours: latent.PALETTE).

  Returns the paths written.

  Raises:
    ConfigError: if the model has no encoder or there is no checkpoint.
  """
  task, _ = build_task(config)
  if task.encode_step is None or task.sample_step is None:
    raise ConfigError(f'model family {config.family!r} has no encoder: latent pictures need '
                      'an autoencoder or a VAE')
  s, state, step = _restore_latest(config, workdir)
  codes, labels = _encode_split(s, state, config.data.test_split)
  first = next(data.eval_batches(s.builder, split=config.data.test_split,
                                 global_batch_size=2 * num_pairs, transform=s.transform))
  ends = first['image']
  line = _decode(s, state, latent.interpolate(codes[:num_pairs], codes[num_pairs:2 * num_pairs],
                                              steps)).reshape(num_pairs, steps, *ends.shape[1:])
  rows = np.concatenate([ends[:num_pairs, None], line, ends[num_pairs:, None]], axis=1)
  pictures = {'interpolation': images.grid(rows.reshape(-1, *ends.shape[1:]), steps + 2)}
  if codes.shape[1] == 2:
    grid_codes = (latent.gaussian_grid(grid_size) if s.task.sample_inputs is not None else
                  latent.range_grid(grid_size, *np.percentile(codes, [1, 99], axis=0)))
    pictures['manifold'] = images.grid(_decode(s, state, grid_codes), grid_size, pad=0)
    pictures['scatter'] = latent.scatter_image(codes, labels)
  else:
    logging.info('The latent has %d dimensions: the manifold and scatter pictures need 2',
                 codes.shape[1])
  paths = []
  for name, picture in pictures.items():
    _save_grid(s, picture, 'latent', f'{name}_{step:07d}.png')
    paths.append(os.path.join(s.workdir, 'latent', f'{name}_{step:07d}.png'))
  writer = metric_writers.create_default_writer(s.workdir, just_logging=jax.process_index() > 0)
  writer.write_images(step, {f'latent/{k}': v[None] for k, v in pictures.items()})
  writer.flush()
  logging.info('Wrote %s', ', '.join(paths))
  return paths
