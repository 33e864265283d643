"""What every mode of `run.py` starts from: a validated config, its task, data and devices.

`setup` checks everything it can before any work, cheapest first, and writes nothing;
`restore_latest` adds the latest checkpoint of a workdir. The train loop (`jgen.train`)
and the modes that read a finished run (`jgen.modes`) both start here.
"""

import dataclasses
import os

import jax

from jgen import data, optim, parallel, steps
from jgen.checkpoint import Checkpointer
from jgen.evaluate import evaluators
from jgen.registry import ConfigError


@dataclasses.dataclass
class Setup:
  """Everything validated and built before the first step."""

  config: object
  workdir: str
  source: data.Source
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


def build_task(config) -> tuple[steps.Task, data.ImageTransform]:
  """The config's task, for the image shape its dataset has after the config's transform
  (from the dataset's static metadata: nothing is read or prepared)."""
  stored = data.example_shape(config.data.name, config.data.data_dir or None)
  transform = data.ImageTransform(config.data.center_crop, config.data.resize)
  return steps.build_task(config, transform.shape(stored)), transform


# Ranges of numeric fields, wherever a config has them: (dotted field, test, what it must be).
_RANGES = [
    *[(f, lambda v: v >= 1, 'at least 1') for f in (
        'num_train_steps', 'batch_size', 'eval_batch_size', 'log_every_steps',
        'keep_checkpoints', 'gan.n_critic', 'vae.importance_samples',
        'vae.eval_importance_samples', 'vae.importance_chunk')],
    *[(f, lambda v: v >= 0, 'at least 0') for f in (
        'checkpoint_every_steps', 'num_image_examples',
        'vae.kl_warmup_steps', 'vae.beta', 'gan.penalty_weight', 'gan.info_weight',
        'gan.info_continuous_weight', 'gan.real_balance_weight', 'gan.real_entropy_weight',
        'gan.real_consistency_weight',
        'label_smoothing')],
    *[(f'{o}.{f}', test, rule) for o in ('optimizer', 'g_optimizer', 'd_optimizer')
      for f, test, rule in (
          ('learning_rate', lambda v: 0 < v < float('inf'), 'above 0'),
          ('warmup_steps', lambda v: v >= 0, 'at least 0'),
          ('grad_clip_norm', lambda v: v >= 0, 'at least 0 (0: no clipping)'),
          ('b1', lambda v: 0 <= v < 1, 'in [0, 1)'),
          ('b2', lambda v: 0 <= v < 1, 'in [0, 1)'),
          ('eps', lambda v: v > 0, 'above 0'))],
    ('eval_every_steps', lambda v: v >= -1, 'at least -1 (-1: never, 0: at the end)'),
    ('gan.ema_decay', lambda v: 0 <= v < 1, 'in [0, 1)'),
    ('optimizer.ema_decay', lambda v: 0 <= v < 1, 'in [0, 1) (0: no average)'),
    ('model.dropout', lambda v: 0 <= v < 1, 'in [0, 1)'),
    ('model.input_dropout', lambda v: 0 <= v < 1, 'in [0, 1)'),
    ('model.noise_scale', lambda v: 0 < v < float('inf'), 'above 0'),
]

# Model options that are layer sizes: whole numbers of at least 1 (or tuples of them).
_SIZES = ('hidden_sizes', 'generator_sizes', 'discriminator_sizes', 'features', 'latent_dim',
          'noise_dim', 'dense_size', 'q_hidden_size', 'maxout_pieces', 'feature_dim',
          'num_classes', 'kernel_size')

# gan.restart_steps as configs/common.py declares it: any other value needs gan.restarts.
RESTART_STEPS = 1000

# Sections a family does not read: set away from their defaults, they would be ignored.
_UNUSED = {'gan': ('augment',), 'vae': ('augment',)}


