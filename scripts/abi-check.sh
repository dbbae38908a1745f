#!/usr/bin/env bash
# The append-only promise of the public headers, checked by a tool.
#
#   scripts/abi-check.sh            compare the headers with the baseline (CI)
#   scripts/abi-check.sh --include DIR
#                                   compare the headers in DIR/devhost instead
#                                   (tests/abi/abi_check_test.sh uses it)
#   scripts/abi-check.sh --update   write the baseline of the headers' own
#                                   version (once, when a minor is released;
#                                   see sdk/abi/README.md)
#
# Three checks; the first two against every baseline in sdk/abi/ (VERSION is
# MAJOR.MINOR):
#  1. Layouts: sdk/abi/anchor.c and port_anchor.c name every struct and
#     function of plugin.h, port.h and port_wire.h; built with debug info
#     from the current headers, `abidiff` compares them with the committed
#     `abidw` dumps (plugin-VERSION.abi, port-VERSION.abi), with no
#     suppression and its "harmless" changes shown too. Its report passes
#     only if every line of it is one sdk/abi/append-only.awk allows:
#       PASS  members added after the end of a struct (at an offset at or
#             past the baseline's size, the size growing), a hook slot
#             appended to devhost_hooks the same way, enumerators added to
#             a named enum, new anchor functions (a new type or library
#             function), and the path abidiff prints down to each of these.
#       FAIL  anything else: a member inserted before the end, removed,
#             renamed, moved, resized or given another type (signedness,
#             width, const, a typedef's name, a function pointer's return
#             or parameters: also when abidiff calls it harmless or
#             compatible); a member added inside the baseline's size (its
#             old tail padding, where an old writer's struct_size already
#             covers it); a size grown with nothing appended; a changed
#             signature of a port library function; an enumerator removed
#             or renumbered; a function removed; abidiff failing or calling
#             a change incompatible; and any line the rules do not know.
#     Each failing line is printed with the struct and member it is in,
#     then abidiff's whole report.
#  2. Values: every DEVHOST_* constant of the headers (status codes, ops,
#     option types, flags, wire constants and the like) printed as NAME VALUE;
#     each line of constants-VERSION.txt must still be there unchanged. New constants
#     pass. The version minor and the *_LAST markers may move.
#  3. The virtual parallel port protocol (vport_wire.h, versioned by its own
#     HELLO, not by the ABI): every VPORT_* constant, against
#     vport-wire-N.txt for the protocol version N the header speaks, as in 2.
#     VPORT_STATUS_LAST and VPORT_MODE_COUNT may move.
#
# Needs gcc, awk and Debian's abigail-tools (installed here when missing, as root).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
abi=sdk/abi
include=sdk/include
update=0
while [ $# -gt 0 ]; do
  case "$1" in
    --update) update=1 ;;
    --include) # relative to where the script was run from
      include=$(cd "${2:?--include needs a directory}" 2>/dev/null && pwd) ||
        { echo "abi-check: --include $2: no such directory" >&2; exit 2; }
      shift ;;
    *) echo "abi-check: unknown argument '$1' (see the top of $0)" >&2; exit 2 ;;
  esac
  shift
done
cd "$here"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! command -v abidiff >/dev/null || ! command -v abidw >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "abi-check: abigail-tools is missing; run as root or: sudo apt-get install abigail-tools" >&2
    exit 2
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends abigail-tools >&2 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends abigail-tools >&2; }
fi

# Constants whose value may change from one minor to the next.
movable='^DEVHOST_(ABI_VERSION|ABI_VERSION_MINOR|[A-Z_]*_LAST) '

build_anchor() { # SOURCE OUTPUT
  gcc -std=gnu99 -g -O0 -shared -fPIC -fvisibility=hidden -I"$include" "$1" -o "$2"
}

values_of() { # HEADERS NAMES-FILE: prints NAME VALUE for each name, sorted
  {
    printf '%s\n' "$1" '#include <stdio.h>'
    printf '%s\n' 'static void s(const char *n, const char *v) { printf("%s \"%s\"\n", n, v); }'
    printf '%s\n' 'static void i(const char *n, long long v) { printf("%s %lld\n", n, v); }'
    printf '%s\n' '#define P(x) _Generic((x), char *: s, const char *: s, default: i)(#x, (x))'
    printf '%s\n' 'int main(void) {'
    sed 's/.*/    P(&);/' "$2"
    printf '%s\n' '    return 0;' '}'
  } > "$work/values.c"
  gcc -std=gnu99 -I"$include" "$work/values.c" -o "$work/values"
  "$work/values" | sort
}

constants() { # prints NAME VALUE for every DEVHOST_* constant, sorted
  local headers='#include <devhost/plugin.h>
#include <devhost/port.h>
#include <devhost/port_wire.h>'
  {
    # Enumerators of every enum, named or not.
    grep -ohE '^[[:space:]]*DEVHOST_[A-Z0-9_]+[[:space:]]*=' "$include"/devhost/{plugin,port,port_wire}.h |
      tr -d ' \t='
    # Object-like macros with a value (not function-like, not empty guards,
    # not attributes or the entry point's identifier).
    printf '%s\n' "$headers" | gcc -std=gnu99 -dM -E -I"$include" -x c - |
      sed -nE 's/^#define (DEVHOST_[A-Z0-9_]+) +[^ ].*$/\1/p' |
      grep -vxE 'DEVHOST_EXPORT|DEVHOST_PORT_API|DEVHOST_ENTRY_POINT'
  } | sort -u > "$work/names"
  values_of "$headers" "$work/names"
}

