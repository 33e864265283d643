"""A small registry per plug-in kind (models, losses, datasets), looked up by name."""

from collections.abc import Callable
from typing import Any


class ConfigError(ValueError):
  """A problem with what the user asked for, reported as one line before work starts."""


class Registry:
  """Maps names to callables; an unknown name is an error that lists the known ones."""

  def __init__(self, kind: str):
    self.kind = kind
    self._entries: dict[str, Any] = {}

  def register(self, name: str) -> Callable[[Any], Any]:
    """Returns a decorator that registers its argument under `name`."""

    def decorate(obj):
      if name in self._entries:
        raise ValueError(f'{self.kind} {name!r} is registered twice')
      self._entries[name] = obj
      return obj

    return decorate

  def get(self, name: str) -> Any:
    """Returns the entry called `name`.

    Raises:
      ConfigError: if no entry has that name; the message lists the known names.
    """
    if name not in self._entries:
      known = ', '.join(sorted(self._entries))
      raise ConfigError(f'unknown {self.kind} {name!r}; known: {known}')
    return self._entries[name]

  def names(self) -> list[str]:
    return sorted(self._entries)

  def __contains__(self, name: str) -> bool:
    return name in self._entries
