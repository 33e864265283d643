"""The VAE's densities, ELBO and importance-sampled bound against numpy, on tiny models."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
import scipy.stats

from jgen import models, parallel
from jgen.losses import variational
from jgen.state import TrainState
from jgen.steps import vae as vae_steps

RNG = np.random.default_rng(0)


def _np_softplus(x):
  return np.logaddexp(0.0, x)


def test_gaussian_kl_matches_numpy_and_monte_carlo():
  mean, log_var = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3))
  got = variational.gaussian_kl(mean=jnp.asarray(mean), log_var=jnp.asarray(log_var))
  var = np.exp(log_var)
  want = 0.5 * (mean**2 + var - 1 - log_var).sum(-1)
  np.testing.assert_allclose(got, want, rtol=1e-5)
  # The closed form is E_q[log q - log p], estimated here from samples.
  z = mean + np.sqrt(var) * RNG.normal(size=(200_000, 4, 3))
  log_q = scipy.stats.norm.logpdf(z, mean, np.sqrt(var)).sum(-1)
  log_p = scipy.stats.norm.logpdf(z).sum(-1)
  np.testing.assert_allclose(got, (log_q - log_p).mean(0), atol=0.03)


def test_log_densities_match_scipy():
  z, mean, log_var = RNG.normal(size=(5, 3)), RNG.normal(size=(5, 3)), RNG.normal(size=(5, 3))
  np.testing.assert_allclose(
      variational.log_normal(jnp.asarray(z), mean=jnp.asarray(mean), log_var=jnp.asarray(log_var)),
      scipy.stats.norm.logpdf(z, mean, np.exp(0.5 * log_var)).sum(-1), rtol=1e-5)
  np.testing.assert_allclose(variational.log_standard_normal(jnp.asarray(z)),
                             scipy.stats.norm.logpdf(z).sum(-1), rtol=1e-5)


def test_pixel_likelihoods_match_numpy():
  logits = RNG.normal(size=(3, 4, 4, 1)) * 3
  binary = (RNG.uniform(size=(3, 4, 4, 1)) < 0.5).astype(np.float64)
  p = scipy.special.expit(logits)
  want = np.log(np.where(binary == 1, p, 1 - p)).reshape(3, -1).sum(-1)
  got = variational.bernoulli_log_likelihood(logits=jnp.asarray(logits),
                                             targets=jnp.asarray(binary))
  np.testing.assert_allclose(got, want, rtol=1e-5)
  grey = RNG.uniform(size=(3, 4, 4, 1))
  np.testing.assert_allclose(
      variational.gaussian_log_likelihood(logits=jnp.asarray(logits), targets=jnp.asarray(grey),
                                          log_scale=jnp.asarray(-1.5)),
      scipy.stats.norm.logpdf(grey, p, np.exp(-1.5)).reshape(3, -1).sum(-1), rtol=1e-5)


def test_likelihood_of_many_samples_equals_one_at_a_time():
  logits = jnp.asarray(RNG.normal(size=(3, 7, 4, 4, 1)), jnp.float32)
  targets = jnp.asarray(RNG.uniform(size=(3, 4, 4, 1)) < 0.5, jnp.float32)
  got = variational.bernoulli_log_likelihood_samples(logits=logits, targets=targets)
  want = jnp.stack([variational.bernoulli_log_likelihood(logits=logits[:, k], targets=targets)
                    for k in range(7)], axis=1)
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_iwae_bound_is_logmeanexp_and_tightens_with_k():
  log_w = RNG.normal(size=(2, 50)) * 2
  np.testing.assert_allclose(variational.iwae_bound(jnp.asarray(log_w)),
                             scipy.special.logsumexp(log_w, -1) - np.log(50), rtol=1e-5)
  np.testing.assert_allclose(variational.iwae_bound(jnp.asarray(log_w[:, :1])), log_w[:, 0])
  # Large log-weights do not overflow.
  assert np.isfinite(variational.iwae_bound(jnp.full((1, 4), 1e4))).all()


def test_kl_weight_warms_up_linearly():
  weights = [float(vae_steps.kl_weight(s, 0.5, 4)) for s in range(6)]
  np.testing.assert_allclose(weights, [0.125, 0.25, 0.375, 0.5, 0.5, 0.5])
  assert float(vae_steps.kl_weight(0, 2.0, 0)) == 2.0


def test_binarize_samples_bernoulli_pixels():
  images = jnp.full((2, 100, 100, 1), 0.3)
  keys = jax.random.split(jax.random.PRNGKey(0), 2)
  x = vae_steps.binarize(images, keys)
  assert set(np.unique(x)) <= {0.0, 1.0}
  assert abs(float(x.mean()) - 0.3) < 0.01
  assert not np.array_equal(x[0], x[1])  # Each example has its own draw.
  np.testing.assert_array_equal(x, vae_steps.binarize(images, keys))


@pytest.mark.parametrize('factory, kwargs, n_params', [
    # Burda et al.'s MNIST model: 784-200-200-2x50 encoder, 50-200-200-784 decoder.
    (models.mlp_vae, {}, (784 * 200 + 200) + (200 * 200 + 200) + (200 * 100 + 100)
     + (50 * 200 + 200) + (200 * 200 + 200) + (200 * 784 + 784)),
    (models.conv_vae, {'latent_dim': 8}, None),
])
def test_vae_shapes_and_parameter_count(factory, kwargs, n_params):
  model = factory(image_shape=(28, 28, 1), **kwargs)
  latent = model.latent_dim
  x, eps = jnp.zeros((3, 28, 28, 1)), jnp.zeros((3, latent))
  variables = model.init(jax.random.PRNGKey(0), x, eps)
  out = model.apply(variables, x, eps)
  assert out['mean'].shape == out['log_var'].shape == out['z'].shape == (3, latent)
  assert out['logits'].shape == (3, 28, 28, 1)
  if n_params is not None:
    assert sum(p.size for p in jax.tree.leaves(variables)) == n_params
  samples = model.apply(variables, jnp.ones((2, latent)), method='generate')
  assert samples.shape == (2, 28, 28, 1) and 0 <= samples.min() and samples.max() <= 1


def test_gaussian_likelihood_learns_its_scale_parameter():
  model = models.mlp_vae(image_shape=(4, 4, 1), hidden_sizes=(5,), latent_dim=2,
                         likelihood='gaussian')
  variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 4, 4, 1)), jnp.zeros((1, 2)))
  assert variables['params']['log_scale'].shape == ()


# A tiny model and its numpy twin: encoder 4-3-(2x2), decoder 2-3-4, tanh.


def _tiny():
  model = models.mlp_vae(image_shape=(2, 2, 1), hidden_sizes=(3,), latent_dim=2)
  params = model.init(jax.random.PRNGKey(1), jnp.zeros((1, 2, 2, 1)), jnp.zeros((1, 2)))
  params = jax.tree.map(lambda p: p + 0.3 * jnp.asarray(RNG.normal(size=p.shape), p.dtype),
                        params['params'])
  return model, params


def _np_mlp(layers, h):
  for i, layer in enumerate(layers):
    h = h @ np.asarray(layer['kernel'], np.float64) + np.asarray(layer['bias'], np.float64)
    if i < len(layers) - 1:
      h = np.tanh(h)
  return h


def _np_encode(params, x):
  enc = params['encoder']
  h = _np_mlp([enc['Dense_0'], enc['code']], x.reshape(len(x), -1))
  return h[:, :2], h[:, 2:]


def _np_log_lik(params, z, x):
  dec = params['decoder']
  logits = _np_mlp([dec['Dense_0'], dec['logits']], z)
  x = x.reshape(*x.shape[:1], *([1] * (z.ndim - 2)), -1)
  return (x * logits - _np_softplus(logits)).sum(-1)


def _run_eval(model, params, x, num_samples, chunk):
  """The eval step on one device, returning its sums and the draws it made."""
  mesh = parallel.make_mesh()
  step = vae_steps.make_eval_step(model, num_samples=num_samples, chunk=chunk,
                                  binarize_inputs=True)
  state = TrainState.create(apply_fn=model.apply, params=params, tx=_identity(),
                            rng=jax.random.PRNGKey(0))
  fn = parallel.data_parallel(step, mesh)
  n = len(x)
  batch = {'image': x, 'mask': np.ones(n, np.float32), 'index': np.arange(n, dtype=np.int32)}
  sums = jax.device_get(fn(parallel.replicate(mesh, state), parallel.shard_batch(mesh, batch)))
  keys = vae_steps.eval_keys(jnp.arange(n))
  bin_keys, eps_keys, iw_keys = jax.vmap(functools.partial(jax.random.split, num=3),
                                         out_axes=1)(keys)
  binary = np.asarray(vae_steps.binarize(jnp.asarray(x), bin_keys), np.float64)
  return sums, binary, eps_keys, iw_keys


def _identity():
  import optax
  return optax.identity()


def test_eval_elbo_and_importance_bound_match_numpy():
  """The eval step's ELBO and its k-sample bound (k not a multiple of the chunk) against the
  formulas computed in float64 numpy, with the step's own random draws."""
  model, params = _tiny()
  x = RNG.uniform(size=(4, 2, 2, 1)).astype(np.float32)
  k, chunk = 7, 3
  sums, binary, eps_keys, iw_keys = _run_eval(model, params, x, k, chunk)
  mean, log_var = _np_encode(params, binary)
  std = np.exp(0.5 * log_var)
  # ELBO with one reparameterised sample and the analytic KL.
  eps = np.asarray(jax.vmap(lambda key: jax.random.normal(key, (2,)))(eps_keys), np.float64)
  z = mean + std * eps
  log_lik = _np_log_lik(params, z, binary)
  kl = 0.5 * (mean**2 + std**2 - 1 - log_var).sum(-1)
  np.testing.assert_allclose(sums['neg_elbo'], (kl - log_lik).sum(), rtol=1e-5)
  np.testing.assert_allclose(sums['kl'], kl.sum(), rtol=1e-5)
  # Importance samples: chunk c of example i uses normal(fold_in(key_i, c), (chunk, 2)).
  eps = np.concatenate([
      np.asarray(jax.vmap(lambda key, c=c: jax.random.normal(jax.random.fold_in(key, c),
                                                            (chunk, 2)))(iw_keys))
      for c in range(-(-k // chunk))], axis=1)[:, :k].astype(np.float64)
  z = mean[:, None] + std[:, None] * eps
  log_w = (_np_log_lik(params, z, binary)
           + scipy.stats.norm.logpdf(z).sum(-1)
           - scipy.stats.norm.logpdf(z, mean[:, None], std[:, None]).sum(-1))
  bound = scipy.special.logsumexp(log_w, axis=1) - np.log(k)
  np.testing.assert_allclose(sums[f'nll_k{k}'], -bound.sum(), rtol=1e-5)
  assert sums['count'] == 4


def test_eval_draws_depend_on_example_index_not_batch_layout():
  """The same test images give the same sums whether evaluated in one batch or two."""
  model, params = _tiny()
  x = RNG.uniform(size=(4, 2, 2, 1)).astype(np.float32)
  whole, *_ = _run_eval(model, params, x, 5, 5)
  mesh = parallel.make_mesh()
  step = parallel.data_parallel(
      vae_steps.make_eval_step(model, num_samples=5, chunk=5, binarize_inputs=True), mesh)
  state = parallel.replicate(mesh, TrainState.create(
      apply_fn=model.apply, params=params, tx=_identity(), rng=jax.random.PRNGKey(0)))
  total = 0.0
  for lo in (0, 2):
    batch = {'image': x[lo:lo + 2], 'mask': np.ones(2, np.float32),
             'index': np.arange(lo, lo + 2, dtype=np.int32)}
    total += float(step(state, parallel.shard_batch(mesh, batch))['nll_k5'])
  np.testing.assert_allclose(total, whole['nll_k5'], rtol=1e-6)


def test_train_step_elbo_matches_numpy():
  """The train step's reported ELBO and loss, recomputed in numpy from its own draws."""
  model, params = _tiny()
  x = RNG.uniform(size=(4, 2, 2, 1)).astype(np.float32)
  state = TrainState.create(apply_fn=model.apply, params=params, tx=_identity(),
                            rng=jax.random.PRNGKey(3))
  mesh = parallel.make_mesh()
  step = vae_steps.make_train_step(model, beta=0.5, kl_warmup_steps=0, binarize_inputs=True)
  fn = parallel.data_parallel(step, mesh)
  _, metrics = fn(parallel.replicate(mesh, state),
                  parallel.shard_batch(mesh, {'image': x, 'label': np.zeros(4, np.int32)}))
  keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.fold_in(state.rng, 0), i))(
      jnp.arange(4))
  bin_keys, eps_keys = jax.vmap(jax.random.split, out_axes=1)(keys)
  binary = np.asarray(vae_steps.binarize(jnp.asarray(x), bin_keys), np.float64)
  mean, log_var = _np_encode(params, binary)
  eps = np.asarray(jax.vmap(lambda key: jax.random.normal(key, (2,)))(eps_keys), np.float64)
  z = mean + np.exp(0.5 * log_var) * eps
  log_lik = _np_log_lik(params, z, binary)
  kl = 0.5 * (mean**2 + np.exp(log_var) - 1 - log_var).sum(-1)
  np.testing.assert_allclose(metrics['elbo'], (log_lik - kl).mean(), rtol=1e-5)
  np.testing.assert_allclose(metrics['loss'], (0.5 * kl - log_lik).mean(), rtol=1e-5)
