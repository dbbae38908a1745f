# Shared part of the hil tests: a plugin on a real Linux driver in an
# emulated PC (qemu-system-x86_64, TCG, no KVM). Sourced by a plugin's
# tests/hil/run-hil.sh, which calls, in order:
#
#   hil_init NAME BUILD_DIR SOURCE_DIR   paths; WORK = BUILD_DIR/hil-work/NAME
#   hil_tools                            qemu-system-x86 and busybox-static
#   hil_kernel [MODULE...]               vmlinuz and these modules in $KDIR
#   hil_udev [RULES...]                  (optional) udev in the initramfs too
#   hil_initramfs PLUGIN GUEST_SCRIPT [MODULE...]   $WORK/initrd.gz
#                                        (with $HIL_EXTRA_BINS in /opt/devhost/bin)
#   hil_boot [QEMU_ARGS...]              boots; the console is in $CONSOLE
#   check / check_rc / check_text / check_info ...  then hil_finish TEXT
#
# The cache (BUILD_DIR/hil-cache: the kernel and udev packages and what was
# extracted from them) is shared by every hil test of a build, so the kernel is
# downloaded once; preparing it holds a lock, so tests may run in parallel.
# Exit codes: 0 pass, 1 fail, 77 skipped (the reason is printed).

skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
say() { echo "hil: $*"; }

hil_init() { # name build_dir source_dir
    HIL_NAME=$1
    BUILD_DIR=$(cd "$2" && pwd) || exit 1
    SOURCE_DIR=$(cd "$3" && pwd) || exit 1
    CACHE="$BUILD_DIR/hil-cache"
    KDIR="$CACHE/kernel"
    WORK="$BUILD_DIR/hil-work/$HIL_NAME"
    QEMU_TIMEOUT=${DEVHOST_HIL_TIMEOUT:-120}
    failures=0
    [ "$(uname -m)" = x86_64 ] || skip "needs an x86_64 host (have $(uname -m))"
    [ -e "$BUILD_DIR/bin/devhost" ] || fail "$BUILD_DIR/bin/devhost is not built"
    mkdir -p "$CACHE" || fail "cannot create $CACHE"
    # One test at a time installs packages and fills the cache.
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$CACHE/lock" && flock 9 || fail "cannot lock $CACHE/lock"
    fi
}

apt_install() {
    [ "$(id -u)" = 0 ] || return 1
    command -v apt-get >/dev/null 2>&1 || return 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >"$CACHE/apt.log" 2>&1 && return 0
    apt-get update >>"$CACHE/apt.log" 2>&1 || return 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >>"$CACHE/apt.log" 2>&1
}

hil_tools() {
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
}

# Debian's package PKG as a .deb in $CACHE (fetched with `apt-get download`
# once, then kept): its path in $DEB.
fetch_deb() { # package
    DEB=$(ls "$CACHE"/"$1"_*.deb 2>/dev/null | head -n 1)
    [ -n "$DEB" ] && return 0
    command -v apt-get >/dev/null 2>&1 || skip "no apt-get to fetch Debian's $1"
    say "downloading $1"
    (cd "$CACHE" && apt-get download "$1" >"$CACHE/download.log" 2>&1) ||
        { apt-get update >"$CACHE/apt-update.log" 2>&1; (cd "$CACHE" && apt-get download "$1" >>"$CACHE/download.log" 2>&1); } ||
        skip "apt-get download $1 failed (see $CACHE/download.log)"
    DEB=$(ls "$CACHE"/"$1"_*.deb 2>/dev/null | head -n 1)
    [ -n "$DEB" ] || skip "no $1 package in $CACHE"
}

