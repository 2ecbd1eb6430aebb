#!/usr/bin/env bash
# Opens the workbench on the embedded (synthetic) demo capture.
set -euo pipefail
BUILD=${1:-build}
DEMO="$BUILD/demo/demo.kvc.h5"
[ -f "$DEMO" ] || "$BUILD/app/cli/kvwb" synth "$DEMO"
echo "Demo capture (SYNTHETIC data, see README): $DEMO"
exec "$BUILD/app/cli/kvwb" info "$DEMO"
