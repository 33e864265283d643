"""Fault injection through `run.py`: every fault a long run meets ends, after a rerun, exactly
where an uninterrupted run ends, with nothing written before it lost.

Each test damages a run the way the fault would (SIGKILL at random moments, SIGTERM, a
corrupted or truncated newest checkpoint, a torn metrics line, a full disk during a save, a
second run on the same workdir, a loss that turns non-finite between log steps) and compares
the end with `reference`, the same config run without a fault.
"""

import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from conftest import ROOT, load_params, read_metrics, run_jgen, train_losses, xla_flags

# A small autoencoder (small checkpoints: quick saves, a small filesystem fills quickly).
ARGS = ('--config', 'configs/ae_mnist.py:smoke', '--config.model.hidden_sizes=(256, 64)',
        '--config.num_train_steps=60', '--config.checkpoint_every_steps=10',
        '--config.keep_checkpoints=10')
LAST = 60


@pytest.fixture(scope='module')
def reference(tmp_path_factory, mnist_source):
  workdir = tmp_path_factory.mktemp('reference')
  run_jgen(*ARGS, '--workdir', str(workdir))
  return workdir


def assert_same_run(workdir, reference) -> None:
  """The run in `workdir` logged the same losses as `reference` and saved the same final
  state (parameters, optimizer state, step, PRNG key), bit for bit."""
  steps = [row['step'] for row in read_metrics(workdir) if 'train/loss' in row]
  assert steps == sorted(set(steps))  # Rows after a resumed checkpoint replaced, not repeated.
  assert train_losses(workdir) == train_losses(reference)
  want, got = load_params(reference, LAST), load_params(workdir, LAST)
  assert want.keys() == got.keys()
  for k in want:
    np.testing.assert_array_equal(got[k], want[k], err_msg=str(k))


def start(workdir, *extra: str) -> subprocess.Popen:
  env = dict(os.environ, XLA_FLAGS=xla_flags(1))
  return subprocess.Popen([sys.executable, 'run.py', *ARGS, *extra, '--workdir', str(workdir),
                           '--config.data.download=False'], cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(path: pathlib.Path, proc: subprocess.Popen, timeout: float = 120) -> None:
  """Waits until `path` exists, or for a checkpoint directory, until its save has begun
  (Orbax writes `<step>.orbax-checkpoint-tmp...` first and renames it when done)."""
  deadline = time.time() + timeout
  while not (path.exists() or any(path.parent.glob(f'{path.name}.orbax-checkpoint-tmp*'))):
    assert proc.poll() is None, f'the run ended first:\n{proc.stderr.read()[-3000:]}'
    assert time.time() < deadline, f'{path} never appeared'
    time.sleep(0.01)


def copy_until(reference, workdir, step: int) -> None:
  """`workdir` as a run stopped after checkpointing `step` would have left it (the later
  metrics rows stay: a resumed run must replace them)."""
  shutil.copytree(reference, workdir)
  (workdir / 'results.json').unlink()
  for later in (workdir / 'checkpoints').iterdir():
    if later.name.isdigit() and int(later.name) > step:
      shutil.rmtree(later)


def test_sigkill_at_random_moments_resumes_exactly(reference, tmp_path):
  """Two SIGKILLs at random moments (seeded), during a save or between saves; after each, a
  rerun; the last rerun finishes. The killed run's lock is stale each time and taken over.

  A moment is drawn in steps, not seconds (a cached compilation makes a whole run take a
  few seconds, faster on a faster machine): once the save of a drawn step has begun, a
  drawn delay of up to a few steps' time."""
  workdir = tmp_path / 'run'
  rng = random.Random(0)
  for saves in ((10, 20), (30, 40)):
    proc = start(workdir)
    wait_for(workdir / 'checkpoints' / str(rng.choice(saves)), proc)
    time.sleep(rng.uniform(0.0, 0.3))
    assert proc.poll() is None, 'the run ended before the kill'
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
  assert (workdir / 'jgen.lock').exists()  # Left by the last killed run.
  run_jgen(*ARGS, '--workdir', str(workdir))
  assert_same_run(workdir, reference)
  assert not (workdir / 'jgen.lock').exists()


def test_sigterm_saves_stops_and_resumes_exactly(reference, tmp_path):
  workdir = tmp_path / 'run'
  proc = start(workdir)
  wait_for(workdir / 'checkpoints' / '10', proc)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=120)
  last = err.strip().splitlines()[-1]
  assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
  assert last.startswith('stopped: SIGTERM after step '), last
  step = int(last.split('after step ')[1].split(',')[0])
  assert 10 <= step < LAST, 'the run ended before the signal'
  assert (workdir / 'checkpoints' / str(step)).is_dir()  # Its step saved: no work lost.
  assert max(row['step'] for row in read_metrics(workdir)) <= step
  assert not (workdir / 'jgen.lock').exists()
  run_jgen(*ARGS, '--workdir', str(workdir))
  assert json.loads((workdir / 'results.json').read_text())['steps_this_run'] == LAST - step
  assert_same_run(workdir, reference)