def check_values(config) -> None:
  """Numeric ranges, and options the config's family would ignore, as one-line errors."""
  for field, test, rule in _RANGES:
    node, *parts = field.split('.')
    value = config.get(node)
    for part in parts:
      value = value.get(part) if hasattr(value, 'get') else None
    if value is None or isinstance(value, bool):
      continue
    if not isinstance(value, int | float) or not test(value):
      raise ConfigError(f'{field}={value!r} must be {rule} (--config.{field}=...)')
  for key, value in (config.get('model') or {}).items():
    if key in _SIZES:
      sizes = value if isinstance(value, tuple | list) else (value,)
      if not sizes or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                              for v in sizes):
        raise ConfigError(f'model.{key}={value!r} must be a size (a whole number of at least 1'
                          f'{", or a tuple of them" if key.endswith("sizes") else ""})')
  defaults = {'augment': {'max_shift': 0, 'shift_prob': 1.0, 'shift_until': 1.0}}
  for section in _UNUSED.get(config.family, ()):
    for key, default in defaults[section].items():
      if section in config and config[section].get(key, default) != default:
        raise ConfigError(f'{section}.{key}={config[section][key]!r} has no effect on a '
                          f'{config.family} (only autoencoders and classifiers read '
                          f'{section}); drop that override')
  # Options that only act with another one set.
  augment, corrupt = config.get('augment'), config.get('corrupt')
  if augment and not augment.get('max_shift', 0):
    for key in ('shift_prob', 'shift_until'):
      if augment.get(key, 1.0) != 1.0:
        raise ConfigError(f'augment.{key}={augment[key]} has no effect without a shift; set '
                          '--config.augment.max_shift (1 or more pixels) or drop it')
  gan = config.get('gan')
  if gan and not gan.get('restarts', 0) and gan.get('restart_steps',
                                                     RESTART_STEPS) != RESTART_STEPS:
    raise ConfigError(f'gan.restart_steps={gan.restart_steps} has no effect without restarts '
                      '(an InfoGAN\'s gan.restarts, 2 or more); set --config.gan.restarts or '
                      'drop it')
  if gan and gan.get('restarts', 0):
    if gan.restarts < 2:
      raise ConfigError(f'gan.restarts={gan.restarts} must be 0 (none) or at least 2')
    if not 1 <= gan.restart_steps < config.num_train_steps:
      raise ConfigError(f'gan.restart_steps={gan.restart_steps} must be at least 1 and below '
                        f'num_train_steps={config.num_train_steps}')
  if corrupt and corrupt.get('name') == 'none' and corrupt.get('level', 0.0):
    raise ConfigError(f'corrupt.level={corrupt.level} has no effect with corrupt.name=none; '
                      'set --config.corrupt.name (gaussian, masking, salt_and_pepper)')


def setup(config, workdir: str, *, with_data: bool = True) -> Setup:
  """Validates the config and builds the task, cheapest checks first; writes nothing.

  Without `with_data` the dataset is not opened (`source` and `info` are None): what
  decoding a prior's draws needs is the config and a checkpoint.

  Raises:
    ConfigError: for any problem the user can fix, with a one-line message.
  """
  check_values(config)
  if config.init_checkpoint and not os.path.isdir(config.init_checkpoint):
    raise ConfigError(f'init_checkpoint {config.init_checkpoint!r} is not a directory; give a '
                      'checkpoint item directory such as WORKDIR/checkpoints/1000/default')
  parallel.check_batch_size(config.batch_size, 'batch_size')
  parallel.check_batch_size(config.eval_batch_size, 'eval_batch_size')
  # Names and model options are checked on abstract values, from the dataset's static
  # metadata, before anything is prepared or written.
  task, transform = build_task(config)
  try:
    jax.eval_shape(task.init_state, jax.random.PRNGKey(0))
  except ConfigError:
    raise
  except Exception as e:  # noqa: BLE001 - an option of the wrong type or value, at init.
    first = ' '.join(str(e).split('\n')[0].split())[:200]
    raise ConfigError(f'model {config.model.name!r} cannot be built from config.model '
                      f'({type(e).__name__}: {first}); check its options') from None
  evaluators.check(config)
  workdir = check_workdir(workdir)
  if not with_data:
    return Setup(config, workdir, None, None, task, parallel.make_mesh(), transform)
  source = data.load(config.data.name, config.data.data_dir or None, transform=transform,
                     download=config.data.download)
  info = data.dataset_info(source, config.data.train_split, config.data.test_split)
  return Setup(config, workdir, source, info, task, parallel.make_mesh(), transform)


def restore_latest(config, workdir: str, *, with_data: bool = True):
  """Sets up (`setup`) and restores the newest checkpoint in `workdir` that restores whole:
  (setup, state as evaluation reads it (`optim.evaluated`), step).

  Raises:
    ConfigError: if `workdir` has no checkpoint.
  """
  checkpoints = os.path.join(os.path.abspath(workdir), 'checkpoints')
  if not os.path.isdir(checkpoints) or not os.listdir(checkpoints):
    raise ConfigError(f'no checkpoint in {checkpoints}; train first (--mode=train)')
  s = setup(config, workdir, with_data=with_data)
  ckpt = Checkpointer(s.workdir, every_steps=config.checkpoint_every_steps,
                      keep=config.keep_checkpoints, use_async=False)
  try:
    state, step = ckpt.restore_newest_good(
        parallel.replicate(s.mesh, s.task.init_state(jax.random.PRNGKey(0))))
  finally:
    ckpt.close()
  if state is None:
    raise ConfigError(f'no checkpoint in {checkpoints}; train first (--mode=train)')
  return s, optim.evaluated(state), step
