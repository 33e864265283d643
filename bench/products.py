r"""A dense layer's three matrix products, XLA against PyTorch, at the shapes jgen's models use.

  python -m bench.products
  XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type= python -m bench.products  # Eigen's dots

For each (batch, inputs, outputs): the forward product x @ w, the kernel gradient x.T @ g
and the input gradient g @ w.T, float32, medians of interleaved rounds (ms). jgen's XLA
flags apply unless XLA_FLAGS already sets them (the second command: XLA:CPU's own Eigen
products, jgen's setting before matrix products went to YNNPACK). PyTorch's column is
skipped where torch is not installed.
"""

import argparse
import os
import statistics
import time

SHAPES = ((128, 6272, 1024),  # InfoGAN's D: flattened 7x7x128 features -> 1024.
          (128, 1024, 6272),  # InfoGAN's G: 1024 -> the 7x7x128 projection.
          (128, 784, 1000),   # The deep autoencoder's first layer.
          (128, 1000, 500))


def _ms(fn, reps: int) -> float:
  start = time.perf_counter()
  for _ in range(reps):
    fn()
  return (time.perf_counter() - start) / reps * 1e3


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--rounds', type=int, default=7)
  parser.add_argument('--reps', type=int, default=10)
  args = parser.parse_args()
  from jgen import runtime

  runtime.set_cpu_defaults()
  os.environ.setdefault('JAX_PLATFORMS', 'cpu')
  import jax
  import numpy as np
  try:
    import torch
  except ImportError:
    torch = None

  print(f"XLA_FLAGS={os.environ['XLA_FLAGS']}")
  print(f"{'product':28s} {'XLA ms':>8s} {'torch ms':>9s}")
  products = {'x @ w': (lambda x, w, g: x @ w), 'x.T @ g': (lambda x, w, g: x.T @ g),
              'g @ w.T': (lambda x, w, g: g @ w.T)}
  rng = np.random.default_rng(0)
  for b, i, o in SHAPES:
    x, w, g = (rng.standard_normal(s).astype(np.float32) for s in ((b, i), (i, o), (b, o)))
    for name, fn in products.items():
      arrays = [jax.device_put(a) for a in (x, w, g)]
      jitted = jax.jit(fn)
      sides = [lambda f=jitted, a=arrays: f(*a).block_until_ready()]
      if torch is not None:
        tensors = [torch.from_numpy(a) for a in (x, w, g)]
        sides.append(lambda f=fn, a=tensors: f(*a))
      times = [[] for _ in sides]
      for side in sides:
        side()
      for r in range(args.rounds):  # Interleaved: each round starts with the other side.
        order = list(range(len(sides)))[::1 if r % 2 == 0 else -1]
        for k in order:
          times[k].append(_ms(sides[k], args.reps))
      cells = [f'{statistics.median(t):8.2f}' for t in times] + (['      n/a'] if not torch else [])
      print(f'{b}x{i}x{o} {name:12s} {cells[0]} {cells[1]:>9s}')


if __name__ == '__main__':
  main()
