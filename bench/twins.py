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


def side_by_side(config):
  """A config's jgen step and its PyTorch twin on CPU, float32, from jgen's initial weights:
  (image shape, JgenStep, TorchStep)."""
  from bench import twin_weights
  from bench.__main__ import image_shape

  shape = image_shape(config)
  jgen_step = JgenStep(config, shape)
  twin = TorchStep(config, shape, 'cpu', 'float32')
  twin_weights.load(twin, config, shape, jgen_step.state)
  return shape, jgen_step, twin


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
  """The PyTorch twin of one config: models, optimizers, a device batch and one step.

  The losses are methods of explicit inputs and noise: `autoencoder_loss(inputs, target)`,
  `vae_loss(x, eps)`, `d_loss(real, fake, category, code, mix)`, `g_loss(fake, category,
  code)` (and their parts `generate`, `discriminate`, `info_loss`, `gradient_penalty`); a
  step draws its noise on the device and calls them, so tests/test_twins.py, which checks
  them against jgen's losses on jgen's weights (bench/twin_weights.py), checks what `run`
  times.
  """

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
      self._setup_average(config.optimizer)
      self._setup_autoencoder(config)
      self._step = self._autoencoder_step
    elif family == 'vae':
      self._place(*torch_models.vae(config.model, shape))
      self.opts = [self._adam(self._params(self.nets), config.optimizer)]
      self._setup_average(config.optimizer)
      self._setup_vae(config)
      self._step = self._vae_step
    elif family == 'gan':
      g, d, self.latent = torch_models.gan(config.model, shape)
      self._place(g, d)
      self.opts = [self._adam(g.parameters(), config.g_optimizer),
                   self._adam(d.parameters(), config.d_optimizer)]
      self._setup_gan(config)
      self._step = self._gan_step
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
    if opt_config.name not in ('adam', 'adamw') or opt_config.get('grad_clip_norm', 0.0):
      raise ValueError(f'the torch twins use Adam or AdamW without clipping; the config has '
                       f'{opt_config.name!r}, clip {opt_config.get("grad_clip_norm")}')
    kwargs = {'lr': opt_config.learning_rate,
              'betas': (opt_config.get('b1', 0.9), opt_config.get('b2', 0.999)),
              'eps': opt_config.get('eps', 1e-8)}
    if self.device.type == 'cuda' and self.fused_adam:
      kwargs['fused'] = True
    if opt_config.name == 'adamw':  # Decoupled, as optax's: p -= lr * weight_decay * p.
      return self.torch.optim.AdamW(params, weight_decay=opt_config.get('weight_decay', 1e-4),
                                    **kwargs)
    return self.torch.optim.Adam(params, **kwargs)

  def _setup_average(self, opt_config):
    """jgen.optim.with_average (`optimizer.ema_decay`): a copy of the parameters, moved
    towards them after every update, with the same warm-up."""
    self.ema_decay, self.averaged = opt_config.get('ema_decay', 0.0), 0
    self.own_params = self._params(self.nets)
    self.average = [p.detach().clone() for p in self.own_params] if self.ema_decay else []

  def _update_average(self):
    if self.ema_decay:
      d = min(self.ema_decay, (1.0 + self.averaged) / (10.0 + self.averaged))
      with self.torch.no_grad():
        self.torch._foreach_lerp_(self.average, self.own_params, 1.0 - d)
      self.averaged += 1

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

  # --- Autoencoders ------------------------------------------------------------------------

  def _setup_autoencoder(self, config):
    self.max_shift = config.augment.max_shift
    self.corruption = config.corrupt.name if config.corrupt.train else 'none'
    self.corruption_level = config.corrupt.level
    if self.corruption not in ('none', 'masking', 'gaussian'):
      raise ValueError(f'no torch twin of corruption {self.corruption!r}')
    self.loss_name = config.loss
    if self.loss_name not in ('bce', 'mse', 'l1'):
      raise ValueError(f'no torch twin of loss {self.loss_name!r}')

  def corrupt(self, x):
    """jgen.corrupt's training corruption of images in [0, 1], drawn here (`none`: x)."""
    torch = self.torch
    if self.corruption == 'masking':  # Each pixel kept with probability 1 - level.
      return x * (torch.rand_like(x) >= self.corruption_level)
    if self.corruption == 'gaussian':
      return (x + self.corruption_level * torch.randn_like(x)).clamp(0, 1)
    return x

  def autoencoder_loss(self, inputs, target):
    """jgen's autoencoder loss (jgen.losses.reconstruction, `config.loss`): the decoder's
    logits of `inputs` against `target` (NCHW, [0, 1]), summed per image, batch mean."""
    torch = self.torch
    F = torch.nn.functional
    enc, dec = self.nets
    with self._cast():
      logits = dec(enc(inputs))
    logits = logits.float()
    if self.loss_name == 'bce':
      per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction='none')
    elif self.loss_name == 'mse':
      per_pixel = (torch.sigmoid(logits) - target) ** 2
    else:
      per_pixel = (torch.sigmoid(logits) - target).abs()
    return per_pixel.flatten(1).sum(1).mean()

  def _autoencoder_step(self):
    x = self._shift(self.real, self.max_shift) if self.max_shift else self.real
    loss = self.autoencoder_loss(self.corrupt(x), x)
    opt = self.opts[0]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    self._update_average()

  # --- VAEs --------------------------------------------------------------------------------

  def _setup_vae(self, config):
    self.latent_dim = config.model.latent_dim
    self.beta, self.kl_warmup_steps = config.vae.beta, config.vae.kl_warmup_steps
    self.binarize = config.vae.binarize
    self.vae_steps = 0

  def kl_weight(self, step: int) -> float:
    """jgen.steps.vae.kl_weight: beta, ramped up over `kl_warmup_steps`."""
    if self.kl_warmup_steps <= 0:
      return self.beta
    return self.beta * min(1.0, (step + 1.0) / self.kl_warmup_steps)

  def vae_loss(self, x, eps, kl_weight: float | None = None):
    """jgen's VAE loss: -log p(x|z) (Bernoulli) + kl_weight (default beta) * KL(q(z|x) ||
    N(0, I)), batch mean, with z = mean + exp(log_var / 2) * eps; x NCHW, eps (B, latent)."""
    torch = self.torch
    F = torch.nn.functional
    enc, dec = self.nets
    weight = self.beta if kl_weight is None else kl_weight
    with self._cast():
      h = enc(x).float()
      mean, log_var = h[:, :self.latent_dim], h[:, self.latent_dim:]
      z = mean + torch.exp(0.5 * log_var) * eps
      logits = dec(z).float()
    log_lik = (x * logits - F.softplus(logits)).flatten(1).sum(1)
    kl = 0.5 * (mean ** 2 + log_var.exp() - 1 - log_var).sum(-1)
    return (weight * kl - log_lik).mean()

  def _vae_step(self):
    torch = self.torch
    x = torch.bernoulli(self.real) if self.binarize else self.real
    eps = torch.randn(x.shape[0], self.latent_dim, device=x.device)
    loss = self.vae_loss(x, eps, self.kl_weight(self.vae_steps))
    opt = self.opts[0]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    self._update_average()
    self.vae_steps += 1

  # --- GANs --------------------------------------------------------------------------------

  def _setup_gan(self, config):
    gan = config.gan
    if not gan.reuse_fakes:
      raise ValueError('the torch twins reuse the last fakes for the G update')
    self.d_adversarial, self.g_adversarial = _torch_adversarial(gan.loss)
    self.n_critic, self.micro_batch = gan.n_critic, config.batch_size
    self.penalty, self.penalty_weight = gan.penalty, gan.penalty_weight
    if self.penalty not in ('', 'gradient_penalty'):
      raise ValueError(f'no torch twin of penalty {self.penalty!r}')
    if gan.get('real_consistency_weight', 0.0):
      raise ValueError('no torch twin of the consistency term (gan.real_consistency_weight)')
    self.info_weights = (gan.info_weight, gan.info_continuous_weight)
    self.real_code_weights = (gan.get('real_balance_weight', 0.0),
                              gan.get('real_entropy_weight', 0.0))
    self.g_params = list(self.nets[0].parameters())
    self.ema = [p.detach().clone() for p in self.g_params]
    self.ema_decay = gan.ema_decay
    self.gan_steps = 0

  def sample_latent(self, b: int):
    """(z, category, code) as jgen.models.sample_latent draws them: noise, then InfoGAN's
    one-hot category and continuous codes on [-1, 1] (None where the model has none)."""
    torch = self.torch
    noise_dim, noise, categories, continuous, scale = self.latent
    device = self.device
    if noise == 'uniform':
      parts = [(torch.rand(b, noise_dim, device=device) * 2 - 1) * scale]
    else:
      parts = [torch.randn(b, noise_dim, device=device) * scale]
    category = code = None
    if categories:
      category = torch.randint(0, categories, (b,), device=device)
      parts.append(torch.nn.functional.one_hot(category, categories).float())
    if continuous:
      code = torch.rand(b, continuous, device=device) * 2 - 1
      parts.append(code)
    return torch.cat(parts, 1), category, code

  def generate(self, z):
    """G's images (NCHW, [-1, 1]) of latents z, in training mode."""
    with self._cast():
      return self.nets[0](z)

  def discriminate(self, x):
    """D's (logits, code_logits or None, code_mean or None) of images x, as float32."""
    with self._cast():
      out = self.nets[1](x)
    return tuple(None if o is None else o.float() for o in out)

  def info_loss(self, out, category, code):
    """InfoGAN's Q loss (jgen.steps.gan._info_loss) of D's outputs: the categorical code's
    cross-entropy, the continuous codes' unit-variance Gaussian negative log-likelihood."""
    F = self.torch.nn.functional
    w_cat, w_code = self.info_weights
    loss = 0.0
    if out[1] is not None:
      loss = loss + w_cat * F.cross_entropy(out[1], category)
    if out[2] is not None:
      loss = loss + w_code * (0.5 * (out[2] - code) ** 2).sum(-1).mean()
    return loss

  def real_code_loss(self, code_logits):
    """The weighted terms on Q's posterior of real images (jgen.steps.gan._real_code_terms):
    KL(batch mean posterior || uniform) and the mean entropy of one image's posterior."""
    torch = self.torch
    w_balance, w_entropy = self.real_code_weights
    log_p = torch.log_softmax(code_logits, -1)
    p = log_p.exp()
    mean = p.mean(0)
    balance = (mean * torch.log(mean * code_logits.shape[-1])).sum()
    entropy = -(p * log_p).sum(-1).mean()
    return w_balance * balance + w_entropy * entropy

  def gradient_penalty(self, real, fake, mix):
    """WGAN-GP's (||grad D(x_hat)|| - 1)^2, batch mean, at x_hat = mix * real + (1 - mix) *
    fake with mixing coefficients `mix` (B,), as jgen.losses.gradient_penalty."""
    torch = self.torch
    mix = mix.view(-1, *([1] * (real.dim() - 1)))
    x_hat = (mix * real + (1 - mix) * fake.detach()).requires_grad_(True)
    critic = self.discriminate(x_hat)[0]
    (grads,) = torch.autograd.grad(critic.sum(), x_hat, create_graph=True)
    norm = torch.sqrt(grads.float().pow(2).flatten(1).sum(1) + 1e-12)
    return ((norm - 1) ** 2).mean()

  def d_loss(self, real, fake, category=None, code=None, mix=None):
    """D's loss (jgen's `GANSteps.d_update`): the adversarial loss of real images and fakes
    (NCHW, [-1, 1]; the fakes detached), + penalty_weight * the gradient penalty at `mix`,
    + the Q loss of the fakes' codes, + InfoGAN's weighted terms on Q's posterior of the real
    images."""
    fake = fake.detach()
    out_real, out_fake = self.discriminate(real), self.discriminate(fake)
    loss = self.d_adversarial(out_real[0], out_fake[0]).mean()
    if self.penalty:
      loss = loss + self.penalty_weight * self.gradient_penalty(real, fake, mix)
    if out_real[1] is not None and any(self.real_code_weights):
      loss = loss + self.real_code_loss(out_real[1])
    return loss + self.info_loss(out_fake, category, code)

  def g_loss(self, fake, category=None, code=None):
    """G's loss (jgen's `GANSteps.g_update`) of its fakes through D: adversarial + Q loss."""
    out = self.discriminate(fake)
    return self.g_adversarial(out[0]).mean() + self.info_loss(out, category, code)

  def _gan_step(self):
    torch = self.torch
    b, n_critic = self.micro_batch, self.n_critic
    opt_g, opt_d = self.opts
    images = (self.real * 2 - 1).view(b, n_critic, *self.real.shape[1:])
    for i in range(n_critic):
      real = images[:, i]
      z, category, code = self.sample_latent(b)
      with torch.set_grad_enabled(i == n_critic - 1):  # Only the last fakes train G.
        fake = self.generate(z)
      mix = torch.rand(b, device=self.device) if self.penalty else None
      loss = self.d_loss(real, fake, category, code, mix)
      opt_d.zero_grad(set_to_none=True)
      loss.backward()
      opt_d.step()
    g_loss = self.g_loss(fake, category, code)
    grads = torch.autograd.grad(g_loss, self.g_params)  # G's gradients only, as jgen's update.
    for p, grad in zip(self.g_params, grads, strict=True):
      p.grad = grad
    opt_g.step()
    t = self.gan_steps
    decay = min(self.ema_decay, (1.0 + t) / (10.0 + t))
    with torch.no_grad():
      torch._foreach_lerp_(self.ema, self.g_params, 1.0 - decay)
    self.gan_steps += 1

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
