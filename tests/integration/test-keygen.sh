#!/bin/bash
# modsignctl keygen: each key type makes a key and a certificate that openssl reads with
# the extensions the kernel and shim expect, files with the right modes, written once and
# never over an existing file; the key signs a module that openssl cms -verify and
# modsignctl verify accept, and (RSA) byte for byte as Debian's sign-file signs it.
# shellcheck disable=SC2317 # the case functions are called through run_case
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=tests/integration/lib.sh
. "$srcdir/tests/integration/lib.sh"

require_common
require_cmd python3
require_modsignctl
setup_workdir
build_real_module

# keygen_into DIR ARGS...: keygen with --key DIR/signing.key, the rest default.
keygen_into() {
	local dir=$1
	shift
	mkdir -p "$dir"
	expect_exit 0 ms keygen --key "$dir/signing.key" "$@"
}

# check_cert DIR KEYALGO: the certificate's fields and extensions, as openssl reads them.
check_cert() {
	local dir=$1 algo=$2 text serial
	text=$(openssl x509 -in "$dir/signing.crt" -text -noout)
	printf '%s\n' "$text" >"$dir/cert.txt"
	grep -q 'Version: 3 (0x2)' "$dir/cert.txt" || fail "not an X.509 v3 certificate" "$(head -5 "$dir/cert.txt")"
	grep -A1 'X509v3 Basic Constraints: critical' "$dir/cert.txt" | grep -q 'CA:FALSE' ||
		fail "basicConstraints is not critical CA:FALSE"
	grep -A1 'X509v3 Key Usage' "$dir/cert.txt" | grep -qx ' *Digital Signature' ||
		fail "keyUsage is not exactly digitalSignature"
	grep -A1 'X509v3 Extended Key Usage' "$dir/cert.txt" | grep -q 'Code Signing' ||
		fail "extendedKeyUsage lacks codeSigning"
	grep -q 'X509v3 Subject Key Identifier' "$dir/cert.txt" || fail "no subjectKeyIdentifier"
	grep -q 'X509v3 Authority Key Identifier' "$dir/cert.txt" || fail "no authorityKeyIdentifier"
	ok "v3; critical CA:FALSE, Digital Signature, Code Signing, SKID, AKID"
	# Self-signed: AKID = SKID, and openssl verifies the signature with the cert itself.
	[ "$(grep -A1 'Subject Key Identifier' "$dir/cert.txt" | tail -1 | tr -d ' ')" = \
		"$(grep -A1 'Authority Key Identifier' "$dir/cert.txt" | tail -1 | tr -d ' ' | sed 's/^keyid://')" ] ||
		fail "AKID differs from SKID in a self-signed certificate"
	openssl verify -CAfile "$dir/signing.crt" -check_ss_sig -purpose any "$dir/signing.crt" >/dev/null 2>&1 ||
		openssl verify -partial_chain -trusted "$dir/signing.crt" "$dir/signing.crt" >/dev/null ||
		fail "openssl cannot verify the self-signature"
	ok "self-signed: AKID = SKID, signature verifies"
	grep -q "Public Key Algorithm: $algo" "$dir/cert.txt" || fail "public key algorithm is not $algo"
	serial=$(openssl x509 -in "$dir/signing.crt" -noout -serial | cut -d= -f2)
	[ "${#serial}" -eq 32 ] || fail "serial $serial is not 16 bytes"
	case $serial in [0-7]*) ;; *) fail "serial $serial is negative (top bit set)" ;; esac
	ok "serial $serial: 16 bytes, positive"
	cmp -s <(openssl x509 -in "$dir/signing.crt" -outform DER) "$dir/signing.der" ||
		fail "signing.der is not the DER form of signing.crt"
	[ "$(openssl pkey -in "$dir/signing.key" -pubout)" = "$(openssl x509 -in "$dir/signing.crt" -noout -pubkey)" ] ||
		fail "the certificate is not for the private key"
	ok "DER = PEM; the certificate holds the key's public half"
}

check_modes() {
	local dir=$1
	[ "$(stat -c '%a %u' "$dir/signing.key")" = "600 $(id -u)" ] ||
		fail "signing.key is $(stat -c '%a %U' "$dir/signing.key"), want 600 owned by $(id -un)"
	[ "$(stat -c %a "$dir/signing.crt")" = 644 ] || fail "signing.crt mode $(stat -c %a "$dir/signing.crt")"
	[ "$(stat -c %a "$dir/signing.der")" = 644 ] || fail "signing.der mode $(stat -c %a "$dir/signing.der")"
	assert_dir_contents "$dir" signing.key signing.crt signing.der
	ok "modes 0600/0644/0644 whatever the umask"
}

