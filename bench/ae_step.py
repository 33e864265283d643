r"""Examples/s of the autoencoder train step on this machine, variants side by side.

  python bench/ae_step.py --config.batch_size=128  # configs/ae_mnist.py's step at batch 128
  python bench/ae_step.py --config configs/conv_ae_mnist.py --steps 20

Variants, interleaved over several rounds (median reported) so machine noise hits all alike:
  full:  the step with all its metrics (what log steps run);
  quiet: the same step without metrics (what every other step runs; XLA drops them);
  bare:  a minimal step: loss, gradients, optimizer update, nothing else.
"""

import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # For configs/.

import jax
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from jgen import losses, models, parallel, runtime, steps

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/ae_mnist.py')
_STEPS = flags.DEFINE_integer('steps', 100, 'Steps per timed round.')
_ROUNDS = flags.DEFINE_integer('rounds', 5, 'Timed rounds per variant.')


def _bare_step(model, loss_fn):
  def step(state, batch):
    images = batch['image']

    def loss(params):
      logits = model.apply({'params': params}, images, train=True)
      return loss_fn(logits=logits, targets=images).mean()

    value, grads = jax.value_and_grad(loss)(state.params)
    grads = jax.lax.pmean(grads, parallel.AXIS)
    return state.apply_gradients(grads=grads), jax.lax.pmean(value, parallel.AXIS)

  return step


def main(argv):
  del argv
  runtime.set_cpu_defaults()  # Before JAX starts: the XLA flags run.py trains with.
  config = _CONFIG.value
  shape = (28, 28, 1)
  task = steps.build_task(config, shape)
  model = models.build_model(**config.model, image_shape=shape)
  loss_fn = losses.get_reconstruction_loss(config.loss)
  mesh = parallel.make_mesh()
  rng = np.random.default_rng(0)
  batch = parallel.shard_batch(mesh, {
      'image': rng.uniform(size=(config.batch_size, *shape)).astype(np.float32),
      'label': np.zeros(config.batch_size, np.int32)})
  variants = {
      'full': parallel.data_parallel(task.train_step, mesh, donate_argnums=(0,)),
      'quiet': parallel.data_parallel(lambda s, b: task.train_step(s, b)[0], mesh,
                                      donate_argnums=(0,)),
      'bare': parallel.data_parallel(_bare_step(model, loss_fn), mesh, donate_argnums=(0,)),
  }
  states = {}
  for name, fn in variants.items():  # Compile and warm up.
    states[name] = parallel.replicate(mesh, task.init_state(jax.random.PRNGKey(0)))
    out = fn(states[name], batch)
    states[name] = out[0] if name != 'quiet' else out
    jax.block_until_ready(states[name])
  rates = {name: [] for name in variants}
  for _ in range(_ROUNDS.value):
    for name, fn in variants.items():
      start = time.perf_counter()
      for _ in range(_STEPS.value):
        out = fn(states[name], batch)
        states[name] = out[0] if name != 'quiet' else out
      jax.block_until_ready(states[name])
      rates[name].append(_STEPS.value * config.batch_size / (time.perf_counter() - start))
  print(f'{config.model.name}, batch {config.batch_size}, {jax.device_count()} device(s), '
        f'{_ROUNDS.value} rounds of {_STEPS.value} steps; median examples/s:')
  bare = statistics.median(rates['bare'])
  for name, values in rates.items():
    median = statistics.median(values)
    print(f'  {name:6s} {median:9.0f}   ({median / bare:.2f} x bare)')
  sys.stdout.flush()


if __name__ == '__main__':
  app.run(main)
