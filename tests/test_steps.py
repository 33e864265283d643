"""The autoencoder step in-process: it learns, compiles once, is pure, and its state survives
a checkpoint round trip unchanged."""

import jax
import numpy as np
import pytest

from configs import ae_mnist
from jgen import parallel, steps
from jgen.checkpoint import Checkpointer, digest, load_parameters
from jgen.registry import ConfigError


@pytest.fixture(scope='module')
def setup():
  config = ae_mnist.get_config('smoke')
  with config.unlocked():
    config.model.hidden_sizes = (64, 32)
    config.model.latent_dim = 8
    config.model.dropout = 0.1
  task = steps.build_task(config, (28, 28, 1))
  mesh = parallel.make_mesh()
  rng = np.random.default_rng(0)
  batch = {'image': rng.uniform(size=(32, 28, 28, 1)).astype(np.float32),
           'label': np.zeros(32, np.int32)}
  return task, mesh, batch


def _fresh_state(task, mesh):
  return parallel.replicate(mesh, task.init_state(jax.random.PRNGKey(0)))


def test_step_learns_and_compiles_once(setup):
  task, mesh, batch = setup
  train_fn = parallel.data_parallel(task.train_step, mesh, donate_argnums=(0,))
  state = _fresh_state(task, mesh)
  losses = []
  for _ in range(30):
    state, metrics = train_fn(state, parallel.shard_batch(mesh, batch))
    losses.append(float(metrics['loss']))
  assert train_fn._cache_size() == 1
  assert int(state.step) == 30
  assert losses[-1] < losses[0]
  assert set(metrics) == {'loss', 'sq_err_per_image', 'l2_grads', 'l2_params', 'l2_updates'}


def test_step_is_a_pure_function_of_state_and_batch(setup):
  task, mesh, batch = setup
  train_fn = parallel.data_parallel(task.train_step, mesh)
  state = _fresh_state(task, mesh)
  a, _ = train_fn(state, parallel.shard_batch(mesh, batch))
  b, _ = train_fn(state, parallel.shard_batch(mesh, batch))
  for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
    np.testing.assert_array_equal(x, y)
  # Dropout differs from step to step: the key folds in the step number.
  c, _ = train_fn(a, parallel.shard_batch(mesh, batch))
  assert int(c.step) == 2


def test_eval_step_counts_only_real_examples(setup):
  task, mesh, batch = setup
  eval_fn = parallel.data_parallel(task.eval_step, mesh)
  state = _fresh_state(task, mesh)
  full = {**batch, 'mask': np.ones(32, np.float32)}
  half = {**batch, 'mask': np.r_[np.ones(16), np.zeros(16)].astype(np.float32)}
  sums_full = jax.device_get(eval_fn(state, parallel.shard_batch(mesh, full)))
  sums_half = jax.device_get(eval_fn(state, parallel.shard_batch(mesh, half)))
  assert float(sums_full['count']) == 32 and float(sums_half['count']) == 16
  doubled = {**full, 'image': np.concatenate([batch['image'][:16]] * 2)}
  sums_doubled = jax.device_get(eval_fn(state, parallel.shard_batch(mesh, doubled)))
  np.testing.assert_allclose(2 * float(sums_half['loss']), float(sums_doubled['loss']), rtol=1e-5)


def _train_and_save(setup, workdir) -> tuple:
  """One train step from the fresh state, saved as step 1 in `workdir`: (state, its
  Checkpointer, the write finished)."""
  task, mesh, batch = setup
  train_fn = parallel.data_parallel(task.train_step, mesh)
  state, _ = train_fn(_fresh_state(task, mesh), parallel.shard_batch(mesh, batch))
  ckpt = Checkpointer(str(workdir), every_steps=1, keep=2)
  assert ckpt.save(1, state)
  ckpt.wait()
  return state, ckpt


