#!/usr/bin/env bash
# scripts/abi-check.sh must pass on the tree and on what a later minor may
# do, and must catch what the append-only promise forbids, saying which
# struct and member (or constant) it refused. Each case copies the public
# headers, edits one of them, and runs the check on the copy.
set -uo pipefail
src=${1:?usage: abi_check_test.sh SOURCE_DIR}
check="$src/scripts/abi-check.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

# expect WANT(pass|fail) NAME FILE [--edit SED]... [--says TEXT]...
# Copies the headers, applies each SED to FILE (each must change it) and runs
# the check on the copy. A failing case must also print each TEXT in one of
# the check's own lines ("abi-check: ..."), naming what it refused.
expect() {
  local want=$1 name=$2 file=$3 says=() expr
  shift 3
  rm -rf "$work/include" && cp -r "$src/sdk/include" "$work/include"
  while [ $# -gt 0 ]; do
    case "$1" in
      --edit)
        expr=$2
        cp "$work/include/devhost/$file" "$work/before"
        sed -i -e "$expr" "$work/include/devhost/$file"
        if cmp -s "$work/before" "$work/include/devhost/$file"; then
          echo "not ok - $name: the edit did not apply: $expr"; failures=$((failures + 1)); return
        fi ;;
      --says) says+=("$2") ;;
      *) echo "not ok - $name: bad test argument '$1'"; failures=$((failures + 1)); return ;;
    esac
    shift 2
  done
  local got=pass text
  "$check" --include "$work/include" > "$work/out" 2>&1 || got=fail
  if [ "$got" != "$want" ]; then
    echo "not ok - $name: expected $want, got $got"; sed 's/^/#   /' "$work/out"
    failures=$((failures + 1)); return
  fi
  # Not a pipe into grep -q: it stops reading at its first match, and under
  # pipefail the first grep's SIGPIPE would read as "not said".
  grep '^abi-check: ' "$work/out" > "$work/said" || true
  for text in "${says[@]}"; do
    if ! grep -qF -- "$text" "$work/said"; then
      echo "not ok - $name: $want, but the check did not say: $text"; sed 's/^/#   /' "$work/out"
      failures=$((failures + 1)); return
    fi
  done
  echo "ok - $name ($want)"
}

# In struct NAME of the header, SED's s command for the line before its
# "since v1.2: append here" marker (or v1.1 where the struct keeps that one).
before_marker() { # NAME LINE: a sed expression inserting LINE before NAME's marker
  printf '/^typedef struct %s {/,/^} %s;/s|^    /\\* since v1\\.[12]: append here \\*/$|    %s\\n&|' "$1" "$1" "$2"
}

expect pass "the headers as they are" plugin.h

# What a later minor may do.
expect pass "a member appended to devhost_open_params" plugin.h --edit \
  's|^    const devhost_host_device \*host_device; /\* pass to services->log \*/$|&\n    uint64_t appended;|'
expect pass "a status appended" plugin.h --edit \
  's|^    DEVHOST_E_HOST_FAILED = -13 /\*|    DEVHOST_E_HOST_FAILED = -13, DEVHOST_E_APPENDED = -14 /*|'
expect pass "a future minor: members appended to several structs, a hook slot, a service, an enumerator" plugin.h \
  --edit 's|^#define DEVHOST_ABI_VERSION_MINOR 1$|#define DEVHOST_ABI_VERSION_MINOR 2|' \
  --edit "$(before_marker devhost_option_spec 'uint64_t future_option;')" \
  --edit "$(before_marker devhost_open_params 'uint32_t future_open;')" \
  --edit "$(before_marker devhost_transfer 'uint64_t future_transfer;')" \
  --edit "$(before_marker devhost_plugin_descriptor 'const char *future_descriptor;')" \
  --edit "$(before_marker devhost_host_services 'uint64_t (*future_service)(void);')" \
  --edit "$(before_marker devhost_hooks 'devhost_status (*future_hook)(devhost_device *device, devhost_error *err);')" \
  --edit 's|^    DEVHOST_LOG_ERROR = 4$|    DEVHOST_LOG_ERROR = 4,\n    DEVHOST_LOG_FUTURE = 5|'
expect pass "a future minor of the port library: members appended to its structs" port.h \
  --edit "$(before_marker devhost_port_peer 'uint32_t future_peer;')" \
  --edit "$(before_marker devhost_port_callbacks 'void (*future_callback)(void *user);')" \
  --edit "$(before_marker devhost_port_config 'uint64_t future_config;')"

# Layouts and signatures: each must fail, naming the struct and member.
expect fail "a member inserted in the middle of devhost_open_params" plugin.h --edit \
  's|^    uint32_t flags;                   /\* DEVHOST_OPEN_\* \*/$|&\n    uint32_t inserted;|' \
  --says "struct devhost_open_params: member 'uint32_t inserted' inserted at offset 64 bits" \
  --says "struct devhost_open_params: not an addition: 'const char* device_name' offset changed from 64 to 128"
expect fail "a member of devhost_transfer removed" plugin.h --edit '/^    uint64_t offset;/d' \
  --says "struct devhost_transfer: not an addition: 1 data member deletion:" \
  --says "struct devhost_transfer: not an addition: 'uint64_t offset', at offset 128 (in bits)"
