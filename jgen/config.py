"""Configs from Python: `load_config('configs/ae_mnist.py:smoke', {'loss': 'mse'})`.

What `run.py --config FILE[:VARIANT] --config.FIELD=VALUE` does, for a notebook or script:
the file's `get_config(variant)`, then overrides by dotted field name.
"""

import importlib.util
import os
import sys

from jgen.registry import ConfigError


def load_config(path: str, overrides: dict | None = None):
  """Loads a config file (`path[:variant]`) and sets `overrides` ({'gan.loss': 'hinge'}).

  A config file inside a package directory (`configs/`, with `__init__.py`) may import its
  siblings (`from configs import common`): the package's parent joins `sys.path`.

  Raises:
    ConfigError: for a missing file, an unknown variant, or an override naming a field the
      config does not have or giving it a value of another type.
  """
  file, _, variant = path.partition(':')
  file = os.path.abspath(os.path.expanduser(file))
  if not os.path.isfile(file):
    raise ConfigError(f'config file {file} does not exist; give a path such as '
                      'configs/ae_mnist.py')
  folder = os.path.dirname(file)
  if os.path.exists(os.path.join(folder, '__init__.py')):
    root = os.path.dirname(folder)
    if root not in sys.path:
      sys.path.insert(0, root)
    name = f'{os.path.basename(folder)}.{os.path.splitext(os.path.basename(file))[0]}'
  else:
    name = os.path.splitext(os.path.basename(file))[0]
  spec = importlib.util.spec_from_file_location(name, file)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  try:
    config = module.get_config(variant or None)
  except ValueError as e:
    raise ConfigError(f'{path}: {e}') from None
  for key, value in (overrides or {}).items():
    *parents, leaf = key.split('.')
    node = config
    try:
      for part in parents:
        node = node[part]
      if leaf not in node:
        raise KeyError(leaf)
      node[leaf] = value
    except (KeyError, AttributeError):
      raise ConfigError(f'config {path} has no field {key!r}; see the config file for '
                        'its fields') from None
    except TypeError as e:
      raise ConfigError(f'config field {key!r} cannot take {value!r}: {e}') from None
  return config
