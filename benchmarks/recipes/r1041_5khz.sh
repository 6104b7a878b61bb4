#!/usr/bin/env bash
# Fine-tune the 4 kHz R10.4.1 starter for 5 kHz reads, after benchmarks/recipes/r1041.sh. Tried for
# r10.4.1-5khz-starter and NOT shipped: it gains on held-out reads resampled to 5 kHz but loses the one real 5 kHz read
# (models/r10.4.1-5khz-starter/MODEL_CARD.md has the numbers; the shipped one is the two-cycle 4 kHz weights at 5 kHz settings).
# Kept to rerun when labelled 5 kHz reads exist (add them to stage 4's data). The steps:
#   1. the 4 kHz model's config is set to 5 kHz (chunks of 5,000 samples overlapping by 600: the same bases a chunk);
#   2. the 19 real training reads and the validation read of r1041.sh (OUT/real) are resampled to 5 kHz
#      (benchmarks/recipes/resample_reads.py: there are no labelled 5 kHz reads to train on), and so are the 4 + 4
#      held-out reads, to evaluate on beside the one real 5 kHz read with truth (r1041_slorado);
#   3. fine-tune on 1,500 reads simulated at 5 kHz (seed 51) + the resampled real reads (2 epochs, lr 1e-3);
#   4. fine-tune on the resampled real reads alone (40 epochs, lr 1e-3), validating on the resampled tenth read.
# The model is OUT/5khz/stageB. Evaluate it on reads it never trained on: the real 5 kHz read
# (r1041_slorado/5khz_r10/one_5khz.blow5) and OUT/5khz/held_out.pod5, OUT/5khz/mod_held_out.pod5 (resampled).
#
#   bash benchmarks/recipes/r1041_5khz.sh OUT_DIR [SHARED_DATA] [train options...]
# OUT_DIR: where benchmarks/recipes/r1041.sh ran (its real/ subsets and model); MODEL=DIR starts from another
# 4 kHz model (e.g. MODEL=models/r10.4.1-4khz-starter). TRAIN, BATCH and resuming work as in r1041.sh.
set -euo pipefail
USAGE="usage: r1041_5khz.sh OUT_DIR [SHARED_DATA] [train options...]"
OUT=${1:?$USAGE}
DATA=${2:-$(dirname "$0")/../../../shared/data}
shift $(($# < 2 ? $# : 2))
HERE=$(dirname "$0")
CAN=$DATA/r1041_remora
FIVE=$OUT/5khz
. "$(dirname "$0")/train_command.sh"
mkdir -p "$FIVE/init"

if [ ! -f "$FIVE/init/config.toml" ]; then
    cp "${MODEL:-$OUT/model}/weights.safetensors" "$FIVE/init/"
    sed -e 's/^sample_rate_hz = 4000/sample_rate_hz = 5000/' -e 's/^chunksize = 4000/chunksize = 5000/' \
        -e 's/^overlap = 500/overlap = 600/' -e 's/^qscale = .*/qscale = 1.0/' -e 's/^qbias = .*/qbias = 0.0/' \
        -e 's/4 kHz/5 kHz/' "${MODEL:-$OUT/model}/config.toml" > "$FIVE/init/config.toml"
fi
resampled() {  # OUTPUT INPUTS...
    [ -f "$1" ] || python "$HERE/resample_reads.py" --rate 5000 -o "$@"
}
resampled "$FIVE/train.hdf5" "$OUT/real/train.pod5" "$CAN/can_mappings.bam" "$OUT/real/mod_train.pod5" \
    "$CAN/mod_mappings.bam"
resampled "$FIVE/valid.hdf5" "$OUT/real/valid.pod5" "$CAN/can_mappings.bam"
resampled "$FIVE/held_out.pod5" "$OUT/real/held_out.pod5"
resampled "$FIVE/mod_held_out.pod5" "$OUT/real/mod_held_out.pod5"
simulate() {  # OUT_SUBDIR SEED N_READS: 5 kHz R10.4.1 reads from a random genome of the seed's own
    [ -f "$FIVE/$1/labels.hdf5" ] || basecall simulate --pore-model "$DATA/pore_models/uncalled4/dna_r10.4.1_400bps_9mer.npz" \
        --chemistry r10.4.1 --sample-rate 5000 --random-genome-length 3000000 -n "$3" --mean-read-length 4000 \
        --seed "$2" -o "$FIVE/$1" -q
}
simulate sim 51 "${SIM_READS:-1500}"
simulate sim_valid 52 60
"${TRAIN_COMMAND[@]}" "$FIVE/sim/labels.hdf5" "$FIVE/train.hdf5" --valid "$FIVE/sim_valid/labels.hdf5" \
    --model "$FIVE/init" -o "$FIVE/stageA" $(resume "$FIVE/stageA") \
    --epochs "${STAGEA_EPOCHS:-2}" --batch-size "$BATCH_PER_PROCESS" --lr 1e-3 --warmup-steps 100 --seed 1 "$@"
"${TRAIN_COMMAND[@]}" "$FIVE/train.hdf5" --valid "$FIVE/valid.hdf5" \
    --model "$FIVE/stageA" -o "$FIVE/stageB" $(resume "$FIVE/stageB") \
    --epochs "${STAGEB_EPOCHS:-40}" --batch-size "$BATCH_PER_PROCESS" --lr 1e-3 --warmup-steps 20 --seed 5 "$@"
echo "model: $FIVE/stageB (never trained on: the real 5 kHz read, $FIVE/held_out.pod5, $FIVE/mod_held_out.pod5)"
