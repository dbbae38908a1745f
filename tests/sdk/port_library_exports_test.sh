#!/usr/bin/env bash
# libdevhost-port.so exports exactly the functions its headers declare
# (DEVHOST_PORT_API in port.h and port_wire.h), each under a version node of
# sdk/port/libdevhost-port.map, and its SONAME and file name agree.
set -uo pipefail
lib=${1:?usage: port_library_exports_test.sh LIBRARY SOURCE_DIR}
src=${2:?usage: port_library_exports_test.sh LIBRARY SOURCE_DIR}
failures=0
fail() { echo "not ok - $*"; failures=$((failures + 1)); }

real=$(readlink -f "$lib")
declared=$(sed -nE 's/^DEVHOST_PORT_API [^(]*[ *]([a-z_0-9]+)\(.*/\1/p' \
  "$src/sdk/include/devhost/port.h" "$src/sdk/include/devhost/port_wire.h" | sort)
exported=$(nm -D --defined-only "$real" | awk '{print $3}' | sed 's/@.*//' | grep -v '^DEVHOST_PORT_' | sort)
[ -n "$declared" ] || fail "no DEVHOST_PORT_API function found in the headers"
if [ "$declared" = "$exported" ]; then
  echo "ok - exports exactly the $(echo "$declared" | wc -l) declared functions"
else
  fail "exports differ from the declared functions:"
  diff <(echo "$declared") <(echo "$exported") | sed 's/^/#   /'
fi

unversioned=$(objdump -T "$real" | awk '/ DF .text/ && $0 !~ /DEVHOST_PORT_[0-9]/ {print $NF}')
[ -z "$unversioned" ] && echo "ok - every export carries a version node" ||
  fail "exports without a DEVHOST_PORT_N version: $unversioned"

soname=$(objdump -p "$real" | awk '$1 == "SONAME" {print $2}')
file=$(basename "$real")
case "$file" in
  "$soname".*) echo "ok - file $file agrees with SONAME $soname" ;;
  *) fail "file $file does not start with its SONAME $soname" ;;
esac

echo "$failures failed"
[ "$failures" -eq 0 ]
