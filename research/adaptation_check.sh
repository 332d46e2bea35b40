#!/bin/bash
# Check A2 of docs/research/map-following-checks.md: the bundled model adapted to an area that no version trained on
# (data/adapt/: a 512x512 Dubai crop, bright desert downtown; data/import_sources.py says how it was chosen).
# Two runs from the same base, held-out block and seed: the denoiser alone for MINUTES, then the same with
# DECODER_STEPS decoder steps. Each prints its held-out figures (base against adapted) and keeps them in its
# package's model.json; the summary lines land in OUT/summary.txt. Then the pictures behind the map-following figures
# (the block's real image, each seed's base and run (b)'s image): docs/img/adapt-dubai-decoder.jpg, measured again
# by model_export.adapt_figures. About 40 minutes on 2 idle cores.
#   SEG=model_export/runs/groups9/segmentation research/adaptation_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
BASE=${BASE:-changeanywhere_qgis/models/default}
SEG=${SEG:-model_export/runs/default/segmentation}  # the judge of the base's card (make model-segmentation)
OUT=${OUT:-build/adapt-a2}
MINUTES=${MINUTES:-10}
DECODER_STEPS=${DECODER_STEPS:-200}
AREA=data/adapt/dubai_tile5_part008_r512_c0
export OMP_WAIT_POLICY=PASSIVE
[ -d "$SEG" ] || { echo "adaptation_check.sh: no judge at $SEG: make model-segmentation, or give SEG=" >&2; exit 2; }
mkdir -p "$OUT"
: > "$OUT/summary.txt"
figures() {  # the last lines of a run's log, without the progress bars: its held-out figures
  tr '\r' '\n' < "$1" | grep -v -e '^\s*$' -e '^adapting:' -e '^decoder: .*%|' | tail -10
}
for run in denoiser decoder; do
  extra=(); [ "$run" = decoder ] && extra=(--decoder-steps "$DECODER_STEPS")
  if [ -d "$OUT/$run" ]; then  # a finished run is kept (remove its folder to run it again)
    echo "== $run: kept from an earlier run" | tee -a "$OUT/summary.txt"
  else
    echo "== $run: $MINUTES min${extra[*]:+, ${extra[*]}}" | tee -a "$OUT/summary.txt"
    "$PY" -m model_export.adapt --semantic "${AREA}_label.png" --image "${AREA}_image.png" --remap dubai \
      --base "$BASE" --out "$OUT/$run" --minutes "$MINUTES" --holdout 0.2 --seed 0 --judge "$SEG" --threads 2 \
      "${extra[@]}" > "$OUT/$run.log" 2>&1
  fi
  figures "$OUT/$run.log" | tee -a "$OUT/summary.txt"
done
"$PY" -m model_export.adapt_figures "$OUT/decoder" --judge "$SEG" --json "$OUT/decoder-figures.json" \
  --strip docs/img/adapt-dubai-decoder.jpg > /dev/null
echo "docs/img/adapt-dubai-decoder.jpg: the block's real image, then base and adapted (run b) per seed"
