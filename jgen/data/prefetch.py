"""Device batches made ahead of the step that takes them.

The next host batches are read (NumPy gathers from the memory-mapped arrays) and their
host-to-device transfers started while the current step runs, keeping `size` batches
beyond the current one on the devices. JAX dispatches steps asynchronously, so a batch made
after a step's dispatch overlaps that step. With `threaded`, a background thread makes them,
which also hides slow reads (disk); on a CPU backend the cores belong to XLA and a thread
only competes for them, so the train loop makes them in its own thread there
(`bench/data_rate.py` measures both). The stream's order is the host iterator's, so what a
step sees, and a resume's exactness, do not change.
"""

import collections
import queue
import threading
from collections.abc import Callable, Iterator

_DONE = object()


class _Failure:
  def __init__(self, error: BaseException):
    self.error = error


def _make(batches, put):
  """The next device batch, or _DONE, or the _Failure that making it raised."""
  try:
    return put(next(batches))
  except StopIteration:
    return _DONE
  except BaseException as e:  # Raised by the `next` that would have returned it.
    return _Failure(e)


def _fill(batches, put, ready: queue.Queue, stop: threading.Event) -> None:
  """The thread: makes batches into `ready` until the stream ends, fails or is stopped."""
  while True:
    item = _make(batches, put)
    while not stop.is_set():  # Waits for room, checking `stop` every 0.1 s.
      try:
        ready.put(item, timeout=0.1)
        break
      except queue.Full:
        continue
    if stop.is_set() or item is _DONE or isinstance(item, _Failure):
      return


class Prefetcher:
  """Iterates `put(batch)` for the batches of `batches`, `size` ahead.

  Args:
    batches: host batches (an iterator, usually endless).
    put: host batch -> device batch (`parallel.shard_batch` on the run's mesh).
    size: device batches kept beyond the one a step takes (2: the next step's, and the one
      after it, in transfer).
    threaded: make them on a background thread, instead of in `next`.

  An error in `batches` or `put` is raised by the `next` call that would have returned that
  batch. `close()` stops the thread, as does dropping the last reference.
  """

  def __init__(self, batches: Iterator, put: Callable, size: int = 2, threaded: bool = True):
    if size < 1:
      raise ValueError(f'prefetch size must be at least 1, got {size}')
    self._batches, self._put, self._size = batches, put, size
    self._stop = threading.Event()
    self._ready = collections.deque()
    self._thread = None
    if threaded:
      # The thread holds no reference to `self`, so an abandoned Prefetcher is collected
      # and its __del__ stops the thread.
      self._queue = queue.Queue(maxsize=size)
      self._thread = threading.Thread(target=_fill, args=(batches, put, self._queue,
                                                          self._stop),
                                      daemon=True, name='jgen-prefetch')
      self._thread.start()

  def __iter__(self):
    return self

  def __next__(self):
    if self._stop.is_set():
      raise StopIteration
    if self._thread is not None:
      item = self._queue.get()
    else:
      while len(self._ready) <= self._size and not (
          self._ready and (self._ready[-1] is _DONE or isinstance(self._ready[-1], _Failure))):
        self._ready.append(_make(self._batches, self._put))
      item = self._ready.popleft()
    if item is _DONE:
      self.close()
      raise StopIteration
    if isinstance(item, _Failure):
      self.close()
      raise item.error
    return item

  def close(self) -> None:
    self._stop.set()
    if self._thread is not None:
      self._thread.join()
    self._ready.clear()

  def __del__(self):
    self._stop.set()
