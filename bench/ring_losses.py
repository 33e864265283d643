r"""Mode coverage of every adversarial loss on ring8, over seeds: the table behind
`notebooks/swap_losses.ipynb`'s pictures (docs/notebooks.md).

  python bench/ring_losses.py --seeds 0,1,2
  python bench/ring_losses.py --seeds 0,1,2 --steps 4000 --workdir /tmp/ring_losses

Trains `configs/gan_ring.py` with the notebook's settings (its losses, `--steps` generator
steps, evaluation at the end) through `jgen.Trainer`, one run per loss and seed, and prints
a markdown table: covered modes (mean, spread, runs covering all 8), the fraction of good
samples (within 3 standard deviations of a mode) and the KL of the good samples' spread
over modes from uniform. The relativistic loss is the notebook's, registered here.
"""

import json
import os
import pathlib
import sys
import tempfile

from jgen import runtime

runtime.set_cpu_defaults()  # Before JAX starts, as run.py and the notebooks do.

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

import jgen  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
_SEEDS = flags.DEFINE_list('seeds', ['0', '1', '2'], 'Seeds of every loss.')
_STEPS = flags.DEFINE_integer('steps', 1500, 'Generator steps of every run.')
_WORKDIR = flags.DEFINE_string('workdir', '', 'Where the runs go (default: a temporary dir).')

LOSSES = {
    'minimax': {'gan.loss': 'minimax'},
    'non_saturating': {'gan.loss': 'non_saturating'},
    'hinge': {'gan.loss': 'hinge'},
    'least_squares': {'gan.loss': 'least_squares'},
    'wasserstein + GP': {'gan.loss': 'wasserstein', 'gan.penalty': 'gradient_penalty',
                         'gan.penalty_weight': 0.1, 'gan.n_critic': 5},
    'relativistic': {'gan.loss': 'relativistic'},
}


def _register_relativistic():
  import jax

  jgen.register_adversarial_loss(
      'relativistic', lambda *, real_logits, fake_logits: jax.nn.softplus(fake_logits -
                                                                         real_logits),
      lambda *, fake_logits, real_logits: jax.nn.softplus(real_logits - fake_logits),
      uses_real=True)


def _cell(values, digits):
  return f'{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}'


def main(argv):
  del argv
  _register_relativistic()
  workdir = _WORKDIR.value or tempfile.mkdtemp(prefix='ring_losses_')
  rows = ['| loss | runs | modes (of 8) | runs with all 8 | good samples | mode KL |',
          '|---|---|---|---|---|---|']
  for name, overrides in LOSSES.items():
    results = []
    for seed in _SEEDS.value:
      config = jgen.load_config(str(ROOT / 'configs' / 'gan_ring.py'), overrides | {
          'num_train_steps': _STEPS.value, 'eval_every_steps': 0, 'seed': int(seed)})
      run_dir = os.path.join(workdir, f'{name.split()[0]}_seed{seed}')
      with jgen.Trainer(config, run_dir) as trainer:
        r = trainer.train()
      results.append(r)
      print(json.dumps({'loss': name, 'seed': int(seed), 'modes': r['modes_modes'],
                        'high_quality': r['modes_high_quality'],
                        'mode_kl': r['modes_mode_kl']}), flush=True)
    modes = [r['modes_modes'] for r in results]
    rows.append(f'| {name} | {len(results)} | {_cell(modes, 1)} | '
                f'{sum(m == 8 for m in modes)} | '
                f'{_cell([r["modes_high_quality"] for r in results], 2)} | '
                f'{_cell([r["modes_mode_kl"] for r in results], 2)} |')
  print('\n'.join(rows))
  sys.stdout.flush()


if __name__ == '__main__':
  app.run(main)
