"""Everything about devices and processes, in one place, with one axis name.

Steps are written the pmap way: per-device code that sees its shard of the batch and
averages gradients and metrics with `lax.pmean(..., AXIS)`. `data_parallel` runs such a
function as `jax.jit(jax.shard_map(...))` over a 1-D mesh of every device of every process
(`jax.pmap` itself is in maintenance mode and is this same thing since JAX 0.10). The same
step then runs on one device, N local devices, or many processes.
"""

import os
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jgen.registry import ConfigError

AXIS = 'data'


CLUSTER_INIT = 'JGEN_CLUSTER_INIT'  # auto (the default), 0 (never) or 1 (always): see initialize.


def _int(environ: Mapping[str, str], name: str) -> int:
  try:
    return int(environ.get(name, ''))
  except ValueError:
    return 0


def cluster_environment(environ: Mapping[str, str] = os.environ) -> str | None:
  """Names the cluster of more than one process that `jax.distributed.initialize()` would
  join here, from environment variables only; None for a single process.

  JAX's own checks (jax._src.clusters), in its order; the first one present decides:
    'ompi': Open MPI's mpirun (OMPI_MCA_orte_hnp_uri) with OMPI_COMM_WORLD_SIZE > 1.
    'slurm': a task of an srun step (SLURM_JOB_ID, SLURM_STEP_NODELIST, SLURM_PROCID,
      SLURM_LOCALID) with SLURM_NTASKS > 1, equal to SLURM_STEP_NUM_TASKS where set.
    'gketpu': TPU_PROCESS_ADDRESSES (else TPU_WORKER_HOSTNAMES) times MEGASCALE_NUM_SLICES
      (default 1) gives more than one host, as GKE sets on multi-host TPU slices.
  Not detected: mpi4py (opt-in in JAX too), a Kubernetes job and a Cloud TPU VM's own pod
  slice (their process counts come from the Kubernetes API or the TPU metadata server).
  """
  if 'OMPI_MCA_orte_hnp_uri' in environ:
    return 'ompi' if _int(environ, 'OMPI_COMM_WORLD_SIZE') > 1 else None
  if all(v in environ for v in ('SLURM_JOB_ID', 'SLURM_STEP_NODELIST', 'SLURM_NTASKS',
                                'SLURM_PROCID', 'SLURM_LOCALID')):
    n = _int(environ, 'SLURM_NTASKS')
    step = _int(environ, 'SLURM_STEP_NUM_TASKS') if 'SLURM_STEP_NUM_TASKS' in environ else n
    return 'slurm' if n > 1 and step == n else None
  hosts = environ.get('TPU_PROCESS_ADDRESSES', environ.get('TPU_WORKER_HOSTNAMES'))
  if hosts is not None:
    slices = _int(environ, 'MEGASCALE_NUM_SLICES') if environ.get('MEGASCALE_NUM_SLICES') else 1
    return 'gketpu' if len(hosts.split(',')) * slices > 1 else None
  return None


def initialize(coordinator_address: str | None = None, num_processes: int = 1,
               process_id: int = 0, environ: Mapping[str, str] = os.environ) -> None:
  """Joins the multi-process run the flags name, else as $JGEN_CLUSTER_INIT says: `auto`
  (default) the cluster `cluster_environment` names, if any; `1` whatever
  `jax.distributed.initialize()` finds (such as a Cloud TPU VM pod slice); `0` none."""
  if coordinator_address:
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)
    return
  mode = environ.get(CLUSTER_INIT, '').strip().lower() or 'auto'
  if mode not in ('auto', '0', '1'):
    raise ConfigError(f'{CLUSTER_INIT}={environ[CLUSTER_INIT]!r}: use auto (join a detected '
                      'cluster), 0 (never) or 1 (always call jax.distributed.initialize())')
  cluster = cluster_environment(environ)
  if mode == '0' or (mode == 'auto' and cluster is None):
    if cluster:
      logging.info('%s cluster detected; not joining it (%s=0)', cluster, CLUSTER_INIT)
    return
  logging.info('jax.distributed.initialize() with no arguments: %s (%s=%s)',
               f'{cluster} cluster detected' if cluster else 'JAX detects the cluster',
               CLUSTER_INIT, mode)
  jax.distributed.initialize()


