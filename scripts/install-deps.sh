#!/usr/bin/env bash
# Installs every Debian 12 package that KV Workbench needs to build, test and run.
# Idempotent: packages already present are skipped. Works as root or through sudo.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  libeigen3-dev nlohmann-json3-dev libcli11-dev
  libhdf5-dev hdf5-tools
  libssl-dev   # SHA-256 of captures through OpenSSL libcrypto (EVP)
  libgtest-dev libgmock-dev libbenchmark-dev
  qt6-base-dev libqt6opengl6-dev qt6-svg-dev libqcustomplot-dev libqcustomplot2.1-qt6
  libimgui-dev libgl-dev libgl1-mesa-dri
  xvfb xauth
  poppler-utils  # pdfinfo / pdftotext: report.cli checks kvwb's PDFs with an independent reader
  python3-numpy python3-h5py
  clang-16 libclang-rt-16-dev libfuzzer-16-dev
  slurmctld slurmd slurm-client munge   # the cluster test starts its own single-node Slurm (tests/cluster)
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
