#!/usr/bin/env bash
# Produce every results file (tables, JSON, plots, sample grids) for the three categories.
# Usage: scripts/run_benchmarks.sh DATA_ROOT MODELS_DIR OUT [ABLATION_MODEL]
#   DATA_ROOT holds cifar10/ and flowers/; MODELS_DIR holds airplane/, automobile/, flower/.
#   The GAN ablation (MODELS_DIR/airplane vs a beta=0 airplane model) runs only if the
#   ablation model exists: 4th argument, else $ABLATION_MODEL, else MODELS_DIR/../airplane_beta0.
# Environment: LIMIT=N uses the first N images of each val split (quick runs);
#   PYTHON / GANCOMP choose the interpreter and the gancomp command (default: from PATH).
# Run from the repository root; each step's table also goes to OUT/<step>.md (bench: .txt).
set -euo pipefail
data=${1:?usage: $0 DATA_ROOT MODELS_DIR OUT [ABLATION_MODEL]}
models=${2:?usage: $0 DATA_ROOT MODELS_DIR OUT [ABLATION_MODEL]}
out=${3:?usage: $0 DATA_ROOT MODELS_DIR OUT [ABLATION_MODEL]}
ablation=${4:-${ABLATION_MODEL:-$models/../airplane_beta0}}
python=${PYTHON:-python}
gancomp=${GANCOMP:-gancomp}
scripts=$(dirname "$0")
limit=()
if [[ -n ${LIMIT:-} ]]; then limit=(--limit "$LIMIT"); fi
common=(--models-dir "$models" --data-root "$data" --out "$out" "${limit[@]}")
mkdir -p "$out"

declare -A split=([airplane]=cifar10/airplane/val [automobile]=cifar10/automobile/val
  [flower]=flowers/val)

for cat in airplane automobile flower; do
  echo "== bench $cat" >&2
  "$gancomp" bench --category "$cat" --data "$data/${split[$cat]}" "${limit[@]}" \
    --json "$out/bench_$cat.json" --plot "$out/rd_$cat.png" --force --models-dir "$models" \
    | tee "$out/bench_$cat.txt"
done

echo "== cross_category" >&2
"$python" "$scripts/cross_category.py" "${common[@]}" | tee "$out/cross_category.md"

for cat in airplane automobile flower; do
  echo "== sample_grid $cat" >&2
  "$python" "$scripts/sample_grid.py" --category "$cat" "${common[@]}" | tee "$out/samples_$cat.md"
done

if [[ -d $ablation ]]; then
  echo "== gan_ablation ($ablation)" >&2
  "$python" "$scripts/gan_ablation.py" "${common[@]}" \
    --model-a "$models/airplane" --model-b "$ablation" --label-a "beta=0.01" --label-b "beta=0" \
    --data "$data/cifar10/airplane/val" | tee "$out/gan_ablation.md"
else
  echo "== gan_ablation skipped: no ablation model at $ablation" >&2
fi
