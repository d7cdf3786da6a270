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
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"
kt_find_tdir addkey.c finit.c module/mst_hello.c

kt_require gcc make cpio gzip openssl timeout

kt_workdir keygen-kernel

kt_kernel rsa2048
CA=$K/rsa2048

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
kt_modules
kt_root addkey
cp "$work/cross.der" "$root/cross.der"
for v in keyid-before keyid-after serial-after; do
	cp "$work/module/mst_hello.ko" "$root/v/$v.ko"
done
"$MODSIGNCTL" -q sign --key "$work/k/signing.key" --cert "$work/k/signing.crt" --hash sha256 --keyid \
	"$root/v/keyid-before.ko" "$root/v/keyid-after.ko" || die "modsignctl sign --keyid"
"$MODSIGNCTL" -q sign --key "$work/k/signing.key" --cert "$work/k/signing.crt" --hash sha256 \
	"$root/v/serial-after.ko" || die "modsignctl sign"

{
	kt_guest_prologue
	cat <<'INIT'
echo "MST-BEGIN $(uname -r)"
/finit /v/keyid-before.ko
/addkey /cross.der
/finit /v/keyid-after.ko
/finit /v/serial-after.ko
echo "MST-END"
reboot -f
INIT
} >"$root/init"
kt_boot
kt_guest_output

expect 'RESULT keyid-before.ko ERR EKEYREJECTED'
expect 'ADDKEY OK [0-9a-f]*'
expect 'RESULT keyid-after.ko OK'
expect 'RESULT serial-after.ko ERR EKEYREJECTED'
[ "$fails" -eq 0 ] || die "$fails expectation(s) not met"
echo "$me: PASS: the kernel loads a module signed with a keygen key once a certificate for it is trusted"
