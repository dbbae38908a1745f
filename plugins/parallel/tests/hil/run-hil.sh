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
# A probe (enumerate-probe.c) then calls the plugin's ABI 1.1 hooks on the
# real port: enumerate lists /dev/parport0, open shares the ppdev descriptor
# (share_fd), whose copy alone holds a claim once the plugin's descriptor is
# lost, unload gives back the signal handler the first claim installed.
#
# Installs what is missing: qemu-system-x86 and busybox-static with apt-get,
# and linux-image-amd64's current image package with `apt-get download` into
# BUILD_DIR/hil-cache (only vmlinuz and the three modules are extracted;
# shared with the other hil tests: tests/hil/qemu-guest.sh).
# Exit: 0 pass, 1 fail, 77 skipped (the reason is printed).
set -u

[ $# -eq 2 ] || { echo "usage: run-hil.sh BUILD_DIR SOURCE_DIR"; exit 2; }
. "$2/tests/hil/qemu-guest.sh" || exit 1
hil_init parallel "$1" "$2"
HERE="$SOURCE_DIR/plugins/parallel/tests/hil"
hil_tools
hil_kernel parport parport_pc ppdev
hil_initramfs parallel "$HERE/guest-run.sh" parport parport_pc ppdev
# The ABI 1.1 probe (enumerate-probe.c) and its libraries, appended to the
# initramfs as a second cpio archive (the kernel unpacks them in turn).
PROBE="$BUILD_DIR/tests/parallel_hil_probe"
[ -x "$PROBE" ] || fail "$PROBE is not built"
EXTRA="$WORK/extra"
mkdir -p "$EXTRA/opt/devhost/bin" && cp "$PROBE" "$EXTRA/opt/devhost/bin/" || fail "cannot stage $PROBE"
for lib in $(ldd "$PROBE" | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p' | sort -u); do
    mkdir -p "$EXTRA$(dirname "$lib")" && cp -L "$lib" "$EXTRA$lib" || fail "cannot copy $lib"
done
(cd "$EXTRA" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null | gzip -1 >>"$WORK/initrd.gz") ||
    fail "cannot append the probe to the initramfs"
OUT="$WORK/parport.out"
: >"$OUT"
hil_boot -parallel "file:$OUT"
grep -q 'HIL-NO-PARPORT' "$CONSOLE" && { tail -n 40 "$CONSOLE"; fail "the guest has no /dev/parport0"; }

# --- checks ------------------------------------------------------------------
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

check_rc probe 0
check_text probe "HIL-ENUM-STATUS DEVHOST_OK"
check_text probe "HIL-ENUM /dev/parport0|parallel port (ppdev), base 0x378, modes PCSPP"
check_text probe "HIL-OPEN DEVHOST_OK"
check_text probe "HIL-UNLOAD installed=1 restored=1"
check_text probe "HIL-SHARE ppdev char 99"
check_text probe "HIL-DROP ppdev"
check_text probe "HIL-LOCKED held=1"
check_text probe "HIL-DEAD held=1"
check_text probe "HIL-RELEASED held=0"

check_bytes "QEMU's parallel port received exactly the bytes the pipelines wrote" \
    'handshake: devhost hil\ndriver: devhost hil\nafter the wait\n' "$OUT"
hil_finish "parallel plugin on ppdev in QEMU"
