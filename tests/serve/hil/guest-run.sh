#!/bin/sh
# /init of the serve hot-plug hil initramfs (tests/serve/hil/run-hil.sh):
# a real USB device that comes, goes and comes back. dummy_hcd is a USB
# host controller and a gadget controller wired to each other; g_serial on
# its gadget side is a CDC ACM device to its host side, where cdc-acm makes
# /dev/ttyACM0 of it (the gadget side's own tty is /dev/ttyGS0). devhost
# serve names the host side by identity (usb:0525:a4a7), with no udev and
# no systemd here: kernel uevents and sysfs only. g_serial is loaded,
# unloaded and loaded again; serve's records and log are printed between
# HIL-BEGIN serve and HIL-END serve rc=N, figures as HIL-* lines.
#
# With udev in the initramfs (run-hil.sh udev, tests/hil/qemu-guest.sh's
# hil_udev), systemd-udevd runs first, as on a host with systemd: the
# devices there are replayed to it (udevadm trigger, settle), serve then
# watches udev's events and runs udev.ini, which names the host side by the
# /dev/serial/by-id link udev's 60-serial.rules makes. g_serial then gets
# strings of its own, so that the link's name does not hold the kernel's
# release (its default manufacturer string does).
. /hil/lib.sh
echo # the console's first line holds the firmware's escapes
mkdir -p /run
now_ms() { # the wall clock in milliseconds (busybox date has no %N)
    busybox adjtimex | busybox awk '/tv_sec/ { s = $2 } /tv_usec/ { u = $2 } END { printf "%.0f", s * 1000 + int(u / 1000) }'
}
# Up to $2 tenths of a second for the command $1 to succeed.
until_ok() {
    n=0
    while ! eval "$1" && [ $n -lt "$2" ]; do sleep 0.1; n=$((n + 1)); done
    eval "$1"
}
gen_ok() { # generation phase device: a record of it that succeeded
    grep "\"device\":\"$3\"" /tmp/serve.out 2>/dev/null | grep "\"generation\":$1" | grep "\"phase\":\"$2\"" |
        grep -q '"status":"DEVHOST_OK"'
}
state_of() { # device: its state in devhost status
    $DEVHOST status --socket /tmp/control 2>/dev/null | grep "^$1 " | sed 's/^[^ ]* *[^ ]* *\([^ ]*\).*/\1/'
}
# The gadget side's reader, so that the host side's writes never stall; it
# ends when g_serial goes (the tty is hung up).
reader() {
    until_ok '[ -e /dev/ttyGS0 ]' 50
    cat /dev/ttyGS0 >/dev/null 2>&1 &
}

# udev's serial links (udev mode), after udev handled what is pending, as
# "TAG LINK -> TARGET" lines; with no by-id link, what udev knows of
# /dev/ttyACM0 and what its rules did with it.
udev_links() { # tag
    [ -x /bin/udevadm ] || return 0
    udevadm settle --timeout=20 || echo "HIL-UDEV-SETTLE-FAILED"
    for l in /dev/serial/by-id/* /dev/serial/by-path/*; do
        [ -L "$l" ] && echo "$1 $l -> $(readlink "$l")"
    done
    [ -d /dev/serial/by-id ] && return 0
    echo "HIL-NO-BY-ID"
    udevadm info /dev/ttyACM0 2>&1
    udevadm test /sys/class/tty/ttyACM0 2>&1
}

for m in configfs usb-common usbcore udc-core dummy_hcd libcomposite u_serial usb_f_acm cdc-acm; do
    insmod /modules/$m.ko || echo "HIL-INSMOD-FAILED $m"
done

config=/hil/hotplug.ini
gserial=
if [ -x /bin/udevadm ]; then
    config=/hil/udev.ini
    gserial="iManufacturer=devhost iProduct=hil-serial iSerialNumber=0001"
    systemd-udevd --daemon --resolve-names=never || echo "HIL-UDEVD-FAILED"
    udevadm trigger --action=add
    udevadm settle --timeout=30 || echo "HIL-UDEV-SETTLE-FAILED"
    [ -e /run/udev/control ] || echo "HIL-UDEVD-FAILED no /run/udev/control"
fi

$DEVHOST serve --log-level=info --output /tmp/serve.out --socket /tmp/control $config 2>/tmp/serve.err &
serve=$!
until_ok '[ -S /tmp/control ]' 100 || echo "HIL-NO-CONTROL"
echo "HIL-STATE-BEFORE $(state_of gadget)"

# shellcheck disable=SC2086 # one parameter a word
insmod /modules/g_serial.ko $gserial || echo "HIL-INSMOD-FAILED g_serial"
reader
until_ok '[ -e /dev/ttyACM0 ]' 100 || echo "HIL-NO-TTYACM0"
udev_links HIL-LINK
for d in /sys/bus/usb/devices/*; do
    [ -e "$d/idVendor" ] && echo "HIL-USB $(cat "$d/idVendor"):$(cat "$d/idProduct") $(cat "$d/product" 2>/dev/null) ${d##*/}"
