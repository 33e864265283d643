r"""Seed study of InfoGAN's code accuracy: one config, several seeds, in one process.

  python bench/infogan_seeds.py --seeds 0,1,2,3,4,5,6,7
  python bench/infogan_seeds.py --seeds 0,1,2,3 --config.model.leak=0.2
  python bench/infogan_seeds.py --save_npz /tmp/mnist.npz --seeds ''   # arrays for a
  python bench/infogan_seeds.py --npz /tmp/mnist.npz --seeds 0,1        # machine without TFDS

Trains `configs/infogan_mnist.py` (any `--config.*` override) from each seed with the task's
own train and eval steps, and prints one JSON line per seed (test code accuracy after every
1000 steps, and beside it two statistics read without labels on 10,000 training images: the
largest share of them one category takes, and Q's mutual information between image and
category) and a summary: how many seeds reach 95%, mean, median, and the seeds ordered by
the largest share, so that one can see whether the statistic predicts the accuracy. It
skips what run.py adds around the steps (checkpoints, images, logs) and feeds batches from a
per-seed numpy shuffle of the whole training split, so its runs are not run.py's runs of the
same seeds.
A 5000-step run is about an hour on one core of the 2-core CPU and well under a minute on a
GPU, which is where the README's 8-seed figures come from. `--workers N` trains the seeds in
N processes side by side (each with 0.9/N of an accelerator's memory), so that a GPU, which
one small InfoGAN leaves mostly idle, runs several at once:

  python bench/infogan_seeds.py --npz /tmp/mnist.npz --seeds 0,1,2,3,4,5,6,7 --workers 8

`--out FILE` keeps the study across invocations: each seed's row is appended to FILE (JSON
lines) when the seed ends, and a later invocation with the same config trains only the
seeds FILE does not hold yet, then reports on all of them. An unfinished seed keeps its
state at every evaluation (FILE.seed<N>.partial), and the next invocation goes on from it,
to the row (and end state, `state_sha256`) of a seed trained in one go. `--minutes M` stops
at the first evaluation after M minutes, so a study too long for one sitting on a CPU
(about an hour per seed per core) runs over several:

  python bench/infogan_seeds.py --seeds 0,1 --workers 2 --out study.jsonl --minutes 90

A config with `gan.restarts=K` (the default's 2) is studied as run.py trains it: each seed
s of `--seeds` is a run whose K restarts are seeds s .. s + K - 1 of the same config without
restarts, and the run goes on from the restart with the highest mutual information on the
training images at step `gan.restart_steps`. The seeds are trained (or read from `--out`)
as plain runs, the choice is read off their rows at that step, and the summary gives each
run's restarts, statistics, choice and final test accuracy, then how many runs reach 95%,
mean, median and min. The kept rows of a plain seed serve every run that has it as a
restart, and a config with restarts shares its rows with the same config without them.

Label-free selection among restarts is read off the same runs: `--restarts K --select_at S`
groups the seeds K at a time (in the order given, and also every K-subset) and picks in each
group the seed whose mutual information on the training images was highest at step S (an
evaluation step), as a run would that trains K restarts for S steps and continues the best;
it prints the picked seeds' final test accuracy and how many reach 95%. No label is read
for the choice.
"""

import hashlib
import itertools
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # For configs/.

import jax
import numpy as np
from absl import app, flags
from flax import serialization
from ml_collections import config_flags

from jgen import parallel, runtime, session, steps
from jgen.evaluate import evaluate

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/infogan_mnist.py')
_SEEDS = flags.DEFINE_list('seeds', ['0', '1', '2', '3'], 'Seeds to train, one run each.')
_EVERY = flags.DEFINE_integer('eval_every', 1000, 'Steps between test evaluations.')
_NPZ = flags.DEFINE_string('npz', '', 'Read MNIST from this .npz (train_x, test_x, test_y) '
                           'instead of TFDS.')
_SAVE_NPZ = flags.DEFINE_string('save_npz', '', 'Write the arrays read from TFDS here.')
_STAT_IMAGES = flags.DEFINE_integer('stat_images', 10_000, 'Training images the label-free '
                                    'statistics are read on.')
_RESTARTS = flags.DEFINE_integer('restarts', 0, 'Also report label-free selection among this '
                                 'many restarts (0: no report).')
_SELECT_AT = flags.DEFINE_integer('select_at', 1000, 'The evaluation step whose training-image '
                                  'mutual information chooses among restarts.')
_WORKERS = flags.DEFINE_integer('workers', 1, 'Processes that train the seeds side by side, '
                                'each with its share of the seeds (and, on a GPU, of its '
                                'memory); 1: every seed in this process.')