def make_mesh() -> jax.sharding.Mesh:
  """A 1-D mesh over all devices of all processes, axis `AXIS`."""
  return jax.make_mesh((jax.device_count(),), (AXIS,),
                       axis_types=(jax.sharding.AxisType.Explicit,))


def check_batch_size(global_batch_size: int, what: str = 'batch_size') -> None:
  """Raises ConfigError unless the batch splits evenly over devices and processes."""
  n = jax.device_count()
  if global_batch_size < 1:
    raise ConfigError(f'{what}={global_batch_size} must be at least 1 (--config.{what}=...)')
  if global_batch_size % n:
    raise ConfigError(f'{what}={global_batch_size} is not divisible by the {n} devices; '
                      f'use a multiple of {n} (--config.{what}=...)')


def local_batch_size(global_batch_size: int) -> int:
  return global_batch_size // jax.process_count()


def data_parallel(fn: Callable, mesh, *, batch_argnums: tuple[int, ...] = (1,),
                  num_args: int = 2, out_batched: bool = False,
                  donate_argnums: tuple[int, ...] = ()) -> Callable:
  """Compiles per-device `fn` into one global jit function over `mesh`.

  Args:
    fn: per-device function; arguments at `batch_argnums` are sharded along their first
      axis, the others replicated.
    mesh: from `make_mesh`.
    batch_argnums: which positional arguments are batches.
    num_args: how many positional arguments `fn` takes.
    out_batched: whether the output is sharded along its first axis (else replicated).
    donate_argnums: arguments whose buffers the call may reuse (the train state).
  """
  in_specs = tuple(P(AXIS) if i in batch_argnums else P() for i in range(num_args))
  out_specs = P(AXIS) if out_batched else P()
  sharded = jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs)
  return jax.jit(sharded, donate_argnums=donate_argnums)


def per_device(tree):
  """Marks replicated values as per-device ("varying") inside a `data_parallel` function.

  Differentiating a loss of this device's examples with respect to replicated parameters
  would sum the gradients over devices implicitly (shard_map's transpose of an unvarying
  input); made varying first, the gradients stay this device's own, and the step averages
  them explicitly with `pmean`, the pmap semantics the steps are written in.
  """
  return jax.tree.map(lambda x: jax.lax.pcast(x, AXIS, to='varying'), tree)


def shard_batch(mesh, local_batch):
  """Makes global arrays, sharded along `AXIS`, from this process's rows of a batch."""
  sharding = NamedSharding(mesh, P(AXIS))
  if jax.process_count() == 1:  # The same arrays; device_put has less to do per call.
    return jax.device_put(local_batch, sharding)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x),
                      local_batch)


def shard_rows(mesh, rows: np.ndarray):
  """Shards host rows that every process holds alike, padded by repeating the last row to
  fill every device; callers drop outputs past `len(rows)`."""
  pad = -len(rows) % jax.device_count()
  rows = np.concatenate([rows, np.repeat(rows[-1:], pad, axis=0)])
  per_process = len(rows) // jax.process_count()
  lo = jax.process_index() * per_process
  return shard_batch(mesh, rows[lo:lo + per_process])


def replicate(mesh, tree):
  """Places a host pytree, identical on every process, on every device."""

  def put(x):
    x = np.asarray(x)
    # Spelled P(None, ...) per dimension, as jit returns it, so that the state a step returns
    # has exactly the sharding of the state it took and the step compiles once.
    sharding = NamedSharding(mesh, P(*[None] * x.ndim))
    return jax.make_array_from_process_local_data(sharding, x)

  return jax.tree.map(put, tree)


def all_processes(value: np.ndarray) -> np.ndarray:
  """Every process's `value` (a host scalar or array), stacked in process order; every
  process must call it at the same point."""
  return np.asarray(multihost_utils.process_allgather(value))


def gather(tree):
  """Fetches global (possibly sharded) arrays to numpy on every process."""
  return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))


def example_keys(key: jax.Array, local_batch_size: int) -> jax.Array:
  """One PRNG key per example, from its index in the global batch.

  Call inside a `data_parallel` function. Randomness keyed by the global example index
  (not the device index) makes a step's result independent of the device count.
  """
  first = jax.lax.axis_index(AXIS) * local_batch_size
  return jax.vmap(jax.random.fold_in, (None, 0))(key, first + jnp.arange(local_batch_size))
