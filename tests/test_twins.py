"""The PyTorch twins that the benchmarks (`python -m bench`, bench/gpu_steps.py) time against
jgen's train steps compute what jgen computes: for every config family they time, the twin
(bench/twins.py TorchStep, its networks from bench/torch_models.py) has jgen's parameter
count, and on jgen's weights (copied by bench/twin_weights.py), the same batch and the same
noise, jgen's loss.

The jgen side is jgen's own code: its models (`models.build_model` of the config) with its
registered reconstruction loss, the VAE's ELBO terms, and a GAN's `GANSteps.make_fakes`,
`d_update` and `g_update` (their `d_loss`, `g_loss`, `d_penalty` metrics). The torch side is
the loss methods a twin's step calls (`autoencoder_loss`, `vae_loss`, `generate`, `d_loss`,
`g_loss`, `gradient_penalty`). The weights are random (not jgen's initialisation, whose
biases and norm offsets are 0): every bias, norm scale and offset and batch-norm statistic
differs, so one copied to the wrong place shows. All in float32, on CPU, at batch 8 of the
real configs (not `:smoke`, which may shrink layers).
"""

import dataclasses
import pathlib
import sys

import flax.linen as nn
import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

# Triton (GPU kernels, which the CPU twins do not use) loads its own LLVM, which crashed this
# process with jaxlib's loaded (a segfault importing it, torch 2.14): torch then runs without.
sys.modules.setdefault('triton', None)
torch = pytest.importorskip('torch')

from bench import twin_weights, twins  # noqa: E402  (torch first: the bench needs it.)
from jgen import corrupt, losses, models, parallel, steps  # noqa: E402
from jgen.config import load_config  # noqa: E402
from jgen.losses import variational  # noqa: E402
from jgen.state import GANState, TrainState  # noqa: E402
from jgen.steps import gan  # noqa: E402
from jgen.steps import vae as vae_steps  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHAPE = (28, 28, 1)
BATCH = 8
CONFIGS = ('ae_mnist', 'dae_mnist', 'conv_ae_mnist', 'vae_mnist', 'conv_vae_mnist',
           'gan_mnist', 'dcgan_mnist', 'infogan_mnist', 'wgan_gp_mnist')
# Losses are sums over 784 pixels (or of critic values) that XLA and PyTorch add in other
# orders: float32 rounding moves them by about 1e-6; a wrong layout by percents.
RTOL = 1e-4


# The twins implement the published recipes: InfoGAN's default adds a consistency term and
# restarts that they lack (the benchmark times `:paper` too).
VARIANTS = {'infogan_mnist': ':paper'}


def _config(name: str, **overrides):
  """configs/NAME.py as the benchmark loads it (not `:smoke`), at batch 8."""
  return load_config(str(ROOT / 'configs' / f'{name}.py{VARIANTS.get(name, "")}'),
                     {'batch_size': BATCH, **overrides})


def _random(tree, rng):
  """Random values of a Flax variable tree's shapes: kernels N(0, 1 / fan_in), biases and
  norm offsets N(0, 0.1^2), norm scales 1 + N(0, 0.1^2), batch-norm means N(0, 0.1^2) and
  variances U(0.5, 1.5)."""
  def one(path, leaf):
    name, shape = path[-1].key, leaf.shape
    if name == 'kernel':
      value = rng.normal(size=shape) / np.sqrt(np.prod(shape[:-1]))
    elif name == 'scale':
      value = 1 + 0.1 * rng.normal(size=shape)
    elif name == 'var':
      value = rng.uniform(0.5, 1.5, shape)
    else:
      value = 0.1 * rng.normal(size=shape)
    return value.astype(np.float32)

  return jax.tree_util.tree_map_with_path(one, tree)


@dataclasses.dataclass
class Built:
  config: object
  task: object
  state: object  # jgen's train state, random weights (host arrays).
  twin: object  # The TorchStep, the state's weights copied in.


