#!/usr/bin/env bash
# Runs the whole ctest suite of a build folder, under xvfb-run when there is no display.
set -euo pipefail
BUILD=${1:-build}
cd "$BUILD"
JOBS=$(nproc)
if [ -z "${DISPLAY:-}" ] && command -v xvfb-run >/dev/null 2>&1; then
  exec xvfb-run -a -s "-screen 0 1600x1000x24" ctest --output-on-failure -j "$JOBS"
fi
exec ctest --output-on-failure -j "$JOBS"
