"""pyproject.toml's ranges admit the machines jgen runs on, and constraints.txt (what CI
installs) lies inside them."""

import importlib.metadata
import pathlib
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']

# The GPU test machine (one H200): Python, JAX and NumPy as its pip list read in 2026-11.
# Its flax, optax and orbax-checkpoint versions were not read there yet; these are the
# newest for Python 3.12 on PyPI (2026-11-29). bench/gpu.sh prints what it really has and
# runs this file there, where `test_installed_versions_are_in_range` checks them.
GPU_MACHINE = {'jax': '0.11.2', 'jaxlib': '0.11.2', 'numpy': '2.5.2', 'flax': '0.12.12',
               'optax': '0.2.8', 'orbax-checkpoint': '0.12.8'}
GPU_PYTHON = '3.12.3'
# This machine and CI: Python 3.11 with the last JAX for it.
CPU_MACHINE = {'jax': '0.10.2', 'jaxlib': '0.10.2', 'flax': '0.12.8'}


def _requirements(extra: str | None = None) -> dict[str, Requirement]:
  lines = PROJECT['optional-dependencies'][extra] if extra else PROJECT['dependencies']
  return {canonicalize_name(Requirement(line).name): Requirement(line) for line in lines}


def _pins() -> dict[str, Version]:
  pins = {}
  for line in (ROOT / 'constraints.txt').read_text().splitlines():
    line = line.split('#')[0].strip()
    if line:
      name, _, version = line.partition('==')
      assert version, f'constraints.txt: {line!r} is not an exact pin'
      pins[canonicalize_name(name)] = Version(version)
  return pins


@pytest.mark.parametrize('machine', [GPU_MACHINE, CPU_MACHINE], ids=['gpu', 'cpu'])
def test_ranges_admit_the_machines(machine):
  requirements = _requirements()
  for name, version in machine.items():
    assert version in requirements[name].specifier, (name, version, requirements[name])
  python = SpecifierSet(PROJECT['requires-python'])
  assert GPU_PYTHON in python and '3.11.2' in python


def test_accelerator_extras_ask_for_the_same_jax_line():
  for extra, accelerator in (('cuda', 'cuda13'), ('tpu', 'tpu')):
    (requirement,) = _requirements(extra).values()
    assert requirement.name == 'jax' and accelerator in requirement.extras
    assert requirement.specifier == _requirements()['jax'].specifier


def test_training_needs_no_tensorflow():
  assert not {'tensorflow', 'tensorflow-cpu', 'tensorflow-datasets'} & set(_requirements())
  assert {'tensorflow-cpu', 'tensorflow-datasets'} <= set(_requirements('tfds'))


def test_constraints_pin_every_dependency_inside_its_range():
  pins = _pins()
  for extra in (None, 'tfds', 'dev'):
    for name, requirement in _requirements(extra).items():
      assert name in pins, f'constraints.txt does not pin {name}'
      assert pins[name] in requirement.specifier, (name, pins[name], requirement)
  makefile = (ROOT / 'Makefile').read_text()
  assert "-c constraints.txt -e '.[dev,tfds]'" in makefile


def test_installed_versions_are_in_range():
  """Here, the pinned install; on the GPU machine (bench/gpu.sh), what that machine has."""
  for name, requirement in _requirements().items():
    try:
      installed = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      pytest.fail(f'{name} is not installed')
    assert installed in requirement.specifier, (name, installed, requirement)
