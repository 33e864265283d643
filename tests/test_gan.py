"""GAN pieces: losses and penalties against numpy, the sub-pixel layer against
nn.ConvTranspose, model shapes and sizes, updates that touch only their own network."""

import functools
import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import dcgan_mnist, gan_mnist, infogan_mnist, wgan_gp_mnist
from jgen import losses, models, parallel
from jgen.models import layers
from jgen.steps import gan


def _softplus(x):
  return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)


def _sigmoid(x):
  return 1 / (1 + np.exp(-x))


# Each loss written from its paper's formula, in probabilities where it has them.
NUMPY_LOSSES = {
    'minimax': (lambda r, f: -np.log(_sigmoid(r)) - np.log(1 - _sigmoid(f)),
                lambda f: np.log(1 - _sigmoid(f))),
    'non_saturating': (lambda r, f: -np.log(_sigmoid(r)) - np.log(1 - _sigmoid(f)),
                       lambda f: -np.log(_sigmoid(f))),
    'hinge': (lambda r, f: np.maximum(0, 1 - r) + np.maximum(0, 1 + f), lambda f: -f),
    'least_squares': (lambda r, f: 0.5 * (r - 1) ** 2 + 0.5 * f ** 2,
                      lambda f: 0.5 * (f - 1) ** 2),
    'wasserstein': (lambda r, f: f - r, lambda f: -f),
}


