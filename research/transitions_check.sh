#!/bin/bash
# Check U4 of docs/research/usefulness-checks.md: does simulating building change alone (--transitions buildings) make samples
# that teach building-change detection (LEVIR-CD, WHU-CD) better than the default OpenEarthMap rules?
# For each table: one dataset per labelled source as the dataset command's defaults wrote them at the time of U4
# (pre-event redrawn, B appearance-shifted; scripts/usefulness_datasets.sh with STORED=redrawn-shifted), then `python -m model_export.evaluate`
# on them (that arm alone, NETS nets, zero-shot and few-shot on every real test set) -> docs/research/usefulness-u4-TABLE.md.
# About 85 minutes on 2 idle cores at the defaults below; rerunning resumes the datasets.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-build/u4}
SEG=${SEG:-build/check10/judge-base}
NETS=${NETS:-2}
MINUTES=${MINUTES:-6}
FEW_SHOT=${FEW_SHOT:-3}  # k of the few-shot runs (the goal is set at k = 3; 1 3 5 triples their time)
export PY MODEL=${MODEL:-changeanywhere_qgis/models/default} STEPS=${STEPS:-20} COUNTS=${COUNTS:-125 125 175 75}
export STORED=redrawn-shifted OMP_WAIT_POLICY=PASSIVE
seg_args=(--segmentation "$SEG"); [ -d "$SEG" ] || seg_args=(--no-segmentation)

# both tables' datasets first, so that the two evaluations run side by side in time on the same idle machine
for table in oem buildings; do
  OUT="$OUT/$table" TRANSITIONS=$table scripts/usefulness_datasets.sh
done
for table in oem buildings; do
  d=$OUT/$table
  # shellcheck disable=SC2086
  "$PY" -m model_export.evaluate "$d/oem" "$d/loveda" "$d/dubai" "$d/flair" --report "docs/research/usefulness-u4-$table.md" \
    --figures "docs/research/usefulness-u4-$table" "${seg_args[@]}" --threads 2 --cd-epochs 20 --max-minutes "$MINUTES" \
    --nets-per-arm "$NETS" --few-shot $FEW_SHOT --test-sets data/levir-cd data/whu-cd \
    --note "Check U4 of docs/research/usefulness-checks.md, transition table \`$table\`: \`research/transitions_check.sh\` (model $MODEL, $STEPS DDIM steps, samples per source $COUNTS)."
done
