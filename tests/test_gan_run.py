"""GANs end to end: every loss trains, batch norm agrees across device counts, samples come
from checkpoints, and the configs for datasets that need the internet run on fake data."""

import pathlib

import numpy as np
import pytest
from conftest import load_params, read_metrics, run_jgen, train_losses, write_fake_tfds
from PIL import Image

from configs import dcgan_celeba64, dcgan_cifar10, dcgan_mnist
from jgen import train


@pytest.fixture(scope='module')
def dcgan_run(tmp_path_factory, mnist_source):
  """The dcgan_mnist smoke run on one device (batch norm in both networks)."""
  workdir = tmp_path_factory.mktemp('dcgan1')
  run_jgen('--config', 'configs/dcgan_mnist.py:smoke', '--workdir', str(workdir))
  return workdir


def _smoke(module, workdir: pathlib.Path, **overrides):
  """Trains `module`'s smoke config in this process, with `a.b=value` overrides."""
  config = module.get_config('smoke')
  with config.unlocked():
    config.data.download = False
    for key, value in overrides.items():
      node = config
      *path, last = key.split('.')
      for part in path:
        node = node[part]
      node[last] = value
  return train.train_and_evaluate(config, str(workdir))


@pytest.mark.parametrize('loss', ['minimax', 'non_saturating', 'hinge', 'least_squares',
                                  'wasserstein'])
def test_every_adversarial_loss_trains_dcgan_without_nan(loss, tmp_path, mnist_source):
  results = _smoke(dcgan_mnist, tmp_path, **{'gan.loss': loss})
  rows = [row for row in read_metrics(tmp_path) if 'train/d_loss' in row]
  assert len(rows) == 4
  for row in rows:
    for key, value in row.items():
      assert np.isfinite(value), (loss, row['step'], key)
  assert all(np.isfinite(v) for v in results.values())
  # Both networks moved: parameter norms change from log step to log step.
  for key in ('train/l2_params_d', 'train/l2_params_g'):
    assert len({row[key] for row in rows}) == len(rows), key


def test_four_devices_match_one_with_batch_norm(tmp_path, mnist_source):
  """Batch statistics are averaged over devices, latents keyed by global example index:
  the losses, D(x), D(G(z)) and gradient norms of 4 devices are those of 1.

  Summing in another order changes the last bits, and a GAN's two-player updates amplify
  such differences step after step. Adam's eps is raised from 1e-8 to 1e-3 here because
  with 1e-8 its first update is about lr * sign(g), which flips for parameters whose
  gradient is near zero. With 1e-3 (measured with XLA's Eigen convolutions, which sum in a
  batch-size-dependent order): step 1 agrees to 3e-7 to 2e-6, step 2 to 1e-4, and the
  differences grow to a few 1e-3 by step 10; compiled with the suite's flags (LLVM at
  -O1), G's gradient norms are about 2e-2 apart by step 12. Per-device batch
  statistics (the bug this guards against) would differ by more than 1e-3 at step 1.
  """
  args = ['--config', 'configs/dcgan_mnist.py:smoke', '--config.g_optimizer.eps=1e-3',
          '--config.d_optimizer.eps=1e-3', '--config.log_every_steps=1']
  run_jgen(*args, '--workdir', str(tmp_path / 'one'))
  run_jgen(*args, '--workdir', str(tmp_path / 'four'), devices=4)
  for key in ('train/d_loss', 'train/g_loss', 'train/d_real', 'train/d_fake',
              'train/l2_grads_d', 'train/l2_grads_g'):
    one, four = train_losses(tmp_path / 'one', key), train_losses(tmp_path / 'four', key)
    assert one.keys() == four.keys() and len(one) == 20
    # Step 1: D's update (batch norm over devices) and G's through the updated D.
    np.testing.assert_allclose(four[1], one[1], rtol=1e-5, err_msg=key)
    np.testing.assert_allclose([four[s] for s in sorted(four)], [one[s] for s in sorted(one)],
                               rtol=5e-2, err_msg=key)


