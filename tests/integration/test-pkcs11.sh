#!/bin/bash
# PKCS#11 keys (src/lib/key-pkcs11.c) on a SoftHSM2 token this test creates (a private
# SOFTHSM2_CONF in the work directory):
#  - `modsignctl sign --key pkcs11:...` with an imported RSA key: the module equals, byte for
#    byte, what the same key as a file gives, and what Debian's sign-file gives with the file;
#  - `modsignctl sign-file` with a pkcs11: KEY (PIN from KBUILD_SIGN_PIN, as sign-file): same;
#  - a key generated ON the token (pkcs11-tool --keypairgen): the signature verifies;
#  - a wrong PIN fails at once with "wrong PIN", and the right PIN still works afterwards;
#    no PIN, pin-value=, a missing token, a missing module, a missing key: clear messages;
#  - the daemon with PrivateKey=pkcs11:... and PinFile=: SIGN over the socket equals sign-file,
#    many modules from one connection; a wrong PinFile= makes --check-config fail at once.
# Every command runs under timeout (run_cmd): a hang is a failure, not a stuck test.
# shellcheck disable=SC2317 # the case functions are called through run_case
set -eu
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=SCRIPTDIR/../daemon/lib.sh
. "$srcdir/tests/daemon/lib.sh"
MODSIGN_TEST_TIMEOUT=${MODSIGN_PKCS11_TIMEOUT:-60}

daemon_setup_workdir
require_common
require_modsignctl
require_cmd softhsm2-util pkcs11-tool
SOFTHSM_MODULE=
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so; do
	[ -f "$m" ] && SOFTHSM_MODULE=$m && break
done
[ -n "$SOFTHSM_MODULE" ] || skip_test "libsofthsm2.so not found (Debian package softhsm2)"
# A stub build says so: that is a failure of this build, not a missing tool.
grep -q '^#define HAVE_LIBP11 1' "${top_builddir:-.}/config.h" 2>/dev/null ||
	skip_test "modsignctl was built without libp11 (configure found no libp11-dev)"

# The token: private to this test.
export SOFTHSM2_CONF=$WORKDIR/softhsm2.conf
mkdir -p "$WORKDIR/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$WORKDIR" >"$SOFTHSM2_CONF"
PIN=314159
softhsm2-util --init-token --free --label modsign-test --pin "$PIN" --so-pin 271828 >"$WORKDIR/init.log" 2>&1 || {
	show_file "$WORKDIR/init.log"
	fail "softhsm2-util could not create the token"
}
make_key_root rsa2048 a
openssl pkcs8 -topk8 -nocrypt -in "$(key_of a)" -out "$WORKDIR/a.p8"
softhsm2-util --import "$WORKDIR/a.p8" --token modsign-test --label signer --id 01 --pin "$PIN" >"$WORKDIR/import.log" 2>&1 || {
	show_file "$WORKDIR/import.log"
	fail "softhsm2-util could not import the key"
}
rm -f "$WORKDIR/a.p8"
umask 077
printf '%s\n' "$PIN" >"$WORKDIR/pin"
printf '999999\n' >"$WORKDIR/badpin"
umask 022
URI_BASE="pkcs11:token=modsign-test;object=signer;type=private"
URI="$URI_BASE?module-path=$SOFTHSM_MODULE&pin-source=$WORKDIR/pin"
step "SoftHSM2 token 'modsign-test' in $WORKDIR/tokens, key 'signer' (id 01) imported from $(key_of a)"
build_real_module
MOD=$WORKDIR/hello.ko

case_cli_equals_file() {
	local h
	for h in sha256 sha512; do
		cp "$MOD" "$WORKDIR/p11-$h.ko"
		cp "$MOD" "$WORKDIR/file-$h.ko"
		chmod u+w "$WORKDIR/p11-$h.ko" "$WORKDIR/file-$h.ko"
		expect_exit 0 ms sign --hash "$h" --key "$URI" --cert "$(cert_of a)" "$WORKDIR/p11-$h.ko"
		expect_exit 0 ms sign --hash "$h" --key "$(key_of a)" --cert "$(cert_of a)" "$WORKDIR/file-$h.ko"
		expect_exit 0 "$SIGN_FILE" "$h" "$(key_of a)" "$(cert_of a)" "$MOD" "$WORKDIR/sf-$h.ko"
		assert_files_equal "$WORKDIR/file-$h.ko" "$WORKDIR/p11-$h.ko" "$h: token key against file key"
		assert_files_equal "$WORKDIR/sf-$h.ko" "$WORKDIR/p11-$h.ko" "$h: token key against sign-file"
		ok "$h: the token's signature equals the file key's and sign-file's, byte for byte"
	done
	expect_exit 0 ms verify --cert "$(cert_of a)" "$WORKDIR/p11-sha256.ko"
}
run_case "modsignctl sign --key pkcs11:URI equals the file key and sign-file" case_cli_equals_file

