#!/usr/bin/env bash
# The test suite, as CI runs it (.ci/run): sets up .venv (and Chromium), lints, then runs pytest.
#
#   ./test.sh           ruff, then every test: first spread over parallel pytest-xdist workers,
#                       then the `serial` tests (they time things on the wall clock) one at a time.
#                       About 7 minutes on a busy 2-core machine. A lint error fails the run, but
#                       only once the tests have run too.
#   ./test.sh --quick   ruff, then the tests that start no browser and no arena stack
#                       (-m "not browser and not stack"; Chromium is not needed). Under 2 minutes.
#   ./test.sh -k vote   other arguments go to both pytest runs (a path, -k, -x, ...); the markers
#                       (-m) are this script's: for your own -m, run .venv/bin/python -m pytest.
#
# ARENA_TEST_WORKERS sets the number of parallel workers (default 4: most tests wait on sockets and
# subprocesses, so twice the 2 cores keeps both busy; 0 runs everything in this one process).
# The markers are set in tests/conftest.py: `stack` (starts the whole arena), `browser`, `serial`.
set -euo pipefail
cd "$(dirname "$0")"

selection="not browser and not stack"
if [ "${1:-}" = "--quick" ]; then
  shift
else
  selection=""
fi

scripts/bootstrap.sh
scripts/ensure_redis7.sh >/dev/null || echo "arena: no Redis 7 for tests/test_redis_acl.py (it will be skipped)" >&2
if [ -z "$selection" ]; then
  scripts/ensure_chromium.sh
fi

# Lint first; a lint error fails the run but does not hide the tests' results (both are worth a CI run).
echo "arena: ruff check ." >&2
lint_status=0
.venv/bin/ruff check --output-format concise . || lint_status=$?

workers="${ARENA_TEST_WORKERS:-4}"
parallel="not serial${selection:+ and $selection}"
serial="serial${selection:+ and $selection}"

# pytest's exit 5 is "no test selected" (say, a -k that matches only serial tests): fine for one of
# the two runs, so the status of each is kept and judged at the end.
status=0
.venv/bin/python -m pytest -n "$workers" --dist worksteal --durations=25 -m "$parallel" "$@" || status=$?
serial_status=0
.venv/bin/python -m pytest -p no:xdist --durations=10 -m "$serial" "$@" || serial_status=$?

if [ "$status" = 5 ] && [ "$serial_status" = 5 ]; then exit 5; fi
if [ "$status" = 5 ]; then status=0; fi
if [ "$serial_status" = 5 ]; then serial_status=0; fi
if [ "$status" != 0 ]; then exit "$status"; fi
if [ "$serial_status" != 0 ]; then exit "$serial_status"; fi
if [ "$lint_status" != 0 ]; then echo "arena: the tests passed, but ruff found problems (above)" >&2; fi
exit "$lint_status"
