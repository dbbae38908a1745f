#!/usr/bin/env bash
# Builds devhost's Debian packages (devhost, libdevhost-port1, devhost-dev)
# into a directory, with CPack's DEB generator (cmake/DevhostPackaging.cmake).
#
#   scripts/package.sh [OUT_DIR]      default OUT_DIR: BUILD_DIR/packages
#
# Environment: BUILD_DIR (default: build-deb). An existing build directory is
# reused (CI passes the one its tests ran in, so nothing is compiled twice);
# it is configured with CMAKE_INSTALL_PREFIX=/usr, Debian's layout (which
# changes no compiled file), and built (a no-op when it is up to date).
# Prints the packages' paths, one a line, on stdout.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
build_dir=${BUILD_DIR:-build-deb}
out_dir=${1:-$build_dir/packages}
jobs=$(nproc 2>/dev/null || echo 2)

# What CPack's DEB generator runs besides CMake: dpkg-shlibdeps (dpkg-dev),
# file and readelf (binutils) to find the libraries, strip, gzip.
packages=(dpkg-dev file binutils gzip)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "package.sh: missing packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
    exit 2
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# The changelog's version is the packages' version (native packages).
changelog_version=$(sed -n '1s/^devhost (\([^)]*\)).*/\1/p' packaging/deb/changelog)
project_version=$(sed -n 's/^project(devhost VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
if [ "$changelog_version" != "$project_version" ]; then
  echo "package.sh: packaging/deb/changelog's latest entry is $changelog_version, the project is $project_version: add an entry" >&2
  exit 2
fi

# A new build directory is made as the README's build makes one (the build
# dependencies installed, RelWithDebInfo, the hardening flags on).
[ -f "$build_dir/CMakeCache.txt" ] || BUILD_DIR=$build_dir scripts/build.sh build >&2
cmake -S . -B "$build_dir" -DCMAKE_INSTALL_PREFIX=/usr >&2
cmake --build "$build_dir" -j "$jobs" >&2

mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)
rm -f "$out_dir"/*.deb
(cd "$build_dir" && cpack -G DEB -B "$out_dir/cpack" >&2)
mv "$out_dir"/cpack/*.deb "$out_dir"/
rm -rf "$out_dir/cpack"
ls "$out_dir"/*.deb
