"""GAN steps: `n_critic` discriminator updates, then one generator update, in one jit step.

Per-device code for `parallel.data_parallel`, like the autoencoder steps. Each update
differentiates its own network's loss with respect to its own parameters only, and
changes nothing of the other network (tests/test_gan.py checks both directions for every
loss). Latents, dropout masks and penalty mixes are keyed by the global example index, and
batch statistics are averaged across devices, so a step does not depend on the device count.
"""

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.optimize

from jgen import augment, evaluate, losses, models, optim, parallel, update
from jgen.models.gans import BN_MOMENTUM, GAN, latent_from_codes, sample_latent
from jgen.registry import ConfigError
from jgen.state import GANState
from jgen.steps.task import Task


def _apply(module, params, batch_stats, x, *, train: bool, dropout_keys=None):
  """Applies a network in train or eval mode; returns (outputs, new batch statistics).

  With `dropout_keys` (one per example) the network runs one example at a time under vmap,
  so each example's dropout mask comes from its own key.
  """
  variables = {'params': params} | ({'batch_stats': batch_stats} if batch_stats else {})
  if dropout_keys is not None:
    def one(xi, key):
      return module.apply(variables, xi[None], train=train, rngs={'dropout': key})
    out = jax.vmap(one)(x, dropout_keys)
    return jax.tree.map(lambda a: a.reshape(a.shape[0], *a.shape[2:]), out), batch_stats
  if train and batch_stats:
    out, updates = module.apply(variables, x, train=True, mutable=['batch_stats'])
    return out, updates['batch_stats']
  return module.apply(variables, x, train=train), batch_stats


def _info_loss(out, latent, category_weight: float, continuous_weight: float):
  """InfoGAN's mutual-information term (its negated lower bound, up to a constant):
  cross-entropy of Q's categorical posterior, plus the Gaussian (unit variance) negative
  log-likelihood of the continuous codes."""
  loss = jnp.zeros(())
  if 'code_logits' in out:
    loss += category_weight * optax.softmax_cross_entropy_with_integer_labels(
        out['code_logits'], latent['category']).mean()
  if 'code_mean' in out:
    loss += continuous_weight * (
        0.5 * jnp.square(out['code_mean'] - latent['code'])).sum(axis=-1).mean()
  return loss


def _real_code_terms(logits) -> tuple[jax.Array, jax.Array]:
  """Q's categorical posterior on real images, as two losses (IMSAT's mutual information,
  Hu et al. 2017, split in its parts): `balance`, the KL divergence of the batch's mean
  posterior (over every device's examples) from uniform, 0 when real images spread evenly
  over the categories and about log 2 / 10 when one category holds two digits of ten; and
  `entropy`, the mean entropy of one image's posterior, 0 when Q is certain of each.

  `balance` is a function of the global mean; its gradient on this device is that of the
  linear term `grad . local_mean` (as if each device held the whole batch), whose
  average over devices is the global gradient.
  """
  log_p = jax.nn.log_softmax(logits)
  p = jnp.exp(log_p)
  local = p.mean(0)
  mean = jax.lax.pmean(jax.lax.stop_gradient(local), parallel.AXIS)
  log_ratio = jnp.log(jnp.maximum(mean, 1e-30) * logits.shape[-1])
  balance = (mean * log_ratio).sum() + jnp.vdot(log_ratio, local - jax.lax.stop_gradient(local))
  entropy = -(p * log_p).sum(-1).mean()
  return balance, entropy


# The transforms of a real image under which Q must keep its category
# (`real_consistency_weight`). 'shift': translations by up to 2 pixels (MNIST's digits move
# by this much within their 28x28 frames). 'affine': also rotations and shears by up to 15
# degrees and zooms by up to 10%, the slants and sizes within which a digit stays itself.
CONSISTENCY_SHIFT = 2
CONSISTENCY_AFFINE = {'degrees': 15.0, 'shear_degrees': 15.0, 'scale': 0.1, 'shift': 2.0}
CONSISTENCY_TRANSFORMS = ('shift', 'affine')


def _consistency_term(logits, shifted_logits) -> jax.Array:
  """IMSAT's self-augmentation term (Hu et al. 2017): the mean over real images of
  KL(Q(c|x) || Q(c|T(x))), T a small random transform; Q's posterior of the untransformed
  image is the target (no gradient flows into it). 0 when Q's category of every image
  survives the transform with the same confidence."""
  target = jax.lax.stop_gradient(jax.nn.log_softmax(logits))
  return (jnp.exp(target) * (target - jax.nn.log_softmax(shifted_logits))).sum(-1).mean()


