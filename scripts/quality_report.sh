#!/bin/bash
# docs/quality.md for a model package (default: the bundled one), start to finish:
#   1. a 200-sample dataset (both layouts) from the bundled sample, killed with SIGKILL part-way
#      and finished by rerunning the same command (the resume check);
#   2. its first 10 samples made again on a two-worker Dask LocalCluster and compared byte for byte;
#   3. `python -m model_export.evaluate`: consistency, map-following, seams, FC-Siam-diff on LEVIR-CD -> docs/quality.md.
# About half an hour on 2 idle CPU cores with the default model (25 min in session 4). Logs go to $OUT.log.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
MODEL=${MODEL:-changeanywhere_qgis/models/default}
OUT=${OUT:-build/dataset200}
COUNT=${COUNT:-200}
KILL_AFTER_S=${KILL_AFTER_S:-600}
SEG=${SEG:-model_export/runs/default/segmentation}
export OMP_WAIT_POLICY=PASSIVE
SAMPLE=(--semantic changeanywhere_qgis/samples/houston_label.tif --image changeanywhere_qgis/samples/houston_image.tif)

dataset=("$PY" -m changeanywhere_qgis dataset "${SAMPLE[@]}"
  --count "$COUNT" --tile 256 --layout both --format png --seed 0 --steps 50 --workers 2 --model "$MODEL" --out "$OUT")

STEP=${FROM_STEP:-1}  # FROM_STEP=3 evaluates a dataset made earlier (its logs are kept beside it)
if [ "$STEP" -le 1 ]; then
  rm -rf "$OUT"
  echo "1. dataset, killed after ${KILL_AFTER_S}s: ${dataset[*]}"
  setsid "${dataset[@]}" > "$OUT.log" 2>&1 &
  pid=$!
  sleep "$KILL_AFTER_S"
  kill -KILL -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  find "$OUT" -path '*/A/*' -type f 2>/dev/null | wc -l > "$OUT.killed"
  echo "   killed with $(cat "$OUT.killed") samples written; rerunning the same command"
  "${dataset[@]}" 2>&1 | tee -a "$OUT.log" | tail -3
fi

if [ "$STEP" -le 2 ]; then
  echo "2. Dask check"
  "$PY" -m benchmarks.dataset_bench --dask-check "$OUT" --samples 10 | tee "$OUT.dask.json"
fi

echo "3. evaluate"
[ -d "$SEG" ] || make model-segmentation DEFAULT_RUN="$(dirname "$SEG")"
killed_at=$(cat "$OUT.killed")
resumed=$(grep -o '[0-9]* generated now, [0-9]* already there' "$OUT.log" | tail -1)
same=$("$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
n = d["files_identical"] + d["files_different"]
print("{} of {} image and label files byte-identical to the local run, manifest records {}".format(
    d["files_identical"], n, "equal" if d["manifest_records_equal"] else "DIFFERENT"))' "$OUT.dask.json")
"$PY" -m model_export.evaluate "$OUT" --report docs/quality.md --figures docs/quality --segmentation "$SEG" \
  --threads 2 --cd-epochs 20 --max-minutes 10 --notes-file docs/quality-notes.md \
  --note "**Resumed after a kill.** \`scripts/quality_report.sh\` ran the dataset command with 2 local workers, killed it and its workers with SIGKILL after ${KILL_AFTER_S} s ($killed_at samples written), and ran the same command again: $resumed. \`tests/engine/dataset/test_dataset.py\` checks that a killed-and-resumed run equals an uninterrupted one byte for byte." \
  --note "**Same on Dask.** \`python -m benchmarks.dataset_bench --dask-check $OUT --samples 10\` made the first 10 samples again on a two-worker Dask LocalCluster: $same (\`tests/engine/dataset/test_dask.py\` checks the same on every test run)."

# 4. Seams inside dataset tiles: the default model's tile is 256 px, so 256 px dataset tiles have
#    no model-tile boundaries. A few 512 px tiles (3x3 overlapping model tiles each) show them.
SEAMS_OUT=${SEAMS_OUT:-build/dataset512}
echo "4. seams on 512 px tiles"
"$PY" -m changeanywhere_qgis dataset "${SAMPLE[@]}" --count "${SEAMS_COUNT:-6}" --tile 512 --layout levir \
  --format png --seed 0 --steps 50 --workers 2 --model "$MODEL" --out "$SEAMS_OUT" --overwrite
"$PY" -m model_export.evaluate "$SEAMS_OUT" --no-torch --report docs/quality-seams.md --figures docs/quality-seams \
  --note "Seams inside 512 px dataset tiles, each generated as overlapping model tiles; made by \`scripts/quality_report.sh\` (step 4) next to the 200-sample report in \`docs/quality.md\`."
