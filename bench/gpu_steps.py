r"""Train-step throughput of every jgen model family, jgen (JAX) against PyTorch, on one device.

  python3 bench/gpu_steps.py --out /tmp/gpu_steps.json          # all models, float32 + bfloat16
  python3 bench/gpu_steps.py --models ae_mnist,dcgan_mnist --dtypes bfloat16 --rounds 7
  python bench/gpu_steps.py --device cpu --steps 2 --rounds 1 --batch_size 8 \
      --dtypes float32 --models ae_mnist,gan_mnist            # a check of the script on CPU
  bash bench/gpu.sh                                             # what a GPU session runs

Each model is its real config (configs/NAME.py, loaded with jgen.load_config and the
`dtype` override): jgen's own train step (`steps.build_task(...).train_step`, compiled with
`parallel.data_parallel` as run.py compiles it, metrics dropped as on non-log steps) against
a PyTorch twin of the same layer sizes (bench/torch_models.py; parameter counts are checked
against jgen's) trained the same way: forward, loss, backward, Adam, with jgen's
augmentation, corruption, binarisation and reparameterisation noise drawn on the device; a
GAN step is `n_critic` D updates (one micro-batch of real images each, fresh fakes each) and
one G update on the last fakes (reused, as jgen's `gan.reuse_fakes`), with the gradient
penalty, InfoGAN's Q loss and the EMA generator where the config has them. Batches are
synthetic and live on the device; a GAN step consumes batch_size * n_critic real examples.

Precision. float32: jgen with dtype='float32'; torch plain float32 with TF32 matmuls and
convolutions when --tf32 (the default: JAX's default precision runs float32 products in TF32
on H100-class GPUs; --jax_precision=highest --notf32 compare true float32). bfloat16: jgen
with dtype='bfloat16' (activations and products in bf16, parameters and optimizer state
float32); torch under `torch.autocast(device, dtype=torch.bfloat16)` with float32
parameters. Until jgen's configs have the `dtype` field, bfloat16 rows say
'n/a (no dtype field)' and float32 rows run the config as it is.

Timing: model by model, jgen's steps of both dtypes are compiled (in parallel threads), the
twins built, every variant warmed up; then rounds of `--steps` steps (0: as many as take
about --round_s) run interleaved over a model's variants, each round ended by
block_until_ready / cuda synchronize; the median examples/s is reported, and jgen/torch
(above 1: jgen faster). FLOPs per step are XLA's count of jgen's compiled step
(cost_analysis; elementwise work included) and PyTorch's FlopCounterMode count of a torch
step (matmuls and convolutions only); TFLOP/s of each side are from its own count. Results
go to --out (JSON, rewritten after every model) and a markdown table beside it (.md).
"""

import concurrent.futures
import json
import os
import pathlib
import platform
import statistics
import sys
import time
import traceback

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # For configs/, jgen.

import jax
from absl import app, flags

from bench import twins
from jgen import runtime
from jgen.config import load_config
from jgen.registry import ConfigError

ROOT = pathlib.Path(__file__).resolve().parents[1]

# name: (config file, image shape). The order is the order of the run (cheap models first).
MODELS = {
    'ae_mnist': ('configs/ae_mnist.py', (28, 28, 1)),
    'dae_mnist': ('configs/dae_mnist.py', (28, 28, 1)),
    'conv_ae_mnist': ('configs/conv_ae_mnist.py', (28, 28, 1)),
    'vae_mnist': ('configs/vae_mnist.py', (28, 28, 1)),
    'conv_vae_mnist': ('configs/conv_vae_mnist.py', (28, 28, 1)),
    'gan_mnist': ('configs/gan_mnist.py', (28, 28, 1)),
    'dcgan_mnist': ('configs/dcgan_mnist.py', (28, 28, 1)),
    'infogan_mnist': ('configs/infogan_mnist.py:paper', (28, 28, 1)),  # The twin's recipe.
    'wgan_gp_mnist': ('configs/wgan_gp_mnist.py', (28, 28, 1)),
    'dcgan_cifar10': ('configs/dcgan_cifar10.py', (32, 32, 3)),
    'dcgan_celeba64': ('configs/dcgan_celeba64.py', (64, 64, 3)),
}
DTYPES = ('float32', 'bfloat16')

