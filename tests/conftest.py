"""Shared fixtures: the prepared datasets and a runner for `run.py` in a subprocess.

The suite reads the real MNIST (and Fashion-MNIST where it can be had) from TFDS's data
directory, prepared beforehand by `make data` (which `make test` runs). Tests never touch
the network: every run passes `--config.data.download=False`.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


# XLA flags for every program the suite compiles, in process and in the `run.py` processes
# it starts: LLVM optimises the machine code at -O1 instead of XLA's default. Most of the
# suite's time is compilation (smoke runs of 20 steps), and this makes it cheaper (a DCGAN
# smoke run: 30 s -> 21 s); the programs compute the same functions (XLA's own graph passes
# all run) in a slightly different summation order, and run a little slower. The suite checks
# behaviour, never speed: bench/ measures speed, with XLA's default flags.
TEST_XLA_FLAGS = '--xla_backend_optimization_level=1'


def xla_flags(devices: int = 1) -> str:
  """XLA_FLAGS for a process the suite starts on `devices` fake CPU devices."""
  return f'--xla_force_host_platform_device_count={devices} {TEST_XLA_FLAGS}'


def pytest_configure(config):
  """The suite's XLA flags, and one persistent XLA compilation cache for the session, shared
  by every xdist worker and every `run.py` process (they inherit the environment): the suite
  compiles the same smoke programs in many processes, and a cached program is loaded instead
  of compiled. Results are those of a fresh compilation (the same executable); the cache is
  deleted at the end."""
  if hasattr(config, 'workerinput'):
    return  # A worker inherits the controller's environment.
  if TEST_XLA_FLAGS not in os.environ.get('XLA_FLAGS', ''):
    os.environ['XLA_FLAGS'] = f"{os.environ.get('XLA_FLAGS', '')} {TEST_XLA_FLAGS}".strip()
  if 'JAX_COMPILATION_CACHE_DIR' in os.environ:
    return  # A user's own cache is left alone.
  config._jgen_xla_cache = tempfile.mkdtemp(prefix='jgen-test-xla-cache-')
  os.environ['JAX_COMPILATION_CACHE_DIR'] = config._jgen_xla_cache
  os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0'
  os.environ['JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES'] = '0'


def pytest_unconfigure(config):
  if getattr(config, '_jgen_xla_cache', None):
    shutil.rmtree(config._jgen_xla_cache, ignore_errors=True)


def data_dir() -> str:
  return os.environ.get('TFDS_DATA_DIR') or os.path.expanduser('~/tensorflow_datasets')


def is_prepared(name: str) -> bool:
  return any((pathlib.Path(data_dir()) / name).glob('*/dataset_info.json'))


@pytest.fixture(scope='session')
def mnist_source():
  """MNIST's decoded arrays (`make data` writes them; no TensorFlow is imported here)."""
  if not is_prepared('mnist'):
    pytest.fail(f'MNIST is not prepared in {data_dir()}; run `make data` first')
  from jgen import data

  return data.load('mnist', data_dir(), download=False)


# Turns on the sample and probe evaluations that `:smoke` configs leave off.
EVALS = ('--config.evals.samples.every_steps=0', '--config.evals.probe.every_steps=0')


def run_jgen(*args: str, devices: int = 1, timeout: float = 300, check: bool = True,
             extra_env: dict | None = None) -> subprocess.CompletedProcess:
  """Runs `python run.py ARGS` on `devices` fake CPU devices; never downloads."""
  env = dict(os.environ)
  env['XLA_FLAGS'] = xla_flags(devices)
  env['TF_CPP_MIN_LOG_LEVEL'] = '2'
  env.update(extra_env or {})
  cmd = [sys.executable, str(ROOT / 'run.py'), *args, '--config.data.download=False']
  proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=timeout)
  if check and proc.returncode != 0:
    raise AssertionError(f'run.py failed ({proc.returncode}):\n{proc.stderr[-4000:]}')
  return proc


def read_metrics(workdir) -> list[dict]:
  lines = pathlib.Path(workdir, 'metrics.jsonl').read_text().splitlines()
  return [json.loads(line) for line in lines]


def train_losses(workdir, key: str = 'train/loss') -> dict[int, float]:
  return {row['step']: row[key] for row in read_metrics(workdir) if key in row}


def load_params(workdir, step: int):
  """Everything saved at `step` (params, optimizer states, EMA, rng), as a flat dict of numpy
  arrays keyed by path."""
  import jax
  import numpy as np
  import orbax.checkpoint as ocp

  path = pathlib.Path(workdir, 'checkpoints', str(step), 'default')
  with ocp.StandardCheckpointer() as ckptr:
    tree = ckptr.restore(path)
  return {jax.tree_util.keystr(k): np.asarray(v)
          for k, v in jax.tree_util.tree_leaves_with_path(tree)}


def write_fake_tfds(name: str, data_dir, sizes: dict[str, int]) -> None:
  """Writes TFDS metadata for `name` with the given split sizes (no examples): with
  `fake_examples` patched in, the dataset reads as prepared. For datasets that need the
  internet (CIFAR-10, CelebA)."""
  import tensorflow_datasets as tfds
  from tensorflow_datasets.core import splits as splits_lib

  builder = tfds.builder(name, data_dir=str(data_dir))
  builder.info.set_splits(splits_lib.SplitDict([
      splits_lib.SplitInfo(name=k, shard_lengths=[v], num_bytes=0) for k, v in sizes.items()]))
  os.makedirs(builder.data_path, exist_ok=True)
  builder.info.write_to_directory(builder.data_path)


@pytest.fixture
def fake_examples(monkeypatch):
  """Makes every TFDS builder's `as_dataset` yield random examples of its features' shapes,
  as many as its split metadata says (seeded: the same on every read)."""
  import numpy as np
  import tensorflow as tf
  import tensorflow_datasets as tfds

  def as_dataset(self, split, **kwargs):
    del kwargs
    n = self.info.splits[split].num_examples
    rng = np.random.default_rng(0)
    features = self.info.features
    examples = {'image': rng.integers(0, 256, (n, *features['image'].shape), dtype=np.uint8)}
    if 'label' in features:
      examples['label'] = rng.integers(0, features['label'].num_classes, n)
    return tf.data.Dataset.from_tensor_slices(examples)

  monkeypatch.setattr(tfds.core.DatasetBuilder, 'as_dataset', as_dataset)


def execute_notebook(name: str, tmp_path, monkeypatch, **env: str):
  """Runs notebooks/NAME.ipynb top to bottom in a fresh kernel in the small setting
  (JGEN_NOTEBOOK_SMALL=1), its runs under tmp_path, on a copy (the file is not changed);
  a failing cell raises. Returns the executed notebook."""
  import nbformat
  from nbclient import NotebookClient

  monkeypatch.setenv('JGEN_NOTEBOOK_SMALL', '1')
  monkeypatch.setenv('JGEN_NOTEBOOK_RUNS', str(tmp_path / 'runs'))
  for key, value in env.items():
    monkeypatch.setenv(key, value)
  book = nbformat.read(ROOT / 'notebooks' / f'{name}.ipynb', as_version=4)
  NotebookClient(book, timeout=600, kernel_name='python3',
                 resources={'metadata': {'path': str(ROOT / 'notebooks')}}).execute()
  assert 'small setting' in book.cells[-1].outputs[-1]['text']
  return book
