r"""Train-step rate with real data against device-resident synthetic batches.

  python bench/data_rate.py --config.batch_size=128   # configs/ae_mnist.py (Hinton's AE)
  python bench/data_rate.py --config configs/dcgan_mnist.py --rounds 20

Variants, interleaved over several rounds (median reported) so machine noise hits all alike,
each running the train loop's quiet step (what every step that logs nothing runs):
  synthetic:   one batch, put on the devices once and reused: no input work at all;
  resident:    16 MNIST batches put on the devices once, taken in turn: no input work,
               but a different input buffer every step, as with real data;
  prefetch:    MNIST batches as the train loop feeds them on CPU: two ahead on the
               devices, made in the loop after each step's dispatch (jgen.data.prefetch);
  thread:      the same, made on a background thread (as the loop does on GPUs and TPUs);
  in_loop:     MNIST batches read and transferred in the loop, one per step.
The ratio prefetch / synthetic is what input costs the train loop; each round's variants
run back to back, and the median of their per-round ratios cancels the machine's drift.
"""

import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # For configs/.

from jgen import runtime  # noqa: E402

runtime.set_cpu_defaults()  # Before JAX starts: the settings run.py trains with.

import functools  # noqa: E402
import itertools  # noqa: E402

import jax  # noqa: E402
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from jgen import data, parallel, session, train  # noqa: E402
from jgen.data.prefetch import Prefetcher  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/ae_mnist.py')
_STEPS = flags.DEFINE_integer('steps', 20, 'Steps per timed round.')
_ROUNDS = flags.DEFINE_integer('rounds', 60, 'Timed rounds per variant.')


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
                              process_count=jax.process_count(),
                              features=task.train_features)

  put = functools.partial(parallel.shard_batch, mesh)
  pool = [put(batch) for batch, _ in zip(stream(), range(16), strict=False)]
  resident = pool[0]
  feeds = {
      'synthetic': lambda: iter(lambda: resident, None),
      'resident': lambda: itertools.cycle(pool),
      'prefetch': lambda: Prefetcher(stream(), put, size=train.PREFETCH, threaded=False),
      'thread': lambda: Prefetcher(stream(), put, size=train.PREFETCH, threaded=True),
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
  base = rates['synthetic']
  print('  variant     steps/s   x synthetic (median of the rounds\' own ratios)   rounds')
  for name, values in rates.items():
    paired = statistics.median(v / b for v, b in zip(values, base, strict=True))
    print(f'  {name:9s} {statistics.median(values):8.1f}   {paired:.3f}'
          f'{"":38s}{min(values):.1f}..{max(values):.1f}')
  sys.stdout.flush()


if __name__ == '__main__':
  app.run(main)
