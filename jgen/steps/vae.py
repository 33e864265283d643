"""VAE steps: the ELBO train step, and an eval step with Burda et al.'s k-sample bound.

Per-device code for `parallel.data_parallel`, like the autoencoder steps. Every random draw
(dynamic binarisation, the reparameterisation noise, importance samples) comes from a key
per example: in training keyed by the global example index of the step, in evaluation by
the example's index in the test split, so results do not depend on the device count or
the eval batch size.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jgen import evaluate, models, optim, parallel, update
from jgen.losses import variational
from jgen.registry import ConfigError
from jgen.state import TrainState
from jgen.steps.task import Task

# Active units (Burda et al.): latent dimensions whose posterior mean varies over the test
# set by more than this (variance of E_q[z_j] across examples).
ACTIVE_UNIT_THRESHOLD = 0.01
_EVAL_KEY = 20160201  # Base key of the fixed test-set binarisation and importance samples.


def binarize(images: jax.Array, keys: jax.Array) -> jax.Array:
  """Samples binary images with pixel probabilities `images` (one key per example)."""
  return jax.vmap(lambda x, k: jax.random.bernoulli(k, x).astype(x.dtype))(images, keys)


def kl_weight(step, beta: float, warmup_steps: int):
  """The KL term's weight at `step`: beta, ramped up linearly over `warmup_steps` (0: none)."""
  if warmup_steps <= 0:
    return jnp.asarray(beta, jnp.float32)
  return beta * jnp.minimum(1.0, (step + 1.0) / warmup_steps)


def _normal(keys, latent_dim: int, num: int | None = None):
  shape = (latent_dim,) if num is None else (num, latent_dim)
  return jax.vmap(lambda k: jax.random.normal(k, shape))(keys)


def make_train_step(model, *, beta: float = 1.0, kl_warmup_steps: int = 0,
                    binarize_inputs: bool = False, dtype=jnp.float32):
  """Returns the per-device train step: one reparameterised sample per example, loss
  -log p(x|z) + w_t * KL(q(z|x) || p(z)) with w_t from `kl_weight`.

  Metrics (global batch means): `loss`, `recon` (-log p(x|z)), `kl`, `elbo`, `kl_weight`,
  `l2_grads`, `l2_params`, `l2_updates`. The networks run in `dtype` (`jgen.update`); the
  likelihood and KL are computed in float32 from their outputs.
  """

  def step(state: TrainState, batch):
    key = jax.random.fold_in(state.rng, state.step)
    keys = parallel.example_keys(key, batch['image'].shape[0])
    bin_keys, eps_keys = jax.vmap(jax.random.split, out_axes=1)(keys)
    x = binarize(batch['image'], bin_keys) if binarize_inputs else batch['image']
    eps = _normal(eps_keys, model.latent_dim)
    weight = kl_weight(state.step, beta, kl_warmup_steps)

    def loss_fn(params):
      out = update.cast(model.apply({'params': params}, x.astype(dtype), eps.astype(dtype),
                                    train=True), jnp.float32)
      log_lik = model.apply({'params': update.cast(params, jnp.float32)}, out['logits'], x,
                            method='log_likelihood')
      kl = variational.gaussian_kl(mean=out['mean'], log_var=out['log_var'])
      loss = (weight * kl - log_lik).mean()
      return loss, {'recon': -log_lik.mean(), 'kl': kl.mean(), 'elbo': (log_lik - kl).mean()}

    (loss, aux), grads = update.gradients(loss_fn, state.params, dtype)
    new_state, norms = update.apply_to_state(state, grads)
    return new_state, jax.lax.pmean({'loss': loss, **aux, 'kl_weight': weight, **norms},
                                    parallel.AXIS)

  return step


def eval_keys(index: jax.Array) -> jax.Array:
  """Per-example keys of the test set, from each example's index in the split."""
  return jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(_EVAL_KEY), i))(index)


