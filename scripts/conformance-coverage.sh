#!/usr/bin/env bash
# Every numbered MUST of sdk/include/devhost/plugin.h ([MUST-N]) has a
# devhost-conformance test naming it, and every MUST a test names exists.
#   scripts/conformance-coverage.sh [SOURCE-DIR]
set -euo pipefail
src=${1:-$(cd "$(dirname "$0")/.." && pwd)}
header="$src/sdk/include/devhost/plugin.h"
tests=("$src"/sdk/conformance/contract_*.cpp)

declared=$(grep -o '\[MUST-[0-9]*\]' "$header" | tr -d '[]' | sort -u)
tested=$(grep -ho '"MUST-[0-9]*"' "${tests[@]}" | tr -d '"' | sort -u)
[ -n "$declared" ] || { echo "conformance-coverage: no [MUST-N] in $header"; exit 1; }

status=0
for m in $declared; do
  grep -qx "$m" <<<"$tested" || { echo "conformance-coverage: $m (plugin.h) has no test in sdk/conformance/contract_*.cpp"; status=1; }
done
for m in $tested; do
  grep -qx "$m" <<<"$declared" || { echo "conformance-coverage: a test names $m, which plugin.h does not number"; status=1; }
done
[ $status -eq 0 ] && echo "conformance-coverage: $(wc -w <<<"$declared") MUSTs, each with a test"
exit $status
