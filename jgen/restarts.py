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


def check(config) -> None:
  """One-line errors for restart settings that cannot work, before any training (the
  ranges are `session.check_values`'s)."""
  session.check_values(config)
  if jax.process_count() > 1:
    raise ConfigError('gan.restarts runs in one process; start the run without '
                      '--coordinator_address (one process may drive several devices)')


def single(config, seed: int):
  """`config` as one plain run of `seed` (no restarts)."""
  out = config.copy_and_resolve_references()
  with out.unlocked():
    out.seed = seed
    out.gan.restarts, out.gan.restart_steps = 0, session.RESTART_STEPS
  return out


def statistic(trainer) -> float:
  """Q's mutual information between image and category on the first STATISTIC_IMAGES
  training images of `trainer`'s current state; their labels are not passed."""
  s = trainer.setup
  images, _ = data.split_images(s.source, s.config.data.train_split, STATISTIC_IMAGES)
  size = s.config.eval_batch_size
  batches = []
  for i in range(0, len(images), size):
    part = images[i:i + size]
    pad = size - len(part)
    batches.append({'image': np.pad(part, ((0, pad),) + ((0, 0),) * (part.ndim - 1)),
                    'label': np.zeros(size, np.int32),
                    'mask': np.concatenate([np.ones(len(part)), np.zeros(pad)]).astype(
                        np.float32)})
  eval_fn = parallel.data_parallel(s.task.eval_step, s.mesh)
  return evaluate(eval_fn, trainer.eval_state, batches, s.mesh,
                  s.task.summarize)['code_mutual_info']


def choose(config, workdir: str, trainer_class, stop=None):
  """Trains the restarts not trained yet, chooses one (once: `chosen.json` keeps the
  choice), and returns the config the run goes on with: `single(config, chosen seed)`."""
  root = os.path.join(workdir, 'restarts')
  chosen_path = os.path.join(root, CHOSEN)
  if not os.path.exists(chosen_path):
    if os.path.isdir(os.path.join(workdir, 'checkpoints')) and os.listdir(
        os.path.join(workdir, 'checkpoints')):
      raise ConfigError(f'{workdir} holds a run trained without gan.restarts; give another '
                        '--workdir')
    steps, found = config.gan.restart_steps, {}
    for seed in range(config.seed, config.seed + config.gan.restarts):
      with trainer_class(single(config, seed), os.path.join(root, f'seed_{seed}')) as trainer:
        trainer._stop = stop
        trainer.train(until=steps)
        trainer.save()
        found[seed] = statistic(trainer)
      logging.info('Restart of seed %d: code_mutual_info %.4f at step %d', seed, found[seed],
                   steps)
    best = max(found, key=found.get)
    source = os.path.join(root, f'seed_{best}')
    for name in _CARRIED:
      src, dst = os.path.join(source, name), os.path.join(workdir, name)
      if os.path.isdir(dst):  # A copy cut short by a kill: made again whole.
        shutil.rmtree(dst)
      if os.path.isdir(src):
        shutil.copytree(src, dst)
      elif os.path.exists(src):
        shutil.copyfile(src, dst)
    modes.write_json(chosen_path, {
        'seed': best, 'step': steps, 'statistic': 'code_mutual_info',
        'images': STATISTIC_IMAGES, 'values': {str(s): v for s, v in found.items()}})
    logging.info('Going on from the restart of seed %d (of %s)', best, sorted(found))
  with open(chosen_path) as f:
    return single(config, json.load(f)['seed'])
