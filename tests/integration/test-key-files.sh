#!/bin/bash
# Key files and their secrets (src/lib/key-file.c), one rule for the CLI and the daemon:
#  - an encrypted PEM whose passphrase comes from a file (--pin-file, PinFile=) or from a
#    systemd credential (credential:NAME in $CREDENTIALS_DIRECTORY): signs, equal to
#    sign-file with the unencrypted key; a key as a credential too (PrivateKey=credential:);
#  - a wrong passphrase, no passphrase: refused with a message;
#  - a key file (or passphrase file) owned by another user, with mode 0640/0644, or a symlink:
#    refused with a message saying how to fix it, by `modsignctl sign` and by the daemon.
# shellcheck disable=SC2317 # the case functions are called through run_case
set -eu
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=SCRIPTDIR/../daemon/lib.sh
. "$srcdir/tests/daemon/lib.sh"
MODSIGN_TEST_TIMEOUT=${MODSIGN_KEYFILE_TIMEOUT:-60}

daemon_setup_workdir
require_common
require_modsignctl
[ "$(id -u)" -eq 0 ] || skip_test "the owner checks need root (to chown a key to another user)"
make_key_root rsa2048 a
build_real_module
MOD=$WORKDIR/hello.ko
PASS='correct horse battery staple'
CRED=$WORKDIR/creds
mkdir -p "$CRED"
chmod 0700 "$CRED"
umask 077
openssl pkey -in "$(key_of a)" -aes256 -passout "pass:$PASS" -out "$WORKDIR/enc.key"
printf '%s\n' "$PASS" >"$WORKDIR/pass"
printf 'wrong\n' >"$WORKDIR/badpass"
# What systemd's LoadCredential= makes: root-owned, mode 0400, in $CREDENTIALS_DIRECTORY.
printf '%s\n' "$PASS" >"$CRED/modsign-pass"
cp "$WORKDIR/enc.key" "$CRED/modsign-key"
chmod 0400 "$CRED/modsign-pass" "$CRED/modsign-key"
umask 022
"$SIGN_FILE" sha256 "$(key_of a)" "$(cert_of a)" "$MOD" "$WORKDIR/ref.ko"

fresh() {
	cp "$MOD" "$1"
	chmod u+w "$1"
}

case_encrypted_cli() {
	fresh "$WORKDIR/c1.ko"
	expect_exit 0 ms sign --hash sha256 --key "$WORKDIR/enc.key" --pin-file "$WORKDIR/pass" --cert "$(cert_of a)" "$WORKDIR/c1.ko"
	assert_files_equal "$WORKDIR/ref.ko" "$WORKDIR/c1.ko" "encrypted key, passphrase file"
	fresh "$WORKDIR/c2.ko"
	expect_exit 0 env CREDENTIALS_DIRECTORY="$CRED" "$MODSIGNCTL" sign --hash sha256 --key credential:modsign-key \
		--pin-file credential:modsign-pass --cert "$(cert_of a)" "$WORKDIR/c2.ko"
	assert_files_equal "$WORKDIR/ref.ko" "$WORKDIR/c2.ko" "key and passphrase as credentials"
	ok "both equal sign-file with the unencrypted key"
	fresh "$WORKDIR/c3.ko"
	expect_fail ms sign --hash sha256 --key "$WORKDIR/enc.key" --pin-file "$WORKDIR/badpass" --cert "$(cert_of a)" "$WORKDIR/c3.ko"
	grep -q 'wrong passphrase' "$LAST_ERR" || fail "unexpected message: $(cat "$LAST_ERR")"
	expect_fail ms sign --hash sha256 --key "$WORKDIR/enc.key" --cert "$(cert_of a)" "$WORKDIR/c3.ko"
	grep -q 'encrypted' "$LAST_ERR" || fail "unexpected message: $(cat "$LAST_ERR")"
	expect_fail ms sign --hash sha256 --key credential:modsign-key --cert "$(cert_of a)" "$WORKDIR/c3.ko"
	grep -q 'CREDENTIALS_DIRECTORY' "$LAST_ERR" || fail "unexpected message: $(cat "$LAST_ERR")"
	module_is_signed "$WORKDIR/c3.ko" && fail "c3.ko was signed"
	ok "wrong, missing passphrase and missing credentials directory refused with messages"
}
run_case "encrypted PEM: passphrase from a file or a credential (CLI)" case_encrypted_cli

# refused_cli KEY TEXT: modsignctl sign with KEY fails and says TEXT.
refused_cli() {
	fresh "$WORKDIR/r.ko"
	expect_fail ms sign --hash sha256 --key "$1" --cert "$(cert_of a)" "$WORKDIR/r.ko"
	grep -qF -- "$2" "$LAST_ERR" || {
		_report_last
		fail "the message does not say '$2'"
	}
	module_is_signed "$WORKDIR/r.ko" && fail "r.ko was signed"
	ok "$(cat "$LAST_ERR")"
}