_MODELS = flags.DEFINE_list('models', list(MODELS), f'Models, of: {", ".join(MODELS)}.')
_DTYPES = flags.DEFINE_list('dtypes', list(DTYPES), 'float32 and/or bfloat16.')
_ROUNDS = flags.DEFINE_integer('rounds', 5, 'Timed rounds per variant (median reported).')
_STEPS = flags.DEFINE_integer('steps', 0, 'Steps per timed round; 0: about --round_s each.')
_ROUND_S = flags.DEFINE_float('round_s', 0.3, 'Target seconds per round when --steps=0.')
_DEVICE = flags.DEFINE_enum('device', '', ['', 'cuda', 'cpu'],
                            "Device of both sides; '': cuda if JAX has a GPU, else cpu.")
_OUT = flags.DEFINE_string('out', '', 'JSON results path (and .md beside it); empty: none.')
_BATCH = flags.DEFINE_integer('batch_size', 0, "Overrides configs' batch_size (0: theirs).")
_TF32 = flags.DEFINE_bool('tf32', True, 'torch float32: TF32 matmuls and convolutions.')
_JAX_PRECISION = flags.DEFINE_string(
    'jax_precision', '', "jax_default_matmul_precision ('' leaves JAX's default; 'highest': "
    'true float32 products).')
_THREADS = flags.DEFINE_integer(
    'compile_threads', 2, "Threads compiling a model's jgen steps (its dtypes) at once; 1: "
    "one at a time (no concurrent XLA autotuning on the device).")
_SIDES = flags.DEFINE_list(
    'sides', ['jgen', 'torch'], 'What to run: jgen and/or torch. One side per process keeps '
    "JAX's and PyTorch's CUDA libraries apart; --merge joins the two results.")
_MERGE = flags.DEFINE_list('merge', [], 'JSON results of separate --sides runs to join into '
                           '--out (nothing is run).')
_TORCH_COMPILE = flags.DEFINE_bool('torch_compile', False,
                                   'torch.compile the twins (slow to compile; off by default).')
_FUSED = flags.DEFINE_bool('torch_fused_adam', True, 'torch.optim.Adam(fused=True) on cuda.')
_MODEL_S = flags.DEFINE_float('model_budget_s', 30.0,
                              "A model's timed rounds stop after this many seconds.")
_BUDGET_S = flags.DEFINE_float(
    'budget_s', 200.0, 'Models not started within this many seconds are skipped; the timed '
    'rounds of each model share what is left with those to come.')


def _load(name: str, dtype: str, batch_size: int):
  """The config with `dtype` set, and a note; (None, reason) where that cannot be had."""
  path = str(ROOT / MODELS[name][0])
  note = ''
  try:
    config = load_config(path, {'dtype': dtype})
  except ConfigError as e:
    if 'no field' not in str(e):
      return None, f'n/a ({twins.short_error(e)})'
    if dtype != 'float32':
      return None, 'n/a (no dtype field)'
    config, note = load_config(path), 'no dtype field: the config as it is'
  if batch_size:
    with config.unlocked():
      config.batch_size = batch_size
  return config, note


# --- Measurement ----------------------------------------------------------------------------


def _steps_for(run, round_s: float) -> int:
  """Steps per round: --steps, or as many as take about `round_s` (from 3 timed steps)."""
  if _STEPS.value:
    return _STEPS.value
  start = time.perf_counter()
  run(3)
  per_step = max((time.perf_counter() - start) / 3, 1e-6)
  return int(min(max(round(round_s / per_step), 3), 2000))


def _measure(variants: dict, budget_s: float) -> dict:
  """Warm-up, then interleaved rounds; {name: {examples_per_s, rounds, steps, ...}}."""
  results, live = {}, {}
  for name, v in variants.items():
    try:
      start = time.perf_counter()
      v.run(2)
      results[name] = {'warmup_s': round(time.perf_counter() - start, 3)}
      results[name]['steps'] = _steps_for(v.run, _ROUND_S.value)
      results[name]['rates'] = []
      live[name] = v
    except Exception as e:  # noqa: BLE001 - one failing variant must not stop the others.
      results[name] = {'error': twins.short_error(e)}
      traceback.print_exc()
  start = time.perf_counter()
  for r in range(_ROUNDS.value):
    names = list(live)
    names = names[r % len(names):] + names[:r % len(names)] if names else names
    for name in names:
      v, res = live[name], results[name]
      if 'error' in res:
        continue
      try:
        t = time.perf_counter()
        v.run(res['steps'])
        res['rates'].append(res['steps'] * v.examples / (time.perf_counter() - t))
      except Exception as e:  # noqa: BLE001
        res['error'] = twins.short_error(e)
        traceback.print_exc()
    if time.perf_counter() - start > budget_s:
      break
  for res in results.values():
    if res.get('rates'):
      res['examples_per_s'] = statistics.median(res['rates'])
      res['rounds'] = len(res['rates'])
      res['rates'] = [round(x, 1) for x in res['rates']]
  return results


