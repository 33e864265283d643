r"""The benchmark suite: every model family's train step, jgen against PyTorch, on this CPU.

  pip install -e '.[bench]'
  python -m bench                                   # everything; writes docs/performance.md
  python -m bench --families ae,dcgan --rounds 5 --out /tmp/perf.md --no-memory

For each family (its MNIST config, float32, the config's batch size; the Hinton AE at batch
128, `PINNED`) it measures:

* examples/s of the full train step, jgen (`bench.twins.JgenStep`: the step run.py
  compiles) against its PyTorch twin (`bench.twins.TorchStep`: same architecture, loss
  and optimizer, starting from jgen's initial weights (bench/twin_weights.py);
  `tests/test_twins.py` checks parameter counts and losses on shared weights) in eager
  mode, and with its networks under `torch.compile` (the optimizer step stays eager). The
  three run interleaved in rounds in this one process, each round rotating who goes
  first; min, median and max over rounds, and the ratio of medians (above 1: jgen faster);
* FLOP/s: XLA's cost analysis of jgen's compiled step (every op, elementwise included) times
  its median steps/s, against this machine's matrix-product peak (bench/peak.py, measured
  at the start of the run); beside it the matrix-product FLOPs alone (PyTorch's
  FlopCounterMode count of the twin's step);
* compile time: jgen's trace + lower + XLA compile; torch.compile's first two steps less
  two eager steps;
* peak memory: each side's train step alone in a fresh process (bench/memory.py), the
  rise in peak resident memory from just before the model is built; and XLA's own
  accounting of the compiled step (arguments, outputs, temporaries).

It writes a table and a bar chart (docs/images/performance.png) into the part of --out
between the `bench:begin` and `bench:end` markers (the rest of the file is left as it
is; a new file gets the markers), and every figure to --json.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time
import traceback

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # For configs/.

# Short name: (label, config). The order of the table.
FAMILIES = {
    'ae': ('Hinton AE', 'configs/ae_mnist.py'),
    'conv_ae': ('conv AE', 'configs/conv_ae_mnist.py'),
    'dae': ('denoising AE', 'configs/dae_mnist.py'),
    'vae': ('MLP VAE', 'configs/vae_mnist.py'),
    'conv_vae': ('conv VAE', 'configs/conv_vae_mnist.py'),
    'gan': ('MLP GAN', 'configs/gan_mnist.py'),
    'dcgan': ('DCGAN', 'configs/dcgan_mnist.py'),
    'infogan': ('InfoGAN', 'configs/infogan_mnist.py:paper'),  # The twin's recipe.
    'wgan_gp': ('WGAN-GP', 'configs/wgan_gp_mnist.py'),
}
SIDES = ('jgen', 'torch', 'torch_compile')
BEGIN, END = '<!-- bench:begin -->', '<!-- bench:end -->'


# Where the suite times a family otherwise than its config's default: the Hinton AE at batch
# 128, the batch its row has always measured (its default now trains at batch 32, for fewer
# examples to its target; `--batch_size 32` times that batch size).
PINNED = {'configs/ae_mnist.py': {'batch_size': 128}}


def load_family_config(path: str, batch_size: int = 0):
  """A family's config as the suite runs it: float32, its own batch size (or PINNED's)
  unless given."""
  from jgen.config import load_config

  config = load_config(str(ROOT / path), {'dtype': 'float32', **PINNED.get(path, {})})
  if batch_size:
    with config.unlocked():
      config.batch_size = batch_size
  return config


def image_shape(config) -> tuple[int, int, int]:
  shapes = {'mnist': (28, 28, 1), 'fashion_mnist': (28, 28, 1), 'cifar10': (32, 32, 3)}
  if config.data.name not in shapes:
    raise ValueError(f'the suite knows no image shape for {config.data.name!r}')
  return shapes[config.data.name]


def _parse(argv):
  parser = argparse.ArgumentParser(prog='python -m bench', description=__doc__.splitlines()[0])
  parser.add_argument('--families', default=','.join(FAMILIES),
                      help=f'comma-separated, of: {", ".join(FAMILIES)}')
  parser.add_argument('--rounds', type=int, default=7, help='timed rounds per side')
  parser.add_argument('--round_s', type=float, default=0.6, help='seconds per timed round')
  parser.add_argument('--batch_size', type=int, default=0, help="0: each config's own")
  parser.add_argument('--compile', action=argparse.BooleanOptionalAction, default=True,
                      help='also time the twins under torch.compile')
  parser.add_argument('--memory', action=argparse.BooleanOptionalAction, default=True,
                      help='peak memory of each side in a fresh process')
  parser.add_argument('--out', default=str(ROOT / 'docs/performance.md'))
  parser.add_argument('--json', default=str(ROOT / 'docs/performance.json'))
  parser.add_argument('--chart', default=str(ROOT / 'docs/images/performance.png'))
  args = parser.parse_args(argv)
  args.families = [f.strip() for f in args.families.split(',') if f.strip()]
  unknown = sorted(set(args.families) - set(FAMILIES))
  if unknown:
    parser.error(f'unknown families {unknown}; known: {", ".join(FAMILIES)}')
  return args


def _short(e: BaseException) -> str:
  lines = f'{type(e).__name__}: {e}'.strip().splitlines()
  return (lines[0] if lines else type(e).__name__)[:200]


def _steps_per_round(run, round_s: float) -> int:
  start = time.perf_counter()
  run(2)
  return int(min(max(round(round_s * 2 / max(time.perf_counter() - start, 1e-6)), 2), 5000))


def _time_family(config, shape, args) -> dict:
  """Builds and warms the three sides, then interleaved rounds: {side: figures}."""
  from bench import twin_weights, twins

  res, live = {}, {}
  start = time.perf_counter()
  try:
    step = twins.JgenStep(config, shape).compile()
    res['jgen'] = {'compile_s': time.perf_counter() - start, 'flops': step.flops,
                   'params': step.params, 'examples': step.examples}
    live['jgen'] = step
  except Exception as e:  # noqa: BLE001 - one failing side must not stop the others.
    traceback.print_exc()
    res['jgen'] = {'error': _short(e)}
  for side in SIDES[1:]:
    if side == 'torch_compile' and not args.compile:
      continue
    try:
      twin = twins.TorchStep(config, shape, 'cpu', 'float32',
                             compile_nets=side == 'torch_compile')
      res[side] = {'params': twin.params, 'examples': twin.examples}
      if 'jgen' in live:  # The same initialisation: jgen's initial weights, before any step.
        twin_weights.load(twin, config, shape, live['jgen'].state)
      if side == 'torch':
        res[side]['flops'] = twin.count_flops()
      t = time.perf_counter()
      twin.run(2)  # Warm-up; under torch.compile, compiles.
      res[side]['first_steps_s'] = time.perf_counter() - t
      live[side] = twin
    except Exception as e:  # noqa: BLE001
      traceback.print_exc()
      res[side] = {'error': _short(e)}
  for side, v in live.items():
    if side == 'jgen':
      v.run(2)
    res[side]['steps'] = _steps_per_round(v.run, args.round_s)
    res[side]['rates'] = []
  for r in range(args.rounds):
    order = list(live)
    order = order[r % len(order):] + order[:r % len(order)]
    for side in order:
      try:
        t = time.perf_counter()
        live[side].run(res[side]['steps'])
        res[side]['rates'].append(res[side]['steps'] * live[side].examples
                                  / (time.perf_counter() - t))
      except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        res[side]['error'] = _short(e)
        del live[side]
  for r in res.values():
    if r.get('rates'):
      r['median'] = statistics.median(r['rates'])
      r['min'], r['max'] = min(r['rates']), max(r['rates'])
  if 'first_steps_s' in res.get('torch_compile', {}) and 'first_steps_s' in res['torch']:
    res['torch_compile']['compile_s'] = max(
        res['torch_compile']['first_steps_s'] - res['torch']['first_steps_s'], 0.0)
  return res


def _memory(path: str, side: str, batch_size: int) -> dict:
  cmd = [sys.executable, '-m', 'bench.memory', '--config', path, '--side', side]
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [str(ROOT), *filter(None, [os.environ.get('PYTHONPATH')])]))
  if batch_size:
    return {'error': 'not measured with --batch_size'}
  try:
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  except subprocess.TimeoutExpired:
    return {'error': 'timed out'}
  if proc.returncode:
    return {'error': (proc.stderr.strip().splitlines() or ['failed'])[-1][:200]}
  return json.loads(proc.stdout.strip().splitlines()[-1])


def _fmt(x, digits=0) -> str:
  return '-' if x is None else f'{x:,.{digits}f}'


def _rate(r: dict) -> str:
  if 'median' not in r:
    return f"n/a ({r['error'][:60]})" if 'error' in r else '-'
  return f"{_fmt(r['median'])} ({_fmt(r['min'])}-{_fmt(r['max'])})"


def _ratio(a: dict, b: dict):
  return a['median'] / b['median'] if 'median' in a and 'median' in b else None


def _markdown(report: dict, chart_rel: str | None) -> str:
  meta, peak = report['meta'], report['peak']
  lines = [
      f"Measured {meta['date']} on {meta['cpu']} ({meta['cores']} cores), jax "
      f"{meta['jax']}, torch {meta['torch']} ({meta['torch_threads']} threads), "
      f"{meta['rounds']} interleaved rounds of ~{meta['round_s']} s per side; command: "
      f"`{meta['command']}` ({meta['total_min']:.0f} min).",
      '',
      f"Matrix-product peak of this machine (float32, bench/peak.py): "
      f"**{peak['peak_gflops']:.1f} GFLOP/s** ({peak['peak_by']}x{peak['peak_by'].split()[-1]}"
      f"); by size, jax: " + ', '.join(f'{n}: {v:.1f}' for n, v in peak['jax'].items())
      + ('; torch: ' + ', '.join(f'{n}: {v:.1f}' for n, v in peak['torch'].items())
         if 'torch' in peak else '') + '.',
      '',
      '| family | config | ex/step | jgen ex/s median (min-max) | PyTorch eager | '
      'torch.compile | jgen / eager | jgen / compile | GFLOP/step XLA (matmul) | jgen GFLOP/s '
      '| % of peak | compile s jgen / torch.compile | peak (held) MB jgen / eager | XLA MB '
      '| params |',
      '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for row in report['rows']:
    j, t, c = row['jgen'], row['torch'], row.get('torch_compile', {})
    r_eager, r_compile = _ratio(j, t), _ratio(j, c)
    gflop = j.get('flops') and j['flops'] / 1e9
    matmul = t.get('flops') and t['flops'] / 1e9
    rate = gflop * j['median'] / j['examples'] if gflop and 'median' in j else None
    mem = row.get('memory', {})
    mj, mt = mem.get('jgen', {}), mem.get('torch', {})
    params = j.get('params') or t.get('params')
    if j.get('params') and t.get('params') and j['params'] != t['params']:
      params = f"{j['params']} / {t['params']} (differ)"
    lines.append(
        f"| {row['label']} | `{row['config']}` | {j.get('examples', '-')} | {_rate(j)} | "
        f"{_rate(t)} | {_rate(c)} | "
        f"{f'**{r_eager:.2f}x**' if r_eager else '-'} | "
        f"{f'{r_compile:.2f}x' if r_compile else '-'} | "
        f"{_fmt(gflop, 3)} ({_fmt(matmul, 3)}) | {_fmt(rate, 1)} | "
        f"{_fmt(rate and 100 * rate / peak['peak_gflops'], 0)}% | "
        f"{_fmt(j.get('compile_s'), 1)} / {_fmt(c.get('compile_s'), 1)} | "
        f"{_fmt(mj.get('peak_mb'))} ({_fmt(mj.get('held_mb'))}) / {_fmt(mt.get('peak_mb'))} "
        f"({_fmt(mt.get('held_mb'))}) | {_fmt(mj.get('xla_mb'), 1)} | "
        f"{params} |")
  lines.append('')
  if chart_rel:
    lines += [f'![jgen / PyTorch step speed, by family]({chart_rel})', '']
  return '\n'.join(lines)


def _chart(report: dict, path: str) -> None:
  import matplotlib

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  rows = report['rows']
  labels = [row['label'] for row in rows]
  eager = [_ratio(row['jgen'], row['torch']) or 0 for row in rows]
  compiled = [_ratio(row['jgen'], row.get('torch_compile', {})) or 0 for row in rows]
  fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.2))
  y = range(len(rows))
  ax.barh([i - 0.2 for i in y], eager, 0.4, label='jgen / PyTorch eager')
  ax.barh([i + 0.2 for i in y], compiled, 0.4, label='jgen / torch.compile')
  for i, (e, c) in enumerate(zip(eager, compiled, strict=True)):
    ax.text(e, i - 0.2, f' {e:.2f}', va='center', fontsize=8)
    if c:
      ax.text(c, i + 0.2, f' {c:.2f}', va='center', fontsize=8)
  ax.axvline(1.0, color='k', lw=0.8)
  ax.set_yticks(list(y), labels)
  ax.invert_yaxis()
  ax.set_xlabel('train-step speed ratio (median examples/s; above 1: jgen faster)')
  ax.legend(loc='lower right', fontsize=8)
  ax.set_title(f"{report['meta']['cpu']}, {report['meta']['cores']} cores", fontsize=9)
  fig.tight_layout()
  pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=110)
  plt.close(fig)


def _write(report: dict, args) -> None:
  pathlib.Path(args.json).parent.mkdir(parents=True, exist_ok=True)
  pathlib.Path(args.json).write_text(json.dumps(report, indent=1) + '\n')
  chart_rel = None
  if args.chart:
    _chart(report, args.chart)
    chart_rel = os.path.relpath(args.chart, pathlib.Path(args.out).resolve().parent)
  section = f'{BEGIN}\n{_markdown(report, chart_rel)}{END}'
  out = pathlib.Path(args.out)
  text = out.read_text() if out.exists() else ''
  if BEGIN in text and END in text:
    text = text[:text.index(BEGIN)] + section + text[text.index(END) + len(END):]
  else:
    text = (text or '# Performance\n\n') + section + '\n'
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(text)


def _cpu_name() -> str:
  try:
    for line in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
      if line.startswith('model name'):
        return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def main(argv=None):
  args = _parse(argv)
  from jgen import runtime

  runtime.set_cpu_defaults()
  os.environ.setdefault('JAX_PLATFORMS', 'cpu')
  try:
    import torch
  except ImportError:
    sys.exit("python -m bench needs PyTorch: pip install -e '.[bench]'")
  import jax

  from bench import peak

  t0 = time.perf_counter()
  report = {'meta': {
      'date': datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC'),
      'cpu': _cpu_name(), 'cores': os.cpu_count(), 'jax': jax.__version__,
      'torch': torch.__version__, 'torch_threads': torch.get_num_threads(),
      'python': platform.python_version(), 'rounds': args.rounds, 'round_s': args.round_s,
      'command': ' '.join(['python -m bench', *(argv if argv is not None else sys.argv[1:])]),
  }}
  print('matrix-product peak ...', flush=True)
  report['peak'] = peak.measure()
  print(f"peak {report['peak']['peak_gflops']:.1f} GFLOP/s ({report['peak']['peak_by']})",
        flush=True)
  report['rows'] = []
  for name in args.families:
    label, path = FAMILIES[name]
    config = load_family_config(path, args.batch_size)
    row = {'family': name, 'label': label, 'config': path}
    row |= _time_family(config, image_shape(config), args)
    report['rows'].append(row)
    print(f"{label:13s} jgen {_rate(row['jgen'])}  eager {_rate(row['torch'])}  compile "
          f"{_rate(row.get('torch_compile', {}))}  jgen/eager "
          f"{_ratio(row['jgen'], row['torch']) or 0:.2f}", flush=True)
  if args.memory:
    for row in report['rows']:
      row['memory'] = {side: _memory(row['config'], side, args.batch_size)
                       for side in ('jgen', 'torch')}
      print(f"{row['label']:13s} peak MB {row['memory']}", flush=True)
  report['meta']['total_min'] = (time.perf_counter() - t0) / 60
  _write(report, args)
  print(_markdown(report, None))


if __name__ == '__main__':
  main()
