#!/usr/bin/env bash
# Folders are the architecture (../shared/spec/architecture.md). Fails when a file includes a
# header its layer must not see:
#   external headers:
#     base/, codec/ (outside codec/cuda/), io/, model/, sessions/, app/cli/, views/models/: no Qt,
#     QCustomPlot or ImGui;  everything outside codec/cuda/: no CUDA headers;
#     only io/ includes HDF5;  codec/kernels/: the standard library only (no Eigen, no project
#     header outside codec/kernels/), from a short list of headers (<cmath> <cstdint> <cstddef>
#     <cstring> <cfloat> <climits> <type_traits>), and no exceptions or allocation (throw/try/
#     catch, new/delete, malloc, std containers and smart pointers), comments aside.
#   project layers (who may include whom, by folder):
#     base/            base/
#     codec/kernels/   codec/kernels/
#     codec/format/    base/ codec/format/ codec/kernels/
#     codec/cpu/       base/ codec/ (not codec/cuda/)
#     codec/           base/ codec/           (never io/ sessions/ model/ views/ app/)
#     io/              base/ codec/ io/
#     model/           base/ codec/ io/ model/
#     sessions/        base/ codec/ io/ sessions/; model/ only from sessions/eval/ and sessions/explore/
#       sessions/config/   config
#       sessions/run/      config run
#       sessions/analysis/ config run analysis
#       sessions/bundle/   config run bundle
#       sessions/eval/     config run eval
#       sessions/explore/  config run analysis eval explore
#       sessions/document/ config document          (a leaf: no other sub-layer includes it)
#       sessions/report/   config run analysis explore bundle report   (on top: only app/ includes it)
#     views/models/    base/ codec/ sessions/ views/models/   (no Qt, no io/, no sessions/report/)
#     views/           no io/ (views draw snapshots; file access belongs to the core), no sessions/report/
#     app/cli/         no views/ or app/gui/
#   codec knowledge stays in codec/: outside it (base io model sessions views app bench) no code
#     compares a string against a codec-name literal (==, !=, compare, starts_with, rfind, find,
#     count, strcmp, QString startsWith ...): it asks codec/traits.h (codec_traits). Codec names as
#     data (defaults, help text, JSON, arguments) are fine; comment lines are not checked.
#   the execution seam: codec/cpu/ and codec/cuda/ are included only by themselves and by the
#     executor factory (codec/executor_factory.cpp), which is also the only source that mentions
#     KVWB_HAVE_CUDA (the one place that knows whether CUDA was built).
# Usage: check_layering.sh ROOT | check_layering.sh --self-test ROOT
set -u

QT='#include *[<"](Q[A-Za-z]+|qcustomplot\.h|QtCore|QtGui|QtWidgets|QtOpenGL)'
IMGUI='#include *[<"](imgui|backends/imgui)'
HDF5='#include *[<"](hdf5|H5[A-Za-z]*\.h|H5Cpp)'
CUDA='#include *[<"](cuda|cublas|cusolver|curand|cuda_runtime|device_launch|thrust/|cub/)'
EIGEN='#include *[<"](Eigen|unsupported/Eigen)'
SRC=(--include='*.h' --include='*.hpp' --include='*.cpp' --include='*.cc' --include='*.cuh' --include='*.cu')
# A codec name, and a literal that is a codec name or a prefix of one of three or more letters, or
# a ggml family prefix ("turbo", "kak", "q", "iq4_", "q5_" ...).
CODEC_NAME='"(kakeya_pca|besicovitch|turbo[234]|q8_0|q4_0|q4_1|q5_0|q5_1|iq4_nl|kivi|fp8_e4m3|bf16)"'
CODEC_PREFIX='"(kak|kake|kakey|kakeya_?p?c?a?|bes|besi|besic|besico|besicov|besicovi|besicovit|besicovitc|besicovitch|tur|turb|turbo[234]?|i?q|i?q[0-9]_?[0-9]?|iq4_?n?l?|kiv|kivi|fp8_?e?4?m?3?|bf1|bf16)"'
CODEC_CMP="(==|!=) *$CODEC_NAME|$CODEC_NAME *(==|!=)|(compare|starts_with|ends_with|startsWith|endsWith|rfind|find|count|contains|strn?cmp)\\(([^,()]*, *)?$CODEC_PREFIX"

