#!/usr/bin/env bash
# End-to-end checks of the kvwb binary. Args: KVWB_BINARY REAL_DATA_DIR
set -u
KVWB=$1
REAL=$2
echo "kvwb: $KVWB"
"$KVWB" --help >/dev/null || { echo "kvwb --help failed"; exit 1; }
echo "1 passed, 0 failed"
