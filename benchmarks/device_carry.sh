#!/usr/bin/env bash
# Fill device_carry/ (ignored by git) for a GPU machine that has torch, h5py, numpy and click but no package index:
# wheels of the versions installed here (cp312, manylinux) and the shared data files the GPU checks and recipes read.
#   bash benchmarks/device_carry.sh [SHARED_DATA]
# Then carry "device_carry" and start the command with `. benchmarks/gpu_check.sh --setup-only`.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data}
PY=${PYTHON:-python3}
WHEELS=device_carry/wheels
mkdir -p "$WHEELS"
version() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))"; }
for name in pod5 lib_pod5 iso8601 more-itertools Deprecated pytz vbz-h5py-plugin pyslow5 dnaio tomli_w fast_ctc_decode numba llvmlite \
    xopen isal zlib-ng; do
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$WHEELS" "$name==$(version "$name")"
done
# mappy has no wheel on PyPI and the GPU machine runs CPython 3.12: take a cp312 build from pip's cache, or build one
# with a python3.12 (`python3.12 -m pip wheel --no-deps mappy==VERSION`)
MAPPY=$(find ~/.cache/pip/wheels -name "mappy-$(version mappy)-cp312-*.whl" 2>/dev/null | head -n 1)
if [ -n "$MAPPY" ]; then
    cp "$MAPPY" "$WHEELS/"
elif python3.12 -c '' 2>/dev/null; then  # (a pyenv shim exists but fails unless PYENV_VERSION names a 3.12)
    python3.12 -m pip wheel -q --no-deps -w "$WHEELS" "mappy==$(version mappy)"
else
    echo "device_carry.sh: no cp312 mappy wheel in pip's cache and no working python3.12 to build one" \
        "(with pyenv: PYENV_VERSION=3.12.N bash benchmarks/device_carry.sh)" >&2
    exit 1
fi
for path in r941_lambda_marcpaga r941_sarscov2_slorado r941_taiyaki/mapped_signal_file \
    r941_remora_mapsig_2021/can_tai_map_sig.hdf5 pore_models/kmer_models/template_median68pA.model; do
    mkdir -p "device_carry/data/$(dirname "$path")"
    cp -r "$DATA/$path" "device_carry/data/$path"
done
chmod -R u+w device_carry
du -sh device_carry
