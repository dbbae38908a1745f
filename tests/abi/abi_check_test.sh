#!/usr/bin/env bash
# scripts/abi-check.sh must pass on the tree and must catch what the
# append-only promise forbids. Each case copies the public headers, changes
# one thing, and runs the check on the copy.
set -uo pipefail
src=${1:?usage: abi_check_test.sh SOURCE_DIR}
check="$src/scripts/abi-check.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

expect() { # WANT(pass|fail) NAME SED-EXPR FILE
  local want=$1 name=$2 expr=$3 file=$4
  rm -rf "$work/include" && cp -r "$src/sdk/include" "$work/include"
  if [ -n "$expr" ]; then
    cp "$work/include/devhost/$file" "$work/before"
    sed -i -e "$expr" "$work/include/devhost/$file"
    if cmp -s "$work/before" "$work/include/devhost/$file"; then
      echo "not ok - $name: the edit did not apply"; failures=$((failures + 1)); return
    fi
  fi
  local got=pass
  "$check" --include "$work/include" > "$work/out" 2>&1 || got=fail
  if [ "$got" = "$want" ]; then
    echo "ok - $name ($want)"
  else
    echo "not ok - $name: expected $want, got $got"; sed 's/^/#   /' "$work/out"
    failures=$((failures + 1))
  fi
}

expect pass "the headers as they are" "" plugin.h
expect pass "a member appended to devhost_open_params" \
  's|^    const devhost_host_device \*host_device; /\* pass to services->log \*/$|&\n    uint64_t appended;|' plugin.h
expect fail "a member inserted in the middle of devhost_open_params" \
  's|^    uint32_t flags;                   /\* DEVHOST_OPEN_\* \*/$|&\n    uint32_t inserted;|' plugin.h
expect fail "a member of devhost_transfer removed" \
  '/^    uint64_t offset;/d' plugin.h
expect fail "a status renumbered" 's|DEVHOST_E_CANCELLED = -12|DEVHOST_E_CANCELLED = -13|' plugin.h
expect pass "a status appended" \
  's|^    DEVHOST_E_HOST_FAILED = -13 /\*|    DEVHOST_E_HOST_FAILED = -13, DEVHOST_E_APPENDED = -14 /*|' plugin.h
expect fail "a log level renumbered" 's|DEVHOST_LOG_ERROR = 4|DEVHOST_LOG_ERROR = 5|' plugin.h
expect fail "a port API signature changed" \
  's|^DEVHOST_PORT_API void devhost_port_close(devhost_port \*port);|DEVHOST_PORT_API void devhost_port_close(devhost_port *port, int how);|' port.h
expect fail "a wire constant changed" 's|#define DEVHOST_PORT_HEADER_SIZE 20|#define DEVHOST_PORT_HEADER_SIZE 24|' port_wire.h
expect fail "a vport command renumbered" 's|VPORT_CMD_READ = 10|VPORT_CMD_READ = 11|' vport_wire.h
expect pass "a vport status appended" \
  's|^    VPORT_E_UNSUPPORTED = 6$|    VPORT_E_UNSUPPORTED = 6,\n    VPORT_E_APPENDED = 7|; s|#define VPORT_STATUS_LAST VPORT_E_UNSUPPORTED|#define VPORT_STATUS_LAST VPORT_E_APPENDED|' vport_wire.h
expect fail "a vport protocol version without its baseline" \
  's|#define VPORT_PROTOCOL_VERSION 1|#define VPORT_PROTOCOL_VERSION 2|' vport_wire.h

echo "$failures failed"
[ "$failures" -eq 0 ]
