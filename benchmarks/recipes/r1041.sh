#!/usr/bin/env bash
# Train an R10.4.1 DNA model (4 kHz) the way the shipped r10.4.1-4khz-starter was made:
#   1. simulate 1,500 reads (≈ 6 M bases) from a random 3 Mb genome (seed 41) with the R10.4.1 9-mer pore model
#      (Uncalled4) at 4 kHz, 400 bases/s, and 60 from another (seed 42) to validate pre-training on;
#   2. pre-train (cycle 1) on those 1,500 + 9 real labelled R10.4.1 reads (6 epochs, 32 chunks per step, lr 2e-3);
#   3. cycles 2 .. CYCLES (default 3): go on on 1,500 reads of a new random genome (seed 41 + cycle) + the 9 real reads
#      + 10 real reads of a CpG-methylated sample (3 epochs, lr 1e-3 each);
#   4. fine-tune on the 19 real reads alone (40 epochs, lr 1e-3), validating on a tenth real read.
# The real reads are r1041_remora's (labels: the BAMs' move tables + MD), split by sorted read id: of the 14 in
# can_reads.pod5 the first 4 are held out of everything (OUT/real/held_out.txt: evaluate on them), the 5th validates
# step 4, the other 9 train; of the 14 in mod_reads.pod5 the first 4 are held out (OUT/real/mod_held_out.txt) and 10
# train. The model is OUT/model. Evaluate it on reads it never trained on with
#   python benchmarks/accuracy.py --model OUT/model --sets r1041 r1041mod r1041chr4 --preset sensitive \
#       --read-ids r1041=OUT/real/held_out.txt --read-ids r1041mod=OUT/real/mod_held_out.txt
# (the chr4 read, another region of the genome, was never trained on either).
#
#   bash benchmarks/recipes/r1041.sh CONFIG.toml OUT_DIR [SHARED_DATA] [train options...]
# CONFIG.toml: an architecture whose [info] says r10.4.1 at 4000 Hz (benchmarks/recipes/r1041-small.toml).
# Extra train options go to every stage, e.g. `--device cuda`. TRAIN="torchrun --standalone --nproc-per-node 2 -m
# basecall train" trains on two processes (with OMP_NUM_THREADS=1: faster than one process on a 2-core CPU); BATCH
# (32 chunks per step in all), SIM_READS, CYCLES, CYCLE1_EPOCHS, CYCLE_EPOCHS and FINE_TUNE_EPOCHS change the
# schedule. Run the same command again after a stop (Ctrl-C, a crash, the end of a session): each stage goes on from
# its last whole epoch.
set -euo pipefail
USAGE="usage: r1041.sh CONFIG.toml OUT_DIR [SHARED_DATA] [train options...]"
CONFIG=${1:?$USAGE}
OUT=${2:?$USAGE}
DATA=${3:-$(dirname "$0")/../../../shared/data}
shift $(($# < 3 ? $# : 3))
PORE_MODEL=$DATA/pore_models/uncalled4/dna_r10.4.1_400bps_9mer.npz
CAN=$DATA/r1041_remora
HELD_OUT=(0a1744e6-ce36-46fd-b4c0-ceaad48f80ce 0a79767d-6812-41a0-b57c-70494818c81d
    14112545-c5c6-4cac-92dd-831b18d85314 27a1ff34-3c0b-4f8f-8a6b-08887e3e57ac)  # the 4 first can read ids, sorted
VALID=(2b42a9b4-accb-441e-830a-05bb026677b9)  # the 5th
TRAIN_IDS=(2e085ce9-7206-455d-9d67-59a331101a8c 40cd7ce8-65fe-4cc1-ab87-6ef70c35e714
    63d93c90-4dd4-4175-ac2f-3235a3b2c49a 6e37823a-9398-4be8-b111-65cab029f4e0 924776ac-8828-4c22-8d5c-54ab73bf970d
    97686f5b-1645-4af8-af2d-83c96f8be090 c06cf355-cafd-4088-94ba-d734740dd156 da34a05f-5f17-4d98-bd07-7a0ccb48bf44
    fbf9c81c-fdb2-4b41-85e1-0a2bd8b5a138)  # the other 9
MOD_HELD_OUT=(0e2a30e1-d3a7-4591-bde4-9f4df054b145 12117a3e-0ba3-4ec4-ac5a-e4792d4d7714
    14546e72-29e9-4a3e-8ccb-8827ba0d8b45 14c72b12-001e-4a4f-8cbf-ab51a5e5ba89)  # the 4 first mod read ids, sorted
MOD_TRAIN_IDS=(42cea76a-5e83-4091-b6fb-24db5b9bcaf6 4b020a85-ac35-4128-97b6-5f99ea8dd7ac
    65b2826f-123c-4726-a82c-ab9dbc808098 6ae16207-e8cb-4263-bd8b-beda89d536b1 80baa72f-811d-4679-8115-b242102505d6
    869b4f66-a4f3-4182-9454-7ca750fcdf99 971d608b-73ba-4aca-af67-c5fca3fe9998 bb702179-11b4-4e73-a399-e12daf780cb4
    bbfe1935-3a62-4f07-8ff1-3625ee405f94 bf21390b-962a-47d8-aaa7-35a36f87520c)  # the other 10
. "$(dirname "$0")/train_command.sh"
mkdir -p "$OUT/real"

simulate() {  # OUT_SUBDIR SEED N_READS: 4 kHz R10.4.1 reads from a random genome of the seed's own
    [ -f "$OUT/$1/labels.hdf5" ] || basecall simulate --pore-model "$PORE_MODEL" --chemistry r10.4.1 \
        --sample-rate 4000 --random-genome-length 3000000 -n "$3" --mean-read-length 4000 --seed "$2" -o "$OUT/$1" -q
}
subset() {  # NAME POD5 IDS...: OUT/real/NAME.pod5 with these reads of POD5 (their labels stay in its BAM)
    local name=$1 pod5=$2
    shift 2
    printf '%s\n' "$@" > "$OUT/real/$name.txt"
    [ -f "$OUT/real/$name.pod5" ] || pod5 filter "$pod5" --ids "$OUT/real/$name.txt" \
        --output "$OUT/real/$name.pod5" > /dev/null
}

subset held_out "$CAN/can_reads.pod5" "${HELD_OUT[@]}"
subset valid "$CAN/can_reads.pod5" "${VALID[@]}"
subset train "$CAN/can_reads.pod5" "${TRAIN_IDS[@]}"
subset mod_held_out "$CAN/mod_reads.pod5" "${MOD_HELD_OUT[@]}"
subset mod_train "$CAN/mod_reads.pod5" "${MOD_TRAIN_IDS[@]}"
REAL=("$OUT/real/train.pod5" "$CAN/can_mappings.bam")
MOD=("$OUT/real/mod_train.pod5" "$CAN/mod_mappings.bam")
simulate sim 41 "${SIM_READS:-1500}"
simulate sim_valid 42 60
"${TRAIN_COMMAND[@]}" "$OUT/sim/labels.hdf5" "${REAL[@]}" --valid "$OUT/sim_valid/labels.hdf5" \
    --config "$CONFIG" -o "$OUT/cycle1" $(resume "$OUT/cycle1") \
    --epochs "${CYCLE1_EPOCHS:-6}" --batch-size "$BATCH_PER_PROCESS" --lr 2e-3 --warmup-steps 200 --seed 1 "$@"
for ((cycle = 2; cycle <= ${CYCLES:-3}; cycle++)); do
    simulate "sim$cycle" $((41 + cycle)) "${SIM_READS:-1500}"
    "${TRAIN_COMMAND[@]}" "$OUT/sim$cycle/labels.hdf5" "${REAL[@]}" "${MOD[@]}" --valid "$OUT/sim_valid/labels.hdf5" \
        --model "$OUT/cycle$((cycle - 1))" -o "$OUT/cycle$cycle" $(resume "$OUT/cycle$cycle") \
        --epochs "${CYCLE_EPOCHS:-3}" --batch-size "$BATCH_PER_PROCESS" --lr 1e-3 --warmup-steps 100 --seed 1 "$@"
done
"${TRAIN_COMMAND[@]}" "${REAL[@]}" "${MOD[@]}" --valid "$OUT/real/valid.pod5" --valid "$CAN/can_mappings.bam" \
    --model "$OUT/cycle${CYCLES:-3}" -o "$OUT/model" $(resume "$OUT/model") \
    --epochs "${FINE_TUNE_EPOCHS:-40}" --batch-size "$BATCH_PER_PROCESS" --lr 1e-3 --warmup-steps 20 --seed 5 "$@"
echo "model: $OUT/model (never trained on: the reads in $OUT/real/held_out.txt and $OUT/real/mod_held_out.txt)"