@pytest.mark.parametrize('name', sorted(NUMPY_LOSSES))
def test_adversarial_losses_match_numpy(name):
  rng = np.random.default_rng(0)
  real, fake = rng.normal(0, 2, 64).astype(np.float32), rng.normal(0, 2, 64).astype(np.float32)
  loss = losses.get_adversarial_loss(name)
  want_d, want_g = NUMPY_LOSSES[name]
  np.testing.assert_allclose(loss.d_loss(real_logits=real, fake_logits=fake), want_d(real, fake),
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(loss.g_loss(fake_logits=fake), want_g(fake), rtol=1e-5, atol=1e-5)


def test_minimax_is_stable_where_probabilities_saturate():
  big = jnp.array([-200.0, 200.0])
  for name in ('minimax', 'non_saturating'):
    loss = losses.get_adversarial_loss(name)
    assert np.isfinite(loss.d_loss(real_logits=big, fake_logits=-big)).all()
    g_loss = loss.g_loss
    assert np.isfinite(jax.grad(lambda f, g=g_loss: g(fake_logits=f).sum())(big)).all()


def test_penalties_match_numpy():
  rng = np.random.default_rng(1)
  real = rng.normal(size=(5, 3, 3, 2)).astype(np.float32)
  fake = rng.normal(size=(5, 3, 3, 2)).astype(np.float32)
  mix = rng.uniform(size=5).astype(np.float32)
  w = rng.normal(size=(3, 3, 2)).astype(np.float32)
  linear = lambda x: (x * w).sum(axis=(1, 2, 3))  # noqa: E731  Gradient: w for every example.
  quadratic = lambda x: 0.5 * (x ** 2).sum(axis=(1, 2, 3))  # noqa: E731  Gradient: x.
  x_hat = mix[:, None, None, None] * real + (1 - mix[:, None, None, None]) * fake
  norm = lambda x: np.sqrt((x ** 2).reshape(len(x), -1).sum(-1))  # noqa: E731
  gp = losses.get_penalty('gradient_penalty')
  r1 = losses.get_penalty('r1')
  np.testing.assert_allclose(gp(critic=linear, real=real, fake=fake, mix=mix),
                             np.full(5, (np.linalg.norm(w) - 1) ** 2), rtol=1e-4)
  np.testing.assert_allclose(gp(critic=quadratic, real=real, fake=fake, mix=mix),
                             (norm(x_hat) - 1) ** 2, rtol=1e-4)
  np.testing.assert_allclose(r1(critic=quadratic, real=real, fake=fake, mix=mix),
                             0.5 * norm(real) ** 2, rtol=1e-4)
  np.testing.assert_allclose(r1(critic=linear, real=real, fake=fake, mix=mix),
                             np.full(5, 0.5 * np.linalg.norm(w) ** 2), rtol=1e-4)


def test_unknown_loss_names_list_the_known_ones():
  with pytest.raises(ValueError, match='hinge, least_squares, minimax'):
    losses.get_adversarial_loss('hinged')


_UPSAMPLING_CASES = [(4, 32, (7, 7)), (4, 32, (4, 5)), (2, 32, (6, 6)), (6, 32, (5, 4)),
                     (4, 3, (7, 7))]


@pytest.mark.parametrize('layer, kernel_size, features, size', [
    *[('subpixel', *case) for case in _UPSAMPLING_CASES],
    *[('strided', *case) for case in _UPSAMPLING_CASES], ('strided', 3, 8, (5, 6))])
@pytest.mark.parametrize('cpu', [True, False], ids=['cpu_path', 'accelerator_path'])
def test_upsampling_layers_are_exactly_conv_transpose(layer, kernel_size, features, size, cpu,
                                                      monkeypatch):
  """Same parameters, same values, same gradients (input, kernel, bias) as nn.ConvTranspose.
  For the sub-pixel layer `features` 3 takes its lax.conv_transpose path, 32 the sub-pixel
  one; the strided layer (custom gradients) also takes an odd kernel. Off CPU (forced here)
  both layers take lax's own formulation, which must be the same function."""
  monkeypatch.setattr(layers, 'on_cpu', lambda: cpu)
  x = jax.random.normal(jax.random.PRNGKey(0), (3, *size, 16))
  if layer == 'subpixel':
    ours = layers.SubPixelConvTranspose(features, kernel_size)
  else:
    ours = layers.ConvTransposeStride2(features, kernel_size)
  theirs = nn.ConvTranspose(features, (kernel_size,) * 2, strides=(2, 2),
                            padding=((kernel_size // 2,) * 2,) * 2)
  params = ours.init(jax.random.PRNGKey(1), x)
  params = jax.tree.map(lambda p: p + 0.1, params)  # A non-zero bias.
  assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape,
                                                         theirs.init(jax.random.PRNGKey(1), x))
  y_ours, y_theirs = ours.apply(params, x), theirs.apply(params, x)
  odd = kernel_size % 2
  assert y_ours.shape == (3, 2 * size[0] - odd, 2 * size[1] - odd, features)
  np.testing.assert_allclose(y_ours, y_theirs, rtol=1e-5, atol=1e-5)
  target = jax.random.normal(jax.random.PRNGKey(2), y_ours.shape)
  loss = lambda mod: lambda p, x: ((mod.apply(p, x) - target) ** 2).sum()  # noqa: E731
  g_ours = jax.grad(loss(ours), argnums=(0, 1))(params, x)
  g_theirs = jax.grad(loss(theirs), argnums=(0, 1))(params, x)
  for a, b in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_theirs), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3 * np.abs(b).max())



@pytest.mark.parametrize('kernel_size, size', [(4, (28, 28)), (4, (7, 9)), (3, (5, 6))])
@pytest.mark.parametrize('cpu', [True, False], ids=['cpu_path', 'accelerator_path'])
def test_strided_conv_is_exactly_nn_conv_to_second_order(kernel_size, size, cpu, monkeypatch):
  """ConvStride2 is nn.Conv(strides 2, SAME): same parameters and values, and the same
  gradients of a loss that contains the input gradient (a gradient penalty), so its custom
  input gradient is differentiated correctly in turn."""
  monkeypatch.setattr(layers, 'on_cpu', lambda: cpu)
  x = jax.random.normal(jax.random.PRNGKey(0), (3, *size, 5))
  ours = layers.ConvStride2(8, kernel_size)
  theirs = nn.Conv(8, (kernel_size,) * 2, strides=(2, 2), padding='SAME')
  params = jax.tree.map(lambda p: p + 0.1, ours.init(jax.random.PRNGKey(1), x))
  assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape,
                                                         theirs.init(jax.random.PRNGKey(1), x))
  np.testing.assert_allclose(ours.apply(params, x), theirs.apply(params, x), rtol=1e-5,
                             atol=1e-5)

  def penalised(mod):
    def loss(p, x):
      critic = lambda x: jnp.tanh(mod.apply(p, x)).sum()  # noqa: E731
      return (jax.grad(critic)(x) ** 2).sum() + critic(x)
    return loss

  g_ours = jax.grad(penalised(ours), argnums=(0, 1))(params, x)
  g_theirs = jax.grad(penalised(theirs), argnums=(0, 1))(params, x)
  for a, b in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_theirs), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max())

