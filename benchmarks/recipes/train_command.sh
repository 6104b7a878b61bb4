# Sourced by the training recipes: how each stage calls `basecall train`, and how a stopped stage goes on.
# TRAIN="torchrun --standalone --nproc-per-node N -m basecall train" trains on N processes; BATCH (default 32) is the
# chunks per step in all, split over them (BATCH_PER_PROCESS is each process's --batch-size).
read -r -a TRAIN_COMMAND <<< "${TRAIN:-basecall train}"
PROCESSES=1
[[ "${TRAIN:-}" =~ --nproc-per-node[\ =]([0-9]+) ]] && PROCESSES=${BASH_REMATCH[1]}
BATCH_PER_PROCESS=$((${BATCH:-32} / PROCESSES))
resume() { [ -f "$1/checkpoint.pt" ] && echo --resume; }  # a stopped run goes on where it stopped
