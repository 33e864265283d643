"""Label-free selection among short restarts of an InfoGAN (`gan.restarts`).

An InfoGAN's categorical code can settle early on a wrong grouping of the digits (two digits
in one category) and keep it. With `gan.restarts=K`, the run first trains K restarts (seeds
`seed` .. `seed + K - 1`) for `gan.restart_steps` steps each, then goes on from the one whose
Q tells the training images apart best: the largest mutual information between image and
category, Q's own estimate (`code_mutual_info`) on the first `STATISTIC_IMAGES` training
images. No label is read, for training or for the choice.

Layout: `WORKDIR/restarts/seed_S/` holds each restart (a run of its own, resumed if
stopped); `WORKDIR/restarts/chosen.json` the statistic of each and the choice. The chosen
restart's checkpoints and metrics are copied into WORKDIR and training goes on there with
`seed` S, so the run ends exactly as a run of seed S trained straight through would. The
whole run trains K * restart_steps + num_train_steps - restart_steps steps.
"""

import json
import os
import shutil
from collections.abc import Callable

import jax
import numpy as np
from absl import logging

from jgen import data, modes, parallel, session
from jgen.checkpoint import DIGESTS
from jgen.evaluate import evaluate
from jgen.registry import ConfigError

STATISTIC_IMAGES = 10_000
CHOSEN = 'chosen.json'
# What a restart's workdir hands on to the run's workdir.
_CARRIED = ('checkpoints', DIGESTS, 'metrics.jsonl')


def check(config, workdir: str) -> None:
  """One-line errors for restart settings that cannot work, before any training: the
  config's own (`session.setup` without data: a model without a categorical code is
  refused), and a run in more than one process."""
  session.setup(config, workdir, with_data=False)
  if jax.process_count() > 1:
    raise ConfigError('gan.restarts runs in one process; start the run as one process (one '
                      'may drive several devices; JGEN_CLUSTER_INIT=0 stops run.py from '
                      'joining a cluster its environment describes)')


def single(config, seed: int):
  """`config` as one plain run of `seed` (no restarts)."""
  out = config.copy_and_resolve_references()
  with out.unlocked():
    out.seed = seed
    out.gan.restarts, out.gan.restart_steps = 0, session.RESTART_STEPS
  return out


def statistic(trainer) -> float:
  """Q's mutual information between image and category on the first STATISTIC_IMAGES
  training images of `trainer`'s current state; their labels are not passed (zeros)."""
  s = trainer.setup
  batches = ({**batch, 'label': np.zeros_like(batch['label'])} for batch in data.eval_batches(
      s.source, split=s.config.data.train_split, global_batch_size=s.config.eval_batch_size,
      num_examples=STATISTIC_IMAGES))
  eval_fn = parallel.data_parallel(s.task.eval_step, s.mesh)
  value = evaluate(eval_fn, trainer.eval_state, batches, s.mesh,
                   s.task.summarize)['code_mutual_info']
  return value if np.isfinite(value) else float('-inf')


def choose(config, workdir: str, train_restart: Callable[..., float]):
  """Trains the restarts not trained yet with `train_restart(config, workdir, steps)` (which
  returns the restart's `statistic`), chooses one and carries it into `workdir`, once
  (`chosen.json` keeps the choice); returns the config the run goes on with,
  `single(config, chosen seed)`.

  Raises:
    ConfigError: if `workdir` holds a run without restarts, or every restart diverged.
  """
  root = os.path.join(workdir, 'restarts')
  chosen_path = os.path.join(root, CHOSEN)
  checkpoints = os.path.join(workdir, 'checkpoints')
  if not os.path.isdir(root) and os.path.isdir(checkpoints) and os.listdir(checkpoints):
    raise ConfigError(f'{workdir} holds a run trained without gan.restarts; give another '
                      '--workdir')
  if not os.path.exists(chosen_path):
    steps, found = config.gan.restart_steps, {}
    for seed in range(config.seed, config.seed + config.gan.restarts):
      found[seed] = train_restart(single(config, seed), os.path.join(root, f'seed_{seed}'),
                                  steps)
      logging.info('Restart of seed %d: code_mutual_info %.4f at step %d', seed, found[seed],
                   steps)
    if max(found.values()) == float('-inf'):
      raise ConfigError(f'the loss of every restart ({", ".join(map(str, found))}) went '
                        'non-finite; lower the learning rates')
    best = max(found, key=found.get)
    modes.write_json(chosen_path, {
        'seed': best, 'step': steps, 'statistic': 'code_mutual_info',
        'images': STATISTIC_IMAGES, 'values': {str(s): v for s, v in found.items()},
        'carried': False})
  with open(chosen_path) as f:
    chosen = json.load(f)
  if not chosen['carried']:  # Not yet, or a copy cut short by a kill: made again whole.
    source = os.path.join(root, f'seed_{chosen["seed"]}')
    for name in _CARRIED:
      src, dst = os.path.join(source, name), os.path.join(workdir, name)
      if os.path.isdir(dst):
        shutil.rmtree(dst)
      if os.path.isdir(src):
        shutil.copytree(src, dst)
      elif os.path.exists(src):
        shutil.copyfile(src, dst)
    modes.write_json(chosen_path, chosen | {'carried': True})
    logging.info('Going on from the restart of seed %d', chosen['seed'])
  return single(config, chosen['seed'])
