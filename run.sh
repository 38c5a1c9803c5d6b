#!/usr/bin/env bash
# One command to run the arena: sets up .venv on first use, then `python -m arena serve`.
# Any flags are passed on, e.g. ./run.sh --port 8080 --models models.yaml
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
exec .venv/bin/python -m arena serve "$@"