# report HITS WHAT: when HITS (grep lines) is not empty, prints "LAYERING VIOLATION: WHAT:" and
# the hits indented, and fails.
report() {
  [ -n "$1" ] || return 0
  echo "LAYERING VIOLATION: $2:"
  printf '%s\n' "$1" | sed 's/^/  /'
  return 1
}

# forbid "DIR..." PATTERN WHAT [EXCLUDED-SUBDIR-OR-FILE...]: no line of the sources under the
# (space-separated) DIRs matches PATTERN.
forbid() {
  local dirs=() d list=$1
  for d in $list; do [ -d "$d" ] && dirs+=("$d"); done
  local pat=$2 what=$3; shift 3
  [ ${#dirs[@]} -gt 0 ] || return 0
  local hits
  hits=$(grep -rnE "$pat" "${dirs[@]}" "${SRC[@]}" 2>/dev/null)
  for ex in "$@"; do hits=$(printf '%s\n' "$hits" | grep -v "^$ex[/:]"); done
  hits=$(printf '%s\n' "$hits" | sed '/^$/d')
  report "$hits" "$list must not include $what"
}

# allow_only DIR PREFIX...: every project include ("a/b.h" with a folder) of DIR starts with one
# of the prefixes. Excluded subdirectories are given as -x SUBDIR before DIR.
allow_only() {
  local excl=()
  while [ "$1" = "-x" ]; do excl+=("$2"); shift 2; done
  local dir=$1; shift
  [ -d "$dir" ] || return 0
  local alt; alt=$(printf '%s|' "$@"); alt=${alt%|}
  local hits
  hits=$(grep -rnE '#include *"[a-z_]+/' "$dir" "${SRC[@]}" 2>/dev/null | grep -vE "#include *\"($alt)")
  for ex in "${excl[@]}"; do hits=$(printf '%s\n' "$hits" | grep -v "^$ex/"); done
  hits=$(printf '%s\n' "$hits" | grep -v '_autogen/' | sed '/^$/d')
  report "$hits" "$dir may include only $*"
}

# forbid_code DIR PATTERN WHAT: like forbid, but // comments are ignored.
forbid_code() {
  local dir=$1 pat=$2 what=$3
  [ -d "$dir" ] || return 0
  local hits
  # grep -rn prints "path:line:text"; drop the // comment of the text, then match.
  hits=$(grep -rn "" "$dir" "${SRC[@]}" 2>/dev/null |
         sed -E 's#^([^:]+:[0-9]+:)(([^/]|/[^/])*)//.*$#\1\2#' | grep -E "^[^:]+:[0-9]+:.*($pat)")
  report "$hits" "$dir must not contain $what"
}

KERNEL_STD='#include *<(cmath|cstdint|cstddef|cstring|cfloat|climits|type_traits)>'
KERNEL_ALLOC='\<(throw|try|catch|new|delete|malloc|calloc|realloc|free)\>|std::(vector|string|map|unordered_map|set|list|deque|function|unique_ptr|shared_ptr|make_unique|make_shared)\>'

run_checks() {
  local root=$1 rc=0
  cd "$root" || return 2
  # External headers.
  forbid "base codec io model sessions app/cli views/models" "$QT" "Qt/QCustomPlot headers" || rc=1
  forbid "base codec io model sessions app/cli views/models" "$IMGUI" "ImGui headers" || rc=1
  forbid "base codec io model sessions views app" "$CUDA" \
         "CUDA headers (only codec/cuda/ talks to the CUDA toolkit)" codec/cuda || rc=1
  forbid "base codec model sessions views app" "$HDF5" "HDF5 headers (only io/ reads and writes HDF5)" || rc=1
  forbid codec/kernels "$EIGEN" "Eigen (kernels are shared with CUDA device code)" || rc=1
  if [ -d codec/kernels ]; then
    local std_hits
    std_hits=$(grep -rnE '#include *<' codec/kernels "${SRC[@]}" 2>/dev/null | grep -vE "$KERNEL_STD")
    report "$std_hits" "codec/kernels may include only <cmath> <cstdint> <cstddef> <cstring>"\
" <cfloat> <climits> <type_traits> (device code, C++17, no allocation)" || rc=1
  fi
  forbid_code codec/kernels "$KERNEL_ALLOC" "exceptions or allocation (kernels run as device code)" || rc=1
  # Project layers.
  allow_only base "base/" || rc=1
  allow_only codec/kernels "codec/kernels/" || rc=1
  allow_only codec/format "base/" "codec/format/" "codec/kernels/" || rc=1
  allow_only codec/cpu "base/" "codec/" || rc=1
  forbid codec/cpu '#include *"codec/cuda/' "CUDA backend headers (the CPU executor stands alone)" || rc=1
  allow_only codec "base/" "codec/" || rc=1
  # The execution seam: backends are reached through codec/executor.h and its factory only.
  forbid codec '#include *"codec/(cpu|cuda)/' "backend headers (only the executor factory picks a backend)" \
         codec/cpu codec/cuda codec/executor_factory.cpp || rc=1
  forbid "base io model sessions views app bench tests" '#include *"codec/(cpu|cuda)/' \
         "backend headers (ask make_executor / describe_backends)" || rc=1
  forbid "base codec io model sessions views app bench tests tools" 'KVWB_HAVE_CUDA' \
         "a mention of KVWB_HAVE_CUDA (only codec/executor_factory.cpp knows whether CUDA was built)" \
         codec/executor_factory.cpp || rc=1
  allow_only io "base/" "codec/" "io/" || rc=1
  allow_only model "base/" "codec/" "io/" "model/" || rc=1
  allow_only sessions/config "base/" "codec/" "io/" "sessions/config/" || rc=1
  allow_only sessions/run "base/" "codec/" "io/" "sessions/config/" "sessions/run/" || rc=1
  allow_only sessions/analysis "base/" "codec/" "io/" "sessions/config/" "sessions/run/" "sessions/analysis/" || rc=1
  allow_only sessions/bundle "base/" "codec/" "io/" "sessions/config/" "sessions/run/" "sessions/bundle/" || rc=1
  allow_only sessions/eval "base/" "codec/" "io/" "model/" "sessions/config/" "sessions/run/" "sessions/eval/" || rc=1
  allow_only sessions/explore "base/" "codec/" "io/" "model/" "sessions/config/" "sessions/run/" \
             "sessions/analysis/" "sessions/eval/" "sessions/explore/" || rc=1
  allow_only sessions/document "base/" "codec/" "io/" "sessions/config/" "sessions/document/" || rc=1
  allow_only sessions/report "base/" "codec/" "io/" "sessions/config/" "sessions/run/" "sessions/analysis/" \
             "sessions/explore/" "sessions/bundle/" "sessions/report/" || rc=1
  allow_only -x sessions/config -x sessions/run -x sessions/analysis -x sessions/bundle -x sessions/eval \
             -x sessions/explore -x sessions/document -x sessions/report sessions "base/" "codec/" "io/" "sessions/" || rc=1
  allow_only views/models "base/" "codec/" "sessions/" "views/models/" || rc=1
  forbid views '#include *"sessions/report/' "sessions/report/ (reports are built in the core and only app/ includes them)" || rc=1
  forbid views '#include *"io/' "io/ headers (views draw snapshots; file access belongs to the core)" || rc=1
  forbid app/cli '#include *"(views|app/gui)/' "GUI headers" || rc=1
  # Codec knowledge (codec/traits.h), not codec-name comparisons.
  local d hits
  for d in base io model sessions views app bench; do
    [ -d "$d" ] || continue
    hits=$(grep -rnE "$CODEC_CMP" "$d" "${SRC[@]}" 2>/dev/null | grep -vE '^[^:]+:[0-9]+: *//' | sed '/^$/d')
    report "$hits" "$d compares against a codec-name literal (ask codec/traits.h: codec_traits)" || rc=1
  done
  return $rc
}

if [ "${1:-}" = "--self-test" ]; then
  # The check must pass on a clean tree and catch a planted violation of every rule.
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp"/{base,bench,codec/cuda,codec/cpu,codec/codecs,codec/format,codec/kernels,io,model,views/models,app/gui,app/cli} \
           "$tmp"/sessions/{config,run,analysis,bundle,eval,explore,document,report}
  printf '#include <cuda_runtime.h>\n#include "codec/codec.h"\n' > "$tmp/codec/cuda/ok.cu"
  printf '#include <hdf5.h>\n#include "codec/format/half.h"\n' > "$tmp/io/ok.cpp"
  printf '#include "model/llama.h"\n#include "sessions/eval/eval.h"\n' > "$tmp/sessions/explore/ok.cpp"
  printf '#include "sessions/run/runner.h"\n' > "$tmp/views/models/ok.cpp"
  printf '#include <QWidget>\n#include "views/models/snapshot.h"\n' > "$tmp/views/ok.cpp"
  printf '#include <cstdint>\n#include "codec/kernels/wht.h"\n// never throws, no new or malloc\n' > "$tmp/codec/kernels/ok.h"
  printf '#include "codec/executor.h"\n#include "base/thread_pool.h"\n' > "$tmp/codec/cpu/ok.cpp"
  printf '#include "codec/cpu/cpu_executor.h"\n#if KVWB_HAVE_CUDA\n#include "codec/cuda/device_info.h"\n#endif\n' \
    > "$tmp/codec/executor_factory.cpp"
  printf '#include "sessions/explore/sweep.h"\n#include "sessions/bundle/bundle.h"\n#include "sessions/analysis/pareto.h"\n' \
    > "$tmp/sessions/report/ok.cpp"
  printf '#include "sessions/report/report.h"\n' > "$tmp/app/cli/ok_report.cpp"
  printf '#include <QPdfWriter>\n#include "sessions/report/report.h"\n' > "$tmp/app/gui/ok_report.cpp"
  # Codec names as data, comparisons inside codec/, other literals and comments are fine.
  cat > "$tmp/sessions/config/names_ok.cpp" <<'EOF'
StreamConfig k{"kakeya_pca", {}, {}, ""};
set_codec(sc, "q8_0");
const bool block = codec::codec_traits("besicovitch").block_codec;
j["bf16_bytes"] = total;
if (key == "bf16_bytes" || key.rfind("quality", 0) == 0 || name == "kakeya_pca_bundle") return;
// if (codec == "turbo3") was how this used to be decided
EOF
  printf 'if (name == "kakeya_pca") return 1;\nif (n.rfind("turbo", 0) == 0) return 2;\n' > "$tmp/codec/codecs/ok.cpp"
  run_checks "$tmp" >/dev/null || { echo "self-test: clean tree flagged"; run_checks "$tmp"; exit 1; }
  planted=0
  for plant in "codec/x.h:#include <QWidget>" "codec/y.cpp:#include \"hdf5.h\"" \
               "codec/z.cpp:#include <cublas_v2.h>" "io/a.cpp:#include <imgui.h>" \
               "views/b.cpp:#include <H5Fpublic.h>" "sessions/c.cpp:#include <QObject>" \
               "model/d.cpp:#include <hdf5.h>" "views/e.cpp:#include \"io/capture.h\"" \
               "app/gui/f.cpp:#include <cuda_runtime.h>" "base/g.h:#include \"codec/codec.h\"" \
               "codec/h.cpp:#include \"io/capture.h\"" "codec/format/i.h:#include \"codec/math/rng.h\"" \
               "codec/kernels/j.h:#include <Eigen/Dense>" "codec/kernels/k.h:#include \"base/errors.h\"" \
               "io/l.cpp:#include \"sessions/run/runner.h\"" "model/m.cpp:#include \"sessions/eval/eval.h\"" \
               "sessions/config/n.cpp:#include \"sessions/run/runner.h\"" \
               "sessions/run/o.cpp:#include \"sessions/analysis/analysis.h\"" \
               "sessions/analysis/p.cpp:#include \"sessions/bundle/bundle.h\"" \
               "sessions/analysis/q.cpp:#include \"sessions/explore/sweep.h\"" \
               "sessions/analysis/r.cpp:#include \"model/llama.h\"" \
               "sessions/bundle/s.cpp:#include \"sessions/explore/sweep.h\"" \
               "sessions/eval/t.cpp:#include \"sessions/document/session.h\"" \
               "sessions/run/u.cpp:#include \"model/llama.h\"" \
               "sessions/document/v.cpp:#include \"sessions/run/runner.h\"" \
               "views/models/w.cpp:#include <QString>" "views/models/x.cpp:#include \"io/capture.h\"" \
               "app/cli/y.cpp:#include \"views/models/snapshot.h\"" "sessions/z.cpp:#include \"views/view.h\"" \
               "codec/cpu/a.cpp:#include \"codec/cuda/device_info.h\"" "codec/cpu/b.cpp:#include \"io/capture.h\"" \
               "codec/codecs/c.cpp:#include \"codec/cpu/cpu_executor.h\"" "codec/d.cpp:#include \"codec/cuda/device_info.h\"" \
               "sessions/run/e.cpp:#include \"codec/cuda/device_info.h\"" "app/gui/f.cpp:#include \"codec/cpu/cpu_executor.h\"" \
               "sessions/run/g.cpp:#if KVWB_HAVE_CUDA" "codec/h.cpp:#ifdef KVWB_HAVE_CUDA" \
               "codec/kernels/i.h:#include <vector>" "codec/kernels/j.h:  if (n == 0) throw 1;" \
               "codec/kernels/k2.h:  float* p = new float[4];" "codec/kernels/l.h:  void* p = malloc(16);" \
               "codec/kernels/m.h:  std::vector<float> v;" \
               "sessions/explore/ra.cpp:#include \"sessions/report/report.h\"" \
               "sessions/bundle/rb.cpp:#include \"sessions/report/plot.h\"" \
               "views/models/rc.cpp:#include \"sessions/report/report.h\"" \
               "views/rd.cpp:#include \"sessions/report/document.h\"" \
               "sessions/report/re.cpp:#include \"sessions/document/session.h\"" \
               "sessions/report/rf.cpp:#include \"sessions/eval/eval.h\"" \
               "sessions/report/rg.cpp:#include \"model/llama.h\"" \
               "sessions/report/rh.cpp:#include <QTextDocument>" \
               "sessions/report/ri.cpp:#include \"views/models/snapshot.h\"" \
               "sessions/run/c1.cpp:  if (sc.codec == \"kakeya_pca\") return;" \
               "views/models/c2.cpp:  if (\"bf16\" != name) draw();" \
               "app/gui/c3.cpp:  if (name.rfind(\"turbo\", 0) == 0) x = 1;" \
               "io/c4.cpp:  const bool g = n.starts_with(\"q4_\");" \
               "model/c5.cpp:  if (c.compare(\"fp8_e4m3\") == 0) y();" \
               "bench/c6.cpp:  if (c.label == \"turbo3\") t = 50;" \
               "views/c7.cpp:  const bool k = s.codec->currentText() == \"kivi\";" \
               "base/c8.cpp:  if (std::strcmp(name, \"iq4_nl\") == 0) z();" \
               "sessions/c9.cpp:  if (text.find(\"besicovitch\") != std::string::npos) w();"; do
    f=${plant%%:*}; line=${plant#*:}
    echo "$line" > "$tmp/$f"
    if run_checks "$tmp" >/dev/null; then echo "self-test: missed $plant"; exit 1; fi
    rm "$tmp/$f"
    planted=$((planted + 1))
  done
  echo "layering self-test passed ($planted planted violations caught)"
  exit 0
fi

run_checks "${1:-.}" && echo "layering ok"