# Debian's current linux-image-amd64 kernel, fetched with `apt-get download`;
# only vmlinuz and the named modules are extracted (into $KDIR/NAME.ko). A
# module depending on one not named is an error.
hil_kernel() { # module...
    missing=
    [ -s "$KDIR/vmlinuz" ] || missing=vmlinuz
    for m in "$@"; do [ -s "$KDIR/$m.ko" ] || missing="$missing $m"; done
    [ -z "$missing" ] && return 0
    command -v apt-get >/dev/null 2>&1 || skip "no apt-get to fetch Debian's kernel"
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n 1)
    if [ -z "$pkg" ]; then
        apt-get update >"$CACHE/apt-update.log" 2>&1
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n 1)
    fi
    [ -n "$pkg" ] || skip "cannot resolve linux-image-amd64 to a kernel image package"
    fetch_deb "$pkg"
    deb=$DEB
    # A kernel from another package version would not load the cached modules.
    [ "$(cat "$KDIR/package" 2>/dev/null)" = "$(basename "$deb")" ] || rm -rf "$KDIR"
    rm -rf "$KDIR.tmp" && mkdir -p "$KDIR.tmp" "$KDIR" || fail "cannot create $KDIR.tmp"
    patterns='./boot/vmlinuz-*'
    for m in "$@"; do patterns="$patterns */$m.ko*"; done
    # shellcheck disable=SC2086 # the patterns are split on purpose
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$KDIR.tmp" --wildcards $patterns || fail "cannot extract $deb"
    for m in "$@"; do
        f=$(find "$KDIR.tmp" -name "$m.ko*" | head -n 1)
        [ -n "$f" ] || fail "$m module not in $deb"
        case "$f" in
        *.xz) xz -dc "$f" >"$KDIR.tmp/$m.ko" ;;
        *.zst) zstd -qdc "$f" >"$KDIR.tmp/$m.ko" ;;
        *) cp "$f" "$KDIR.tmp/$m.ko" ;;
        esac || fail "cannot decompress $f"
        deps=$(tr '\0' '\n' <"$KDIR.tmp/$m.ko" | sed -n 's/^depends=//p' | tr ',' ' ')
        for dep in $deps; do
            case " $* " in *" $dep "*) ;; *) fail "$m needs module $dep, not extracted" ;; esac
        done
        mv "$KDIR.tmp/$m.ko" "$KDIR/" || fail "cannot populate $KDIR"
    done
    cp "$KDIR.tmp"/boot/vmlinuz-* "$KDIR/vmlinuz" || fail "no vmlinuz in $deb"
    basename "$deb" >"$KDIR/package"
    rm -rf "$KDIR.tmp"
}

