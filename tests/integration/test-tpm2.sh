#!/bin/bash
# TPM2 keys (src/lib/key-tpm2.c) through the tpm2-openssl provider, on a swtpm this test
# starts (its own state directory and TCP ports):
#  - a persistent RSA key (tpm2_createprimary/create/load/evictcontrol 0x81......) and a
#    certificate for it made by openssl with the provider;
#  - `modsignctl sign --key handle:0x81...`: modsignctl verify and openssl cms -verify accept
#    the module; the SignerInfo says rsaEncryption (PKCS#1 v1.5, what the kernel verifies);
#  - `modsignctl sign-file HASH handle:0x81... CERT MODULE` (the kernel's syntax) likewise;
#  - the daemon with PrivateKey=handle:0x81...: SIGN over the socket verifies;
#  - a handle with no key: a clear error, quickly.
# The test kernel's trusted keys are baked in when it is built (tests/kernel/build-kernel.sh);
# tests/kernel/run-tpm2-kernel-test.sh has a built-in key certify a TPM key and loads its
# modules under qemu.
# shellcheck disable=SC2317 # the case functions are called through run_case
set -eu
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=SCRIPTDIR/../daemon/lib.sh
. "$srcdir/tests/daemon/lib.sh"
MODSIGN_TEST_TIMEOUT=${MODSIGN_TPM2_TIMEOUT:-60}

daemon_setup_workdir
require_common
require_modsignctl
require_cmd swtpm tpm2_createprimary tpm2_create tpm2_load tpm2_evictcontrol tpm2_flushcontext
[ -f /usr/lib/x86_64-linux-gnu/ossl-modules/tpm2.so ] || [ -n "$(find /usr/lib -name tpm2.so -path '*ossl-modules*' 2>/dev/null | head -n 1)" ] ||
	skip_test "the tpm2 OpenSSL provider is not installed (Debian package tpm2-openssl)"
[ -n "$(find /usr/lib -name 'libtss2-tcti-swtpm.so*' 2>/dev/null | head -n 1)" ] ||
	skip_test "the swtpm TCTI is not installed (Debian package libtss2-tcti-swtpm0)"

# swtpm on two free TCP ports; a port taken by someone else means trying others.
mkdir -p "$WORKDIR/tpm"
started=
for _ in 1 2 3 4 5 6 7 8; do
	PORT=$((20000 + RANDOM % 20000))
	if swtpm socket --tpmstate dir="$WORKDIR/tpm" --tpm2 --server type=tcp,port=$PORT,bindaddr=127.0.0.1 \
		--ctrl type=tcp,port=$((PORT + 1)),bindaddr=127.0.0.1 --flags not-need-init,startup-clear \
		--pid file="$WORKDIR/swtpm.pid" --daemon 2>"$WORKDIR/swtpm.log"; then
		started=1
		break
	fi
done
[ -n "$started" ] || {
	show_file "$WORKDIR/swtpm.log"
	fail "swtpm did not start"
}
register_pid "$(cat "$WORKDIR/swtpm.pid")"
export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$PORT"
export TPM2OPENSSL_TCTI=$TPM2TOOLS_TCTI
step "swtpm pid $(cat "$WORKDIR/swtpm.pid") on 127.0.0.1:$PORT"

HANDLE=0x81000001
# No resource manager: flush transient objects after every step.
tpm() {
	"$@" >>"$WORKDIR/tpm2.log" 2>&1 || {
		show_file "$WORKDIR/tpm2.log"
		fail "$1 failed"
	}
	tpm2_flushcontext -t >>"$WORKDIR/tpm2.log" 2>&1 || true
}
tpm timeout 30 tpm2_createprimary -C o -c "$WORKDIR/primary.ctx"
tpm timeout 30 tpm2_create -C "$WORKDIR/primary.ctx" -G rsa2048 -u "$WORKDIR/k.pub" -r "$WORKDIR/k.priv"
tpm timeout 30 tpm2_load -C "$WORKDIR/primary.ctx" -u "$WORKDIR/k.pub" -r "$WORKDIR/k.priv" -c "$WORKDIR/k.ctx"
tpm timeout 30 tpm2_evictcontrol -C o -c "$WORKDIR/k.ctx" "$HANDLE"
CERT=$WORKDIR/tpm.crt
printf '[req]\ndistinguished_name=dn\nprompt=no\nx509_extensions=ext\n[dn]\nCN=modsignd test tpm2\n[ext]\nsubjectKeyIdentifier=hash\nkeyUsage=digitalSignature\nextendedKeyUsage=codeSigning\n' >"$WORKDIR/req.cnf"
timeout 60 openssl req -provider tpm2 -provider default -new -x509 -key "handle:$HANDLE" -sha256 -days 30 \
	-config "$WORKDIR/req.cnf" -out "$CERT" >"$WORKDIR/req.log" 2>&1 || {
	show_file "$WORKDIR/req.log"
	fail "openssl req with the tpm2 provider could not make a certificate"
}
step "persistent TPM key $HANDLE, certificate $CERT"
build_real_module
MOD=$WORKDIR/hello.ko

