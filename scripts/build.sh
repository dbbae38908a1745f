#!/usr/bin/env bash
# One entry point for building devhost on Debian bookworm.
#
#   scripts/build.sh run [CONFIG]   install what is missing, build, run CONFIG
#                                   (default: configs/default.ini)
#   scripts/build.sh test           install what is missing, build, run every test
#   scripts/build.sh build          install what is missing, build
#   scripts/build.sh deps           install what is missing, nothing else
#
# Environment: BUILD_DIR (default: build), DEVHOST_WERROR=ON for -Werror,
# DEVHOST_SANITIZE=address|thread, CMAKE_BUILD_TYPE, CTEST_ARGS (extra ctest
# arguments, e.g. "-L unit"), BUILD_TARGETS (build only these targets),
# CMAKE_ARGS (more -D options for the configure step).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
build_dir=${BUILD_DIR:-build}
jobs=$(nproc 2>/dev/null || echo 2)

# Debian packages the build and the tests need. The QEMU test installs its
# own (large) packages when it runs.
packages=(
  build-essential cmake pkg-config
  libboost-dev libboost-program-options-dev
  libspdlog-dev libfmt-dev catch2 nlohmann-json3-dev libgcrypt20-dev libsystemd-dev
  libmosquitto-dev mosquitto mosquitto-clients openssl prometheus-cpp-dev curl
  util-linux e2fsprogs socat procps systemd
  abigail-tools python3 universal-ctags
  man-db groff-base
)

install_missing() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "devhost: missing packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
    exit 2
  fi
  echo "devhost: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

build() {
  install_missing
  # shellcheck disable=SC2086 # CMAKE_ARGS: one option a word
  cmake -S . -B "$build_dir" \
    -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-RelWithDebInfo}" \
    -DDEVHOST_WERROR="${DEVHOST_WERROR:-OFF}" \
    -DDEVHOST_SANITIZE="${DEVHOST_SANITIZE:-}" ${CMAKE_ARGS:-} >&2
  # shellcheck disable=SC2086
  cmake --build "$build_dir" -j "$jobs" ${BUILD_TARGETS:+--target $BUILD_TARGETS} >&2
}

case "${1:-}" in
  run)
    shift
    build
    exec "$build_dir/bin/devhost" run "$@"
    ;;
  test)
    build
    cd "$build_dir"
    # shellcheck disable=SC2086
    exec ctest --output-on-failure -j "$jobs" ${CTEST_ARGS:-}
    ;;
  build)
    build
    ;;
  deps)
    # For scripts that build in a directory of their own (fuzz.sh,
    # bad-input-coverage.sh): `build` would also reconfigure build/ with
    # their environment (e.g. DEVHOST_WERROR=OFF after CI's -Werror build),
    # which recompiles all of it for nothing.
    install_missing
    ;;
  *)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
