"""jgen.parallel.initialize: explicit flags, cluster auto-detection, JGEN_CLUSTER_INIT.

No network and no second process: `jax.distributed.initialize` is replaced by a recorder,
and the environments are fakes of what srun, mpirun and GKE set.
"""

import logging
import os

import jax
import pytest

from jgen import parallel
from jgen.registry import ConfigError

try:  # JAX's own cluster detection, private: only the comparison test needs it.
  from jax._src import clusters as jax_clusters
  from jax._src.clusters import cloud_tpu_cluster
  _NO_JAX_CLUSTERS = ''
except ImportError as e:
  jax_clusters = cloud_tpu_cluster = None
  _NO_JAX_CLUSTERS = f'jax._src.clusters cannot be imported in this JAX version: {e}'

_PREFIXES = ('SLURM_', 'OMPI_', 'TPU_', 'MEGASCALE_', 'KUBERNETES_', 'JOB_COMPLETION_INDEX',
             'JAX_COORDINATOR', parallel.CLUSTER_INIT)

SLURM_2 = {  # `srun` task 1 of a 2-node, 2-task step.
    'SLURM_JOB_ID': '4242', 'SLURM_JOB_NODELIST': 'node[001-002]',
    'SLURM_STEP_NODELIST': 'node[001-002]', 'SLURM_NTASKS': '2', 'SLURM_STEP_NUM_TASKS': '2',
    'SLURM_STEP_NUM_NODES': '2', 'SLURM_PROCID': '1', 'SLURM_LOCALID': '0'}
SLURM_1 = {**SLURM_2, 'SLURM_JOB_NODELIST': 'node001', 'SLURM_STEP_NODELIST': 'node001',
           'SLURM_NTASKS': '1', 'SLURM_STEP_NUM_TASKS': '1', 'SLURM_STEP_NUM_NODES': '1',
           'SLURM_PROCID': '0'}
SALLOC_SHELL = {'SLURM_JOB_ID': '4242', 'SLURM_JOB_NODELIST': 'node[001-004]',
                'SLURM_NTASKS': '4', 'SLURM_NNODES': '4'}  # No step: no STEP_NODELIST, PROCID.
OMPI_4 = {'OMPI_MCA_orte_hnp_uri': '1531576320.0;tcp://10.96.0.1,10.148.0.1:34911',
          'OMPI_COMM_WORLD_SIZE': '4', 'OMPI_COMM_WORLD_RANK': '2',
          'OMPI_COMM_WORLD_LOCAL_RANK': '0'}
GKE_TPU_2 = {'TPU_WORKER_HOSTNAMES': 'job-0.jax,job-1.jax', 'TPU_WORKER_ID': '1',
             'MEGASCALE_NUM_SLICES': '1'}

# (name, environment, what jgen detects)
CASES = [
    ('empty', {}, None),
    ('slurm, 2 tasks', SLURM_2, 'slurm'),
    ('slurm, 2 tasks, no SLURM_STEP_NUM_TASKS',
     {k: v for k, v in SLURM_2.items() if k != 'SLURM_STEP_NUM_TASKS'}, 'slurm'),
    ('slurm, srun with 1 task', SLURM_1, None),
    ('slurm, salloc shell', SALLOC_SHELL, None),
    ('slurm, ssh into a node of a job', {'SLURM_JOB_ID': '4242', 'SLURM_NTASKS': '2'}, None),
    ('slurm, SLURM_NTASKS not a number', {**SLURM_2, 'SLURM_NTASKS': '2(x2)'}, None),
    ('open mpi, 4 ranks', OMPI_4, 'ompi'),
    ('open mpi, 1 rank', {**OMPI_4, 'OMPI_COMM_WORLD_SIZE': '1'}, None),
    ('open mpi inside a slurm step', {**SLURM_2, **OMPI_4}, 'ompi'),
    ('gke tpu, 2 hosts', GKE_TPU_2, 'gketpu'),
    ('gke tpu, TPU_PROCESS_ADDRESSES before TPU_WORKER_HOSTNAMES',
     {**GKE_TPU_2, 'TPU_PROCESS_ADDRESSES': 'job-0.jax:8476'}, None),
    ('gke tpu, 1 host', {**GKE_TPU_2, 'TPU_WORKER_HOSTNAMES': 'localhost'}, None),
    ('gke tpu, 1 host in each of 2 slices',
     {**GKE_TPU_2, 'TPU_WORKER_HOSTNAMES': 'localhost', 'MEGASCALE_NUM_SLICES': '2'}, 'gketpu'),
    ('kubernetes pod', {'KUBERNETES_SERVICE_HOST': '10.0.0.1', 'JOB_COMPLETION_INDEX': '0'},
     None),
]
IDS = [c[0] for c in CASES]


@pytest.fixture
def clean_env(monkeypatch):
  """This process's environment without any cluster variables; returns a setter."""
  for name in list(os.environ):
    if name.startswith(_PREFIXES):
      monkeypatch.delenv(name)

  def set_env(env):
    for name, value in env.items():
      monkeypatch.setenv(name, value)

  return set_env


