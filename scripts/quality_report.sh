#!/bin/bash
# docs/research/quality.md for a model package (default: the bundled one), start to finish:
#   1. the usefulness test's generated data: one dataset per labelled source (scripts/usefulness_datasets.sh,
#      1,000 samples in all by default); the first is killed with SIGKILL part-way and finished by rerunning
#      the same command (the resume check); beside each, from the same maps, images, count and seed, the two
#      baselines that need no model (copy-paste after Self-Pair, random pairing after STAR; BASELINES="" skips them);
#   2. its first 10 samples made again on a two-worker Dask LocalCluster and compared byte for byte;
#   3. `python -m model_export.evaluate` on all of them: consistency and map-following per source, and the
#      usefulness test on every real test set (zero-shot, few-shot, both --pre-event variants, the appearance-shifted
#      one and the baselines, NETS_PER_ARM nets each) -> docs/research/quality.md;
#   4. seams inside 512 px tiles -> docs/research/quality-seams.md.
# Several hours on 2 idle CPU cores at the defaults: each change-detection net trains CD_EPOCHS epochs (20: 2,000 steps
# on the 800 training samples, about 12 minutes here), 8 arms (5 without the inpainted ones) x NETS_PER_ARM nets, and their few-shot runs.
# 20 DDIM steps, not the engine's 50: the usefulness checks U1 and U2 (docs/research/usefulness-checks.md) were measured
# at 20, and 1,000 samples take about half an hour at 20 against an hour at 50 (about 16 samples a minute with 2
# workers); STEPS=50 measures the engine's default.
# NETS_PER_ARM=N (default 3) trains N change-detection nets per arm (seeds 0..N-1) and reports their means and spread: one
# net's F1 on the real pairs moves by several points with its seed (checks U3, U6); each further net trains every arm
# again and repeats the few-shot runs. The nets stop after CD_EPOCHS epochs, never by a time limit (--max-minutes 0),
# so that a busy machine does not change a figure.
# TRANSITIONS=buildings makes the datasets with building change alone (scripts/usefulness_datasets.sh).
# POST_EVENTS="full inpaint inpaint-rerender" (the default) also makes each source's dataset with --post-event inpaint
# (same maps, images, count, seed, steps) in $OUT/inpaint/<source>, and evaluate trains it as one more generated arm
# (--arm inpaint=..., rows "inpaint (pre-event real)"), never as a baseline; POST_EVENTS=full leaves it out. "inpaint-rerender" (in the
# default too) makes them once more with the kept land re-rendered at RERENDER (default 0.2), the arm
# "inpaint re-rendered 0.2 (pre-event real)" of check U9.
# Logs go to $OUT/*.log. FROM_STEP=3 evaluates datasets made earlier.
#
# Over several sessions (it takes longer than one, and the next may start on a fresh machine without build/):
# evaluate writes each change-detection net's figures, as soon as they are known, to one small JSON file per net in
# $FIGURES/nets/ (<arm>-seed<k>.json, and reference-seed<k>.json for the untrained net, image differencing and the
# few-shot nets from scratch), keyed by the identity of the data (a hash of each dataset's dataset.json or baseline.json,
# manifest and split lists, paths reduced to file names) and the settings that change a figure; a rerun reads every file
# that matches and trains only the missing nets, so the figures do not depend on how many sessions made them.
#   1. run `make quality` (or this script) with the same settings; stop it whenever the session ends;
#   2. commit what is finished: git add $FIGURES/nets && git commit -m "quality: nets so far" -- $FIGURES/nets
#   3. next session, same settings: on the same machine FROM_STEP=3 scripts/quality_report.sh; on a fresh one run it
#      whole: the datasets are deterministic by seed, so step 1 remakes the same ones (same identity) and step 3 trains
#      only what is missing. Repeat until it writes $REPORT, then commit the report and $FIGURES.
# A net file made from other data or settings is trained again and replaced (delete $FIGURES/nets to retrain them all).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
MODEL=${MODEL:-changeanywhere_qgis/models/default}
OUT=${OUT:-build/usefulness}
STEPS=${STEPS:-20}
COUNTS=${COUNTS:-250 250 350 150}  # OpenEarthMap, LoveDA, Dubai, FLAIR
KILL_AFTER_S=${KILL_AFTER_S:-300}
SEG=${SEG:-model_export/runs/default/segmentation}
REPORT=${REPORT:-docs/research/quality.md}
FIGURES=${FIGURES:-docs/research/quality}
NETS_PER_ARM=${NETS_PER_ARM:-3}
CD_EPOCHS=${CD_EPOCHS:-20}
# few-shot runs with k real pairs: 3 alone, what check U7 (docs/research/usefulness-checks.md) decides on; each k costs every
# arm's few-shot runs again for every net (FEW_SHOT="1 3 5" gives the older reports' three)
FEW_SHOT=${FEW_SHOT:-3}
BASELINES=${BASELINES-copy-paste random-pairing}  # BASELINES="" leaves them out
BASELINES_OUT=${BASELINES_OUT:-$OUT/baselines}
POST_EVENTS=${POST_EVENTS:-full inpaint inpaint-rerender}  # "full": the default datasets alone
RERENDER=${RERENDER:-0.2}
export OMP_WAIT_POLICY=PASSIVE PY MODEL OUT STEPS COUNTS BASELINES BASELINES_OUT POST_EVENTS RERENDER
mkdir -p "$OUT"

