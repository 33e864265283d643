#!/usr/bin/env bash
# The one command of a GPU session (one H200, Python 3.12, JAX with its CUDA plugin, PyTorch
# with CUDA, no network): jgen's JAX-only tests on the GPU, then bench/gpu_steps.py (every
# model family's train step, jgen vs PyTorch, float32 and bfloat16). At most about 7
# minutes (JGEN_GPU_BUDGET_S; about 5 when nothing hangs); each part is stopped by
# `timeout`, and a failing part does not stop the next.
#
#   bash bench/gpu_wheels.sh      # HERE first: the wheels the GPU machine lacks, into .whl/
#   run(command='bash bench/gpu.sh', carry=['.whl'], timeout_s=480)   # the device session
#   JGEN_GPU_SMOKE=1 bash bench/gpu.sh                # a check of this script on a CPU machine
#
# Writes into $OUT (a new temporary directory if unset): versions.txt, tests.log,
# gpu_steps.json, gpu_steps.md, gpu_steps.log, summary.txt. Environment:
#   JGEN_GPU_SMOKE=1        tiny sizes on CPU: collects the test list, runs two test files,
#                           benchmarks two models for 2 steps.
#   JGEN_GPU_BUDGET_S       total seconds (default 420); the benchmark gets what is left.
#   JGEN_GPU_TEST_TIMEOUT   seconds for the tests (default 170).
#   JGEN_GPU_PYTEST_X       '-x' (default: stop at the first failure) or '' (run them all).
#   JGEN_GPU_BENCH_ARGS     extra flags of bench/gpu_steps.py (after the defaults).
set -u
cd "$(dirname "$0")/.."
START=$(date +%s)
OUT=${OUT:-$(mktemp -d /tmp/jgen_gpu_out.XXXXXX)}
mkdir -p "$OUT"
SMOKE=${JGEN_GPU_SMOKE:-0}
BUDGET=${JGEN_GPU_BUDGET_S:-420}
TEST_TIMEOUT=${JGEN_GPU_TEST_TIMEOUT:-170}
PYTEST_X=${JGEN_GPU_PYTEST_X--x}
elapsed() { echo $(( $(date +%s) - START )); }

