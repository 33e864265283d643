"""Device batches made ahead of the step that takes them.

A background thread reads the next host batches (NumPy gathers from the memory-mapped
arrays) and starts their host-to-device transfers while the current step runs, keeping
`size` batches ready on the devices. The stream's order is the host iterator's, so what a
step sees (and a resume's exactness) does not change.
"""

import queue
import threading
from collections.abc import Callable, Iterator

_DONE = object()


class _Failure:
  def __init__(self, error: BaseException):
    self.error = error


class Prefetcher:
  """Iterates `put(batch)` for the batches of `batches`, `size` ahead, made on a thread.

  Args:
    batches: host batches (an iterator, usually endless).
    put: host batch -> device batch (`parallel.shard_batch` on the run's mesh).
    size: device batches kept ready (2: the next step's, and the one after it in transfer).

  An error in `batches` or `put` is raised by the `next` call that would have returned that
  batch. `close()` stops the thread (also on garbage collection of an unfinished loop).
  """

  def __init__(self, batches: Iterator, put: Callable, size: int = 2):
    if size < 1:
      raise ValueError(f'prefetch size must be at least 1, got {size}')
    self._queue = queue.Queue(maxsize=size)
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._fill, args=(batches, put), daemon=True,
                                    name='jgen-prefetch')
    self._thread.start()

  def _offer(self, item) -> bool:
    """Puts `item` in the queue once there is room; False if stopped meanwhile."""
    while not self._stop.is_set():
      try:
        self._queue.put(item, timeout=0.1)
        return True
      except queue.Full:
        continue
    return False

  def _fill(self, batches, put) -> None:
    try:
      for batch in batches:
        if not self._offer(put(batch)):
          return
      self._offer(_DONE)
    except BaseException as e:  # Raised in the consumer's thread instead.
      self._offer(_Failure(e))

  def __iter__(self):
    return self

  def __next__(self):
    if self._stop.is_set():
      raise StopIteration
    item = self._queue.get()
    if item is _DONE:
      self.close()
      raise StopIteration
    if isinstance(item, _Failure):
      self.close()
      raise item.error
    return item

  def close(self) -> None:
    self._stop.set()
    self._thread.join()

  def __del__(self):
    self._stop.set()
