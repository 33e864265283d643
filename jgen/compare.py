"""The autoencoder-vs-GAN comparison: many models, several seeds, one report.

`run(config, workdir)` trains every model of `config.models` once per seed under
`WORKDIR/runs/MODEL/seed_S` (a finished run is reused, an interrupted one resumes exactly),
then writes `WORKDIR/report.md` with its pictures under `WORKDIR/report/`: one table of
every metric's mean and standard deviation over seeds, sample grids side by side, metric
curves over training, and for each GAN whether its runs diverged or collapsed.

A model entry of the config names a training config and what the comparison changes in it
(besides the dataset, `config.dataset`, which every entry trains on):

  config.models.vae = dict(config='vae_mnist', steps=5000, minutes=3,
                           overrides=(('vae.importance_samples', 100),))

`minutes` estimates one run's wall-clock time on one CPU core (training and evaluation); the
longest runs start first, and the log states the total before training starts.

`config.workers` runs train at once, each in a process of its own pinned to one CPU core
(0: one per usable core on a CPU backend, one at a time in this process on an accelerator).
"""

import concurrent.futures
import ctypes
import importlib
import json
import multiprocessing
import os
import shutil
import signal
import time

import numpy as np
from absl import logging

from jgen import modes, session, train
from jgen.evaluate import images, sampling
from jgen.registry import ConfigError

# What the report's table shows, in order: (results key, column title, digits).
COLUMNS = (
    ('test_sq_err_per_image', 'recon. sq. error', 2),
    ('test_nll_k100', 'NLL (K=100)', 1),
    ('test_nll_k10', 'NLL (K=10)', 1),
    ('samples_frechet', 'Frechet', 2),
    ('samples_frechet_vs_floor', 'x floor', 1),
    ('samples_kid', 'KID', 3),
    ('samples_precision', 'precision', 2),
    ('samples_recall', 'recall', 2),
    ('samples_density', 'density', 2),
    ('samples_coverage', 'coverage', 2),
    ('samples_class_kl', 'class KL', 3),
    ('samples_classes_covered', 'classes', 1),
    ('samples_class_max_deviation', 'max class dev.', 2),
    ('samples_confidence', 'confidence', 3),
    ('probe_code_linear', 'probe (code)', 3),
    ('probe_discriminator_linear', 'probe (D)', 3),
    ('probe_code_knn', 'k-NN (code)', 3),
    ('probe_discriminator_knn', 'k-NN (D)', 3),
    ('test_code_accuracy', 'InfoGAN code acc.', 3),
    ('train_seconds', 'train s', 0),
    ('train_examples_per_sec', 'examples/s', 0),
)
# The README's shorter table (`publish`): the report's table without KID, density and the rest.
README_COLUMNS = ('test_sq_err_per_image', 'test_nll_k100', 'test_nll_k10',
                  'samples_frechet_vs_floor', 'samples_precision', 'samples_recall',
                  'samples_coverage', 'samples_classes_covered', 'probe_code_linear',
                  'probe_discriminator_linear', 'train_seconds')
FLOOR_COLUMNS = ('frechet', 'kid', 'precision', 'recall', 'density', 'coverage', 'class_kl',
                 'classes_covered', 'class_max_deviation', 'confidence')


