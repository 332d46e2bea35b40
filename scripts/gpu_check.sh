#!/usr/bin/env bash
# One short check on a GPU machine (e.g. the `device` tool's H200; a few minutes): onnxruntime's CUDA provider is
# present and loads (if not, it says exactly what to install), the bundled model's three graphs agree with the CPU
# within a stated tolerance, and one 1024x1024 change sample is timed (DDIM 50 at today's tiling, and DPM-Solver++ 2M
# at 20 steps with 512 px tiles). Figures: $OUT/gpu_check.json (and on stdout); copy them into docs/reference/benchmarks.md with
# the date and the GPU. On a machine without a GPU it runs up to the CUDA part and says so (exit 0). Never a test.
#
#   bash scripts/gpu_check.sh            (OUT: where the JSON goes, default build/gpu-check; PY: the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PY:-}" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
missing=$("$PY" - <<'PYEOF'
import importlib.util
print(" ".join(m for m in ("numpy", "onnxruntime", "rasterio", "shapely", "pyproj") if importlib.util.find_spec(m) is None))
PYEOF
)
if [ -n "$missing" ]; then
  echo "missing Python libraries for $PY: $missing (pip install -r requirements.txt; onnxruntime-gpu instead of onnxruntime for CUDA)" >&2
  exit 1
fi
exec "$PY" scripts/gpu_check.py
