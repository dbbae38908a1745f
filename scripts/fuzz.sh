#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) and runs each for a
# bounded time on a copy of its corpus, one target per core at a time. A crash
# fails the script; the input that crashed is copied into
# tests/fuzz/corpus/<target>/ so that it becomes a regression test of the
# normal suite once committed.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
#
# Environment: BUILD_DIR (default build-fuzz; one configured with
# DEVHOST_FUZZ=ON is used as it is), DEVHOST_FUZZ_JOBS (targets at a time,
# default: the number of cores).
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
# A build dir already configured for fuzzing is used as it is: CI's ASan stage
# builds with clang and DEVHOST_FUZZ=ON in build-asan (Debug), so the fuzz
# targets come from that build and nothing is compiled twice (.ci/run).
# Otherwise a fuzz build of its own (default build-fuzz, RelWithDebInfo).
if ! grep -qx 'DEVHOST_FUZZ:BOOL=ON' "$build_dir/CMakeCache.txt" 2>/dev/null; then
  CC=clang CXX=clang++ cmake -S . -B "$build_dir" -DDEVHOST_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
fi
targets=$(cd tests/fuzz && ls *_fuzz.cpp | sed 's/_fuzz.cpp$//')
cmake --build "$build_dir" -j "$(nproc)" --target $(for t in $targets; do printf '%s_fuzzer ' "$t"; done) >&2

# Fuzzes target $1 for $seconds on a copy of its corpus; its log, any
# reproducer and its status (0 or 1) go to directory $2.
fuzz_one() {
  local t=$1 dir=$2 work
  work=$(mktemp -d)
  cp -r "tests/fuzz/corpus/$t/." "$work/" 2>/dev/null || true
  if "$build_dir/fuzz/${t}_fuzzer" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
       -artifact_prefix="$dir/" "$work" > "$dir/log" 2>&1; then
    echo 0 > "$dir/status"
  else
    echo 1 > "$dir/status"
  fi
  rm -rf "$work"
}

# A fuzzer is one process on one core: run as many at once as there are
# cores (DEVHOST_FUZZ_JOBS), each still for its whole $seconds.
parallel=${DEVHOST_FUZZ_JOBS:-$(nproc)}
declare -A out
for t in $targets; do
  while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n || true; done
  out[$t]=$(mktemp -d)
  echo "== fuzzing $t for ${seconds}s"
  fuzz_one "$t" "${out[$t]}" &
done
wait

status=0
for t in $targets; do
  artifacts=${out[$t]}
  if [ "$(cat "$artifacts/status" 2>/dev/null)" != 0 ]; then
    echo "!! $t: crash; reproducer(s) copied into tests/fuzz/corpus/$t/:" >&2
    tail -n 30 "$artifacts/log" >&2
    for f in "$artifacts"/crash-* "$artifacts"/leak-* "$artifacts"/timeout-*; do
      [ -e "$f" ] && cp "$f" "tests/fuzz/corpus/$t/" && echo "   $(basename "$f")" >&2
    done
    status=1
  else
    echo "$t: $(grep -E '^(Done|#[0-9]+ +DONE)' "$artifacts/log" | tail -n 1 || true)"
  fi
  rm -rf "$artifacts"
done
exit $status
