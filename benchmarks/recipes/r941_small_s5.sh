#!/usr/bin/env bash
# Reproduce the shipped R9.4.1 model (see its MODEL_CARD.md): pre-train on simulated + real labelled R9.4.1 reads,
# then fine-tune on a second simulated genome + the same real reads.
#   bash benchmarks/recipes/r941_small_s5.sh OUT_DIR [SHARED_DATA]
# About 2-3 hours on a 2-core CPU; add --device cuda to the train lines on a GPU.
set -euo pipefail
OUT=${1:?usage: r941_small_s5.sh OUT_DIR [SHARED_DATA]}
DATA=${2:-$(dirname "$0")/../../../shared/data}
RECIPE=$(dirname "$0")/r941_small_s5.toml
PORE_MODEL=$DATA/pore_models/kmer_models/template_median68pA.model
REAL=("$DATA/r941_lambda_marcpaga/fast5" "$DATA/r941_taiyaki/mapped_signal_file" "$DATA/r941_remora_mapsig_2021/can_tai_map_sig.hdf5")
mkdir -p "$OUT"
basecall simulate --pore-model "$PORE_MODEL" --random-genome-length 2000000 -n 250 --mean-read-length 4000 --seed 11 -o "$OUT/sim11"
basecall simulate --pore-model "$PORE_MODEL" --random-genome-length 1000000 -n 120 --mean-read-length 4000 --seed 12 -o "$OUT/sim12"
basecall train "$OUT/sim11/labels.hdf5" "${REAL[@]}" --config "$RECIPE" -o "$OUT/stage1" \
    --epochs 16 --batch-size 16 --warmup-steps 150 --lr 2e-3
basecall train "$OUT/sim12/labels.hdf5" "${REAL[@]}" --model "$OUT/stage1" -o "$OUT/stage2" \
    --epochs 10 --batch-size 16 --warmup-steps 50 --lr 3e-4 --seed 5
echo "model: $OUT/stage2 (then fit qscale/qbias: basecall evaluate CALLS -r REF --qscores)"
