#!/bin/sh
# /init of the serial hil initramfs: runs devhost pipelines against the
# guest's second 8250 UART, /dev/ttyS1 (ttyS0 is this guest's console), and
# a close probe on the third, /dev/ttyS2, whose far end never reads. The
# 8250 driver is built into Debian's kernel, so no module is loaded.
# run, start, wait_for, finish: /hil/lib.sh (tests/hil/guest-lib.sh).
. /hil/lib.sh
n=0
while [ ! -e /dev/ttyS1 ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
[ -e /dev/ttyS1 ] || echo HIL-NO-TTYS1
echo "HIL-UART $(grep '^1:' /proc/tty/driver/serial)"

run echo echo.ini
run com2 com2.ini
run 7e1 7e1.ini
run 8n2 8n2.ini
run 5o1 5o1.ini
run 6m-bother 6m-bother.ini
run toofast toofast.ini
run modem modem.ini
run flush flush.ini

# Exclusive: while one devhost holds the port, a second one's open is refused.
start excl-holder excl-holder.ini
pid=$!
echo "HIL-HOLDER-PID $pid"
wait_for /tmp/excl-holder.out '"step":"open'
# The tty is held by the holder's worker (its plugin runs there): the one
# process named devhost-worker now (a child of the holder's worker template).
echo "HIL-HOLDER-WORKER $(for p in /proc/[0-9]*; do [ "$(cat "$p/comm" 2>/dev/null)" = devhost-worker ] && echo "${p#/proc/}"; done | tr -s ' \n' ' ')"
run excl-second excl-second.ini
finish excl-holder $pid

# ABI 1.1: close under a 300 ms deadline while XOFF (sent, and echoed back
# by the peer) holds 4000 bytes in the UART's queue, where the kernel's
# closing wait would hold the close for closing_wait centiseconds.
echo "HIL-CLOSING-WAIT $(cat /sys/class/tty/ttyS1/closing_wait)"
/opt/devhost/bin/serial_close_probe /opt/devhost/lib/devhost/plugins/serial.so /dev/ttyS1 xoff

# ABI 1.1: close under a 300 ms deadline at 50 baud while the UART's
# transmitter cannot empty (/dev/ttyS2's far end never reads), where the
# kernel's wait for it would hold the close for twice the FIFO's time.
echo "HIL-UART2 $(grep '^2:' /proc/tty/driver/serial)"
/opt/devhost/bin/serial_close_probe /opt/devhost/lib/devhost/plugins/serial.so /dev/ttyS2 stall

# The driver's own count of the bytes it sent and of the breaks it saw.
echo "HIL-UART-END $(grep '^1:' /proc/tty/driver/serial)"
echo HIL-DONE
poweroff -f
