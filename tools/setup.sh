#!/usr/bin/env bash
# Installs what Layerwise needs on a Debian machine: the C libraries it links (libzstd, OpenBLAS,
# oneDNN 2.6, zlib), pkg-config, the zstd command-line tool (tests check shards with it), Debian's copy of
# Fashion-MNIST and Open MPI (mpirun and its headers: `layerwise train --stages S`, built with
# `swift build --traits MPI`). Safe to run twice: it does nothing when everything is present.
#   tools/setup.sh [PACKAGE...]   installs the given Debian packages instead (other scripts' needs)
set -euo pipefail
packages=(libzstd-dev libopenblas-dev libdnnl-dev zlib1g-dev pkg-config zstd dataset-fashion-mnist openmpi-bin libopenmpi-dev)
[ $# -gt 0 ] && packages=("$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi
