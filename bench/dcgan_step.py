r"""Examples/s of one DCGAN MNIST training step (D update + G update), JAX vs PyTorch eager.

  pip install -e '.[bench]'     # PyTorch 2.13 (CPU), the optional extra
  python bench/dcgan_step.py    # configs/dcgan_mnist.py, batch 128, 1 device

Variants, interleaved over several rounds (median reported) so machine noise hits all alike:
  jgen:          the train step jgen runs on non-log steps (upsampling 'strided': the
                 transposed convolution with its gradients as stride-2 convolutions);
  jgen_subpixel: the same step with sub-pixel upsampling (the same function);
  jgen_convT:    the same step with nn.ConvTranspose upsampling (the same function);
  torch:         the same architecture in PyTorch eager, trained as PyTorch's DCGAN example
                 trains it (D on real, D on detached fake, then G through D), Adam 2e-4/0.5.
Both sides use BCE-with-logits losses, the same layer sizes and no bias before batch norm;
threads are left at each library's default (all cores).
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

from jgen import parallel, runtime, steps

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/dcgan_mnist.py')
_STEPS = flags.DEFINE_integer('steps', 20, 'Steps per timed round.')
_ROUNDS = flags.DEFINE_integer('rounds', 5, 'Timed rounds per variant.')
_MALLOC = flags.DEFINE_bool(
    'keep_freed_memory', True, "Apply run.py's malloc setting (jgen.runtime.keep_freed_memory) "
    'to this process, so to both sides; --nokeep_freed_memory leaves glibc as it is.')


def _jax_variant(config, shape, upsampling, images):
  config = config.copy_and_resolve_references()
  with config.unlocked():
    config.model.upsampling = upsampling
  task = steps.build_task(config, shape)
  mesh = parallel.make_mesh()
  fn = parallel.data_parallel(lambda s, b: task.train_step(s, b)[0], mesh, donate_argnums=(0,))
  batch = parallel.shard_batch(mesh, {'image': images,
                                      'label': np.zeros(len(images), np.int32)})
  state = [parallel.replicate(mesh, task.init_state(jax.random.PRNGKey(0)))]

  def run(n):
    for _ in range(n):
      state[0] = fn(state[0], batch)
    jax.block_until_ready(state[0])

  return run


def _torch_variant(images, noise_dim=100, features=64):
  import torch
  import torch_models
  from torch import nn

  g, d = torch_models.dcgan(noise_dim, features)
  opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
  opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
  bce = nn.BCEWithLogitsLoss()
  real = torch.from_numpy(images.transpose(0, 3, 1, 2) * 2 - 1)
  ones, zeros = torch.ones(len(images), 1), torch.zeros(len(images), 1)

  def step():
    d.zero_grad()
    bce(d(real), ones).backward()
    fake = g(torch.randn(len(images), noise_dim))
    bce(d(fake.detach()), zeros).backward()
    opt_d.step()
    g.zero_grad()
    bce(d(fake), ones).backward()
    opt_g.step()

  def run(n):
    for _ in range(n):
      step()

  return run, torch.__version__, torch.get_num_threads()


def main(argv):
  del argv
  # Before JAX starts: the XLA flags and malloc setting run.py trains with.
  runtime.set_cpu_defaults(malloc=_MALLOC.value)
  config = _CONFIG.value
  shape = (28, 28, 1)
  images = np.random.default_rng(0).uniform(size=(config.batch_size, *shape)).astype(np.float32)
  variants = {'jgen': _jax_variant(config, shape, 'strided', images),
              'jgen_subpixel': _jax_variant(config, shape, 'subpixel', images),
              'jgen_convT': _jax_variant(config, shape, 'transpose', images)}
  try:
    variants['torch'], version, threads = _torch_variant(images)
    torch_note = f'torch {version}, {threads} threads'
  except ImportError:
    torch_note = "torch not installed (pip install -e '.[bench]'); JAX variants only"
  for run in variants.values():  # Compile and warm up.
    run(2)
  rates = {name: [] for name in variants}
  for _ in range(_ROUNDS.value):
    for name, run in variants.items():
      start = time.perf_counter()
      run(_STEPS.value)
      rates[name].append(_STEPS.value * config.batch_size / (time.perf_counter() - start))
  print(f'DCGAN {shape}, batch {config.batch_size}, jax {jax.__version__} on '
        f'{jax.device_count()} {jax.devices()[0].platform} device(s), {torch_note}; '
        f'keep_freed_memory={_MALLOC.value}; '
        f'{_ROUNDS.value} rounds of {_STEPS.value} steps; median examples/s:')
  base = statistics.median(rates['torch']) if 'torch' in rates else None
  for name, values in rates.items():
    median = statistics.median(values)
    ratio = f'  {median / base:.2f}x torch' if base else ''
    print(f'  {name:13s} {median:8.1f}{ratio}')


if __name__ == '__main__':
  app.run(main)
