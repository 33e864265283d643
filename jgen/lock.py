"""One training run per workdir: a lock file naming the run that holds it.

`<workdir>/jgen.lock` holds the holder's host, pid and process start time. A second run
stops with one line naming the first; a lock whose process is gone (killed, crashed, the
machine rebooted) is taken over with a warning. Only the host that wrote a lock can tell
whether its process lives: a lock from another host is never taken over. Within one process
the lock is shared (a notebook may open a second Trainer on a workdir to inspect it); the
file goes when the last holder releases it.
"""

import json
import os
import socket
import time

from absl import logging

from jgen.registry import ConfigError

NAME = 'jgen.lock'
_HELD: dict[str, int] = {}  # This process's locks: path -> holders.


def _start_time(pid: int) -> str | None:
  """The process's start time in clock ticks since boot (Linux), to tell a reused pid."""
  try:
    with open(f'/proc/{pid}/stat') as f:
      return f.read().rsplit(')', 1)[1].split()[19]
  except (OSError, IndexError):
    return None


def _alive(holder: dict) -> bool:
  pid = holder.get('pid')
  if not isinstance(pid, int) or pid <= 0:
    return False
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # Another user's live process.
    return True
  started = holder.get('start_time')
  return started is None or _start_time(pid) in (None, started)


def _me() -> dict:
  return {'host': socket.gethostname(), 'pid': os.getpid(),
          'start_time': _start_time(os.getpid())}


class WorkdirLock:
  """Held from `acquire` to `release` (a context manager too)."""

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, NAME)
    self.held = False

  def acquire(self) -> 'WorkdirLock':
    """Takes the lock, or a stale one over.

    Raises:
      ConfigError: if a live run holds it, naming that run's host and pid.
    """
    me = _me()
    if _HELD.get(self.path):
      _HELD[self.path] += 1
      self.held = True
      return self
    for _ in range(3):
      try:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
      except FileExistsError:
        holder = self._read()
        if holder == {}:  # Empty: maybe being written this instant; look once more.
          time.sleep(0.2)
          holder = self._read()
        if holder is None:  # Released meanwhile.
          continue
        if holder.get('host', me['host']) != me['host'] or _alive(holder):
          raise ConfigError(
              f'another run (pid {holder.get("pid")} on {holder.get("host")}) is training in '
              f'this workdir; wait for it, stop it, or pass another --workdir (if that run '
              f'is gone, delete {self.path})') from None
        logging.warning('Taking over the lock of a run that is gone (%s)', holder)
        try:
          os.remove(self.path)
        except FileNotFoundError:
          pass
        continue
      with os.fdopen(fd, 'w') as f:
        json.dump(me, f)
      _HELD[self.path] = 1
      self.held = True
      return self
    raise ConfigError(f'could not take the lock {self.path}: another run keeps taking it')

  def _read(self) -> dict | None:
    try:
      with open(self.path) as f:
        holder = json.load(f)
      return holder if isinstance(holder, dict) else {}
    except FileNotFoundError:
      return None
    except (OSError, ValueError):
      return {}  # Unreadable: no live process is named, so it is stale.

  def release(self) -> None:
    if self.held:
      self.held = False
      _HELD[self.path] -= 1
      if _HELD[self.path]:
        return
      del _HELD[self.path]
      try:
        os.remove(self.path)
      except FileNotFoundError:
        pass

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc):
    self.release()