def _setup_torch(device: str) -> dict:
  try:
    import torch
  except ImportError:
    return {'error': 'torch not installed'}
  info = {'version': torch.__version__}
  torch.set_float32_matmul_precision('high' if _TF32.value else 'highest')
  torch.backends.cudnn.allow_tf32 = _TF32.value
  torch.backends.cudnn.benchmark = True
  info['float32_matmul_precision'] = torch.get_float32_matmul_precision()
  info['cudnn_allow_tf32'] = torch.backends.cudnn.allow_tf32
  try:  # PyTorch >= 2.9 reports the same settings per backend too.
    info['matmul_fp32_precision'] = torch.backends.cuda.matmul.fp32_precision
    info['conv_fp32_precision'] = torch.backends.cudnn.conv.fp32_precision
  except (AttributeError, RuntimeError):
    pass
  info['cudnn_benchmark'] = True
  info['fused_adam'] = device == 'cuda' and _FUSED.value
  info['torch_compile'] = _TORCH_COMPILE.value
  if device == 'cuda':
    if not torch.cuda.is_available():
      return {'error': f'torch {torch.__version__}: no CUDA device'}
    info['cuda'] = torch.version.cuda
    info['cudnn'] = torch.backends.cudnn.version()
    info['device'] = torch.cuda.get_device_name()
  else:
    info['threads'] = torch.get_num_threads()
  return info


def _fmt(x, digits=0):
  if x is None:
    return '-'
  return f'{x:,.{digits}f}'


def _markdown(report: dict) -> str:
  meta = report['meta']
  lines = [
      f"# jgen vs PyTorch train steps on {meta['device']}",
      '',
      f"jax {meta.get('jax', '-')} ({meta.get('jax_backend', '-')}, matmul precision "
      f"{meta.get('jax_matmul_precision', '-')}), torch {meta['torch'].get('version', '-')} "
      f"(float32 matmul precision {meta['torch'].get('float32_matmul_precision', '-')}, "
      f"cudnn TF32 {meta['torch'].get('cudnn_allow_tf32', '-')}, fused Adam "
      f"{meta['torch'].get('fused_adam', '-')}). Median examples/s over rounds; "
      'jgen/torch above 1: jgen faster. GFLOP/step: XLA\'s count of jgen\'s step (all ops) / '
      "torch's FlopCounterMode (matmuls, convolutions).",
      '',
      '| model | dtype | examples/step | jgen ex/s | torch ex/s | jgen/torch | '
      'GFLOP/step XLA / torch | jgen TFLOP/s | torch TFLOP/s | params jgen / torch | notes |',
      '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ]
  for row in report['rows']:
    j, t = row.get('jgen', {}), row.get('torch', {})
    ratio = f"{row['ratio']:.2f}" if row.get('ratio') else '-'
    notes = '; '.join(x for x in (row.get('note', ''), j.get('note', ''),
                                  'jgen: ' + j['error'] if 'error' in j else '',
                                  'torch: ' + t['error'] if 'error' in t else '') if x)
    flops = '-'
    if j.get('flops') or t.get('flops'):
      flops = (f"{_fmt(j['flops'] / 1e9, 2) if j.get('flops') else '-'} / "
               f"{_fmt(t['flops'] / 1e9, 2) if t.get('flops') else '-'}")
    lines.append(
        f"| {row['model']} | {row['dtype']} | {row.get('examples', '-')} | "
        f"{_fmt(j.get('examples_per_s'))} | {_fmt(t.get('examples_per_s'))} | {ratio} | "
        f"{flops} | {_fmt(j.get('tflops'), 2)} | {_fmt(t.get('tflops'), 2)} | "
        f"{j.get('params', '-')} / {t.get('params', '-')} | {notes.replace('|', '/')} |")
  lines += ['', f"Total {report['meta'].get('total_s', 0):.0f} s."]
  return '\n'.join(lines) + '\n'


def _write(report: dict) -> None:
  if not _OUT.value:
    return
  path = pathlib.Path(_OUT.value)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(report, indent=1) + '\n')
  path.with_suffix('.md').write_text(_markdown(report))


