"""jgen.update on 4 devices: the gradients a step gets are those of the global batch's mean
loss, not 4 times them (the bug `parallel.per_device` exists to prevent)."""

import os
import subprocess
import sys

from conftest import ROOT, xla_flags

_PROGRAM = r"""
import jax, jax.numpy as jnp, numpy as np
from jgen import parallel, update

assert jax.device_count() == 4
mesh = parallel.make_mesh()
params = {'w': jnp.arange(3.0), 'b': jnp.array(0.5)}
x = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)

def loss(p, x):
  return jnp.mean((x @ p['w'] + p['b']) ** 2)

def step(p, x, dtype):
  (value, _), grads = update.gradients(lambda q: (loss(q, x), {}), p, dtype)
  return grads

def unmarked(p, x):  # What a step that forgets the per-device marking computes.
  grads = jax.grad(loss)(p, x)
  return jax.lax.pmean(grads, parallel.AXIS)

want = jax.grad(loss)(params, x)
for dtype, tol in ((jnp.float32, 1e-6), (jnp.bfloat16, 2e-2)):
  fn = parallel.data_parallel(lambda p, x: step(p, x, dtype), mesh)
  got = fn(parallel.replicate(mesh, params), parallel.shard_batch(mesh, x))
  for k in want:
    assert got[k].dtype == jnp.float32, got[k].dtype
    np.testing.assert_allclose(got[k], want[k], rtol=tol, atol=tol)
bad = parallel.data_parallel(unmarked, mesh)(parallel.replicate(mesh, params),
                                             parallel.shard_batch(mesh, x))
np.testing.assert_allclose(bad['w'], 4 * want['w'], rtol=1e-5)
print('ok')
"""


def test_gradients_are_the_global_mean_on_four_devices():
  env = dict(os.environ, XLA_FLAGS=xla_flags(4),
             PYTHONPATH=str(ROOT))
  proc = subprocess.run([sys.executable, '-c', _PROGRAM], cwd=ROOT, capture_output=True,
                        text=True, env=env, timeout=120)
  assert proc.returncode == 0 and proc.stdout.strip() == 'ok', proc.stderr[-3000:]
