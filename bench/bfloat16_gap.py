r"""How far bfloat16 training lies from float32, per model: the same smoke config, seed and
MNIST batches, 30 steps in each dtype.

  python bench/bfloat16_gap.py                          # every family's MNIST configs
  python bench/bfloat16_gap.py --configs ae_mnist,dcgan_mnist --steps 50

Prints, per config, the first and the mean of the last 5 values of its main loss in both
dtypes, their relative gap, the largest per-step relative gap, and the floating dtypes left
in the bfloat16 run's state (parameters and optimizer state stay float32).
tests/test_precision.py checks one config per family against a bound.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # For configs/.

from jgen import runtime  # noqa: E402

runtime.set_cpu_defaults()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

import jgen  # noqa: E402
from jgen import data, parallel, steps  # noqa: E402

_CONFIGS = flags.DEFINE_list(
    'configs', ['ae_mnist', 'conv_ae_mnist', 'vae_mnist', 'classifier_mnist', 'gan_mnist',
                'dcgan_mnist', 'infogan_mnist', 'wgan_gp_mnist'], 'Configs (smoke variants).')
_STEPS = flags.DEFINE_integer('steps', 30, 'Train steps per dtype.')


def _train(source, name: str, dtype: str):
  config = jgen.load_config(f'configs/{name}.py:smoke', {'dtype': dtype})
  task = steps.build_task(config, (28, 28, 1))
  mesh = parallel.make_mesh()
  step = parallel.data_parallel(task.train_step, mesh, donate_argnums=(0,))
  state = parallel.replicate(mesh, task.init_state(jax.random.PRNGKey(0)))
  batches = data.train_batches(source, split='train', seed=0, features=task.train_features,
                               global_batch_size=config.batch_size * task.batch_multiplier)
  losses = []
  for _ in range(_STEPS.value):
    state, metrics = step(state, parallel.shard_batch(mesh, next(batches)))
    losses.append(float(metrics[task.progress_keys[0]]))
  dtypes = sorted({str(x.dtype) for x in jax.tree.leaves(state)
                   if jnp.issubdtype(x.dtype, jnp.floating)})
  return task.progress_keys[0], np.array(losses), dtypes


def main(argv):
  del argv
  source = data.load('mnist')
  print(f'{_STEPS.value} steps per dtype, seed 0, smoke configs on MNIST; loss: first, '
        'mean of last 5')
  for name in _CONFIGS.value:
    key, full, _ = _train(source, name, 'float32')
    _, half, dtypes = _train(source, name, 'bfloat16')
    gap = abs(half[-5:].mean() - full[-5:].mean()) / abs(full[-5:].mean())
    worst = np.max(np.abs(half - full) / np.abs(full))
    print(f'{name:17s} {key:7s} float32 {full[0]:9.4f} -> {full[-5:].mean():9.4f}   bfloat16 '
          f'{half[0]:9.4f} -> {half[-5:].mean():9.4f}   gap {gap:.1e} (largest step '
          f'{worst:.1e})   state {",".join(dtypes)}', flush=True)


if __name__ == '__main__':
  app.run(main)
