#!/bin/sh
# The parallel plugin on Linux's real ppdev driver, in an emulated PC.
#
#   run-hil.sh BUILD_DIR SOURCE_DIR
#
# Boots Debian's kernel in qemu-system-x86_64 (TCG, no KVM) with an
# initramfs holding busybox, the parport, parport_pc and ppdev modules, the
# devhost binary with its shared libraries and the parallel plugin. Inside,
# devhost drives /dev/parport0 through pipelines (guest-run.sh); QEMU writes
# what the port emits to a file, which this script compares with the bytes
# the pipelines sent, and it checks the step records the guest printed.
#
# Installs what is missing: qemu-system-x86 and busybox-static with apt-get,
# and linux-image-amd64's current image package with `apt-get download` into
# BUILD_DIR/hil-cache (only vmlinuz and the three modules are extracted).
# Exit: 0 pass, 1 fail, 77 skipped (the reason is printed).
set -u

BUILD_DIR=${1:?usage: run-hil.sh BUILD_DIR SOURCE_DIR}
SOURCE_DIR=${2:?usage: run-hil.sh BUILD_DIR SOURCE_DIR}
BUILD_DIR=$(cd "$BUILD_DIR" && pwd) || exit 1
SOURCE_DIR=$(cd "$SOURCE_DIR" && pwd) || exit 1
HERE="$SOURCE_DIR/plugins/parallel/tests/hil"
CACHE="$BUILD_DIR/hil-cache"
WORK="$BUILD_DIR/hil-work"
QEMU_TIMEOUT=${DEVHOST_HIL_TIMEOUT:-120}

skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
say() { echo "hil: $*"; }

[ "$(uname -m)" = x86_64 ] || skip "needs an x86_64 host (have $(uname -m))"
for f in "$BUILD_DIR/bin/devhost" "$BUILD_DIR/lib/devhost/plugins/parallel.so"; do
    [ -e "$f" ] || fail "$f is not built"
done

apt_install() {
    [ "$(id -u)" = 0 ] || return 1
    command -v apt-get >/dev/null 2>&1 || return 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >"$CACHE/apt.log" 2>&1 && return 0
    apt-get update >>"$CACHE/apt.log" 2>&1 || return 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >>"$CACHE/apt.log" 2>&1
}

mkdir -p "$CACHE" || fail "cannot create $CACHE"

# --- tools ---------------------------------------------------------------
if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
    say "installing qemu-system-x86"
    apt_install qemu-system-x86 || skip "qemu-system-x86_64 missing and apt-get install qemu-system-x86 failed (see $CACHE/apt.log)"
fi
BUSYBOX=/bin/busybox
if ! { [ -x "$BUSYBOX" ] && file -L "$BUSYBOX" 2>/dev/null | grep -q 'statically linked'; } && ! dpkg -s busybox-static >/dev/null 2>&1; then
    say "installing busybox-static"
    apt_install busybox-static || skip "busybox-static missing and apt-get install failed (see $CACHE/apt.log)"
fi
[ -x "$BUSYBOX" ] || skip "no $BUSYBOX after installing busybox-static"