_OUT = flags.DEFINE_string('out', '', 'Append each seed\'s row to this JSON-lines file as it '
                           'ends, and train only the seeds it does not hold yet.')
_MINUTES = flags.DEFINE_float('minutes', -1, 'With --out: stop at the first evaluation after '
                              'this many minutes, keeping the unfinished seeds\' states for '
                              'the next invocation (negative: no limit).')


def _arrays(config) -> dict[str, np.ndarray]:
  if _NPZ.value:
    with np.load(_NPZ.value) as f:
      return dict(f)
  from jgen import data  # TFDS: only where the arrays come from TFDS.
  source = data.load(config.data.name, config.data.data_dir or None,
                     download=config.data.download)
  out = {}
  for split, key in ((config.data.train_split, 'train'), (config.data.test_split, 'test')):
    x, y = source.arrays(split)
    out[f'{key}_x'], out[f'{key}_y'] = np.array(x), np.array(y)
  if _SAVE_NPZ.value:
    np.savez_compressed(_SAVE_NPZ.value, **out)
  return out


def partial_path(seed: int) -> str:
  """Where an unfinished seed of the study in --out keeps its state between invocations."""
  return f'{_OUT.value}.seed{seed}.partial'


def _save_partial(path: str, state, key: str, progress: dict, order, rng) -> None:
  """Everything `_train` needs to go on from this step, written to a new file and then
  renamed over `path` (a kill never leaves half of it)."""
  meta = dict(progress, study=key, rng=rng.bit_generator.state)
  with open(path + '.tmp', 'wb') as f:
    np.savez(f, state=np.frombuffer(serialization.to_bytes(jax.device_get(state)), np.uint8),
             order=order, meta=np.array(json.dumps(meta)))
  os.replace(path + '.tmp', path)


def _load_partial(path: str, key: str, target) -> tuple:
  """(state, progress, order, rng) saved by `_save_partial`, or None if `path` is absent."""
  if not os.path.exists(path):
    return None
  with np.load(path) as f:
    meta = json.loads(str(f['meta']))
    if meta.pop('study') != key:
      raise app.UsageError(f'{path} is an unfinished seed of another config; give another '
                           '--out or remove that file')
    state = serialization.from_bytes(target, f['state'].tobytes())
    order = f['order']
  rng = np.random.default_rng()
  rng.bit_generator.state = meta.pop('rng')
  return state, meta, order, rng


def _train(task, config, arrays, seed: int, mesh, key: str = '', deadline: float = 0) -> dict:
  """One seed's run and its row, or None if it stopped at `deadline` (a time.time(); 0:
  none). With --out, the seed's state is saved at every evaluation but the last, and a
  saved state is gone on from: a stopped or killed seed loses at most --eval_every steps."""
  step_fn = parallel.data_parallel(lambda s, b: task.train_step(s, b)[0], mesh,
                                   donate_argnums=(0,))
  eval_fn = parallel.data_parallel(task.eval_step, mesh)
  train_x, test_x, test_y = arrays['train_x'], arrays['test_x'], arrays['test_y']
  n, b, e = len(train_x), config.batch_size, config.eval_batch_size
  def batches(x, y):
    return [{'image': x[i:i + e].astype(np.float32) / 255.0, 'label': y[i:i + e].astype(np.int32),
             'mask': np.ones(len(x[i:i + e]), np.float32)} for i in range(0, len(x), e)]

  test = batches(test_x, test_y)
  # The label-free statistics are read on training images (their labels are not passed).
  unlabelled = batches(train_x[:_STAT_IMAGES.value], np.zeros(_STAT_IMAGES.value, np.int32))
  start = time.time()
  state = task.init_state(jax.random.PRNGKey(seed))
  progress = {'step': 0, 'pos': 0, 'seconds': 0.0, 'steps': [], 'code_accuracy': [],
              'train_max_share': [], 'train_mutual_info': []}
  saved = _load_partial(partial_path(seed), key, state) if _OUT.value else None
  if saved:
    state, progress, order, rng = saved
    print(f'(seed {seed} goes on from step {progress["step"]})', file=sys.stderr, flush=True)
  else:
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
  state = parallel.replicate(mesh, state)
  pos, seconds = progress['pos'], progress['seconds']
  evaluated, accuracy = progress['steps'], progress['code_accuracy']
  max_share, mutual_info = progress['train_max_share'], progress['train_mutual_info']
  for step in range(progress['step'] + 1, config.num_train_steps + 1):
    if pos + b > n:
      order, pos = rng.permutation(n), 0
    rows, pos = order[pos:pos + b], pos + b
    state = step_fn(state, parallel.shard_batch(mesh, {
        'image': train_x[rows].astype(np.float32) / 255.0, 'label': np.zeros(b, np.int32)}))
    if step % _EVERY.value == 0 or step == config.num_train_steps:
      evaluated.append(step)
      accuracy.append(round(evaluate(eval_fn, state, test, mesh, task.summarize)[
          'code_accuracy'], 4))
      stats = evaluate(eval_fn, state, unlabelled, mesh, task.summarize)
      max_share.append(round(stats['code_max_share'], 4))
      mutual_info.append(round(stats['code_mutual_info'], 4))
      if _OUT.value and step < config.num_train_steps:  # A kill after this loses no more.
        progress.update(step=step, pos=pos, seconds=seconds + time.time() - start)
        _save_partial(partial_path(seed), state, key, progress, order, rng)
      if deadline and time.time() >= deadline and step < config.num_train_steps:
        print(f'(seed {seed} stopped after step {step} of {config.num_train_steps}; the same '
              'command goes on from there)', file=sys.stderr, flush=True)
        return None
  return {'seed': seed, 'steps': evaluated, 'code_accuracy': accuracy,
          'train_max_share': max_share, 'train_mutual_info': mutual_info,
          'seconds': round(seconds + time.time() - start, 1), 'backend': jax.default_backend(),
          # The end state's digest: a seed that went on from a saved state ends where one
          # trained in one go does (bit for bit on the same machine).
          'state_sha256': hashlib.sha256(
              serialization.to_bytes(jax.device_get(state))).hexdigest()[:16]}


