#!/usr/bin/env bash
# make test-qgis-lts: the plugin zip tested in the QGIS that users have, QGIS 3.40 LTR on Python 3.13
# with numpy 2 (Debian 13 "trixie"), in a chroot built (or reused) outside the repository.
#
#   1. build the chroot once (debootstrap minbase + Debian's qgis, about 3 minutes; reused after),
#   2. a venv over the chroot's Python 3.13 with requirements.txt and the test tools (reused while
#      the requirements are unchanged),
#   3. `make package`'s zip unzipped into a QGIS profile's python/plugins folder, as QGIS's
#      "Install from ZIP" does,
#   4. tests/qgis, tests/engine, tests/cli and tests/test_boundaries.py run against that installed copy,
#   5. qgis_process enables the installed plugin and runs every algorithm of its provider.
#
# Needs root and debootstrap. Exit status: 0 passed, 1 a test failed (or requirements.txt does not install
# on Python 3.13), 3 cannot run here (no root, no debootstrap, the Debian mirror unreachable): .ci/run
# reports 3 and goes on. Every mount is undone on exit, failure or Ctrl-C.
# Environment: CHANGEANYWHERE_LTS_ROOT (chroot folder, default /var/cache/changeanywhere/qgis-lts-root),
# LTS_MIRROR (Debian mirror; default: the host's), LTS_REBUILD=1 (build the chroot afresh),
# LTS_PYTEST_ARGS (extra pytest arguments, e.g. "-x -k dock").
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
ROOT=${CHANGEANYWHERE_LTS_ROOT:-/var/cache/changeanywhere/qgis-lts-root}
SUITE=trixie
# No proj-bin: without the proj program a distribution's pyproj finds no PROJ data on its own, the case
# users on minimal installs meet (engine/events/proj_data.py); here every run meets it.
PACKAGES="qgis python3-qgis qgis-providers python3-venv python3-pip make"
VENV=/opt/changeanywhere-venv          # inside the chroot
TREE=/opt/changeanywhere-tests         # inside the chroot: tests/ + a link to the installed plugin
PROFILE=/root/.local/share/QGIS/QGIS3/profiles/default
CANNOT=3

say() { printf '>> %s\n' "$*"; }
cannot() { printf 'test-qgis-lts: cannot run here: %s\n' "$*" >&2; exit "$CANNOT"; }

[ "$(id -u)" = 0 ] || cannot "needs root (a chroot and its mounts); run it as root, or sudo make test-qgis-lts"
command -v debootstrap >/dev/null || cannot "debootstrap is missing (apt-get install debootstrap)"
command -v chroot >/dev/null || cannot "chroot is missing"

host_mirror() {
  # The first URIs of the host's Debian sources that is not the security archive.
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '/^URIs:/ {for (i = 2; i <= NF; i++) if ($i !~ /security/) {print $i; exit}}' "$f"
  done | head -n1
  if [ -f /etc/apt/sources.list ]; then
    awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' /etc/apt/sources.list
  fi
}
MIRROR=${LTS_MIRROR:-$(host_mirror | head -n1)}
[ -n "$MIRROR" ] || MIRROR=http://deb.debian.org/debian

