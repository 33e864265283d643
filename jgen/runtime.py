"""Process-wide CPU settings that run.py and the benches apply before JAX starts.

Imports nothing heavy: callers run `set_cpu_defaults()` before numpy or JAX initialise.
"""

import ctypes
import os
import sys

# XLA:CPU 0.10 hands convolutions to its experimental YNNPACK fusions by default; its own
# (Eigen) kernels are faster here: conv AE step 357 -> 423 examples/s, DCGAN step ~+10%,
# MLP AE within noise (bench/ae_step.py, bench/dcgan_step.py, one core). Matrix products
# alone ('individual_dot') go to YNNPACK: Eigen's product with a transposed right operand
# (every dense layer's input gradient) is slow, 77 against 16 ms for InfoGAN's 128x1024 @
# 1024x6272; InfoGAN's step 226 -> 286 examples/s (docs/performance.md).
_XLA_FLAGS = ('--xla_cpu_experimental_ynn_fusion_type=individual_dot',)


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8


def keep_freed_memory(environ=os.environ) -> bool:
  """Makes glibc's malloc keep freed memory for reuse instead of returning it to the OS.

  XLA:CPU allocates each step's temporaries afresh; glibc serves blocks over 32 MiB from
  new mmaps and gives them back on free, so every step wrote its buffers into fresh pages:
  16,375 page faults per DCGAN step (64 MiB), 0 with this; `bench/dcgan_step.py` on one
  core: 399 -> 448 examples/s (its --nokeep_freed_memory against the default). The memory
  stays with the process for the next step.
  What the user set (MALLOC_MMAP_MAX_, GLIBC_TUNABLES' mmap_max) wins. Returns whether it
  changed anything (False off glibc).
  """
  if 'MALLOC_MMAP_MAX_' in environ or 'mmap_max' in environ.get('GLIBC_TUNABLES', ''):
    return False
  if not sys.platform.startswith('linux'):
    return False
  try:
    mallopt = ctypes.CDLL('libc.so.6').mallopt
  except (OSError, AttributeError):
    return False
  # Large blocks from the heap (no mmap), and a freed top of the heap kept up to 2 GiB.
  # One arena for all threads: another thread's arena would still mmap blocks over 64 MiB
  # and unmap a heap once it is empty.
  return all(mallopt(param, value) for param, value in (
      (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1), (_M_ARENA_MAX, 1)))


def on_cpu() -> bool:
  """Whether JAX computes on CPU: the speed-ups written for XLA:CPU (jgen.models.layers)
  apply there only; GPUs and TPUs run the plain formulations, which their compilers and
  libraries (cuDNN) handle well."""
  import jax

  return jax.default_backend() == 'cpu'


def accelerator_expected(environ=os.environ) -> bool:
  """Whether JAX will likely run on a GPU or TPU, judged before it starts: JAX_PLATFORMS
  names another platform first, or (unset) a GPU or TPU plugin is installed."""
  platforms = environ.get('JAX_PLATFORMS', '').strip()
  if platforms:
    return not platforms.startswith('cpu')
  import importlib.util

  plugins = ('jax_cuda13_plugin', 'jax_cuda12_plugin', 'jax_rocm7_plugin', 'libtpu')
  return any(importlib.util.find_spec(name) is not None for name in plugins)


def set_cpu_defaults(environ=os.environ, *, malloc: bool = True) -> None:
  """Sets what the user has not: one OpenBLAS thread, jgen's XLA:CPU flags (read by the CPU
  compiler only), and (unless `malloc` is False, or JAX will run on an accelerator, where
  host memory is not the step's working memory) a malloc that keeps freed memory
  (`keep_freed_memory`)."""
  # numpy's OpenBLAS (code densities) would start threads that fight XLA's for the cores:
  # measured 10x slower with 2 threads than with 1 while a JAX step ran beside it.
  environ.setdefault('OPENBLAS_NUM_THREADS', '1')
  flags = environ.get('XLA_FLAGS', '')
  for flag in _XLA_FLAGS:
    if flag.split('=')[0] not in flags:
      flags = f'{flags} {flag}'.strip()
  environ['XLA_FLAGS'] = flags
  if malloc and not accelerator_expected(environ):
    keep_freed_memory(environ)