# Config fields added after studies were kept (docs/infogan_studies/), with the value that
# does what the config did before them: at that value they stay out of the study key, so
# the rows kept before still match.
ADDED_FIELDS = {('gan', 'real_consistency_transform'): 'shift'}


def study_key(config) -> str:
  """What makes two seeds' rows comparable: the config (less whether TFDS may download and
  its restarts, and ADDED_FIELDS at their old behaviour) and how the study evaluates."""
  fields = config.to_dict()
  fields['data'].pop('download', None)
  # The seeds are plain runs; restarts are chosen among them afterwards (`restart_runs`).
  fields['gan'].update(restarts=0, restart_steps=session.RESTART_STEPS)
  for (group, name), old in ADDED_FIELDS.items():
    if fields[group].get(name) == old:
      del fields[group][name]
  text = json.dumps({'config': fields, 'eval_every': _EVERY.value,
                     'stat_images': _STAT_IMAGES.value}, sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_rows(path: str, key: str) -> list[dict]:
  """The rows `path` holds (none if it does not exist), all of this study's `key`.

  Raises:
    app.UsageError: if a row in `path` is of another study, or not a row at all.
  """
  if not os.path.exists(path):
    return []
  rows = []
  with open(path) as f:
    for number, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        row = json.loads(line)
      except json.JSONDecodeError:
        raise app.UsageError(f'--out={path}: line {number} is not a JSON row; give another '
                             '--out or remove that line') from None
      if row.get('study') != key:
        raise app.UsageError(f'--out={path} holds seeds of another config, --eval_every or '
                             f'--stat_images (study {row.get("study")}, this one {key}); give '
                             'another --out')
      rows.append(row)
  return rows


def append_row(path: str, row: dict) -> None:
  """Appends `row` to `path` as one line in one write, so that workers appending side by
  side, or a kill, never leave half a row."""
  fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
  try:
    os.write(fd, (json.dumps(row) + '\n').encode())
  finally:
    os.close(fd)


def _pick(group: list[dict], select_at: int) -> dict:
  """The row of `group` with the highest training-image mutual information at evaluation
  step `select_at` (the first of equal ones, as `jgen.restarts.choose` takes)."""
  return max(group, key=lambda r: r['train_mutual_info'][r['steps'].index(select_at)])


def restart_runs(rows: list[dict], runs: list[int], restarts: int,
                 select_at: int) -> list[dict]:
  """The runs of a config with `gan.restarts`, read off its plain seeds' `rows`: run s
  trains seeds s .. s + restarts - 1 to `select_at` and goes on from `_pick` of them.

  Returns:
    One dict per run: its seed, its restarts' seeds and mutual information at `select_at`,
    the picked seed and that seed's final test accuracy.
  """
  by_seed = {row['seed']: row for row in rows}
  out = []
  for run in runs:
    group = [by_seed[s] for s in range(run, run + restarts)]
    best = _pick(group, select_at)
    out.append({'seed': run, 'restarts': [r['seed'] for r in group],
                'mutual_info': [r['train_mutual_info'][r['steps'].index(select_at)]
                                for r in group],
                'picked': best['seed'], 'code_accuracy': best['code_accuracy'][-1]})
  return out


def _summary(final: list[float]) -> str:
  return (f'{sum(a >= 0.95 for a in final)} at >= 95%, mean {statistics.mean(final):.3f}, '
          f'median {statistics.median(final):.3f}, min {min(final):.3f}, '
          f'max {max(final):.3f}')


def selection(rows: list[dict], restarts: int, select_at: int) -> tuple[list[tuple], list]:
  """Label-free selection among `restarts` runs: in each group of seeds, the seed with the
  highest training-image mutual information at evaluation step `select_at`.

  Returns:
    (picks, accuracies): picks are (group's seeds, picked seed, its final test accuracy)
    for consecutive groups of `rows`; accuracies are the picked seed's final accuracy for
    every `restarts`-subset of `rows`.
  """
  def pick(group):
    best = _pick(group, select_at)
    return best['seed'], best['code_accuracy'][-1]

  picks = [(tuple(r['seed'] for r in rows[i:i + restarts]), *pick(rows[i:i + restarts]))
           for i in range(0, len(rows) - restarts + 1, restarts)]
  return picks, [pick(group)[1] for group in itertools.combinations(rows, restarts)]


def _own_args(argv: list[str]) -> list[str]:
  """`argv` without --seeds, --workers and --save_npz (in either `--f=v` or `--f v` form)."""
  out, skip = [], False
  for arg in argv:
    if skip:
      skip = False
    elif arg in ('--seeds', '--workers', '--save_npz'):
      skip = True
    elif not arg.startswith(('--seeds=', '--workers=', '--save_npz=')):
      out.append(arg)
  return out


def _in_workers(seeds: list[int], workers: int) -> list[dict]:
  """Trains `seeds` in `workers` child processes of this script; their rows, as they end.
  The children train plain seeds (`--config.gan.restarts=0`): `seeds` already holds every
  run's restarts, and the rows are the same study's (`study_key`)."""
  groups = [seeds[i::workers] for i in range(min(workers, len(seeds)))]
  env = dict(os.environ, XLA_PYTHON_CLIENT_MEM_FRACTION=f'{0.9 / len(groups):.3f}')
  procs = [subprocess.Popen([sys.executable, __file__, *_own_args(sys.argv[1:]),
                             '--config.gan.restarts=0',
                             '--seeds=' + ','.join(map(str, group)), '--workers=1'],
                            stdout=subprocess.PIPE, text=True, env=env) for group in groups]
  rows = []
  for proc, group in zip(procs, groups, strict=True):
    out, _ = proc.communicate()
    if proc.returncode:
      raise SystemExit(f'error: the worker for seeds {group} failed (exit {proc.returncode}); '
                       'its error is above')
    for line in out.splitlines():
      if line.startswith('{'):
        rows.append(json.loads(line))
        print(line, flush=True)
  return rows


def main(argv):
  del argv
  runtime.set_cpu_defaults()
  config = _CONFIG.value
  if config.model.name != 'infogan':
    raise app.UsageError(f'model {config.model.name!r} has no categorical code; use an InfoGAN '
                         'config (configs/infogan_mnist.py)')
  if _MINUTES.value >= 0 and not _OUT.value:
    raise app.UsageError(f'--minutes={_MINUTES.value:g} needs --out=FILE, where the unfinished '
                         'seeds are kept for the next invocation')
  if _WORKERS.value < 1:
    raise app.UsageError(f'--workers={_WORKERS.value}: give at least 1')
  seeds = [int(s) for s in _SEEDS.value]
  every = _EVERY.value
  runs, k = seeds, config.gan.restarts  # With restarts, each seed is a run of k seeds.
  if k:
    if _RESTARTS.value:
      raise app.UsageError(f'--restarts={_RESTARTS.value} reads a selection off a config '
                           f'without restarts; this one has gan.restarts={k}, whose runs '
                           'the study reports: drop --restarts')
    if config.gan.restart_steps % every:
      raise app.UsageError(f'gan.restart_steps={config.gan.restart_steps} is no evaluation '
                           f'step, so the restarts cannot be chosen; give --eval_every a '
                           'divisor of it')
    seeds = list(dict.fromkeys(s + i for s in runs for i in range(k)))
  key = study_key(config)
  done = {}  # The first row of each seed, where two invocations wrote one each.
  for row in read_rows(_OUT.value, key) if _OUT.value else []:
    if row['seed'] in seeds:
      done.setdefault(row['seed'], row)
  done = list(done.values())
  for row in done:
    print(json.dumps(row), flush=True)
  if done:
    print(f'({len(done)} seeds read from {_OUT.value})', file=sys.stderr, flush=True)
  todo = [s for s in seeds if s not in {row['seed'] for row in done}]
  if _RESTARTS.value and not (
      _SELECT_AT.value == config.num_train_steps or
      (0 < _SELECT_AT.value < config.num_train_steps and _SELECT_AT.value % every == 0)):
    raise app.UsageError(f'--select_at={_SELECT_AT.value} is no evaluation step; give a '
                         f'multiple of --eval_every={every} up to {config.num_train_steps}')
  if _RESTARTS.value and not 1 < _RESTARTS.value <= len(seeds):
    raise app.UsageError(f'--restarts={_RESTARTS.value}: give 2 to the number of seeds '
                         f'({len(seeds)})')
  if _WORKERS.value > 1 and len(todo) > 1:
    if _SAVE_NPZ.value:
      _arrays(config)  # Written once here; the workers read TFDS or --npz themselves.
    rows = done + _in_workers(todo, _WORKERS.value)  # The workers append to --out.
  elif todo or _SAVE_NPZ.value:
    arrays = _arrays(config)
    task = steps.build_task(config, arrays['train_x'].shape[1:])
    mesh = parallel.make_mesh()
    rows = done
    deadline = time.time() + 60 * _MINUTES.value if _MINUTES.value >= 0 else 0
    for seed in todo:
      if deadline and time.time() >= deadline and seed != todo[0]:
        break  # Past the time: no other seed is started.
      row = _train(task, config, arrays, seed, mesh, key, deadline)
      if row is None:
        break
      rows.append(row | {'study': key})
      if _OUT.value:
        append_row(_OUT.value, rows[-1])
        if os.path.exists(partial_path(seed)):  # Only once its row is kept.
          os.remove(partial_path(seed))
      print(json.dumps(rows[-1]), flush=True)
  else:
    rows = done
  unfinished = sorted(set(seeds) - {row['seed'] for row in rows})
  if unfinished:
    print(f'(seeds {",".join(map(str, unfinished))} unfinished after --minutes='
          f'{_MINUTES.value:g}: the same command goes on with them)', file=sys.stderr, flush=True)
  if rows:
    final = [row['code_accuracy'][-1] for row in rows]
    print(f'{len(final)} seeds, {config.num_train_steps} steps: {_summary(final)}')
    print('seed  test accuracy  train max share  train mutual info (last evaluation)')
    for row in sorted(rows, key=lambda r: r['train_max_share'][-1]):
      print(f"{row['seed']:>4}  {row['code_accuracy'][-1]:13.4f}  "
            f"{row['train_max_share'][-1]:15.4f}  {row['train_mutual_info'][-1]:17.4f}")
  if k and not unfinished:
    at = config.gan.restart_steps
    chosen = restart_runs(rows, runs, k, at)
    print(f'{len(chosen)} runs of {k} restarts chosen at step {at} by training mutual info '
          f'({k * at + config.num_train_steps - at} steps each): '
          f'{_summary([r["code_accuracy"] for r in chosen])}; neighbouring runs share a '
          f'restart: {len({r["picked"] for r in chosen})} distinct seeds picked')
    print('run  restarts (mutual info)  picked  test accuracy')
    for r in chosen:
      options = ', '.join(f'{s} ({m:.4f})' for s, m in zip(r['restarts'], r['mutual_info'],
                                                              strict=True))
      print(f"{r['seed']:>3}  {options}  {r['picked']:>6}  {r['code_accuracy']:13.4f}")
  if len(rows) >= _RESTARTS.value > 0:
    k, at = _RESTARTS.value, _SELECT_AT.value
    rows.sort(key=lambda r: seeds.index(r['seed']))
    picks, subsets = selection(rows, k, at)
    print(f'Best of {k} restarts by training mutual information at step {at} (a run of '
          f'{k * at + config.num_train_steps - at} steps):')
    for group, seed, accuracy in picks:
      print(f'  seeds {group}: picked {seed}, test accuracy {accuracy:.4f}')
    print(f'  groups above: {sum(a >= 0.95 for _, _, a in picks)} of {len(picks)} at >= 95%; '
          f'every {k}-subset: {sum(a >= 0.95 for a in subsets)} of {len(subsets)} at >= 95%, '
          f'mean {statistics.mean(subsets):.3f}, min {min(subsets):.3f}')


if __name__ == '__main__':
  app.run(main)