# check_signs DIR RSA?: the new key signs the test module; openssl and modsignctl verify it;
# for RSA sign-file makes the very same bytes.
check_signs() {
	local dir=$1 rsa=$2 m o
	# The module sits in a directory of its own, 0755: the policy gate refuses to sign in a
	# group- or world-writable one, as a key directory made under umask 000 would be.
	mkdir -p "$dir/mod"
	chmod 0755 "$dir/mod"
	m=$dir/mod/hello.ko
	o=$dir/mod/hello-sign-file.ko
	cp "$REAL_MODULE" "$m"
	chmod u+w "$m"
	expect_exit 0 ms sign --key "$dir/signing.key" --cert "$dir/signing.crt" --hash sha256 "$m"
	assert_cms_verifies "$m" "$dir/signing.crt" "keygen key"
	expect_exit 0 ms verify --cert "$dir/signing.crt" "$m"
	[ "$(modinfo -F signer "$m")" = "$(openssl x509 -in "$dir/signing.crt" -noout -subject -nameopt multiline | sed -n 's/^ *commonName *= //p')" ] ||
		fail "modinfo signer '$(modinfo -F signer "$m")' is not the certificate's CN"
	ok "modinfo names the CN as signer"
	if [ "$rsa" = yes ]; then
		"$SIGN_FILE" sha256 "$dir/signing.key" "$dir/signing.der" "$REAL_MODULE" "$o" ||
			fail "sign-file rejects the keygen key"
		assert_files_equal "$o" "$m" "modsignctl sign vs sign-file with the keygen key"
	fi
}

case_type() {
	local name=$1 algo=$2 rsa=$3 dir
	shift 3
	dir=$WORKDIR/$name
	# A permissive umask must not loosen the key file.
	umask 000
	keygen_into "$dir" "$@"
	umask 022
	check_modes "$dir"
	check_cert "$dir" "$algo"
	grep -q "SHA-256 fingerprint: $(openssl x509 -in "$dir/signing.crt" -noout -fingerprint -sha256 | cut -d= -f2)" "$LAST_OUT" ||
		fail "the printed fingerprint is not openssl's" "$(cat "$LAST_OUT")"
	grep -q 'modsignctl enroll' "$LAST_OUT" || fail "no next step printed"
	ok "prints openssl's SHA-256 fingerprint and the next step"
	check_signs "$dir" "$rsa"
}

case_rsa_size() {
	local bits=$1 dir=$WORKDIR/rsa$1
	keygen_into "$dir" --type rsa --bits "$bits"
	grep -q "Public-Key: ($bits bit)" <(openssl x509 -in "$dir/signing.crt" -noout -text) || fail "not $bits bits"
	ok "RSA $bits bits"
	check_signs "$dir" yes
}

case_ec_curve() {
	local curve=$1 nist=$2 md=$3 dir=$WORKDIR/ec-$1
	keygen_into "$dir" --type ec --curve "$curve"
	openssl x509 -in "$dir/signing.crt" -noout -text >"$dir/cert.txt"
	grep -q "NIST CURVE: $nist" "$dir/cert.txt" || fail "curve is not $nist"
	grep -q "Signature Algorithm: ecdsa-with-$md" "$dir/cert.txt" || fail "certificate not signed with $md"
	ok "EC $nist, certificate signed with ecdsa-with-$md"
	check_cert "$dir" id-ecPublicKey
	check_signs "$dir" no
}

case_defaults() {
	local dir=$WORKDIR/defaults start end days
	keygen_into "$dir"
	openssl x509 -in "$dir/signing.crt" -noout -text >"$dir/cert.txt"
	grep -q 'Public-Key: (4096 bit)' "$dir/cert.txt" || fail "default is not RSA 4096"
	grep -q "Subject: CN = modsignd module signing key on $(hostname | cut -c1-33)" "$dir/cert.txt" ||
		fail "default CN is not 'modsignd module signing key on HOSTNAME'" "$(grep Subject: "$dir/cert.txt")"
	start=$(date -d "$(openssl x509 -in "$dir/signing.crt" -noout -startdate | cut -d= -f2)" +%s)
	end=$(date -d "$(openssl x509 -in "$dir/signing.crt" -noout -enddate | cut -d= -f2)" +%s)
	days=$(((end - start) / 86400))
	[ "$days" -eq 3650 ] || fail "default validity is $days days, not 3650"
	ok "default: RSA 4096, CN with the host name, 3650 days"
}

