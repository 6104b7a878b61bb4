#!/usr/bin/env bash
# Architecture sweep: run the R9.4.1 recipe (benchmarks/recipes/r941.sh) for every candidate config in
# benchmarks/recipes/sweep/, all at once (meant for one GPU; on a 2-core CPU run one candidate at a time instead),
# each stopped after LIMIT_S seconds. Leaves each candidate's models and training logs in OUT/NAME, one
# OUT/sweep.csv row per finished stage (last epoch's training samples/s and validation accuracy), OUT/stage1.tar,
# OUT/stage1b.tar and OUT/stage2.tar (each candidate's config.toml, weights.safetensors and training.csv of that
# stage) and OUT/logs.tar to evaluate elsewhere with benchmarks/accuracy.py and benchmarks/throughput.py.
#   bash benchmarks/arch_sweep.sh OUT_DIR [SHARED_DATA] [LIMIT_S] [train options...]
# CONFIGS="a.toml b.toml" runs only those candidates; SEEDS="1 2 3" runs each candidate once per seed (`--seed S` for
# every stage, in OUT/NAME-seedS), to measure the spread between runs.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:?usage: arch_sweep.sh OUT_DIR [SHARED_DATA] [LIMIT_S] [train options...]}
DATA=${2:-$HERE/../../shared/data}
LIMIT=${3:-3600}
shift $(($# < 3 ? $# : 3))
mkdir -p "$OUT"
for config in ${CONFIGS:-"$HERE"/recipes/sweep/*.toml}; do
    for seed in ${SEEDS:--}; do
        [ "$seed" = - ] && seed=
        name=$(basename "$config" .toml)${seed:+-seed$seed}
        (
            timeout "$LIMIT" bash "$HERE/recipes/r941.sh" "$config" "$OUT/$name" "$DATA" -q "$@" ${seed:+--seed "$seed"} \
                >"$OUT/$name.log" 2>&1
            echo "$name exit $?" >>"$OUT/exits.txt"
        ) &
    done
done
wait
cat "$OUT/exits.txt"
python3 - "$OUT" <<'PY'
import csv, sys
from pathlib import Path
out = Path(sys.argv[1])
rows = []
for log in sorted(out.glob("*/stage*/training.csv")):
    epochs = list(csv.DictReader(log.open()))
    best = max(epochs, key=lambda r: float(r.get("valid_median_accuracy", "nan") or "nan"))
    rows.append({"candidate": log.parts[-3], "stage": log.parts[-2], "epochs": len(epochs),
                 "train_samples_per_s": epochs[-1]["train_samples_per_s"],
                 "best_valid_median_accuracy": best.get("valid_median_accuracy"), "best_epoch": best["epoch"]})
with (out / "sweep.csv").open("w", newline="") as handle:
    writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["candidate"])
    writer.writeheader()
    writer.writerows(rows)
for row in rows:
    print("  ".join(f"{k}={v}" for k, v in row.items()))
PY
cd "$OUT" || exit
for stage in stage1 stage1b stage2; do
    tar cf "$stage.tar" */"$stage"/config.toml */"$stage"/weights.safetensors */"$stage"/training.csv 2>/dev/null
done
tar cf logs.tar ./*.log exits.txt