# --- mounts: recorded as made, undone in reverse on any exit -------------------------------------
MOUNTS=()
undo_mounts() {
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" 2>/dev/null || \
      echo "test-qgis-lts: could not unmount ${MOUNTS[i]}" >&2
  done
  MOUNTS=()
}
stale_mounts() {
  # Mounts left under a chroot by a run that was killed (SIGKILL skips traps): deepest first.
  awk -v r="$1/" 'index($2 "/", r) == 1 {print $2}' /proc/self/mounts | sort -r
}
undo_stale() {
  local m
  for m in $(stale_mounts "$1"); do umount "$m" 2>/dev/null || umount -l "$m"; done
}
bind() {  # bind SOURCE (same path inside the chroot) [ro]
  local src=$1 dst=$CHROOT$1
  [ -e "$src" ] || return 0
  if [ -d "$src" ]; then mkdir -p "$dst"; else mkdir -p "$(dirname "$dst")"; touch "$dst"; fi
  mount --bind "$src" "$dst"
  MOUNTS+=("$dst")
  if [ "${2:-}" = ro ]; then mount -o remount,bind,ro "$dst"; fi
}
mount_system() {
  mkdir -p "$CHROOT/proc" "$CHROOT/sys" "$CHROOT/dev"
  mount -t proc proc "$CHROOT/proc"; MOUNTS+=("$CHROOT/proc")
  mount --rbind /sys "$CHROOT/sys"; mount --make-rslave "$CHROOT/sys"; MOUNTS+=("$CHROOT/sys")
  mount --rbind /dev "$CHROOT/dev"; mount --make-rslave "$CHROOT/dev"; MOUNTS+=("$CHROOT/dev")
  mkdir -p "$CHROOT/tmp"; mount -t tmpfs -o size=8g tmpfs "$CHROOT/tmp"; MOUNTS+=("$CHROOT/tmp")
}
cleanup() {
  local rc=$?
  undo_mounts
  [ -n "${CHROOT:-}" ] && undo_stale "$CHROOT"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# One run at a time per chroot (a second one would unmount the first one's /proc).
mkdir -p "$(dirname "$ROOT")"
exec 9>"$ROOT.lock"
flock -n 9 || { say "another test-qgis-lts run holds $ROOT.lock: waiting"; flock 9; }
undo_stale "$ROOT"; undo_stale "$ROOT.partial"

in_root() {  # in_root COMMAND...: run in the chroot with a clean, explicit environment
  local passthrough=() v
  for v in $(compgen -e); do
    case $v in PIP_*|SSL_CERT_FILE|SSL_CERT_DIR|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|http_proxy|https_proxy|no_proxy|HTTP_PROXY|HTTPS_PROXY|NO_PROXY)
      passthrough+=("$v=${!v}");; esac
  done
  chroot "$CHROOT" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive QT_QPA_PLATFORM=offscreen "${passthrough[@]}" "$@"
}

copy_host_config() {
  # DNS, CA certificates and pip's configuration: pip in the chroot reaches the index as the host's does.
  cp -L /etc/resolv.conf "$CHROOT/etc/resolv.conf" 2>/dev/null || true
  local ca
  for ca in /etc/ssl/certs/ca-certificates.crt ${PIP_CERT:-} ${SSL_CERT_FILE:-} ${REQUESTS_CA_BUNDLE:-}; do
    [ -f "$ca" ] || continue
    mkdir -p "$CHROOT$(dirname "$ca")"; cp -L "$ca" "$CHROOT$ca"
  done
  if [ -f /etc/pip.conf ]; then cp /etc/pip.conf "$CHROOT/etc/pip.conf"; fi
  for conf in "${XDG_CONFIG_HOME:-$HOME/.config}/pip/pip.conf" "$HOME/.pip/pip.conf"; do
    [ -f "$conf" ] || continue
    mkdir -p "$CHROOT/root/.config/pip"; cp "$conf" "$CHROOT/root/.config/pip/pip.conf"
  done
}

pip_local_paths() {
  # The local folders pip's configuration points at (find-links, file:// indexes): bound read-only.
  local text
  text=$( { cat /etc/pip.conf "${XDG_CONFIG_HOME:-$HOME/.config}/pip/pip.conf" "$HOME/.pip/pip.conf" 2>/dev/null
            printf '%s\n' "${PIP_FIND_LINKS:-}" "${PIP_INDEX_URL:-}" "${PIP_EXTRA_INDEX_URL:-}"; } )
  grep -oE '(file://)?/[^[:space:]"]+' <<<"$text" | sed 's#^file://##' | while read -r p; do
    # an index URL's folder is the whole index (file:///opt/pypi/simple -> /opt/pypi)
    case $p in */simple|*/simple/) p=$(dirname "${p%/}");; esac
    [ -d "$p" ] && echo "$p"
  done | sort -u
}

