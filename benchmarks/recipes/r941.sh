#!/usr/bin/env bash
# Train an R9.4.1 DNA model (4 kHz) from scratch, the way the shipped model was made:
#   1. simulate 2,400 reads (≈ 9.6 M bases) from a random 3 Mb genome with the R9.4 6-mer pore model;
#   2. pre-train on them + the real labelled R9.4.1 reads (10 epochs, batch 32, peak lr 2e-3);
#   3. a second pre-training cycle on 2,400 new reads from another random genome + the real reads (4 epochs, lr 1e-3);
#   4. fine-tune on the real labelled reads alone (10 epochs, batch 32, lr 3e-4).
# The model is OUT/stage2. Evaluate it on reads of a genome it never saw with
#   python benchmarks/accuracy.py --model OUT/stage2 --sets sarscov2 lambda
#
#   bash benchmarks/recipes/r941.sh CONFIG.toml OUT_DIR [SHARED_DATA] [train options...]
# Extra train options go to every stage, e.g. `--device cuda` or `--seed N`. SIM_READS=N simulates another number of
# reads; STAGE1_EPOCHS, CYCLE2_EPOCHS (0: no step 3) and STAGE2_EPOCHS change the schedule (earlier recipes in
# benchmarks/ARCHITECTURES.md: SIM_READS=400 STAGE1_EPOCHS=16 CYCLE2_EPOCHS=0 STAGE2_EPOCHS=40). Run the same
# command again after a stop (Ctrl-C, a crash, the end of a session): each stage goes on from its last whole epoch.
set -euo pipefail
CONFIG=${1:?usage: r941.sh CONFIG.toml OUT_DIR [SHARED_DATA] [train options...]}
OUT=${2:?usage: r941.sh CONFIG.toml OUT_DIR [SHARED_DATA] [train options...]}
DATA=${3:-$(dirname "$0")/../../../shared/data}
shift $(($# < 3 ? $# : 3))
REAL=("$DATA/r941_lambda_marcpaga/fast5" "$DATA/r941_taiyaki/mapped_signal_file" "$DATA/r941_remora_mapsig_2021/can_tai_map_sig.hdf5")
CYCLE2_EPOCHS=${CYCLE2_EPOCHS:-4}
mkdir -p "$OUT"
simulate() {  # OUT_SUBDIR SEED: reads from a random genome of the seed's own
    [ -f "$OUT/$1/labels.hdf5" ] || basecall simulate --pore-model "$DATA/pore_models/kmer_models/template_median68pA.model" \
        --random-genome-length 3000000 -n "${SIM_READS:-2400}" --mean-read-length 4000 --seed "$2" -o "$OUT/$1" -q
}
. "$(dirname "$0")/train_command.sh"  # resume()
simulate sim 21
basecall train "$OUT/sim/labels.hdf5" "${REAL[@]}" --config "$CONFIG" -o "$OUT/stage1" $(resume "$OUT/stage1") \
    --epochs "${STAGE1_EPOCHS:-10}" --batch-size 32 --lr 2e-3 --warmup-steps 300 --seed 1 "$@"
PRETRAINED=$OUT/stage1
if [ "$CYCLE2_EPOCHS" -gt 0 ]; then
    simulate sim2 22
    basecall train "$OUT/sim2/labels.hdf5" "${REAL[@]}" --model "$OUT/stage1" -o "$OUT/stage1b" $(resume "$OUT/stage1b") \
        --epochs "$CYCLE2_EPOCHS" --batch-size 32 --lr 1e-3 --warmup-steps 100 --seed 1 "$@"
    PRETRAINED=$OUT/stage1b
fi
basecall train "${REAL[@]}" --model "$PRETRAINED" -o "$OUT/stage2" $(resume "$OUT/stage2") \
    --epochs "${STAGE2_EPOCHS:-10}" --batch-size 32 --lr 3e-4 --warmup-steps 100 --seed 5 "$@"
echo "model: $OUT/stage2"