def _d_value(logits, probabilistic: bool):
  """What to report of D's outputs: the mean probability D(x), or the mean critic value."""
  return jax.nn.sigmoid(logits).mean() if probabilistic else logits.mean()


class Fakes(NamedTuple):
  """Generated images and what the updates need of how they were made."""

  images: jax.Array
  latent: dict
  keys: jax.Array  # Per-example keys: latent, real dropout, fake dropout, penalty mix.
  pullback: Callable  # Cotangent of `images` -> G's gradients, averaged over devices.
  g_stats: dict  # G's batch statistics after this pass.


class GANSteps:
  """The per-device updates of one GAN, closed over its model and its loss settings.

  Args:
    model: a `GAN`.
    adversarial: an `AdversarialLoss`.
    penalty: a penalty function or None; `penalty_weight` scales it.
    n_critic: discriminator updates per step.
    ema_decay: of the generator's parameter average.
    info_weights: (categorical, continuous) weights of InfoGAN's term.
    real_code_weights: (balance, entropy) weights of the terms on Q's categorical posterior
      of real images (`_real_code_terms`), added to D's loss; (0, 0) is InfoGAN as published.
    real_consistency_weight: of `_consistency_term` in D's loss (0: off, as published; on,
      it costs one more D pass, on the transformed real images).
    real_consistency_transform: the consistency term's transforms, one of
      CONSISTENCY_TRANSFORMS.
    dropout: whether the discriminator uses dropout (then it runs per example).
    reuse_fakes: the G update reuses the last D update's latents and images (one G forward
      per step, as PyTorch's DCGAN example does); False draws fresh latents for it (as Chen
      et al.'s InfoGAN code does: its D and G updates are separate runs, each sampling).
    d_stats: which batches update D's running batch statistics (used in eval mode: the test
      split's D(x), the representation probes): 'real_and_fake' (each D update's real pass,
      then its fake pass) or 'real'.
    sample_stats: the batch statistics the EMA generator samples with (eval mode):
      'generator', the current generator's running averages (they belong to other
      weights), or 'recompute', the EMA generator's own moments over `stats_samples` fresh
      latents (the same latents at every call).
    dtype: the compute dtype of both networks in training (`jgen.update`); sampling and
      evaluation run in float32.
  """

  def __init__(self, model: GAN, adversarial, *, penalty: Callable | None = None,
               penalty_weight: float = 0.0, n_critic: int = 1, ema_decay: float = 0.999,
               info_weights: tuple[float, float] = (1.0, 1.0),
               real_code_weights: tuple[float, float] = (0.0, 0.0),
               real_consistency_weight: float = 0.0,
               real_consistency_transform: str = 'shift', dropout: bool = False,
               reuse_fakes: bool = True, d_stats: str = 'real_and_fake',
               sample_stats: str = 'generator', stats_samples: int = 1024,
               dtype=jnp.float32):
    self.model, self.adv = model, adversarial
    self.penalty, self.penalty_weight = penalty, penalty_weight
    self.n_critic, self.ema_decay = n_critic, ema_decay
    self.info_weights, self.dropout = info_weights, dropout
    self.real_code_weights = real_code_weights
    self.real_consistency_weight = real_consistency_weight
    self.real_consistency_transform = real_consistency_transform
    self.reuse_fakes = reuse_fakes
    self.d_stats, self.sample_stats, self.stats_samples = d_stats, sample_stats, stats_samples
    self.dtype = dtype

  def _keys(self, key, batch_size):
    """Per-example keys for the latent, the real and fake dropout masks, the penalty mix."""
    keys = parallel.example_keys(key, batch_size)
    return jax.vmap(functools.partial(jax.random.split, num=4), out_axes=1)(keys)

  def _latents(self, keys):
    return jax.vmap(functools.partial(sample_latent, spec=self.model.latent))(keys)

  def _discriminate(self, params, stats, x, keys=None):
    """D in train mode on `x`, in the compute dtype (`params` cast by the caller); its
    outputs as float32."""
    out, stats = _apply(self.model.discriminator, params, stats, x.astype(self.dtype),
                        train=True, dropout_keys=keys if self.dropout else None)
    return update.cast(out, jnp.float32), stats

  def transformed(self, real, keys):
    """`real` images in [-1, 1], each randomly transformed by `real_consistency_transform`
    (the background, -1, fills in), keyed by the examples' penalty-mix keys (`keys[3]`)
    folded with 1: no other randomness of the step changes."""
    keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys[3])
    images = (real + 1.0) / 2.0
    if self.real_consistency_transform == 'affine':
      images = augment.random_affine(images, keys, **CONSISTENCY_AFFINE)
    else:
      images = augment.random_shift(images, keys, CONSISTENCY_SHIFT)
    return images * 2.0 - 1.0

  def make_fakes(self, state: GANState, batch_size: int, key) -> Fakes:
    """Draws latents and generates images (train mode), keeping G's pullback so that the
    G update needs no second forward pass (as PyTorch's DCGAN example reuses its fakes)."""
    keys = self._keys(key, batch_size)
    latent = self._latents(keys[0])

    def g(params):
      return _apply(self.model.generator, params, state.g_batch_stats,
                    latent['z'].astype(self.dtype), train=True)

    images, pullback, g_stats = update.vjp(g, state.g_params, self.dtype)
    return Fakes(images, latent, keys, pullback, g_stats)

  def d_update(self, state: GANState, real, fakes: Fakes) -> tuple[GANState, dict]:
    """One discriminator update on `real` images in [-1, 1] and as many generated ones."""
    _, k_real, k_fake, k_mix = fakes.keys
    latent = fakes.latent
    fake = jax.lax.stop_gradient(fakes.images)  # The D update never reaches back into G.

    def loss_fn(d_params):
      out_real, stats = self._discriminate(d_params, state.d_batch_stats, real, k_real)
      out_fake, fake_stats = self._discriminate(d_params, stats, fake, k_fake)
      stats = fake_stats if self.d_stats == 'real_and_fake' else stats
      adv = self.adv.d_loss(real_logits=out_real['logits'], fake_logits=out_fake['logits'])
      parts = {'d_adv': adv.mean()}
      if self.penalty is not None:
        critic = lambda x: self._discriminate(d_params, stats, x, k_real)[0]['logits']  # noqa: E731
        mix = jax.vmap(jax.random.uniform)(k_mix)
        parts['d_penalty'] = self.penalty(critic=critic, real=real, fake=fake, mix=mix).mean()
      parts['d_info'] = _info_loss(out_fake, latent, *self.info_weights)
      loss = parts['d_adv'] + self.penalty_weight * parts.get('d_penalty', 0.0) + parts['d_info']
      if 'code_logits' in out_real:  # Logged for every InfoGAN; in the loss when weighted.
        terms = _real_code_terms(out_real['code_logits'])
        parts['d_real_balance'], parts['d_real_entropy'] = terms
        for weight, term in zip(self.real_code_weights, terms, strict=True):
          if weight:
            loss += weight * term
        if self.real_consistency_weight:
          # D's statistics from this pass are dropped: the transformed images are no new data.
          out_moved, _ = self._discriminate(d_params, stats, self.transformed(real, fakes.keys),
                                            k_real)
          parts['d_real_consistency'] = _consistency_term(out_real['code_logits'],
                                                          out_moved['code_logits'])
          loss += self.real_consistency_weight * parts['d_real_consistency']
      return loss, (stats, parts, out_real, out_fake)

    (loss, (stats, parts, out_real, out_fake)), grads = update.gradients(
        loss_fn, state.d_params, self.dtype)
    d_params, opt_state, norms = update.apply(state.d_tx, state.d_params, state.d_opt_state,
                                              grads, suffix='_d')
    new = state.replace(d_params=d_params, d_opt_state=opt_state, d_batch_stats=stats)
    metrics = {'d_loss': loss, **parts,
               'd_real': _d_value(out_real['logits'], self.adv.probabilistic),
               'd_fake': _d_value(out_fake['logits'], self.adv.probabilistic), **norms}
    return new, metrics

  def g_update(self, state: GANState, fakes: Fakes, real) -> tuple[GANState, dict]:
    """One generator update on `fakes` (from `make_fakes`), through the current D; `real`
    images are read only by losses that compare fakes with them (`uses_real`)."""
    latent, k_real, k_fake = fakes.latent, fakes.keys[1], fakes.keys[2]
    d_params = update.cast(state.d_params, self.dtype)
    real_kwargs = {}
    if self.adv.uses_real:
      out_real, _ = self._discriminate(d_params, state.d_batch_stats, real, k_real)
      real_kwargs['real_logits'] = out_real['logits']

    def loss_fn(fake):
      # D's statistics updates from this pass are dropped: the G update leaves D as it is.
      out, _ = self._discriminate(d_params, state.d_batch_stats, fake, k_fake)
      parts = {'g_adv': self.adv.g_loss(fake_logits=out['logits'], **real_kwargs).mean(),
               'g_info': _info_loss(out, latent, *self.info_weights)}
      accuracy = ((out['code_logits'].argmax(-1) == latent['category']).mean()
                  if 'code_logits' in out else None)
      return parts['g_adv'] + parts['g_info'], (parts, accuracy)

    (loss, (parts, accuracy)), fake_grads = jax.value_and_grad(loss_fn, has_aux=True)(
        fakes.images)
    g_stats = fakes.g_stats
    g_params, opt_state, norms = update.apply(state.g_tx, state.g_params, state.g_opt_state,
                                              fakes.pullback(fake_grads), suffix='_g')
    # The average warms up, so that early samples do not still show the initialisation.
    decay = optim.warmed_up_decay(self.ema_decay, state.step)
    ema = optax.incremental_update(g_params, state.ema_g_params, 1.0 - decay)
    new = state.replace(g_params=g_params, g_opt_state=opt_state, g_batch_stats=g_stats,
                        ema_g_params=ema)
    metrics = {'g_loss': loss, **parts, **norms}
    if accuracy is not None:
      metrics['fake_code_accuracy'] = accuracy
    return new, metrics

  def train_step(self, state: GANState, batch):
    """`n_critic` D updates (one per micro-batch of the batch), one G update, step + 1.

    The batch holds `n_critic` micro-batches of real images, interleaved (row i belongs to
    micro-batch i % n_critic), so that every device count groups the same global rows.
    """
    images = batch['image'] * 2.0 - 1.0
    b = images.shape[0] // self.n_critic
    micro = images.reshape(b, self.n_critic, *images.shape[1:]).swapaxes(0, 1)
    key = jax.random.fold_in(state.rng, state.step)
    for i in range(self.n_critic):
      fakes = self.make_fakes(state, b, jax.random.fold_in(key, i))
      state, d_metrics = self.d_update(state, micro[i], fakes)
    if not self.reuse_fakes:
      fakes = self.make_fakes(state, b, jax.random.fold_in(key, self.n_critic))
    # Else the G update uses the last D update's latents and images (their pullback).
    state, g_metrics = self.g_update(state, fakes, micro[self.n_critic - 1])
    state = state.replace(step=state.step + 1)
    return state, jax.lax.pmean(d_metrics | g_metrics, parallel.AXIS)

  def eval_step(self, state: GANState, batch):
    """Masked sums over real test images: D's value, and InfoGAN's code/label counts."""
    images, mask = batch['image'] * 2.0 - 1.0, batch['mask']
    out, _ = _apply(self.model.discriminator, state.d_params, state.d_batch_stats, images,
                    train=False)
    value = jax.nn.sigmoid(out['logits']) if self.adv.probabilistic else out['logits']
    sums = {'d_real': (value * mask).sum(), 'count': mask.sum()}
    if 'code_logits' in out:
      # counts[label, code]: which categorical code Q assigns to test images of each label.
      k = out['code_logits'].shape[-1]
      pairs = jax.nn.one_hot(batch['label'], k)[:, :, None] * jax.nn.one_hot(
          out['code_logits'].argmax(-1), k)[:, None, :]
      sums['code_counts'] = (pairs * mask[:, None, None]).sum(0)
      # Label-free: Q's mean posterior and mean entropy over the images.
      log_p = jax.nn.log_softmax(out['code_logits'])
      sums['code_posterior'] = (jnp.exp(log_p) * mask[:, None]).sum(0)
      sums['code_entropy'] = (-(jnp.exp(log_p) * log_p).sum(-1) * mask).sum()
    return jax.lax.psum(sums, parallel.AXIS)

  def features(self, state: GANState, images, key: str = 'features'):
    """The discriminator's penultimate layer (`features`) or Q's hidden layer
    (`q_features`) of images in [0, 1], in eval mode."""
    out, _ = _apply(self.model.discriminator, state.d_params, state.d_batch_stats,
                    images * 2.0 - 1.0, train=False)
    return out[key]

  def ema_batch_stats(self, state: GANState):
    """The EMA generator's own batch-norm moments over `stats_samples` latents (global
    example keys from a fixed key: the same latents on any device count)."""
    n = self.stats_samples // jax.lax.axis_size(parallel.AXIS)
    keys = parallel.example_keys(jax.random.PRNGKey(1), n)
    z = self._latents(keys)['z']
    zeros = jax.tree.map(jnp.zeros_like, state.g_batch_stats)
    # From zero running averages, one train-mode pass leaves (1 - momentum) x the moments.
    _, stats = _apply(self.model.generator, state.ema_g_params, zeros, z, train=True)
    return jax.tree.map(lambda v: v / (1.0 - BN_MOMENTUM), stats)

  def generate(self, state: GANState, z):
    """Images in [0, 1] from latents, by the EMA generator (batch norm in eval mode)."""
    stats = state.g_batch_stats
    if self.sample_stats == 'recompute' and stats:
      stats = self.ema_batch_stats(state)
    images, _ = _apply(self.model.generator, state.ema_g_params, stats, z, train=False)
    return (images + 1.0) / 2.0