# --- 1. the chroot ------------------------------------------------------------------------------
build_root() {
  local started=$SECONDS partial=$ROOT.partial
  say "building the Debian 13 ($SUITE) chroot with QGIS in $ROOT (from $MIRROR)"
  rm -rf "$partial"
  debootstrap --variant=minbase "$SUITE" "$partial" "$MIRROR" >"$partial.log" 2>&1 || {
    tail -n 20 "$partial.log" >&2; echo "test-qgis-lts: debootstrap failed (log: $partial.log)" >&2; exit "$CANNOT"; }
  CHROOT=$partial
  mount_system
  copy_host_config
  in_root apt-get update -qq
  # shellcheck disable=SC2086
  in_root apt-get install -y -qq --no-install-recommends $PACKAGES >>"$partial.log" 2>&1 || {
    tail -n 20 "$partial.log" >&2; echo "test-qgis-lts: installing QGIS in the chroot failed (log: $partial.log)" >&2; exit "$CANNOT"; }
  in_root apt-get clean
  undo_mounts
  CHROOT=
  mv "$partial" "$ROOT"
  mv "$partial.log" "$ROOT.build.log"
  echo "$PACKAGES" >"$ROOT/.changeanywhere-ready"
  say "chroot built in $((SECONDS - started)) s"
}

sync_packages() {
  # A chroot built with another package list: the new packages added, the dropped ones purged.
  local had extra p
  had=$(cat "$ROOT/.changeanywhere-ready")
  [ "$had" = "$PACKAGES" ] && return 0
  say "the chroot's package list changed: from '$had' to '$PACKAGES'"
  extra=""
  for p in $had; do case " $PACKAGES " in *" $p "*) ;; *) extra="$extra $p";; esac; done
  # shellcheck disable=SC2086
  in_root apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
  # shellcheck disable=SC2086
  [ -z "$extra" ] || in_root apt-get purge -y -qq $extra >/dev/null
  echo "$PACKAGES" >"$ROOT/.changeanywhere-ready"
}

if [ "${LTS_REBUILD:-0}" = 1 ] && [ -d "$ROOT" ]; then say "LTS_REBUILD=1: removing $ROOT"; rm -rf "$ROOT"; fi
[ -f "$ROOT/.changeanywhere-ready" ] || build_root

CHROOT=$ROOT
mount_system
copy_host_config
for p in $(pip_local_paths); do bind "$p" ro; done
sync_packages
in_root sh -c 'dpkg-query -W -f "QGIS \${Version} (Debian 13), " qgis; python3 -c "import sys; print(\"Python\", sys.version.split()[0])"'

# --- 2. the venv over the chroot's Python (QGIS's Python) ---------------------------------------
started=$SECONDS
reqs=$CHROOT/opt/changeanywhere-requirements
mkdir -p "$reqs"
cp requirements.txt "$reqs/requirements.txt"
# The test tools of requirements-dev.txt; torch, diffusers and onnx are model_export's (not tested here).
grep -E '^(pytest|pytest-timeout|pytest-qgis)([<>=!~ ;]|$)' requirements-dev.txt >"$reqs/test-tools.txt"
stamp_want=$(cat "$reqs/requirements.txt" "$reqs/test-tools.txt" | sha256sum | cut -c1-16)
if [ "$(cat "$CHROOT$VENV/.installed" 2>/dev/null)" != "$stamp_want" ]; then
  say "installing requirements.txt and the test tools into the chroot's venv ($VENV)"
  rm -rf "$CHROOT$VENV"
  in_root python3 -m venv --system-site-packages "$VENV"
  if ! in_root "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
      -r /opt/changeanywhere-requirements/requirements.txt -r /opt/changeanywhere-requirements/test-tools.txt 2>&1 \
      | { grep -v "^WARNING: Location .* is ignored" || true; }; then
    echo "test-qgis-lts: pip could not install requirements.txt on the chroot's Python" >&2; exit 1
  fi
  echo "$stamp_want" >"$CHROOT$VENV/.installed"
  say "venv made in $((SECONDS - started)) s"
