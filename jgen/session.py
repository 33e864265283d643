"""What every mode of `run.py` starts from: a validated config, its task, data and devices.

`setup` checks everything it can before any work, cheapest first, and writes nothing;
`restore_latest` adds the latest checkpoint of a workdir. The train loop (`jgen.train`)
and the modes that read a finished run (`jgen.modes`) both start here.
"""

import dataclasses
import os

import jax

from jgen import data, parallel, steps
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
  evaluators.check(config)
  workdir = check_workdir(workdir)
  source = data.load(config.data.name, config.data.data_dir or None, transform=transform,
                     download=config.data.download)
  info = data.dataset_info(source, config.data.train_split, config.data.test_split)
  return Setup(config, workdir, source, info, task, parallel.make_mesh(), transform)


def restore_latest(config, workdir: str):
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
