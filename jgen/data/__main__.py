"""Prepares datasets and decodes them into arrays: `python -m jgen.data mnist fashion_mnist`."""

from absl import app

from jgen.data.prepare import load
from jgen.registry import ConfigError


def main(argv):
  for name in argv[1:]:
    try:
      source = load(name)
    except ConfigError as e:
      raise app.UsageError(str(e)) from None
    print(f'{name}: prepared, arrays in {source.path or "memory (a registered dataset)"}')


if __name__ == '__main__':
  app.run(main)