done
echo "HIL-ACM $(readlink /sys/class/tty/ttyACM0/device)"
until_ok 'gen_ok 1 body gadget' 300 || echo "HIL-NO-GEN1"
sleep 3 # longer than serve's flap window (2 s): a plain removal, no flapping

# Unplugged: the gadget goes, with it /dev/ttyACM0 and /dev/ttyGS0.
busybox rmmod g_serial || echo "HIL-RMMOD-FAILED g_serial"
# shellcheck disable=SC2016 # until_ok evaluates its command
until_ok '[ "$(state_of gadget)" = waiting-for-device ]' 100
echo "HIL-STATE-GONE gadget $(state_of gadget)"
# shellcheck disable=SC2016
until_ok '[ "$(state_of gs)" = waiting-for-device ]' 100
echo "HIL-STATE-GONE gs $(state_of gs)"
[ -x /bin/udevadm ] && udevadm settle --timeout=20 && echo "HIL-LINKS-GONE $(ls /dev/serial/by-id 2>/dev/null | wc -l)"
echo "HIL-STATUS-GONE"
$DEVHOST status --socket /tmp/control
sleep 3

# Plugged again. When insmod returned, when /dev/ttyACM0 was first seen
# and (udev mode) when udev's by-id link was (polled every 50 ms), in
# milliseconds of the wall clock, the clock of serve's records: run-hil.sh
# prints the delays.
# shellcheck disable=SC2086
insmod /modules/g_serial.ko $gserial || echo "HIL-INSMOD-FAILED g_serial (again)"
echo "HIL-INSMOD-AT $(now_ms)"
seen=
linked=
n=0
while ! gen_ok 2 body gadget && [ $n -lt 600 ]; do
    [ -z "$seen" ] && [ -e /dev/ttyACM0 ] && seen=$(now_ms) && echo "HIL-NODE-AT $seen"
    [ -x /bin/udevadm ] && [ -z "$linked" ] && [ -n "$(ls /dev/serial/by-id 2>/dev/null)" ] &&
        linked=$(now_ms) && echo "HIL-LINK-AT $linked"
    sleep 0.05
    n=$((n + 1))
done
gen_ok 2 body gadget || echo "HIL-NO-GEN2"
# A link the poll missed (generation 2 came first): seen now, later than it came.
[ -x /bin/udevadm ] && [ -z "$linked" ] && [ -n "$(ls /dev/serial/by-id 2>/dev/null)" ] &&
    echo "HIL-LINK-AT $(now_ms)"
reader
until_ok 'gen_ok 2 body gs' 100 || echo "HIL-NO-GEN2-GS"
udev_links HIL-LINK-AGAIN
sleep 1
echo "HIL-STATUS-BACK"
$DEVHOST status --socket /tmp/control

kill -TERM $serve
wait $serve
rc=$?
echo "HIL-BEGIN serve"
cat /tmp/serve.out /tmp/serve.err
echo "HIL-END serve rc=$rc"
echo HIL-DONE
poweroff -f