def code_accuracy(counts: np.ndarray) -> float:
  """Accuracy of a categorical code as a classifier, under the best one-to-one mapping of
  codes to labels (Hungarian algorithm on the label x code count matrix)."""
  rows, cols = scipy.optimize.linear_sum_assignment(counts, maximize=True)
  return float(counts[rows, cols].sum() / counts.sum())


def code_statistics(counts: np.ndarray, posterior: np.ndarray, entropy: float) -> dict:
  """What InfoGAN's categorical code does with real images, without their labels:
  `code_max_share` and `code_min_share`, the largest and smallest fraction of the images
  whose most likely category is one category (MNIST's digits are 9.0-11.2% of its training
  set; a category holding two digits has about 20%); `code_mutual_info`, Q's estimate of the
  mutual information between image and category, H(mean posterior) - mean H(posterior), in
  nats (log 10 = 2.303 at most)."""
  n = counts.sum()
  shares = counts.sum(0) / n
  mean = posterior / n
  marginal = -(mean * np.log(np.maximum(mean, 1e-30))).sum()
  return {'code_max_share': float(shares.max()), 'code_min_share': float(shares.min()),
          'code_mutual_info': float(marginal - entropy / n)}


def summarize(sums: dict) -> dict[str, float]:
  """Means of the eval step's sums, and InfoGAN's code accuracy (labels) and code statistics
  (no labels) from its counts."""
  sums = dict(sums)
  counts = sums.pop('code_counts', None)
  out = {}
  if counts is not None:
    counts = np.asarray(counts, np.float64)
    out['code_accuracy'] = code_accuracy(counts)
    out |= code_statistics(counts, np.asarray(sums.pop('code_posterior'), np.float64),
                           float(sums.pop('code_entropy')))
  return out | evaluate.mean_of_sums(sums)


