#!/bin/bash
# run-keygen-kernel-test.sh: does a real kernel accept modules signed with a key
# that `modsignctl keygen` made?
#
# The test kernel (build-kernel.sh, cached in KERNEL_CACHE) trusts only the
# certificates built into it, so a new key cannot be one of them without a
# rebuild. It has CONFIG_SECONDARY_TRUSTED_KEYRING, though, and in 6.1 that
# keyring takes any certificate signed by a built-in key. So: keygen makes a key
# and its self-signed certificate; a second certificate for the same public key,
# with the same subjectKeyIdentifier, is issued by the built-in test key
# rsa2048 (whose private key build-kernel.sh leaves in the cache); the guest adds
# it to .secondary_trusted_keys (addkey.c) and loads modules signed by the
# keygen key:
#   keyid-before  --keyid, before the certificate is added: EKEYREJECTED
#   keyid-after   --keyid, after: loads (the signer is named by the SKID, which
#                 both certificates share)
#   serial-after  issuer+serial, after: EKEYREJECTED (it names the self-signed
#                 certificate, which the kernel never saw)
# A key that is enrolled through MOK or built in is trusted by its self-signed
# certificate, in both modes; that needs EFI/shim or a rebuild, not done here.
#
# Environment: MODSIGNCTL, KERNEL_CACHE, srcdir, QEMU, BUSYBOX, LINUX_SOURCE,
# QEMU_TIMEOUT as for run-kernel-test.sh.
# Exit: 0 pass, 1 fail, 77 skip (qemu or linux-source-6.1 missing).
set -eu

me=keygen-kernel-test
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
	if [ -f "$d/addkey.c" ] && [ -f "$d/finit.c" ] && [ -f "$d/module/mst_hello.c" ]; then
		tdir=$(cd "$d" && pwd)
		break
	fi
done
[ -n "$tdir" ] || {
	echo "$me: cannot find addkey.c, finit.c and module/ (srcdir=$srcdir)" >&2
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
for t in gcc make cpio gzip openssl timeout; do
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

work=$(mktemp -d "${TMPDIR:-/tmp}/modsignd-keygen-kernel.XXXXXX")
trap 'rm -rf "$work"' EXIT
die() {
	echo "$me: FAIL: $*" >&2
	exit 1
}

# The kernel tests run side by side under make -j: one builds the shared cache, the others
# wait for it (flock), then find it built.
mkdir -p "$KERNEL_CACHE"
flock "$KERNEL_CACHE/.build-lock" "$tdir/build-kernel.sh" "$KERNEL_CACHE" || die "build-kernel.sh failed"
CA=$KERNEL_CACHE/keys/rsa2048
{ [ -f "$KERNEL_CACHE/bzImage" ] && [ -f "$CA.key" ] && [ -f "$CA.crt" ]; } ||
	die "no bzImage or built-in test key rsa2048 in $KERNEL_CACHE"

echo "$me: modsignctl keygen (defaults: RSA 4096)"
"$MODSIGNCTL" keygen --key "$work/k/signing.key" --cn "modsignd keygen kernel test" >"$work/keygen.out" ||
	die "keygen failed"
skid=$(openssl x509 -in "$work/k/signing.crt" -noout -ext subjectKeyIdentifier | tail -n 1 | tr -d ' ')

echo "$me: issuing a second certificate for the key, signed by the built-in rsa2048 key"
openssl req -new -key "$work/k/signing.key" -subj "/CN=modsignd keygen kernel test" -out "$work/cross.csr" ||
	die "openssl req"
cat >"$work/cross.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=codeSigning
subjectKeyIdentifier=$skid
authorityKeyIdentifier=keyid
EXT
openssl x509 -req -in "$work/cross.csr" -CA "$CA.crt" -CAkey "$CA.key" -set_serial 0x4d53 -days 30 \
	-sha256 -extfile "$work/cross.ext" -outform DER -out "$work/cross.der" 2>"$work/x509.log" ||
	die "openssl x509 -req: $(cat "$work/x509.log")"

echo "$me: building the test module and the helpers"
mkdir -p "$work/module"
cp "$tdir/module/Kbuild" "$tdir/module/"*.c "$tdir/module/"*.S "$work/module/"
make -C "$KERNEL_CACHE/src" M="$work/module" modules >"$work/modules.log" 2>&1 ||
	die "building the test module: $(tail -n 20 "$work/modules.log")"
root=$work/root
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/v"
gcc -static -O2 -Wall -o "$root/finit" "$tdir/finit.c" || die "building finit.c"
gcc -static -O2 -Wall -o "$root/addkey" "$tdir/addkey.c" || die "building addkey.c"
cp "$BUSYBOX" "$root/bin/busybox"
cp "$work/cross.der" "$root/cross.der"
for v in keyid-before keyid-after serial-after; do
	cp "$work/module/mst_hello.ko" "$root/v/$v.ko"
done
"$MODSIGNCTL" -q sign --key "$work/k/signing.key" --cert "$work/k/signing.crt" --hash sha256 --keyid \
	"$root/v/keyid-before.ko" "$root/v/keyid-after.ko" || die "modsignctl sign --keyid"
"$MODSIGNCTL" -q sign --key "$work/k/signing.key" --cert "$work/k/signing.crt" --hash sha256 \
	"$root/v/serial-after.ko" || die "modsignctl sign"

cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
dmesg -n 1
echo "MST-BEGIN $(uname -r)"
/finit /v/keyid-before.ko
/addkey /cross.der
/finit /v/keyid-after.ko
/finit /v/serial-after.ko
echo "MST-END"
reboot -f
INIT
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
expect 'RESULT keyid-before.ko ERR EKEYREJECTED'
expect 'ADDKEY OK [0-9a-f]*'
expect 'RESULT keyid-after.ko OK'
expect 'RESULT serial-after.ko ERR EKEYREJECTED'
[ "$fails" -eq 0 ] || die "$fails expectation(s) not met"
echo "$me: PASS: the kernel loads a module signed with a keygen key once a certificate for it is trusted"
