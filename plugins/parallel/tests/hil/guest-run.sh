#!/bin/sh
# /init of the hil initramfs: loads parport, parport_pc and ppdev (never lp,
# which would hold the port and make PPEXCL fail), then runs devhost
# pipelines against /dev/parport0. Every run's records are printed between
# "HIL-BEGIN name" and "HIL-END name rc=N" for run-hil.sh to check.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
for m in parport parport_pc ppdev; do
    insmod /modules/$m.ko || echo "HIL-INSMOD-FAILED $m"
done
n=0
while [ ! -e /dev/parport0 ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
[ -e /dev/parport0 ] || echo HIL-NO-PARPORT
echo "HIL-MODES $(cat /proc/sys/dev/parport/parport0/modes 2>/dev/null)"

DEVHOST=/opt/devhost/bin/devhost
run() { # name config
    echo "HIL-BEGIN $1"
    $DEVHOST run --log-level=warn /hil/$2 2>/tmp/$1.err
    rc=$?
    cat /tmp/$1.err
    echo "HIL-END $1 rc=$rc"
}
# Starts a run in the background; its records go to /tmp/NAME.out.
start() { # name config
    $DEVHOST run --log-level=warn /hil/$2 >/tmp/$1.out 2>/tmp/$1.err &
}
wait_for() { # file text: up to 20 s
    n=0
    while ! grep -q "$2" "$1" 2>/dev/null && [ $n -lt 200 ]; do sleep 0.1; n=$((n + 1)); done
}
finish() { # name pid
    wait $2
    rc=$?
    echo "HIL-BEGIN $1"
    cat /tmp/$1.out /tmp/$1.err
    echo "HIL-END $1 rc=$rc"
}

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

echo HIL-DONE
poweroff -f
