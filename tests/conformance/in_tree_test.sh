#!/usr/bin/env bash
# Every in-tree plugin passes devhost-conformance: loop on its own loop
# devices, raw on two disk-image files, serial on two pseudo-terminals from
# socat, parallel on a devhost-vdev parallel-port peer, filterport on two
# devhost-vdev filterport-echo servers; removed: the peer killed (--unplug).
# Without a device, parallel and filterport skip what needs one, saying so.
#   in_tree_test.sh DEVHOST-CONFORMANCE PLUGIN-DIR DEVHOST-VDEV
set -u
tool=$1 dir=$2 vdev=$3
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

run parallel-no-device 0 "# SKIP class 'parallel' needs a device: give --device PATH" "$dir/parallel.so"
run filterport-no-device 0 "# SKIP class 'filterport' needs a device: give --device PATH" "$dir/filterport.so"

# peer NAME KIND ARGS...: starts a devhost-vdev peer; its path (READY PATH)
# in peer_path, its pid in peer_pid.
peer() {
  local name=$1
  shift
  "$vdev" "$@" > "$tmp/$name.out" 2> "$tmp/$name.err" &
  peer_pid=$!
  pids+=("$peer_pid")
  for _ in $(seq 100); do grep -q '^READY ' "$tmp/$name.out" && break; sleep 0.05; done
  peer_path=$(sed -n 's/^READY //p' "$tmp/$name.out")
  [ -n "$peer_path" ] || { echo "FAILED: devhost-vdev $*: no READY line"; cat "$tmp/$name.err"; exit 1; }
}
peer port parallel-port --name="conformance-$$"
run parallel 0 "^ok 10 - removed \(MUST-10\)$" "$dir/parallel.so" --device "$peer_path" --unplug "kill $peer_pid"
peer f1 filterport-echo --name="conformance-$$-1"
first=$peer_path first_pid=$peer_pid
peer f2 filterport-echo --name="conformance-$$-2"
run filterport 0 "^ok 10 - removed \(MUST-10\)$" "$dir/filterport.so" --device "$first" --device "$peer_path" \
  --unplug "kill $first_pid"

[ "$failures" -eq 0 ] || exit 1
echo "every in-tree plugin passes"
