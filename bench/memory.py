r"""Peak memory of one side's train step, in a process of its own (the suite runs one each).

  python -m bench.memory --config configs/ae_mnist.py --side jgen
  python -m bench.memory --config configs/dcgan_mnist.py --side torch --steps 5

Prints one JSON line: `peak_mb`, the process's peak resident memory (VmHWM) minus its
resident memory just before the model was built (after imports and the config), so it
holds the parameters, optimizer state, batch, activations and workspace of the step, and
for jgen the compiler's own memory while it compiled the step; `held_mb`, the same rise at
the end, after the steps (what training holds; freed memory that malloc keeps for reuse
counts); jgen's line adds XLA's
accounting of the compiled step (`xla_mb`: arguments + outputs + temporaries, aliased
buffers once).
"""

import argparse
import json
import os

from jgen import runtime


def _rss_mb() -> float:
  with open('/proc/self/statm') as f:
    return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2 ** 20


def _peak_mb() -> float:
  """The high-water mark of this process's resident memory. Not getrusage's ru_maxrss: that
  one keeps the parent's size from before exec (the forked copy of the whole suite)."""
  with open('/proc/self/status') as f:
    for line in f:
      if line.startswith('VmHWM:'):
        return int(line.split()[1]) / 2 ** 10  # kB.
  raise OSError('no VmHWM in /proc/self/status')


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--config', required=True)
  parser.add_argument('--side', choices=('jgen', 'torch', 'torch_compile'), required=True)
  parser.add_argument('--steps', type=int, default=5)
  args = parser.parse_args()
  runtime.set_cpu_defaults()
  os.environ.setdefault('JAX_PLATFORMS', 'cpu')
  from bench import twins
  from bench.__main__ import image_shape, load_family_config

  config = load_family_config(args.config)
  shape = image_shape(config)
  if args.side != 'jgen':
    import torch  # noqa: F401 - imported before the baseline, as jax is for jgen.
  base = _rss_mb()
  out = {'side': args.side, 'config': args.config}
  if args.side == 'jgen':
    step = twins.JgenStep(config, shape).compile()
    memory = step.compiled.memory_analysis()
    if memory is not None:
      out['xla_mb'] = (memory.argument_size_in_bytes + memory.output_size_in_bytes
                       - memory.alias_size_in_bytes + memory.temp_size_in_bytes) / 2 ** 20
  else:
    step = twins.TorchStep(config, shape, 'cpu', 'float32',
                           compile_nets=args.side == 'torch_compile')
  step.run(args.steps)
  out |= {'base_mb': base, 'peak_mb': _peak_mb() - base, 'held_mb': _rss_mb() - base}
  print(json.dumps(out))


if __name__ == '__main__':
  main()
