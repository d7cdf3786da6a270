#!/bin/bash
# modsignctl keygen with the key made inside a device (src/lib/keygen-token.c, cmd-keygen.c):
#  - PKCS#11 (a SoftHSM2 token this test creates): `keygen --key pkcs11:...;object=O --cert F`
#    makes RSA and EC keys on the token; pkcs11-tool lists the private key as sensitive and
#    never extractable; the certificate has keygen's extensions and holds the token key's
#    public half; the key signs a module that modsignctl verify and openssl cms -verify accept
#    with that certificate; a second keygen with the same label is refused; a wrong PIN fails
#    at once;
#  - TPM2 (a swtpm this test starts): `keygen --key handle:0x81...... --cert F` makes a
#    persistent key (tpm2-tools), its certificate, and the key signs a module that verifies;
#    a second keygen at the same handle is refused.
# shellcheck disable=SC2317 # the case functions are called through run_case
set -eu
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=SCRIPTDIR/../daemon/lib.sh
. "$srcdir/tests/daemon/lib.sh"
MODSIGN_TEST_TIMEOUT=${MODSIGN_TOKEN_TIMEOUT:-120}

daemon_setup_workdir
require_common
require_modsignctl
build_real_module
MOD=$REAL_MODULE

# check_cert CERT KEYALGO: keygen's extensions, and the certificate verifies itself.
check_cert() {
	local crt=$1 algo=$2 t=$WORKDIR/cert.txt
	openssl x509 -in "$crt" -text -noout >"$t"
	grep -A1 'X509v3 Basic Constraints: critical' "$t" | grep -q 'CA:FALSE' || fail "no critical CA:FALSE"
	grep -A1 'X509v3 Key Usage: critical' "$t" | grep -q 'Digital Signature' || fail "no critical digitalSignature"
	grep -A1 'X509v3 Extended Key Usage' "$t" | grep -q 'Code Signing, 1.3.6.1.4.1.2312.16.1.2' ||
		fail "extendedKeyUsage is not codeSigning + module signing only" "$(grep -A1 'Extended Key Usage' "$t")"
	grep -q 'X509v3 Subject Key Identifier' "$t" || fail "no subjectKeyIdentifier"
	grep -q 'X509v3 Authority Key Identifier' "$t" || fail "no authorityKeyIdentifier"
	grep -q "Public Key Algorithm: $algo" "$t" || fail "the public key is not $algo"
	openssl verify -partial_chain -trusted "$crt" "$crt" >/dev/null || fail "the self-signature does not verify"
	ok "$crt: keygen's extensions, $algo, self-signature verifies (made with the device key)"
}

# sign_and_verify KEYREF CERT NAME: sign a copy of the module, verify it both ways.
sign_and_verify() {
	local ref=$1 crt=$2 m=$WORKDIR/$3.ko
	cp "$MOD" "$m"
	chmod u+w "$m"
	expect_exit 0 ms sign --hash sha256 --key "$ref" --cert "$crt" "$m"
	expect_exit 0 ms verify --cert "$crt" "$m"
	assert_cms_verifies "$m" "$crt" "$3"
}