def _finish_row(row: dict) -> None:
  """Adds TFLOP/s, examples per step, the ratio and a parameter check to a timed row."""
  for side in ('jgen', 'torch'):
    rate, fl = row[side].get('examples_per_s'), row[side].get('flops')
    if rate and fl:
      row[side]['tflops'] = fl * rate / row[side]['examples'] / 1e12
  row['examples'] = row['jgen'].get('examples') or row['torch'].get('examples')
  j, t = row['jgen'].get('examples_per_s'), row['torch'].get('examples_per_s')
  row['ratio'] = j / t if j and t else None
  pj, pt = row['jgen'].get('params'), row['torch'].get('params')
  if pj and pt and pj != pt:
    row['note'] = 'parameter counts differ'


def _merge(paths) -> dict:
  """One report from separate --sides runs: each row's jgen and torch results from the run
  that ran them; the meta of the jgen run, with the torch run's `torch`."""
  reports = [json.loads(pathlib.Path(p).read_text()) for p in paths]
  rows, meta = {}, {}
  for report in reports:
    sides = report['meta']['flags']['sides']
    if 'jgen' in sides or not meta:
      meta = dict(report['meta']) | ({'torch': meta['torch']} if 'torch' in meta else {})
    if 'torch' in sides:
      meta['torch'] = report['meta']['torch']
    for row in report['rows']:
      merged = rows.setdefault((row['model'], row['dtype']), {
          'model': row['model'], 'dtype': row['dtype'], 'jgen': {}, 'torch': {}})
      for key in ('family', 'note'):
        if row.get(key) and key not in merged:
          merged[key] = row[key]
      for side in ('jgen', 'torch'):
        if side in sides or not merged[side]:
          merged[side] = row[side]
  for row in rows.values():
    _finish_row(row)
  meta['merged_from'] = [r['meta']['flags']['sides'] for r in reports]
  meta['total_s'] = sum(r['meta'].get('total_s', 0) for r in reports)
  return {'meta': meta, 'rows': list(rows.values())}


def _run_model(name: str, device: str, torch_info: dict, model_s: float) -> list[dict]:
  """Compiles (both dtypes in parallel threads), builds the twins, times; one row per dtype."""
  rows, variants = [], {}
  for dtype in _DTYPES.value:
    row = {'model': name, 'dtype': dtype, 'jgen': {}, 'torch': {}}
    rows.append(row)
    config, note = _load(name, dtype, _BATCH.value)
    row['config'] = config
    if note:
      row['jgen']['note'] = note
    if config is None:
      continue
    row['family'] = config.family
    if 'jgen' not in _SIDES.value:
      row['jgen'] = {'error': 'not run (--sides)'}
      continue
    try:  # Lowering traces Python: here, one at a time.
      variants[dtype] = twins.JgenStep(config, MODELS[name][1])
    except Exception as e:  # noqa: BLE001 - one failing variant must not stop the others.
      row['jgen']['error'] = twins.short_error(e)
      traceback.print_exc()
  start = time.perf_counter()
  threads = max(1, min(_THREADS.value, len(variants), os.cpu_count() or 1))
  with concurrent.futures.ThreadPoolExecutor(threads) as pool:
    futures = {dtype: pool.submit(v.compile) for dtype, v in variants.items()}
    for dtype, future in futures.items():
      try:
        future.result()
      except Exception as e:  # noqa: BLE001
        next(r for r in rows if r['dtype'] == dtype)['jgen']['error'] = twins.short_error(e)
        del variants[dtype]
  print(f'{name}: jgen steps compiled in {time.perf_counter() - start:.1f} s', flush=True)
  timed = {}
  for row in rows:
    dtype = row['dtype']
    if dtype in variants:
      v = variants[dtype]
      timed['jgen', dtype] = v
      row['jgen'].update(params=v.params, flops=v.flops, compile_s=round(v.compile_s, 1),
                         examples=v.examples)
    # The torch twin runs from the float32 config when jgen's config lacks `dtype`.
    config = row.pop('config') or _load(name, 'float32', _BATCH.value)[0]
    if 'error' in torch_info or config is None:
      row['torch']['error'] = torch_info.get('error', 'no config')
      continue
    try:
      twin = twins.TorchStep(config, MODELS[name][1], device, dtype,
                              compile_nets=_TORCH_COMPILE.value, fused_adam=_FUSED.value)
      row['torch'].update(params=twin.params, examples=twin.examples)
      row['torch']['flops'] = twin.count_flops()
      timed['torch', dtype] = twin
    except Exception as e:  # noqa: BLE001
      row['torch']['error'] = twins.short_error(e)
      traceback.print_exc()
  results = _measure(timed, model_s)
  for row in rows:
    for side in ('jgen', 'torch'):
      row[side].update(results.get((side, row['dtype']), {}))
    _finish_row(row)
    j, t = row['jgen'].get('examples_per_s'), row['torch'].get('examples_per_s')
    print(f"{name:15s} {row['dtype']:8s} jgen {_fmt(j):>10s} ex/s  torch {_fmt(t):>10s} "
          f"ex/s  jgen/torch {row['ratio'] or 0:.2f}  "
          f"{row['jgen'].get('error') or row['jgen'].get('note') or ''} "
          f"{row['torch'].get('error') or ''}".rstrip(), flush=True)
  return rows


