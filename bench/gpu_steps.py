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
import math
import os
import pathlib
import platform
import statistics
import sys
import time
import traceback

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # For configs/, jgen.

import jax
import numpy as np
from absl import app, flags

from jgen import parallel, runtime, steps
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
    'infogan_mnist': ('configs/infogan_mnist.py', (28, 28, 1)),
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


def _short_error(e: BaseException) -> str:
  text = f'{type(e).__name__}: {e}'.strip().splitlines()
  return (text[0] if text else type(e).__name__)[:300]


def _load(name: str, dtype: str, batch_size: int):
  """The config with `dtype` set, and a note; (None, reason) where that cannot be had."""
  path = str(ROOT / MODELS[name][0])
  note = ''
  try:
    config = load_config(path, {'dtype': dtype})
  except ConfigError as e:
    if 'no field' not in str(e):
      return None, f'n/a ({_short_error(e)})'
    if dtype != 'float32':
      return None, 'n/a (no dtype field)'
    config, note = load_config(path), 'no dtype field: the config as it is'
  if batch_size:
    with config.unlocked():
      config.batch_size = batch_size
  return config, note


def _count(tree) -> int:
  return int(sum(math.prod(x.shape) for x in jax.tree.leaves(tree)))


def _flops(compiled) -> float | None:
  try:
    cost = compiled.cost_analysis()
  except Exception:  # noqa: BLE001 - not every backend has it.
    return None
  if isinstance(cost, list | tuple):
    cost = cost[0] if cost else None
  value = (cost or {}).get('flops')
  return float(value) if value and value > 0 else None


class JgenVariant:
  """jgen's train step of one config: lowered here, compiled by `compile`, run by `run`."""

  def __init__(self, config, shape):
    self.task = steps.build_task(config, shape)
    mesh = parallel.make_mesh()
    self.examples = config.batch_size * self.task.batch_multiplier
    images = np.random.default_rng(0).uniform(size=(self.examples, *shape)).astype(np.float32)
    self.batch = parallel.shard_batch(mesh, {'image': images,
                                             'label': np.zeros(self.examples, np.int32)})
    host_state = self.task.init_state(jax.random.PRNGKey(0))
    self.params = _count(host_state.params if hasattr(host_state, 'params')
                         else (host_state.g_params, host_state.d_params))
    self.state = parallel.replicate(mesh, host_state)
    fn = parallel.data_parallel(lambda s, b: self.task.train_step(s, b)[0], mesh,
                                donate_argnums=(0,))
    self.lowered = fn.lower(self.state, self.batch)
    self.compiled = None
    self.flops = None
    self.compile_s = None

  def compile(self):
    start = time.perf_counter()
    self.compiled = self.lowered.compile()
    self.compile_s = time.perf_counter() - start
    self.flops = _flops(self.compiled)
    self.lowered = None
    return self

  def run(self, n: int) -> None:
    for _ in range(n):
      self.state = self.compiled(self.state, self.batch)
    jax.block_until_ready(self.state)


# --- PyTorch twins' train steps -----------------------------------------------------------


def _torch_adversarial(name: str):
  """(d_loss, g_loss) per example from logits, as jgen.losses.adversarial."""
  import torch.nn.functional as F

  sp = F.softplus
  return {
      'minimax': (lambda r, f: sp(-r) + sp(f), lambda f: -sp(f)),
      'non_saturating': (lambda r, f: sp(-r) + sp(f), lambda f: sp(-f)),
      'hinge': (lambda r, f: F.relu(1 - r) + F.relu(1 + f), lambda f: -f),
      'least_squares': (lambda r, f: 0.5 * (r - 1) ** 2 + 0.5 * f ** 2,
                        lambda f: 0.5 * (f - 1) ** 2),
      'wasserstein': (lambda r, f: f - r, lambda f: -f),
  }[name]