case_options() {
	local dir=$WORKDIR/options start end
	mkdir -p "$dir"
	expect_exit 0 ms keygen --key "$dir/k.pem" --cert "$dir/c.pem" --der "$dir/c.cer" --cn "Büro key" --days 30 --bits 2048
	assert_dir_contents "$dir" k.pem c.pem c.cer
	openssl x509 -in "$dir/c.pem" -noout -subject -nameopt utf8,sep_multiline | grep -q 'CN=Büro key' ||
		fail "UTF-8 CN not kept" "$(openssl x509 -in "$dir/c.pem" -noout -subject -nameopt utf8)"
	start=$(date -d "$(openssl x509 -in "$dir/c.pem" -noout -startdate | cut -d= -f2)" +%s)
	end=$(date -d "$(openssl x509 -in "$dir/c.pem" -noout -enddate | cut -d= -f2)" +%s)
	[ $(((end - start) / 86400)) -eq 30 ] || fail "--days 30 gave $(((end - start) / 86400))"
	ok "--key/--cert/--der paths, UTF-8 --cn, --days"
	expect_exit 0 ms keygen --json --type ec --key "$dir/j.key" --subject "json test"
	python3 - "$LAST_OUT" "$dir" <<'PY' || fail "--json output is wrong" "$(cat "$LAST_OUT")"
import json, sys, subprocess
o = json.load(open(sys.argv[1])); d = sys.argv[2]
fp = subprocess.run(["openssl", "x509", "-in", d + "/j.crt", "-noout", "-fingerprint", "-sha256"],
                    capture_output=True, text=True, check=True).stdout.split("=")[1].strip()
assert o["key"] == d + "/j.key" and o["certificate"] == d + "/j.crt" and o["certificate_der"] == d + "/j.der", o
assert o["key_type"] == "ec P-256" and o["subject"] == "json test" and o["days"] == 3650, o
assert o["fingerprint_sha256"] == fp.replace(":", "").lower(), (o, fp)
assert o["next"].startswith("modsignctl enroll"), o
PY
	ok "--json reports paths, type, subject and openssl's fingerprint"
}

case_refuses() {
	local dir=$WORKDIR/refuse snap
	keygen_into "$dir" --bits 2048
	snap=$(snapshot "$dir/signing.key")
	expect_exit 1 ms keygen --key "$dir/signing.key" --bits 2048
	grep -q 'already exists; refusing to overwrite' "$LAST_ERR" || fail "no clear message" "$(cat "$LAST_ERR")"
	assert_unchanged "$dir/signing.key" "$snap" "second keygen"
	# Only the certificate exists: no key must be made beside it.
	mkdir -p "$dir/2"
	cp "$dir/signing.crt" "$dir/2/signing.crt"
	expect_exit 1 ms keygen --key "$dir/2/signing.key" --bits 2048
	assert_dir_contents "$dir/2" signing.crt
	# A symlink (even dangling) at the key path is not followed.
	mkdir -p "$dir/3"
	ln -s "$dir/3/elsewhere" "$dir/3/signing.key"
	expect_exit 1 ms keygen --key "$dir/3/signing.key" --bits 2048
	[ ! -e "$dir/3/elsewhere" ] || fail "keygen followed the symlink"
	assert_dir_contents "$dir/3" signing.key
}

case_usage() {
	local dir=$WORKDIR/usage
	mkdir -p "$dir"
	expect_exit 2 ms keygen --key "$dir/k" --bits 1024
	expect_exit 2 ms keygen --key "$dir/k" --type dsa
	expect_exit 2 ms keygen --key "$dir/k" --curve p256
	expect_exit 2 ms keygen --key "$dir/k" --type ec --bits 2048
	expect_exit 2 ms keygen --key "$dir/k" --type ec --curve p521
	expect_exit 2 ms keygen --key "$dir/k" --days 0
	expect_exit 2 ms keygen --key "$dir/k" --cn "$(printf 'x%.0s' $(seq 65))"
	expect_exit 2 ms keygen --key 'pkcs11:token=T;object=O'
	grep -q 'needs --cert' "$LAST_ERR" || fail "no 'needs --cert' for a token key without --cert" "$(cat "$LAST_ERR")"
	[ -z "$(ls -A "$dir")" ] || fail "a refused keygen left files: $(ls -A "$dir")"
	ok "nothing written by a refused command"
}

run_case "RSA default size (4096): extensions, modes, signs like sign-file" case_type rsa-default rsaEncryption yes
run_case "EC P-256 (--type ec): extensions, modes, signature verifies" case_type ec-default id-ecPublicKey no --type ec
run_case "RSA 2048" case_rsa_size 2048
run_case "RSA 3072" case_rsa_size 3072
run_case "EC P-256 (--curve p256)" case_ec_curve p256 P-256 SHA256
run_case "EC P-384 (--curve p384)" case_ec_curve p384 P-384 SHA384
run_case "defaults: type, CN, validity" case_defaults
run_case "path, subject, days and --json options" case_options
run_case "refuses to overwrite a key, a certificate, a symlink" case_refuses
run_case "usage errors" case_usage
finish
