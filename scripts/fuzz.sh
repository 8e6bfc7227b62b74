#!/usr/bin/env bash
# A long fuzz hunt: the fuzz tests with each target's CI count multiplied and
# new random inputs every run (docs/security.md, "What was fuzzed and what it
# found"). Usage: scripts/fuzz.sh [SCALE] [pytest arguments...]
# e.g. scripts/fuzz.sh 25 -k presence
set -euo pipefail
cd "$(dirname "$0")/.."
scale="${1:-10}"
shift || true
case "$scale" in
  '' | *[!0-9]* | 0) echo "scripts/fuzz.sh: SCALE must be a whole number >= 1" >&2; exit 2 ;;
esac
export DIEMCAU_FUZZ_SCALE="$scale"
export DIEMCAU_FUZZ_SEED="${DIEMCAU_FUZZ_SEED:-random}"
exec .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_fuzz_api.py \
  tests/test_fuzz_presence.py tests/test_fuzz_spreadsheets.py tests/test_fuzz_exports.py "$@"
