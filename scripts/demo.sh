#!/usr/bin/env bash
# Run the embedded default on a fresh Debian machine: set up, then `diemcau demo`.
# Extra arguments go to `diemcau demo` (e.g. --dataset vn-legacy, --no-media).
# As root the demo runs in a private network namespace on loopback addresses
# (media never touches a real interface; the demo prints how to open a page
# inside it); pass --host-network to use this host's interfaces instead, as a
# normal user does.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
args=()
isolate=0
[ "$(id -u)" -eq 0 ] && isolate=1
for a in "$@"; do
  case "$a" in
    --host-network) isolate=0 ;;
    --isolated) isolate=1 ;;
    *) args+=("$a") ;;
  esac
done
[ "$isolate" = 1 ] && args+=(--isolated)
exec .venv/bin/diemcau demo ${args[@]+"${args[@]}"}
