#!/bin/bash
# run-rotate-kernel-test.sh: after `modsignctl rotate`, does a real kernel load the
# re-signed modules?
#
# The test kernel (build-kernel.sh, cached in KERNEL_CACHE) trusts the four test keys it
# builds in (CACHE/keys/{rsa2048,rsa4096,ec256,ec384}). This test rotates from one built-in
# key to another, rsa2048 -> rsa4096, over a scratch machine: ROOT/lib/modules/KVER with
# mst_hello copies in updates/ (plain and .ko.xz) and extra/, a DKMS-like tree, all signed by
# rsa2048, and one module signed by a key the kernel does not trust (which rotate must leave
# alone). `rotate --force` (the guest kernel, not this host's, is the one to trust the new
# key) re-signs; then the guest loads every module:
#   re-signed modules           OK, and modinfo names rsa4096 as their signer
#   the untrusted key's module  ERR EKEYREJECTED, byte-identical to before
#
# Environment: MODSIGNCTL, KERNEL_CACHE, srcdir, QEMU, BUSYBOX, LINUX_SOURCE, QEMU_TIMEOUT
# as for run-kernel-test.sh.
# Exit: 0 pass, 1 fail, 77 skip (qemu or linux-source-6.1 missing).
set -eu

me=rotate-kernel-test
here=$(cd "$(dirname "$0")" && pwd)
srcdir=${srcdir:-$(cd "$here/../.." && pwd)}
MODSIGNCTL=${MODSIGNCTL:-$PWD/modsignctl}
KERNEL_CACHE=${KERNEL_CACHE:-$PWD/tests/kernel/cache}
QEMU=${QEMU:-qemu-system-x86_64}
QEMU_TIMEOUT=${QEMU_TIMEOUT:-120}
BUSYBOX=${BUSYBOX:-/bin/busybox}
LINUX_SOURCE=${LINUX_SOURCE:-/usr/src/linux-source-6.1.tar.xz}
export LINUX_SOURCE

tdir=
for d in "$srcdir/tests/kernel" "$here"; do
	if [ -f "$d/finit.c" ] && [ -f "$d/module/mst_hello.c" ]; then
		tdir=$(cd "$d" && pwd)
		break
	fi
done
[ -n "$tdir" ] || {
	echo "$me: cannot find finit.c and module/ (srcdir=$srcdir)" >&2
	exit 1
}

if ! command -v "$QEMU" >/dev/null 2>&1; then
	echo "$me: SKIP: $QEMU not found (apt-get install qemu-system-x86)"
	exit 77
fi
if [ ! -f "$LINUX_SOURCE" ]; then
	echo "$me: SKIP: $LINUX_SOURCE not found (apt-get install linux-source-6.1)"
	exit 77
fi
for t in gcc make cpio gzip openssl timeout xz modinfo cmp; do
	command -v "$t" >/dev/null 2>&1 || {
		echo "$me: FAIL: missing tool $t" >&2
		exit 1
	}
done
[ -x "$BUSYBOX" ] || {
	echo "$me: FAIL: $BUSYBOX missing (busybox-static)" >&2
	exit 1
}
[ -x "$MODSIGNCTL" ] || {
	echo "$me: FAIL: MODSIGNCTL=$MODSIGNCTL is not an executable" >&2
	exit 1
}
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES

work=$(mktemp -d "${TMPDIR:-/tmp}/modsignd-rotate-kernel.XXXXXX")
trap 'rm -rf "$work"' EXIT
die() {
	echo "$me: FAIL: $*" >&2
	exit 1
}

# The kernel tests run side by side under make -j: one builds the shared cache, the others
# wait for it (flock), then find it built.
mkdir -p "$KERNEL_CACHE"
flock "$KERNEL_CACHE/.build-lock" "$tdir/build-kernel.sh" "$KERNEL_CACHE" || die "build-kernel.sh failed"
K=$KERNEL_CACHE/keys
for k in rsa2048 rsa4096; do
	{ [ -f "$K/$k.key" ] && [ -f "$K/$k.crt" ]; } || die "no built-in test key $k in $K"
done
[ -f "$KERNEL_CACHE/bzImage" ] || die "no bzImage in $KERNEL_CACHE"

echo "$me: building mst_hello and finit"
mkdir -p "$work/module"
cp "$tdir/module/mst_hello.c" "$work/module/"
echo 'obj-m := mst_hello.o' >"$work/module/Kbuild"
make -C "$KERNEL_CACHE/src" M="$work/module" modules >"$work/modules.log" 2>&1 ||
	die "building the test module: $(tail -n 20 "$work/modules.log")"
kver=$(modinfo -F vermagic "$work/module/mst_hello.ko" | cut -d' ' -f1)

# The scratch machine; key files copied (rotate retires the old one by renaming it).
m=$work/machine
lm=$m/lib/modules/$kver
mkdir -p "$lm/updates/dkms" "$lm/extra" "$m/var/lib/dkms/mst/1.0/$kver/x86_64/module" "$m/etc/modsignd" "$m/state"
install -m 0600 "$K/rsa2048.key" "$m/etc/modsignd/old.key"
install -m 0644 "$K/rsa2048.crt" "$m/etc/modsignd/old.crt"
install -m 0600 "$K/rsa4096.key" "$m/etc/modsignd/new.key"
install -m 0644 "$K/rsa4096.crt" "$m/etc/modsignd/new.crt"
printf '[Key]\nPrivateKey=%s\nCertificate=%s\n[Daemon]\nSocket=%s\nStateDirectory=%s\n' \
	"$m/etc/modsignd/old.key" "$m/etc/modsignd/old.crt" "$m/none.socket" "$m/state" >"$m/etc/modsignd/modsignd.conf"
