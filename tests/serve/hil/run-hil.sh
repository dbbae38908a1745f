#!/bin/sh
# devhost serve and a real USB device that is unplugged and plugged again,
# in an emulated PC (issue 19: removal and return).
#
#   run-hil.sh BUILD_DIR SOURCE_DIR [udev]
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
# With `udev`, the guest runs Debian's systemd-udevd too (hil_udev; its
# package is fetched into the hil cache like the kernel): serve watches
# udev's events instead of the kernel's, and udev.ini names the host side
# by its /dev/serial/by-id link, which 60-serial.rules makes; udev's event
# must be what brings it back (set up within 3 s of the link).
#
# Exit: 0 pass, 1 fail, 77 skipped (the reason is printed).
set -u

case "$#:${3:-}" in
2:) mode=kernel ;;
3:udev) mode=udev ;;
*) echo "usage: run-hil.sh BUILD_DIR SOURCE_DIR [udev]"; exit 2 ;;
esac
. "$2/tests/hil/qemu-guest.sh" || exit 1
if [ $mode = udev ]; then hil_init serve-hotplug-udev "$1" "$2"; else hil_init serve-hotplug "$1" "$2"; fi
# shellcheck disable=SC2034 # hil_boot's: TCG runs this guest's module loads slowly
QEMU_TIMEOUT=${DEVHOST_HIL_TIMEOUT:-240}
HERE="$SOURCE_DIR/tests/serve/hil"
MODULES="configfs usb-common usbcore udc-core dummy_hcd libcomposite u_serial usb_f_acm g_serial cdc-acm"
hil_tools
# shellcheck disable=SC2086 # one module a word
hil_kernel $MODULES
[ $mode = udev ] && hil_udev 60-serial.rules
# shellcheck disable=SC2086
hil_initramfs serial "$HERE/guest-run.sh" $MODULES
hil_boot
# With no by-id link, the guest printed what udev knew and did (udevadm
# info and test): shown here.
grep -q "^HIL-NO-BY-ID" "$CONSOLE" && sed -n '/^HIL-NO-BY-ID/,/^HIL-BEGIN/p' "$CONSOLE" | head -n 300
for tag in HIL-INSMOD-FAILED HIL-RMMOD-FAILED HIL-NO-CONTROL HIL-NO-TTYACM0 HIL-UDEVD-FAILED HIL-UDEV-SETTLE-FAILED \
    HIL-NO-BY-ID; do
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
if [ $mode = udev ]; then
    expect_line HIL-USB "0525:a4a7 hil-serial"
else
    expect_line HIL-USB "0525:a4a7 Gadget Serial"
fi
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
    say "ok: serve: gadget's identity resolved to /dev/ttyACM0 at both attaches"
else
    say "FAILED: serve: 'gadget: its device is back (/dev/ttyACM0)' logged $n times, not 2"
    failures=$((failures + 1))
fi
check_text serve "gs: its device is back (/dev/ttyGS0)"
if [ $mode = udev ]; then
    # udev made the by-id link at each load and removed it in between;
    # serve listened to udev's events and found no link while it waited.
    link="/dev/serial/by-id/usb-devhost_hil-serial_0001-if00 -> ../../ttyACM0"
    expect_line "HIL-LINK " "$link"
    expect_line "HIL-LINK-AGAIN " "$link"
    if grep -qx "HIL-LINKS-GONE 0" "$CONSOLE"; then
        say "ok: no by-id link while g_serial was unloaded"
    else
        say "FAILED: by-id links while g_serial was unloaded: $(grep "^HIL-LINKS-GONE" "$CONSOLE")"
        failures=$((failures + 1))
    fi
    check_text serve "devices coming and going seen through udev events and inotify"
    check_text serve "gadget: waiting for its device: by-id:usb-devhost_hil-serial_0001-if00: no device matches it"
else
    # Without udev, serve listens to the kernel's own uevents.
    check_text serve "devices coming and going seen through kernel uevents and inotify"
fi
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
if [ $mode = udev ]; then
    # udev's event, sent once the link is made, is what wakes serve: with
    # no event it looks at waiting devices only every 5 s, and inotify on
    # /dev saw /dev/ttyACM0 come before udev had even seen the device.
    link_at=$(sed -n 's/^HIL-LINK-AT //p' "$CONSOLE")
    open_at=$(at_ms gadget 2 setup)
    if [ -n "$link_at" ] && [ -n "$open_at" ] && [ $((open_at - link_at)) -lt 3000 ]; then
        say "ok: gadget's generation 2 open within 3 s of the by-id link seen ($((open_at - link_at)) ms;" \
            "below 0 when the guest's poll saw the link late)"
    else
        say "FAILED: gadget's generation 2 open not within 3 s of the by-id link seen" \
            "(link at ${link_at:-?}, open at ${open_at:-?}): udev's event did not wake serve"
        failures=$((failures + 1))
    fi
fi
if [ $mode = udev ]; then
    hil_finish "devhost serve with udev re-attaches a USB device (g_serial over dummy_hcd) by its by-id link in QEMU"
fi
hil_finish "devhost serve re-attaches a USB device (g_serial over dummy_hcd) by identity in QEMU"
