#!/usr/bin/env bash
# One short training run on a GPU machine (the `device` tool's H200: one call of at most ~9 minutes), the model
# package and the weights brought back under $OUT. Trains the bundled model's networks (model_export/configs/
# gpu.toml: the default sizes, larger batches and crops) on every source in data/train, exports the package,
# and measures it on every held-out window, all on the GPU machine.
#
#   device run:  bash scripts/gpu_train.sh            (OUT is set by the device tool; AE_MINUTES, DIFFUSION_MINUTES)
#   probe first: bash scripts/gpu_train.sh --probe    (a minute: which libraries the machine lacks, and its GPU)
#
# Brought back (each file < 16 MiB): $OUT/model/{model.json,encoder.onnx,decoder.onnx,denoiser.onnx} (the package;
# commit it into changeanywhere_qgis/models/default after checking it), $OUT/weights-*.pt (weights only, no optimizer
# state, to resume on a CPU), $OUT/holdout.json, $OUT/train.log. Missing Python libraries: the script says which;
# carry them as wheels in .whl/ (git-ignored; `pip download --only-binary=:all: --python-version X.Y -d .whl NAME`
# for the machine's Python that --probe names) and pass carry: [".whl"]; they are installed from there, offline.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build/gpu-run}
AE_MINUTES=${AE_MINUTES:-3}
DIFFUSION_MINUTES=${DIFFUSION_MINUTES:-4.5}
PY=${PY:-python3}
RUN=${RUN:-/tmp/changeanywhere-gpu-run}
DATA=(data/train/oem data/train/loveda@loveda data/train/dubai@data/train/dubai/training_remap.json data/train/flair@flair)
mkdir -p "$OUT" "$RUN"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/train.log"; }

NEEDED=(torch diffusers onnx onnxruntime numpy PIL rasterio tomllib)
missing() { "$PY" - "${NEEDED[@]}" <<'EOF'
import importlib.util, sys
print(" ".join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))
EOF
}
log "python: $("$PY" --version 2>&1); $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"
gone=$(missing)
if [ -n "$gone" ] && [ -d .whl ]; then
  log "installing from .whl/: $gone"
  "$PY" -m pip install -q --no-index --find-links .whl --user $(echo "$gone" | sed 's/PIL/pillow/') >> "$OUT/train.log" 2>&1 || true
  gone=$(missing)
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.version.cuda)" 2>&1 | tee -a "$OUT/train.log" || true
if [ "${1:-}" = "--probe" ]; then
  log "probe: missing Python libraries: ${gone:-none}"
  exit 0
fi
if [ -n "$gone" ]; then
  log "error: this machine lacks the Python libraries: $gone. Carry their wheels in .whl/ (see the header) and run again."
  exit 3
fi
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 4)" || { log "error: torch sees no CUDA device here"; exit 4; }

log "autoencoder: $AE_MINUTES min"
"$PY" -m model_export.train --stage autoencoder --config model_export/configs/gpu.toml --data "${DATA[@]}" \
  --out "$RUN/autoencoder" --device cuda --max-minutes "$AE_MINUTES" --seed 0 >> "$OUT/train.log" 2>&1
log "denoiser: $DIFFUSION_MINUTES min"
"$PY" -m model_export.train --stage diffusion --config model_export/configs/gpu.toml --data "${DATA[@]}" \
  --autoencoder "$RUN/autoencoder" --out "$RUN/diffusion" --device cuda --max-minutes "$DIFFUSION_MINUTES" --seed 0 >> "$OUT/train.log" 2>&1
log "export"
"$PY" model_export/export_onnx.py --checkpoint "$RUN/diffusion" --out "$OUT/model" --guidance-scale 4 >> "$OUT/train.log" 2>&1
log "held-out windows"
"$PY" -m model_export.holdout --model "$OUT/model" --config model_export/configs/gpu.toml --data "${DATA[@]}" \
  --json "$OUT/holdout.json" 2>&1 | tee -a "$OUT/train.log"
"$PY" - "$RUN" "$OUT" <<'EOF'
# weights only (no optimizer state), so that the files come back and a CPU run can resume from them
import sys, torch
from pathlib import Path
run, out = Path(sys.argv[1]), Path(sys.argv[2])
for stage in ("autoencoder", "diffusion"):
    ckpt = torch.load(run / stage / "last.pt", map_location="cpu", weights_only=False)
    keep = {k: v for k, v in ckpt.items() if not k.startswith("opt") and "scaler" not in k}
    torch.save(keep, out / f"weights-{stage}.pt")
    print(stage, "steps", ckpt.get("step"), "->", out / f"weights-{stage}.pt")
EOF
ls -la "$OUT" "$OUT/model" | tee -a "$OUT/train.log"
log "done"