@pytest.fixture(scope='module')
def build():
  """Builds (once per module and config) jgen's task, a train state of random weights and
  the twin holding the same weights."""
  cache = {}

  def make(name: str, **overrides) -> Built:
    key = (name, tuple(sorted(overrides.items())))
    if key not in cache:
      config = _config(name, **overrides)
      task = steps.build_task(config, SHAPE)
      shapes = jax.eval_shape(task.init_state, jax.random.PRNGKey(0))  # Nothing compiled.
      rng, state_key = np.random.default_rng(0), jax.random.PRNGKey(1)
      if config.family == 'gan':
        variables = {'params': {'generator': _random(shapes.g_params, rng),
                                'discriminator': _random(shapes.d_params, rng)},
                     'batch_stats': {'generator': _random(shapes.g_batch_stats, rng),
                                     'discriminator': _random(shapes.d_batch_stats, rng)}}
        state = GANState.create(variables=variables, g_tx=shapes.g_tx, d_tx=shapes.d_tx,
                                rng=state_key)
      else:
        state = TrainState.create(apply_fn=shapes.apply_fn, params=_random(shapes.params, rng),
                                  tx=shapes.tx, rng=state_key)
      twin = twins.TorchStep(config, SHAPE, 'cpu', 'float32')
      twin_weights.load(twin, config, SHAPE, state)
      cache[key] = Built(config, task, state, twin)
    return cache[key]

  return make


def _images(low: float = 0.0) -> np.ndarray:
  return np.random.default_rng(1).uniform(low, 1.0, (BATCH, *SHAPE)).astype(np.float32)


def _tensor(x, dtype=np.float32) -> 'torch.Tensor':
  return torch.from_numpy(np.array(x, dtype))  # A writable copy (device_get's may not be).


def _nchw(x) -> 'torch.Tensor':
  return _tensor(np.asarray(x).transpose(0, 3, 1, 2))


def _assert_close(got, want) -> None:
  """Network outputs of the twin and of jgen: equal to float32 rounding, relative to their
  scale (a shifted pixel, a permuted channel or a wrong epsilon moves them by far more)."""
  got = got.detach().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
  want = want.numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
  np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-5 * max(np.abs(want).max(), 1.0))