def _torch_cuda() -> bool:
  try:
    import torch
  except ImportError:
    return False
  return torch.cuda.is_available()


def main(argv):
  del argv
  t0 = time.perf_counter()
  if _MERGE.value:
    if not _OUT.value:
      raise app.UsageError('--merge needs --out')
    report = _merge(_MERGE.value)
    _write(report)
    print(_markdown(report), flush=True)
    return
  sides = set(_SIDES.value)
  unknown = (set(_MODELS.value) - set(MODELS) or set(_DTYPES.value) - set(DTYPES)
             or sides - {'jgen', 'torch'})
  if unknown or not sides:
    raise app.UsageError(f'unknown models, dtypes or sides: {sorted(unknown)}')
  # JAX may share the GPU with PyTorch in this process: a part of its memory, not 75%.
  os.environ.setdefault('XLA_PYTHON_CLIENT_MEM_FRACTION', '0.45' if 'torch' in sides else '0.9')
  device = _DEVICE.value
  if 'jgen' not in sides:
    jax.config.update('jax_platforms', 'cpu')  # No JAX on the GPU in a torch-only process.
    device = device or ('cuda' if _torch_cuda() else 'cpu')
  elif device == 'cpu':
    jax.config.update('jax_platforms', 'cpu')
  if device == 'cpu':  # jgen's XLA:CPU flags and malloc setting (for both sides), as run.py.
    runtime.set_cpu_defaults()
  elif not device:
    try:
      device = 'cuda' if jax.devices('gpu') else 'cpu'
    except RuntimeError:
      device = 'cpu'
  if 'jgen' in sides and device == 'cuda' and jax.default_backend() != 'gpu':
    raise app.UsageError(f'--device=cuda but JAX runs on {jax.default_backend()}')
  if _JAX_PRECISION.value:
    jax.config.update('jax_default_matmul_precision', _JAX_PRECISION.value)
  torch_info = _setup_torch(device) if 'torch' in sides else {'error': 'not run (--sides)'}
  meta = {
      'torch': torch_info, 'python': platform.python_version(), 'host': platform.node(),
      'flags': {f: flags.FLAGS[f].value for f in (
          'models', 'dtypes', 'rounds', 'steps', 'round_s', 'batch_size', 'tf32',
          'jax_precision', 'compile_threads', 'torch_compile', 'torch_fused_adam',
          'model_budget_s', 'budget_s', 'sides')},
      'device_flag': device,
  }
  if 'jgen' in sides:
    dev = jax.devices()[0]
    meta |= {'device': f'{dev.device_kind} ({dev.platform})', 'jax': jax.__version__,
             'jax_backend': jax.default_backend(),
             'jax_matmul_precision': jax.config.jax_default_matmul_precision or 'default'}
  else:
    meta['device'] = torch_info.get('device', device)
  print(f"device {meta['device']}; jax {jax.__version__}; torch {torch_info}", flush=True)
  report = {'meta': meta, 'rows': []}

  for i, name in enumerate(_MODELS.value):
    elapsed = time.perf_counter() - t0
    if elapsed > _BUDGET_S.value:
      for dtype in _DTYPES.value:
        report['rows'].append({'model': name, 'dtype': dtype, 'jgen': {}, 'torch': {},
                               'note': f'skipped: over the {_BUDGET_S.value:.0f} s budget'})
      continue
    # A model's timed rounds take at most 60% of its share of what is left of the budget
    # (the rest: compiling, warming up); at least one round always runs.
    share = (_BUDGET_S.value - elapsed) / (len(_MODELS.value) - i)
    model_s = min(_MODEL_S.value, 0.6 * share)
    report['rows'] += _run_model(name, device, torch_info, model_s)
    meta['total_s'] = time.perf_counter() - t0
    _write(report)
  meta['total_s'] = time.perf_counter() - t0
  _write(report)
  print(_markdown(report), flush=True)


if __name__ == '__main__':
  app.run(main)
