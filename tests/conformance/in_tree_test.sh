#!/usr/bin/env bash
# Every in-tree plugin passes devhost-conformance: loop on its own loop
# devices, raw on two disk-image files, serial on two pseudo-terminals from
# socat (removed: socat killed under a waiting read), parallel and
# filterport without a device (what needs one is skipped, saying so).
#   in_tree_test.sh DEVHOST-CONFORMANCE PLUGIN-DIR
set -u
tool=$1 dir=$2
failures=0
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT

# run NAME WANT-EXIT REGEX ARGS...: passes when the exit status is WANT-EXIT,
# no test is "not ok" and the output matches REGEX.
run() {
  local name=$1 want=$2 regex=$3 out rc
  shift 3
  out=$(timeout 240 "$tool" "$@" 2>&1)
  rc=$?
  if [ "$rc" != "$want" ] || grep -q '^not ok' <<<"$out" || ! grep -Eq -- "$regex" <<<"$out"; then
    echo "FAILED: $name: exit $rc (want $want), or a test not ok, or no /$regex/"
    sed 's/^/    /' <<<"$out"
    failures=$((failures + 1))
  else
    echo "ok: $name: exit $rc, $(tail -n 1 <<<"$out")"
  fi
}

run loop 0 "^ok 8 - cancel \(MUST-6\)$" "$dir/loop.so"

truncate -s 1M "$tmp/a.img" "$tmp/b.img"
run raw 0 "^ok 5 - transfer-bounds \(MUST-5\)$" "$dir/raw.so" --device "$tmp/a.img" --device "$tmp/b.img" \
  --option allow-write=true

if command -v socat >/dev/null; then
  for n in 1 2; do
    socat "pty,raw,echo=0,link=$tmp/dev$n" "pty,raw,echo=0,link=$tmp/peer$n" &
    pids+=($!)
  done
  for _ in $(seq 50); do [ -e "$tmp/dev1" ] && [ -e "$tmp/dev2" ] && break; sleep 0.1; done
  run serial 0 "^ok 10 - removed \(MUST-10\)$" "$dir/serial.so" --device "$(readlink -f "$tmp/dev1")" \
    --device "$(readlink -f "$tmp/dev2")" --unplug "kill ${pids[0]}"
else
  echo "serial: not run, socat is not installed"
fi

run parallel 0 "# SKIP class 'parallel' needs a device: give --device PATH" "$dir/parallel.so"
run filterport 0 "# SKIP class 'filterport' needs a device: give --device PATH" "$dir/filterport.so"

[ "$failures" -eq 0 ] || exit 1
echo "every in-tree plugin passes"
