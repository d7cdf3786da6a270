#!/bin/bash
# run-vm-test.sh: modsignd under a real systemd as PID 1.
#
# A Debian 12 root (debootstrap, minbase, systemd) is built once per build tree and cached. Each
# run installs the build (modsignd, modsignctl, the units, the catalog, tmpfiles), a fresh test
# key and two unsigned test modules, and boots Debian's own kernel under qemu (TCG) with the
# root as its initramfs. In the guest, modsignd-vmtest.service (guest/vmtest.sh) starts the
# socket, activates the service through it, drops unsigned modules into
# /lib/modules/RELEASE/updates/dkms, waits for modsignd to sign them, reloads, stops, checks the
# journal, prints one "VMTEST RESULT ..." line on the serial console and powers off. The host
# also rates the unit with `systemd-analyze security --offline=true` (exposure must be <= 2.5).
#
# The per-run files are packed as a second cpio archive appended to the cached one: the kernel
# unpacks concatenated archives in order into the same rootfs (Documentation/driver-api/
# early-userspace/buffer-format.rst), so the guest sees a fresh copy of the cached root with the
# build installed, and the cache is never written to after it is built.
#
# Environment:
#   top_builddir  the build tree with ./modsignd and ./modsignctl (default: $PWD)
#   srcdir        the source tree (default: two levels above this script)
#   VM_CACHE      where the root is built and kept (default: $top_builddir/tests/vm/cache)
#   VM_KERNEL     the guest kernel (default: the newest /boot/vmlinuz-*, package linux-image-amd64)
#   VM_MIRROR     the Debian mirror for debootstrap (default: the first bookworm source of apt)
#   VM_TIMEOUT    seconds the VM may run (default: 300)
#   VM_TEST_LOG   where the serial log of the last run is kept (default: $VM_CACHE/serial.log)
#   VM_KEEP=1     keep the per-run work directory
#   QEMU          the emulator (default: qemu-system-x86_64)
#
# Exit: 0 pass, 1 fail, 77 skip (qemu or debootstrap missing or unusable: debootstrap needs
# root; or no Debian kernel image to boot).
set -eu

me=vm-test
here=$(cd "$(dirname "$0")" && pwd)
srcdir=${srcdir:-$(cd "$here/../.." && pwd)}
top_builddir=${top_builddir:-$PWD}
top_builddir=$(cd "$top_builddir" && pwd)
VM_CACHE=${VM_CACHE:-$top_builddir/tests/vm/cache}
VM_TIMEOUT=${VM_TIMEOUT:-300}
QEMU=${QEMU:-qemu-system-x86_64}
PATH=$PATH:/usr/sbin:/sbin

SUITE=bookworm
VARIANT=minbase
# The guest's packages: systemd as PID 1, and the runtime libraries of modsignd and modsignctl.
INCLUDE=systemd,systemd-sysv,dbus,kmod,openssl,libssl3,liblzma5,libzstd1,zlib1g,libinih1,libjson-c5,libsystemd0,libp11-3
# Bump when the way the cached root is made changes: the stamp holds it with the package list.
CACHE_FORMAT=1
EXPOSURE_MAX=2.5