def test_checkpoint_round_trip(setup, tmp_path):
  task, mesh, _ = setup
  state, ckpt = _train_and_save(setup, tmp_path)
  restored = ckpt.restore(_fresh_state(task, mesh))
  ckpt.close()
  leaves_a, tree_a = jax.tree.flatten(state)
  leaves_b, tree_b = jax.tree.flatten(restored)
  assert tree_a == tree_b
  for x, y in zip(leaves_a, leaves_b, strict=True):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_digest_changes_with_any_bit_and_not_with_a_copy(setup):
  task, mesh, _ = setup
  state = _fresh_state(task, mesh)
  base = np.asarray(digest(state))
  assert np.array_equal(np.asarray(digest(jax.tree.map(lambda x: x.copy(), state))), base)
  kernel = np.array(state.params['decoder']['Dense_0']['kernel'])
  for index in ((0, 0), (3, 17), (-1, -1)):
    flipped = kernel.copy()
    flipped.view(np.uint32)[index] ^= 1  # The lowest mantissa bit of one weight.
    params = jax.tree.map(lambda x: x, state.params)
    params['decoder']['Dense_0']['kernel'] = flipped
    assert not np.array_equal(np.asarray(digest(state.replace(params=params))), base), index
  swapped = kernel.copy()
  swapped[[0, 1]] = swapped[[1, 0]]  # Same words, other places: the weighted sum differs.
  params = jax.tree.map(lambda x: x, state.params)
  params['decoder']['Dense_0']['kernel'] = swapped
  assert not np.array_equal(np.asarray(digest(state.replace(params=params))), base)


def test_fine_tuning_loads_parameters_only(setup, tmp_path):
  """`init_checkpoint`: the parameters of a trained state; step, optimizer state and key of
  the new run. A checkpoint of another architecture is one error naming the parameter."""
  task, mesh, _ = setup
  trained, ckpt = _train_and_save(setup, tmp_path)
  ckpt.close()
  fresh = parallel.replicate(mesh, task.init_state(jax.random.PRNGKey(7)))
  loaded = load_parameters(fresh, str(tmp_path / 'checkpoints' / '1' / 'default'))
  assert int(loaded.step) == 0
  for got, want in ((loaded.params, trained.params), (loaded.opt_state, fresh.opt_state),
                    (loaded.rng, fresh.rng)):
    for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  config = ae_mnist.get_config('smoke')
  with config.unlocked():
    config.model.hidden_sizes, config.model.latent_dim = (64, 32), 4
  other = steps.build_task(config, (28, 28, 1)).init_state(jax.random.PRNGKey(0))
  with pytest.raises(ConfigError, match=r'params\.decoder\.Dense_0\.kernel has shape \(8, 32\) '
                     r'there and \(4, 32\) in this config'):
    load_parameters(parallel.replicate(mesh, other),
                    str(tmp_path / 'checkpoints' / '1' / 'default'))


def test_checkpointer_keeps_the_newest_n(setup, tmp_path):
  task, mesh, _ = setup
  state = _fresh_state(task, mesh)
  ckpt = Checkpointer(str(tmp_path), every_steps=5, keep=2)
  saved = [step for step in range(1, 21) if ckpt.save(step, state)]
  ckpt.wait()
  assert saved == [5, 10, 15, 20]
  assert sorted(ckpt.manager.all_steps()) == [15, 20]
  ckpt.close()


def test_shift_until_stops_shifting_at_its_step():
  """`augment.shift_until` 0.5 of 4 steps: steps 0-1 are the always-shifting step's, steps 2-3
  the unshifted step's (same weights, batch and dropout keys)."""
  def task_with(max_shift, until):
    config = ae_mnist.get_config('smoke')
    with config.unlocked():
      config.model.hidden_sizes = (64, 32)
      config.model.latent_dim = 8
      config.num_train_steps = 4
      config.augment.max_shift = max_shift
      config.augment.shift_until = until
    return steps.build_task(config, (28, 28, 1))

  mesh = parallel.make_mesh()
  batch = parallel.shard_batch(mesh, {
      'image': np.random.default_rng(0).uniform(size=(32, 28, 28, 1)).astype(np.float32),
      'label': np.zeros(32, np.int32)})
  gated, always, never = (parallel.data_parallel(task_with(*a).train_step, mesh)
                          for a in ((1, 0.5), (1, 1.0), (0, 1.0)))
  state = _fresh_state(task_with(1, 0.5), mesh)
  for step in range(4):
    new, metrics = gated(state, batch)
    want = (always if step < 2 else never)(state, batch)[1]
    other = (never if step < 2 else always)(state, batch)[1]
    assert float(metrics['loss']) == float(want['loss']), step
    assert float(metrics['loss']) != float(other['loss']), step
    state = new
