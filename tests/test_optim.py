"""Learning-rate schedules by name: their shape at the points that define them."""

import numpy as np
import pytest

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
