#!/usr/bin/env bash
# devhost-conformance's command line: --help, --list, usage errors (exit 2),
# a plugin the loader refuses (exit 3), all skipped (exit 4), --json,
# --junit, --only.
# The man page names every test --list gives and every option --help gives.
#   cli_test.sh DEVHOST-CONFORMANCE LOOP.so CONFTEST-PLUGIN-DIR MAN-PAGE
set -u
tool=$1 loop=$2 dir=$3 man=$4
failures=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# expect NAME WANT-EXIT REGEX ARGS...
expect() {
  local name=$1 want=$2 regex=$3 out rc
  shift 3
  out=$(timeout 120 "$tool" "$@" 2>&1)
  rc=$?
  if [ "$rc" != "$want" ] || ! grep -Eq -- "$regex" <<<"$out"; then
    echo "FAILED: $name: exit $rc (want $want), output does not match /$regex/:"
    sed 's/^/    /' <<<"$out"
    failures=$((failures + 1))
  else
    echo "ok: $name"
  fi
}

expect help 0 "^Usage: devhost-conformance PLUGIN.so \[OPTIONS\]$" --help
expect list 0 "^cancel \(MUST-6\): every blocking hook returns DEVHOST_E_CANCELLED" --list
expect no-plugin 2 "^devhost-conformance: no plugin given \(--help for usage\)$"
expect unknown-option 2 "^devhost-conformance: unknown option '--bogus' \(--help for usage\)$" "$loop" --bogus
expect bad-timeout 2 "--timeout 'x': expected seconds from 1 to 3600" "$loop" --timeout x
expect unknown-test 2 "--only 'nope': no such test" "$loop" --only nope
printf 'not a plugin' >"$tmp/junk.so"
expect refused 3 "^Bail out! $tmp/junk.so: the host's loader refused it: " "$tmp/junk.so"
expect all-skipped 4 "^ok 1 - transfer-bounds \(MUST-5\) # SKIP class 'conftest-good' needs a device" \
  "$dir/conftest-good.so" --only transfer-bounds
expect only 0 "^1\.\.1$" "$loop" --only negotiation
expect json 0 "\"name\": \"negotiation\"" "$loop" --only negotiation --json
expect junit 0 "^ok 1 - negotiation" "$loop" --only negotiation --only removed --junit "$tmp/out.xml"
if ! grep -q '<testcase classname="devhost-conformance.loop" name="negotiation"' "$tmp/out.xml" ||
   ! grep -q '<skipped message=' "$tmp/out.xml"; then
  echo "FAILED: junit: $tmp/out.xml lacks the testcases"; cat "$tmp/out.xml"; failures=$((failures + 1))
fi
expect bad-option 1 "^not ok 2 - two-devices \(MUST-9\)$" "$loop" --only negotiation --only two-devices \
  --option capacity=nope
page=$(sed 's/\\-/-/g' "$man")
for t in $("$tool" --list | cut -d' ' -f1); do
  grep -q "^\.B $t (MUST-[0-9]*)$" <<<"$page" || { echo "FAILED: $man does not describe test $t"; failures=$((failures + 1)); }
done
for o in $("$tool" --help | grep -o -- '^  --[a-z]*'); do
  grep -Eq "^\.BI? $o( |$)" <<<"$page" || { echo "FAILED: $man does not describe $o"; failures=$((failures + 1)); }
done
[ "$failures" -eq 0 ] || exit 1
echo "command line as documented"
