r"""Trains or evaluates a jgen model from a config file.

  python run.py --config configs/ae_mnist.py --workdir runs/ae_mnist
  python run.py --config configs/ae_mnist.py:smoke --workdir /tmp/smoke --config.seed=1
  python run.py --config configs/ae_mnist.py --workdir runs/ae_mnist --mode eval
  python run.py --config configs/dcgan_mnist.py --workdir runs/dcgan_mnist --mode sample --seed 1
  python run.py --config configs/ae_mnist.py --workdir runs/ae_mnist --mode sample --sampler gmm
  python run.py --config configs/vae_mnist.py --workdir runs/vae_mnist --mode latent
  python run.py --config configs/classifier_mnist.py --workdir runs/clf --mode export
  python run.py --config configs/compare_mnist.py --workdir runs/compare_mnist
"""

import errno
import os
import re
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # TF only decodes a dataset once.

from jgen import runtime  # noqa: E402

runtime.set_cpu_defaults()

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (path[:variant]).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Where checkpoints, logs and results go.')
_MODE = flags.DEFINE_enum('mode', 'train', ['train', 'eval', 'sample', 'latent', 'export'],
                          'train (resumes if WORKDIR has checkpoints), or of the latest '
                          'checkpoint: eval (every configured evaluator, into results.json), '
                          'sample, latent (interpolations; for a 2-D latent the decoded '
                          'manifold and the scatter of test codes), export (a classifier '
                          "config's weights become its dataset's feature network).")
_NUM_SAMPLES = flags.DEFINE_integer('num_samples', 64, 'How many samples --mode=sample writes.')
_SEED = flags.DEFINE_integer('seed', 0, '--mode=sample: the seed of the draws (other seeds, '
                             'other samples of the same checkpoint).')
_SAMPLER = flags.DEFINE_string('sampler', '', "--mode=sample: 'prior' (GANs, VAEs; their "
                               "default), 'gaussian' or 'gmm' (a density fitted to the "
                               "training codes; autoencoders' default: gmm).")
_COMPONENTS = flags.DEFINE_integer('num_components', 10, 'Components of --sampler=gmm.')
_COORDINATOR = flags.DEFINE_string('coordinator_address', None,
                                   'host:port of process 0, to join a multi-process run. '
                                   'Without it, a cluster the environment describes (a '
                                   'multi-task srun step, mpirun, a GKE TPU slice) is joined '
                                   'automatically (JGEN_CLUSTER_INIT=0: never; =1: always '
                                   'call jax.distributed.initialize(), e.g. on a TPU pod).')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', 1, 'Processes in a multi-process run.')
_PROCESS_ID = flags.DEFINE_integer('process_id', 0, 'This process in a multi-process run.')
flags.mark_flags_as_required(['config', 'workdir'])



_WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  try:
    getattr(_CONFIG.value, 'family', None)  # absl loads the file on first use.
  except Exception as e:  # noqa: BLE001 - whatever the file raises, one line.
    print(f'error: {_config_file_error(e) or "the config does not load: " + str(e)}',
          file=sys.stderr)
    sys.exit(2)
  import jax

  from jgen import compare, modes, parallel, train
  from jgen.checkpoint import CheckpointWriteError
  from jgen.registry import ConfigError

  logging.get_absl_handler().addFilter(train.QuietLibraries())

  try:
    parallel.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    logging.info('JAX process %d/%d, local devices: %s', jax.process_index(),
                 jax.process_count(), jax.local_devices())
    if _CONFIG.value.family == 'compare':  # Many runs and a report (configs/compare_*.py).
      if _MODE.value != 'train':
        raise ConfigError(f'a comparison config trains or reuses its runs; --mode={_MODE.value} '
                          'applies to one run: pass its config and WORKDIR/runs/MODEL/seed_S')
      compare.run(_CONFIG.value, _WORKDIR.value)
    elif _MODE.value == 'train':
      train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
    elif _MODE.value == 'eval':
      modes.evaluate_checkpoint(_CONFIG.value, _WORKDIR.value)
    elif _MODE.value == 'export':
      modes.export_classifier(_CONFIG.value, _WORKDIR.value)
    elif _MODE.value == 'sample':
      modes.sample_checkpoint(_CONFIG.value, _WORKDIR.value, _NUM_SAMPLES.value,
                              seed=_SEED.value, sampler=_SAMPLER.value,
                              num_components=_COMPONENTS.value)
    else:
      modes.latent_checkpoint(_CONFIG.value, _WORKDIR.value)
  except (ConfigError, train.NonFiniteLossError) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  except (CheckpointWriteError, OSError) as e:
    if isinstance(e, OSError) and e.errno not in _WRITE_ERRORS:
      raise
    # A full disk or a lost mount while writing checkpoints, logs, events or results.
    _last_words('error: ' + (str(e) if isinstance(e, CheckpointWriteError) else
                             f'{e.strerror} writing {e.filename or "the workdir"}; make room '
                             'and rerun to go on from the last checkpoint'))
  except train.Stopped as e:  # SIGTERM or SIGINT, after a checkpoint: the shell's code.
    print(f'stopped: {e}', file=sys.stderr)
    sys.exit(128 + e.signum)


def _last_words(line: str) -> None:
  """Writes `line` as the process's last output on stderr and exits with code 2 at once.

  After a failed write, Orbax's writer threads may still be running: at interpreter exit,
  or at any moment before it, they print tracebacks of their own (a closed event loop, the
  failed write again). So stderr is pointed at /dev/null for every other thread before the
  line goes out on a duplicate of it, on a line of its own (another thread may have left
  half a line), and the process ends without running exit handlers.
  """
  for stream in (sys.stdout, sys.stderr):
    try:
      stream.flush()
    except OSError:  # A stream on the full disk itself: what it held is lost, not the line.
      pass
  own = os.dup(2)
  devnull = os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, 2)  # Other threads' writes, Python's or C++'s, go nowhere from here.
  os.write(own, ('\n' + line + '\n').encode())
  os._exit(2)


def _config_file_error(e: BaseException) -> str | None:
  missing = re.search(r"No such file or directory: '([^']+)'", ' '.join(str(e).split()))
  return missing and (f'config file {missing.group(1)} does not exist; give a path such as '
                      'configs/ae_mnist.py')


def _parse_flags(argv):
  """absl's parsing, with bad flags and config overrides as one line instead of a traceback."""
  try:
    return flags.FLAGS(argv)
  except Exception as e:  # flags.Error, or ml_collections' KeyError/TypeError on an override.
    key_error = e if isinstance(e, KeyError) else e.__context__
    if _config_file_error(e):
      message = _config_file_error(e)
    elif isinstance(key_error, KeyError) and key_error.args:  # A misspelt override.
      field, *hint = str(key_error.args[0]).split('\n')
      message = f'unknown config field {field.strip(chr(34))}' + (f'; {hint[0]}' if hint else '')
    else:
      message = f'bad flag: {" ".join(str(e).split())}'
    print(f'error: {message}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  app.run(main, flags_parser=_parse_flags)