def _flip_bytes(checkpoint: pathlib.Path) -> None:
  """Inverts 64 bytes in the middle of the checkpoint's largest data file (restores
  silently to other values: only the digest can tell)."""
  data = max((p for p in checkpoint.rglob('d/*') if p.is_file()), key=lambda p: p.stat().st_size)
  raw = bytearray(data.read_bytes())
  middle = len(raw) // 2
  raw[middle:middle + 64] = bytes(b ^ 0xFF for b in raw[middle:middle + 64])
  data.write_bytes(bytes(raw))


def _truncate(checkpoint: pathlib.Path) -> None:
  """Cuts the largest data file in half (a torn write)."""
  data = max((p for p in checkpoint.rglob('d/*') if p.is_file()), key=lambda p: p.stat().st_size)
  os.truncate(data, data.stat().st_size // 2)


@pytest.mark.parametrize('damage', [_flip_bytes, _truncate], ids=['flipped', 'truncated'])
def test_a_corrupt_newest_checkpoint_is_skipped_and_kept(damage, reference, tmp_path):
  """The newest checkpoint (step 30) is damaged and the metrics file ends in a torn line:
  the rerun names both in one warning line each, sets step 30 aside (kept, not deleted),
  resumes from step 20 and ends bit-identical to the uninterrupted run."""
  workdir = tmp_path / 'run'
  copy_until(reference, workdir, 30)
  damage(workdir / 'checkpoints' / '30')
  with open(workdir / 'metrics.jsonl', 'a') as f:
    f.write('{"step": 35, "examples": 11')  # A kill in the middle of an append.
  proc = run_jgen(*ARGS, '--workdir', str(workdir))
  warnings = [line for line in proc.stderr.splitlines() if line.startswith('W')]
  assert any('Skipped the checkpoint of step 30' in w and 'Resuming from step 20' in w
             for w in warnings), proc.stderr[-3000:]
  assert any('metrics.jsonl line' in w and 'torn' in w for w in warnings)
  assert (workdir / 'checkpoints_unreadable' / '30').is_dir()
  assert json.loads((workdir / 'results.json').read_text())['steps_this_run'] == LAST - 20
  assert_same_run(workdir, reference)


def test_a_second_run_on_a_workdir_stops_naming_the_first(reference, tmp_path):
  """A lock held by a live process (this test's) stops a run before it writes anything."""
  workdir = tmp_path / 'run'
  copy_until(reference, workdir, 30)
  holder = {'host': os.uname().nodename, 'pid': os.getpid()}
  (workdir / 'jgen.lock').write_text(json.dumps(holder))
  before = {p: p.stat().st_mtime_ns for p in workdir.rglob('*')}
  proc = run_jgen(*ARGS, '--workdir', str(workdir), check=False)
  assert proc.returncode == 2 and 'Traceback' not in proc.stderr
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith(f'error: another run (pid {os.getpid()} on {holder["host"]}) is '
                         'training in this workdir'), last
  assert {p: p.stat().st_mtime_ns for p in workdir.rglob('*')} == before


def test_the_workdir_lock_in_process(tmp_path):
  """Shared within a process (the file stays until the last holder releases it); a dead
  holder's lock is taken over; a live one's, or another host's, stops with its name."""
  from jgen.lock import WorkdirLock
  from jgen.registry import ConfigError

  path = tmp_path / 'jgen.lock'
  first, second = WorkdirLock(str(tmp_path)).acquire(), WorkdirLock(str(tmp_path)).acquire()
  first.release()
  assert path.exists()
  second.release()
  assert not path.exists()
  gone = subprocess.Popen(['true'])
  gone.wait()
  host = os.uname().nodename
  path.write_text(json.dumps({'host': host, 'pid': gone.pid}))
  WorkdirLock(str(tmp_path)).acquire().release()  # Taken over, then released.
  assert not path.exists()
  for holder in ({'host': host, 'pid': 1}, {'host': 'elsewhere', 'pid': gone.pid}):
    path.write_text(json.dumps(holder))
    with pytest.raises(ConfigError, match=f'another run \\(pid {holder["pid"]} on '
                                          f'{holder["host"]}\\)'):
      WorkdirLock(str(tmp_path)).acquire()
    assert json.loads(path.read_text()) == holder  # Not touched.


def test_a_full_disk_during_a_save_loses_nothing(reference, tmp_path):
  """The workdir is a filesystem with room for a few checkpoints: a save fails on a full
  disk. The run stops with one line; what it wrote before stays; with room again, a rerun
  ends bit-identical to the uninterrupted run."""
  mount = tmp_path / 'small'
  mount.mkdir()
  size = sum(p.stat().st_size for p in (reference / 'checkpoints' / '10').rglob('*')
             if p.is_file())
  if subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={int(3.5 * size) + 200_000}', 'tmpfs',
                     str(mount)], capture_output=True).returncode != 0:
    pytest.skip('this machine does not let the test mount a small filesystem')
  try:
    workdir = mount / 'run'
    proc = run_jgen(*ARGS, '--workdir', str(workdir), check=False)
    # Orbax's writer threads log their own errors above; the run's last line says it all.
    assert proc.returncode == 2, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert 'Traceback' not in proc.stderr.split('error: writing')[-1]
    assert last.startswith('error: writing the checkpoint of step ') and (
        'No space left on device' in last), last
    saved = sorted(int(p.name) for p in (workdir / 'checkpoints').iterdir() if p.name.isdigit())
    assert saved and saved[-1] < LAST
    reference_params = load_params(reference, saved[-1])
    for k, v in load_params(workdir, saved[-1]).items():  # The last good one is whole.
      np.testing.assert_array_equal(v, reference_params[k], err_msg=str(k))
    subprocess.run(['mount', '-o', 'remount,size=200m', str(mount)], check=True)
    run_jgen(*ARGS, '--workdir', str(workdir))
    assert_same_run(workdir, reference)
  finally:
    subprocess.run(['umount', str(mount)], capture_output=True)


