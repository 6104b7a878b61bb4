#!/usr/bin/env bash
# On a GPU machine: the GPU tests, then the GPU decoder and throughput benchmarks, in one call.
#   bash benchmarks/gpu_check.sh [OUT_DIR]
# The device machine has torch, h5py, numpy and click but no package index: put wheels for the rest
# (pod5, lib-pod5, vbz-h5py-plugin, pyslow5, pysam, mappy, dnaio, safetensors, tomli-w, tqdm, pytest, hypothesis,
# fast-ctc-decode, and their deps) in device_carry/wheels and a few data files in device_carry/data (both ignored
# by git), and carry device_carry.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-benchmarks/results}}
mkdir -p "$OUT"
if [ -d device_carry/wheels ]; then
    pip install --quiet --no-index --find-links device_carry/wheels -e '.[test]' --no-deps
    pip install --quiet --no-index --find-links device_carry/wheels pod5 vbz-h5py-plugin pyslow5 pysam mappy dnaio safetensors tomli-w tqdm pytest hypothesis fast-ctc-decode
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
export BASECALL_SHARED_DATA=${BASECALL_SHARED_DATA:-$PWD/device_carry/data}
pytest -q -k "cuda or gpu" tests 2>&1 | tail -n 20 | tee "$OUT/gpu_tests.txt"
python benchmarks/decoder.py --json "$OUT/decoder_gpu.json" 2>&1 | tee "$OUT/decoder_gpu.txt"
INPUTS=()
[ -d "$BASECALL_SHARED_DATA/r941_lambda_marcpaga/fast5" ] && INPUTS=(--inputs "$BASECALL_SHARED_DATA/r941_lambda_marcpaga/fast5")
python benchmarks/throughput.py --device cuda "${INPUTS[@]}" --json "$OUT/throughput_gpu.json" 2>&1 | tee "$OUT/throughput_gpu.txt"
# every GPU (--device cuda:all) must give the same calls as one
if [ -d "$BASECALL_SHARED_DATA/r941_lambda_marcpaga/fast5" ]; then
    MODEL=$(python -c "from basecall.model import shipped_models; print(next(iter(shipped_models()), ''))")
    if [ -n "$MODEL" ]; then
        basecall basecaller -m "$MODEL" --device cuda "$BASECALL_SHARED_DATA/r941_lambda_marcpaga/fast5" -o "$OUT/one_gpu.fastq" 2>&1 | tail -n 1
        basecall basecaller -m "$MODEL" --device cuda:all "$BASECALL_SHARED_DATA/r941_lambda_marcpaga/fast5" -o "$OUT/all_gpus.fastq" 2>&1 | tail -n 1
        cmp "$OUT/one_gpu.fastq" "$OUT/all_gpus.fastq" && echo "cuda:all == cuda" | tee "$OUT/cuda_all.txt"
    fi
fi
# training throughput on the GPU (samples/s of one short epoch on simulated reads)
SIM=$(mktemp -d)
basecall simulate --pore-model "$BASECALL_SHARED_DATA/pore_models/kmer_models/template_median68pA.model" \
    --random-genome-length 500000 -n 200 --mean-read-length 4000 --seed 1 -o "$SIM/sim" -q || true
if [ -f "$SIM/sim/labels.hdf5" ]; then
    basecall train "$SIM/sim/labels.hdf5" --config benchmarks/recipes/r941_small_s5.toml -o "$SIM/model" --epochs 1 \
        --batch-size 64 --device cuda -q
    python -c "import csv,sys; r=list(csv.DictReader(open(sys.argv[1])))[-1]; print('GPU training samples/s:', r['train_samples_per_s'])" \
        "$SIM/model/training.csv" | tee "$OUT/train_gpu.txt"
fi
