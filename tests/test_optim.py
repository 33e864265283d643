"""Learning-rate schedules by name (their shape at the points that define them), and the
parameter average (`optimizer.ema_decay`)."""

import numpy as np
import optax
import pytest
from conftest import ROOT
from flax.training import train_state

import jgen
from jgen import optim


@pytest.mark.parametrize('name', ['constant', 'cosine', 'linear'])
def test_schedules_warm_up_linearly(name):
  lr = optim.SCHEDULES.get(name)(learning_rate=2.0, warmup_steps=10, total_steps=110)
  np.testing.assert_allclose([float(lr(s)) for s in (0, 5, 10)], [0.0, 1.0, 2.0], rtol=1e-6)


def test_linear_schedule_falls_in_a_straight_line_to_zero():
  lr = optim.SCHEDULES.get('linear')(learning_rate=2.0, warmup_steps=10, total_steps=110)
  np.testing.assert_allclose([float(lr(s)) for s in (35, 60, 85, 110, 200)],
                             [1.5, 1.0, 0.5, 0.0, 0.0], atol=1e-6)
  # Cosine is above the line in the first half of the decay and below it in the second.
  cos = optim.SCHEDULES.get('cosine')(learning_rate=2.0, warmup_steps=10, total_steps=110)
  assert float(cos(35)) > 1.5 and float(cos(85)) < 0.5 and float(cos(110)) == 0.0
  no_warmup = optim.SCHEDULES.get('linear')(learning_rate=2.0, warmup_steps=0, total_steps=100)
  np.testing.assert_allclose([float(no_warmup(s)) for s in (0, 50, 100)], [2.0, 1.0, 0.0],
                             atol=1e-6)


def test_unknown_schedule_names_the_known_ones():
  with pytest.raises(Exception, match='linear'):
    optim.SCHEDULES.get('step')


def test_the_parameter_average_is_the_weighted_sum_of_the_iterates_and_changes_no_update():
  """`with_average(tx, d)`: the parameters follow `tx` exactly, and the average after T
  updates is the closed form of the recursion over the iterates p_t, with update t's decay
  d_t = min(d, (1 + t) / (10 + t)) (the warm-up; here 0.1, 0.18, 0.25, then d = 0.3):
  prod(d_t) p_0 + sum_t (1 - d_t) prod(d_s, s > t) p_(t+1), from the recorded trajectory."""
  decay, grads = 0.3, np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
  plain, averaged = optax.adam(0.1), optim.with_average(optax.adam(0.1), decay)
  p, q = np.ones(3, np.float32), np.ones(3, np.float32)
  s, t = plain.init(p), averaged.init(q)
  iterates = [p]
  for g in grads:
    u, s = plain.update(g, s, p)
    p = optax.apply_updates(p, u)
    v, t = averaged.update(g, t, q)
    q = optax.apply_updates(q, v)
    iterates.append(np.asarray(p))
  np.testing.assert_array_equal(q, p)
  d = [min(decay, (1 + k) / (10 + k)) for k in range(len(grads))]
  assert d[:3] == [0.1, 2 / 11, 0.25] and d[3:] == [decay] * 3
  want = np.prod(d) * iterates[0] + sum((1 - d[k]) * np.prod(d[k + 1:]) * iterates[k + 1]
                                        for k in range(len(grads)))
  np.testing.assert_allclose(t.average, want, rtol=1e-5)
  assert int(t.count) == len(grads)
  assert not np.allclose(t.average, p, rtol=1e-3)


def test_ema_decay_is_off_by_default_and_the_state_then_has_no_average():
  """With `optimizer.ema_decay` 0 the optimizer state is the plain optimizer's (so older
  checkpoints keep restoring) and evaluation reads the parameters themselves."""
  config = jgen.load_config(str(ROOT / 'configs' / 'ae_mnist.py'))
  assert config.optimizer.ema_decay == 0.0
  tx = optim.build_optimizer(config.optimizer, 100)
  assert not isinstance(tx.init({'w': np.zeros(2)}), optim.AveragedState)
  state = train_state.TrainState.create(apply_fn=None, params={'w': np.zeros(2)}, tx=tx)
  assert optim.evaluated(state) is state
  config.optimizer.ema_decay, config.optimizer.warmup_steps = 0.5, 0
  tx = optim.build_optimizer(config.optimizer, 100)
  state = train_state.TrainState.create(apply_fn=None, params={'w': np.zeros(2)}, tx=tx)
  state = state.apply_gradients(grads={'w': np.ones(2)})
  assert isinstance(state.opt_state, optim.AveragedState)
  np.testing.assert_array_equal(optim.evaluated(state).params['w'],
                                state.opt_state.average['w'])
  assert not np.array_equal(state.opt_state.average['w'], state.params['w'])
