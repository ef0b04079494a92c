#!/usr/bin/env bash
# The device check: one command, at most 5 minutes, on one GPU (or a CPU). From the repository root:
#
#   bash scripts/device_check.sh                              # on a GPU machine (JAX with CUDA)
#   JAX_PLATFORMS=cpu bash scripts/device_check.sh --quick    # on a CPU: tiny sizes, under a minute
#
# It prints the platform, device and JAX version; words/s of sgram_neg and cbow_neg at D = 100 and 300 (and,
# on a GPU, B = 1024, 8192, 32768 and the other layouts as time allows) on a synthetic Zipf corpus made on the
# spot; the full-softmax models' (cbow, sgram) GFLOP/s beside a plain jnp matmul; and which step and layout
# ran for each. The figures also go, as JSON, to $OUT/device_check.json when $OUT is set, else to
# ./device_check.json; the JSON is rewritten after every measurement, so a run cut short keeps its figures.
# Needs jax, optax and numpy only: no corpus files, no gensim, no network, no `pip install` of the package.
# Flags go to scripts/device_bench.py (`bash scripts/device_check.sh --help`), e.g. --time_budget_s=120.
# The Python: $PYTHON if set, else the first of python3 and python that imports jax.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=""
if [ -n "${PYTHON:-}" ]; then candidates=("$PYTHON"); else candidates=(python3 python); fi
for c in "${candidates[@]}"; do
  if command -v "$c" >/dev/null 2>&1 && "$c" -c "import jax" >/dev/null 2>&1; then PY=$(command -v "$c"); break; fi
done
if [ -z "$PY" ]; then
  echo "error: no Python here imports jax (tried: ${PYTHON:-python3 python}); install jax or set PYTHON=/path/to/python" >&2
  exit 2
fi
echo "python: $PY"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi -L || true
fi
# The bench stops adding measurements after --time_budget_s (240 s); timeout is the hard stop (SIGTERM: the
# bench writes what it has and exits 124; SIGKILL 5 s later if it cannot): 290 s, or $DEVICE_CHECK_TIMEOUT_S
# for a longer --time_budget_s.
exec timeout -k 5 "${DEVICE_CHECK_TIMEOUT_S:-290}" "$PY" scripts/device_bench.py "$@"