STEP=${FROM_STEP:-1}
if [ "$STEP" -le 1 ]; then
  echo "1. datasets; the first is killed after ${KILL_AFTER_S}s and resumed"
  setsid scripts/usefulness_datasets.sh > "$OUT/datasets-killed.log" 2>&1 &
  pid=$!
  sleep "$KILL_AFTER_S"
  kill -KILL -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  find "$OUT/oem" -path '*/A/*' -type f 2>/dev/null | wc -l > "$OUT/killed.count"
  echo "   killed with $(cat "$OUT/killed.count") samples written; rerunning the same command"
  scripts/usefulness_datasets.sh 2>&1 | tee "$OUT/datasets.log"
fi

if [ "$STEP" -le 2 ]; then
  echo "2. Dask check"
  "$PY" -m benchmarks.dataset_bench --dask-check "$OUT/oem" --samples 10 | tee "$OUT/dask.json"
fi

echo "3. evaluate"
[ -d "$SEG" ] || make model-segmentation DEFAULT_RUN="$(dirname "$SEG")"
killed_at=$(cat "$OUT/killed.count" 2>/dev/null || echo "?")
resumed=$(grep -o '[0-9]* generated now, [0-9]* already there' "$OUT/datasets.log" 2>/dev/null | head -1 || echo "?")
same=$("$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
n = d["files_identical"] + d["files_different"]
print("{} of {} image and label files byte-identical to the local run, manifest records {}".format(
    d["files_identical"], n, "equal" if d["manifest_records_equal"] else "DIFFERENT"))' "$OUT/dask.json")
sources() {  # an arm's four datasets, one per labelled source, joined by commas as --baseline and --arm take them
  echo "$1/oem,$1/loveda,$1/dubai,$1/flair"
}
baseline_args=()  # one arm per baseline, all four sources' datasets joined as the generated arm joins them
for method in $BASELINES; do
  baseline_args+=(--baseline "$method=$(sources "$BASELINES_OUT/$method")")
done
arm_args=()  # the inpainted samples: one more generated arm, all four sources joined, when they were made
if [ -f "$OUT/inpaint/oem/dataset.json" ]; then
  arm_args+=(--arm "inpaint=$(sources "$OUT/inpaint")")
  # check U8: the same inpainted samples with B shifted in appearance as --appearance-shift would have made them
  arm_args+=(--compare-arm-appearance-shift inpaint)
fi
rerendered=$OUT/inpaint-rerender-$RERENDER  # check U9: the inpainted samples with the kept land re-rendered
if [ -f "$rerendered/oem/dataset.json" ]; then
  arm_args+=(--arm "inpaint re-rendered $RERENDER=$(sources "$rerendered")")
fi
"$PY" -m model_export.evaluate "$OUT/oem" "$OUT/loveda" "$OUT/dubai" "$OUT/flair" --report "$REPORT" --figures "$FIGURES" \
  --segmentation "$SEG" --threads 2 --cd-epochs "$CD_EPOCHS" --max-minutes 0 --compare-pre-event --compare-appearance-shift \
  --nets-per-arm "$NETS_PER_ARM" --few-shot $FEW_SHOT ${baseline_args[@]+"${baseline_args[@]}"} ${arm_args[@]+"${arm_args[@]}"} \
  --test-sets data/levir-cd data/whu-cd --notes-file docs/research/quality-notes.md \
  --note "**Resumed after a kill.** \`scripts/quality_report.sh\` ran the datasets' command with 2 local workers, killed it and its workers with SIGKILL after ${KILL_AFTER_S} s ($killed_at samples of the first dataset written), and ran the same command again: $resumed. \`tests/engine/dataset/test_dataset.py\` checks that a killed-and-resumed run equals an uninterrupted one byte for byte." \
  --note "**Same on Dask.** \`python -m benchmarks.dataset_bench --dask-check $OUT/oem --samples 10\` made the first 10 samples again on a two-worker Dask LocalCluster: $same (\`tests/engine/dataset/test_dask.py\` checks the same on every test run)."

# 4. Seams inside dataset tiles: the default model's tile is 256 px, so 256 px dataset tiles have
#    no model-tile boundaries. A few 512 px tiles (3x3 overlapping model tiles each) show them, in the post-event
#    images and in the pre-event images redrawn by the autoencoder's tiles (--pre-event redrawn: a real image has none).
SEAMS_OUT=${SEAMS_OUT:-build/dataset512}
SAMPLE=(--semantic changeanywhere_qgis/samples/houston_label.tif --image changeanywhere_qgis/samples/houston_image.tif)
echo "4. seams on 512 px tiles"
"$PY" -m changeanywhere_qgis dataset "${SAMPLE[@]}" --count "${SEAMS_COUNT:-6}" --tile 512 --layout levir --pre-event redrawn \
  --format png --seed 0 --steps "$STEPS" --workers 2 --model "$MODEL" --out "$SEAMS_OUT" --overwrite
"$PY" -m model_export.evaluate "$SEAMS_OUT" --no-torch --report docs/research/quality-seams.md --figures docs/research/quality-seams \
  --note "Seams inside 512 px dataset tiles, each generated as overlapping model tiles; made by \`scripts/quality_report.sh\` (step 4) next to the report in \`docs/research/quality.md\`."
