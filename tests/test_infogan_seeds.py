"""bench/infogan_seeds.py's `--out`: a seed study kept across invocations trains each seed
once, and refuses to mix studies of different configs."""

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
  third = _study(tmp_path, '--seeds=2', '--config.gan.real_balance_weight=1.0')
  assert third.returncode != 0
  assert 'holds seeds of another config' in third.stderr
  assert 'give another --out' in third.stderr
  assert out.read_text() == before
