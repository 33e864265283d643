"""jgen.data.prefetch: the same batches in the same order, made ahead (on a thread or in
`next`), errors raised where the batch would have been, and a thread that stops."""

import gc
import threading
import time

import numpy as np
import pytest

from jgen.data.prefetch import Prefetcher


@pytest.mark.parametrize('threaded, ahead', [(True, [0, 1, 2, 3]), (False, [0, 1, 2])])
def test_batches_come_in_order_and_made_ahead(threaded, ahead):
  """Two batches beyond the one taken: in `next`, exactly those; on a thread, those two
  waiting and one more made (blocked until there is room): no further."""
  made = []

  def put(batch):
    made.append(batch)
    return batch * 10

  prefetcher = Prefetcher(iter(range(100)), put, size=2, threaded=threaded)
  assert next(prefetcher) == 0
  deadline = time.time() + 5
  while len(made) < len(ahead) and time.time() < deadline:
    time.sleep(0.01)
  time.sleep(0.05)
  assert made == ahead
  assert [next(prefetcher) for _ in range(5)] == [10, 20, 30, 40, 50]
  prefetcher.close()
  with pytest.raises(StopIteration):
    next(prefetcher)


@pytest.mark.parametrize('threaded', [True, False])
def test_a_finite_stream_ends_and_an_error_is_raised_in_place(threaded):
  assert list(Prefetcher(iter(range(5)), lambda b: b, threaded=threaded)) == [0, 1, 2, 3, 4]

  def broken():
    yield np.zeros(2)
    yield np.zeros(2)
    raise OSError('disk gone')

  prefetcher = Prefetcher(broken(), lambda b: b + 1, threaded=threaded)
  for _ in range(2):
    np.testing.assert_array_equal(next(prefetcher), np.ones(2))
  with pytest.raises(OSError, match='disk gone'):
    next(prefetcher)


def test_close_stops_a_producer_waiting_for_room():
  before = threading.active_count()
  prefetcher = Prefetcher(iter(range(10**9)), lambda b: b, size=1)
  next(prefetcher)
  prefetcher.close()
  assert threading.active_count() == before


def test_an_abandoned_prefetcher_stops_its_thread():
  prefetcher = Prefetcher(iter(range(10**9)), lambda b: b, size=1)
  next(prefetcher)
  thread = prefetcher._thread
  del prefetcher
  gc.collect()
  thread.join(timeout=5)
  assert not thread.is_alive()