case_access_cli() {
	local d=$WORKDIR/acc
	mkdir -p "$d"
	cp -p "$(key_of a)" "$d/k0640.key"
	chmod 0640 "$d/k0640.key"
	refused_cli "$d/k0640.key" "chmod 0600"
	cp -p "$(key_of a)" "$d/k0644.key"
	chmod 0644 "$d/k0644.key"
	refused_cli "$d/k0644.key" "chmod 0600"
	cp -p "$(key_of a)" "$d/nobody.key"
	chown 65534:65534 "$d/nobody.key"
	refused_cli "$d/nobody.key" "chown root"
	ln -s "$(key_of a)" "$d/link.key"
	refused_cli "$d/link.key" "symlink"
	step "mode 0400 is fine"
	cp -p "$(key_of a)" "$d/k0400.key"
	chmod 0400 "$d/k0400.key"
	fresh "$WORKDIR/ok.ko"
	expect_exit 0 ms sign --hash sha256 --key "$d/k0400.key" --cert "$(cert_of a)" "$WORKDIR/ok.ko"
	step "a passphrase file open to others is refused like a key"
	cp "$WORKDIR/pass" "$d/openpass"
	chmod 0644 "$d/openpass"
	fresh "$WORKDIR/r2.ko"
	expect_fail ms sign --hash sha256 --key "$WORKDIR/enc.key" --pin-file "$d/openpass" --cert "$(cert_of a)" "$WORKDIR/r2.ko"
	grep -q 'chmod 0600' "$LAST_ERR" || fail "unexpected message: $(cat "$LAST_ERR")"
	step "sign-file (the kernel's tool takes any key file) only warns about a loose mode"
	expect_exit 0 ms sign-file sha256 "$d/k0644.key" "$(cert_of a)" "$MOD" "$WORKDIR/sf.ko"
	grep -q 'chmod 0600' "$LAST_ERR" || fail "sign-file gave no warning: $(cat "$LAST_ERR")"
	assert_files_equal "$WORKDIR/ref.ko" "$WORKDIR/sf.ko" "sign-file with a 0644 key"
}
run_case "key files: wrong owner, mode or a symlink are refused (CLI)" case_access_cli

case_daemon() {
	local d=$WORKDIR/dd conf
	daemon_require
	daemon_helper sign-client
	CLIENT=$HELPER
	make_tree "$WORKDIR/root"
	daemon_config "$d" a "$TREE_ROOT"
	conf=$DAEMON_CONF
	step "PrivateKey=credential:modsign-key, PinFile=credential:modsign-pass, CREDENTIALS_DIRECTORY set"
	sed -i "s|^PrivateKey=.*|PrivateKey=credential:modsign-key\nPinFile=credential:modsign-pass|" "$conf"
	expect_exit 0 env CREDENTIALS_DIRECTORY="$CRED" "$MODSIGND" --config "$conf" --check-config
	step "without CREDENTIALS_DIRECTORY: refused, LoadCredential= named"
	expect_fail env -u CREDENTIALS_DIRECTORY "$MODSIGND" --config "$conf" --check-config
	grep -q 'LoadCredential' "$LAST_ERR" "$LAST_OUT" || fail "unexpected message: $(cat "$LAST_ERR")"
	step "an encrypted key file with PinFile=; the daemon signs, equal to sign-file"
	sed -i -e "s|^PrivateKey=.*|PrivateKey=$WORKDIR/enc.key|" -e "s|^PinFile=.*|PinFile=$WORKDIR/pass|" "$conf"
	daemon_start direct
	expect_exit 0 "$CLIENT" "$DAEMON_SOCKET" sign "$MOD" "$WORKDIR/d.ko" sha256
	assert_files_equal "$WORKDIR/ref.ko" "$WORKDIR/d.ko" "daemon with an encrypted key"
	daemon_stop 20
	step "the same refusals as the CLI"
	for k in k0640 nobody link; do
		sed -i "s|^PrivateKey=.*|PrivateKey=$WORKDIR/acc/$k.key|" "$conf"
		expect_fail "$MODSIGND" --config "$conf" --check-config
		grep -qE 'chmod 0600|chown root|symlink' "$LAST_ERR" || fail "$k: unexpected message: $(cat "$LAST_ERR")"
		ok "$k: $(cat "$LAST_ERR")"
	done
	sed -i -e "s|^PrivateKey=.*|PrivateKey=$WORKDIR/enc.key|" -e "s|^PinFile=.*|PinFile=$WORKDIR/badpass|" "$conf"
	expect_fail "$MODSIGND" --config "$conf" --check-config
	grep -q 'wrong passphrase' "$LAST_ERR" || fail "unexpected message: $(cat "$LAST_ERR")"
}
run_case "the daemon: credentials, encrypted key, the same access rule" case_daemon

finish
