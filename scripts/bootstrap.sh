#!/usr/bin/env bash
# Set up a fresh Debian 12 / Ubuntu machine for this project: QGIS's Python bindings (from the
# distribution, when missing and we are root), then .venv over /usr/bin/python3 with the system
# site-packages (only that Python imports qgis), then the pinned Python packages.
# Usage: scripts/bootstrap.sh runtime|dev     (make demo uses runtime, make test uses dev)
set -euo pipefail
want=${1:-dev}
cd "$(dirname "$0")/.."
SYSPY=/usr/bin/python3

# qgis brings qgis_process (the tests run the algorithms through it too). proj-bin: a distribution's
# pyproj in .venv finds PROJ's data beside the proj program (the engine also finds it without: events/proj_data.py).
if ! "$SYSPY" -c "import qgis.core" 2>/dev/null || [ ! -x /usr/bin/qgis_process.bin ] || ! command -v proj >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo ">> QGIS or proj is missing: installing qgis python3-qgis qgis-providers proj-bin (Debian packages)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qgis python3-qgis qgis-providers python3-venv proj-bin >/dev/null
  else
    echo "QGIS (with its Python bindings and qgis_process) or proj is missing. Install them, then run this again:" >&2
    echo "    sudo apt-get install qgis python3-qgis qgis-providers python3-venv proj-bin" >&2
    exit 1
  fi
fi
if ! "$SYSPY" -c "import ensurepip" 2>/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq python3-venv >/dev/null; else
    echo "python3-venv is missing: sudo apt-get install python3-venv" >&2; exit 1; fi
fi

[ -x .venv/bin/python ] || "$SYSPY" -m venv --system-site-packages .venv
stamp=.venv/.installed-$want
req=requirements.txt; [ "$want" = dev ] && req=requirements-dev.txt
if [ ! -f "$stamp" ] || [ "$req" -nt "$stamp" ] || [ requirements.txt -nt "$stamp" ]; then
  echo ">> installing Python packages from $req into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r "$req"
  touch "$stamp"
fi
