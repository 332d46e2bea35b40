#!/usr/bin/env bash
# make screenshot: docs/img/qgis-dock.png, the README's picture, from a real QGIS desktop window under Xvfb.
# QGIS starts with a fresh profile (in a temporary folder) where the plugin is linked in and enabled, then
# scripts/qgis_screenshot.py (run by `qgis --code`) opens the bundled sample, opens the dock from the toolbar
# button, draws a change polygon with the dock's map tool, generates with the bundled model and grabs the screen.
# Needs Xvfb (Debian: apt-get install xvfb xauth) and .venv (make setup). A few minutes on 2 CPU cores at the
# defaults (DDIM 50 on the 512 px sample).
#   scripts/qgis_screenshot.sh [OUT.png]      (default docs/img/qgis-dock.png; STEPS, SAMPLER, SEED, DEVICE, WIDTH, HEIGHT)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:-docs/img/qgis-dock.png}")
PY=${PY:-.venv/bin/python}
QGIS=${QGIS:-/usr/bin/qgis.bin}  # the binary: /usr/bin/qgis is a wrapper that may be broken on some installs
command -v xvfb-run >/dev/null || { echo "qgis_screenshot: needs xvfb-run: apt-get install xvfb xauth" >&2; exit 2; }
[ -x "$QGIS" ] || { echo "qgis_screenshot: no QGIS desktop at $QGIS (apt-get install qgis, or set QGIS=)" >&2; exit 2; }
[ -x "$PY" ] || { echo "qgis_screenshot: no $PY: run make setup first" >&2; exit 2; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
PROFILE=$WORK/profiles/default
mkdir -p "$PROFILE/python/plugins" "$PROFILE/QGIS"
ln -s "$PWD/changeanywhere_qgis" "$PROFILE/python/plugins/changeanywhere_qgis"
# The plugin enabled; no tips, news or welcome dialogs that would cover the window.
cat > "$PROFILE/QGIS/QGIS3.ini" <<'EOF'
[PythonPlugins]
changeanywhere_qgis=true

[qgis]
showTips322=false
showTips=false
checkVersion=false
allowVersionCheck=false
mainwindow\maximized=false

[core]
NewsFeed\httpsfeedqgisorg\disabled=true

[migration]
settings=true
fileVersion=2
EOF

# QGIS's Python is /usr/bin/python3, the one .venv is built over: the engine's packages come from .venv.
SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
export SCREENSHOT_OUT=$OUT SCREENSHOT_LOG=$WORK/screenshot.log SCREENSHOT_REPO=$PWD SCREENSHOT_SAMPLES_DIR=$WORK/samples
export SCREENSHOT_STEPS=${STEPS:-50} SCREENSHOT_SAMPLER=${SAMPLER:-ddim} SCREENSHOT_SEED=${SEED:-7} SCREENSHOT_DEVICE=${DEVICE:-cpu}
export SCREENSHOT_WIDTH=${WIDTH:-1920} SCREENSHOT_HEIGHT=${HEIGHT:-1400}
unset QT_QPA_PLATFORM  # a real X display (Xvfb), not offscreen
echo "qgis_screenshot: QGIS under Xvfb ${SCREENSHOT_WIDTH}x${SCREENSHOT_HEIGHT}, $SCREENSHOT_SAMPLER $SCREENSHOT_STEPS steps -> $OUT"
rc=0
timeout "${TIMEOUT_S:-1800}" xvfb-run -a -s "-screen 0 ${SCREENSHOT_WIDTH}x${SCREENSHOT_HEIGHT}x24" \
  "$QGIS" --profiles-path "$WORK" --profile default --noversioncheck --nologo \
  --code scripts/qgis_screenshot.py > "$WORK/qgis.log" 2>&1 || rc=$?
cat "$SCREENSHOT_LOG" 2>/dev/null || true
if [ "$(cat "$SCREENSHOT_LOG.rc" 2>/dev/null)" != 0 ]; then
  echo "qgis_screenshot: FAILED (QGIS exit $rc); QGIS's output:" >&2
  tail -40 "$WORK/qgis.log" >&2
  exit 1
fi
echo "qgis_screenshot: wrote $OUT"
