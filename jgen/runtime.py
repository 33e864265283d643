"""Process-wide CPU settings that run.py and the benches apply before JAX starts.

Imports nothing heavy: callers run `set_cpu_defaults()` before numpy or JAX initialise.
"""

import os

# XLA:CPU 0.10 hands convolutions to its experimental YNNPACK fusions by default; its own
# (Eigen) kernels are faster here: conv AE step 357 -> 423 examples/s, DCGAN step ~+10%,
# MLP AE within noise (bench/ae_step.py, bench/dcgan_step.py, one core).
_XLA_FLAGS = ('--xla_cpu_experimental_ynn_fusion_type=',)


def set_cpu_defaults(environ=os.environ) -> None:
  """Sets what the user has not: one OpenBLAS thread, and jgen's XLA:CPU flags."""
  # numpy's OpenBLAS (code densities) would start threads that fight XLA's for the cores:
  # measured 10x slower with 2 threads than with 1 while a JAX step ran beside it.
  environ.setdefault('OPENBLAS_NUM_THREADS', '1')
  flags = environ.get('XLA_FLAGS', '')
  for flag in _XLA_FLAGS:
    if flag.split('=')[0] not in flags:
      flags = f'{flags} {flag}'.strip()
  environ['XLA_FLAGS'] = flags
