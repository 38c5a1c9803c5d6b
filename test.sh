#!/usr/bin/env bash
# One command to run the whole test suite: sets up .venv and Chromium, then pytest.
# Extra arguments go to pytest, e.g. ./test.sh -k battles
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
scripts/ensure_chromium.sh
exec .venv/bin/python -m pytest "$@"
