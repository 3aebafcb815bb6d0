#!/usr/bin/env bash
# Installs the Debian packages the build needs, once: packages already
# present are left alone, so running this again costs nothing.
set -euo pipefail
pkgs=(cmake ninja-build g++ ccache libfaiss-dev libopenblas-dev libgtest-dev libomp-dev dataset-fashion-mnist)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo_cmd=""
  [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