case_sign_file_pkcs11() {
	cp "$MOD" "$WORKDIR/sfp.ko"
	chmod u+w "$WORKDIR/sfp.ko"
	step "sign-file with KEY=pkcs11:... and the PIN in KBUILD_SIGN_PIN (the kernel's sign-file way)"
	expect_exit 0 env KBUILD_SIGN_PIN="$PIN" "$MODSIGNCTL" sign-file sha256 \
		"$URI_BASE?module-path=$SOFTHSM_MODULE" "$(cert_of a)" "$WORKDIR/sfp.ko"
	"$SIGN_FILE" sha256 "$(key_of a)" "$(cert_of a)" "$MOD" "$WORKDIR/sf-ref.ko"
	assert_files_equal "$WORKDIR/sf-ref.ko" "$WORKDIR/sfp.ko" "sign-file pkcs11 against Debian's sign-file"
	step "sign-file with pin-source= in the URI, no KBUILD_SIGN_PIN"
	cp "$MOD" "$WORKDIR/sfp2.ko"
	chmod u+w "$WORKDIR/sfp2.ko"
	expect_exit 0 env -u KBUILD_SIGN_PIN "$MODSIGNCTL" sign-file sha256 "$URI" "$(cert_of a)" "$WORKDIR/sfp2.ko"
	assert_files_equal "$WORKDIR/sf-ref.ko" "$WORKDIR/sfp2.ko" "sign-file pin-source against Debian's sign-file"
	ok "both equal Debian's sign-file with the file key"
}
run_case "modsignctl sign-file with a pkcs11: KEY" case_sign_file_pkcs11

case_generated_on_token() {
	local d=$WORKDIR/gen
	mkdir -p "$d"
	step "pkcs11-tool --keypairgen rsa:2048 on the token (id 02, label generated)"
	expect_exit 0 pkcs11-tool --module "$SOFTHSM_MODULE" --token-label modsign-test --login --pin "$PIN" \
		--keypairgen --key-type rsa:2048 --id 02 --label generated
	expect_exit 0 pkcs11-tool --module "$SOFTHSM_MODULE" --token-label modsign-test \
		--read-object --type pubkey --id 02 -o "$d/pub.der"
	openssl pkey -pubin -inform DER -in "$d/pub.der" -out "$d/pub.pem"
	# A certificate for the token's public key, issued by key a (the CSR's own key is replaced).
	printf 'subjectKeyIdentifier=hash\nkeyUsage=digitalSignature\nextendedKeyUsage=codeSigning\n' >"$d/ext"
	openssl req -new -key "$(key_of a)" -subj "/CN=modsignd test generated" -out "$d/gen.csr"
	openssl x509 -req -in "$d/gen.csr" -force_pubkey "$d/pub.pem" -CA "$(cert_of a)" -CAkey "$(key_of a)" \
		-set_serial 2 -days 30 -extfile "$d/ext" -out "$d/gen.crt" 2>"$d/x509.log"
	cp "$MOD" "$d/m.ko"
	chmod u+w "$d/m.ko"
	expect_exit 0 ms sign --hash sha256 --cert "$d/gen.crt" \
		--key "pkcs11:token=modsign-test;id=%02?module-path=$SOFTHSM_MODULE&pin-source=$WORKDIR/pin" "$d/m.ko"
	expect_exit 0 ms verify --cert "$d/gen.crt" "$d/m.ko"
	expect_exit 0 ms sign-file -d sha256 "pkcs11:token=modsign-test;object=generated?module-path=$SOFTHSM_MODULE&pin-source=$WORKDIR/pin" "$d/gen.crt" "$MOD" "$d/out.ko"
	openssl cms -verify -binary -inform DER -in "$MOD.p7s" -content "$MOD" -certfile "$d/gen.crt" -nointern -noverify \
		>/dev/null 2>"$d/cms.log" || {
		show_file "$d/cms.log"
		fail "openssl cms -verify rejects the token-generated key's signature"
	}
	rm -f "$MOD.p7s"
	ok "the key generated on the token signs; modsignctl verify and openssl cms -verify accept it"
}
run_case "a key generated on the token" case_generated_on_token

# expect_error_fast TEXT SECONDS CMD...: CMD fails (not killed), within SECONDS, saying TEXT.
expect_error_fast() {
	local text=$1 limit=$2 t0
	shift 2
	now_ms
	t0=$NOW_MS
	expect_fail "$@"
	now_ms
	[ $((NOW_MS - t0)) -le $((limit * 1000)) ] || fail "took $((NOW_MS - t0)) ms (more than $limit s)"
	grep -qF -- "$text" "$LAST_ERR" || {
		_report_last
		fail "the message does not say '$text'"
	}
	ok "$((NOW_MS - t0)) ms: $(head -n 1 "$LAST_ERR")"
}