# (a) The carried wheels (pure Python, --no-deps), and the repository, on the path.
SITE=/tmp/site
[ "$SMOKE" = 1 ] && SITE=$(mktemp -d /tmp/jgen_gpu_site.XXXXXX)
wheels='none carried'
if compgen -G '.whl/*.whl' > /dev/null; then
  if timeout 120 python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
      --upgrade --target "$SITE" .whl/*.whl; then
    wheels="installed: $(cd .whl && ls -- *.whl | tr '\n' ' ')"
  else
    wheels='pip install FAILED'
  fi
  export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export TF_CPP_MIN_LOG_LEVEL=2

# (b) Versions, devices.
{
  echo "# $(date -u '+%F %T UTC') $(hostname); wheels: $wheels"
  python3 -V
  python3 -m pip show jax jaxlib jax-cuda13-plugin flax optax orbax-checkpoint numpy \
      tensorboard torch ml-collections 2>/dev/null | grep -E '^(Name|Version)'
  if command -v nvidia-smi > /dev/null; then
    timeout 30 nvidia-smi -L
    timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit \
        --format=csv
  else
    echo 'nvidia-smi: not found'
  fi
  timeout 90 python3 -c 'import jax, ml_collections
print("jax", jax.__version__, "backend", jax.default_backend())
print("jax.devices():", jax.devices())
print("ml_collections from", ml_collections.__file__)' 2>&1 | grep -v '^WARNING: All log'
} 2>&1 | tee "$OUT/versions.txt"

# Can JAX and PyTorch share one process on the GPU (their CUDA libraries side by side)? If
# not, the benchmark runs each side in its own process and joins the results.
probe=$(mktemp /tmp/jgen_gpu_probe.XXXXXX)
timeout 90 python3 - > "$probe" 2>&1 <<'PROBE'
import jax
import jax.numpy as jnp


def jax_conv():
  x, k = jnp.ones((8, 28, 28, 16)), jnp.ones((3, 3, 16, 32), jnp.bfloat16)
  y = jax.lax.conv_general_dilated(x.astype(jnp.bfloat16), k, (1, 1), 'SAME',
                                   dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return float(jax.jit(lambda a, b: (a @ b).sum())(x[0, 0], x[0, 0].T) + y.sum())


print('jax', jax.default_backend(), jax_conv())
import torch  # noqa: E402

device = 'cuda' if torch.cuda.is_available() else 'cpu'
x = torch.ones(8, 16, 28, 28, device=device)
with torch.autocast(device, dtype=torch.bfloat16):
  y = torch.nn.functional.conv2d(x, torch.ones(32, 16, 3, 3, device=device), padding=1)
  y = y.sum() + (x[0, 0] @ x[0, 0].T).sum()
print('torch', device, float(y))
print('jax again', jax_conv())
PROBE
probe_rc=$?
{ echo "== JAX + PyTorch in one process: exit $probe_rc"; tail -5 "$probe"; } \
    | tee -a "$OUT/versions.txt"
rm -f "$probe"
split=${JGEN_GPU_SPLIT:-0}
[ "$probe_rc" != 0 ] && split=1

# (c) The tests that need neither TensorFlow/TFDS nor a prepared dataset (no MNIST there),
# nor prdc/scikit-learn/nbclient (not installed there): files of pure functions, models,
# steps on synthetic batches, and the in-process API on the registered 2-D toy dataset.
# test_install.py checks that machine's versions against pyproject.toml's ranges;
# test_precision.py's lowered-program checks run, its MNIST training ones are deselected.
# test_corrupt.py has two tests on MNIST, deselected. Left out: test_data, test_features,
# test_metrics (prdc), test_probe (scikit-learn), test_notebook*, and the files that train
# through run.py on MNIST or fake TFDS data (test_run, test_configs, test_compare,
# test_gan_run, test_vae_run, test_classifier_run).
# A listed file that is absent is skipped.
TEST_FILES=(tests/test_install.py tests/test_precision.py tests/test_api.py tests/test_augment.py
            tests/test_cluster.py tests/test_corrupt.py tests/test_gan.py tests/test_latent.py
            tests/test_losses.py tests/test_models.py tests/test_prefetch.py
            tests/test_runtime.py tests/test_steps.py tests/test_vae.py tests/test_writer.py)
DESELECT=(
  -k 'not test_family_trains_in_bfloat16'
  --deselect tests/test_corrupt.py::test_denoise_error_on_mnist_does_not_depend_on_the_eval_batch_size
  --deselect tests/test_corrupt.py::test_dae_four_devices_match_one)
files=()
for f in "${TEST_FILES[@]}"; do [ -f "$f" ] && files+=("$f"); done
workers=4
if [ "$SMOKE" = 1 ]; then
  timeout 120 python3 -m pytest -q -p no:cacheprovider --collect-only "${DESELECT[@]}" \
      "${files[@]}" 2>&1 | tail -3 | tee "$OUT/tests_collect.log"
  files=(tests/test_losses.py tests/test_augment.py)
  workers=2
fi
echo "== tests ($(elapsed) s): ${files[*]}"
# Several JAX processes share the GPU: none may preallocate 75% of it.
XLA_PYTHON_CLIENT_PREALLOCATE=false timeout -k 10 "$TEST_TIMEOUT" python3 -m pytest -q \
    $PYTEST_X -p no:cacheprovider -n "$workers" "${DESELECT[@]}" "${files[@]}" 2>&1 \
    | tee "$OUT/tests.log"
tests_rc=${PIPESTATUS[0]}
tests_line=$(grep -E '(passed|failed|error|no tests ran)' "$OUT/tests.log" | tail -1)
[ "$tests_rc" = 124 ] && tests_line="TIMED OUT after ${TEST_TIMEOUT} s; $tests_line"

# (d) The benchmark, in the time left (JSON rewritten after every model: a timeout keeps
# the models done).
bench_args=()
if [ "$SMOKE" = 1 ]; then
  bench_args+=(--device cpu --steps 2 --rounds 1 --batch_size 8 --dtypes float32
               --models ae_mnist,gan_mnist --compile_threads 2)
fi
left=$(( BUDGET - $(elapsed) - 15 ))
bench_timeout=$(( left < 240 ? left : 240 ))
[ "$bench_timeout" -lt 30 ] && bench_timeout=30
if [ "$split" = 1 ]; then
  # One process per side (jgen 60% of the time: it compiles), then one JSON of both.
  parts=$(mktemp -d /tmp/jgen_gpu_parts.XXXXXX)
  jgen_timeout=$(( bench_timeout * 6 / 10 ))
  torch_timeout=$(( bench_timeout - jgen_timeout - 5 ))
  echo "== bench/gpu_steps.py, one side per process ($(elapsed) s; timeouts" \
       "${jgen_timeout} + ${torch_timeout} s)"
  # shellcheck disable=SC2086
  timeout -k 10 "$jgen_timeout" python3 bench/gpu_steps.py "${bench_args[@]}" --sides jgen \
      --out "$parts/jgen.json" --budget_s $(( jgen_timeout * 7 / 10 )) \
      ${JGEN_GPU_BENCH_ARGS:-} 2>&1 | tee "$OUT/gpu_steps.log"
  bench_rc=${PIPESTATUS[0]}
  # shellcheck disable=SC2086
  timeout -k 10 "$torch_timeout" python3 bench/gpu_steps.py "${bench_args[@]}" --sides torch \
      --out "$parts/torch.json" --budget_s $(( torch_timeout * 7 / 10 )) \
      ${JGEN_GPU_BENCH_ARGS:-} 2>&1 | tee -a "$OUT/gpu_steps.log"
  torch_rc=${PIPESTATUS[0]}
  [ "$bench_rc" = 0 ] && bench_rc=$torch_rc
  merge=$(cd "$parts" && ls -- *.json 2>/dev/null | sed "s|^|$parts/|" | paste -sd,)
  if [ -n "$merge" ]; then
    timeout 60 python3 bench/gpu_steps.py --merge "$merge" --out "$OUT/gpu_steps.json" \
        > /dev/null 2>> "$OUT/gpu_steps.log"
  fi
  rm -rf "$parts"
else
  echo "== bench/gpu_steps.py ($(elapsed) s; timeout ${bench_timeout} s)"
  # shellcheck disable=SC2086
  timeout -k 10 "$bench_timeout" python3 bench/gpu_steps.py "${bench_args[@]}" \
      --out "$OUT/gpu_steps.json" --budget_s $(( bench_timeout > 90 ? bench_timeout - 45 \
      : bench_timeout / 2 )) ${JGEN_GPU_BENCH_ARGS:-} 2>&1 | tee "$OUT/gpu_steps.log"
  bench_rc=${PIPESTATUS[0]}
fi

# (e) Summary.
{
  echo "== summary ($(elapsed) s in all)"
  echo "wheels: $wheels"
  grep -E '^jax\.devices|^jax [0-9]' "$OUT/versions.txt"
  echo "tests: exit $tests_rc; $tests_line"
  echo "bench: exit $bench_rc$([ "$bench_rc" = 124 ] && echo ' (TIMED OUT)');" \
       "$([ "$split" = 1 ] && echo 'one side per process' || echo 'both sides in one process')"
  if [ -f "$OUT/gpu_steps.md" ]; then cat "$OUT/gpu_steps.md"; else echo 'no gpu_steps.md'; fi
  echo "files in $OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
} 2>&1 | tee "$OUT/summary.txt"
