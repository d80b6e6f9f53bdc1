#!/usr/bin/env bash
# Installs every system package Sluice needs to build, test and benchmark. Idempotent: a second
# run with everything present makes no network call and returns in well under a second.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake ccache pkg-config clang libclang-rt-14-dev
  # libraries
  libboost1.81-dev libboost-json1.81-dev libsimdjson-dev libyaml-cpp-dev libssl-dev
  libspdlog-dev libfmt-dev libcli11-dev libsqlite3-dev libjwt-dev libhiredis-dev libmimalloc-dev
  libhnswlib-dev
  # profiling: libprofiler + libtcmalloc (/debug/pprof) and the google-pprof reader
  libgoogle-perftools-dev google-perftools
  # tests
  libgtest-dev libgmock-dev python3 python3-pytest curl openssl
  # benchmark peers and load generator; valgrind for bench/instructions.py (callgrind)
  nginx-light haproxy wrk redis-server valgrind
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js may come from another vendor's package that bundles npm; only ask Debian when absent.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts nginx and haproxy as services on install; the benchmark runs its own instances.
$SUDO systemctl disable --now nginx haproxy >/dev/null 2>&1 || true
$SUDO service nginx stop >/dev/null 2>&1 || true
$SUDO service haproxy stop >/dev/null 2>&1 || true
