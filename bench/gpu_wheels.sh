#!/usr/bin/env bash
# Downloads into .whl/ the wheels of the pure-Python packages the GPU machine lacks, for
# bench/gpu.sh to install there (that machine has no network). Run it HERE, before the
# device session; .whl/ holds only *.whl files, which .gitignore ignores, so the session
# carries it explicitly: run(command='bash bench/gpu.sh', carry=['.whl'], ...).
#
#   bash bench/gpu_wheels.sh                    # ml-collections 1.1.0 (configs need it)
#   bash bench/gpu_wheels.sh prdc==0.2          # and others, NAME==VERSION each
#
# The GPU machine (Python 3.12.3, x86-64) has JAX 0.11.2 + CUDA 13 plugin, flax, optax,
# orbax-checkpoint, tensorboard, matplotlib, numpy, scipy, pytest, pytest-xdist, PyTorch,
# absl-py, PyYAML; not tensorflow, tensorflow-datasets, ml_collections or clu.
# ml-collections 1.1.0 requires absl-py and PyYAML only (its METADATA, printed below),
# which that machine has, so its one wheel is enough.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
packages=(ml-collections==1.1.0 "$@")
mkdir -p .whl
for package in "${packages[@]}"; do
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 -d .whl "$package"
done
for wheel in .whl/*.whl; do
  echo "$(basename "$wheel"):"
  unzip -p "$wheel" '*.dist-info/METADATA' | grep '^Requires-Dist' | sed 's/^/  /' || true
done
du -ch .whl/*.whl | tail -1
