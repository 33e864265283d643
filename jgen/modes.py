"""The modes of `run.py` that read a finished run: eval, sample, latent, export.

Each restores the latest checkpoint of a workdir with the run's config; none trains.
"""

import json
import os

import jax
import numpy as np
from absl import logging

from jgen import data, session
from jgen.evaluate import evaluators, features, images, latent, sampling
from jgen.registry import ConfigError
from jgen.writer import MetricWriter


def save_grid(s, picture: np.ndarray, subdir: str, name: str) -> None:
  if jax.process_index() == 0:
    images.save_png(picture, os.path.join(s.workdir, subdir, name))


def write_json(path: str, obj: dict) -> None:
  """Writes `obj` atomically (process 0 only): never a half-written results file."""
  if jax.process_index() == 0:
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
      json.dump(obj, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def evaluate_checkpoint(config, workdir: str) -> dict[str, float]:
  """Runs every configured evaluator that applies on the latest checkpoint in `workdir`.

  The results go into `results.json` (its training figures, if any, are kept; the
  evaluators' values and `step` are replaced), the same values the end of training writes.

  Raises:
    ConfigError: if `workdir` has no checkpoint.
  """
  s, state, step = session.restore_latest(config, workdir)
  out = {'step': step} | evaluators.run(evaluators.build(config), s, state, step=step,
                                        final=True)
  path = os.path.join(s.workdir, 'results.json')
  previous = {}
  if os.path.exists(path):
    with open(path) as f:
      previous = json.load(f)
  write_json(path, previous | out)
  logging.info('Eval of step %d: %s', step, json.dumps(out, sort_keys=True))
  return out


def sample_checkpoint(config, workdir: str, num_samples: int, seed: int = 0,
                      sampler: str = '', num_components: int = 10) -> str:
  """Writes `num_samples` new samples of the latest checkpoint in `workdir`.

  `sampler`: 'prior' decodes draws of the model's prior (GANs, VAEs; the default where
  there is one); 'gaussian' or 'gmm' (`num_components` components) decode draws of a
  density fitted to the encoder's codes of the training split (the default, 'gmm', for
  deterministic autoencoders); 'prior' needs no dataset. `seed` picks the draws. Files:
  `samples/NAME_STEP.png` (a grid) and `samples/NAME_STEP.npz` (`images`, uint8
  (N, H, W, C)), NAME `samples` for the prior and `samples_gaussian` / `samples_gmm`
  otherwise, `_seedS` after STEP for a seed S other than 0. Returns the .npz path.

  Raises:
    ConfigError: if `num_samples` < 1, the sampler is unknown or the model has no way to
      use it, or there is no checkpoint.
  """
  if num_samples < 1:
    raise ConfigError(f'num_samples={num_samples} must be at least 1')
  task, _ = session.build_task(config)
  sampler = sampling.check_sampler(task, sampler, config.family)
  s, state, step = session.restore_latest(config, workdir, with_data=sampler != 'prior')
  samples = sampling.draw(s, state, num_samples, sampler=sampler, seed=seed,
                          num_components=num_components)
  name = f'samples_{step:07d}' if sampler == 'prior' else f'samples_{sampler}_{step:07d}'
  name += f'_seed{seed}' if seed else ''
  save_grid(s, images.grid(samples, int(np.ceil(np.sqrt(num_samples)))), 'samples',
            f'{name}.png')
  path = os.path.join(s.workdir, 'samples', f'{name}.npz')
  if jax.process_index() == 0:
    with open(path + '.tmp', 'wb') as f:
      np.savez_compressed(f, images=(np.clip(samples, 0, 1) * 255).round().astype(np.uint8))
    os.replace(path + '.tmp', path)
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
  task, _ = session.build_task(config)
  if task.encode_step is None or task.sample_step is None:
    raise ConfigError(f'model family {config.family!r} has no encoder: latent pictures need '
                      'an autoencoder or a VAE')
  s, state, step = session.restore_latest(config, workdir)
  codes, labels = sampling.encode_split(s, state, config.data.test_split)
  first = next(data.eval_batches(s.source, split=config.data.test_split,
                                 global_batch_size=2 * num_pairs))
  ends = first['image']

  def decode(z):
    return sampling.apply_rows(s, s.task.sample_step, state, np.asarray(z, np.float32))

  line = decode(latent.interpolate(codes[:num_pairs], codes[num_pairs:2 * num_pairs],
                                   steps)).reshape(num_pairs, steps, *ends.shape[1:])
  rows = np.concatenate([ends[:num_pairs, None], line, ends[num_pairs:, None]], axis=1)
  pictures = {'interpolation': images.grid(rows.reshape(-1, *ends.shape[1:]), steps + 2)}
  if codes.shape[1] == 2:
    grid_codes = (latent.gaussian_grid(grid_size) if s.task.sample_inputs is not None else
                  latent.range_grid(grid_size, *np.percentile(codes, [1, 99], axis=0)))
    pictures['manifold'] = images.grid(decode(grid_codes), grid_size, pad=0)
    pictures['scatter'] = latent.scatter_image(codes, labels)
  else:
    logging.info('The latent has %d dimensions: the manifold and scatter pictures need 2',
                 codes.shape[1])
  paths = []
  for name, picture in pictures.items():
    save_grid(s, picture, 'latent', f'{name}_{step:07d}.png')
    paths.append(os.path.join(s.workdir, 'latent', f'{name}_{step:07d}.png'))
  writer = MetricWriter(s.workdir, just_logging=jax.process_index() > 0)
  writer.write_images(step, {f'latent/{k}': v[None] for k, v in pictures.items()})
  writer.close()
  logging.info('Wrote %s', ', '.join(paths))
  return paths


def export_classifier(config, workdir: str, weights_dir: str = features.WEIGHTS_DIR) -> str:
  """Writes the trained classifier in `workdir` as the feature network of its dataset.

  Measures its accuracy on the whole test split and records it beside the weights.
  Returns the parameters' path.

  Raises:
    ConfigError: if the config is not a classifier's or there is no checkpoint.
  """
  if config.family != 'classifier':
    raise ConfigError(f'--mode=export writes feature classifiers; {config.family!r} is not '
                      'one (use configs/classifier_*.py)')
  s, state, step = session.restore_latest(config, workdir)
  test = evaluators.run([evaluators.Entry('test', 0, evaluators.TestSplit())], s, state,
                        step=step, final=True)
  description = {'model': dict(config.model), 'image_shape': list(s.info.image_shape),
                 'dataset': config.data.name, 'train_steps': step,
                 'test_accuracy': test['test_accuracy']}
  if jax.process_index() == 0:
    features.save(config.data.name, jax.device_get(state.params), description, weights_dir)
  logging.info('Exported the %s classifier (step %d, test accuracy %.4f) to %s',
               config.data.name, step, test['test_accuracy'], weights_dir)
  return features.paths(config.data.name, weights_dir)[0]