class TorchVariant:
  """The PyTorch twin of one config: models, optimizers, a device batch and one step."""

  def __init__(self, config, shape, device: str, dtype: str):
    import torch
    import torch_models

    self.torch = torch
    self.device = torch.device(device)
    self.sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
    self.autocast = (lambda: torch.autocast(device, dtype=torch.bfloat16)) if (
        dtype == 'bfloat16') else None
    torch.manual_seed(0)
    family = config.family
    height, width, channels = shape
    n_critic = config.gan.n_critic if family == 'gan' else 1
    self.examples = config.batch_size * n_critic
    self.real = torch.rand(self.examples, channels, height, width, device=self.device)
    if family == 'autoencoder':
      self._place(*torch_models.autoencoder(config.model, shape))
      self.opts = [self._adam(self._params(self.nets), config.optimizer)]
      self._step = self._autoencoder_step(config, shape)
    elif family == 'vae':
      self._place(*torch_models.vae(config.model, shape))
      self.opts = [self._adam(self._params(self.nets), config.optimizer)]
      self._step = self._vae_step(config)
    elif family == 'gan':
      g, d, self.latent = torch_models.gan(config.model, shape)
      self._place(g, d)
      self.opts = [self._adam(g.parameters(), config.g_optimizer),
                   self._adam(d.parameters(), config.d_optimizer)]
      self._step = self._gan_step(config)
    else:
      raise ValueError(f'no torch twin of family {family!r}')

  def _place(self, *nets):
    """Moves the networks to the device in training mode; counts their parameters; with
    --torch_compile, the steps call compiled wrappers of them (the same parameters)."""
    self.params = sum(p.numel() for p in self._params(nets))
    self.nets = [net.to(self.device).train() for net in nets]
    if _TORCH_COMPILE.value:
      self.nets = [self.torch.compile(net) for net in self.nets]

  @staticmethod
  def _params(nets):
    return [p for net in nets for p in net.parameters()]

  def _adam(self, params, opt_config):
    if opt_config.name != 'adam' or opt_config.get('grad_clip_norm', 0.0):
      raise ValueError(f'the torch twins use Adam without clipping; the config has '
                       f'{opt_config.name!r}, clip {opt_config.get("grad_clip_norm")}')
    kwargs = {'lr': opt_config.learning_rate,
              'betas': (opt_config.get('b1', 0.9), opt_config.get('b2', 0.999)),
              'eps': opt_config.get('eps', 1e-8)}
    if self.device.type == 'cuda' and _FUSED.value:
      kwargs['fused'] = True
    return self.torch.optim.Adam(params, **kwargs)

  def _cast(self):
    import contextlib

    return self.autocast() if self.autocast else contextlib.nullcontext()

  def _shift(self, x, k: int):
    """jgen.augment.random_shift: each image translated by up to k pixels, zero-filled."""
    torch = self.torch
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (k, k, k, k)).permute(0, 2, 3, 1)
    offsets = torch.randint(0, 2 * k + 1, (2, b, 1, 1), device=x.device)
    rows = offsets[0] + torch.arange(h, device=x.device)[None, :, None]
    cols = offsets[1] + torch.arange(w, device=x.device)[None, None, :]
    index = torch.arange(b, device=x.device)[:, None, None]
    return padded[index, rows, cols].permute(0, 3, 1, 2)

  def _autoencoder_step(self, config, shape):
    torch = self.torch
    F = torch.nn.functional
    enc, dec = self.nets
    opt = self.opts[0]
    shift = config.augment.max_shift
    corrupt = config.corrupt.name if config.corrupt.train else 'none'
    level = config.corrupt.level
    if corrupt not in ('none', 'masking', 'gaussian'):
      raise ValueError(f'no torch twin of corruption {corrupt!r}')
    loss_name = config.loss

    def loss_fn(logits, x):
      if loss_name == 'bce':
        per_pixel = F.binary_cross_entropy_with_logits(logits, x, reduction='none')
      elif loss_name == 'mse':
        per_pixel = (torch.sigmoid(logits) - x) ** 2
      elif loss_name == 'l1':
        per_pixel = (torch.sigmoid(logits) - x).abs()
      else:
        raise ValueError(f'no torch twin of loss {loss_name!r}')
      return per_pixel.flatten(1).sum(1).mean()

    def step():
      x = self._shift(self.real, shift) if shift else self.real
      inputs = x
      if corrupt == 'masking':
        inputs = x * (torch.rand_like(x) >= level)
      elif corrupt == 'gaussian':
        inputs = (x + level * torch.randn_like(x)).clamp(0, 1)
      with self._cast():
        logits = dec(enc(inputs))
      loss = loss_fn(logits.float(), x)
      opt.zero_grad(set_to_none=True)
      loss.backward()
      opt.step()

    return step

  def _vae_step(self, config):
    torch = self.torch
    F = torch.nn.functional
    enc, dec = self.nets
    opt = self.opts[0]
    latent_dim, beta = config.model.latent_dim, config.vae.beta
    binarize = config.vae.binarize

    def step():
      x = torch.bernoulli(self.real) if binarize else self.real
      eps = torch.randn(x.shape[0], latent_dim, device=x.device)
      with self._cast():
        h = enc(x).float()
        mean, log_var = h[:, :latent_dim], h[:, latent_dim:]
        z = mean + torch.exp(0.5 * log_var) * eps
        logits = dec(z).float()
      log_lik = (x * logits - F.softplus(logits)).flatten(1).sum(1)
      kl = 0.5 * (mean ** 2 + log_var.exp() - 1 - log_var).sum(-1)
      loss = (beta * kl - log_lik).mean()
      opt.zero_grad(set_to_none=True)
      loss.backward()
      opt.step()

    return step

  def _gan_step(self, config):
    torch = self.torch
    F = torch.nn.functional
    g, d = self.nets
    opt_g, opt_d = self.opts
    gan = config.gan
    if not gan.reuse_fakes:
      raise ValueError('the torch twins reuse the last fakes for the G update')
    d_loss_fn, g_loss_fn = _torch_adversarial(gan.loss)
    n_critic, b = gan.n_critic, config.batch_size
    penalty, weight = gan.penalty, gan.penalty_weight
    if penalty not in ('', 'gradient_penalty'):
      raise ValueError(f'no torch twin of penalty {penalty!r}')
    noise_dim, noise, categories, continuous = self.latent
    w_cat, w_code = gan.info_weight, gan.info_continuous_weight
    g_params = list(g.parameters())
    ema = [p.detach().clone() for p in g_params]
    ema_decay = gan.ema_decay
    counter = [0]
    device = self.device

    def sample_latent():
      if noise == 'uniform':
        parts = [torch.rand(b, noise_dim, device=device) * 2 - 1]
      else:
        parts = [torch.randn(b, noise_dim, device=device)]
      category = code = None
      if categories:
        category = torch.randint(0, categories, (b,), device=device)
        parts.append(F.one_hot(category, categories).float())
      if continuous:
        code = torch.rand(b, continuous, device=device) * 2 - 1
        parts.append(code)
      return torch.cat(parts, 1), category, code

    def info_loss(out, category, code):
      loss = 0.0
      if out[1] is not None:
        loss = loss + w_cat * F.cross_entropy(out[1].float(), category)
      if out[2] is not None:
        loss = loss + w_code * (0.5 * (out[2].float() - code) ** 2).sum(-1).mean()
      return loss

    def gradient_penalty(real, fake):
      mix = torch.rand(b, 1, 1, 1, device=device)
      x_hat = (mix * real + (1 - mix) * fake).requires_grad_(True)
      with self._cast():
        critic = d(x_hat)[0].float()
      (grads,) = torch.autograd.grad(critic.sum(), x_hat, create_graph=True)
      norm = torch.sqrt(grads.float().pow(2).flatten(1).sum(1) + 1e-12)
      return ((norm - 1) ** 2).mean()

    def step():
      images = (self.real * 2 - 1).view(b, n_critic, *self.real.shape[1:])
      for i in range(n_critic):
        real = images[:, i]
        last = i == n_critic - 1
        z, category, code = sample_latent()
        with torch.set_grad_enabled(last), self._cast():  # Only the last fakes train G.
          fake = g(z)
        detached = fake.detach()
        with self._cast():
          out_real, out_fake = d(real), d(detached)
        loss = d_loss_fn(out_real[0].float(), out_fake[0].float()).mean()
        if penalty:
          loss = loss + weight * gradient_penalty(real, detached)
        loss = loss + info_loss(out_fake, category, code)
        opt_d.zero_grad(set_to_none=True)
        loss.backward()
        opt_d.step()
      with self._cast():
        out = d(fake)
      g_loss = g_loss_fn(out[0].float()).mean() + info_loss(out, category, code)
      grads = torch.autograd.grad(g_loss, g_params)  # G's gradients only, as jgen's update.
      for p, grad in zip(g_params, grads, strict=True):
        p.grad = grad
      opt_g.step()
      t = counter[0]
      decay = min(ema_decay, (1.0 + t) / (10.0 + t))
      with torch.no_grad():
        torch._foreach_lerp_(ema, g_params, 1.0 - decay)
      counter[0] += 1

    return step

  def count_flops(self) -> float | None:
    try:
      from torch.utils.flop_counter import FlopCounterMode

      with FlopCounterMode(display=False) as counter:
        self._step()
      self.sync()
      return float(counter.get_total_flops()) or None
    except Exception:  # noqa: BLE001 - a count is a bonus.
      return None

  def run(self, n: int) -> None:
    for _ in range(n):
      self._step()
    self.sync()


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
      results[name] = {'error': _short_error(e)}
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
        res['error'] = _short_error(e)
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
      variants[dtype] = JgenVariant(config, MODELS[name][1])
    except Exception as e:  # noqa: BLE001 - one failing variant must not stop the others.
      row['jgen']['error'] = _short_error(e)
      traceback.print_exc()
  start = time.perf_counter()
  threads = max(1, min(_THREADS.value, len(variants), os.cpu_count() or 1))
  with concurrent.futures.ThreadPoolExecutor(threads) as pool:
    futures = {dtype: pool.submit(v.compile) for dtype, v in variants.items()}
    for dtype, future in futures.items():
      try:
        future.result()
      except Exception as e:  # noqa: BLE001
        next(r for r in rows if r['dtype'] == dtype)['jgen']['error'] = _short_error(e)
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
      twin = TorchVariant(config, MODELS[name][1], device, dtype)
      row['torch'].update(params=twin.params, examples=twin.examples)
      row['torch']['flops'] = twin.count_flops()
      timed['torch', dtype] = twin
    except Exception as e:  # noqa: BLE001
      row['torch']['error'] = _short_error(e)
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
