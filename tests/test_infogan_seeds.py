"""bench/infogan_seeds.py's `--out`: a seed study kept across invocations trains each seed
once, refuses to mix studies of different configs, and goes on with a seed stopped by
`--minutes` to the row an unstopped run gives."""

import json
import os
import subprocess
import sys

import numpy as np
from conftest import ROOT, xla_flags


def _study(tmp_path, *args: str) -> subprocess.CompletedProcess:
  """The InfoGAN smoke config's seed study on the arrays in tmp_path/mnist.npz."""
  env = dict(os.environ, XLA_FLAGS=xla_flags(1), TF_CPP_MIN_LOG_LEVEL='2')
  cmd = [sys.executable, str(ROOT / 'bench' / 'infogan_seeds.py'),
         '--config=configs/infogan_mnist.py:smoke', '--config.num_train_steps=2',
         '--config.eval_batch_size=64', '--eval_every=2', '--stat_images=64',
         f'--npz={tmp_path / "mnist.npz"}', f'--out={tmp_path / "study.jsonl"}', *args]
  # A later --out overrides the first (absl keeps the last value given).
  return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_a_study_kept_in_a_file_trains_each_seed_once_and_refuses_another_config(tmp_path):
  rng = np.random.default_rng(0)
  np.savez(tmp_path / 'mnist.npz',
           train_x=rng.integers(0, 256, (128, 28, 28, 1), dtype=np.uint8),
           test_x=rng.integers(0, 256, (64, 28, 28, 1), dtype=np.uint8),
           test_y=rng.integers(0, 10, 64).astype(np.int64))
  out = tmp_path / 'study.jsonl'

  first = _study(tmp_path, '--seeds=0')
  assert first.returncode == 0, first.stderr[-3000:]
  (seed0,) = [json.loads(line) for line in out.read_text().splitlines()]
  assert seed0['seed'] == 0 and seed0['steps'] == [2]

  # Seed 0 again: nothing is trained or appended; its row is reported from the file.
  second = _study(tmp_path, '--seeds=0')
  assert second.returncode == 0, second.stderr[-3000:]
  assert out.read_text().splitlines() == [json.dumps(seed0)]
  assert '(1 seeds read from' in second.stderr
  printed = [json.loads(line) for line in second.stdout.splitlines() if line.startswith('{')]
  assert printed == [seed0]
  assert '1 seeds, 2 steps' in second.stdout

  # Another config's study in the same file: one line naming the fix, nothing appended.
  before = out.read_text()
  third = _study(tmp_path, '--seeds=2', '--config.gan.real_balance_weight=2.0')
  assert third.returncode != 0
  assert 'holds seeds of another config' in third.stderr
  assert 'give another --out' in third.stderr
  assert out.read_text() == before


def test_a_seed_stopped_by_minutes_goes_on_to_the_row_of_an_unstopped_run(tmp_path):
  """--minutes=0 stops seed 0 at its first evaluation (step 2 of 4), keeping its state; the
  next invocation goes on from there and appends the row an uninterrupted study appends
  (every evaluation, bit for bit; only the seconds differ)."""
  rng = np.random.default_rng(1)
  # 80 training images: step 3 draws a new order (the shuffle's state is carried over too).
  np.savez(tmp_path / 'mnist.npz',
           train_x=rng.integers(0, 256, (80, 28, 28, 1), dtype=np.uint8),
           test_x=rng.integers(0, 256, (64, 28, 28, 1), dtype=np.uint8),
           test_y=rng.integers(0, 10, 64).astype(np.int64))
  four = ('--seeds=0', '--config.num_train_steps=4')
  whole = _study(tmp_path, *four, f'--out={tmp_path / "whole.jsonl"}')
  assert whole.returncode == 0, whole.stderr[-3000:]
  (want,) = [json.loads(line) for line in (tmp_path / 'whole.jsonl').read_text().splitlines()]
  assert want['steps'] == [2, 4]

  out, partial = tmp_path / 'study.jsonl', tmp_path / 'study.jsonl.seed0.partial'
  stopped = _study(tmp_path, *four, '--minutes=0')
  assert stopped.returncode == 0, stopped.stderr[-3000:]
  assert 'seed 0 stopped after step 2 of 4' in stopped.stderr
  assert not out.exists() and partial.exists()

  went_on = _study(tmp_path, *four)
  assert went_on.returncode == 0, went_on.stderr[-3000:]
  assert 'seed 0 goes on from step 2' in went_on.stderr
  (got,) = [json.loads(line) for line in out.read_text().splitlines()]
  assert not partial.exists()
  assert {k: v for k, v in got.items() if k != 'seconds'} == \
      {k: v for k, v in want.items() if k != 'seconds'}


