"""Running a task's functions over many host rows: encoding splits, decoding, sampling.

Each function takes `s`, a `jgen.session.Setup` (config, task, mesh, source, transform),
and a restored train state. Rows go through the devices in chunks of `eval_batch_size`,
each padded to full size so every chunk runs the same compiled function.
"""

from collections.abc import Callable

import jax
import numpy as np
from absl import logging

from jgen import data, parallel
from jgen.evaluate import density
from jgen.registry import ConfigError

SAMPLERS = ('prior', 'gaussian', 'gmm')


def apply_rows(s, fn: Callable, state, rows: np.ndarray) -> np.ndarray:
  """Per-device `fn(state, rows)` over host rows (N, ...), in padded chunks; (N, ...)."""
  compiled = parallel.data_parallel(fn, s.mesh, out_batched=True)
  size = s.config.eval_batch_size
  out = []
  for lo in range(0, len(rows), size):
    chunk = np.asarray(rows[lo:lo + size])
    padded = np.concatenate([chunk, np.repeat(chunk[-1:], size - len(chunk), axis=0)])
    out.append(parallel.gather(compiled(state, parallel.shard_rows(s.mesh, padded)))[:len(chunk)])
  return np.concatenate(out)


def encode_split(s, state, split: str, fn: Callable | None = None,
                 num_examples: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """`fn` (default: the task's encoder) of every example of `split`: (codes, labels)."""
  images, labels = data.split_images(s.source, split, num_examples)
  return apply_rows(s, fn or s.task.encode_step, state, images), labels


def default_sampler(task) -> str:
  """'prior' for models with one (GANs, VAEs), else 'gmm' (deterministic autoencoders)."""
  return 'prior' if task.sample_inputs is not None else 'gmm'


def check_sampler(task, sampler: str, family: str) -> str:
  """Returns the sampler to use (`sampler`, or the task's default if empty).

  Raises:
    ConfigError: if it is unknown or the model has no way to use it.
  """
  sampler = sampler or default_sampler(task)
  has_prior, has_encoder = task.sample_inputs is not None, task.encode_step is not None
  if sampler not in SAMPLERS:
    raise ConfigError(f'unknown sampler {sampler!r}; known: {", ".join(SAMPLERS)}')
  if (sampler == 'prior' and not has_prior) or (sampler != 'prior' and not has_encoder):
    raise ConfigError(f'model family {family!r} cannot sample with {sampler!r}: it has '
                      f'no {"prior" if sampler == "prior" else "encoder"}; use --sampler='
                      f'{"gmm" if has_encoder else "prior"}')
  return sampler


_last_fit = {}  # The last density fitted: evaluators of one state share it.


def fit_density(s, state, sampler: str, *, num_components: int = 10, seed: int = 0,
                fit_examples: int = 0):
  """A density (`density.fit`) fitted to the encoder's codes of the first `fit_examples`
  (0: all) training images; the last fit is reused for the same run, step and options."""
  key = (s.workdir, int(jax.device_get(state.step)), sampler, num_components, seed,
         fit_examples)
  if key not in _last_fit:
    codes, _ = encode_split(s, state, s.config.data.train_split, num_examples=fit_examples or None)
    fitted = density.fit(sampler, codes, num_components, seed=seed)
    logging.info('Fitted a %s to %d training codes: mean log-density %.3f', sampler,
                 len(codes), float(fitted.log_prob(codes).mean()))
    _last_fit.clear()
    _last_fit[key] = fitted
  return _last_fit[key]


def draw(s, state, num_samples: int, *, sampler: str, seed: int = 0, num_components: int = 10,
         fit_examples: int = 0) -> np.ndarray:
  """`num_samples` new images (N, H, W, C) in [0, 1] of the model in `state`.

  'prior' decodes draws of the model's prior; 'gaussian' and 'gmm' decode draws of a density
  fitted to the encoder's codes of the training split (`fit_density`).
  """
  task = s.task
  if sampler == 'prior':
    inputs = task.sample_inputs(jax.random.PRNGKey(seed), num_samples)
    return apply_rows(s, task.sample_step or task.image_step, state, inputs)
  fitted = fit_density(s, state, sampler, num_components=num_components, seed=seed,
                       fit_examples=fit_examples)
  draws = fitted.sample(np.random.default_rng(seed), num_samples).astype(np.float32)
  return apply_rows(s, task.sample_step, state, draws)