def model_config(compare, entry, seed: int):
  """The training config of a comparison entry for one seed: the entry's config with its
  budget, the comparison's sample and probe counts, and a smaller `curve` sample evaluation at
  `compare.curve_points` points of training."""
  module = importlib.import_module(f'configs.{entry.config}')
  config = module.get_config(compare.variant or None)
  steps = config.num_train_steps if compare.variant else entry.steps
  with config.unlocked():
    config.seed = seed
    config.num_train_steps = steps
    config.evals.samples.num_samples = compare.num_samples
    config.evals.samples.every_steps = config.evals.probe.every_steps = 0  # Off in :smoke.
    config.evals.probe.num_train = config.evals.probe.num_test = compare.probe_examples
    config.evals.curve = dict(config.evals.samples) | {
        'num_samples': compare.curve_samples,
        'every_steps': max(1, -(-steps // compare.curve_points))}  # The last lands at the end.
    config.data.name = compare.dataset  # The same architectures on the comparison's data.
    config.data.download = compare.data.download
    for key, value in entry.overrides:
      node = config
      *path, last = key.split('.')
      for part in path:
        node = node[part]
      node[last] = value
  return config


def _finished(workdir: str, steps: int) -> dict | None:
  path = os.path.join(workdir, 'results.json')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    results = json.load(f)
  return results if results.get('num_train_steps') == steps else None


def _train_one(name: str, config, workdir: str) -> dict:
  """Trains (or resumes) one run; a run that diverges is recorded, not raised."""
  logging.info('Training %s in %s', name, workdir)
  try:
    return train.train_and_evaluate(config, workdir)
  except train.NonFiniteLossError as e:
    results = {'diverged': str(e), 'num_train_steps': config.num_train_steps}
    modes.write_json(os.path.join(workdir, 'results.json'), results)
    return results


def workers(config, num_jobs: int) -> int:
  """How many runs train at once: `config.workers`, or for 0 one per usable CPU core when
  JAX runs on CPU in one process (on an accelerator, runs share it one at a time)."""
  import jax

  if config.workers:
    return max(1, min(config.workers, num_jobs))
  if jax.default_backend() != 'cpu' or jax.process_count() > 1:
    return 1
  return max(1, min(len(os.sched_getaffinity(0)), num_jobs))


def _start_worker(cores) -> None:
  """Pins a worker process to a CPU core of its own, ends it with its parent (a killed
  comparison leaves no run training on in its workdir), and logs as `run.py` does."""
  try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux).
  except (AttributeError, OSError):
    pass
  if os.getppid() == 1:  # The parent died before the line above.
    os._exit(1)
  os.sched_setaffinity(0, {cores.get()})
  logging.use_absl_handler()
  logging.set_verbosity(logging.INFO)
  logging.get_absl_handler().addFilter(train.QuietLibraries())


def _train_all(jobs: list[tuple[str, object, str]], minutes: list[float],
               num_workers: int) -> list[dict]:
  """`_train_one` of every (name, config, workdir) job, `num_workers` at a time, the longest
  (by its estimated `minutes`) first; results in the jobs' order. Finished runs are reused,
  without starting a worker."""
  results = [_finished(wd, c.num_train_steps) for _, c, wd in jobs]
  for (name, _, wd), r in zip(jobs, results, strict=True):
    if r is not None:
      logging.info('Reusing %s (%s)', name, wd)
  todo = sorted((i for i, r in enumerate(results) if r is None), key=lambda i: -minutes[i])
  if todo and any(minutes):
    logging.info('%d runs to train, about %.0f minutes of one CPU core (%d at a time)',
                 len(todo), sum(minutes[i] for i in todo), min(num_workers, len(todo)))
  if num_workers <= 1 or len(todo) <= 1:
    for i in todo:
      results[i] = _train_one(*jobs[i])
    return results
  context = multiprocessing.get_context('spawn')  # A fresh JAX in every worker.
  cores = context.Queue()
  usable = sorted(os.sched_getaffinity(0))
  for k in range(num_workers):
    cores.put(usable[k % len(usable)])
  with concurrent.futures.ProcessPoolExecutor(num_workers, mp_context=context,
                                              initializer=_start_worker,
                                              initargs=(cores,)) as pool:
    futures = {pool.submit(_train_one, *jobs[i]): i for i in todo}
    for future in concurrent.futures.as_completed(futures):
      results[futures[future]] = future.result()
  return results


def _sample_grid(name: str, config, workdir: str, out_dir: str) -> str | None:
  """64 samples of the run, drawn as its `samples` evaluator draws them, as a PNG grid."""
  task, _ = session.build_task(config)
  if task.sample_inputs is None and task.encode_step is None:
    return None
  target = os.path.join(out_dir, f'samples_{name}.png')
  if not os.path.exists(target):
    s, state, _ = session.restore_latest(config, workdir)
    options = config.evals.samples
    samples = sampling.draw(s, state, 64, sampler=sampling.check_sampler(
        task, options.sampler, config.family), seed=options.seed,
                            num_components=options.num_components,
                            fit_examples=options.fit_examples)
    images.save_png(images.grid(samples, 8), target)
  return target


def _summary(values: list[float]) -> tuple[float, float, int]:
  finite = [v for v in values if v is not None and np.isfinite(v)]
  if not finite:
    return float('nan'), float('nan'), 0
  return float(np.mean(finite)), float(np.std(finite)), len(finite)


def collapsed(results: dict) -> bool:
  """A run collapsed when its samples miss a class (below 10% of its test share) or
  reach under a fifth of the test set's images (recall < 0.2)."""
  return (results.get('samples_classes_covered', 10) < 10
          or results.get('samples_recall', 1.0) < 0.2)


def table(per_model: dict[str, list[dict]], keys: tuple[str, ...] | None = None) -> str:
  """The markdown table: mean +- std over seeds of every column (of `keys`, default all)
  that some model has."""
  columns = [c for c in COLUMNS if (keys is None or c[0] in keys)
             and any(c[0] in r for rs in per_model.values() for r in rs)]
  lines = ['| model | seeds | ' + ' | '.join(title for _, title, _ in columns) + ' |',
           '|---|---|' + '---|' * len(columns)]
  for name, runs in per_model.items():
    cells = []
    for key, _, digits in columns:
      mean, std, n = _summary([r.get(key) for r in runs])
      cells.append('' if n == 0 else f'{mean:.{digits}f} ± {std:.{digits}f}')
    finished = sum('diverged' not in r for r in runs)
    lines.append(f'| {name} | {finished}/{len(runs)} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def floor_table(per_model: dict[str, list[dict]]) -> str:
  """The real-vs-real floor of each sample metric (training against test images)."""
  for runs in per_model.values():
    for r in runs:
      if 'samples_floor_frechet' in r:
        return '\n'.join([
            '| floor | ' + ' | '.join(FLOOR_COLUMNS) + ' |', '|---|' + '---|' * len(FLOOR_COLUMNS),
            '| real training vs test images | ' + ' | '.join(
                f'{r["samples_floor_" + k]:.3g}' for k in FLOOR_COLUMNS) + ' |'])
  return ''


def _curves(per_model: dict[str, list[str]], out_dir: str, key: str) -> str | None:
  """A PNG of metric `key` over training steps, one line per model (mean over seeds)."""
  import matplotlib

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(7, 4))
  drawn = False
  for name, workdirs in per_model.items():
    series = {}
    for wd in workdirs:
      path = os.path.join(wd, 'metrics.jsonl')
      if not os.path.exists(path):
        continue
      with open(path) as f:
        for line in f:
          row = json.loads(line)
          if key in row:
            series.setdefault(row['step'], []).append(row[key])
    if series:
      steps = sorted(series)
      ax.plot(steps, [np.mean(series[s]) for s in steps], marker='o', label=name)
      drawn = True
  if not drawn:
    plt.close(fig)
    return None
  ax.set_xlabel('training step')
  ax.set_ylabel(key)
  ax.set_yscale('log')
  ax.legend(fontsize=8)
  ax.grid(alpha=0.3)
  path = os.path.join(out_dir, f'curve_{key.replace("/", "_")}.png')
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def run(config, workdir: str) -> str:
  """Trains or reuses every model and seed of `config` in `workdir`; writes the report.

  Returns the report's path.

  Raises:
    ConfigError: if a model entry names an unknown config or a bad override (checked for
      every entry before anything trains).
  """
  workdir = os.path.abspath(workdir)
  entries = dict(config.models.items())
  configs = {}
  for name, entry in entries.items():
    try:
      configs[name] = [model_config(config, entry, seed) for seed in config.seeds]
    except (ModuleNotFoundError, KeyError, AttributeError) as e:
      raise ConfigError(f'comparison entry {name!r}: {e}') from None
    for c in configs[name]:
      session.build_task(c)  # Names and options, before anything trains.
  t_start = time.time()
  workdirs = {name: [os.path.join(workdir, 'runs', name, f'seed_{s}') for s in config.seeds]
              for name in entries}
  jobs = [(name, c, wd) for name in entries
          for c, wd in zip(configs[name], workdirs[name], strict=True)]
  # The estimates hold for the full budgets, not for :smoke's 20 steps.
  minutes = [0 if config.variant else entries[name].minutes
             for name in entries for _ in config.seeds]
  done = iter(_train_all(jobs, minutes, workers(config, len(jobs))))
  results = {name: [next(done) for _ in config.seeds] for name in entries}
  out_dir = os.path.join(workdir, 'report')
  os.makedirs(out_dir, exist_ok=True)
  grids = {name: _sample_grid(name, configs[name][0], workdirs[name][0], out_dir)
           for name in entries if 'diverged' not in results[name][0]}
  curves = [c for c in (_curves(workdirs, out_dir, key) for key in config.curves) if c]
  report = _report(config, configs, results, grids, curves)
  logging.info('The comparison took %.1f minutes', (time.time() - t_start) / 60)
  path = os.path.join(workdir, 'report.md')
  _write(path, report)
  _write(os.path.join(workdir, 'results.json'), json.dumps(results, indent=2, sort_keys=True))
  logging.info('Wrote %s', path)
  return path


def _report(config, configs, results, grids, curves) -> str:
  entries = config.models
  budget = '\n'.join(
      f'| {name} | `configs/{e.config}.py` | {configs[name][0].num_train_steps} | '
      f'{configs[name][0].batch_size} | '
      + ', '.join(f'{k}={v}' for k, v in e.overrides) + ' |'
      for name, e in entries.items())
  gan_lines = []
  for name, runs in results.items():
    if any('probe_discriminator_linear' in r or 'diverged' in r for r in runs):
      diverged = sum('diverged' in r for r in runs)
      collapses = sum(collapsed(r) for r in runs if 'diverged' not in r)
      loss = configs[name][0].gan.loss + (f' + {configs[name][0].gan.penalty}'
                                          if configs[name][0].gan.penalty else '')
      gan_lines.append(f'| {name} | {loss} | {diverged}/{len(runs)} | {collapses}/{len(runs)} |')
  pictures = ' | '.join(f'![{n}](report/{os.path.basename(p)})' for n, p in grids.items() if p)
  names = ' | '.join(n for n, p in grids.items() if p)
  lines = [
      f'# {config.title}', '',
      f'Seeds {", ".join(map(str, config.seeds))}; {config.dataset}. Every sample metric is on '
      f'the features of jgen\'s {config.dataset} classifier (`jgen/evaluate/weights`), not '
      'Inception\'s: comparable between jgen runs, not with published FID/KID. '
      f'{config.num_samples} samples against as many test images; mean ± standard deviation '
      'over seeds.', '',
      table(results), '', floor_table(results), '',
      '## Budgets', '', '| model | config | steps | batch | changed |', '|---|---|---|---|---|',
      budget, '',
      '## GAN stability', '',
      'Diverged: the loss became non-finite. Collapsed: the samples miss a class (under 10% of '
      'its test share) or recall is under 0.2.', '',
      '| model | adversarial loss | diverged | collapsed |', '|---|---|---|---|',
      *gan_lines, '',
      '## Samples (first seed)', '', f'| {names} |', '|' + '---|' * len(grids), f'| {pictures} |',
      '', '## Curves', '',
      f'Each model\'s mean over seeds of the `curve` evaluation ({config.curve_samples} samples, '
      f'{config.curve_points} points of training).', '',
      *[f'![{os.path.basename(c)}](report/{os.path.basename(c)})' for c in curves], '']
  return '\n'.join(lines)


README_START = '<!-- comparison table: {name} (python -m jgen.compare {workdir}) -->'
README_END = '<!-- end of comparison table -->'


def publish(workdir: str, readme: str = 'README.md', docs: str = 'docs') -> str:
  """Copies a finished comparison into the documentation: `DOCS/NAME.md` (the report, its
  pictures under `DOCS/images/NAME/`) and the README's table between its markers (the shorter
  table, `README_COLUMNS`, and the floor), NAME being the workdir's base name.

  Returns the docs page's path.

  Raises:
    ConfigError: if the workdir holds no report or the README no markers for NAME.
  """
  workdir = os.path.normpath(workdir)
  name = os.path.basename(workdir)
  source = os.path.join(workdir, 'report.md')
  if not os.path.exists(source):
    raise ConfigError(f'no report in {workdir}: run the comparison first '
                      f'(python run.py --config configs/{name}.py --workdir {workdir})')
  start = README_START.format(name=name, workdir=workdir)
  with open(readme) as f:
    text = f.read()
  if start not in text or README_END not in text[text.find(start):]:
    raise ConfigError(f'{readme} has no table markers for {name}: add the lines '
                      f'{start!r} and {README_END!r} where the table goes')
  with open(os.path.join(workdir, 'results.json')) as f:
    results = json.load(f)
  floor = next((r for rs in results.values() for r in rs if 'samples_floor_frechet' in r), None)
  block = [start, table(results, README_COLUMNS)]
  if floor:
    f = {k: floor[f'samples_floor_{k}'] for k in FLOOR_COLUMNS}
    block += ['', f'Floor (real training vs test images): Frechet {f["frechet"]:.3g} (x floor '
              f'= 1), precision {f["precision"]:.3g}, recall {f["recall"]:.3g}, coverage '
              f'{f["coverage"]:.3g}, {f["classes_covered"]} classes.']
  head, rest = text.split(start, 1)
  text = head + '\n'.join(block) + '\n' + rest[rest.index(README_END):]
  images = os.path.join(docs, 'images', name)
  os.makedirs(images, exist_ok=True)
  for picture in sorted(os.listdir(os.path.join(workdir, 'report'))):
    shutil.copyfile(os.path.join(workdir, 'report', picture), os.path.join(images, picture))
  with open(source) as f:
    report = f.read().replace('](report/', f'](images/{name}/')
  page = os.path.join(docs, f'{name}.md')
  _write(page, f'<!-- Written by: python -m jgen.compare {workdir} (from {source}). -->\n\n'
         + report)
  _write(readme, text)
  return page


def _write(path: str, text: str) -> None:
  with open(path + '.tmp', 'w') as f:
    f.write(text)
  os.replace(path + '.tmp', path)


def main(argv: list[str] | None = None) -> None:
  import argparse

  parser = argparse.ArgumentParser(
      prog='python -m jgen.compare', description=publish.__doc__.split('\n\n')[0])
  parser.add_argument('workdir', help='a finished comparison, e.g. runs/compare_mnist')
  parser.add_argument('--readme', default='README.md')
  parser.add_argument('--docs', default='docs')
  args = parser.parse_args(argv)
  try:
    print(publish(args.workdir, args.readme, args.docs))
  except ConfigError as e:
    raise SystemExit(f'error: {e}') from None


if __name__ == '__main__':
  main()
