#!/bin/bash
# Check S2 of docs/research/map-following-checks.md (the rule is written there, before this has ever run): does DDIM 50
# keep its figures under prediction mixing (--mixing prediction), and which DPM-Solver++ 2M setting (10, 15, 20 steps;
# model tiles or 512 px tiles) with prediction mixing holds DDIM 50's fidelity?
# Eight datasets of the same windows, events and s (dataset seed 2602, never scored before): 40 samples of 512 px from
# the four sources' held-out windows grown to 512 px (research/holdout_windows.py), then model_export.evaluate on all
# of them under each of check S1's judges: map-following (mIoU against the map / against it rotated 180 degrees),
# unchanged-land PSNR (consistency table) and the seams at model-tile boundaries.
# About two hours on 2 idle cores (the two DDIM 50 arms are most of it), and an hour more for check S1's judges
# where they are missing.   OUT=build/check-s2 research/sampler_check_s2.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
MODEL=${MODEL:-changeanywhere_qgis/models/default}
OUT=${OUT:-build/check-s2}
COUNT=${COUNT:-40}
JUDGES_DIR=${JUDGES_DIR:-build/check-s1/judges}  # check S1's judges, the same recipe and seeds
export OMP_WAIT_POLICY=PASSIVE
mkdir -p "$OUT"

source research/judges.sh  # check S1's judges, trained where missing
train_judges
test -d "$OUT/windows/labels" || "$PY" -m research.holdout_windows "$OUT/windows" --size 512
sems=("$OUT"/windows/labels/*.tif)
imgs=(); for s in "${sems[@]}"; do imgs+=("$OUT/windows/images/$(basename "$s")"); done

arm() {  # name, then the sampler options
  local name=$1; shift
  # --no-appearance-shift: the check compares the generator's unchanged land, which a shift of B would hide
  "$PY" -m changeanywhere_qgis dataset --semantic "${sems[@]}" --image "${imgs[@]}" --pre-event real --no-appearance-shift \
    --count "$COUNT" --tile 512 --layout levir --format png --seed 2602 --workers 2 --model "$MODEL" "$@" \
    --out "$OUT/$name" 2>&1 | tail -1
}
arm R-ddim50-latent --sampler ddim --steps 50 --mixing latent
arm P-ddim50-prediction --sampler ddim --steps 50 --mixing prediction
for steps in 10 15 20; do
  arm "D$steps" --sampler dpmpp-2m --steps "$steps" --mixing prediction
  arm "D$steps-512" --sampler dpmpp-2m --steps "$steps" --mixing prediction --tile-size 512
done

# Rule (3): once rule (2) has named the setting (WINNER="its dataset options", e.g. WINNER="--sampler dpmpp-2m --steps 15
# --mixing prediction"; the reference's options if none passed), rerun this script with it: the same arm with the int8
# denoiser, from a copy of the package with its int8 graph (model_export.export.quantize)
if [ -n "${WINNER:-}" ]; then
  test -f "$OUT/model-int8/model.json" || "$PY" -m model_export.export.quantize --package "$MODEL" --out "$OUT/model-int8"
  MODEL="$OUT/model-int8" arm W-int8 $WINNER --precision int8
fi

arms=("$OUT/R-ddim50-latent" "$OUT/P-ddim50-prediction" "$OUT"/D10 "$OUT"/D15 "$OUT"/D20 "$OUT"/D10-512 "$OUT"/D15-512 "$OUT"/D20-512)
[ ! -d "$OUT/W-int8" ] || arms+=("$OUT/W-int8")
reports=$OUT
if [ -n "${WINNER:-}" ] && [ -n "${INT8_ONLY:-}" ]; then
  # rule (3) alone (INT8_ONLY=1): R and W-int8, into $OUT/int8 (each arm's figures are its own: the other arms' rows do
  # not move them); then python -m research.s2_verdict "$OUT/int8"
  arms=("$OUT/R-ddim50-latent" "$OUT/W-int8")
  reports=$OUT/int8
fi
for seed in "${JUDGE_SEEDS[@]}"; do
  # the change-detection part of the report is not part of the rule: one short epoch, no few-shot runs
  "$PY" -m model_export.evaluate "${arms[@]}" --segmentation "$JUDGES_DIR/seed$seed" \
    --threads 2 --cd-epochs 1 --max-minutes 1 --few-shot --report "$reports/report-seed$seed.md" --figures "$reports/figures-seed$seed"
done
echo "reports: $reports/report-seed*.md (map-following ratio per arm and judge; unchanged-land PSNR in the consistency table;"\
  "seams); verdict: python -m research.s2_verdict $reports"
