r"""A denoising autoencoder against the plain autoencoder of the same size, on MNIST's test split.

  python bench/denoising.py                             # configs/dae_mnist.py, 10,000 steps
  python bench/denoising.py --steps 2000 --workdir runs/denoising_2k
  python bench/denoising.py --config.corrupt.name=gaussian --config.corrupt.level=0.5 \
      --workdir runs/denoising_gauss

Trains `--config` twice, in `WORKDIR/dae` (on corrupted inputs, `corrupt.train=True`) and in
`WORKDIR/ae` (on clean inputs, `corrupt.train=False`; otherwise the same config and steps),
then prints, for both, the test squared error per image of the reconstruction of the
corrupted test images against the clean ones (`denoise_sq_err_per_image`: the same fixed
corruption for both models) and of the clean test images (`sq_err_per_image`).

A finished run (its `results.json` exists) is reused; an interrupted one resumes from its
last checkpoint. Each run directory keeps the config it was started with, and a run of a
different config in the same directory is refused: pass another `--workdir`.
"""

import json
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # For configs/.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # TF is only the input pipeline here.

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/dae_mnist.py',
                                          'The denoising config (path[:variant]).')
_WORKDIR = flags.DEFINE_string('workdir', 'runs/denoising',
                               'Parent of the two run directories, dae/ and ae/.')
_STEPS = flags.DEFINE_integer('steps', None, 'num_train_steps of both runs (default: the '
                              "config's).")

_RUNS = (('dae', 'DAE (trained on corrupted inputs)', True),
         ('ae', 'AE (trained on clean inputs)', False))


def _run_config(base, steps: int | None, train_corrupted: bool):
  config = base.copy_and_resolve_references()
  with config.unlocked():
    if steps is not None:
      config.num_train_steps = steps
    config.corrupt.train = train_corrupted
  return config


def _train_or_reuse(config, workdir: str) -> tuple[dict, bool]:
  """The run's results, training (or resuming) it unless `results.json` exists.

  Raises:
    ConfigError: if `workdir` holds a run of another config.
  """
  from jgen import train
  from jgen.registry import ConfigError

  os.makedirs(workdir, exist_ok=True)
  config_path = os.path.join(workdir, 'bench_config.json')
  wanted = config.to_json(sort_keys=True)
  if os.path.exists(config_path):
    with open(config_path) as f:
      if f.read() != wanted:
        raise ConfigError(f'{workdir} holds a run of another config (see its '
                          'bench_config.json); pass another --workdir')
  else:
    with open(config_path, 'w') as f:
      f.write(wanted)
  results_path = os.path.join(workdir, 'results.json')
  if os.path.exists(results_path):
    with open(results_path) as f:
      return json.load(f), True
  return train.train_and_evaluate(config, workdir), False



def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  import tensorflow as tf

  tf.config.set_visible_devices([], 'GPU')  # Keep TF off accelerators JAX uses.
  from jgen import session, train
  from jgen.registry import ConfigError

  logging.get_absl_handler().addFilter(train.QuietLibraries())

  base = _CONFIG.value
  if base.corrupt.name == 'none':
    print('error: the config has no corruption (corrupt.name=none); pass '
          '--config.corrupt.name=...', file=sys.stderr)
    sys.exit(2)
  start = time.time()
  rows = []
  try:
    configs = [_run_config(base, _STEPS.value, train_corrupted)
               for _, _, train_corrupted in _RUNS]
    for config in configs:  # Names and levels are checked before anything is written.
      session.build_task(config)
    for (subdir, label, _), config in zip(_RUNS, configs, strict=True):
      workdir = os.path.join(_WORKDIR.value, subdir)
      logging.info('Run %s in %s', label, workdir)
      results, reused = _train_or_reuse(config, workdir)
      rows.append((label, results, reused))
  except ConfigError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)

  steps = rows[0][1]['num_train_steps']
  print(f'\nMNIST test split, {base.corrupt.name} corruption at level {base.corrupt.level:g}, '
        f'{steps} steps of batch {base.batch_size}, seed {base.seed} ({_WORKDIR.value}):')
  print(f'  {"model":36s} {"denoise_sq_err_per_image":>24s} {"sq_err_per_image":>16s} '
        f'{"train min":>9s}')
  for label, results, reused in rows:
    minutes = f'{results["train_seconds"] / 60:9.1f}' + (' (reused)' if reused else '')
    print(f'  {label:36s} {results["test_denoise_sq_err_per_image"]:24.2f} '
          f'{results["test_sq_err_per_image"]:16.2f} {minutes}')
  print('  denoise: corrupted test image in, clean one as target; sq_err: clean in and out '
        '(squared error summed over pixels in [0, 1], mean over the test split)')
  print(f'  wall clock of this command: {(time.time() - start) / 60:.1f} min')


if __name__ == '__main__':
  app.run(main)
