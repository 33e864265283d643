r"""Where a GAN step's time goes, jgen against its PyTorch twin: the step with parts removed.

  python -m bench.gan_parts --config configs/wgan_gp_mnist.py
  python -m bench.gan_parts --config configs/infogan_mnist.py:paper --rounds 5

Variants of the config, each timed on both sides in interleaved rounds (medians of
examples/s, as `python -m bench` times them): the config as it is; without the gradient
penalty (`gan.penalty=''`) where it has one; with one critic update per step
(`gan.n_critic=1`) where it has more; and without InfoGAN's Q terms (both info weights 0;
the Q head still runs). The differences between variants are the parts' costs on each side.
"""

import argparse
import os
import statistics
import time


def _variants(config) -> dict[str, dict]:
  out = {'as configured': {}}
  if config.gan.penalty:
    out['no penalty'] = {'gan.penalty': '', 'gan.penalty_weight': 0.0}
  if config.gan.n_critic > 1:
    out['n_critic 1'] = {'gan.n_critic': 1}
  if config.model.name == 'infogan':
    out['no Q terms'] = {'gan.info_weight': 0.0, 'gan.info_continuous_weight': 0.0}
  return out


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--config', required=True)
  parser.add_argument('--rounds', type=int, default=5)
  parser.add_argument('--round_s', type=float, default=0.6)
  args = parser.parse_args()
  from jgen import runtime

  runtime.set_cpu_defaults()
  os.environ.setdefault('JAX_PLATFORMS', 'cpu')
  from bench import twin_weights, twins
  from bench.__main__ import ROOT, image_shape
  from jgen.config import load_config

  base = load_config(str(ROOT / args.config), {'dtype': 'float32'})
  shape = image_shape(base)
  live = {}
  for name, overrides in _variants(base).items():
    config = load_config(str(ROOT / args.config), {'dtype': 'float32', **overrides})
    j = twins.JgenStep(config, shape).compile()
    t = twins.TorchStep(config, shape, 'cpu', 'float32')
    twin_weights.load(t, config, shape, j.state)
    for side, step in (('jgen', j), ('torch', t)):
      step.run(2)
      start = time.perf_counter()
      step.run(2)
      steps = max(2, round(args.round_s * 2 / (time.perf_counter() - start)))
      live[name, side] = (step, steps, [])
  for r in range(args.rounds):
    keys = list(live)
    for key in keys[r % len(keys):] + keys[:r % len(keys)]:
      step, steps, rates = live[key]
      start = time.perf_counter()
      step.run(steps)
      rates.append(steps / (time.perf_counter() - start))
  print(f'{args.config}: steps/s (median of {args.rounds}) and ms per step')
  print(f"{'variant':16s} {'jgen':>8s} {'torch':>8s} {'jgen ms':>8s} {'torch ms':>9s} "
        f"{'jgen/torch':>10s}")
  for name in _variants(base):
    j, t = (statistics.median(live[name, side][2]) for side in ('jgen', 'torch'))
    print(f'{name:16s} {j:8.2f} {t:8.2f} {1e3 / j:8.1f} {1e3 / t:9.1f} {j / t:10.2f}')


if __name__ == '__main__':
  main()
