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
    self._builtin: set[str] = set()

  def register(self, name: str, *, replace: bool = False) -> Callable[[Any], Any]:
    """Returns a decorator that registers its argument under `name`.

    `replace=True` lets user code register a name again (a notebook cell run twice); jgen's
    own entries (see `freeze`) are never replaced.
    """

    def decorate(obj):
      if name in self._builtin or (name in self._entries and not replace):
        raise ConfigError(f'{self.kind} {name!r} is already registered; choose another name')
      self._entries[name] = obj
      return obj

    return decorate

  def freeze(self) -> None:
    """Marks every entry so far as jgen's own: user code cannot replace it."""
    self._builtin |= set(self._entries)

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