def test_a_failed_save_is_one_error_and_keeps_the_older_checkpoints(tmp_path, monkeypatch,
                                                                    mnist_source):
  """The full disk as an injected error (for machines where the test above cannot mount a
  filesystem): Orbax's write of step 20 fails; training stops with CheckpointWriteError (one
  line in run.py), step 10 stays, and the workdir's lock is released."""
  import jgen
  from jgen.checkpoint import CheckpointWriteError

  config = jgen.load_config('configs/ae_mnist.py:smoke', {
      'model.hidden_sizes': (256, 64), 'num_train_steps': 30, 'checkpoint_every_steps': 10,
      'keep_checkpoints': 10, 'data.download': False, 'async_checkpoints': False})
  trainer = jgen.Trainer(config, str(tmp_path))
  save = trainer._ckpt.manager.save

  def full_disk(step, *args, **kwargs):
    if step == 20:
      raise ValueError('RESOURCE_EXHAUSTED: Failed to write 269518 bytes to file 5: No space '
                       "left on device [os_error_code='28']")
    return save(step, *args, **kwargs)

  monkeypatch.setattr(trainer._ckpt.manager, 'save', full_disk)
  with pytest.raises(CheckpointWriteError) as e:
    trainer.train()
  trainer.close()
  assert str(e.value).startswith('writing the checkpoint of step 20 in ')
  assert '(No space left on device)' in str(e.value) and 'go on from step 10' in str(e.value)
  assert '\n' not in str(e.value)
  assert sorted(p.name for p in (tmp_path / 'checkpoints').iterdir()) == ['10']
  assert not (tmp_path / 'jgen.lock').exists()


def test_the_error_line_is_the_last_output_whatever_other_threads_write():
  """After a failed save, Orbax's writer threads can still print: in one CI run a traceback
  (a closed event loop) came after run.py's error line. run.py's last words first silence
  every other writer of stderr; with a thread writing to stderr without pause (by `print`
  and by `os.write`, as Python and C++ code do), the error line is still the whole last
  line, and the code is 2. (Printing the line and exiting, as before, failed about half
  of these runs.)"""
  code = textwrap.dedent("""
      import os, sys, threading, time
      import run

      def noise():
        while True:
          os.write(2, b'Traceback (noise)\\n')
          print('noise', file=sys.stderr, flush=True)

      threading.Thread(target=noise, daemon=True).start()
      time.sleep(0.02)
      run._last_words('error: the last words')
  """)
  for _ in range(10):
    proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.splitlines()[-1] == 'error: the last words', proc.stderr[-300:]


