#!/usr/bin/env bash
# Each known-bad plugin (conf_plugin.c) fails exactly the tests for its
# defect, with the reason naming it; the good twin passes everything but the
# skipped `removed`.
#   bad_plugins_test.sh DEVHOST-CONFORMANCE DIR-OF-conftest-*.so
set -u
tool=$1 dir=$2
failures=0

# check VARIANT EXPECTED-EXIT "FAILING TEST NAMES" REASON-REGEX
check() {
  local variant=$1 want_rc=$2 want_failed=$3 reason=$4 out rc failed
  out=$("$tool" "$dir/conftest-$variant.so" --device conftest:a --device conftest:b --loopback --timeout 20 2>&1)
  rc=$?
  failed=$(printf '%s\n' "$out" | sed -n 's/^not ok [0-9]* - \([a-z-]*\) .*/\1/p' | sort | tr '\n' ' ' | sed 's/ $//')
  if [ "$rc" != "$want_rc" ] || [ "$failed" != "$want_failed" ] || ! printf '%s\n' "$out" | grep -Eq -- "$reason"; then
    echo "FAILED: $variant: exit $rc (want $want_rc), failed [$failed] (want [$want_failed]), reason /$reason/"
    printf '%s\n' "$out" | sed 's/^/    /'
    failures=$((failures + 1))
  else
    echo "ok: $variant: exit $rc, failed [$failed]"
  fi
}

check good 0 "" "^ok 10 - removed \(MUST-10\) # SKIP "
check ignores_cancel 1 "cancel" "^#   transfer \(read\) did not return within 2000 ms of its cancel handle firing$"
# (SEGV from the guard page; under AddressSanitizer its handler aborts: ABRT)
check overruns 1 "transfer-bounds" "^#   killed by signal (SEGV|ABRT)"
check leaks_fd 1 "close-half-open open-close-cycles" "^#   [0-9]+ descriptor\(s\) left after 1000 open/close cycles$"
check short_write_ok 1 "transfer-bounds" "^#   write of 64 bytes answered DEVHOST_OK having sent 32$"

[ "$failures" -eq 0 ] || { echo "$failures variant(s) not caught as expected"; exit 1; }
echo "every known-bad plugin caught by its test"
