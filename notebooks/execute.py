r"""Executes notebooks top to bottom in place, keeping their outputs, and prints each one's
wall-clock time: how the committed outputs were made (`make notebooks`).

  python notebooks/execute.py notebooks/*.ipynb
  JGEN_NOTEBOOK_SMALL=1 python notebooks/execute.py notebooks/checkpoints.ipynb --out /tmp

Each runs in a fresh kernel with the notebook's folder as its working directory.
"""

import argparse
import os
import time

import nbformat
from nbclient import NotebookClient


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('notebooks', nargs='+')
  parser.add_argument('--out', default='', help='Write executed copies here instead.')
  parser.add_argument('--timeout', type=int, default=1200, help='Seconds per cell.')
  args = parser.parse_args()
  for path in args.notebooks:
    book = nbformat.read(path, as_version=4)
    start = time.time()
    NotebookClient(book, timeout=args.timeout, kernel_name='python3', resources={
        'metadata': {'path': os.path.dirname(os.path.abspath(path))}}).execute()
    out = os.path.join(args.out, os.path.basename(path)) if args.out else path
    nbformat.write(book, out)
    print(f'{path}: {(time.time() - start) / 60:.1f} minutes, {os.path.getsize(out):,} bytes '
          f'-> {out}', flush=True)


if __name__ == '__main__':
  main()
