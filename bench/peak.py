r"""This machine's float32 matrix-product peak, measured: the yardstick of the suite's FLOP/s.

  python -m bench.peak

Square products of several sizes, by XLA (jax.jit of `a @ b`, default precision: true
float32 on CPU) and by PyTorch where it is installed; each size is timed over rounds and its
median kept; the peak is the best median of either library (2 n^3 FLOPs per product).
"""

import statistics
import time

import numpy as np

SIZES = (512, 1024, 2048)


def _time(fn, flops: float, rounds: int, min_s: float) -> float:
  """Median GFLOP/s of `fn` (one product, finished when it returns) over `rounds` rounds of
  about `min_s` seconds each."""
  fn()
  start, calls = time.perf_counter(), 0
  while time.perf_counter() - start < min_s / 4 or calls < 2:
    fn()
    calls += 1
  per_round = max(2, round(calls * min_s / (time.perf_counter() - start)))
  rates = []
  for _ in range(rounds):
    t = time.perf_counter()
    for _ in range(per_round):
      fn()
    rates.append(flops * per_round / (time.perf_counter() - t) / 1e9)
  return statistics.median(rates)


def measure(rounds: int = 5, min_s: float = 0.3, sizes=SIZES) -> dict:
  """{'jax': {n: GFLOP/s}, 'torch': {n: GFLOP/s} (absent without torch), 'peak_gflops',
  'peak_by': 'jax N' or 'torch N'}."""
  import jax
  import jax.numpy as jnp

  rng = np.random.default_rng(0)
  result = {'jax': {}}
  matmul = jax.jit(jnp.matmul)
  for n in sizes:
    a, b = (jnp.asarray(rng.standard_normal((n, n), np.float32)) for _ in range(2))
    result['jax'][n] = _time(lambda a=a, b=b: matmul(a, b).block_until_ready(), 2.0 * n ** 3,
                             rounds, min_s)
  try:
    import torch
  except ImportError:
    torch = None
  if torch is not None:
    result['torch'] = {}
    with torch.no_grad():
      for n in sizes:
        a, b = (torch.from_numpy(rng.standard_normal((n, n), np.float32)) for _ in range(2))
        out = torch.empty(n, n)
        result['torch'][n] = _time(lambda a=a, b=b, out=out: torch.matmul(a, b, out=out),
                                   2.0 * n ** 3, rounds, min_s)
  best = max(((lib, n, v) for lib in ('jax', 'torch') for n, v in result.get(lib, {}).items()),
             key=lambda x: x[2])
  result['peak_gflops'], result['peak_by'] = best[2], f'{best[0]} {best[1]}'
  return result


def main():
  from jgen import runtime

  runtime.set_cpu_defaults()
  result = measure()
  for lib in ('jax', 'torch'):
    for n, v in result.get(lib, {}).items():
      print(f'{lib:5s} {n:5d}x{n}: {v:8.1f} GFLOP/s')
  print(f"peak {result['peak_gflops']:.1f} GFLOP/s ({result['peak_by']})")


if __name__ == '__main__':
  main()