# --- kernel and modules ---------------------------------------------------
KDIR="$CACHE/kernel"
if [ ! -s "$KDIR/vmlinuz" ] || [ ! -s "$KDIR/ppdev.ko" ]; then
    command -v apt-get >/dev/null 2>&1 || skip "no apt-get to fetch Debian's kernel"
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n 1)
    if [ -z "$pkg" ]; then
        apt-get update >"$CACHE/apt-update.log" 2>&1
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n 1)
    fi
    [ -n "$pkg" ] || skip "cannot resolve linux-image-amd64 to a kernel image package"
    deb=$(ls "$CACHE"/"$pkg"_*.deb 2>/dev/null | head -n 1)
    if [ -z "$deb" ]; then
        say "downloading $pkg"
        (cd "$CACHE" && apt-get download "$pkg" >"$CACHE/download.log" 2>&1) ||
            { apt-get update >"$CACHE/apt-update.log" 2>&1; (cd "$CACHE" && apt-get download "$pkg" >>"$CACHE/download.log" 2>&1); } ||
            skip "apt-get download $pkg failed (see $CACHE/download.log)"
        deb=$(ls "$CACHE"/"$pkg"_*.deb 2>/dev/null | head -n 1)
    fi
    [ -n "$deb" ] || skip "no $pkg package in $CACHE"
    rm -rf "$KDIR.tmp" && mkdir -p "$KDIR.tmp" || fail "cannot create $KDIR.tmp"
    # Only the kernel and the three modules (and what they depend on).
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$KDIR.tmp" --wildcards \
        './boot/vmlinuz-*' '*/drivers/parport/parport.ko*' '*/drivers/parport/parport_pc.ko*' \
        '*/drivers/char/ppdev.ko*' || fail "cannot extract $deb"
    for m in parport parport_pc ppdev; do
        f=$(find "$KDIR.tmp" -name "$m.ko*" | head -n 1)
        [ -n "$f" ] || fail "$m module not in $deb"
        case "$f" in
        *.xz) xz -dc "$f" >"$KDIR.tmp/$m.ko" ;;
        *.zst) zstd -qdc "$f" >"$KDIR.tmp/$m.ko" ;;
        *) cp "$f" "$KDIR.tmp/$m.ko" ;;
        esac || fail "cannot decompress $f"
        # Dependencies outside these three would need extracting too.
        deps=$(tr '\0' '\n' <"$KDIR.tmp/$m.ko" | sed -n 's/^depends=//p' | tr ',' ' ')
        for dep in $deps; do
            case "$dep" in parport | parport_pc | ppdev) ;; *) fail "$m needs module $dep, not extracted" ;; esac
        done
    done
    cp "$KDIR.tmp"/boot/vmlinuz-* "$KDIR.tmp/vmlinuz" || fail "no vmlinuz in $deb"
    rm -rf "$KDIR" && mkdir -p "$KDIR" &&
        mv "$KDIR.tmp/vmlinuz" "$KDIR.tmp/parport.ko" "$KDIR.tmp/parport_pc.ko" "$KDIR.tmp/ppdev.ko" "$KDIR/" &&
        rm -rf "$KDIR.tmp" || fail "cannot populate $KDIR"
fi

# --- initramfs --------------------------------------------------------------
rm -rf "$WORK" && mkdir -p "$WORK/root" || fail "cannot create $WORK"
ROOT="$WORK/root"
mkdir -p "$ROOT/bin" "$ROOT/dev" "$ROOT/proc" "$ROOT/sys" "$ROOT/tmp" "$ROOT/modules" "$ROOT/hil" \
    "$ROOT/opt/devhost/bin" "$ROOT/opt/devhost/lib/devhost/plugins"
cp "$BUSYBOX" "$ROOT/bin/busybox"
for applet in sh mount insmod sleep cat echo grep poweroff ls test mkdir sed printf wc true kill; do
    ln -s busybox "$ROOT/bin/$applet"
