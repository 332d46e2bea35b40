#!/bin/bash
# The generated training data of the usefulness test: one dataset per labelled training source (OpenEarthMap,
# LoveDA, Dubai, FLAIR), every map of each, many windows, each with its own remap; LEVIR-CD layout, real
# pre-event images. Rerunning resumes. Used by scripts/quality_report.sh; run alone to make the data first.
#   OUT=build/usefulness COUNTS="250 250 350 150" STEPS=50 scripts/usefulness_datasets.sh
# TRANSITIONS=buildings simulates building change alone (the built-in table; default: the OpenEarthMap rules).
# STORED=real (the default) keeps real pre-event images and unshifted B, for the evaluation to make every variant from the
# same samples. STORED=redrawn-shifted stores pre-event redrawn and B appearance-shifted (the dataset command's defaults
# until check U5), so that an evaluation without --compare-* trains that arm alone (check U4). STORED=defaults passes
# neither flag: whatever the dataset command's defaults are now (since U5 the same as real).
# BASELINES="copy-paste random-pairing" also makes, from each source's same maps, images, count, tile, seed and remap, the
# baselines that need no model (python -m model_export.evaluation.baselines; issue #33) in $BASELINES_OUT/<method>/<source>
# (default $OUT/baselines); copy-paste matches each generated sample's changed share. Default: none.
# POST_EVENTS="full inpaint" also makes, per source, the same dataset command (same maps, images, count, seed, steps) with
# --post-event inpaint (image B is image A beyond the change; docs/guide/inpainting.md) into $OUT/inpaint/<source>, an arm
# of its own for `evaluate --arm inpaint=...`; its card names the mode. Default: full (the datasets in $OUT/<source>).
# "inpaint-rerender" makes the inpainted datasets once more with the kept land re-rendered at RERENDER (default 0.2,
# check U9) into $OUT/inpaint-rerender-$RERENDER/<source>.
# MIXING=latent (the default here): the latent mixing that check U7's datasets were made with, before check S2 made
# prediction the engine's default; its committed nets (docs/research/quality/nets) were trained on those datasets, so
# a rerun must make the same ones. MIXING=prediction measures the engine's default.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
MODEL=${MODEL:-changeanywhere_qgis/models/default}
OUT=${OUT:-build/usefulness}
STEPS=${STEPS:-50}
WORKERS=${WORKERS:-2}
TRANSITIONS=${TRANSITIONS:-}
STORED=${STORED:-real}
BASELINES=${BASELINES:-}
BASELINES_OUT=${BASELINES_OUT:-$OUT/baselines}
POST_EVENTS=${POST_EVENTS:-full}
MIXING=${MIXING:-latent}
RERENDER=${RERENDER:-0.2}
for mode in $POST_EVENTS; do
  case "$mode" in full|inpaint|inpaint-rerender) ;;
    *) echo "usefulness_datasets.sh: POST_EVENTS holds 'full', 'inpaint' and/or 'inpaint-rerender', not '$mode'" >&2; exit 2 ;;
  esac
done
case "$STORED" in
  real) stored_args=(--pre-event real --no-appearance-shift) ;;
  redrawn-shifted) stored_args=(--pre-event redrawn --appearance-shift) ;;
  defaults) stored_args=() ;;
  *) echo "usefulness_datasets.sh: STORED must be 'real', 'redrawn-shifted' or 'defaults', not '$STORED'" >&2; exit 2 ;;
esac
read -r N_OEM N_LOVEDA N_DUBAI N_FLAIR <<< "${COUNTS:-250 250 350 150}"
export OMP_WAIT_POLICY=PASSIVE
mkdir -p "$OUT"

source_dataset() {  # name count remap semantic-glob image-folder image-suffix
  local name=$1 count=$2 remap=$3 sem_glob=$4 img_dir=$5 img_ext=$6 sems=() imgs=()
  for s in $sem_glob; do sems+=("$s"); imgs+=("$img_dir/$(basename "${s%.*}").$img_ext"); done
  local remap_args=(); [ "$remap" = none ] || remap_args=(--remap "$remap")
  local table_args=(); [ -z "$TRANSITIONS" ] || table_args=(--transitions "$TRANSITIONS")
  local mode out mode_args
  for mode in $POST_EVENTS; do
    case "$mode" in
      full) out=$OUT/$name; mode_args=(--post-event full) ;;
      inpaint) out=$OUT/inpaint/$name; mode_args=(--post-event inpaint) ;;
      inpaint-rerender) out=$OUT/inpaint-rerender-$RERENDER/$name; mode_args=(--post-event inpaint --rerender-strength "$RERENDER") ;;
    esac
    echo "dataset $name (${mode_args[*]}): $count samples from ${#sems[@]} maps"
    # STORED=real (--pre-event real --no-appearance-shift): the evaluation makes the redrawn and the shifted variants itself
    # from the same samples (--compare-pre-event, --compare-appearance-shift), and measures the generator's unchanged land
    # unshifted
    "$PY" -m changeanywhere_qgis dataset --semantic "${sems[@]}" --image "${imgs[@]}" "${stored_args[@]}" "${remap_args[@]}" "${table_args[@]}" \
      "${mode_args[@]}" --count "$count" --tile 256 --layout levir --format png --seed 0 --steps "$STEPS" --workers "$WORKERS" \
      --mixing "$MIXING" --model "$MODEL" --out "$out" 2>&1 | tail -2
  done
  for method in $BASELINES; do
    local extra=(); [ "$method" != copy-paste ] || [ -z "$TRANSITIONS" ] || extra=(--transitions "$TRANSITIONS")
    echo "baseline $method of $name"
    "$PY" -m model_export.evaluation.baselines "$method" --semantic "${sems[@]}" --image "${imgs[@]}" "${remap_args[@]}" "${extra[@]}" \
      --count "$count" --tile 256 --seed 0 --model "$MODEL" --out "$BASELINES_OUT/$method/$name" 2>&1 | tail -1
  done
}
source_dataset oem "$N_OEM" none "data/train/oem/labels/*.tif" data/train/oem/images tif
source_dataset loveda "$N_LOVEDA" loveda "data/train/loveda/labels/*.png" data/train/loveda/images png
source_dataset dubai "$N_DUBAI" dubai "data/train/dubai/labels/*.png" data/train/dubai/images jpg
source_dataset flair "$N_FLAIR" flair "data/train/flair/labels/*.tif" data/train/flair/images tif