@pytest.fixture
def calls(monkeypatch):
  """Records `jax.distributed.initialize` calls (their keyword arguments) instead."""
  recorded = []

  def record(*args, **kwargs):
    assert not args, 'jgen passes keyword arguments only'
    recorded.append(kwargs)

  monkeypatch.setattr(jax.distributed, 'initialize', record)
  return recorded


@pytest.mark.parametrize('name,env,expected', CASES, ids=IDS)
def test_cluster_environment(name, env, expected):
  assert parallel.cluster_environment(env) == expected


@pytest.mark.parametrize('env', [{}, SLURM_2], ids=['no cluster', 'inside a slurm step'])
def test_explicit_flags_are_passed_on_and_win(env, calls):
  parallel.initialize('host0:1234', 2, 1, environ=env)
  assert calls == [{'coordinator_address': 'host0:1234', 'num_processes': 2, 'process_id': 1}]


@pytest.mark.parametrize('env', [SLURM_2, OMPI_4, GKE_TPU_2], ids=['slurm', 'ompi', 'gketpu'])
def test_a_detected_cluster_is_joined_with_no_arguments(env, calls, clean_env, caplog):
  clean_env(env)  # The real os.environ, as run.py passes it (the default).
  caplog.set_level(logging.INFO, logger='absl')
  parallel.initialize(None, 1, 0)
  assert calls == [{}]
  assert f'{parallel.cluster_environment()} cluster detected' in caplog.text


@pytest.mark.parametrize('name,env,expected', [c for c in CASES if c[2] is None],
                         ids=[c[0] for c in CASES if c[2] is None])
def test_no_cluster_no_call(name, env, expected, calls, clean_env):
  clean_env(env)
  parallel.initialize(None, 1, 0)
  parallel.initialize(None, 1, 0, environ=env)
  assert calls == []


@pytest.mark.parametrize('value,joins', [('0', False), ('', True), ('auto', True),
                                         (' Auto ', True), ('1', True)])
def test_cluster_init_in_a_detected_cluster(value, joins, calls, clean_env):
  clean_env({**SLURM_2, parallel.CLUSTER_INIT: value})
  parallel.initialize(None, 1, 0)
  assert calls == ([{}] if joins else [])
  parallel.initialize('host0:1234', 2, 1)  # The flags still win.
  assert calls[-1] == {'coordinator_address': 'host0:1234', 'num_processes': 2, 'process_id': 1}


@pytest.mark.parametrize('value,joins', [('0', False), ('auto', False), ('1', True)])
def test_cluster_init_where_none_is_detected(value, joins, calls, clean_env):
  """1 leaves the detection to JAX (a Cloud TPU VM pod slice: its metadata server)."""
  clean_env({parallel.CLUSTER_INIT: value})
  parallel.initialize(None, 1, 0)
  assert calls == ([{}] if joins else [])


@pytest.mark.parametrize('value', ['yes', 'true', '2', 'slurm'])
def test_cluster_init_other_values_are_refused(value, calls, clean_env):
  clean_env({**SLURM_2, parallel.CLUSTER_INIT: value})
  with pytest.raises(ConfigError, match=f"JGEN_CLUSTER_INIT='{value}': use auto"):
    parallel.initialize(None, 1, 0)
  assert calls == []


def _jax_decision():
  """(name, process count) of the cluster JAX's own auto-detection picks among those jgen
  mirrors, in JAX's order; (None, 0) if none, count 0 where JAX fails to read it. Runs on a
  CPU host, so the Cloud TPU VM check and the metadata server are stood in for by the
  caller."""
  for env in jax_clusters.ClusterEnv._cluster_types:
    if env.name in ('ompi', 'slurm', 'gketpu') and not env.opt_in_only_method:
      if env.is_env_present():
        try:
          return env.name, env.get_process_count()
        except ValueError:  # jax.distributed.initialize() would raise it.
          return env.name, 0
  return None, 0


@pytest.mark.parametrize('name,env,expected', CASES, ids=IDS)
def test_detection_agrees_with_jax(name, env, expected, clean_env, monkeypatch):
  if jax_clusters is None:
    pytest.skip(_NO_JAX_CLUSTERS)
  names = {c.name for c in jax_clusters.ClusterEnv._cluster_types}
  assert {'ompi', 'slurm', 'gketpu'} <= names, f'JAX renamed its clusters: {sorted(names)}'
  clean_env(env)
  # As on a TPU host whose metadata server has no tpu-env (GKE): no network.
  monkeypatch.setattr(cloud_tpu_cluster, 'running_in_cloud_tpu_vm', True)
  monkeypatch.setattr(cloud_tpu_cluster, 'get_metadata', lambda key: ('', 404))
  jax_name, count = _jax_decision()
  ours = parallel.cluster_environment()
  assert ours == expected
  if ours is not None:
    assert (jax_name, count > 1) == (ours, True)
  else:
    assert jax_name is None or count <= 1, (jax_name, count)


def test_srun_with_fewer_tasks_than_the_allocation_is_not_joined(clean_env):
  """`srun -n1` where SLURM_NTASKS still says 4: JAX would wait for 4 processes."""
  env = {**SLURM_1, 'SLURM_NTASKS': '4'}
  assert parallel.cluster_environment(env) is None
  if jax_clusters is None:
    pytest.skip(_NO_JAX_CLUSTERS)
  clean_env(env)
  assert _jax_decision() == ('slurm', 4)