def test_materialized_cotangent_is_bit_identical():
  """The transposed convolution's backward passes its cotangent through a product with the
  identity (so XLA computes it once); that must not change a bit of it."""
  g = jax.random.normal(jax.random.PRNGKey(0), (4, 6, 6, 64)) * jnp.logspace(-30, 30, 64)
  np.testing.assert_array_equal(jax.jit(layers._materialize)(g), g)


def test_conv_stride1_gradients_are_lax_gradients():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 6, 8))
  k = jax.random.normal(jax.random.PRNGKey(1), (2, 3, 8, 4))
  pad = ((1, 0), (1, 2))
  fast = lambda x, k: (layers.conv_stride1(x, k, pad) ** 2).sum()  # noqa: E731
  ref = lambda x, k: (layers._conv(x, k, pad) ** 2).sum()  # noqa: E731
  for a, b in zip(jax.grad(fast, (0, 1))(x, k), jax.grad(ref, (0, 1))(x, k), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def _count(tree) -> int:
  return sum(x.size for x in jax.tree.leaves(tree))


@pytest.mark.parametrize('shape', [(28, 28, 1), (32, 32, 3), (64, 64, 3), (30, 26, 1)])
def test_dcgan_has_the_image_shape(shape):
  model = models.build_model('dcgan', image_shape=shape)
  z = jnp.zeros((2, 100))
  variables = model.init(jax.random.PRNGKey(0), z)
  images = model.apply(variables, z, method='generate')
  assert images.shape == (2, *shape)
  assert np.all(np.abs(images) <= 1)
  out = model.apply(variables, images, method='discriminate')
  assert out['logits'].shape == (2,)


def test_dcgan_mnist_has_radford_sizes():
  variables = models.build_model('dcgan', image_shape=(28, 28, 1)).init(
      jax.random.PRNGKey(0), jnp.zeros((1, 100)))
  params, stats = variables['params'], variables['batch_stats']
  # G: dense 100 -> 7x7x128, BN, 4x4 up to 64, BN, 4x4 up to 1 (biases included).
  # No bias where batch norm follows (as PyTorch's DCGAN example).
  g = 100 * 6272 + 2 * 128 + 16 * 128 * 64 + 2 * 64 + (16 * 64 + 1)
  # D: 4x4 conv 1 -> 64, 4x4 conv 64 -> 128, BN, dense 7x7x128 -> 1.
  d = (16 * 64 + 64) + 16 * 64 * 128 + 2 * 128 + (6272 + 1)
  assert _count(params['generator']) == g
  assert _count(params['discriminator']) == d
  assert _count(stats) == 2 * (128 + 64) + 2 * 128  # Running means and variances.


def test_generator_upsampling_forms_agree():
  """The three upsampling forms give the generator the same values and parameter
  gradients (its batch norm in training mode included)."""
  z = jax.random.normal(jax.random.PRNGKey(0), (4, 100))
  gans = {form: models.build_model('dcgan', image_shape=(28, 28, 1), upsampling=form)
          for form in ('strided', 'subpixel', 'transpose')}
  variables = gans['strided'].init(jax.random.PRNGKey(1), z)
  target = jax.random.normal(jax.random.PRNGKey(2), (4, 28, 28, 1))

  def loss(params, gan):
    images, _ = gan.apply({**variables, 'params': params}, z, train=True,
                          method='generate', mutable=['batch_stats'])
    return ((images - target) ** 2).sum()

  ref = gans['transpose']
  for form in ('strided', 'subpixel'):
    np.testing.assert_allclose(gans[form].apply(variables, z, method='generate'),
                               ref.apply(variables, z, method='generate'), atol=1e-5)
    grads = jax.grad(loss)(variables['params'], gans[form])
    ref_grads = jax.grad(loss)(variables['params'], ref)
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads), strict=True):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max())


