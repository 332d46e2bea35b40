#!/bin/bash
# Check 6 of docs/map-following-checks.md (its rule is written there, before this ever ran): the bundled package
# against a candidate that differs from it in its decoder alone (make model-decoder-continue's package).
# For each package: (1) the engine's tiled copy of every source's held-out window, (2) the same copy of the 9 images
# no training run saw (check A1's), (3) the map-following ratio on every held-out window, seeds 32-35, under a judge
# of the project's recipe trained for that package (fixed steps: a busy machine gives the same judge).
# About 35 minutes on 2 idle cores (mostly the two judges).
#   BASE=model_export/runs/continue-decoder/base-package CANDIDATE=model_export/runs/continue-decoder/package \
#     OUT=build/check6 scripts/decoder_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
BASE=${BASE:-model_export/runs/continue-decoder/base-package}
CANDIDATE=${CANDIDATE:-model_export/runs/continue-decoder/package}
OUT=${OUT:-build/check6}
SEEDS=${SEEDS:-32 33 34 35}
DATA=(data/train/oem data/train/loveda@loveda data/train/dubai@data/train/dubai/training_remap.json data/train/flair@flair)
export OMP_WAIT_POLICY=PASSIVE
mkdir -p "$OUT"

for arm in base candidate; do
  if [ "$arm" = base ]; then pkg=$BASE; else pkg=$CANDIDATE; fi
  test -f "$pkg/model.json" || { echo "decoder_check: $pkg holds no model.json (set BASE / CANDIDATE)" >&2; exit 2; }
  "$PY" -m model_export.holdout --model "$pkg" --data "${DATA[@]}" --json "$OUT/$arm-holdout.json"
  "$PY" -m model_export.autoencoder_tiles --model "$pkg" --tiles 256 --json "$OUT/$arm-unseen.json"
  test -f "$OUT/judge-$arm/segmentation.pt" || "$PY" -m model_export.segmentation --data "${DATA[@]}" --redrawn-by "$pkg" \
    --max-steps 2500 --threads 2 --seed 0 --out "$OUT/judge-$arm" 2>&1 | tail -1
  # shellcheck disable=SC2086
  "$PY" -m model_export.map_following --model "$pkg" --judge "$OUT/judge-$arm" --data "${DATA[@]}" --seeds $SEEDS \
    --json "$OUT/$arm-map-following.json"
done
