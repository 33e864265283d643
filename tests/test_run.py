"""End to end through `run.py`: every config trains, resumes exactly after SIGKILL, agrees
across device and process counts, evaluates, and refuses bad input before any work."""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import EVALS, ROOT, load_params, read_metrics, run_jgen, train_losses, xla_flags


@pytest.fixture(scope='module')
def smoke_run(tmp_path_factory, mnist_source):
  """The ae_mnist smoke run on one device, shared by the comparisons below, in a process where
  importing TensorFlow or TFDS fails (training and evaluation read the decoded arrays)."""
  blocked = tmp_path_factory.mktemp('no_tensorflow')
  for package in ('tensorflow', 'tensorflow_datasets'):
    (blocked / package).mkdir()
    (blocked / package / '__init__.py').write_text(
        f'raise ImportError("{package} is blocked in this test")\n')
  workdir = tmp_path_factory.mktemp('smoke1')
  run_jgen('--config', 'configs/ae_mnist.py:smoke', '--workdir', str(workdir), *EVALS,
           extra_env={'PYTHONPATH': os.pathsep.join([str(blocked), str(ROOT)])})
  return workdir


def test_smoke_run_learns_without_tensorflow(smoke_run):
  losses = train_losses(smoke_run)
  assert losses[max(losses)] < 0.6 * losses[min(losses)]


def test_time_to_quality_counts_examples(smoke_run):
  """Every metrics row carries the examples read so far (step x batch); `examples_to_reach`
  returns the first row at the target and None where it was never reached."""
  import jgen

  batch, key = jgen.load_config('configs/ae_mnist.py:smoke').batch_size, 'train/sq_err_per_image'
  rows = read_metrics(smoke_run)
  assert rows and all(row['examples'] == row['step'] * batch for row in rows)
  logged = [row for row in rows if key in row]
  assert len(logged) >= 3
  target = sorted(row[key] for row in logged)[1]  # Second best: reached, not only at the end.
  first = next(row for row in logged if row[key] <= target)
  assert jgen.examples_to_reach(str(smoke_run), key, target) == {
      'step': first['step'], 'examples': first['step'] * batch, 'value': first[key]}
  assert jgen.examples_to_reach(str(smoke_run), key, 0.9 * min(r[key] for r in logged)) is None


def test_importing_the_train_loop_imports_no_tensorflow():
  code = ('import sys, jgen.train; print(sorted({m.split(".")[0] for m in sys.modules} & '
          '{"tensorflow", "tensorflow_datasets", "clu"}))')
  out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                       check=True).stdout
  assert out.strip() == '[]'


# The autoencoder's kills (at random moments, among other faults) are in test_faults.py.
@pytest.mark.parametrize('config, loss_key', [('dcgan_mnist', 'train/d_loss'),
                                              ('vae_mnist', 'train/loss')])
def test_killed_run_resumes_bit_exactly(config, loss_key, tmp_path, mnist_source):
  """SIGKILL mid-run, rerun: metrics and everything saved (params, optimizer states, batch
  statistics, EMA) end identical to an uninterrupted run's."""
  args = ['--config', f'configs/{config}.py:smoke', '--config.num_train_steps=60',
          '--config.checkpoint_every_steps=10']
  env = dict(os.environ, XLA_FLAGS=xla_flags(1))
  full = tmp_path / 'full'
  run_jgen(*args, '--workdir', str(full))
  killed = tmp_path / 'killed'
  cmd = [sys.executable, 'run.py', *args, '--workdir', str(killed),
         '--config.data.download=False']
  proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  deadline = time.time() + 120
  while not (killed / 'checkpoints' / '20').exists() and time.time() < deadline:
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert not (killed / 'results.json').exists(), 'the run finished before it was killed'
  assert not (killed / 'checkpoints' / '60').exists()
  run_jgen(*args, '--workdir', str(killed))
  resumed = json.loads((killed / 'results.json').read_text())
  assert resumed['steps_this_run'] <= 40  # It resumed from a checkpoint, not from scratch.
  steps = [row['step'] for row in read_metrics(killed) if loss_key in row]
  assert steps == sorted(set(steps))  # Rows after the checkpoint were replaced, not repeated.
  assert train_losses(killed, loss_key) == train_losses(full, loss_key)
  want, got = load_params(full, 60), load_params(killed, 60)
  assert want.keys() == got.keys()
  for k in want:
    np.testing.assert_array_equal(got[k], want[k], err_msg=str(k))


def test_four_devices_match_one(smoke_run, tmp_path):
  run_jgen('--config', 'configs/ae_mnist.py:smoke', '--workdir', str(tmp_path), devices=4)
  for key in ('train/loss', 'train/l2_grads', 'train/l2_updates'):
    one, four = train_losses(smoke_run, key), train_losses(tmp_path, key)
    assert one.keys() == four.keys() and len(one) >= 4
    np.testing.assert_allclose([four[s] for s in sorted(four)], [one[s] for s in sorted(one)],
                               rtol=1e-4, err_msg=key)


