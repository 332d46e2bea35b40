#!/bin/bash
# Check S1 of docs/research/map-following-checks.md (the rule is written there, before this has ever run): may DPM-Solver++ 2M
# at 20 steps, with model tiles or with 512 px tiles, replace DDIM 50 at model tiles as the defaults?
# Three datasets of the same windows, events and s (dataset seed 1501, never scored before; the sampler draws
# from its own stream), one per arm, then model_export.evaluate on each under every judge: its map-following table
# (mIoU against the map / against the map rotated 180 degrees) and its consistency table (unchanged-land PSNR).
# Hours on 2 cores (the DDIM 50 arm is most of it).   OUT=build/check-s1 research/defaults_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
MODEL=${MODEL:-changeanywhere_qgis/models/default}
OUT=${OUT:-build/check-s1}
COUNT=${COUNT:-40}
JUDGES_DIR=${JUDGES_DIR:-$OUT/judges}
export OMP_WAIT_POLICY=PASSIVE
mkdir -p "$OUT"

source research/judges.sh
train_judges
sems=(data/train/oem/labels/*.tif)
imgs=(); for s in "${sems[@]}"; do imgs+=("data/train/oem/images/$(basename "$s")"); done

arm() {  # name, then the sampler options
  local name=$1; shift
  # --no-appearance-shift: the check compares the generator's unchanged land, which a shift of B would hide
  "$PY" -m changeanywhere_qgis dataset --semantic "${sems[@]}" --image "${imgs[@]}" --pre-event real --no-appearance-shift \
    --count "$COUNT" --tile 512 --layout levir --format png --seed 1501 --workers 2 --model "$MODEL" "$@" \
    --out "$OUT/$name" 2>&1 | tail -1
}
arm ddim50 --sampler ddim --steps 50
arm dpmpp20 --sampler dpmpp-2m --steps 20
arm dpmpp20-tile512 --sampler dpmpp-2m --steps 20 --tile-size 512

for seed in "${JUDGE_SEEDS[@]}"; do
  # the change-detection part of the report is not part of the rule: one short epoch, no few-shot runs
  "$PY" -m model_export.evaluate "$OUT/ddim50" "$OUT/dpmpp20" "$OUT/dpmpp20-tile512" --segmentation "$JUDGES_DIR/seed$seed" \
    --threads 2 --cd-epochs 1 --max-minutes 1 --few-shot --report "$OUT/report-seed$seed.md" --figures "$OUT/figures-seed$seed"
done
echo "reports: $OUT/report-seed*.md (map-following ratio per dataset and judge; unchanged-land PSNR in the consistency table)"
