"""Prepares datasets: `python -m jgen.data mnist fashion_mnist`."""

from absl import app

from jgen.data.prepare import ensure_prepared
from jgen.registry import ConfigError


def main(argv):
  for name in argv[1:]:
    try:
      builder = ensure_prepared(name)
    except ConfigError as e:
      raise app.UsageError(str(e)) from None
    print(f'{name}: prepared in {builder.data_dir_root}')


if __name__ == '__main__':
  app.run(main)