def test_sample_mode_writes_samples_of_the_latest_checkpoint(dcgan_run):
  before = {p: p.stat().st_mtime_ns for p in dcgan_run.rglob('checkpoints/**/*') if p.is_file()}
  run_jgen('--config', 'configs/dcgan_mnist.py:smoke', '--workdir', str(dcgan_run),
           '--mode=sample', '--num_samples=10')
  with np.load(dcgan_run / 'samples' / 'samples_0000020.npz') as f:
    images = f['images']
  assert images.shape == (10, 28, 28, 1) and images.dtype == np.uint8
  assert len({im.tobytes() for im in images}) == 10  # Ten different samples.
  with Image.open(dcgan_run / 'samples' / 'samples_0000020.png') as grid:
    assert grid.size == ((4 * 29 + 1) * 2, (3 * 29 + 1) * 2)  # 4 columns, 3 rows, 2x scale.
  after = {p: p.stat().st_mtime_ns for p in dcgan_run.rglob('checkpoints/**/*') if p.is_file()}
  assert after == before


def test_sample_mode_needs_no_dataset_and_takes_a_seed(dcgan_run, tmp_path):
  draws = {}
  for seed in (1, 2):
    run_jgen('--config', 'configs/dcgan_mnist.py:smoke', '--workdir', str(dcgan_run),
             '--mode=sample', '--num_samples=4', f'--seed={seed}',
             extra_env={'TFDS_DATA_DIR': str(tmp_path)})  # Nothing is prepared there.
    with np.load(dcgan_run / 'samples' / f'samples_0000020_seed{seed}.npz') as f:
      draws[seed] = f['images']
  assert draws[1].shape == (4, 28, 28, 1) and not np.array_equal(draws[1], draws[2])


def test_the_mlp_gan_trains_without_hidden_dropout(tmp_path, mnist_source):
  """Input dropout alone (0.2) still needs per-example dropout keys in D."""
  from configs import gan_mnist

  results = _smoke(gan_mnist, tmp_path, **{'model.dropout': 0.0, 'num_train_steps': 2,
                                           'log_every_steps': 1})
  assert np.isfinite(results['final_train_d_loss'])


def test_sample_mode_refuses_bad_counts_and_missing_checkpoints(dcgan_run, tmp_path):
  proc = run_jgen('--config', 'configs/dcgan_mnist.py:smoke', '--workdir', str(dcgan_run),
                  '--mode=sample', '--num_samples=0', check=False)
  assert proc.returncode == 2 and 'Traceback' not in proc.stderr
  assert proc.stderr.strip().splitlines()[-1] == 'error: num_samples=0 must be at least 1'
  proc = run_jgen('--config', 'configs/dcgan_mnist.py:smoke', '--workdir', str(tmp_path / 'x'),
                  '--mode=sample', check=False)
  assert proc.returncode == 2 and 'train first' in proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize('module, name, size', [(dcgan_cifar10, 'cifar10', 32),
                                                (dcgan_celeba64, 'celeb_a', 64)])
def test_online_dataset_configs_train_on_fake_data(module, name, size, tmp_path, fake_examples):
  """CIFAR-10 and CelebA need the internet: their configs run on random examples of the
  datasets' real feature shapes (CelebA's 218x178 images cropped and resized to 64x64)."""
  data_dir = tmp_path / 'data'
  write_fake_tfds(name, data_dir, {'train': 64, 'validation': 8, 'test': 40})
  results = _smoke(module, tmp_path / 'run', **{'data.data_dir': str(data_dir),
                                                'num_train_steps': 4})
  assert all(np.isfinite(v) for v in results.values())
  with Image.open(tmp_path / 'run' / 'images' / 'samples_0000004.png') as grid:
    # The smoke config's 8 samples in 3 columns and 3 rows of size x size x 3 images,
    # 1-pixel borders, 2x scale.
    assert grid.size == ((3 * (size + 1) + 1) * 2,) * 2 and grid.mode == 'RGB'