fi
in_root "$VENV/bin/python" -W ignore -c 'import numpy, onnxruntime, rasterio, shapely, pyogrio, geopandas, scipy, pyproj
from osgeo import gdal
try:
    proj = pyproj.datadir.get_data_dir()
except pyproj.exceptions.DataDirError:
    proj = "none found by pyproj alone (no proj-bin: the engine points it at /usr/share/proj)"
print("numpy", numpy.__version__, "| onnxruntime", onnxruntime.__version__, "| rasterio", rasterio.__version__,
      "| GDAL (QGIS)", gdal.__version__, "| pyproj", pyproj.__version__, "(" + ("wheel" if "site-packages" in pyproj.__file__ else "Debian") + ")",
      "| PROJ data:", proj)'

# --- 3. the plugin as QGIS installs a zip ------------------------------------------------------------
started=$SECONDS
make -s package PY="${PY:-python3}" >/dev/null
zip=$(ls -t dist/changeanywhere_qgis-*.zip | head -n1)
say "installing $zip into the chroot's QGIS profile ($PROFILE/python/plugins)"
rm -rf "$CHROOT$PROFILE/python/plugins/changeanywhere_qgis"
mkdir -p "$CHROOT$PROFILE/python/plugins"
python3 - "$zip" "$CHROOT$PROFILE/python/plugins" <<'EOF'
import sys, zipfile
# QGIS's installer (pyplugin_installer.unzip) extracts the archive into the plugins folder as it is.
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
EOF
# The repository's files without its plugin folder, and in its place a link to the installed plugin:
# the tests' REPO/changeanywhere_qgis is the zip's copy.
rm -rf "$CHROOT$TREE"; mkdir -p "$CHROOT$TREE"
git ls-files -z -co --exclude-standard | grep -zv '^changeanywhere_qgis/' | tar --null -T - -cf - | tar -xf - -C "$CHROOT$TREE"
ln -s "$PROFILE/python/plugins/changeanywhere_qgis" "$CHROOT$TREE/changeanywhere_qgis"

# --- 4. the tests ----------------------------------------------------------------------------------
status=0
say "pytest tests/qgis tests/engine tests/cli tests/test_boundaries.py on QGIS 3.40 (installed zip)"
# shellcheck disable=SC2086
in_root sh -c "cd $TREE && exec $VENV/bin/python -m pytest -q -p no:cacheprovider ${LTS_PYTEST_ARGS:-} \
  tests/qgis tests/engine tests/cli tests/test_boundaries.py" || status=1
test_s=$((SECONDS - started))

# --- 5. the "Install dependencies" action, run by QGIS's own Python into the profile ---------------
started=$SECONDS
say "the plugin's Install dependencies action with QGIS's Python (no venv) into the profile"
rm -rf "$CHROOT$PROFILE/python/changeanywhere-libs"
in_root python3 "$TREE/scripts/qgis_lts_checks.py" install --plugin "$PROFILE/python/plugins/changeanywhere_qgis" \
  --tree "$TREE" --profile "$PROFILE" 2>&1 | { grep -v "^WARNING: Location .* is ignored" || true; } || status=1
install_s=$((SECONDS - started))

# --- 6. qgis_process: the installed plugin enabled, every algorithm run ---------------------------
started=$SECONDS
say "qgis_process (default profile, nothing on PYTHONPATH): every algorithm of the installed plugin"
in_root python3 "$TREE/scripts/qgis_lts_checks.py" algorithms --plugin "$PROFILE/python/plugins/changeanywhere_qgis" \
  --tree "$TREE" --out /tmp/changeanywhere-qgis-process || status=1
say "times: tests ${test_s} s, install action ${install_s} s, qgis_process $((SECONDS - started)) s"
if [ "$status" = 0 ]; then say "test-qgis-lts: passed"; else echo "test-qgis-lts: FAILED" >&2; fi
exit "$status"
