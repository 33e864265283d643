r"""Train-step rate with real data against device-resident synthetic batches.

  python bench/data_rate.py                     # configs/ae_mnist.py (Hinton's AE), MNIST
  python bench/data_rate.py --config configs/dcgan_mnist.py --steps 50

Variants, interleaved over several rounds (median reported) so machine noise hits all alike,
each running the train loop's quiet step (what every step that logs nothing runs):
  synthetic:   one batch, put on the devices once and reused: no input work at all;
  prefetch:    MNIST batches as the train loop feeds them, two ahead on the devices, made
               on a thread (jgen.data.prefetch);
  in_loop:     MNIST batches read and transferred in the loop, one per step.
The ratio prefetch / synthetic is what input costs the train loop.
"""

import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # For configs/.

from jgen import runtime  # noqa: E402

runtime.set_cpu_defaults()  # Before JAX starts: the settings run.py trains with.

import functools  # noqa: E402

import jax  # noqa: E402
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from jgen import data, parallel, session, train  # noqa: E402
from jgen.data.prefetch import Prefetcher  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/ae_mnist.py')
_STEPS = flags.DEFINE_integer('steps', 200, 'Steps per timed round.')
_ROUNDS = flags.DEFINE_integer('rounds', 7, 'Timed rounds per variant.')


def main(argv):
  del argv
  config = _CONFIG.value
  task, transform = session.build_task(config)
  source = data.load(config.data.name, config.data.data_dir or None, transform=transform,
                     download=config.data.download)
  mesh = parallel.make_mesh()
  per_step = config.batch_size * task.batch_multiplier
  step = parallel.data_parallel(lambda s, b: task.train_step(s, b)[0], mesh,
                                donate_argnums=(0,))

  def stream():
    return data.train_batches(source, split=config.data.train_split, global_batch_size=per_step,
                              seed=config.seed, process_index=jax.process_index(),
                              process_count=jax.process_count())

  put = functools.partial(parallel.shard_batch, mesh)
  resident = put(next(stream()))
  feeds = {
      'synthetic': lambda: iter(lambda: resident, None),
      'prefetch': lambda: Prefetcher(stream(), put, size=train.PREFETCH),
      'in_loop': lambda: map(put, stream()),
  }
  states = {name: parallel.replicate(mesh, task.init_state(jax.random.PRNGKey(0)))
            for name in feeds}
  for name in feeds:  # Compile (once) and warm up.
    states[name] = jax.block_until_ready(step(states[name], resident))
  rates = {name: [] for name in feeds}
  for _ in range(_ROUNDS.value):
    for name, make in feeds.items():
      feed = make()
      next_batch = feed.__next__
      start = time.perf_counter()
      for _ in range(_STEPS.value):
        states[name] = step(states[name], next_batch())
      jax.block_until_ready(states[name])
      rates[name].append(_STEPS.value / (time.perf_counter() - start))
      if isinstance(feed, Prefetcher):
        feed.close()
  print(f'{config.model.name} on {config.data.name}, batch {per_step}, {jax.device_count()} '
        f'{jax.default_backend()} device(s), {_ROUNDS.value} rounds of {_STEPS.value} steps; '
        'median steps/s:')
  base = statistics.median(rates['synthetic'])
  for name, values in rates.items():
    median = statistics.median(values)
    print(f'  {name:9s} {median:8.1f}   ({median / base:.3f} x synthetic; rounds '
          f'{min(values):.1f}..{max(values):.1f})')
  sys.stdout.flush()


if __name__ == '__main__':
  app.run(main)