case_pkcs11() {
	local mod='' m uri p11 out
	{ command -v softhsm2-util >/dev/null && command -v pkcs11-tool >/dev/null; } ||
		skip_case "softhsm2-util or pkcs11-tool not installed (Debian packages softhsm2, opensc)"
	for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so; do
		[ -f "$m" ] && mod=$m && break
	done
	[ -n "$mod" ] || skip_case "libsofthsm2.so not found"
	grep -q '^#define HAVE_PKCS11_H 1' "${top_builddir:-.}/config.h" 2>/dev/null ||
		skip_case "modsignctl was built without libp11/p11-kit headers"
	export SOFTHSM2_CONF=$WORKDIR/softhsm2.conf
	mkdir -p "$WORKDIR/tokens"
	printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$WORKDIR" >"$SOFTHSM2_CONF"
	softhsm2-util --init-token --free --label gen-test --pin 1234 --so-pin 5678 >/dev/null
	umask 077
	echo 1234 >"$WORKDIR/pin"
	echo 9999 >"$WORKDIR/badpin"
	umask 022
	p11="?module-path=$mod&pin-source=$WORKDIR/pin"

	step "RSA 2048 on the token"
	uri="pkcs11:token=gen-test;object=rsa-signer$p11"
	expect_exit 0 ms keygen --key "$uri" --bits 2048 --cert "$WORKDIR/rsa.crt" --cn "token rsa"
	[ -f "$WORKDIR/rsa.der" ] || fail "no DER certificate"
	check_cert "$WORKDIR/rsa.crt" rsaEncryption
	out=$(pkcs11-tool --module "$mod" --token-label gen-test --login --pin 1234 --list-objects --type privkey 2>&1)
	printf '%s\n' "$out" | sed 's/^/      | /'
	printf '%s\n' "$out" | grep -q 'label: *rsa-signer' || fail "pkcs11-tool lists no private key rsa-signer"
	printf '%s\n' "$out" | grep -A8 'label: *rsa-signer' | grep -q 'never extractable' ||
		fail "the private key is not marked never extractable"
	printf '%s\n' "$out" | grep -A8 'label: *rsa-signer' | grep -q 'sensitive' || fail "the private key is not sensitive"
	ok "pkcs11-tool: rsa-signer is sensitive and never extractable"
	pkcs11-tool --module "$mod" --token-label gen-test --read-object --type pubkey --label rsa-signer \
		-o "$WORKDIR/rsa-pub.der" >/dev/null 2>&1
	[ "$(openssl pkey -pubin -inform DER -in "$WORKDIR/rsa-pub.der" -outform PEM)" = \
		"$(openssl x509 -in "$WORKDIR/rsa.crt" -noout -pubkey)" ] || fail "the certificate is not for the token's key"
	ok "the certificate holds the token key's public half"
	sign_and_verify "$uri" "$WORKDIR/rsa.crt" token-rsa

	step "EC P-256 on the token"
	uri="pkcs11:token=gen-test;object=ec-signer;id=%42$p11"
	expect_exit 0 ms keygen --key "$uri" --type ec --cert "$WORKDIR/ec.crt" --cn "token ec"
	check_cert "$WORKDIR/ec.crt" id-ecPublicKey
	sign_and_verify "pkcs11:token=gen-test;id=%42$p11" "$WORKDIR/ec.crt" token-ec

	step "the same label again: refused, nothing written"
	expect_exit 1 ms keygen --key "pkcs11:token=gen-test;object=rsa-signer$p11" --bits 2048 --cert "$WORKDIR/again.crt"
	grep -q 'already' "$LAST_ERR" || fail "the refusal does not say the key exists"
	[ ! -e "$WORKDIR/again.crt" ] || fail "a certificate was written anyway"
	step "a wrong PIN: refused at once"
	expect_exit 1 ms keygen --key "pkcs11:token=gen-test;object=x?module-path=$mod&pin-source=$WORKDIR/badpin" \
		--bits 2048 --cert "$WORKDIR/x.crt"
	grep -q 'wrong PIN' "$LAST_ERR" || fail "no 'wrong PIN': $(cat "$LAST_ERR")"
}
run_case "keygen inside a PKCS#11 token (SoftHSM2)" case_pkcs11

case_tpm2() {
	local port started='' handle=0x81000007
	for t in swtpm tpm2_createprimary tpm2_evictcontrol tpm2_readpublic; do
		command -v "$t" >/dev/null || skip_case "$t not installed (swtpm, tpm2-tools)"
	done
	[ -n "$(find /usr/lib -name tpm2.so -path '*ossl-modules*' 2>/dev/null | head -n 1)" ] ||
		skip_case "the tpm2 OpenSSL provider is not installed (tpm2-openssl)"
	mkdir -p "$WORKDIR/tpm"
	for _ in 1 2 3 4 5 6 7 8; do
		port=$((20000 + RANDOM % 20000))
		if swtpm socket --tpmstate dir="$WORKDIR/tpm" --tpm2 --server type=tcp,port="$port",bindaddr=127.0.0.1 \
			--ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 --flags not-need-init,startup-clear \
			--pid file="$WORKDIR/swtpm.pid" --daemon 2>"$WORKDIR/swtpm.log"; then
			started=1
			break
		fi
	done
	[ -n "$started" ] || fail "swtpm did not start: $(cat "$WORKDIR/swtpm.log")"
	register_pid "$(cat "$WORKDIR/swtpm.pid")"
	export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$port"
	export TPM2OPENSSL_TCTI=$TPM2TOOLS_TCTI
	expect_exit 0 ms keygen --key "handle:$handle" --cert "$WORKDIR/tpm.crt" --cn "tpm key"
	check_cert "$WORKDIR/tpm.crt" rsaEncryption
	tpm2_readpublic -c "$handle" >"$WORKDIR/readpublic.txt" 2>&1 || fail "no persistent object at $handle"
	{ grep -q 'fixedtpm' "$WORKDIR/readpublic.txt" && grep -q 'sensitivedataorigin' "$WORKDIR/readpublic.txt"; } ||
		fail "the TPM key is not fixedtpm|sensitivedataorigin" "$(cat "$WORKDIR/readpublic.txt")"
	ok "persistent at $handle, fixedtpm (never leaves the TPM)"
	sign_and_verify "handle:$handle" "$WORKDIR/tpm.crt" tpm
	expect_exit 1 ms keygen --key "handle:$handle" --cert "$WORKDIR/tpm2.crt"
	grep -q 'already' "$LAST_ERR" || fail "a second keygen at $handle is not refused"
}
run_case "keygen inside the TPM (swtpm, tpm2-tools)" case_tpm2

finish
