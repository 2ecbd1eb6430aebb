#!/usr/bin/env bash
# Fails when a module includes a header its layer must not see (architecture.md):
#   codec/ (outside codec/cuda/): no Qt, QCustomPlot, ImGui, HDF5 or CUDA headers;
#   codec/cuda/: no Qt, ImGui, HDF5;  io/, sessions/, app/cli/: no Qt or ImGui;
#   sessions/: no CUDA headers;  views/: no HDF5, CUDA or io/ headers (views draw snapshots; file
#   access belongs to the core);  app/gui/: no CUDA or HDF5;  model/: no Qt, ImGui, HDF5 or CUDA.
# Usage: check_layering.sh ROOT | check_layering.sh --self-test ROOT
set -u

QT='#include *[<"](Q[A-Za-z]+|qcustomplot\.h|QtCore|QtGui|QtWidgets|QtOpenGL)'
IMGUI='#include *[<"](imgui|backends/imgui)'
HDF5='#include *[<"](hdf5|H5[A-Za-z]*\.h|H5Cpp)'
IO_MOD='#include *"io/'
CUDA='#include *[<"](cuda|cublas|cusolver|curand|cuda_runtime|device_launch|thrust/|cub/)'

check_dir() {  # dir, pattern, description, [exclude-subdir]
  local dir=$1 pat=$2 what=$3 excl=${4:-}
  [ -d "$dir" ] || return 0
  local hits
  hits=$(grep -rnE "$pat" "$dir" --include='*.h' --include='*.hpp' --include='*.cpp' \
           --include='*.cc' --include='*.cuh' --include='*.cu' 2>/dev/null |
         { if [ -n "$excl" ]; then grep -v "^$excl/"; else cat; fi; })
  if [ -n "$hits" ]; then
    echo "LAYERING VIOLATION: $dir must not include $what headers:"
    echo "$hits" | sed 's/^/  /'
    return 1
  fi
  return 0
}

run_checks() {
  local root=$1 rc=0
  cd "$root" || return 2
  check_dir codec "$QT" "Qt/QCustomPlot" || rc=1
  check_dir codec "$IMGUI" "ImGui" || rc=1
  check_dir codec "$HDF5" "HDF5" || rc=1
  check_dir codec "$CUDA" "CUDA" codec/cuda || rc=1
  for d in io sessions app/cli; do
    check_dir "$d" "$QT" "Qt" || rc=1
    check_dir "$d" "$IMGUI" "ImGui" || rc=1
  done
  check_dir sessions "$CUDA" "CUDA" || rc=1
  check_dir io "$CUDA" "CUDA" || rc=1
  check_dir views "$HDF5" "HDF5" || rc=1
  check_dir views "$CUDA" "CUDA" || rc=1
  check_dir views "$IO_MOD" "io/ (capture, file formats)" || rc=1
  check_dir app/gui "$CUDA" "CUDA" || rc=1
  check_dir app/gui "$HDF5" "HDF5" || rc=1
  check_dir model "$QT" "Qt" || rc=1
  check_dir model "$IMGUI" "ImGui" || rc=1
  check_dir model "$HDF5" "HDF5" || rc=1
  check_dir model "$CUDA" "CUDA" || rc=1
  return $rc
}

if [ "${1:-}" = "--self-test" ]; then
  # The check must catch a planted violation in every layer, and pass on a clean tree.
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/codec/cuda" "$tmp/io" "$tmp/views" "$tmp/sessions" "$tmp/model" "$tmp/app/gui"
  echo '#include <cuda_runtime.h>' > "$tmp/codec/cuda/ok.cu"
  echo '#include <hdf5.h>' > "$tmp/io/ok.cpp"
  run_checks "$tmp" >/dev/null || { echo "self-test: clean tree flagged"; exit 1; }
  for plant in "codec/x.h:#include <QWidget>" "codec/y.cpp:#include \"hdf5.h\"" \
               "codec/z.cpp:#include <cublas_v2.h>" "io/a.cpp:#include <imgui.h>" \
               "views/b.cpp:#include <H5Fpublic.h>" "sessions/c.cpp:#include <QObject>" \
               "model/d.cpp:#include <hdf5.h>" "views/e.cpp:#include \"io/capture.h\"" \
               "app/gui/f.cpp:#include <cuda_runtime.h>"; do
    f=${plant%%:*}; line=${plant#*:}
    echo "$line" > "$tmp/$f"
    if run_checks "$tmp" >/dev/null; then echo "self-test: missed $plant"; exit 1; fi
    rm "$tmp/$f"
  done
  echo "layering self-test passed"
  exit 0
fi

run_checks "${1:-.}" && echo "layering ok"
