#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs what it needs (Debian
# packages janus, chromium, postgresql; a venv with the dev extras), starts
# PostgreSQL, checks lint and types, then runs pytest. Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
echo "==> ruff"
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
echo "==> mypy"
.venv/bin/mypy
echo "==> pytest"
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
