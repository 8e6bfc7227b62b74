#!/usr/bin/env bash
# Run the embedded default on a fresh Debian machine: set up, then `diemcau demo`.
# Extra arguments go to `diemcau demo` (e.g. --isolated, --dataset vn-legacy).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/diemcau demo "$@"
