#!/bin/sh
# Builds devhost and its benchmarks in Release (in build-bench/, or
# $DEVHOST_BENCH_BUILD_DIR; one already configured with DEVHOST_BUILD_BENCH=ON
# is built as it is configured) and runs every comparison against its plain
# syscall baseline; see bench/README.md.
#
#   bench/run.sh [--smoke] [--json FILE] [--reps N] [--only GROUP,...] [--cpu N]
#
# --cpu N: run every process of the benchmark on CPU N only (taskset), which
# steadies the figures on a machine shared with other work.
# --smoke: tiny counts and two repetitions, seconds in all (what CI runs);
# it checks that every benchmark still builds and works, never its timing.
# The figures go to bench/results.json (smoke: BUILD_DIR/bench-smoke.json)
# unless --json says otherwise.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(dirname "$here")
build_dir=${DEVHOST_BENCH_BUILD_DIR:-$source_dir/build-bench}
jobs=${DEVHOST_BENCH_JOBS:-2}

smoke=false
json=
pass=
cpu=
while [ $# -gt 0 ]; do
    case $1 in
        --smoke) smoke=true; pass="$pass --smoke" ;;
        --json) [ $# -ge 2 ] || { echo "run.sh: --json needs a file" >&2; exit 2; }
                json=$2; shift ;;
        --cpu) [ $# -ge 2 ] || { echo "run.sh: --cpu needs a CPU number" >&2; exit 2; }
               cpu=$2; shift ;;
        --reps|--only) [ $# -ge 2 ] || { echo "run.sh: $1 needs a value" >&2; exit 2; }
                pass="$pass $1 $2"; shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$json" ]; then
    if $smoke; then json=$build_dir/bench-smoke.json; else json=$here/results.json; fi
fi

# A build dir already configured with DEVHOST_BUILD_BENCH=ON is used as it
# is: CI's smoke run builds the benchmarks in its -Werror build (build/),
# which has compiled devhost and the plugins already, instead of compiling
# all of them a second time in Release (.ci/run). Timed runs keep their own
# Release build (build-bench/).
if ! grep -qx 'DEVHOST_BUILD_BENCH:BOOL=ON' "$build_dir/CMakeCache.txt" 2>/dev/null; then
    cmake -S "$source_dir" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release \
        -DDEVHOST_BUILD_BENCH=ON -DDEVHOST_BUILD_TESTS=OFF >/dev/null
fi
# Every plugin (one folder each under plugins/): start-up loads them all.
plugins=$(for d in "$source_dir"/plugins/*/CMakeLists.txt; do basename "$(dirname "$d")"; done)
# shellcheck disable=SC2086
cmake --build "$build_dir" -j"$jobs" --target devhost-bench devhost-bench-launch devhost \
    devhost_configs $plugins >/dev/null

echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
pin=
if [ -n "$cpu" ]; then
    command -v taskset >/dev/null || { echo "run.sh: --cpu needs taskset (util-linux)" >&2; exit 2; }
    pin="taskset -c $cpu"
    echo "pinned to CPU $cpu"
fi
# shellcheck disable=SC2086
$pin "$build_dir/bin/devhost-bench" $pass --json "$json" --work "$build_dir/bench-work"