@pytest.mark.parametrize('shape', [(16, 5, 4, 6), (32, 7)])
@pytest.mark.parametrize('cpu', [True, False], ids=['cpu_path', 'accelerator_path'])
def test_batch_norm_is_flax_batch_norm(shape, cpu, monkeypatch):
  """layers.BatchNorm: Flax's BatchNorm's variables, values, gradients (input, scale,
  bias) and running averages, and the same values with running averages; with its moments
  as products with ones (CPU) and as plain reductions (forced here, as off CPU)."""
  monkeypatch.setattr(layers, 'on_cpu', lambda: cpu)
  x = 3 * jax.random.normal(jax.random.PRNGKey(0), shape) + 1
  target = jax.random.normal(jax.random.PRNGKey(1), shape)
  ours = layers.BatchNorm(momentum=0.9)
  theirs = nn.BatchNorm(use_running_average=False, momentum=0.9)
  variables = ours.init(jax.random.PRNGKey(2), x)
  assert jax.tree.map(jnp.shape, variables) == jax.tree.map(
      jnp.shape, theirs.init(jax.random.PRNGKey(2), x))
  variables = jax.tree.map(lambda v: v + 0.3 * jnp.arange(v.shape[-1]), variables)

  def loss(params, x, mod):
    y, stats = mod.apply({**variables, 'params': params}, x, mutable=['batch_stats'])
    return (jnp.tanh(y) * target).sum(), (y, stats)

  (l_ours, (y_ours, s_ours)), g_ours = jax.value_and_grad(loss, (0, 1), has_aux=True)(
      variables['params'], x, ours)
  (l_theirs, (y_theirs, s_theirs)), g_theirs = jax.value_and_grad(
      loss, (0, 1), has_aux=True)(variables['params'], x, theirs)
  np.testing.assert_allclose(y_ours, y_theirs, rtol=1e-5, atol=1e-5)
  for a, b in zip(jax.tree.leaves((g_ours, s_ours)), jax.tree.leaves((g_theirs, s_theirs)),
                  strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * np.abs(b).max())
  eval_ours = layers.BatchNorm(use_running_average=True).apply(variables, x)
  eval_theirs = nn.BatchNorm(use_running_average=True).apply(variables, x)
  np.testing.assert_allclose(eval_ours, eval_theirs, rtol=1e-6, atol=1e-6)


def test_infogan_and_mlp_gan_outputs():
  info = models.build_model('infogan', image_shape=(28, 28, 1))
  assert info.latent.size == 62 + 10 + 2
  z = jnp.zeros((3, info.latent.size))
  variables = info.init(jax.random.PRNGKey(0), z)
  out = info.apply(variables, z)
  assert out['logits'].shape == (3,)
  assert out['code_logits'].shape == (3, 10) and out['code_mean'].shape == (3, 2)
  mlp = models.build_model('mlp_gan', image_shape=(28, 28, 1))
  variables = mlp.init(jax.random.PRNGKey(0), jnp.zeros((3, 100)))
  assert mlp.apply(variables, jnp.zeros((3, 100)), method='generate').shape == (3, 28, 28, 1)
  # G 100-1200-1200-784; D maxout 784-240x5-240x5-1.
  assert _count(variables['params']['generator']) == 101 * 1200 + 1201 * 1200 + 1201 * 784
  assert _count(variables['params']['discriminator']) == 785 * 1200 + 241 * 1200 + 241


def test_latents_have_the_spec():
  spec = models.LatentSpec(noise_dim=5, noise='uniform', categories=4, continuous=2)
  keys = jax.random.split(jax.random.PRNGKey(0), 500)
  latent = jax.vmap(functools.partial(models.sample_latent, spec=spec))(keys)
  z = np.asarray(latent['z'])
  assert z.shape == (500, 11)
  assert np.all(np.abs(z[:, :5]) <= 1) and np.all(np.abs(z[:, 9:]) <= 1)
  np.testing.assert_array_equal(z[:, 5:9], np.eye(4)[np.asarray(latent['category'])])
  assert set(np.asarray(latent['category'])) == {0, 1, 2, 3}
  np.testing.assert_array_equal(z[:, 9:], latent['code'])
  grids = gan.image_inputs(spec, 16)
  assert grids['samples'][0].shape == (16, 11) and grids['samples'][1] == 4
  for name in ('traversal_category', 'traversal_code1', 'traversal_code2'):
    rows, ncols = grids[name]
    assert rows.shape == (40, 11) and ncols == 10
    np.testing.assert_array_equal(rows[:, 5:9].argmax(-1), np.repeat(np.arange(4), 10))
  code1 = grids['traversal_code1'][0]
  np.testing.assert_allclose(code1[:10, 9], np.linspace(-2, 2, 10))
  assert np.all(code1[:, 10] == 0) and np.all(code1[:, :5] == code1[:1, :5])


