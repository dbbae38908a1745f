#!/bin/sh
# /init of the hil initramfs: loads parport, parport_pc and ppdev (never lp,
# which would hold the port and make PPEXCL fail), then runs devhost
# pipelines against /dev/parport0 (run, start, wait_for, finish: /hil/lib.sh,
# from tests/hil/guest-lib.sh).
. /hil/lib.sh
for m in parport parport_pc ppdev; do
    insmod /modules/$m.ko || echo "HIL-INSMOD-FAILED $m"
done
n=0
while [ ! -e /dev/parport0 ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
[ -e /dev/parport0 ] || echo HIL-NO-PARPORT
echo "HIL-MODES $(cat /proc/sys/dev/parport/parport0/modes 2>/dev/null)"

run print print.ini
run print-driver print-driver.ini
run ecp ecp.ini
run ecp-fallback ecp-fallback.ini

# Exclusive: while one client holds the port exclusively, a second
# exclusive open and a shared open are both refused.
start excl-holder excl-holder.ini
pid=$!
wait_for /tmp/excl-holder.out '"step":"open'
run excl-second excl-second.ini
run excl-shared excl-shared.ini
finish excl-holder $pid

# Claim: one client holds the claim; an impatient one times out, a patient
# one gets the port when the holder releases it.
start claim-holder claim-holder.ini
pid=$!
wait_for /tmp/claim-holder.out '"step":"lock'
run claim-impatient claim-impatient.ini
run claim-patient claim-patient.ini
finish claim-holder $pid

# Close releases a claim the pipeline forgot; the next client gets the port.
run forgot forgot.ini
run after-forgot after-forgot.ini

# ABI 1.1 on the real port: enumerate lists /dev/parport0; unload gives back
# the claim-interrupt handler the open installed (enumerate-probe.c).
echo "HIL-BEGIN probe"
/opt/devhost/bin/parallel_hil_probe /opt/devhost/lib/devhost/plugins/parallel.so
echo "HIL-END probe rc=$?"

echo HIL-DONE
poweroff -f