def test_a_non_finite_loss_between_log_steps_is_never_saved(tmp_path):
  """With a step size that diverges, the run stops at the first non-finite step even when
  no step logs: the step it names is the one a run logging every step names, and no
  checkpoint past it (or holding a non-finite value) is written."""
  # 3,000 steps, so that the run logging every 1,000 has its metric-free step (it stops at
  # the first steps anyway).
  args = ('--config', 'configs/ae_mnist.py:smoke', '--config.model.hidden_sizes=(256, 64)',
          '--config.optimizer.learning_rate=1e30', '--config.optimizer.warmup_steps=0',
          '--config.num_train_steps=3000')

  def first_bad_step(workdir, *extra):
    proc = run_jgen(*args, *extra, '--workdir', str(workdir), check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: loss is not finite at step '), last
    return int(last.split(' at step ')[1].split()[0])

  every = first_bad_step(tmp_path / 'every', '--config.log_every_steps=1')
  quiet = first_bad_step(tmp_path / 'quiet', '--config.log_every_steps=1000',
                         '--config.checkpoint_every_steps=1')
  assert quiet == every
  saved = [int(p.name) for p in (tmp_path / 'quiet' / 'checkpoints').iterdir()
           if p.name.isdigit()]
  assert all(step < quiet for step in saved)
  for step in saved:
    for k, v in load_params(tmp_path / 'quiet', step).items():
      if np.issubdtype(v.dtype, np.floating):
        assert np.isfinite(v).all(), (step, k)


# --- A fuzz of config overrides -------------------------------------------------------------

FUZZ_CONFIGS = ('ae_mnist', 'dcgan_mnist', 'vae_mnist', 'gan_mnist')
# Kept fixed: the run's length (a fuzzed run takes two steps), offline data, and where the
# data is (a fuzzed path would prepare a dataset wherever it points: here, the repository).
FUZZ_FIXED = ('num_train_steps', 'data.download', 'data.data_dir')
# Values of every type; sizes stay small (a valid but huge size is a slow run, not a bug).
FUZZ_VALUES = (-1, 0, 1, 3, 64, -1.0, 0.0, 0.5, 1.0, 2.0, 1e30, float('nan'), '', 'x',
               'none', 'relu', 'True', (), (3,), (16, 8), True, False)


def fuzz_cases(count: int, seed: int = 0) -> list[tuple[str, str, object]]:
  """`count` (config, dotted field, value) draws, seeded: a field of the config, and a value
  of its type or of another."""
  import jgen

  rng = random.Random(seed)
  fields = {}
  for name in FUZZ_CONFIGS:
    flat = {}

    def walk(node, prefix, flat=flat):
      for key, value in node.items():
        if hasattr(value, 'items'):
          walk(value, f'{prefix}{key}.')
        else:
          flat[f'{prefix}{key}'] = value

    walk(jgen.load_config(f'configs/{name}.py:smoke'), '')
    fields[name] = sorted(k for k in flat if k not in FUZZ_FIXED)
  cases = []
  for _ in range(count):
    name = rng.choice(FUZZ_CONFIGS)
    cases.append((name, rng.choice(fields[name]), rng.choice(FUZZ_VALUES)))
  return cases


def _flag(value) -> str:
  if isinstance(value, tuple):
    return '(' + ','.join(map(str, value)) + (',)' if len(value) == 1 else ')')
  return str(value)


@pytest.mark.parametrize('config, field, value', fuzz_cases(
    int(os.environ.get('JGEN_FUZZ_CASES', '4')), int(os.environ.get('JGEN_FUZZ_SEED', '0'))))
def test_fuzzed_override_starts_cleanly_or_fails_in_one_line(config, field, value, tmp_path):
  """Each draw ends in a run that trains (two steps) or in one `error:` line, never a
  traceback. JGEN_FUZZ_CASES=N draws more (the same first ones), JGEN_FUZZ_SEED=S others."""
  proc = run_jgen('--config', f'configs/{config}.py:smoke', '--workdir', str(tmp_path),
                  '--config.num_train_steps=2', f'--config.{field}={_flag(value)}',
                  check=False, timeout=600)
  if proc.returncode == 0:
    assert (tmp_path / 'results.json').exists()
    return
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
  assert lines[-1].startswith('error: '), lines[-1]
