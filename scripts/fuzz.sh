#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) and runs each for a
# bounded time on a copy of its corpus. A crash fails the script; the input
# that crashed is copied into tests/fuzz/corpus/<target>/ so that it becomes a
# regression test of the normal suite once committed.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
seconds=${1:-60}
build_dir=${BUILD_DIR:-build-fuzz}

for p in clang libclang-rt-14-dev; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    [ "$(id -u)" -eq 0 ] || { echo "devhost: missing $p; run as root" >&2; exit 2; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >&2 ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >&2; }
  fi
done
scripts/build.sh deps   # the base packages (not `build`: that would reconfigure and rebuild build/)
CC=clang CXX=clang++ cmake -S . -B "$build_dir" -DDEVHOST_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
targets=$(cd tests/fuzz && ls *_fuzz.cpp | sed 's/_fuzz.cpp$//')
cmake --build "$build_dir" -j "$(nproc)" --target $(for t in $targets; do printf '%s_fuzzer ' "$t"; done) >&2

status=0
for t in $targets; do
  work=$(mktemp -d)
  cp -r "tests/fuzz/corpus/$t/." "$work/" 2>/dev/null || true
  artifacts=$(mktemp -d)
  echo "== fuzzing $t for ${seconds}s"
  if ! "$build_dir/fuzz/${t}_fuzzer" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
        -artifact_prefix="$artifacts/" "$work" > "$artifacts/log" 2>&1; then
    echo "!! $t: crash; reproducer(s) copied into tests/fuzz/corpus/$t/:" >&2
    tail -n 30 "$artifacts/log" >&2
    for f in "$artifacts"/crash-* "$artifacts"/leak-* "$artifacts"/timeout-*; do
      [ -e "$f" ] && cp "$f" "tests/fuzz/corpus/$t/" && echo "   $(basename "$f")" >&2
    done
    status=1
  else
    grep -E '^(Done|#[0-9]+ +DONE)' "$artifacts/log" | tail -n 1 || true
  fi
  rm -rf "$work" "$artifacts"
done
exit $status