vport_constants() { # prints NAME VALUE for every VPORT_* constant of vport_wire.h, sorted
  local headers='#include <devhost/vport_wire.h>'
  {
    # Enumerators (several may share a line), and macros with a value.
    grep -ohE '\bVPORT_[A-Z0-9_]+[[:space:]]*=[^=]' "$include/devhost/vport_wire.h" | sed -E 's/[[:space:]]*=.*$//'
    printf '%s\n' "$headers" | gcc -std=gnu99 -dM -E -I"$include" -x c - |
      sed -nE 's/^#define (VPORT_[A-Z0-9_]+) +[^ ].*$/\1/p'
  } | sort -u > "$work/vport_names"
  values_of "$headers" "$work/vport_names"
}

build_anchor "$abi/anchor.c" "$work/plugin.so"
build_anchor "$abi/port_anchor.c" "$work/port.so"
constants > "$work/constants.txt"
vport_constants > "$work/vport.txt"
vport_version=$(sed -nE 's/^VPORT_PROTOCOL_VERSION ([0-9]+)$/\1/p' "$work/vport.txt")
# Markers that move when a value is appended to their list.
vport_movable='^VPORT_(STATUS_LAST|MODE_COUNT) '

if [ "$update" = 1 ]; then
  version=$(sed -nE 's/^DEVHOST_ABI_VERSION_(MAJOR|MINOR) ([0-9]+)$/\2/p' "$work/constants.txt" | paste -sd.)
  abidw --no-corpus-path "$work/plugin.so" > "$abi/plugin-$version.abi"
  abidw --no-corpus-path "$work/port.so" > "$abi/port-$version.abi"
  grep -vE "$movable" "$work/constants.txt" > "$abi/constants-$version.txt"
  echo "abi-check: baseline $version written to $abi/"
  if [ ! -e "$abi/vport-wire-$vport_version.txt" ]; then
    grep -vE "$vport_movable" "$work/vport.txt" > "$abi/vport-wire-$vport_version.txt"
    echo "abi-check: vport protocol $vport_version baseline written to $abi/"
  fi
  exit 0
fi

failed=0
check_values() { # LABEL BASELINE CURRENT MOVABLE: each line of BASELINE still in CURRENT
  local label=$1 baseline=$2 current=$3 movable=$4 missing added
  missing=$(comm -23 "$baseline" "$current")
  if [ -n "$missing" ]; then
    echo "abi-check: $label: constants removed or changed (the baseline's value shown):"
    printf '%s\n' "$missing" | sed 's/^/  /'
    failed=1
  else
    added=$(comm -13 "$baseline" <(grep -vE "$movable" "$current") | wc -l)
    echo "abi-check: $label: constants: every value unchanged ($added added since)"
  fi
}

layouts_appended() { # LABEL BASELINE.abi LIBRARY: abidiff's report holds only additions
  local label=$1 status=0
  abidiff --no-default-suppression --harmless --no-show-locs "$2" "$3" > "$work/report" || status=$?
  # 0: no change; 4: a change, judged below. Anything else is an error (1, 2)
  # or a change abidiff itself calls incompatible (8, 12).
  if [ "$status" -ne 0 ] && [ "$status" -ne 4 ]; then
    echo "abi-check: $label: abidiff exit $status (an error, or a change it calls incompatible)"
    awk -v label="$label" -f "$abi/append-only.awk" "$work/report" || true
    return 1
  fi
  awk -v label="$label" -f "$abi/append-only.awk" "$work/report"
}

check_baseline() { # VERSION
  local version=$1 lib
  for lib in plugin port; do
    if layouts_appended "$version: $lib" "$abi/$lib-$version.abi" "$work/$lib.so"; then
      echo "abi-check: $version: $lib: layouts and signatures as in the baseline, or only appended to"
    else
      echo "abi-check: $version: $lib: a change the append-only rule does not allow; the report of $(abidiff --version):"
      sed 's/^/  /' "$work/report"
      failed=1
    fi
  done
  check_values "$version" "$abi/constants-$version.txt" "$work/constants.txt" "$movable"
}
baselines=$(find "$abi" -maxdepth 1 -name 'constants-*.txt' | sed -E 's|.*/constants-(.*)\.txt$|\1|' | sort -V)
[ -n "$baselines" ] || { echo "abi-check: no baseline in $abi/" >&2; exit 2; }
for version in $baselines; do
  check_baseline "$version"
done

# vport_wire.h: against the baseline of the protocol version it speaks (a
# new version is a new protocol, refused by the other side's HELLO).
vport_baseline="$abi/vport-wire-$vport_version.txt"
if [ ! -e "$vport_baseline" ]; then
  echo "abi-check: vport protocol $vport_version has no baseline $vport_baseline (write it with --update)"
  failed=1
else
  check_values "vport protocol $vport_version" "$vport_baseline" "$work/vport.txt" "$vport_movable"
fi
exit "$failed"