case_errors() {
	cp "$MOD" "$WORKDIR/e.ko"
	chmod u+w "$WORKDIR/e.ko"
	step "a wrong PIN: fails at once, says so"
	expect_error_fast "wrong PIN" 5 ms sign --hash sha256 --cert "$(cert_of a)" \
		--key "$URI_BASE?module-path=$SOFTHSM_MODULE&pin-source=$WORKDIR/badpin" "$WORKDIR/e.ko"
	step "the right PIN still works afterwards (the token is not locked)"
	expect_exit 0 ms sign --hash sha256 --key "$URI" --cert "$(cert_of a)" "$WORKDIR/e.ko"
	step "no PIN at all"
	expect_error_fast "needs a PIN" 5 env -u KBUILD_SIGN_PIN "$MODSIGNCTL" sign --replace --hash sha256 \
		--cert "$(cert_of a)" --key "$URI_BASE?module-path=$SOFTHSM_MODULE" "$WORKDIR/e.ko"
	step "pin-value= is refused (it would put the PIN on a command line)"
	expect_error_fast "pin-source" 5 ms sign --replace --hash sha256 --cert "$(cert_of a)" \
		--key "$URI_BASE?module-path=$SOFTHSM_MODULE&pin-value=$PIN" "$WORKDIR/e.ko"
	step "a token that is not there"
	expect_error_fast "no token labelled 'absent'" 5 ms sign --replace --hash sha256 --cert "$(cert_of a)" \
		--key "pkcs11:token=absent;object=signer?module-path=$SOFTHSM_MODULE&pin-source=$WORKDIR/pin" "$WORKDIR/e.ko"
	step "a PKCS#11 module that is not there"
	expect_error_fast "cannot load the PKCS#11 module" 5 ms sign --replace --hash sha256 --cert "$(cert_of a)" \
		--key "$URI_BASE?module-path=$WORKDIR/nonexistent.so&pin-source=$WORKDIR/pin" "$WORKDIR/e.ko"
	step "a key that is not on the token"
	expect_error_fast "no private key labelled 'other'" 5 ms sign --replace --hash sha256 --cert "$(cert_of a)" \
		--key "pkcs11:token=modsign-test;object=other?module-path=$SOFTHSM_MODULE&pin-source=$WORKDIR/pin" "$WORKDIR/e.ko"
	step "a PIN file open to others is refused like a key file"
	cp "$WORKDIR/pin" "$WORKDIR/openpin"
	chmod 0644 "$WORKDIR/openpin"
	expect_error_fast "chmod 0600" 5 ms sign --replace --hash sha256 --cert "$(cert_of a)" \
		--key "$URI_BASE?module-path=$SOFTHSM_MODULE&pin-source=$WORKDIR/openpin" "$WORKDIR/e.ko"
}
run_case "wrong PIN, no PIN, missing token, module or key: fast, clear errors" case_errors

case_daemon() {
	local i args=()
	daemon_require
	daemon_helper sign-client
	CLIENT=$HELPER
	make_tree "$WORKDIR/root"
	daemon_config "$WORKDIR/d" a "$TREE_ROOT"
	sed -i "s|^PrivateKey=.*|PrivateKey=$URI_BASE?module-path=$SOFTHSM_MODULE\nPinFile=$WORKDIR/pin|" "$DAEMON_CONF"
	grep -q '^PinFile=' "$DAEMON_CONF" || fail "could not write PinFile= into $DAEMON_CONF"
	expect_exit 0 "$MODSIGND" --config "$DAEMON_CONF" --check-config
	daemon_start direct
	mkdir -p "$WORKDIR/dout"
	for h in sha256 sha512; do
		expect_exit 0 "$CLIENT" "$DAEMON_SOCKET" sign "$MOD" "$WORKDIR/dout/d-$h.ko" "$h"
		"$SIGN_FILE" "$h" "$(key_of a)" "$(cert_of a)" "$MOD" "$WORKDIR/dout/sf-$h.ko"
		assert_files_equal "$WORKDIR/dout/sf-$h.ko" "$WORKDIR/dout/d-$h.ko" "daemon (token key, $h) against sign-file"
	done
	ok "the daemon signs with the token key; equal to sign-file with the file key"
	for i in $(seq 20); do
		args+=("$MOD" "$WORKDIR/dout/many-$i.ko")
	done
	expect_exit 0 "$CLIENT" "$DAEMON_SOCKET" sign-many sha256 "${args[@]}"
	for i in $(seq 20); do
		assert_files_equal "$WORKDIR/dout/sf-sha256.ko" "$WORKDIR/dout/many-$i.ko" "SIGN $i of 20"
	done
	ok "20 SIGN requests on the kept session: all equal sign-file"
	daemon_stop 20
	step "PinFile= with a wrong PIN: --check-config fails at once and says so"
	sed -i "s|^PinFile=.*|PinFile=$WORKDIR/badpin|" "$DAEMON_CONF"
	expect_error_fast "wrong PIN" 5 "$MODSIGND" --config "$DAEMON_CONF" --check-config
}
run_case "modsignd with PrivateKey=pkcs11:... and PinFile=" case_daemon

finish
