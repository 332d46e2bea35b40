#!/usr/bin/env bash
# Same seed, same bytes: run generate, simulate and dataset on the bundled sample with this checkout and with
# another revision (a git worktree of REV), and compare every output file byte for byte (sample.json and the
# dataset's JSON files with their timings and absolute paths taken out). For refactors that must not change
# behaviour. Usage: scripts/compare_outputs.sh REV   (e.g. HEAD~1; a few minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
REV=${1:?usage: scripts/compare_outputs.sh REV}
PY=$(pwd)/.venv/bin/python
WORK=$(mktemp -d)
trap 'git worktree remove --force "$WORK/base" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
git worktree add --detach "$WORK/base" "$REV" >/dev/null 2>&1

outputs() {  # outputs REPO OUT: every command of the comparison, run from REPO
  local repo=$1 out=$2 s=changeanywhere_qgis/samples
  (cd "$repo"
   "$PY" -m changeanywhere_qgis generate --semantic $s/houston_label.tif --image $s/houston_image.tif \
     --changes $s/houston_changes.geojson --class-field target --seed 7 --steps 8 --out "$out/generate-image"
   "$PY" -m changeanywhere_qgis generate --semantic $s/houston_label.tif --random-events --seed 3 --steps 4 \
     --correlation 0.8 --out "$out/generate-no-image"
   "$PY" -m changeanywhere_qgis simulate --semantic $s/houston_label.tif --random-events --seed 5 --out "$out/simulate"
   "$PY" -m changeanywhere_qgis dataset --semantic $s/houston_label.tif --image $s/houston_image.tif --count 3 \
     --tile 256 --layout both --steps 4 --workers 1 --seed 2 --out "$out/dataset-png"
   "$PY" -m changeanywhere_qgis dataset --semantic $s/houston_label.tif --count 2 --tile 256 --layout levir \
     --format tif --steps 3 --workers 1 --seed 9 --model tests/data/tiny_model --out "$out/dataset-tif"
  ) >"$out.log" 2>&1 || { cat "$out.log"; exit 1; }
  # timings and the checkout's own path differ by nature; everything else must not
  "$PY" - "$out" "$repo" <<'PYEOF'
import json, sys
from pathlib import Path
out, repo = Path(sys.argv[1]), str(Path(sys.argv[2]).resolve())
for p in [*out.glob("*/sample.json"), *out.glob("*/dataset.json"), *out.glob("*/manifest.jsonl"), *out.glob("*/README.md"),
          *out.glob("*/.samples/*.json")]:
    text = p.read_text().replace(repo, "REPO")
    if p.name == "sample.json":
        record = json.loads(text); record.pop("timings")
        text = json.dumps(record, indent=1, sort_keys=True)
    p.write_text(text)
PYEOF
  (cd "$out" && find . -type f ! -name '*.gpkg' | LC_ALL=C sort | xargs sha256sum) > "$out.sha256"
  ogrinfo -ro -al -q "$out/simulate/changes.gpkg" | grep -v "^INFO" | sha256sum | sed 's|-$|simulate/changes.gpkg (features)|' >> "$out.sha256"
}

echo "outputs of $REV ..."; outputs "$WORK/base" "$WORK/before"
echo "outputs of this checkout ..."; outputs "$(pwd)" "$WORK/after"
n=$(wc -l < "$WORK/after.sha256")
if diff "$WORK/before.sha256" "$WORK/after.sha256"; then
  echo "same bytes: all $n output files of $REV and this checkout are identical"
else
  echo "DIFFERENT: the files listed above differ between $REV and this checkout" >&2; exit 1
fi
