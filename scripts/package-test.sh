#!/usr/bin/env bash
# Tests the Debian packages scripts/package.sh built, as CI does: lintian,
# the hardening of every binary, then as root on this machine: dpkg -i,
# the installed host, the conffile, devhost.service (systemd-analyze verify,
# with the man pages it names installed), the SDK's pkg-config file, and the plugin
# template copied from the installed SDK, built against it and tested with
# its own ctest (with devhost-conformance on the built plugin), the
# template README's walkthrough followed literally (walkthrough-test.sh:
# copy, rename the class, build, conformance, install, listed, a config
# drives it); finally dpkg --purge, on failure too.
#
#   scripts/package-test.sh PACKAGE_DIR
#
# Refuses to start when a devhost package is already installed (it would
# purge it). Installs lintian and devscripts (hardening-check) when missing.
set -euo pipefail
dir=${1:?usage: package-test.sh PACKAGE_DIR}
dir=$(cd "$dir" && pwd)
scripts=$(cd "$(dirname "$0")" && pwd)
packages=(devhost libdevhost-port1 devhost-dev)
debs=()
for p in "${packages[@]}"; do
  deb=$(ls "$dir/${p}_"*.deb)
  debs+=("$deb")
done
[ "$(id -u)" -eq 0 ] || { echo "package-test.sh: run as root (it installs the packages)" >&2; exit 2; }

tools=(lintian devscripts cmake gcc pkg-config file man-db systemd)
missing=()
for p in "${tools[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

step() { echo "-- $*"; }

step "lintian (errors fail; every tag is shown)"
lintian --fail-on error --display-info --tag-display-limit 0 "${debs[@]}"

work=$(mktemp -d)
# PIE, stack protector, _FORTIFY_SOURCE, RELRO and BIND_NOW must be there
# (cmake/DevhostHardening.cmake). Control-flow protection is not checked: the
# code is compiled with -fcf-protection, but bookworm's C start files (crti.o)
# carry no IBT/SHSTK property, so the linker leaves it off every program and
# library built on bookworm; no flag of ours can add it.
step "hardening-check: every ELF file of devhost and libdevhost-port1"
for deb in "${debs[@]:0:2}"; do
  dpkg-deb -x "$deb" "$work/unpacked"
done
failed=0
while IFS= read -r -d '' f; do
  if file -b "$f" | grep -q '^ELF'; then
    hardening-check --quiet --nocfprotection "$f" || failed=1
  fi
done < <(find "$work/unpacked" -type f -print0)
rm -rf "$work/unpacked"
[ "$failed" -eq 0 ] || { echo "hardening-check failed" >&2; exit 1; }

for p in "${packages[@]}"; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    echo "package-test.sh: $p is already installed; remove it first (this test purges what it installs)" >&2
    rm -rf "$work"
    exit 2
  fi
done
cleanup() {
  local status=$?
  rm -f /usr/lib/devhost/plugins/acme_counter.so  # the walkthrough's plugin
  step "dpkg --purge ${packages[*]}"
  dpkg --purge "${packages[@]}" > /dev/null || status=1
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

step "dpkg -i ${debs[*]##*/}"
dpkg -i "${debs[@]}"

step "the installed host: its plugins, the conffile, a config check"
plugins=$(devhost plugins)
for class in loop serial parallel raw filterport; do
  grep -q "^$class: " <<< "$plugins" || { echo "devhost plugins does not list $class"; exit 1; }
done
dpkg-query -W -f='${Conffiles}\n' devhost | grep -q '^ /etc/devhost/devhost.ini ' ||
  { echo "/etc/devhost/devhost.ini is not a conffile of devhost"; exit 1; }
devhost check /etc/devhost/devhost.ini
man -w devhost devhost.ini devhost-plugin devhost-vdev devhost-filefilter devhost-conformance > /dev/null

step "the installed service: devhost.service verified as installed, its tmpfiles.d entry"
[ -f /lib/systemd/system/devhost.service ] || { echo "devhost.service is not in /lib/systemd/system"; exit 1; }
grep -qx 'ExecStart=/usr/bin/devhost serve /etc/devhost/devhost.ini' /lib/systemd/system/devhost.service ||
  { echo "devhost.service does not start /usr/bin/devhost serve /etc/devhost/devhost.ini"; exit 1; }
verify=$(systemd-analyze verify /lib/systemd/system/devhost.service 2>&1) ||
  { echo "systemd-analyze verify failed: $verify"; exit 1; }
[ -z "$verify" ] || { echo "systemd-analyze verify: $verify"; exit 1; }
[ -f /usr/lib/tmpfiles.d/devhost.conf ] || { echo "tmpfiles.d/devhost.conf is not in /usr/lib/tmpfiles.d"; exit 1; }

step "the SDK: pkg-config and the plugin template"
[ "$(pkg-config --variable=plugindir devhost)" = /usr/lib/devhost/plugins ] ||
  { echo "pkg-config: plugindir is not /usr/lib/devhost/plugins"; exit 1; }
pkg-config --variable=abi_version devhost | grep -Eq '^[0-9]+\.[0-9]+$'
cp -r /usr/share/devhost/plugin-template "$work/my-plugin"
cmake -S "$work/my-plugin" -B "$work/build" > "$work/configure.log" || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build"
(cd "$work/build" && ctest --output-on-failure --no-tests=error) | tee "$work/ctest.log"
grep -q "my_plugin_conformance .*Passed" "$work/ctest.log" ||
  { echo "the template's conformance test (devhost-conformance) did not run and pass"; exit 1; }
! grep -q "(Skipped)" "$work/ctest.log" || { echo "a template test was skipped"; exit 1; }
# Installed where the host looks, by default (staged: dpkg owns /usr).
DESTDIR="$work/stage" cmake --install "$work/build" > /dev/null
[ -f "$work/stage/usr/lib/devhost/plugins/my_plugin.so" ] ||
  { echo "the template does not install into /usr/lib/devhost/plugins"; exit 1; }
step "the template README's walkthrough, literally"
"$scripts/walkthrough-test.sh" /usr/share/devhost/plugin-template/README.md "$work/walkthrough"
step "packages passed"
