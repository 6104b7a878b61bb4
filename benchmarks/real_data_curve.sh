#!/usr/bin/env bash
# How accuracy on a genome never trained on grows with the real labelled R9.4.1 reads a model is fine-tuned on.
#   1. pre-train `r9.4.1-small`'s network on simulated reads only (no real read: the curve's first point);
#   2. hold out 5 lambda reads; fine-tune on nested sets of the other 45 lambda reads (6, 11, 22, 45 reads), and on
#      the 45 plus the 20 labelled reads of other genomes (Taiyaki and Remora files), each for roughly the same number
#      of updates (epochs from the reads' samples for UPDATES, default 340, the recipe's stage 2; 196-360 when
#      measured), so that mainly the data differ;
#   3. call the SARS-CoV-2 reads (a genome none of them saw) and the 5 held-out lambda reads with each model; print a
#      table and write OUT/curve.json.
#
#   bash benchmarks/real_data_curve.sh OUT [SHARED_DATA] [train options...]
# Train options go to every run (the last of a repeated option wins), e.g. `--device cuda`. TRAIN replaces
# `basecall train`, e.g. TRAIN="torchrun --standalone --nproc-per-node 2 -m basecall train" with `--batch-size 16`
# (the same 32 chunks per update on two CPU processes). Run it again after a stop: each run goes on where it stopped.
set -euo pipefail
OUT=${1:?usage: real_data_curve.sh OUT [SHARED_DATA] [train options...]}
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=$(cd "${2:-$HERE/../../shared/data}" && pwd)
shift $(($# < 2 ? $# : 2))
read -r -a TRAIN <<< "${TRAIN:-basecall train}"
OTHER=("$DATA/r941_taiyaki/mapped_signal_file" "$DATA/r941_remora_mapsig_2021/can_tai_map_sig.hdf5")
mkdir -p "$OUT"

[ -f "$OUT/sim/labels.hdf5" ] || basecall simulate --pore-model "$DATA/pore_models/kmer_models/template_median68pA.model" \
    --random-genome-length 3000000 -n "${SIM_READS:-2400}" --mean-read-length 4000 --seed 22 -o "$OUT/sim" -q
resume() { [ -f "$1/checkpoint.pt" ] && echo --resume; }  # a finished run says so; a stopped one goes on
"${TRAIN[@]}" "$OUT/sim/labels.hdf5" --config "$HERE/../models/r9.4.1-small/config.toml" -o "$OUT/stage1" \
    $(resume "$OUT/stage1") --epochs "${STAGE1_EPOCHS:-6}" --batch-size 32 --lr 2e-3 --warmup-steps 300 --seed 1 "$@"

# Subsets of the lambda reads (fixed shuffle), as folders of links; epochs for ≈ UPDATES updates of 32 chunks.
python - "$DATA" "$OUT" "${UPDATES:-340}" <<'EOF'
import csv, random, sys
from pathlib import Path
data, out, updates = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
truth = data / "derived" / "r941_lambda_marcpaga.tombo_truth.tsv"
rows = sorted(csv.DictReader((l for l in truth.open() if not l.startswith("#")), delimiter="\t"), key=lambda r: r["read_id"])
random.Random(7).shuffle(rows)
plan = [("valid", rows[:5])] + [(f"lambda{n}", rows[5:5 + n]) for n in (6, 11, 22, 45)]
with (out / "subsets.tsv").open("w") as table:
    for name, subset in plan:
        folder = out / "reads" / name
        folder.mkdir(parents=True, exist_ok=True)
        for row in subset:
            link = folder / f"{row['read_id']}.fast5"
            if not link.exists():
                link.symlink_to(data / "r941_lambda_marcpaga" / "fast5" / link.name)
        samples = sum(int(r["signal_len"]) for r in subset)
        epochs = max(1, round(updates * 32 * 3500 / samples))  # chunks of 4,000 samples every 3,500
        table.write(f"{name}\t{len(subset)}\t{sum(int(r['n_bases']) for r in subset)}\t{epochs}\n")
EOF

evaluate() {  # MODEL_DIR: SARS-CoV-2 reads and the held-out lambda reads
    [ -f "$1/sarscov2.json" ] || python "$HERE/accuracy.py" --model "$1" --sets sarscov2 --json "$1/sarscov2.json" > /dev/null
    [ -f "$1/heldout.json" ] || { basecall basecaller --model "$1" "$OUT/reads/valid" -o "$1/heldout.fastq" -q &&
        basecall evaluate "$1/heldout.fastq" --reference "$DATA/r941_lambda_marcpaga/Lambda_phage.fna" --json "$1/heldout.json" > /dev/null; }
}
evaluate "$OUT/stage1"
while IFS=$'\t' read -r name _ _ epochs; do
    [ "$name" = valid ] && continue
    for run in "$name" $([ "$name" = lambda45 ] && echo lambda45+other); do
        inputs=("$OUT/reads/$name")
        if [ "$run" != "$name" ]; then inputs+=("${OTHER[@]}"); fi
        "${TRAIN[@]}" "${inputs[@]}" --valid "$OUT/reads/valid" --model "$OUT/stage1" -o "$OUT/$run" $(resume "$OUT/$run") --epochs "$epochs" --batch-size 32 --lr 3e-4 --warmup-steps 100 --seed 5 "$@"
        evaluate "$OUT/$run"
    done
done < "$OUT/subsets.tsv"

python - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
sizes = {name: (int(n), int(bases)) for name, n, bases, _ in (l.split("\t") for l in (out / "subsets.tsv").read_text().splitlines())}
rows = []
for run in ["stage1", "lambda6", "lambda11", "lambda22", "lambda45", "lambda45+other"]:
    sars = json.loads((out / run / "sarscov2.json").read_text())["sets"]["sarscov2"]["ours"]
    held = next(iter(json.loads((out / run / "heldout.json").read_text())["calls"].values()))["summary"]
    reads, bases = sizes.get(run.split("+")[0], (0, 0))
    rows.append({"run": run, "lambda_reads": reads, "lambda_bases": bases, "other_genome_reads": 20 * ("+" in run),
                 "sarscov2_median_identity": sars["median_identity"], "sarscov2_mapped": sars["mapped_fraction"],
                 "heldout_lambda_mean_identity": held["mean_identity"], "heldout_lambda_mapped": held["mapped_fraction"]})
print("| fine-tuned on | lambda bases | SARS-CoV-2 median identity (mapped) | 5 held-out lambda reads, mean identity (mapped) |")
print("| --- | ---: | --- | --- |")
for r in rows:
    what = "nothing (simulated reads only)" if r["run"] == "stage1" else f"{r['lambda_reads']} lambda reads" + (" + 20 of other genomes" if r["other_genome_reads"] else "")
    print(f"| {what} | {r['lambda_bases']:,} | {r['sarscov2_median_identity']:.3f} ({r['sarscov2_mapped']:.0%}) | "
          f"{r['heldout_lambda_mean_identity']:.3f} ({r['heldout_lambda_mapped']:.0%}) |")
(out / "curve.json").write_text(json.dumps(rows, indent=2))
print(f"wrote {out / 'curve.json'}")
EOF