def test_noise_scale_shrinks_the_noise_only():
  spec = models.LatentSpec(noise_dim=5, noise='uniform', categories=4, continuous=2,
                           noise_scale=0.1)
  keys = jax.random.split(jax.random.PRNGKey(0), 500)
  z = np.asarray(jax.vmap(functools.partial(models.sample_latent, spec=spec))(keys)['z'])
  assert 0.09 < np.abs(z[:, :5]).max() <= 0.1
  assert np.abs(z[:, 9:]).max() > 0.9  # The continuous codes keep [-1, 1].
  noise = gan.image_inputs(spec, 4)['traversal_category'][0][:, :5]
  assert 0 < np.abs(noise).max() <= 0.1


def _kl_from_uniform(logits):
  """KL(mean posterior || uniform) of a batch of logits, from its definition."""
  mean = jax.nn.softmax(logits).mean(0)
  return jnp.sum(mean * jnp.log(mean * logits.shape[-1]))


def test_real_code_terms_match_their_definitions_on_any_device_count():
  """The balance term's value is the KL divergence of the whole batch's mean posterior from
  uniform, on 1 or 4 devices (here: vmapped shards); the per-device gradients, averaged as
  parameter gradients are, are the gradient of that global KL; entropy is the mean one."""
  logits = jax.random.normal(jax.random.PRNGKey(0), (8, 10)) * 3.0
  p = np.asarray(jax.nn.softmax(logits))
  want_entropy = -(p * np.log(p)).sum(-1).mean()
  mean = p.mean(0)
  want_balance = (mean * np.log(mean * 10)).sum()
  want_grad = jax.grad(_kl_from_uniform)(logits)
  for devices in (1, 4):
    shards = logits.reshape(devices, 8 // devices, 10)
    terms = jax.vmap(gan._real_code_terms, axis_name=parallel.AXIS)(shards)
    np.testing.assert_allclose(terms[0], want_balance, rtol=1e-5)
    np.testing.assert_allclose(np.mean(terms[1]), want_entropy, rtol=1e-5)
    grads = jax.vmap(jax.grad(lambda x: gan._real_code_terms(x)[0]),
                     axis_name=parallel.AXIS)(shards)
    # A device's parameter gradient is the sum over its examples; averaging over devices
    # divides by their number.
    np.testing.assert_allclose(grads.reshape(8, 10) / devices, want_grad, atol=1e-6)
  balance, entropy = jax.vmap(gan._real_code_terms, axis_name=parallel.AXIS)(
      jnp.zeros((1, 6, 10)))  # Every image's posterior uniform: balanced, uncertain.
  assert float(balance[0]) == pytest.approx(0.0, abs=1e-6)
  assert float(entropy[0]) == pytest.approx(np.log(10))


def test_code_statistics_without_labels():
  """Shares and mutual information of the categorical code on real images: one category
  holding two digits of ten shows as a 20% share."""
  balanced = np.eye(10) * 100  # counts[label, code]
  merged = balanced.copy()
  merged[9] = 0
  merged[9, 4] = 100  # Code 4 takes the nines; code 9 is unused.
  certain = {'posterior': merged.sum(0), 'entropy': 0.0}
  stats = gan.code_statistics(merged, **certain)
  assert stats['code_max_share'] == pytest.approx(0.2)
  assert stats['code_min_share'] == 0.0
  assert stats['code_mutual_info'] == pytest.approx(-(0.2 * np.log(0.2) + 8 * 0.1 * np.log(0.1)))
  stats = gan.code_statistics(balanced, balanced.sum(0), 0.0)
  assert stats['code_max_share'] == pytest.approx(0.1)
  assert stats['code_mutual_info'] == pytest.approx(np.log(10))
  # An uncertain Q (the same uniform posterior for every image) carries no information.
  assert gan.code_statistics(balanced, np.full(10, 100.0), 1000 * np.log(10))[
      'code_mutual_info'] == pytest.approx(0.0, abs=1e-12)


def test_real_code_terms_are_in_the_d_loss_and_spread_real_images():
  """With the terms weighted, D's loss is the published one plus the weighted terms, and one
  D update moves Q's posterior of those real images towards uniform."""
  steps, mesh, state, real = _steps_state_and_reals(_config(
      infogan_mnist, 'paper,smoke',
      **{'gan.real_balance_weight': 30.0, 'gan.real_entropy_weight': 0.5}))

  def update_then_balance(s, x):
    fakes = steps.make_fakes(s, x.shape[0], jax.random.PRNGKey(2))
    s, metrics = steps.d_update(s, x, fakes)
    out, _ = steps._discriminate(s.d_params, s.d_batch_stats, x)
    return jax.lax.pmean((metrics, gan._real_code_terms(out['code_logits'])[0]),
                         parallel.AXIS)

  metrics, after = parallel.data_parallel(update_then_balance, mesh)(state, real)
  np.testing.assert_allclose(metrics['d_loss'], metrics['d_adv'] + metrics['d_info'] +
                             30.0 * metrics['d_real_balance'] +
                             0.5 * metrics['d_real_entropy'], rtol=1e-6)
  assert after < 0.8 * metrics['d_real_balance']  # The balance before the update.


def test_consistency_term_is_the_kl_to_the_unshifted_posterior_which_gets_no_gradient():
  logits = jax.random.normal(jax.random.PRNGKey(0), (6, 10)) * 3.0
  shifted = jax.random.normal(jax.random.PRNGKey(1), (6, 10)) * 3.0
  p, q = np.asarray(jax.nn.softmax(logits)), np.asarray(jax.nn.softmax(shifted))
  want = (p * np.log(p)).sum(-1).mean() - (p * np.log(q)).sum(-1).mean()
  assert float(gan._consistency_term(logits, shifted)) == pytest.approx(want, rel=1e-5)
  assert float(gan._consistency_term(logits, logits)) == pytest.approx(0.0, abs=1e-6)
  target_grad, shifted_grad = jax.grad(gan._consistency_term, argnums=(0, 1))(logits, shifted)
  assert not np.any(target_grad) and np.abs(shifted_grad).max() > 1e-3


def _is_translation(x, y) -> bool:
  """Whether some offset within 2 pixels maps image x onto y, -1 filling in."""
  padded = np.pad(x, ((2, 2), (2, 2), (0, 0)), constant_values=-1.0)
  return any(np.allclose(padded[dy:dy + 28, dx:dx + 28], y, atol=1e-6)
             for dy in range(5) for dx in range(5))


@pytest.mark.parametrize('transform', ['shift', 'affine'])
def test_consistency_term_is_in_the_d_loss_and_an_update_lowers_it(transform):
  """With `gan.real_consistency_weight`, D's loss is the published one plus the weighted
  KL between Q's posteriors of real images and of their transformed copies (background
  filled), and one D update makes Q agree more on those same pairs. 'shift' moves each image
  by up to 2 pixels; 'affine' also rotates, shears and zooms, so no translation gives its
  images."""
  steps, mesh, state, real = _steps_state_and_reals(_config(
      infogan_mnist, 'paper,smoke', **{'gan.real_consistency_weight': 50.0,
                        'gan.real_consistency_transform': transform}))

  def transformed_reals(s, x):
    return steps.transformed(x, steps.make_fakes(s, x.shape[0], jax.random.PRNGKey(2)).keys)

  def update_then_consistency(s, x):
    fakes = steps.make_fakes(s, x.shape[0], jax.random.PRNGKey(2))
    s, metrics = steps.d_update(s, x, fakes)
    (a, _), (b, _) = (steps._discriminate(s.d_params, s.d_batch_stats, y)
                      for y in (x, steps.transformed(x, fakes.keys)))
    return jax.lax.pmean((metrics, gan._consistency_term(a['code_logits'], b['code_logits'])),
                         parallel.AXIS)

  moved = parallel.data_parallel(transformed_reals, mesh, out_batched=True)(state, real)
  metrics, after = parallel.data_parallel(update_then_consistency, mesh)(state, real)
  np.testing.assert_allclose(metrics['d_loss'], metrics['d_adv'] + metrics['d_info'] +
                             50.0 * metrics['d_real_consistency'], rtol=1e-6)
  assert after < 0.5 * metrics['d_real_consistency']
  x, y = np.asarray(real), np.asarray(moved)
  assert y.min() >= -1.0 - 1e-6 and y.max() <= 1.0 + 1e-6
  changed = [i for i in range(len(x)) if not np.allclose(x[i], y[i], atol=1e-6)]
  assert len(changed) >= 6  # 24 of 25 offsets move an image; an affine map moves all.
  translations = [_is_translation(x[i], y[i]) for i in changed]
  assert all(translations) if transform == 'shift' else not any(translations)


def test_code_accuracy_takes_the_best_one_to_one_mapping():
  rng = np.random.default_rng(0)
  counts = rng.integers(0, 50, (5, 5)).astype(float)
  best = max(sum(counts[i, p[i]] for i in range(5)) for p in itertools.permutations(range(5)))
  assert gan.code_accuracy(counts) == pytest.approx(best / counts.sum())
  assert gan.code_accuracy(np.eye(10)[np.random.default_rng(1).permutation(10)] * 7) == 1.0


# --- Updates touch only their own network ----------------------------------------------------

def _config(module, variant='smoke', **overrides):
  config = module.get_config(variant)
  with config.unlocked():
    for key, value in overrides.items():
      node = config
      *path, last = key.split('.')
      for part in path:
        node = node[part]
      node[last] = value
  return config


def _relativistic_d(*, real_logits, fake_logits):
  return jax.nn.softplus(-(real_logits - fake_logits))


def _relativistic_g(*, fake_logits, real_logits):
  return jax.nn.softplus(-(fake_logits - real_logits))


# A loss registered as user code registers one: its generator loss reads D on real images.
losses.register_adversarial('test_relativistic', _relativistic_d, _relativistic_g,
                            uses_real=True)

ISOLATION_CASES = {
    **{loss: (dcgan_mnist, {'gan.loss': loss}) for loss in NUMPY_LOSSES},
    'gradient_penalty': (wgan_gp_mnist, {}),
    'r1': (dcgan_mnist, {'gan.loss': 'non_saturating', 'gan.penalty': 'r1',
                         'gan.penalty_weight': 1.0, 'model.discriminator_norm': 'layer'}),
    'infogan': (infogan_mnist, {}),
    'mlp_gan_dropout': (gan_mnist, {}),
    'relativistic_batch_norm': (dcgan_mnist, {'gan.loss': 'test_relativistic'}),
}


def _tree_equal(a, b) -> bool:
  a, b = jax.tree.leaves(a), jax.tree.leaves(b)
  return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def _steps_state_and_reals(config):
  """The config's GANSteps, a one-device mesh, its initial state there and 8 real images."""
  task = gan.build_task(config, (28, 28, 1))
  mesh = parallel.make_mesh()
  state = parallel.replicate(mesh, task.init_state(jax.random.PRNGKey(0)))
  real = parallel.shard_batch(mesh, np.random.default_rng(1).uniform(
      -1, 1, (8, 28, 28, 1)).astype(np.float32))
  return task.train_step.__self__, mesh, state, real


@pytest.mark.parametrize('case', sorted(ISOLATION_CASES))
def test_each_update_changes_only_its_own_network(case):
  """The D update leaves G's params, optimizer state, statistics and EMA exactly as they
  were (no gradient of the D loss reaches G), and the G update leaves all of D's."""
  module, overrides = ISOLATION_CASES[case]
  steps, mesh, state, real = _steps_state_and_reals(_config(module, **overrides))
  fakes = lambda s, x: steps.make_fakes(s, x.shape[0], jax.random.PRNGKey(2))  # noqa: E731
  d_fn = parallel.data_parallel(lambda s, x: steps.d_update(s, x, fakes(s, x))[0], mesh)
  g_fn = parallel.data_parallel(lambda s, x: steps.g_update(s, fakes(s, x), x)[0], mesh)
  after_d = d_fn(state, real)
  after_g = g_fn(state, real)
  g_fields = ('g_params', 'g_opt_state', 'g_batch_stats', 'ema_g_params')
  d_fields = ('d_params', 'd_opt_state', 'd_batch_stats')
  for field in g_fields:
    assert _tree_equal(getattr(after_d, field), getattr(state, field)), field
  for field in d_fields:
    assert _tree_equal(getattr(after_g, field), getattr(state, field)), field
  assert not _tree_equal(after_d.d_params, state.d_params)
  assert not _tree_equal(after_g.g_params, state.g_params)
  assert not _tree_equal(after_g.ema_g_params, state.ema_g_params)


def test_penalty_with_batch_norm_in_the_critic_is_refused():
  config = _config(dcgan_mnist, **{'gan.penalty': 'r1', 'gan.penalty_weight': 1.0})
  with pytest.raises(ValueError, match='discriminator_norm=layer'):
    gan.build_task(config, (28, 28, 1))


def test_generator_update_reuses_or_redraws_the_fakes_as_configured():
  """gan.reuse_fakes=True: the G update is on the D update's latents (one G forward);
  False: on fresh latents. The D updates are the same either way."""
  mesh = parallel.make_mesh()
  batch = parallel.shard_batch(mesh, {'image': np.random.default_rng(1).uniform(
      size=(8, 28, 28, 1)).astype(np.float32), 'label': np.zeros(8, np.int32)})
  after = {}
  for reuse in (True, False):
    task = gan.build_task(_config(dcgan_mnist, **{'gan.reuse_fakes': reuse}), (28, 28, 1))
    steps = task.train_step.__self__
    state = parallel.replicate(mesh, task.init_state(jax.random.PRNGKey(0)))
    after[reuse] = parallel.data_parallel(lambda s, b, t=task: t.train_step(s, b)[0], mesh)(
        state, batch)
    # The reused fakes are exactly those of the D update: G's update from them alone.
    images = batch['image'] * 2.0 - 1.0

    def by_hand(s, x, st=steps):
      key = jax.random.fold_in(jax.random.fold_in(s.rng, s.step), 0)
      fakes = st.make_fakes(s, x.shape[0], key)
      s, _ = st.d_update(s, x, fakes)
      return st.g_update(s, fakes, x)[0]

    manual = parallel.data_parallel(by_hand, mesh)(state, images)
    assert _tree_equal(manual.g_params, after[reuse].g_params) == reuse
  assert _tree_equal(after[True].d_params, after[False].d_params)
  assert not _tree_equal(after[True].g_params, after[False].g_params)


def test_recomputed_sample_statistics_are_the_ema_generators_own():
  """gan.sample_stats=recompute: eval-mode samples of the latents the statistics come from
  equal the EMA generator in train mode on those latents (which normalises with their own
  moments); with 'generator' they use the current G's running averages instead."""
  mesh = parallel.make_mesh()
  out = {}
  for mode in ('recompute', 'generator'):
    task = gan.build_task(_config(dcgan_mnist, **{'gan.sample_stats': mode,
                                                  'gan.stats_samples': 64}), (28, 28, 1))
    steps = task.train_step.__self__
    state = task.init_state(jax.random.PRNGKey(0))
    # EMA weights unlike G's, and G's running averages unlike anything the EMA G computes.
    state = state.replace(
        ema_g_params=jax.tree.map(lambda p: p * 1.3 + 0.01, state.ema_g_params),
        g_batch_stats=jax.tree.map(lambda v: v + 0.5, state.g_batch_stats))
    state = parallel.replicate(mesh, state)

    def both(s, _, st=steps):
      z = st._latents(parallel.example_keys(jax.random.PRNGKey(1), 64))['z']
      train_mode, _ = gan._apply(st.model.generator, s.ema_g_params, s.g_batch_stats, z,
                                 train=True)
      return st.generate(s, z), (train_mode + 1.0) / 2.0

    out[mode] = parallel.data_parallel(both, mesh, out_batched=True)(
        state, parallel.shard_batch(mesh, np.zeros((64, 1), np.float32)))
  sampled, train_mode = out['recompute']
  np.testing.assert_allclose(sampled, train_mode, atol=2e-4)
  sampled, train_mode = out['generator']
  assert np.abs(sampled - train_mode).max() > 0.05


@pytest.mark.parametrize('d_stats', ['real', 'real_and_fake'])
def test_discriminator_statistics_come_from_the_configured_batches(d_stats):
  steps, mesh, state, real = _steps_state_and_reals(
      _config(dcgan_mnist, **{'gan.d_stats': d_stats}))

  def update_and_real_pass(s, x, st=steps):
    fakes = st.make_fakes(s, x.shape[0], jax.random.PRNGKey(2))
    _, real_only = gan._apply(st.model.discriminator, s.d_params, s.d_batch_stats, x,
                              train=True)
    return st.d_update(s, x, fakes)[0].d_batch_stats, real_only

  after, real_only = parallel.data_parallel(update_and_real_pass, mesh)(state, real)
  assert _tree_equal(after, real_only) == (d_stats == 'real')


def test_unknown_statistics_choices_are_refused():
  for field in ('d_stats', 'sample_stats'):
    with pytest.raises(ValueError, match=f'gan.{field}=.x. is unknown; known: '):
      gan.build_task(_config(dcgan_mnist, **{f'gan.{field}': 'x'}), (28, 28, 1))
