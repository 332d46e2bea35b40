#!/bin/bash
# A candidate package against the bundled one: the three measures of checks 6-10 of docs/research/map-following-checks.md
# (each check's rule is written there before its candidate existed).
# For each package: (1) the engine's tiled copy of every source's held-out window, (2) the same copy of the 9 images
# no training run saw (check A1's), (3) the map-following ratio on every held-out window, seeds SEEDS, under a judge
# of the project's recipe trained for that package (fixed steps: a busy machine gives the same judge).
# About 40 minutes on 2 idle cores (mostly the two judges). A judge already in OUT is reused.
#   check 6: BASE=model_export/runs/continue-decoder/base-package CANDIDATE=model_export/runs/continue-decoder/package \
#              OUT=build/check6 SEEDS="32 33 34 35" scripts/package_check.sh
#   check 7: BASE=model_export/runs/continue7/base-package CANDIDATE=model_export/runs/continue7/package \
#              OUT=build/check7 SEEDS="36 37 38 39" scripts/package_check.sh
#   check 10: BASE=changeanywhere_qgis/models/default CANDIDATE=model_export/runs/groups9/package \
#              OUT=build/check10 SEEDS="44 45 46 47" scripts/package_check.sh
#   check 11: BASE=changeanywhere_qgis/models/default CANDIDATE=model_export/runs/groups9/package-more \
#              OUT=build/check11 SEEDS="48 49 50 51" scripts/package_check.sh   (judges copied from build/check10)
#   check 12: BASE=changeanywhere_qgis/models/default CANDIDATE=model_export/runs/groups9/package-g \
#              OUT=build/check12 SEEDS="56 57 58 59" scripts/package_check.sh   (judges copied from build/check11;
#              BASE is 0.2.0, bundled until check 12: git archive 15dca2e changeanywhere_qgis/models/default)
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
  test -f "$pkg/model.json" || { echo "package_check: $pkg holds no model.json (set BASE / CANDIDATE)" >&2; exit 2; }
  "$PY" -m model_export.holdout --model "$pkg" --data "${DATA[@]}" --json "$OUT/$arm-holdout.json"
  "$PY" -m model_export.autoencoder_tiles --model "$pkg" --tiles 256 --json "$OUT/$arm-unseen.json"
  test -f "$OUT/judge-$arm/segmentation.pt" || "$PY" -m model_export.segmentation --data "${DATA[@]}" --redrawn-by "$pkg" \
    --max-steps 2500 --threads 2 --seed 0 --out "$OUT/judge-$arm" 2>&1 | tail -1
  # shellcheck disable=SC2086
  "$PY" -m model_export.map_following --model "$pkg" --judge "$OUT/judge-$arm" --data "${DATA[@]}" --seeds $SEEDS \
    --json "$OUT/$arm-map-following.json"
done

# the rule's criteria, each measure side by side (exit status 1 when the candidate does not meet it)
"$PY" -m model_export.package_verdict "$OUT"