def test_dropout_is_independent_of_the_device_count(tmp_path):
  """Dropout masks are keyed by global example index, so devices do not change them."""
  args = ['--config', 'configs/ae_mnist.py:smoke', '--config.model.dropout=0.2']
  run_jgen(*args, '--workdir', str(tmp_path / 'one'))
  run_jgen(*args, '--workdir', str(tmp_path / 'four'), devices=4)
  one, four = train_losses(tmp_path / 'one'), train_losses(tmp_path / 'four')
  assert one.keys() == four.keys()
  # Summation order differs with 4 devices (about 1e-4 after 20 steps); other dropout masks
  # would move the losses by percents.
  np.testing.assert_allclose([four[s] for s in sorted(four)], [one[s] for s in sorted(one)],
                             rtol=5e-4)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def test_two_processes_match_one(smoke_run, tmp_path):
  port = _free_port()
  env = dict(os.environ, XLA_FLAGS=xla_flags(1))
  procs = [
      subprocess.Popen(
          [sys.executable, 'run.py', '--config', 'configs/ae_mnist.py:smoke', '--workdir',
           str(tmp_path), '--config.data.download=False',
           f'--coordinator_address=localhost:{port}', '--num_processes=2', f'--process_id={i}'],
          cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
      for i in range(2)
  ]
  for p in procs:
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-3000:]
  results = json.loads((tmp_path / 'results.json').read_text())
  assert results['num_processes'] == 2
  one, two = train_losses(smoke_run), train_losses(tmp_path)
  assert one.keys() == two.keys()
  np.testing.assert_allclose([two[s] for s in sorted(two)], [one[s] for s in sorted(one)],
                             rtol=1e-4)


def test_sigterm_to_one_of_two_processes_stops_both_at_one_step(tmp_path):
  """A scheduler may signal the processes of a run at different moments: they agree at the
  next log step, save that step together and exit 143."""
  args = ['--config', 'configs/ae_mnist.py:smoke', '--workdir', str(tmp_path),
          '--config.data.download=False', '--config.model.hidden_sizes=(256, 64)',
          '--config.num_train_steps=200', '--config.checkpoint_every_steps=50',
          '--config.eval_every_steps=-1', '--config.num_image_examples=0', '--num_processes=2']
  env = dict(os.environ, XLA_FLAGS=xla_flags(1))

  def start():
    port = _free_port()
    return [subprocess.Popen([sys.executable, 'run.py', *args,
                              f'--coordinator_address=localhost:{port}', f'--process_id={i}'],
                             cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True) for i in range(2)]

  procs = start()
  deadline = time.time() + 300
  while not (tmp_path / 'checkpoints' / '50').exists():
    assert time.time() < deadline and all(p.poll() is None for p in procs)
    time.sleep(0.01)
  procs[1].send_signal(signal.SIGTERM)
  lasts = []
  for p in procs:
    _, err = p.communicate(timeout=300)
    assert p.returncode == 128 + signal.SIGTERM, err[-3000:]
    lasts.append(err.strip().splitlines()[-1])
  assert lasts[0] == lasts[1] and lasts[0].startswith('stopped: SIGTERM after step '), lasts
  step = int(lasts[0].split('after step ')[1].split(',')[0])
  assert 50 <= step < 200 and step % 5 == 0  # A log step (every 5 in :smoke).
  assert (tmp_path / 'checkpoints' / str(step)).is_dir()
  # Resuming from it is what test_faults.py's SIGTERM test checks, bit for bit.


def test_eval_mode_reproduces_the_results_of_training(smoke_run):
  """--mode=eval reruns every evaluator on the latest checkpoint into results.json: the
  test split's metrics, the sample metrics and their floors, the probes, as training wrote."""
  before = {p: p.stat().st_mtime_ns for p in smoke_run.rglob('checkpoints/*/**/*') if p.is_file()}
  trained = json.loads((smoke_run / 'results.json').read_text())
  evaluated_keys = [k for k in trained if k.split('_')[0] in ('test', 'samples', 'probe')]
  for key in ('test_sq_err_per_image', 'samples_frechet', 'samples_floor_frechet',
              'samples_coverage', 'samples_classes_covered', 'probe_code_linear',
              'probe_code_knn'):
    assert key in evaluated_keys, key
  (smoke_run / 'results.json').write_text(json.dumps(
      {k: v for k, v in trained.items() if k not in evaluated_keys}))
  run_jgen('--config', 'configs/ae_mnist.py:smoke', '--workdir', str(smoke_run), '--mode=eval',
           *EVALS)
  evaluated = json.loads((smoke_run / 'results.json').read_text())
  assert evaluated['step'] == 20
  assert evaluated['train_seconds'] == trained['train_seconds']  # Training's figures stay.
  for key in evaluated_keys:
    assert evaluated[key] == pytest.approx(trained[key], rel=1e-5), key
  after = {p: p.stat().st_mtime_ns for p in smoke_run.rglob('checkpoints/*/**/*') if p.is_file()}
  assert after == before