def image_inputs(spec, num_samples: int, seed: int = 0) -> dict[str, tuple[np.ndarray, int]]:
  """Fixed latents for the grids shown over training: samples, and InfoGAN's traversals.

  Traversal grids (Chen et al.'s figure 2): one noise vector for the whole grid; rows are the
  categorical code's values; columns vary noise (`traversal_category`) or one continuous
  code from -2 to 2 with the others at 0 (`traversal_code{j}`).
  """
  keys = jax.random.split(jax.random.PRNGKey(seed), num_samples)
  out = {'samples': (np.asarray(jax.vmap(functools.partial(sample_latent, spec=spec))(keys)['z']),
                     int(np.ceil(np.sqrt(num_samples))))}
  if not spec.categories:
    return out
  k, n = spec.categories, 10
  rows = np.repeat(np.arange(k), n)
  noise = spec.noise_scale * np.asarray(jax.random.uniform(
      jax.random.PRNGKey(seed + 1), (n, spec.noise_dim), minval=-1.0, maxval=1.0))
  zeros = np.zeros((k * n, spec.continuous), np.float32)
  out['traversal_category'] = (
      np.asarray(latent_from_codes(np.tile(noise, (k, 1)), rows, zeros, spec)), n)
  for j in range(spec.continuous):
    codes = zeros.copy()
    codes[:, j] = np.tile(np.linspace(-2.0, 2.0, n), k)
    out[f'traversal_code{j + 1}'] = (
        np.asarray(latent_from_codes(np.repeat(noise[:1], k * n, 0), rows, codes, spec)), n)
  return out


