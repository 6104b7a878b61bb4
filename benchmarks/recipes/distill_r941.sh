#!/usr/bin/env bash
# Distil an R9.4.1 teacher into a network of ours (`basecall train --teacher`):
#   - every real R9.4.1 read in SHARED_DATA except the SARS-CoV-2 evaluation set: reads without labels (Klebsiella,
#     r941_unlabelled, misc_formats) are labelled chunk by chunk by the teacher's beam-5 calls; reads of a known genome
#     (lambda Tombo, Taiyaki and Remora mapped-signal files) keep their reference labels; 10% of those validate;
#   - the student starts from STUDENT (a model name or directory: fine-tune) or a config.toml (from scratch).
# The model is OUT. Evaluate it on reads of a genome it never saw with
#   python benchmarks/accuracy.py --model OUT --sets sarscov2 lambda
#
#   bash benchmarks/recipes/distill_r941.sh TEACHER STUDENT OUT [SHARED_DATA] [train options...]
# TRAIN="torchrun --standalone --nproc-per-node 2 -m basecall train" trains on two processes (OMP_NUM_THREADS=1:
# two single-threaded processes beat one on two threads on a 2-core CPU). EPOCHS (default 8), LR (1e-3), BATCH (32
# chunks per step in all). Run the same command again after a stop: it goes on from the last whole epoch.
set -euo pipefail
USAGE="usage: distill_r941.sh TEACHER STUDENT OUT [SHARED_DATA] [train options...]"
TEACHER=${1:?$USAGE}
STUDENT=${2:?$USAGE}
OUT=${3:?$USAGE}
DATA=${4:-$(dirname "$0")/../../../shared/data}
shift $(($# < 4 ? $# : 4))
READS=(
    "$DATA/r941_deepnano_blitz/klebsiella_fast5" "$DATA/r941_unlabelled"
    "$DATA/misc_formats/batch0.fast5" "$DATA/misc_formats/multi_fast5_zip.fast5"
    "$DATA/misc_formats/na12878_prom_merged_r9.4.1_chr22_read1.blow5"
    "$DATA/r941_lambda_marcpaga/fast5" "$DATA/r941_taiyaki/mapped_signal_file/mapped_reads_0.hdf5"
    "$DATA/r941_taiyaki/mapped_signal_file/mapped_reads_1.hdf5" "$DATA/r941_remora_mapsig_2021/can_tai_map_sig.hdf5"
)
if [ -f "$STUDENT" ]; then START=(--config "$STUDENT"); else START=(--model "$STUDENT"); fi
. "$(dirname "$0")/train_command.sh"
"${TRAIN_COMMAND[@]}" "${READS[@]}" --teacher "$TEACHER" "${START[@]}" -o "$OUT" $(resume "$OUT") \
    --epochs "${EPOCHS:-8}" --batch-size "$BATCH_PER_PROCESS" --lr "${LR:-1e-3}" --warmup-steps 100 --seed 3 "$@"
echo "model: $OUT"