# --- Bad input: one line, non-zero exit, within seconds, nothing changed -------------------

def _snapshot(workdir: pathlib.Path):
  return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in workdir.rglob('*')}


@pytest.mark.parametrize('override, message', [
    ('--config.model.name=mlpx', "unknown model 'mlpx'; known: classifier, conv_autoencoder, "
     'conv_vae, dcgan, infogan, mlp_autoencoder, mlp_gan, mlp_vae'),
    ('--config.evals.samples.type=fid', "unknown evaluator 'fid'; known: mode_coverage, "
     'representation, sample_quality, test_split'),
    ('--config.evals.probe.every_steps=-2', 'evals.probe.every_steps=-2 must be -1 (never)'),
    ('--config.evals.samples.num_samples=3', 'sample_quality num_samples=3 must exceed k=5'),
    ('--config.loss=msee', "unknown reconstruction loss 'msee'; known: bce, l1, mse"),
    ('--config.corrupt.name=blur', "unknown corruption 'blur'; known: gaussian, masking, none, "
     'salt_and_pepper'),
    ('--config.data.name=mnistt', "unknown dataset 'mnistt'"),
    ('--config.data.name=cifar10', "dataset 'cifar10' is not prepared"),
    ('--config.modle.name=x', "unknown config field 'modle'; Did you mean \"model\""),
    ('--config.batch_size=30', 'batch_size=30 is not divisible by the 4 devices'),
    ('--config.batch_size=0', 'batch_size=0 must be at least 1'),
    ('--config.model.hidden_sizes=False', 'model.hidden_sizes=(False,) must be a size'),
    ('--config.model.widht=3', "unknown config field 'widht'"),
])
def test_bad_input_fails_fast_with_one_line(override, message, smoke_run, tmp_path):
  before = _snapshot(smoke_run)
  start = time.time()
  proc = run_jgen('--config', 'configs/ae_mnist.py:smoke', '--workdir', str(smoke_run),
                  override, devices=4, check=False,
                  extra_env={'TFDS_DATA_DIR': str(tmp_path)} if 'cifar' in override else None)
  elapsed = time.time() - start
  assert proc.returncode == 2
  assert 'Traceback' not in proc.stderr
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith('error: ') and message in last, proc.stderr[-2000:]
  assert elapsed < 30
  assert _snapshot(smoke_run) == before


def test_a_missing_config_file_is_one_line(tmp_path):
  for extra in ((), ('--config.seed=1',)):  # absl loads the file at another moment with these.
    proc = run_jgen('--config', 'configs/no_such_config.py', '--workdir', str(tmp_path / 'w'),
                    *extra, check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        'error: config file configs/no_such_config.py does not exist; give a path such as '
        'configs/ae_mnist.py')
  assert not (tmp_path / 'w').exists()


def test_unwritable_workdir_fails_fast(tmp_path):
  blocker = tmp_path / 'file'
  blocker.write_text('not a directory')
  proc = run_jgen('--config', 'configs/ae_mnist.py:smoke', '--workdir', str(blocker / 'run'),
                  check=False)
  assert proc.returncode == 2 and 'Traceback' not in proc.stderr
  assert proc.stderr.strip().splitlines()[-1].startswith(f'error: workdir {blocker / "run"} '
                                                         'cannot be written')
  assert blocker.read_text() == 'not a directory'


def test_non_finite_loss_stops_the_run_naming_the_step(tmp_path):
  proc = run_jgen('--config', 'configs/ae_mnist.py:smoke', '--workdir', str(tmp_path),
                  '--config.optimizer.learning_rate=1e30', '--config.optimizer.warmup_steps=0',
                  check=False)
  assert proc.returncode == 2 and 'Traceback' not in proc.stderr
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith('error: loss is ') and ' at step ' in last, proc.stderr[-2000:]
  assert not (tmp_path / 'results.json').exists()


def test_eval_without_checkpoint_says_train_first(tmp_path):
  proc = run_jgen('--config', 'configs/ae_mnist.py:smoke', '--workdir', str(tmp_path / 'none'),
                  '--mode=eval', check=False)
  assert proc.returncode == 2
  assert 'train first' in proc.stderr.strip().splitlines()[-1]
  assert not (tmp_path / 'none').exists()