def _count(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


@pytest.mark.parametrize('name', CONFIGS)
def test_twin_has_jgens_parameter_count(name, build):
  """Weights, biases and norm scales and offsets: as many in the twin as in jgen's model
  (batch-norm running statistics are not parameters on either side), and every jgen variable
  found its place in the twin (twin_weights.load refuses a state it leaves a variable of)."""
  b = build(name)
  state = b.state
  params = state.params if hasattr(state, 'params') else (state.g_params, state.d_params)
  assert b.twin.params == _count(params)


def _compile(fn, *args):
  """`fn` (jitted) compiled at XLA's lowest backend optimisation level: the same values in
  about half the compile time, most of this file's."""
  return fn.lower(*args).compile({'xla_backend_optimization_level': 0})


def _model(config):
  return models.build_model(**config.model, image_shape=SHAPE)  # As the task builds it.


@pytest.mark.parametrize('name', ['ae_mnist', 'dae_mnist', 'conv_ae_mnist'])
def test_autoencoder_loss_is_jgens(name, build):
  """On jgen's weights the twin's networks give jgen's model's logits (training mode, as the
  train step runs it), and its `autoencoder_loss(inputs, target)` is jgen's loss as
  jgen.steps.ae computes it: the config's registered reconstruction loss (BCE summed per
  image), batch mean. The DAE's inputs are the target masked by jgen.corrupt (25% of the
  pixels), and the twin's own `corrupt` hides about as many. Covers the MLP layers' flatten
  and unflatten orders, the conv encoder's SAME padding and the sub-pixel decoder's channel
  order."""
  b = build(name)
  config, params = b.config, b.state.params
  model, loss_fn = _model(config), losses.get_reconstruction_loss(config.loss)
  target = _images()
  inputs = target
  if config.corrupt.train and config.corrupt.name != 'none':
    keys = jax.random.split(jax.random.PRNGKey(2), BATCH)
    inputs = np.asarray(corrupt.corrupt(target, keys, config.corrupt.name, config.corrupt.level))
    np.testing.assert_allclose((inputs == 0).mean(), config.corrupt.level, atol=0.03)
    twin_hidden = (b.twin.corrupt(_nchw(target)) == 0).float().mean().item()
    np.testing.assert_allclose(twin_hidden, config.corrupt.level, atol=0.03)

  @jax.jit
  def jgen_loss(params, inputs, target):
    logits = model.apply({'params': params}, inputs, train=True)
    return loss_fn(logits=logits, targets=target).mean(), logits

  want, logits = _compile(jgen_loss, params, inputs, target)(params, inputs, target)
  enc, dec = b.twin.nets
  _assert_close(dec(enc(_nchw(inputs))), _nchw(logits))
  got = b.twin.autoencoder_loss(_nchw(inputs), _nchw(target)).item()
  np.testing.assert_allclose(got, want, rtol=RTOL)


@pytest.mark.parametrize('name', ['vae_mnist', 'conv_vae_mnist'])
def test_vae_loss_is_jgens(name, build):
  """On jgen's weights the twin's encoder gives jgen's q(z|x) (mean, then log-variance), its
  decoder jgen's logits of jgen's z, and its `vae_loss(x, eps)` is jgen's negative ELBO at
  the same binarised images x and reparameterisation noise eps, as jgen.steps.vae's train
  step computes it: the VAE's pass with the given eps, `log_likelihood` (Bernoulli) and
  variational.gaussian_kl weighted by `kl_weight` at step 0 (beta 1). A missing or
  misweighted KL, the mean and log-variance halves swapped or a wrong layout would show."""
  b = build(name)
  config, params = b.config, b.state.params
  model = _model(config)
  rng = np.random.default_rng(2)
  x = (_images() > rng.uniform(size=(BATCH, *SHAPE))).astype(np.float32)
  eps = rng.normal(size=(BATCH, config.model.latent_dim)).astype(np.float32)
  weight = float(vae_steps.kl_weight(0, config.vae.beta, config.vae.kl_warmup_steps))

  @jax.jit
  def jgen_loss(params, x, eps):
    out = model.apply({'params': params}, x, eps, train=True)
    log_lik = model.apply({'params': params}, out['logits'], x, method='log_likelihood')
    kl = variational.gaussian_kl(mean=out['mean'], log_var=out['log_var'])
    return (weight * kl - log_lik).mean(), out

  want, out = _compile(jgen_loss, params, x, eps)(params, x, eps)
  enc, dec = b.twin.nets
  _assert_close(enc(_nchw(x)), np.concatenate([out['mean'], out['log_var']], -1))
  _assert_close(dec(_tensor(out['z'])), _nchw(out['logits']))
  got = b.twin.vae_loss(_nchw(x), _tensor(eps), b.twin.kl_weight(0)).item()
  np.testing.assert_allclose(got, want, rtol=RTOL)


# gan_mnist's discriminator draws dropout masks from per-example keys the twin cannot share:
# the loss test runs it with dropout off, and the dropout test below checks the dropout.
GAN_CASES = {
    'gan_mnist': {'model.dropout': 0.0, 'model.input_dropout': 0.0},
    'dcgan_mnist': {},
    'infogan_mnist': {},
    'wgan_gp_mnist': {},
    # InfoGAN with the terms on Q's posterior of real images and a narrower noise.
    'infogan_mnist:real_code_terms': {'gan.real_balance_weight': 1.0,
                                      'gan.real_entropy_weight': 0.5, 'model.noise_scale': 0.3},
}


@pytest.mark.parametrize('name', sorted(GAN_CASES))
def test_gan_losses_are_jgens(name, build):
  """On jgen's weights and the latents of jgen's `make_fakes`: the twin's generator makes
  jgen's fakes and its discriminator gives jgen's outputs (logit, InfoGAN's Q) of the real
  images; the twin's `d_loss(real, fake, category, code, mix)` is `d_update`'s
  `d_loss` (the adversarial loss; InfoGAN's Q loss; WGAN-GP's penalty at the mixing
  coefficients d_update draws from the fakes' keys, weight 10, and that penalty alone is
  its `d_penalty`); `g_loss(fake, category, code)` is `g_update`'s `g_loss`, through the
  same D. Both networks in training mode: batch norm uses batch statistics on both sides.
  The twin's latent has jgen's spec (noise size and distribution, codes)."""
  b = build(name.split(':')[0], **GAN_CASES[name])
  gan_steps = b.task.train_step.__self__
  assert b.twin.latent == dataclasses.astuple(gan_steps.model.latent)
  real = _images(low=-1.0)

  def updates(state, real):
    fakes = gan_steps.make_fakes(state, real.shape[0], jax.random.PRNGKey(2))
    _, d_metrics = gan_steps.d_update(state, real, fakes)
    _, g_metrics = gan_steps.g_update(state, fakes, real)
    mix = jax.vmap(jax.random.uniform)(fakes.keys[3])  # d_update's own draw.
    metrics = jax.lax.pmean(d_metrics | g_metrics, parallel.AXIS)
    d_real, _ = gan._apply(gan_steps.model.discriminator, state.d_params, state.d_batch_stats,
                           real, train=True)  # D's outputs, as d_update sees real images.
    d_real = {k: d_real[k] for k in ('logits', 'code_logits', 'code_mean') if k in d_real}
    return metrics, (fakes.images, fakes.latent, mix, d_real)

  mesh = parallel.make_mesh()
  args = parallel.replicate(mesh, b.state), parallel.shard_batch(mesh, real)
  fn = jax.jit(jax.shard_map(updates, mesh=mesh, in_specs=(P(), P(parallel.AXIS)),
                             out_specs=(P(), P(parallel.AXIS))))
  metrics, (images, latent, mix, d_real) = jax.device_get(_compile(fn, *args)(*args))
  twin = b.twin
  fake = twin.generate(_tensor(latent['z']))
  _assert_close(fake, _nchw(images))
  for got, key in zip(twin.discriminate(_nchw(real)), ('logits', 'code_logits', 'code_mean'),
                      strict=True):
    assert (got is None) == (key not in d_real), key
    if got is not None:
      _assert_close(got, d_real[key])
  category = _tensor(latent['category'], np.int64)
  code, mix = _tensor(latent['code']), _tensor(mix)
  d_loss = twin.d_loss(_nchw(real), fake, category, code, mix).item()
  np.testing.assert_allclose(d_loss, metrics['d_loss'], rtol=RTOL)
  g_loss = twin.g_loss(fake, category, code).item()
  np.testing.assert_allclose(g_loss, metrics['g_loss'], rtol=RTOL)
  if b.config.gan.penalty:
    penalty = twin.gradient_penalty(_nchw(real), fake, mix).item()
    np.testing.assert_allclose(penalty, metrics['d_penalty'], rtol=RTOL)
    assert b.config.gan.penalty_weight * penalty > abs(metrics['d_adv'])  # It weighs.
  if b.config.model.name == 'infogan':
    assert metrics['d_info'] > 0.5 and metrics['g_info'] > 0.5  # Q's terms weigh too.


def test_mlp_discriminator_dropout_is_jgens(build):
  """gan_mnist's discriminator in training mode with its dropout (0.2 on the input pixels,
  0.5 between maxout layers): with the masks jgen's dropout drew imposed on the twin's
  dropout layers in the order they run, the twin's logits are jgen's. So the twin drops
  units at the same places and rates and rescales the kept ones as jgen does, which the
  GAN loss test (dropout off) does not see."""
  b = build('gan_mnist')
  model = b.task.train_step.__self__.model
  x = _images(low=-1.0)
  out, variables = model.discriminator.apply(
      {'params': b.state.d_params}, x, train=True, rngs={'dropout': jax.random.PRNGKey(3)},
      capture_intermediates=lambda module, _: isinstance(module, nn.Dropout),
      mutable=['intermediates'])
  captured = variables['intermediates']
  outputs = [np.asarray(captured[f'Dropout_{i}']['__call__'][0]) for i in range(len(captured))]
  masks = [y != 0 for y in outputs]  # Nothing dropout sees is 0 (uniform pixels, maxouts).
  np.testing.assert_allclose([1 - m.mean() for m in masks], [0.2, 0.5], atol=0.05)
  masks[0] = masks[0][:, twin_weights.hwc_to_chw(*SHAPE)]  # The twin flattens NCHW images.
  queue = [_tensor(m) for m in masks]

  def impose(module, inputs, output):
    del output
    return inputs[0] * queue.pop(0) / (1 - module.p)

  d = b.twin.nets[1]
  hooks = [m.register_forward_hook(impose) for m in d.modules()
           if isinstance(m, torch.nn.Dropout)]
  try:
    logits = b.twin.discriminate(_nchw(x))[0].detach().numpy()
  finally:
    for hook in hooks:
      hook.remove()
  assert not queue
  np.testing.assert_allclose(logits, out['logits'], rtol=RTOL, atol=1e-5)
