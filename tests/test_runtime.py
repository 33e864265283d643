"""jgen.runtime: the process settings run.py and the benches apply."""

import os
import pathlib
import subprocess
import sys

import pytest

from jgen import runtime


@pytest.fixture(autouse=True)
def malloc_calls(monkeypatch):
  """Records `keep_freed_memory` calls instead of changing this test process's malloc."""
  calls = []
  monkeypatch.setattr(runtime, 'keep_freed_memory', calls.append)
  return calls


def test_cpu_defaults_fill_in_what_the_user_has_not_set(malloc_calls):
  env = {}
  runtime.set_cpu_defaults(env)
  assert env == {'OPENBLAS_NUM_THREADS': '1',
                 'XLA_FLAGS': '--xla_cpu_experimental_ynn_fusion_type=individual_dot'}
  env = {'OPENBLAS_NUM_THREADS': '2', 'XLA_FLAGS': '--xla_force_host_platform_device_count=4'}
  runtime.set_cpu_defaults(env)
  assert env == {'OPENBLAS_NUM_THREADS': '2',
                 'XLA_FLAGS': '--xla_force_host_platform_device_count=4 '
                              '--xla_cpu_experimental_ynn_fusion_type=individual_dot'}
  assert len(malloc_calls) == 2


@pytest.mark.parametrize('platforms, expected', [('cuda', True), ('tpu', True), ('cpu', False),
                                                ('cpu,cuda', False)])
def test_malloc_setting_is_left_alone_where_jax_runs_on_an_accelerator(platforms, expected,
                                                                       malloc_calls):
  env = {'JAX_PLATFORMS': platforms}
  assert runtime.accelerator_expected(env) is expected
  runtime.set_cpu_defaults(env)
  assert len(malloc_calls) == (0 if expected else 1)


def test_cpu_defaults_keep_the_users_own_value_of_a_flag():
  env = {'XLA_FLAGS': '--xla_cpu_experimental_ynn_fusion_type=dot'}
  runtime.set_cpu_defaults(env)
  assert env['XLA_FLAGS'] == '--xla_cpu_experimental_ynn_fusion_type=dot'


_FAULTS = r"""
import ctypes, resource, sys, threading
sys.path.insert(0, %r)
from jgen import runtime
if sys.argv[1] == 'keep':
  assert runtime.keep_freed_memory({})
libc = ctypes.CDLL('libc.so.6')
libc.malloc.restype = ctypes.c_void_p
size = 80 << 20  # Over glibc's largest mmap threshold (32 MiB) and a thread heap (64 MiB).

def cycle():  # Writes a fresh block, frees it.
  p = libc.malloc(size)
  ctypes.memset(p, 1, size)
  libc.free(ctypes.c_void_p(p))

def faults():  # Page faults of writing a block after one like it was freed.
  cycle()
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  cycle()
  out.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)

out = []
faults()
thread = threading.Thread(target=faults)  # XLA allocates on its own threads too.
thread.start()
thread.join()
print(*out)
"""


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc malloc settings')
def test_freed_memory_is_reused_without_page_faults():
  """An 80 MiB block written after one like it was freed, on the main thread and on
  another: fresh pages (a fault per 4 KiB page) with glibc's defaults, the same pages
  again with `keep_freed_memory`."""
  root = str(pathlib.Path(__file__).resolve().parents[1])
  env = {k: v for k, v in os.environ.items() if k not in ('MALLOC_MMAP_MAX_', 'GLIBC_TUNABLES')}

  def faults(mode):
    out = subprocess.run([sys.executable, '-c', _FAULTS % root, mode], env=env, check=True,
                         capture_output=True, text=True)
    return [int(n) for n in out.stdout.split()]

  assert min(faults('default')) > 15_000  # 20,480 pages of 4 KiB.
  assert max(faults('keep')) < 100


def test_freed_memory_setting_leaves_the_users_own_alone(monkeypatch):
  monkeypatch.undo()  # The real function: it returns before calling mallopt here.
  assert not runtime.keep_freed_memory({'MALLOC_MMAP_MAX_': '65536'})
  assert not runtime.keep_freed_memory({'GLIBC_TUNABLES': 'glibc.malloc.mmap_max=8'})
