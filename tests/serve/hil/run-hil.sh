#!/bin/sh
# devhost serve and a real USB device that is unplugged and plugged again,
# in an emulated PC (issue 19: removal and return).
#
#   run-hil.sh BUILD_DIR SOURCE_DIR
#
# Boots Debian's kernel in qemu-system-x86_64 (TCG, no KVM; the machinery is
# tests/hil/qemu-guest.sh, shared with the plugins' hil tests and their
# kernel cache). Inside (guest-run.sh), with no udev and no systemd:
# dummy_hcd joins a USB host controller to a gadget controller, cdc-acm
# drives the host side; devhost serve runs hotplug.ini, whose device
# 'gadget' is usb:0525:a4a7 (g_serial's ids) and 'gs' the gadget side's
# /dev/ttyGS0 by path. g_serial is loaded (generation 1), unloaded (both
# devices wait for their device), loaded again (generation 2). This script
# checks serve's records, its log and the states the guest saw, and prints
# the time from the second insmod to the first body of generation 2.
#
# Exit: 0 pass, 1 fail, 77 skipped (the reason is printed).
set -u

[ $# -eq 2 ] || { echo "usage: run-hil.sh BUILD_DIR SOURCE_DIR"; exit 2; }
. "$2/tests/hil/qemu-guest.sh" || exit 1
hil_init serve-hotplug "$1" "$2"
# shellcheck disable=SC2034 # hil_boot's: TCG runs this guest's module loads slowly
QEMU_TIMEOUT=${DEVHOST_HIL_TIMEOUT:-240}
HERE="$SOURCE_DIR/tests/serve/hil"
MODULES="configfs usb-common usbcore udc-core dummy_hcd libcomposite u_serial usb_f_acm g_serial cdc-acm"
hil_tools
# shellcheck disable=SC2086 # one module a word
hil_kernel $MODULES
# shellcheck disable=SC2086
hil_initramfs serial "$HERE/guest-run.sh" $MODULES
hil_boot
for tag in HIL-INSMOD-FAILED HIL-RMMOD-FAILED HIL-NO-CONTROL HIL-NO-TTYACM0; do
    grep -q "^$tag" "$CONSOLE" && { tail -n 60 "$CONSOLE"; fail "the guest said: $(grep "^$tag" "$CONSOLE" | head -n 1)"; }
done

# --- checks ------------------------------------------------------------------
# A record of serve: device, generation, phase, step (start), status.
has_record() {
    records serve | grep "\"device\":\"$1\"" | grep "\"generation\":$2[,}]" | grep "\"phase\":\"$3\"" |
        grep "\"step\":\"$4" | grep -q "\"status\":\"$5\""
}
expect_record() { # device generation phase step status
    if has_record "$@"; then
        say "ok: serve: $1 generation $2 $3 $4 -> $5"
    else
        say "FAILED: serve: no record of $1 generation $2 $3 $4 -> $5"
        failures=$((failures + 1))
    fi
}
expect_line() { # tag text: a line of the console that starts with tag holds text
    if grep "^$1" "$CONSOLE" | grep -qF -- "$2"; then
        say "ok: $1 shows '$2'"
    else
        say "FAILED: $1 does not show '$2': $(grep "^$1" "$CONSOLE" | head -n 3)"
        failures=$((failures + 1))
    fi
}

# The identity: g_serial's default ids, as the guest's sysfs has them, and
# the host side's tty under dummy_hcd's bus.
expect_line HIL-USB "0525:a4a7 Gadget Serial"
expect_line HIL-ACM "1-1:2.0"
check_rc serve 0

for dev in gadget gs; do
    expect_record $dev 1 setup open DEVHOST_OK
    expect_record $dev 1 body write DEVHOST_OK
    expect_record $dev 2 setup open DEVHOST_OK
    expect_record $dev 2 body write DEVHOST_OK
    expect_record $dev 2 teardown close DEVHOST_OK
done
# The removal: a step failed as a device that went away, or serve saw the
# node go; either way the device waited, and was not failed.
for dev in gadget gs; do
    if records serve | grep "\"device\":\"$dev\"" | grep -q '"status":"DEVHOST_E_REMOVED"' ||
        records serve | grep -qF "$dev: /dev/tty"; then
        say "ok: serve: $dev's removal seen ($(records serve | grep -E "^devhost: .*$dev: .*(went away|E_REMOVED)" | head -n 1 | sed 's/[\]//g'))"
    else
        say "FAILED: serve: neither a DEVHOST_E_REMOVED record of $dev nor a log line of its node going"
        failures=$((failures + 1))
    fi
    expect_line "HIL-STATE-GONE $dev" "waiting-for-device"
    check_text serve "$dev: waiting for its device: "
done
# Resolved at each attach: the identity named /dev/ttyACM0 both times.
expect_line HIL-STATE-BEFORE "waiting-for-device"
n=$(records serve | grep -cF "gadget: its device is back (/dev/ttyACM0)")
if [ "$n" = 2 ]; then
    say "ok: serve: usb:0525:a4a7 resolved to /dev/ttyACM0 at both attaches"
else
    say "FAILED: serve: 'gadget: its device is back (/dev/ttyACM0)' logged $n times, not 2"
    failures=$((failures + 1))
fi
check_text serve "gs: its device is back (/dev/ttyGS0)"
# Without udev, serve listens to the kernel's own uevents.
check_text serve "devices coming and going seen through kernel uevents and inotify"
if records serve | grep -q '"generation":3'; then
    say "FAILED: serve: a generation 3 (a device set up a third time)"
    failures=$((failures + 1))
fi

# Figures (not checked): from the second insmod g_serial's return (the
# guest's wall clock, the clock of the records' times) to /dev/ttyACM0 seen
# by the guest's poll, and to gadget's records of generation 2.
at_ms() { # device generation phase: the time of its first record that succeeded, in ms
    t=$(records serve | grep "\"device\":\"$1\"" | grep "\"generation\":$2," | grep "\"phase\":\"$3\"" |
        grep '"status":"DEVHOST_OK"' | head -n 1 | sed -n 's/.*"time":"\([^"]*\)".*/\1/p')
    [ -n "$t" ] && echo $(($(date -u -d "$t" +%s%N) / 1000000))
}
insmod_at=$(sed -n 's/^HIL-INSMOD-AT //p' "$CONSOLE")
since() { [ -n "$1" ] && [ -n "$insmod_at" ] && echo "$(($1 - insmod_at)) ms" || echo "(not seen)"; }
say "from the second insmod g_serial's return (TCG): /dev/ttyACM0 seen after" \
    "$(since "$(sed -n 's/^HIL-NODE-AT //p' "$CONSOLE")") (polled every 50 ms)," \
    "gadget's generation 2 open after $(since "$(at_ms gadget 2 setup)")," \
    "its first body that succeeded after $(since "$(at_ms gadget 2 body)") (run = every 200ms)"
hil_finish "devhost serve re-attaches a USB device (g_serial over dummy_hcd) by identity in QEMU"