done
cp "$KDIR/parport.ko" "$KDIR/parport_pc.ko" "$KDIR/ppdev.ko" "$ROOT/modules/"
cp "$BUILD_DIR/bin/devhost" "$ROOT/opt/devhost/bin/"
cp "$BUILD_DIR/lib/devhost/plugins/parallel.so" "$ROOT/opt/devhost/lib/devhost/plugins/"
chmod 755 "$ROOT/opt/devhost/lib/devhost/plugins/parallel.so"
# Shared libraries and the dynamic loader, at the paths ldd names.
for lib in $(ldd "$BUILD_DIR/bin/devhost" "$BUILD_DIR/lib/devhost/plugins/parallel.so" |
    sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p' | sort -u); do
    mkdir -p "$ROOT$(dirname "$lib")"
    cp -L "$lib" "$ROOT$lib" || fail "cannot copy $lib"
done
cp "$HERE"/guest-run.sh "$ROOT/init" && chmod 755 "$ROOT/init"
cp "$HERE"/*.ini "$ROOT/hil/"
(cd "$ROOT" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null | gzip -1 >"$WORK/initrd.gz") ||
    fail "cannot build the initramfs"

# --- boot ------------------------------------------------------------------
OUT="$WORK/parport.out"
CONSOLE="$WORK/console.log"
: >"$OUT"
say "booting $(basename "$(readlink -f "$KDIR/vmlinuz")") in qemu (TCG, timeout ${QEMU_TIMEOUT}s)"
timeout -k 5 "$QEMU_TIMEOUT" qemu-system-x86_64 -M pc -accel tcg -m 384 -smp 1 -nographic -no-reboot \
    -monitor none -serial stdio -kernel "$KDIR/vmlinuz" -initrd "$WORK/initrd.gz" \
    -append "console=ttyS0 panic=-1 quiet" -parallel "file:$OUT" </dev/null >"$CONSOLE" 2>&1
rc=$?
[ $rc = 124 ] || [ $rc = 137 ] && { tail -n 40 "$CONSOLE"; fail "qemu did not finish within ${QEMU_TIMEOUT}s"; }
grep -q 'HIL-DONE' "$CONSOLE" || { tail -n 60 "$CONSOLE"; fail "the guest did not finish its run (qemu exit $rc)"; }
grep -q 'HIL-NO-PARPORT' "$CONSOLE" && { tail -n 40 "$CONSOLE"; fail "the guest has no /dev/parport0"; }

# --- checks ------------------------------------------------------------------
tr -d '\r' <"$CONSOLE" >"$WORK/console.txt"
CONSOLE="$WORK/console.txt"
failures=0
check() { # name, expected status of a step in that run's records
    run=$1 step=$2 status=$3
    if sed -n "/^HIL-BEGIN $run\$/,/^HIL-END $run /p" "$CONSOLE" |
        grep "\"step\":\"$step" | grep -q "\"status\":\"$status\""; then
        say "ok: $run: $step -> $status"
    else
        say "FAILED: $run: expected step '$step' -> $status; records were:"
        sed -n "/^HIL-BEGIN $run\$/,/^HIL-END $run /p" "$CONSOLE" | sed 's/^/    /'
        failures=$((failures + 1))
    fi
}
check_text() { # run, text the run printed
    if sed -n "/^HIL-BEGIN $1\$/,/^HIL-END $1 /p" "$CONSOLE" | grep -qF "$2"; then
        say "ok: $1: printed '$2'"
    else
        say "FAILED: $1: did not print '$2'"
        failures=$((failures + 1))
    fi
}
check_info() { # run, key, value
    if sed -n "/^HIL-BEGIN $1\$/,/^HIL-END $1 /p" "$CONSOLE" | grep -q "\"$2\":\"$3\""; then
        say "ok: $1: info $2 = $3"
    else
        say "FAILED: $1: info $2 is not $3"
        failures=$((failures + 1))
    fi
}

check_rc() { # run, devhost's exit code (0 all steps ok, 1 a pipeline failed)
    if grep -q "^HIL-END $1 rc=$2\$" "$CONSOLE"; then
        say "ok: $1: exit $2"
    else
        say "FAILED: $1: expected exit $2, got: $(grep "^HIL-END $1 " "$CONSOLE")"
        failures=$((failures + 1))
    fi
}

for run in print print-driver ecp-fallback excl-holder claim-holder claim-patient forgot after-forgot; do
    check_rc $run 0
done
for run in ecp excl-second excl-shared claim-impatient; do
    check_rc $run 1
done
check print open DEVHOST_OK
check print "connect mode=compat" DEVHOST_OK
check print info DEVHOST_OK
check_info print backend ppdev
check_info print select yes
check print lock DEVHOST_OK
check print "write \\\\\"handshake" DEVHOST_OK
check print-driver "write" DEVHOST_OK
check_info print-driver path /dev/parport0
check print "control read-control" DEVHOST_OK
check print unlock DEVHOST_OK
check print close DEVHOST_OK
check ecp "connect mode=ecp" DEVHOST_E_IO
check ecp-fallback "connect mode=ecp fallback=true" DEVHOST_OK
check_info ecp-fallback mode compat
check excl-holder open DEVHOST_OK
check excl-second open DEVHOST_E_BUSY
check excl-shared open DEVHOST_E_BUSY
check claim-holder lock DEVHOST_OK
check claim-impatient "lock timeout=500ms" DEVHOST_E_TIMEOUT
check claim-patient "lock timeout=20s" DEVHOST_OK
check claim-patient "write" DEVHOST_OK
check forgot close DEVHOST_OK
check_text forgot "released the port on close because the pipeline did not unlock it"
check_text excl-second "exclusive access refused"
check_text ecp "negotiation of mode 'ecp' failed"
check after-forgot "lock timeout=2s" DEVHOST_OK

expected=$(printf 'handshake: devhost hil\ndriver: devhost hil\nafter the wait\n')
got=$(cat "$OUT")
if [ "$got" = "$expected" ]; then
    say "ok: QEMU's parallel port received exactly the bytes the pipelines wrote"
else
    say "FAILED: parallel port output differs; expected:"
    printf '%s\n' "$expected" | od -c | sed 's/^/    /'
    say "got:"
    od -c "$OUT" | sed 's/^/    /'
    failures=$((failures + 1))
fi

if [ $failures -ne 0 ]; then
    say "console log: $CONSOLE"
    fail "$failures check(s) failed"
fi
echo "PASS: parallel plugin on ppdev in QEMU"
exit 0
