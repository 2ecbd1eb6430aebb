#!/usr/bin/env bash
# Opens the workbench (kvwb-gui) on the embedded demo capture (SYNTHETIC data, docs/demo-capture.md).
# Without a display (SSH, CI) it runs the same window under Xvfb, saves a screenshot of the layer
# map and says where it is, instead of failing.
set -euo pipefail
BUILD=${1:-build}
DEMO="$BUILD/demo/demo.kvc.h5"
GUI="$BUILD/app/gui/kvwb-gui"
mkdir -p "$(dirname "$DEMO")"  # a fresh build folder has no demo/ yet (make run builds only the apps)
[ -f "$DEMO" ] || "$BUILD/app/cli/kvwb" synth "$DEMO"
echo "Demo capture (SYNTHETIC data, see docs/demo-capture.md): $DEMO"
if [ ! -x "$GUI" ]; then
  echo "kvwb-gui was not built (configured with -DKVWB_GUI=OFF?); showing the capture with the CLI" >&2
  exec "$BUILD/app/cli/kvwb" info "$DEMO"
fi
if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; then
  exec "$GUI" "$DEMO"
fi
SHOT="$BUILD/workbench-demo.png"
echo "No display (DISPLAY is not set): running kvwb-gui under Xvfb and saving a screenshot to $SHOT"
exec xvfb-run -a -s "-screen 0 1600x1000x24" "$GUI" "$DEMO" --screenshot "$SHOT" --view layer-map --size 1500x950
