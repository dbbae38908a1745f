# Sourced by a hil guest's /init (as /hil/lib.sh): mounts the kernel's file
# systems and runs devhost pipelines. Every run's records are printed between
# "HIL-BEGIN name" and "HIL-END name rc=N" for tests/hil/qemu-guest.sh's
# checks on the host.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp

DEVHOST=/opt/devhost/bin/devhost
run() { # name config
    echo "HIL-BEGIN $1"
    $DEVHOST run --log-level=warn /hil/$2 2>/tmp/$1.err
    rc=$?
    cat /tmp/$1.err
    echo "HIL-END $1 rc=$rc"
}
# Starts a run in the background ($! is its pid); its records go to /tmp/NAME.out.
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