# assert_tpm_signature MODULE P7S: modsignctl verify and openssl cms -verify accept, and the
# signature algorithm is rsaEncryption.
assert_cms_ok() {
	local mod=$1 p7s=$2
	openssl cms -verify -binary -inform DER -in "$p7s" -content "$mod" -certfile "$CERT" -nointern -noverify \
		>/dev/null 2>"$WORKDIR/cms.log" || {
		show_file "$WORKDIR/cms.log"
		fail "openssl cms -verify rejects $p7s"
	}
	openssl cms -cmsout -print -inform DER -in "$p7s" >"$WORKDIR/cms.txt"
	grep -A1 'signatureAlgorithm:' "$WORKDIR/cms.txt" | grep -q 'rsaEncryption' || {
		show_file "$WORKDIR/cms.txt" 60
		fail "the SignerInfo's signature algorithm is not rsaEncryption"
	}
	ok "openssl cms -verify accepts $p7s; signatureAlgorithm rsaEncryption"
}

case_cli() {
	local h
	for h in sha256 sha512; do
		cp "$MOD" "$WORKDIR/t-$h.ko"
		chmod u+w "$WORKDIR/t-$h.ko"
		expect_exit 0 ms sign --hash "$h" --key "handle:$HANDLE" --cert "$CERT" "$WORKDIR/t-$h.ko"
		expect_exit 0 ms verify --cert "$CERT" "$WORKDIR/t-$h.ko"
		grep -q "($h, rsa)" "$LAST_OUT" || fail "verify does not report $h, rsa: $(cat "$LAST_OUT")"
		expect_exit 0 ms sign-file -d "$h" "handle:$HANDLE" "$CERT" "$MOD" "$WORKDIR/unused.ko"
		assert_cms_ok "$MOD" "$MOD.p7s"
		rm -f "$MOD.p7s"
	done
	step "a module signed with the TPM key does not verify with another certificate"
	make_key rsa2048 other
	expect_exit 5 ms verify --cert "$(cert_of other)" "$WORKDIR/t-sha256.ko"
}
run_case "modsignctl sign and sign-file with handle:0x81000001" case_cli

case_errors() {
	cp "$MOD" "$WORKDIR/e.ko"
	chmod u+w "$WORKDIR/e.ko"
	step "a handle with no key behind it"
	expect_fail ms sign --hash sha256 --key handle:0x81000009 --cert "$CERT" "$WORKDIR/e.ko"
	grep -q 'handle:0x81000009' "$LAST_ERR" || fail "the error does not name the handle: $(cat "$LAST_ERR")"
	ok "$(cat "$LAST_ERR")"
	step "a malformed handle"
	expect_fail ms sign --hash sha256 --key handle:81000001 --cert "$CERT" "$WORKDIR/e.ko"
	grep -q 'handle:0x81000001' "$LAST_ERR" || fail "the error does not show the syntax: $(cat "$LAST_ERR")"
	step "the certificate of another key"
	make_key rsa2048 wrong
	expect_fail ms sign --hash sha256 --key "handle:$HANDLE" --cert "$(cert_of wrong)" "$WORKDIR/e.ko"
	grep -q 'does not belong' "$LAST_ERR" || fail "unexpected message: $(cat "$LAST_ERR")"
	module_is_signed "$WORKDIR/e.ko" && fail "e.ko was signed"
	ok "refused, nothing signed"
}
run_case "TPM2 errors" case_errors

case_daemon() {
	daemon_require
	daemon_helper sign-client
	CLIENT=$HELPER
	make_key_root rsa2048 a
	make_tree "$WORKDIR/root"
	daemon_config "$WORKDIR/d" a "$TREE_ROOT"
	sed -i -e "s|^PrivateKey=.*|PrivateKey=handle:$HANDLE|" -e "s|^Certificate=.*|Certificate=$CERT|" "$DAEMON_CONF"
	expect_exit 0 "$MODSIGND" --config "$DAEMON_CONF" --check-config
	daemon_start direct
	mkdir -p "$WORKDIR/dout"
	expect_exit 0 "$CLIENT" "$DAEMON_SOCKET" sign "$MOD" "$WORKDIR/dout/d.ko" sha256
	expect_exit 0 ms verify --cert "$CERT" "$WORKDIR/dout/d.ko"
	expect_exit 0 "$CLIENT" "$DAEMON_SOCKET" sign-many sha512 "$MOD" "$WORKDIR/dout/d1.ko" "$MOD" "$WORKDIR/dout/d2.ko"
	expect_exit 0 ms verify --cert "$CERT" "$WORKDIR/dout/d1.ko" "$WORKDIR/dout/d2.ko"
	daemon_stop 20
}
run_case "modsignd with PrivateKey=handle:0x81000001" case_daemon

finish