def test_minutes_without_out_is_refused(tmp_path):
  proc = subprocess.run([sys.executable, str(ROOT / 'bench' / 'infogan_seeds.py'),
                         '--config=configs/infogan_mnist.py:smoke', '--minutes=5'],
                        cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode != 0
  assert '--minutes=5 needs --out=FILE' in proc.stderr


def test_confusion_styles_read_ink_slant_and_height():
  """bench/infogan_confusion.py's styles: ink is the pixels' sum, slant the row-column
  covariance over the row variance (0 for '|', -1 for '/' leaning right, +1 for '\\'), height
  the rows' standard deviation (13 rows: sqrt((13**2 - 1) / 12))."""
  from bench import infogan_confusion
  images = np.zeros((3, 28, 28, 1), np.float32)
  rows = np.arange(8, 21)
  images[0, rows, 14] = 1.0
  images[1, rows, 28 - rows] = 0.5
  images[2, rows, rows] = 1.0
  ink, slant, height = infogan_confusion.styles(images).T
  np.testing.assert_allclose(ink, [13.0, 6.5, 13.0])
  np.testing.assert_allclose(slant, [0.0, -1.0, 1.0], atol=1e-6)
  np.testing.assert_allclose(height, np.sqrt((13 ** 2 - 1) / 12), rtol=1e-6)


def test_the_kept_studies_stay_readable():
  """The rows kept in docs/infogan_studies/ match the study key of the config their docs
  command gives (docs/infogan.md), so that command goes on with the seeds they lack; a config
  field added without an entry in ADDED_FIELDS would make the bench refuse them."""
  env = dict(os.environ, XLA_FLAGS=xla_flags(1), TF_CPP_MIN_LOG_LEVEL='2')
  out = subprocess.run(
      [sys.executable, str(ROOT / 'bench' / 'infogan_seeds.py'), '--seeds=2,3',
       '--config=configs/infogan_mnist.py:paper', '--config.gan.real_balance_weight=1.0',
       '--config.data.download=False',
       f'--out={ROOT / "docs" / "infogan_studies" / "bal1_5000.jsonl"}'],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  assert '2 seeds, 5000 steps: 1 at >= 95%, mean 0.920' in out.stdout


def test_the_default_config_is_studied_as_runs_of_restarts_read_off_its_kept_seeds():
  """The default's `gan.restarts=2`: run s is seeds s and s + 1 of the kept study of the same
  config without restarts (docs/infogan_studies/bal1_caff1_5000.jsonl, written when the
  terms were overrides of the recipe), and goes on from the one of higher training mutual
  information at step 1,000. Reading every seed from the file trains nothing; a window of
  the wrong seeds, step or direction picks other seeds than these."""
  env = dict(os.environ, XLA_FLAGS=xla_flags(1), TF_CPP_MIN_LOG_LEVEL='2')
  out = subprocess.run(
      [sys.executable, str(ROOT / 'bench' / 'infogan_seeds.py'), '--seeds=1,2,6',
       '--config.data.download=False',
       f'--out={ROOT / "docs" / "infogan_studies" / "bal1_caff1_5000.jsonl"}'],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  assert '(5 seeds read from' in out.stderr  # Seeds 1, 2, 3, 6 and 7.
  # Seed 2 (0.9389) and seed 7 (0.8971) miss 95%; each lost its pair on mutual information.
  lines = out.stdout.splitlines()
  assert '3 runs of 2 restarts chosen at step 1000 by training mutual info (6000 steps ' \
      'each): 3 at >= 95%, mean 0.977, median 0.978, min 0.976, max 0.979' in out.stdout
  picks = [line.split() for line in lines[lines.index(
      'run  restarts (mutual info)  picked  test accuracy') + 1:]]
  assert [(row[0], row[-2], row[-1]) for row in picks] == [
      ('1', '1', '0.9785'), ('2', '3', '0.9775'), ('6', '6', '0.9757')]


def test_a_config_with_restarts_trains_each_runs_restarts_once(tmp_path):
  """Runs 0 and 1 of two restarts need seeds 0, 1 and 2, each trained once as a plain seed
  (rows in --out; two worker processes, which must not take their seeds for runs again);
  each run's pick is the restart with the higher mutual information at
  `gan.restart_steps` in those rows."""
  rng = np.random.default_rng(2)
  np.savez(tmp_path / 'mnist.npz',
           train_x=rng.integers(0, 256, (128, 28, 28, 1), dtype=np.uint8),
           test_x=rng.integers(0, 256, (64, 28, 28, 1), dtype=np.uint8),
           test_y=rng.integers(0, 10, 64).astype(np.int64))
  proc = _study(tmp_path, '--seeds=0,1', '--config.num_train_steps=4', '--workers=2',
                '--config.gan.restarts=2', '--config.gan.restart_steps=2')
  assert proc.returncode == 0, proc.stderr[-3000:]
  kept = [json.loads(line) for line in (tmp_path / 'study.jsonl').read_text().splitlines()]
  assert sorted(r['seed'] for r in kept) == [0, 1, 2]
  assert all(r['steps'] == [2, 4] for r in kept)
  rows = {r['seed']: r for r in kept}
  lines = proc.stdout.splitlines()
  picks = [line.split() for line in lines[lines.index(
      'run  restarts (mutual info)  picked  test accuracy') + 1:]]
  for run, *_, picked, accuracy in picks:
    a, b = rows[int(run)], rows[int(run) + 1]
    want = a if a['train_mutual_info'][0] >= b['train_mutual_info'][0] else b
    assert (int(picked), float(accuracy)) == (want['seed'], want['code_accuracy'][-1])
  plain = _study(tmp_path, '--seeds=0,1', '--config.num_train_steps=4')
  assert plain.returncode == 0 and '(2 seeds read from' in plain.stderr  # The same study.
  refused = _study(tmp_path, '--seeds=0', '--config.num_train_steps=4',
                   '--config.gan.restarts=2', '--config.gan.restart_steps=3')
  assert refused.returncode != 0
  assert 'gan.restart_steps=3 is no evaluation step' in refused.stderr
