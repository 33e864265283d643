"""jgen's train step of a config and its PyTorch twin's, as objects the benches time.

`JgenStep(config, shape)`: jgen's own train step (`steps.build_task(...).train_step`,
compiled with `parallel.data_parallel` as run.py compiles it, metrics dropped as on non-log
steps) on a synthetic device batch. `TorchStep(config, shape, device, dtype)`: a PyTorch twin
of the same layer sizes (bench/torch_models.py) trained the same way: forward, loss,
backward, Adam, with jgen's augmentation, corruption, binarisation and reparameterisation
noise drawn on the device; a GAN step is `n_critic` D updates (one micro-batch of real
images each, fresh fakes each) and one G update on the last fakes (reused, as jgen's
`gan.reuse_fakes`), with the gradient penalty, InfoGAN's Q loss and the EMA generator where
the config has them. Both have `run(n)` (n steps, then wait for the device), `params`,
`examples` (per step) and FLOP counts.
"""

import math
import time

import jax
import numpy as np

from jgen import parallel, steps


def short_error(e: BaseException) -> str:
  text = f'{type(e).__name__}: {e}'.strip().splitlines()
  return (text[0] if text else type(e).__name__)[:300]


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


class JgenStep:
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


class TorchStep:
  """The PyTorch twin of one config: models, optimizers, a device batch and one step."""

  def __init__(self, config, shape, device: str, dtype: str, *, compile_nets: bool = False,
               fused_adam: bool = True):
    import torch

    from bench import torch_models

    self.torch = torch
    self.compile_nets, self.fused_adam = compile_nets, fused_adam
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
    if self.compile_nets:
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
    if self.device.type == 'cuda' and self.fused_adam:
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