# udev for the guest: systemd-udevd and udevadm (one program) from Debian's
# udev package, fetched like the kernel and extracted into $UDEV_DIR, with the
# named rules files of its /lib/udev/rules.d (e.g. 60-serial.rules for the
# /dev/serial/by-id links). hil_initramfs then puts /bin/udevadm,
# /bin/systemd-udevd, the rules and udevadm's shared libraries in the
# initramfs; the guest starts udevd itself. The libraries are the host's,
# like devhost's; one the host lacks is taken from udev's dependencies,
# fetched and extracted beside it.
hil_udev() { # rules...
    UDEV_DIR="$CACHE/udev"
    fetch_deb udev
    if [ "$(cat "$UDEV_DIR/package" 2>/dev/null)" != "$(basename "$DEB")" ]; then
        rm -rf "$UDEV_DIR" && mkdir -p "$UDEV_DIR" || fail "cannot create $UDEV_DIR"
        dpkg-deb -x "$DEB" "$UDEV_DIR" || fail "cannot extract $DEB"
        basename "$DEB" >"$UDEV_DIR/package"
    fi
    [ -x "$UDEV_DIR/bin/udevadm" ] || fail "no bin/udevadm in $DEB"
    for r in "$@"; do [ -f "$UDEV_DIR/lib/udev/rules.d/$r" ] || fail "no rules $r in $DEB"; done
    if [ -n "$(udev_missing)" ]; then
        for pkg in $(apt-cache depends udev 2>/dev/null | sed -n 's/^ *Depends: \(lib[^ <>]*\)$/\1/p'); do
            dpkg -s "$pkg" >/dev/null 2>&1 && continue
            fetch_deb "$pkg"
            dpkg-deb -x "$DEB" "$UDEV_DIR" || fail "cannot extract $DEB"
        done
        [ -z "$(udev_missing)" ] ||
            skip "udevadm needs $(udev_missing | tr '\n' ' ')which neither this host nor udev's dependencies have"
    fi
    HIL_UDEV_RULES="$*"
}
udev_ldd() { # udevadm's libraries: the host's, or those extracted beside it
    LD_LIBRARY_PATH="$UDEV_DIR/lib/x86_64-linux-gnu:$UDEV_DIR/usr/lib/x86_64-linux-gnu" ldd "$UDEV_DIR/bin/udevadm"
}
udev_missing() { udev_ldd | sed -n 's/^[[:space:]]*\([^ ]*\) => not found.*/\1/p'; }
# The files ldd names (shared libraries, the dynamic loader).
ldd_paths() { sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p' | sort -u; }
# Copies these files into $ROOT at their paths less the prefix.
copy_at() { # prefix file...
    prefix=$1
    shift
    for f in "$@"; do
        at=${f#"$prefix"}
        mkdir -p "$ROOT$(dirname "$at")" && cp -L "$f" "$ROOT$at" || fail "cannot copy $f"
    done
}
udev_root() { # hil_udev's programs, rules and libraries into $ROOT
    mkdir -p "$ROOT/lib/udev/rules.d" "$ROOT/etc/udev" "$ROOT/run" || fail "cannot populate $ROOT"
    cp "$UDEV_DIR/bin/udevadm" "$ROOT/bin/" && ln -s udevadm "$ROOT/bin/systemd-udevd" || fail "cannot copy udevadm"
    for r in $HIL_UDEV_RULES; do
        cp "$UDEV_DIR/lib/udev/rules.d/$r" "$ROOT/lib/udev/rules.d/" || fail "cannot copy $r"
    done
    # shellcheck disable=SC2046 # one path a word
    copy_at "$UDEV_DIR" $(udev_ldd | ldd_paths)
}

# The initramfs: busybox, the guest script as /init, tests/hil/guest-lib.sh
# as /hil/lib.sh, the plugin's hil/*.ini in /hil, devhost with its shared
# libraries and the plugin, the named modules in /modules, and udev when
# hil_udev was called.
hil_initramfs() { # plugin guest_script module...
    plugin=$1 guest=$2
    shift 2
    so="$BUILD_DIR/lib/devhost/plugins/$plugin.so"
    [ -e "$so" ] || fail "$so is not built"
    rm -rf "$WORK" && mkdir -p "$WORK/root" || fail "cannot create $WORK"
    ROOT="$WORK/root"
    mkdir -p "$ROOT/bin" "$ROOT/dev" "$ROOT/proc" "$ROOT/sys" "$ROOT/tmp" "$ROOT/modules" "$ROOT/hil" \
        "$ROOT/opt/devhost/bin" "$ROOT/opt/devhost/lib/devhost/plugins"
    cp "$BUSYBOX" "$ROOT/bin/busybox"
    for applet in sh mount insmod sleep cat echo grep poweroff ls test mkdir sed printf wc true kill \
        stty readlink; do
        ln -s busybox "$ROOT/bin/$applet"
    done
    for m in "$@"; do cp "$KDIR/$m.ko" "$ROOT/modules/" || fail "no $KDIR/$m.ko"; done
    cp "$BUILD_DIR/bin/devhost" "$ROOT/opt/devhost/bin/"
    cp "$so" "$ROOT/opt/devhost/lib/devhost/plugins/"
    chmod 755 "$ROOT/opt/devhost/lib/devhost/plugins/$plugin.so"
    # More programs a guest runs (HIL_EXTRA_BINS: paths), beside devhost.
    for extra in ${HIL_EXTRA_BINS:-}; do
        cp "$extra" "$ROOT/opt/devhost/bin/" || fail "cannot copy $extra"
    done
    # Shared libraries and the dynamic loader, at the paths ldd names.
    # shellcheck disable=SC2046,SC2086 # one path a word
    copy_at "" $(ldd "$BUILD_DIR/bin/devhost" "$so" ${HIL_EXTRA_BINS:-} | ldd_paths)
    # libsystemd, which serve loads when it needs it (host/libsystemd.hpp),
    # and what it needs.
    local sd
    sd=$(ldconfig -p | sed -n 's/^[[:space:]]*libsystemd\.so\.0 (libc6,x86-64) => //p' | head -n 1)
    [ -n "$sd" ] || fail "no libsystemd.so.0 (apt-get install libsystemd0)"
    # shellcheck disable=SC2046 # one path a word
    copy_at "" "$sd" $(ldd "$sd" | ldd_paths)
    if [ -n "${UDEV_DIR:-}" ]; then udev_root; fi
    cp "$guest" "$ROOT/init" && chmod 755 "$ROOT/init"
    cp "$SOURCE_DIR/tests/hil/guest-lib.sh" "$ROOT/hil/lib.sh"
    cp "$(dirname "$guest")"/*.ini "$ROOT/hil/"
    (cd "$ROOT" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null | gzip -1 >"$WORK/initrd.gz") ||
        fail "cannot build the initramfs"
}

# Boots with the guest console on ttyS0 (this script's $CONSOLE; never the
# host's own serial port) and the extra QEMU arguments given; fails unless
# the guest printed HIL-DONE. $CONSOLE is then the log without CRs.
hil_boot() { # qemu_args...
    exec 9>&- # the cache lock: the cache is ready
    CONSOLE="$WORK/console.log"
    say "booting $(cat "$KDIR/package" 2>/dev/null || echo vmlinuz) in qemu (TCG, timeout ${QEMU_TIMEOUT}s)"
    timeout -k 5 "$QEMU_TIMEOUT" qemu-system-x86_64 -M pc -accel tcg -m 384 -smp 1 -nographic -no-reboot \
        -monitor none -serial stdio -kernel "$KDIR/vmlinuz" -initrd "$WORK/initrd.gz" \
        -append "console=ttyS0 panic=-1 quiet" "$@" </dev/null >"$CONSOLE" 2>&1
    rc=$?
    [ $rc = 124 ] || [ $rc = 137 ] && { tail -n 40 "$CONSOLE"; fail "qemu did not finish within ${QEMU_TIMEOUT}s"; }
    grep -q 'HIL-DONE' "$CONSOLE" || { tail -n 60 "$CONSOLE"; fail "the guest did not finish its run (qemu exit $rc)"; }
    tr -d '\r' <"$CONSOLE" >"$WORK/console.txt"
    CONSOLE="$WORK/console.txt"
}

# --- checks on the records a guest run printed between "HIL-BEGIN run" and
# "HIL-END run rc=N" ---------------------------------------------------------
records() { sed -n "/^HIL-BEGIN $1\$/,/^HIL-END $1 /p" "$CONSOLE"; }

check() { # run, step (a basic regex matching the start of the record's step), expected status
    run=$1 step=$2 status=$3
    if records "$run" | grep "\"step\":\"$step" | grep -q "\"status\":\"$status\""; then
        say "ok: $run: $step -> $status"
    else
        say "FAILED: $run: expected step '$step' -> $status; records were:"
        records "$run" | sed 's/^/    /'
        failures=$((failures + 1))
    fi
}
check_text() { # run, text the run printed
    if records "$1" | grep -qF -- "$2"; then
        say "ok: $1: printed '$2'"
    else
        say "FAILED: $1: did not print '$2'"
        failures=$((failures + 1))
    fi
}
check_info() { # run, key, value
    if records "$1" | grep -qF "\"$2\":\"$3\""; then
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
check_bytes() { # what, expected (printf format), file
    expected=$(printf "$2" | od -An -c)
    got=$(od -An -c "$3")
    if [ "$got" = "$expected" ]; then
        say "ok: $1"
    else
        say "FAILED: $1; expected:"
        printf '%s\n' "$expected" | sed 's/^/    /'
        say "got:"
        printf '%s\n' "$got" | sed 's/^/    /'
        failures=$((failures + 1))
    fi
}

hil_finish() { # what passed
    if [ $failures -ne 0 ]; then
        say "console log: $CONSOLE"
        fail "$failures check(s) failed"
    fi
    echo "PASS: $*"
    exit 0
}