def build_task(config, image_shape) -> Task:
  """The GAN `Task`: model by name, losses and penalty by name, two optimizers (TTUR)."""
  gan = config.gan
  model = models.build_model(**config.model, image_shape=image_shape, axis_name=parallel.AXIS)
  if gan.n_critic < 1:
    raise ConfigError(f'gan.n_critic={gan.n_critic} must be at least 1')
  for field, allowed in (('d_stats', ('real_and_fake', 'real')),
                         ('sample_stats', ('generator', 'recompute')),
                         ('real_consistency_transform', CONSISTENCY_TRANSFORMS)):
    if gan[field] not in allowed:
      raise ConfigError(f'gan.{field}={gan[field]!r} is unknown; known: {", ".join(allowed)}')
  if gan.stats_samples < 1 or gan.stats_samples % jax.device_count():
    raise ConfigError(f'gan.stats_samples={gan.stats_samples} must be a positive multiple of '
                      f'the {jax.device_count()} devices')
  spec = model.latent
  for field, codes, default in (
      ('info_weight', spec.categories, 1.0), ('info_continuous_weight', spec.continuous, 1.0),
      ('real_balance_weight', spec.categories, 0.0),
      ('real_entropy_weight', spec.categories, 0.0),
      ('real_consistency_weight', spec.categories, 0.0),
      ('restarts', spec.categories, 0)):
    if not codes and gan[field] != default:
      raise ConfigError(f'gan.{field}={gan[field]} has no effect: model {config.model.name!r} '
                        'has no such code (InfoGAN has); drop that override')
  # Any dropout in D (its input's too) makes it run per example, each with its own keys.
  dropout = any(getattr(model.discriminator, name, 0.0) > 0
                for name in ('dropout', 'input_dropout'))
  penalty = losses.get_penalty(gan.penalty) if gan.penalty else None
  if penalty and not gan.penalty_weight > 0:
    raise ConfigError(f'gan.penalty={gan.penalty!r} needs a weight above 0; set '
                      '--config.gan.penalty_weight (WGAN-GP: 10)')
  if gan.penalty_weight and not penalty:
    raise ConfigError(f'gan.penalty_weight={gan.penalty_weight} weighs no penalty; set '
                      '--config.gan.penalty (gradient_penalty or r1), or the weight to 0')
  if penalty and getattr(model.discriminator, 'norm', 'none') == 'batch':
    fix = ('set --config.model.discriminator_norm=layer' if 'discriminator_norm' in config.model
           else f'model {config.model.name!r} has no other; use dcgan')
    raise ConfigError(f'penalty {gan.penalty!r} needs per-example gradients, which batch norm '
                      f'in the discriminator mixes; {fix}')
  steps = GANSteps(model, losses.get_adversarial_loss(gan.loss), penalty=penalty,
                   penalty_weight=gan.penalty_weight, n_critic=gan.n_critic,
                   ema_decay=gan.ema_decay,
                   info_weights=(gan.info_weight, gan.info_continuous_weight),
                   real_code_weights=(gan.real_balance_weight, gan.real_entropy_weight),
                   real_consistency_weight=gan.real_consistency_weight,
                   real_consistency_transform=gan.real_consistency_transform,
                   dropout=dropout,
                   reuse_fakes=gan.reuse_fakes, d_stats=gan.d_stats,
                   sample_stats=gan.sample_stats, stats_samples=gan.stats_samples,
                   dtype=update.compute_dtype(config.dtype))
  g_tx = optim.build_optimizer(config.g_optimizer, config.num_train_steps)
  d_tx = optim.build_optimizer(config.d_optimizer, config.num_train_steps * gan.n_critic)

  def init_state(rng):
    init_key, state_key = jax.random.split(rng)
    z = jnp.zeros((2, model.latent.size), jnp.float32)
    variables = jax.jit(functools.partial(model.init, train=False))(init_key, z)
    return GANState.create(variables=variables, g_tx=g_tx, d_tx=d_tx, rng=state_key)

  def sample_inputs(key, n):
    keys = jax.random.split(key, n)
    return np.asarray(jax.vmap(functools.partial(sample_latent, spec=model.latent))(keys)['z'])

  feature_steps = {'discriminator': steps.features}
  if model.latent.categories or model.latent.continuous:
    feature_steps['q'] = functools.partial(steps.features, key='q_features')
  return Task(init_state=init_state, train_step=steps.train_step, eval_step=steps.eval_step,
              feature_steps=feature_steps,
              image_step=steps.generate, image_name='samples',
              image_inputs=lambda _: image_inputs(model.latent, config.num_image_examples),
              summarize=summarize, progress_keys=('d_loss', 'g_loss'),
              batch_multiplier=gan.n_critic, sample_inputs=sample_inputs,
              train_features=('image',))
