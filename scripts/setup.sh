#!/usr/bin/env bash
# Set up everything diemcau needs on a fresh Debian machine; safe to run twice.
#   scripts/setup.sh          Python venv + the package (runtime)
#   scripts/setup.sh --dev    also test tools, Debian packages for tests, PostgreSQL
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need_debs=()
# janus-tools and ffmpeg turn recordings into WebM files; DejaVu fonts carry the
# Vietnamese letters of the minutes PDF.
for pkg in janus janus-tools ffmpeg fonts-dejavu-core python3-venv iproute2; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_debs+=("$pkg")
done
if [ "$dev" = 1 ]; then
  # coturn (TURN) and nftables (the lab's NAT and firewall routers) for the field tests.
  for pkg in chromium postgresql coturn nftables; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_debs+=("$pkg")
  done
fi
if [ ${#need_debs[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${need_debs[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_debs[@]}" >/dev/null
fi

# diemcau starts its own Janus and coturn processes with generated configs; the
# packages' system services (well-known ports, default secrets) stay off.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  for svc in janus coturn; do
    if systemctl is-enabled "$svc" >/dev/null 2>&1; then $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true; fi
  done
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PY" -m venv .venv
fi
# The stamp records which pyproject.toml was installed and at which level (0 runtime,
# 1 dev). A dev install satisfies a runtime request, so switching between
# scripts/test.sh and scripts/demo.sh never reinstalls; a venv once given the dev
# extras keeps them when pyproject.toml changes.
stamp=.venv/.diemcau-installed
want_hash="$(sha256sum pyproject.toml | cut -c1-16)"
have_hash=""
have_level=0
if [ -f "$stamp" ]; then
  IFS=- read -r have_hash have_level <"$stamp" || true
  case "$have_level" in 0|1) ;; *) have_hash=""; have_level=0 ;; esac
fi
level=$dev
[ "$have_level" -gt "$level" ] && level=$have_level
if [ "$have_hash" != "$want_hash" ] || [ "$have_level" -lt "$dev" ] \
  || ! .venv/bin/python -c "import diemcau" >/dev/null 2>&1; then
  echo "==> installing Python packages"
  [ -f "$stamp" ] || .venv/bin/pip install -q --upgrade pip >/dev/null
  if [ "$level" = 1 ]; then
    .venv/bin/pip install -q -e '.[dev]'
  else
    .venv/bin/pip install -q -e .
  fi
  echo "$want_hash-$level" >"$stamp"
fi

if [ "$dev" = 1 ]; then
  scripts/postgres.sh
fi