expect fail "a member of devhost_transfer renamed" plugin.h --edit 's|^    size_t out_done; |    size_t out_sent; |' \
  --says "struct devhost_transfer: not an addition: name of 'devhost_transfer::out_done' changed to 'devhost_transfer::out_sent'"
expect fail "devhost_hooks.info gains a leading int parameter" plugin.h --edit \
  's|^    devhost_status (\*info)(devhost_device \*device,|    devhost_status (*info)(int first, devhost_device *device,|' \
  --says "struct devhost_hooks, member info: not an addition: parameter 4 of type 'devhost_error*' was added"
expect fail "devhost_hooks.transfer takes an int32_t for its devhost_transfer *" plugin.h --edit \
  's|^    devhost_status (\*transfer)(devhost_device \*device, devhost_transfer \*xfer,|    devhost_status (*transfer)(devhost_device *device, int32_t xfer,|' \
  --says "struct devhost_hooks, member transfer: not an addition: entity changed from 'devhost_transfer*' to 'typedef int32_t'"
expect fail "devhost_host_services.monotonic_ns returns uint32_t" plugin.h --edit \
  's|^    uint64_t (\*monotonic_ns)(void);|    uint32_t (*monotonic_ns)(void);|' \
  --says "struct devhost_host_services, member monotonic_ns: not an addition: typedef name changed from uint64_t to uint32_t"
expect fail "devhost_option_spec.min becomes int32_t" plugin.h --edit 's|^    int64_t min; |    int32_t min; |' \
  --says "struct devhost_option_spec, member min: not an addition: typedef name changed from int64_t to int32_t"
expect fail "devhost_open_params.timeout_ms becomes unsigned" plugin.h --edit \
  's|^    int32_t timeout_ms;               /\* for the open itself|    uint32_t timeout_ms;              /* for the open itself|' \
  --says "struct devhost_open_params, member timeout_ms: not an addition: typedef name changed from int32_t to uint32_t"
expect fail "devhost_open_params.timeout_ms becomes int16_t (same offsets and size)" plugin.h --edit \
  's|^    int32_t timeout_ms;               /\* for the open itself|    int16_t timeout_ms;               /* for the open itself|' \
  --says "struct devhost_open_params, member timeout_ms: not an addition: typedef name changed from int32_t to int16_t"
expect fail "devhost_transfer.timeout_ms becomes unsigned" plugin.h --edit \
  's|^    int32_t timeout_ms;               /\* for the whole transfer|    uint32_t timeout_ms;              /* for the whole transfer|' \
  --says "struct devhost_transfer, member timeout_ms: not an addition: typedef name changed from int32_t to uint32_t"
expect fail "devhost_open_params.device_name loses its const" plugin.h --edit \
  's|^    const char \*device_name; |    char *device_name; |' \
  --says "struct devhost_open_params, member device_name: not an addition: entity changed from 'const char' to 'char'"
expect fail "a member appended into devhost_control_spec's old tail padding" plugin.h --edit \
  "$(before_marker devhost_control_spec 'uint32_t future_flags;')" \
  --says "struct devhost_control_spec: member 'uint32_t future_flags' inserted at offset 224 bits, the size unchanged: in the baseline's tail padding"
expect fail "a port peer's pid becomes unsigned" port.h --edit 's|^    int32_t pid;$|    uint32_t pid;|' \
  --says "struct devhost_port_peer, member pid: not an addition: typedef name changed from int32_t to uint32_t"
expect fail "a port API signature changed" port.h --edit \
  's|^DEVHOST_PORT_API void devhost_port_close(devhost_port \*port);|DEVHOST_PORT_API void devhost_port_close(devhost_port *port, int how);|' \
  --says "anchor of devhost_port_close: not an addition: parameter 2 of type 'int' was added"

# Values.
expect fail "a status renumbered" plugin.h --edit 's|DEVHOST_E_CANCELLED = -12|DEVHOST_E_CANCELLED = -99|' \
  --says "constants removed or changed"
expect fail "a log level renumbered" plugin.h --edit 's|DEVHOST_LOG_ERROR = 4|DEVHOST_LOG_ERROR = 5|' \
  --says "enum devhost_log_level: not an addition: 1 enumerator change:" --says "constants removed or changed"
expect fail "a wire constant changed" port_wire.h --edit 's|#define DEVHOST_PORT_HEADER_SIZE 20|#define DEVHOST_PORT_HEADER_SIZE 24|' \
  --says "constants removed or changed"
expect fail "a vport command renumbered" vport_wire.h --edit 's|VPORT_CMD_READ = 10|VPORT_CMD_READ = 11|' \
  --says "vport protocol 1: constants removed or changed"
expect pass "a vport status appended" vport_wire.h --edit \
  's|^    VPORT_E_UNSUPPORTED = 6$|    VPORT_E_UNSUPPORTED = 6,\n    VPORT_E_APPENDED = 7|; s|#define VPORT_STATUS_LAST VPORT_E_UNSUPPORTED|#define VPORT_STATUS_LAST VPORT_E_APPENDED|'
expect fail "a vport protocol version without its baseline" vport_wire.h --edit \
  's|#define VPORT_PROTOCOL_VERSION 1|#define VPORT_PROTOCOL_VERSION 2|' \
  --says "vport protocol 2 has no baseline"

echo "$failures failed"
[ "$failures" -eq 0 ]