def importance_bound(model, params, x, mean, log_var, keys, num_samples: int, chunk: int):
  """Burda et al.'s bound log (1/k) sum_i p(x, z_i) / q(z_i|x), z_i ~ q(z|x), per example.

  The k samples are drawn and decoded `chunk` at a time, and their log-weights combined by
  a running logsumexp, so memory does not grow with k.
  """
  num_chunks = -(-num_samples // chunk)

  def body(acc, c):
    eps = _normal(jax.vmap(lambda k: jax.random.fold_in(k, c))(keys), model.latent_dim, chunk)
    z = variational.reparameterize(eps, mean=mean[:, None], log_var=log_var[:, None])
    b = x.shape[0]
    logits = model.apply({'params': params}, z.reshape(b * chunk, -1), method='decode')
    log_lik = model.apply({'params': params}, logits.reshape(b, chunk, *x.shape[1:]), x,
                          method='log_likelihood_samples')
    log_w = variational.log_importance_weights(
        log_likelihood=log_lik, z=z, mean=mean[:, None],
        log_var=log_var[:, None])
    valid = c * chunk + jnp.arange(chunk) < num_samples  # The last chunk may overhang k.
    log_w = jnp.where(valid, log_w, -jnp.inf)
    return jnp.logaddexp(acc, jax.nn.logsumexp(log_w, axis=-1)), None

  init = parallel.per_device(jnp.full(x.shape[:1], -jnp.inf, jnp.float32))
  total, _ = jax.lax.scan(body, init, jnp.arange(num_chunks))
  return total - math.log(num_samples)


def make_eval_step(model, *, num_samples: int, chunk: int, binarize_inputs: bool = False):
  """Returns the per-device eval step: masked sums over the global batch.

  Sums: `neg_elbo`, `recon`, `kl` (one reparameterised sample, analytic KL), `nll_k{k}`
  (minus the k-sample importance bound: an upper bound on the negative log-likelihood),
  `count`, and per-dimension sums of q's mean and its square (for active units).
  Binarised test images are sampled once per example from a fixed key (the same for every
  model and run).
  """

  def step(state: TrainState, batch):
    images, mask = batch['image'], batch['mask']
    keys = eval_keys(batch['index'])
    bin_keys, eps_keys, iw_keys = jax.vmap(functools.partial(jax.random.split, num=3),
                                           out_axes=1)(keys)
    x = binarize(images, bin_keys) if binarize_inputs else images
    params = state.params
    mean, log_var = model.apply({'params': params}, x, method='encode')
    z = variational.reparameterize(_normal(eps_keys, model.latent_dim), mean=mean,
                                   log_var=log_var)
    logits = model.apply({'params': params}, z, method='decode')
    log_lik = model.apply({'params': params}, logits, x, method='log_likelihood')
    kl = variational.gaussian_kl(mean=mean, log_var=log_var)
    bound = importance_bound(model, params, x, mean, log_var, iw_keys, num_samples, chunk)
    m = mask[:, None]
    sums = {'neg_elbo': ((kl - log_lik) * mask).sum(), 'recon': (-log_lik * mask).sum(),
            'kl': (kl * mask).sum(), f'nll_k{num_samples}': (-bound * mask).sum(),
            'count': mask.sum(), 'code_mean_sum': (mean * m).sum(0),
            'code_mean_sq_sum': (jnp.square(mean) * m).sum(0)}
    return jax.lax.psum(sums, parallel.AXIS)

  return step


def summarize(sums: dict) -> dict[str, float]:
  """Means of the eval sums, and the number of active latent units."""
  sums = dict(sums)
  count = float(sums['count'])
  first = np.asarray(sums.pop('code_mean_sum'), np.float64) / count
  second = np.asarray(sums.pop('code_mean_sq_sum'), np.float64) / count
  active = int((second - np.square(first) > ACTIVE_UNIT_THRESHOLD).sum())
  return evaluate.mean_of_sums(sums) | {'active_units': active}


def build_task(config, image_shape) -> Task:
  """The VAE `Task`: model by name, ELBO training, importance-sampled evaluation."""
  vae = config.vae
  if vae.importance_samples < 1 or vae.eval_importance_samples < 1:
    raise ConfigError(f'vae.importance_samples={vae.importance_samples} and '
                      f'vae.eval_importance_samples={vae.eval_importance_samples} must be >= 1')
  if vae.importance_chunk < 1:
    raise ConfigError(f'vae.importance_chunk={vae.importance_chunk} must be at least 1')
  if vae.beta < 0 or vae.kl_warmup_steps < 0:
    raise ConfigError(f'vae.beta={vae.beta} and vae.kl_warmup_steps={vae.kl_warmup_steps} '
                      'must be >= 0')
  model = models.build_model(**config.model, image_shape=image_shape)
  tx = optim.build_optimizer(config.optimizer, config.num_train_steps)

  def init_state(rng):
    init_key, state_key = jax.random.split(rng)
    x = jnp.zeros((1, *image_shape), jnp.float32)
    eps = jnp.zeros((1, model.latent_dim), jnp.float32)
    params = jax.jit(model.init)(init_key, x, eps)['params']
    return TrainState.create(apply_fn=model.apply, params=params, tx=tx, rng=state_key)

  def evaluator(num_samples):
    return make_eval_step(model, num_samples=num_samples,
                          chunk=min(vae.importance_chunk, num_samples),
                          binarize_inputs=vae.binarize)

  def sample_inputs(key, n):
    return np.asarray(jax.random.normal(key, (n, model.latent_dim)))

  def encode(state, x):  # The posterior mean.
    return model.apply({'params': state.params}, x, method='encode')[0]

  return Task(
      init_state=init_state,
      train_step=make_train_step(model, beta=vae.beta, kl_warmup_steps=vae.kl_warmup_steps,
                                 binarize_inputs=vae.binarize,
                                 dtype=update.compute_dtype(config.dtype)),
      eval_step=evaluator(vae.eval_importance_samples),
      final_eval_step=evaluator(vae.importance_samples),
      image_step=lambda state, x: model.apply({'params': state.params}, x, method='reconstruct'),
      image_name='reconstructions',
      image_inputs=lambda images: {'reconstructions': (images, min(len(images), 16))},
      show_inputs=True, summarize=summarize, progress_keys=('loss',),
      sample_inputs=sample_inputs,
      sample_step=lambda state, z: model.apply({'params': state.params}, z, method='generate'),
      encode_step=encode, feature_steps={'code': encode}, train_features=('image',))
