#!/usr/bin/env bash
# devhost.service passes `systemd-analyze verify` (no systemd as PID 1 is
# needed: it loads the unit and what it names offline), and its
# tmpfiles.d entry parses (systemd-tmpfiles --cat-config is not enough:
# --dry-run is not in systemd 252, so the entry is parsed with a root
# of our own, creating its directories there).
#
#   unit_test.sh UNIT DEVHOST TMPFILES
# Exit 0: verified; 1: what systemd said; 77: skipped (no systemd-analyze).
set -euo pipefail
unit=${1:?usage: unit_test.sh UNIT DEVHOST TMPFILES}
devhost=${2:?usage: unit_test.sh UNIT DEVHOST TMPFILES}
tmpfiles=$(realpath "${3:?usage: unit_test.sh UNIT DEVHOST TMPFILES}")
for tool in systemd-analyze systemd-tmpfiles; do
    if ! command -v "$tool" > /dev/null; then
        echo "SKIPPED: $tool is not installed (Debian package systemd)"
        exit 77
    fi
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The unit as installed, but for ExecStart's and ExecReload's devhost: the
# built one (verify checks that the program exists and is executable).
exec_start=$(sed -n 's/^ExecStart=\([^ ]*\) .*/\1/p' "$unit")
[ -n "$exec_start" ] || { echo "no ExecStart= in $unit"; exit 1; }
sed "s|^ExecStart=$exec_start |ExecStart=$devhost |; s|^ExecReload=$exec_start |ExecReload=$devhost |" "$unit" \
    > "$tmp/devhost.service"
# --man=no: the man pages named by Documentation= are this tree's, not
# installed yet (tests/docs checks them).
if ! out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$tmp/devhost.service" 2>&1); then
    echo "systemd-analyze verify failed:"; echo "$out"; exit 1
fi
if [ -n "$out" ]; then
    echo "systemd-analyze verify said something about devhost.service:"; echo "$out"; exit 1
fi

# What the unit must keep (the list; a change here is a decision).
failed=0
for line in Type=notify ProtectSystem=strict PrivateTmp=yes \
            NoNewPrivileges=yes RuntimeDirectory=devhost RuntimeDirectoryMode=0755 WatchdogSec=30s \
            Restart=on-failure StateDirectory=devhost CacheDirectory=devhost; do
    grep -qxF -- "$line" "$unit" || { echo "devhost.service lacks '$line'"; failed=1; }
done
grep -qE '^ExecReload=/[^ ]*/devhost reload$' "$unit" ||
    { echo "devhost.service's ExecReload is not '.../devhost reload'"; failed=1; }
grep -qE '^ExecStart=/[^ ]*/devhost serve /etc/devhost/devhost.ini$' "$unit" ||
    { echo "devhost.service's ExecStart is not '.../devhost serve /etc/devhost/devhost.ini'"; failed=1; }

# The tmpfiles.d entry, applied to a root of our own.
mkdir "$tmp/root"
if ! out=$(systemd-tmpfiles --root="$tmp/root" --create "$tmpfiles" 2>&1); then
    echo "systemd-tmpfiles --create failed:"; echo "$out"; exit 1
fi
for d in var/lib/devhost var/cache/devhost; do
    got=$(stat -c '%a %U %G' "$tmp/root/$d" 2>/dev/null || echo missing)
    [ "$(id -u)" -ne 0 ] && got=${got%% *}
    want="755 root root"; [ "$(id -u)" -ne 0 ] && want=755  # not root: the owner is ours
    [ "$got" = "$want" ] || { echo "tmpfiles.d: /$d is '$got', expected '$want'"; failed=1; }
done
[ "$failed" -eq 0 ] && echo "ok: systemd-analyze verify, the unit's settings, tmpfiles.d"
exit "$failed"