def test_restarts_go_on_from_the_one_with_the_most_mutual_information(tmp_path, mnist_source):
  """`gan.restarts=2`: both restarts train `restart_steps`, `chosen.json` holds Q's mutual
  information on training images for each and picks the larger; the run goes on from that
  restart's checkpoint (it trains only the remaining steps) and ends bit-identical, state and
  logged losses, to a plain run of the chosen seed."""
  import json

  from configs import infogan_mnist

  small = {'num_train_steps': 6, 'checkpoint_every_steps': 3, 'log_every_steps': 3,
           'batch_size': 16, 'model.features': 8, 'model.dense_size': 32,
           'model.q_hidden_size': 16}
  results = _smoke(infogan_mnist, tmp_path / 'run', **small,
                   **{'gan.restarts': 2, 'gan.restart_steps': 3})
  chosen = json.loads((tmp_path / 'run' / 'restarts' / 'chosen.json').read_text())
  values = chosen['values']
  assert sorted(values) == ['0', '1'] and values['0'] != values['1']
  assert chosen['seed'] == int(max(values, key=values.get)) and chosen['step'] == 3
  assert results['seed'] == chosen['seed'] and results['steps_this_run'] == 3
  seed = chosen['seed']
  plain = _smoke(infogan_mnist, tmp_path / 'plain', **small, seed=seed)
  assert train_losses(tmp_path / 'run', 'train/d_loss') == train_losses(tmp_path / 'plain',
                                                                        'train/d_loss')
  assert results['test_code_accuracy'] == plain['test_code_accuracy']
  want, got = load_params(tmp_path / 'plain', 6), load_params(tmp_path / 'run', 6)
  assert want.keys() == got.keys()
  for k in want:
    np.testing.assert_array_equal(got[k], want[k], err_msg=str(k))


def test_restarts_refuse_a_model_without_a_code_before_any_work(tmp_path):
  config = dcgan_mnist.get_config('smoke')
  with config.unlocked():
    config.gan.restarts, config.gan.restart_steps = 2, 5
  with pytest.raises(train.ConfigError, match="gan.restarts=2 has no effect: model 'dcgan'"):
    train.train_and_evaluate(config, str(tmp_path / 'w'))
  assert not (tmp_path / 'w').exists()


def test_a_carry_of_the_chosen_restart_cut_short_is_made_again_whole(tmp_path):
  """A kill while the chosen restart's files are copied into the workdir leaves a partial
  copy and `carried: false`; the rerun copies them again whole without training anything."""
  import json

  from configs import infogan_mnist
  from jgen import restarts

  workdir, source = tmp_path / 'w', tmp_path / 'w' / 'restarts' / 'seed_1'
  (source / 'checkpoints' / '3' / 'default').mkdir(parents=True)
  (source / 'checkpoints' / '3' / 'default' / 'x').write_text('restart')
  (source / 'metrics.jsonl').write_text('{"step": 3}\n')
  (workdir / 'checkpoints' / '3').mkdir(parents=True)  # The cut-short copy.
  (workdir / 'checkpoints' / '3' / 'partial').write_text('')
  chosen = {'seed': 1, 'step': 3, 'values': {'0': 1.0, '1': 2.0}, 'carried': False}
  (workdir / 'restarts' / 'chosen.json').write_text(json.dumps(chosen))

  def never(*args):
    raise AssertionError('a chosen restart is not trained again')

  config = restarts.choose(infogan_mnist.get_config(), str(workdir), never)
  assert config.seed == 1 and config.gan.restarts == 0
  assert sorted(p.name for p in (workdir / 'checkpoints' / '3').iterdir()) == ['default']
  assert (workdir / 'checkpoints' / '3' / 'default' / 'x').read_text() == 'restart'
  assert (workdir / 'metrics.jsonl').read_text() == '{"step": 3}\n'
  assert json.loads((workdir / 'restarts' / 'chosen.json').read_text())['carried'] is True
  plain = tmp_path / 'plain'  # A workdir of a run without restarts is not taken over.
  (plain / 'checkpoints' / '5').mkdir(parents=True)
  with pytest.raises(train.ConfigError, match='trained without gan.restarts'):
    restarts.choose(infogan_mnist.get_config(), str(plain), never)
