#!/usr/bin/env bash
# On a GPU machine: the GPU tests, then the GPU decoder and throughput benchmarks, in one call.
#   bash benchmarks/gpu_check.sh [OUT_DIR]
# The device machine has torch, h5py, numpy, click, tqdm, safetensors, pytest and hypothesis but no package index:
# `bash benchmarks/device_carry.sh` puts cp312 wheels for the rest in device_carry/wheels and the data files in
# device_carry/data (a copy of the ../shared/data layout), both ignored by git; carry device_carry.
# Source this file's setup part alone with `. benchmarks/gpu_check.sh --setup-only` (puts `basecall` on PATH).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -d device_carry/wheels ] && ! python3 -c "import pod5, mappy, tomli_w" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/basecall-site \
        device_carry/wheels/*.whl
    export PYTHONPATH=/tmp/basecall-site:$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
if ! command -v basecall >/dev/null; then
    mkdir -p /tmp/basecall-bin
    printf '#!/bin/sh\nexec python3 -m basecall "$@"\n' >/tmp/basecall-bin/basecall
    chmod +x /tmp/basecall-bin/basecall
    export PATH=/tmp/basecall-bin:$PATH
fi
export BASECALL_SHARED_DATA=${BASECALL_SHARED_DATA:-$PWD/device_carry/data}
[ "${1:-}" = --setup-only ] && return 0 2>/dev/null
OUT=${1:-${OUT:-benchmarks/results}}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_beam.py tests/test_pipeline.py tests/test_model_decoder.py \
    -k "cuda or gpu" 2>&1 | tail -n 5 | tee "$OUT/gpu_tests.txt"
# (a first run on a fresh H100 printed nothing in 130 s when it began with the CPU rows and CPU compiles)
timeout 120 python3 benchmarks/decoder.py --devices cuda --chunks 256 1024 4096 --widths 5 --json "$OUT/decoder_gpu.json" 2>&1 |
    tee "$OUT/decoder_gpu.txt"
LAMBDA=$BASECALL_SHARED_DATA/r941_lambda_marcpaga/fast5
MODEL=r9.4.1-accurate  # the default for the R9.4.1 reads timed here
if [ -d "$LAMBDA" ] && [ -n "$MODEL" ]; then
    # every GPU (--device cuda:all) must give the same calls as one
    basecall basecaller -m "$MODEL" --device cuda "$LAMBDA" -o "$OUT/one_gpu.fastq" 2>&1 | tail -n 1
    basecall basecaller -m "$MODEL" --device cuda:all "$LAMBDA" -o "$OUT/all_gpus.fastq" 2>&1 | tail -n 1
    cmp "$OUT/one_gpu.fastq" "$OUT/all_gpus.fastq" && echo "cuda:all == cuda" | tee "$OUT/cuda_all.txt"
    rm -f "$OUT"/*.fastq
    # the shipped R9.4.1 models (forward and whole run, fp32 and fp16, greedy and beam 5), then the built-in
    # architectures (untrained)
    MODEL_DIR=$(python3 -c "from basecall.model import shipped_models; print(shipped_models()['$MODEL'])")
    timeout 150 python3 benchmarks/throughput.py --device cuda --inputs "$LAMBDA" --seconds 2 --beam-widths 0 5 \
        --models "$MODEL_DIR" "${MODEL_DIR%-accurate}-fast" "${MODEL_DIR%-accurate}-small" \
        --json "$OUT/throughput_gpu_model.json" 2>&1 | tee "$OUT/throughput_gpu_model.txt"
    timeout 150 python3 benchmarks/throughput.py --device cuda --inputs "$LAMBDA" --seconds 2 \
        --json "$OUT/throughput_gpu.json" 2>&1 | tee "$OUT/throughput_gpu.txt"
    # a whole run large enough to time a GPU: 2,000 simulated reads (≈ 100 M samples) in 16 pod5 files, read by
    # 1, 4 and 8 reader processes (the reading stage alone first: it bounds a GPU run)
    SIM=/tmp/basecall-gpu-sim
    [ -d "$SIM" ] || timeout 120 basecall simulate -q --pore-model "$BASECALL_SHARED_DATA/pore_models/kmer_models/template_median68pA.model" \
        --random-genome-length 1000000 -n 2000 --reads-per-file 125 --seed 5 -o "$SIM"
    timeout 200 python3 benchmarks/throughput.py --device cuda --inputs "$SIM" --seconds 2 --models "$MODEL_DIR" \
        --precisions half --beam-widths 0 5 --readers 1 4 8 --json "$OUT/throughput_gpu_large.json" 2>&1 |
        tee "$OUT/throughput_gpu_large.txt"
    for readers in 1 4 8; do
        echo "--readers $readers: $(timeout 120 basecall basecaller -m "$MODEL" --device cuda --readers $readers "$SIM" \
            -o /dev/null 2>&1 | tail -n 1)" | tee -a "$OUT/whole_run_readers.txt"
    done
fi
