#!/usr/bin/env bash
# Proves that the bad-input catalogue (tests/bad-inputs/) reaches every error
# path of every parser: builds devhost, its plugins and devhost-vdev with gcc
# coverage (gcov, part of gcc), runs only the catalogue (bad_inputs_test),
# and lists each error site of the parsers below that the catalogue never
# executed. An error site is a line that produces a refusal (the pattern
# given per file); a site no input can reach (an out-of-memory or system
# error, an internal check) is listed with its reason in
# tests/bad-inputs/coverage-exempt.tsv. Exits 1 if any other site was missed.
#
#   scripts/bad-input-coverage.sh            (BUILD_DIR, default build-cov)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
build_dir=$(realpath -m "${BUILD_DIR:-build-cov}")

# file, and the pattern that marks its error sites
audited=(
  "host/config.cpp|diags\.push_back|bad\(|syntax_error\(|message = "
  "host/serve_config.cpp|diags\.push_back|error = |fail\("
  "host/device_templates.cpp|fail\("
  "host/steps.cpp|fail\(|error = "
  "common/text.cpp|error = "
  "host/names.cpp|error = "
  "host/faults.cpp|error = "
  "host/options.cpp|error = "
  "host/check.cpp|diags\.push_back|diag\(|warn\("
  "host/cli.cpp|error_line\("
  "host/loader.cpp|throw Refused"
  "host/elf_check.cpp|return .*(built for|not a shared|no program|program header|truncated|impossible)"
  "sdk/port/frame.c|refuse\("
  "sdk/port/port.cpp|protocol_error\(c,"
  "plugins/filterport/backend_socket.cpp|DEVHOST_E_PROTOCOL, 0,"
)
# devhost-vdev: the peer script parser, script files, and peer options.
audited+=(
  "vdev/script/serial_script_parse.cpp|throw std::invalid_argument"
  "vdev/serial_script.cpp|throw std::invalid_argument"
)
for f in vdev/*.cpp; do
  [ "$f" = vdev/serial_script.cpp ] && continue
  grep -q 'throw std::invalid_argument' "$f" && audited+=("$f|throw std::invalid_argument")
done

scripts/build.sh deps   # the packages (not `build`: that would reconfigure and rebuild build/)
# Debug (-O0, asserts on) without debug info: gcov reads its own notes
# (.gcno), not DWARF, and -g costs a sixth of the compile time.
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Debug -DDEVHOST_BUILD_TESTS=ON \
  -DCMAKE_C_FLAGS_DEBUG=-O0 -DCMAKE_CXX_FLAGS_DEBUG=-O0 \
  -DCMAKE_C_FLAGS=--coverage -DCMAKE_CXX_FLAGS=--coverage -DCMAKE_EXE_LINKER_FLAGS=--coverage \
  -DCMAKE_SHARED_LINKER_FLAGS=--coverage -DCMAKE_MODULE_LINKER_FLAGS=--coverage >&2
cmake --build "$build_dir" -j "$(nproc)" \
  --target devhost devhost-vdev loop filterport serial raw parallel bad_plugins bad_inputs_test >&2
find "$build_dir" -name '*.gcda' -delete
# The catalogue's cases side by side: each process adds its counts to the
# .gcda files under a lock, so the sum is the same as one after the other.
(cd "$build_dir" && ctest --output-on-failure -j "$(nproc)" -R '^bad_inputs_test:' >&2)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
exempt=tests/bad-inputs/coverage-exempt.tsv
missed=0
sites=0
files=0
# Whether a site is listed in the exemptions (FILE, a piece of the line,
# the reason it cannot be reached by input).
is_exempt() {
  local file frag reason
  while IFS=$'\t' read -r file frag reason; do
    [ "$file" = "$1" ] && [[ "$2" == *"$frag"* ]] && return 0
  done < <(grep -v '^#' "$exempt")
  return 1
}
for entry in "${audited[@]}"; do
  src=${entry%%|*}
  pattern=${entry#*|}
  # A renamed or removed file must not drop out of the audit unnoticed.
  [ -f "$src" ] || { echo "bad-input-coverage: audited file $src does not exist (renamed? update the list)" >&2; exit 2; }
  count=$(grep -Ec "$pattern" "$src" || true)
  [ "$count" -gt 0 ] || { echo "bad-input-coverage: no error site matches '$pattern' in $src (update the list)" >&2; exit 2; }
  sites=$((sites + count))
  files=$((files + 1))
  base=$(basename "$src")
  : > "$work/hit"
  : > "$work/miss"
  # A source may be compiled into several objects (a static and a shared
  # library): a line counts as reached if any of them ran it.
  while IFS= read -r gcda; do
    rm -f "$work"/*.gcov
    (cd "$work" && gcov -o "$(dirname "$gcda")" "$gcda" >/dev/null 2>&1) || continue
    g="$work/$base.gcov"
    [ -f "$g" ] && grep -q "0:Source:$here/$src\$" "$g" || continue
    awk -F: -v hit="$work/hit" -v miss="$work/miss" '
      { c = $1; gsub(/ /, "", c); n = $2 + 0 }
      c ~ /^[0-9]/ { print n >> hit }
      c == "#####" || c == "=====" { print n >> miss }' "$g"
  done < <(find "$build_dir" -name "$base.gcda")
  if [ ! -s "$work/hit" ]; then
    echo "$src: no coverage data (was it built and run?)" >&2
    missed=$((missed + 1))
    continue
  fi
  while IFS= read -r n; do
    line=$(sed -n "${n}p" "$src")
    printf '%s\n' "$line" | grep -Eq "$pattern" || continue
    text=$(printf '%s' "$line" | sed 's/^ *//')
    is_exempt "$src" "$text" && continue
    echo "$src:$n: not reached by the catalogue: $text"
    missed=$((missed + 1))
  done < <(comm -23 <(sort -u "$work/miss") <(sort -u "$work/hit") | sort -n)
done
if [ "$missed" -gt 0 ]; then
  echo "bad-input coverage: $missed error site(s) of $sites not reached; add rows to tests/bad-inputs/ (or an exemption with its reason to $exempt)" >&2
  exit 1
fi
echo "bad-input coverage: the catalogue reaches every error site ($sites in $files files, exemptions in $exempt)"