log() { echo "$me: $*"; }
die() {
	echo "$me: FAIL: $*" >&2
	exit 1
}
skip() {
	echo "$me: SKIP: $*"
	exit 77
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

t_start=$(now)

# Our own files: through srcdir (automake), else next to this script.
tdir=
for d in "$srcdir/tests/vm" "$here"; do
	if [ -f "$d/guest/vmtest.sh" ] && [ -f "$d/vmtest-module.c" ]; then
		tdir=$(cd "$d" && pwd)
		break
	fi
done
[ -n "$tdir" ] || die "cannot find guest/vmtest.sh and vmtest-module.c (srcdir=$srcdir)"
units=
for d in "$srcdir/systemd" "$tdir/../../systemd"; do
	if [ -f "$d/modsignd.service.in" ]; then
		units=$(cd "$d" && pwd)
		break
	fi
done
[ -n "$units" ] || die "cannot find systemd/modsignd.service.in (srcdir=$srcdir)"

# ---------------------------------------------------------------- prerequisites
command -v "$QEMU" >/dev/null 2>&1 || skip "$QEMU not found (apt-get install qemu-system-x86)"
command -v debootstrap >/dev/null 2>&1 || skip "debootstrap not found (apt-get install debootstrap)"
[ "$(id -u)" = 0 ] || skip "debootstrap and packing a root-owned tree need root"
if [ -z "${VM_KERNEL:-}" ]; then
	VM_KERNEL=$(find /boot -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | sort -V | tail -n 1)
fi
if [ -z "$VM_KERNEL" ] || [ ! -r "$VM_KERNEL" ]; then
	skip "no Debian kernel in /boot to boot (apt-get install linux-image-amd64)"
fi
release=${VM_KERNEL##*/vmlinuz-}
case $release in
"" | */*) die "cannot tell the release of VM_KERNEL=$VM_KERNEL (expected .../vmlinuz-RELEASE)" ;;
esac
missing=
for t in gcc cpio gzip openssl ldd awk flock timeout systemd-analyze; do
	command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
[ -z "$missing" ] || die "missing tools:$missing"
for b in modsignd modsignctl; do
	[ -x "$top_builddir/$b" ] || die "$top_builddir/$b is not built (top_builddir=$top_builddir)"
done

# The mirror: the first one-line or deb822 apt source that serves the suite itself.
find_mirror() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk -v suite="$SUITE" '$1 == "deb" {
			i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
			if ($(i + 1) == suite) { print $i; exit }
		}' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk -v suite="$SUITE" '
			function flush() { if (deb && ok && uri != "" && !done) { print uri; done = 1 } deb = ok = 0; uri = "" }
			/^[ \t]*$/ { flush(); next }
			tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
			tolower($1) == "uris:" { uri = $2 }
			tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) ok = 1 }
			tolower($1) == "enabled:" && tolower($2) == "no" { deb = 0 }
			END { flush() }' "$f"
	done
}

# ---------------------------------------------------------------- the cached root
mkdir -p "$VM_CACHE"
VM_CACHE=$(cd "$VM_CACHE" && pwd)
VM_TEST_LOG=${VM_TEST_LOG:-$VM_CACHE/serial.log}
root=$VM_CACHE/root
base=$VM_CACHE/base.cpio.gz
stamp=$VM_CACHE/stamp
want_stamp="format=$CACHE_FORMAT suite=$SUITE variant=$VARIANT include=$INCLUDE"

# debootstrap mounts /proc and /sys in the target; a killed one leaves them there, and removing
# the tree must not reach into them.
unmount_under() {
	local m
	awk -v p="$1/" 'index($2 "/", p) == 1 { print $2 }' /proc/self/mounts | sort -r |
		while read -r m; do umount -l "$m" || true; done
}

build_cache() {
	local mirror=${VM_MIRROR:-} t0 new=$VM_CACHE/root.new
	[ -n "$mirror" ] || mirror=$(find_mirror | head -n 1)
	[ -n "$mirror" ] || die "no $SUITE mirror in /etc/apt/sources.list* (set VM_MIRROR)"
	log "building the cached root (debootstrap --variant=$VARIANT $SUITE from $mirror) in $VM_CACHE"
	t0=$(now)
	rm -f "$stamp"
	unmount_under "$new"
	rm -rf --one-file-system "$new" "$root" "$base" "$base.new"
	if ! timeout -k 10 1800 debootstrap --variant="$VARIANT" --include="$INCLUDE" "$SUITE" "$new" "$mirror" \
		>"$VM_CACHE/debootstrap.log" 2>&1; then
		unmount_under "$new"
		tail -n 30 "$VM_CACHE/debootstrap.log" >&2
		die "debootstrap failed (log: $VM_CACHE/debootstrap.log)"
	fi
	# Without udev, dev-ttyS0.device never appears and the serial getty holds boot for 90 s.
	ln -sfn /dev/null "$new/etc/systemd/system/serial-getty@ttyS0.service"
	echo vmtest >"$new/etc/hostname"
	# The downloaded packages would only make the initramfs larger.
	rm -f "$new"/var/cache/apt/archives/*.deb "$new"/var/cache/apt/*.bin
	rm -rf "$new"/var/lib/apt/lists/*
	[ -x "$new/sbin/init" ] || die "the root has no /sbin/init (systemd-sysv)"
	(set -o pipefail && cd "$new" && find . | cpio -o -H newc --quiet | gzip -1 >"$base.new") ||
		die "cannot pack $new into $base.new"
	mv "$new" "$root"
	mv "$base.new" "$base"
	echo "$want_stamp" >"$stamp"
	log "cached root built in $(since "$t0") s ($(du -sm "$root" | cut -f1) MB, initramfs $(du -m "$base" | cut -f1) MB)"
}

exec 9>"$VM_CACHE/.lock"
flock -w 3600 9 || die "cannot lock $VM_CACHE/.lock within an hour"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want_stamp" ] || [ ! -f "$base" ] || [ ! -d "$root" ]; then
	build_cache
else
	log "using the cached root in $VM_CACHE"
fi

# ---------------------------------------------------------------- this run's files
work=$(mktemp -d "${TMPDIR:-/tmp}/modsignd-vm-test.XXXXXX")
qpid=
# shellcheck disable=SC2317 # called through the EXIT trap
cleanup() {
	if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
		kill "$qpid" 2>/dev/null || true
		timeout 20 tail --pid="$qpid" -f /dev/null || true
	fi
	if [ "${VM_KEEP:-0}" = 1 ]; then
		log "kept $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# Paths in the guest. Debian 12 merges /usr: /lib is a symlink to usr/lib, and an archive entry
# for "lib/..." would fight the symlink, so files go where the symlinks lead.
if [ -L "$root/lib" ]; then libdir=usr/lib; else libdir=lib; fi
ov=$work/overlay
install -d -m 0755 "$ov" "$ov/usr/sbin" "$ov/usr/bin" "$ov/usr/lib/systemd/system" \
	"$ov/usr/lib/systemd/catalog" "$ov/usr/lib/tmpfiles.d" "$ov/usr/lib/modsignd-vmtest" \
	"$ov/$libdir/modules/$release" "$ov/etc/systemd/system/multi-user.target.wants"
install -d -m 0700 "$ov/etc/modsignd"
# A fresh root: the guest must not inherit anything from the build tree's owner.
chmod 0755 "$ov/etc" "$ov/etc/systemd" "$ov/etc/systemd/system" "$ov/usr" "$ov/usr/lib" "$ov/usr/lib/systemd"

install -m 0755 "$top_builddir/modsignd" "$ov/usr/sbin/modsignd"
install -m 0755 "$top_builddir/modsignctl" "$ov/usr/bin/modsignctl"
sed -e 's|@sbindir@|/usr/sbin|g' -e 's|@bindir@|/usr/bin|g' "$units/modsignd.service.in" >"$ov/usr/lib/systemd/system/modsignd.service"
if grep -n '@[a-z_]*@' "$ov/usr/lib/systemd/system/modsignd.service"; then
	die "modsignd.service still has @placeholders@ after substitution"
fi
install -m 0644 "$units/modsignd.socket" "$ov/usr/lib/systemd/system/modsignd.socket"
install -m 0644 "$units/modsignd.catalog" "$ov/usr/lib/systemd/catalog/modsignd.catalog"
install -m 0644 "$units/modsignd.tmpfiles" "$ov/usr/lib/tmpfiles.d/modsignd.conf"
chmod 0644 "$ov/usr/lib/systemd/system/modsignd.service"

# The DKMS and kernel-upgrade hooks, where a package (prefix /usr, sysconfdir /etc) puts them.
install -d -m 0755 "$ov/usr/lib/modsignd" "$ov/usr/lib/kernel/install.d" "$ov/etc/kernel/postinst.d" \
	"$ov/etc/dkms/framework.conf.d"
chmod 0755 "$ov/etc/kernel" "$ov/etc/dkms" "$ov/usr/lib/kernel"
hook_subst() { # TEMPLATE DEST MODE
	sed -e 's|@bindir@|/usr/bin|g' -e 's|@sysconfdir@|/etc|g' -e 's|@modsignd_libdir@|/usr/lib/modsignd|g' \
		-e 's|@MODSIGNCTL_ARGS@ ||g' -e 's|@DKMS_CHECK_ARGS@||g' "$srcdir/hooks/$1" >"$ov/$2"
	chmod "$3" "$ov/$2"
	if grep -n '@[A-Za-z_]*@' "$ov/$2"; then
		die "$2 still has @placeholders@ after substitution"
	fi
}
hook_subst dkms-sign-file.in usr/lib/modsignd/dkms-sign-file 0755
hook_subst dkms-sign-tool.in usr/lib/modsignd/dkms-sign-tool 0755
hook_subst kernel-postinst.in usr/lib/modsignd/kernel-postinst 0755
hook_subst kernel-postinst.in etc/kernel/postinst.d/dkms-modsignd 0755
hook_subst kernel-install.in usr/lib/kernel/install.d/60-modsignd.install 0755
hook_subst dkms-framework.conf.in etc/dkms/framework.conf.d/modsignd.conf 0644

# A registered DKMS package that builds the test modules, as `dkms add` and `dkms build` leave
# it: modsignd's default policy (Mode=dkms) signs only what a registered package builds.
install -d -m 0755 "$ov/usr/src/vmtest-1.0" "$ov/var/lib/dkms/vmtest/1.0/build" \
	"$ov/var/lib/dkms/vmtest/1.0/$release/$(uname -m)/module"
chmod 0755 "$ov/usr/src" "$ov/var" "$ov/var/lib" "$ov/var/lib/dkms" "$ov/var/lib/dkms/vmtest"
cat >"$ov/usr/src/vmtest-1.0/dkms.conf" <<'DKMSCONF'
PACKAGE_NAME="vmtest"
PACKAGE_VERSION="1.0"
BUILT_MODULE_NAME[0]="vmtest"
BUILT_MODULE_NAME[1]="vmtest2"
BUILT_MODULE_NAME[2]="vmtest3"
BUILT_MODULE_NAME[3]="vmtest4"
DEST_MODULE_LOCATION[0]="/updates/dkms"
DEST_MODULE_LOCATION[1]="/updates/dkms"
DEST_MODULE_LOCATION[2]="/updates/dkms"
DEST_MODULE_LOCATION[3]="/updates/dkms"
DKMSCONF
chmod 0644 "$ov/usr/src/vmtest-1.0/dkms.conf"
ln -s /usr/src/vmtest-1.0 "$ov/var/lib/dkms/vmtest/1.0/source"

# The test key: RSA-2048, a self-signed certificate, the daemon's default paths.
if ! openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 7 -subj "/CN=modsignd VM test key/" \
	-addext "keyUsage=digitalSignature" -addext "extendedKeyUsage=codeSigning" \
	-keyout "$work/signing.key" -out "$work/signing.crt" >"$work/openssl.log" 2>&1; then
	cat "$work/openssl.log" >&2
	die "cannot make the test key"
fi
install -m 0600 "$work/signing.key" "$ov/etc/modsignd/signing.key"
install -m 0644 "$work/signing.crt" "$ov/etc/modsignd/signing.crt"

# Unsigned modules for the guest's kernel: one before the reload, one after it, one for the DKMS
# shim and one for the kernel-upgrade hook.
for name in vmtest vmtest2 vmtest3 vmtest4; do
	gcc -c -O2 -o "$ov/usr/lib/modsignd-vmtest/$name.ko" -DVMTEST_NAME="\"$name\"" \
		-DVMTEST_RELEASE="\"$release\"" "$tdir/vmtest-module.c" || die "cannot compile $name.ko"
	chmod 0644 "$ov/usr/lib/modsignd-vmtest/$name.ko"
	rc=0
	"$top_builddir/modsignctl" verify --cert "$work/signing.crt" "$ov/usr/lib/modsignd-vmtest/$name.ko" \
		>/dev/null 2>&1 || rc=$?
	[ "$rc" = 3 ] || die "$name.ko: modsignctl verify exits $rc on the host, not 3 (unsigned)"
done

install -m 0755 "$tdir/guest/vmtest.sh" "$ov/usr/lib/modsignd-vmtest/vmtest.sh"
install -m 0644 "$tdir/guest/modsignd-vmtest.service" "$ov/etc/systemd/system/modsignd-vmtest.service"
ln -s ../modsignd-vmtest.service "$ov/etc/systemd/system/multi-user.target.wants/modsignd-vmtest.service"

# The binaries' shared libraries must exist in the guest (the host's ldd names them).
lib_missing=
while read -r lib; do
	found=
	for d in usr/lib/x86_64-linux-gnu lib/x86_64-linux-gnu usr/lib64 lib64 usr/lib lib; do
		if [ -e "$root/$d/$lib" ]; then
			found=1
			break
		fi
	done
	[ -n "$found" ] || lib_missing="$lib_missing $lib"
done < <(ldd "$top_builddir/modsignd" "$top_builddir/modsignctl" |
	awk '$2 == "=>" && $3 ~ /^\// { n = split($3, p, "/"); print p[n] } $2 == "=>" && $3 == "not" { print $1 }' | sort -u)
[ -z "$lib_missing" ] || die "shared libraries of modsignd/modsignctl missing in the guest root:$lib_missing (add their packages to INCLUDE)"

# The unit's exposure, as systemd rates it (offline: the host's systemd reads the file).
sec_out=$(cd "$ov/usr/lib/systemd/system" && timeout 60 systemd-analyze security --offline=true --no-pager modsignd.service 2>&1) ||
	{
		echo "$sec_out" >&2
		die "systemd-analyze security --offline=true failed"
	}
exposure=$(echo "$sec_out" | sed -n 's/.*Overall exposure level for modsignd.service: \([0-9.]*\).*/\1/p')
[ -n "$exposure" ] || {
	echo "$sec_out" >&2
	die "no exposure level in systemd-analyze security's output"
}
log "systemd-analyze security --offline=true modsignd.service: exposure $exposure (limit $EXPOSURE_MAX)"
sec_ok=1
if ! awk -v e="$exposure" -v m="$EXPOSURE_MAX" 'BEGIN { exit !(e <= m) }'; then
	echo "$sec_out" | grep -E '^✗' >&2 || true
	log "FAIL: exposure $exposure is above $EXPOSURE_MAX"
	sec_ok=0
fi

# Pack: the cached archive, then ours on top of it.
(set -o pipefail && cd "$ov" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1 >"$work/overlay.cpio.gz") ||
	die "cannot pack the per-run files"
cat "$base" "$work/overlay.cpio.gz" >"$work/root.cpio.gz"

# ---------------------------------------------------------------- boot
log "booting $VM_KERNEL ($release) under $QEMU (TCG), at most $VM_TIMEOUT s"
serial=$work/serial.log
t_boot=$(now)
timeout -k 10 "$VM_TIMEOUT" "$QEMU" -m 2048 -nographic -no-reboot \
	-kernel "$VM_KERNEL" -initrd "$work/root.cpio.gz" \
	-append "console=ttyS0 panic=-1 rdinit=/sbin/init" \
	</dev/null >"$serial" 2>&1 &
qpid=$!
t_result=
while kill -0 "$qpid" 2>/dev/null; do
	if [ -z "$t_result" ] && grep -aq 'VMTEST RESULT' "$serial"; then
		t_result=$(since "$t_boot")
		log "result after ${t_result} s of boot; waiting for the guest to power off"
	fi
	sleep 0.5
done
qrc=0
wait "$qpid" || qrc=$?
qpid=
t_vm=$(since "$t_boot")
if [ -z "$t_result" ] && grep -aq 'VMTEST RESULT' "$serial"; then
	t_result=$t_vm
fi
cp "$serial" "$VM_TEST_LOG" 2>/dev/null || true

results=$(tr -d '\r' <"$serial" | grep -a -o 'VMTEST RESULT .*' || true)
n_results=$(printf '%s' "$results" | grep -c 'VMTEST RESULT' || true)
ok=1
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
	log "FAIL: the VM did not finish within $VM_TIMEOUT s"
	ok=0
elif [ "$qrc" != 0 ]; then
	log "FAIL: qemu exited with status $qrc"
	ok=0
fi
if [ "$n_results" != 1 ]; then
	log "FAIL: $n_results 'VMTEST RESULT' lines on the serial console (expected exactly one)"
	ok=0
fi
if [ "$results" != "VMTEST RESULT PASS" ]; then
	ok=0
fi
tr -d '\r' <"$serial" | grep -a -E '^vmtest: |VMTEST RESULT' || true
log "timings: boot to result ${t_result:-(none)} s, qemu ran $t_vm s, whole test $(since "$t_start") s"
if [ "$ok" = 1 ] && [ "$sec_ok" = 1 ]; then
	log "PASS (serial log: $VM_TEST_LOG)"
	exit 0
fi
if [ "$ok" != 1 ]; then
	echo "$me: ---- the serial log's tail ($VM_TEST_LOG)"
	tr -d '\r' <"$serial" | tail -n 80
	echo "$me: ----"
fi
log "FAIL"
exit 1