openssl req -new -x509 -newkey rsa:2048 -nodes -sha256 -days 30 -subj "/CN=modsignd untrusted rotate test" \
	-addext "subjectKeyIdentifier=hash" -keyout "$work/untrusted.key" -out "$work/untrusted.crt" 2>/dev/null ||
	die "openssl req (untrusted key)"
chmod 0600 "$work/untrusted.key"

old_mods=("$lm/updates/dkms/r-sha256.ko" "$lm/extra/r-sha512.ko" "$lm/updates/r-keyid.ko"
	"$m/var/lib/dkms/mst/1.0/$kver/x86_64/module/r-dkms.ko")
for f in "${old_mods[@]}" "$lm/updates/untrusted.ko"; do
	cp "$work/module/mst_hello.ko" "$f"
done
xz --check=crc32 --lzma2=dict=1MiB -c "$work/module/mst_hello.ko" >"$lm/updates/r-xz.ko.xz"
old_mods+=("$lm/updates/r-xz.ko.xz")
ms() { "$MODSIGNCTL" -q "$@"; }
ms sign --key "$K/rsa2048.key" --cert "$K/rsa2048.crt" --hash sha256 \
	"$lm/updates/dkms/r-sha256.ko" "$lm/updates/r-xz.ko.xz" "$m/var/lib/dkms/mst/1.0/$kver/x86_64/module/r-dkms.ko" ||
	die "modsignctl sign (rsa2048)"
ms sign --key "$K/rsa2048.key" --cert "$K/rsa2048.crt" --hash sha512 "$lm/extra/r-sha512.ko" || die "sign sha512"
ms sign --key "$K/rsa2048.key" --cert "$K/rsa2048.crt" --hash sha256 --keyid "$lm/updates/r-keyid.ko" ||
	die "sign --keyid"
ms sign --key "$work/untrusted.key" --cert "$work/untrusted.crt" --hash sha256 "$lm/updates/untrusted.ko" ||
	die "sign (untrusted)"
cp "$lm/updates/untrusted.ko" "$work/untrusted.before"

echo "$me: modsignctl rotate --force: rsa2048 -> rsa4096"
"$MODSIGNCTL" --config "$m/etc/modsignd/modsignd.conf" rotate --force --modules-dir "$m/lib/modules" \
	--dkms-tree "$m/var/lib/dkms" --new-key "$m/etc/modsignd/new.key" --new-cert "$m/etc/modsignd/new.crt" \
	>"$work/rotate.out" 2>&1 || die "rotate failed: $(cat "$work/rotate.out")"
cat "$work/rotate.out"
for f in "${old_mods[@]}"; do
	"$MODSIGNCTL" -q verify --cert "$K/rsa4096.crt" "$f" || die "$f does not verify with rsa4096 after rotate"
done
cmp -s "$work/untrusted.before" "$lm/updates/untrusted.ko" || die "rotate touched the untrusted key's module"
[ -f "$m/etc/modsignd/old.key.retired" ] || die "the old key was not retired"
echo "$me: ok: ${#old_mods[@]} modules re-signed with rsa4096 on the host side; the other key's module untouched"

root=$work/root
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/v"
gcc -static -O2 -Wall -o "$root/finit" "$tdir/finit.c" || die "building finit.c"
cp "$BUSYBOX" "$root/bin/busybox"
loads=
for f in "${old_mods[@]}" "$lm/updates/untrusted.ko"; do
	cp "$f" "$root/v/"
	case $f in
	*.xz) loads="$loads/finit /v/$(basename "$f") compressed"$'\n' ;;
	*) loads="$loads/finit /v/$(basename "$f")"$'\n' ;;
	esac
done
{
	printf '#!/bin/busybox sh\n/bin/busybox --install -s /bin\nexport PATH=/bin\n'
	# shellcheck disable=SC2016 # $(uname -r) runs in the guest
	printf 'mount -t proc proc /proc\nmount -t sysfs sysfs /sys\ndmesg -n 1\necho "MST-BEGIN $(uname -r)"\n'
	printf '%s' "$loads"
	printf 'echo MST-END\nreboot -f\n'
} >"$root/init"
chmod 755 "$root/init"
(cd "$root" && find . | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$work/initrd.gz"

echo "$me: booting the test kernel under qemu"
qrc=0
timeout "$QEMU_TIMEOUT" "$QEMU" -m 256 -nographic -no-reboot \
	-kernel "$KERNEL_CACHE/bzImage" -initrd "$work/initrd.gz" \
	-append "console=ttyS0 panic=-1 oops=panic" </dev/null >"$work/serial.raw" 2>&1 || qrc=$?
tr -d '\r' <"$work/serial.raw" >"$work/serial.log"
grep -q '^MST-END' "$work/serial.log" || {
	tail -n 40 "$work/serial.log" >&2
	die "the guest did not finish (qemu exit $qrc)"
}
sed -n '/^MST-BEGIN/,/^MST-END/p' "$work/serial.log"

fails=0
expect() {
	if grep -qx "$1" "$work/serial.log"; then
		echo "$me: ok: $1"
	else
		echo "$me: FAIL: expected '$1'" >&2
		fails=$((fails + 1))
	fi
}
for f in "${old_mods[@]}"; do
	expect "RESULT $(basename "$f") OK"
done
expect 'RESULT untrusted.ko ERR EKEYREJECTED'
[ "$fails" -eq 0 ] || die "$fails expectation(s) not met"
echo "$me: PASS: the kernel loads every module rotate re-signed with the new built-in key"
