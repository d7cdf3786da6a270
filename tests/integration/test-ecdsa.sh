#!/bin/bash
# ECDSA (P-256, P-384) x sha256/sha384/sha512: ECDSA is not deterministic, so instead of
# byte equality with sign-file the signature must
#   - verify with `openssl cms -verify` over the module body, and fail on a flipped byte
#     (in the body and in the signature);
#   - have the same CMS structure as sign-file's (all fields but the signature value);
#   - show signer (the certificate's CN) and sig_hashalgo in modinfo;
#   - pass `modsignctl verify --cert CERT` (and fail with exit 5 for another certificate,
#     exit 4 once a body byte is flipped).
# shellcheck disable=SC2317 # the case functions are called through run_case
set -eu
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=SCRIPTDIR/lib.sh
. "$srcdir/tests/integration/lib.sh"

setup_workdir
require_common
require_modsignctl

make_key ec-p256 ec-p256
make_key ec-p384 ec-p384
build_real_module

# The CMS as `openssl cms -cmsout -print` shows it, without the signature value bytes.
cms_structure() {
	openssl cms -cmsout -print -inform DER -in "$1" | sed -E '/^ *[0-9a-f]{4} - /d'
}

# ecdsa_case KEYNAME HASH MODE(serial|keyid)
ecdsa_case() {
	local keyname=$1 hash=$2 mode=$3 key cert other d k=() keyid=() off v
	key=$(key_of "$keyname")
	cert=$(cert_of "$keyname")
	if [ "$keyname" = ec-p256 ]; then other=$(cert_of ec-p384); else other=$(cert_of ec-p256); fi
	if [ "$mode" = keyid ]; then
		k=(-k)
		keyid=(--keyid)
	fi
	d=$(mktemp -d "$WORKDIR/case.XXXXXX")
	cp "$REAL_MODULE" "$d/m.ko"
	cp "$REAL_MODULE" "$d/sf.ko"

	step "modsignctl sign --key $keyname --hash $hash ${keyid[*]}"
	expect_exit 0 ms sign --key "$key" --cert "$cert" --hash "$hash" "${keyid[@]}" "$d/m.ko"
	assert_dir_contents "$d" m.ko sf.ko
	[ "$(count_signatures "$d/m.ko")" -eq 1 ] || fail "$d/m.ko does not carry exactly one signature"
	extract_signature "$d/m.ko" "$d/sig" "$d/body"
	assert_files_equal "$REAL_MODULE" "$d/body" "signed body = original module"

	step "openssl cms -verify of the extracted signature"
	if ! cms_verify "$d/sig" "$d/body" "$cert" >"$d/cms.log" 2>&1; then
		show_file "$d/cms.log"
		fail "openssl cms -verify rejects the signature of $d/m.ko ($keyname, $hash, $mode)"
	fi
	ok "openssl cms -verify accepts it"

	step "a flipped byte in the body must fail openssl cms -verify"
	cp "$d/body" "$d/body.bad"
	off=$(text_offset "$d/body")
	[ -n "$off" ] || fail "cannot find the description string in $d/body"
	flip_byte "$d/body.bad" "$off"
	if cms_verify "$d/sig" "$d/body.bad" "$cert" >"$d/cms.log" 2>&1; then
		fail "openssl cms -verify accepts a body with byte $off flipped: the check is not real"
	fi
	ok "rejected: $(grep -m1 -i 'fail' "$d/cms.log" || head -n 1 "$d/cms.log")"

	step "a flipped byte in the signature value must fail openssl cms -verify"
	cp "$d/sig" "$d/sig.bad"
	flip_byte "$d/sig.bad" $(($(file_size "$d/sig") - 5))
	if cms_verify "$d/sig.bad" "$d/body" "$cert" >"$d/cms.log" 2>&1; then
		fail "openssl cms -verify accepts a signature with a flipped byte"
	fi
	ok "rejected"

	step "CMS structure equals sign-file's (except the signature value)"
	expect_exit 0 "$SIGN_FILE" "${k[@]}" "$hash" "$key" "$cert" "$d/sf.ko" "$d/expected.ko"
	extract_signature "$d/expected.ko" "$d/sf.sig"
	cms_structure "$d/sf.sig" >"$d/sf.txt"
	cms_structure "$d/sig" >"$d/ms.txt"
	if ! diff -u "$d/sf.txt" "$d/ms.txt" >"$d/diff.txt"; then
		show_file "$d/diff.txt" 60
		fail "the CMS structure differs from sign-file's ($keyname, $hash, $mode)"
	fi
	ok "same CMS fields as sign-file: $(grep -m1 'algorithm: ecdsa' "$d/ms.txt" | sed 's/^ *//')"
	[ "$(file_size "$d/m.ko")" -eq $(($(file_size "$REAL_MODULE") + $(file_size "$d/sig") + 40)) ] ||
		fail "size of $d/m.ko is not module + signature + 40"

	if [ "$mode" = serial ]; then
		step "modinfo shows the signer and the hash"
		v=$(modinfo -F signer "$d/m.ko")
		[ "$v" = "$(cn_of "$keyname")" ] || fail "modinfo signer of $d/m.ko is '$v', expected '$(cn_of "$keyname")'"
		ok "signer: $v"
		v=$(modinfo -F sig_hashalgo "$d/m.ko")
		[ "$v" = "$hash" ] || fail "modinfo sig_hashalgo of $d/m.ko is '$v', expected '$hash'"
		ok "sig_hashalgo: $v"
		v=$(modinfo -F sig_id "$d/m.ko")
		[ "$v" = 'PKCS#7' ] || fail "modinfo sig_id of $d/m.ko is '$v', expected 'PKCS#7'"
	else
		# kmod 30 does not decode signer infos that use a subjectKeyIdentifier (it shows no
		# signature fields for sign-file -k output either), so compare with sign-file's.
		step "modinfo shows the same signature fields as for sign-file -k output"
		[ "$(modinfo "$d/m.ko" | { grep -c '^sig' || true; })" = \
			"$(modinfo "$d/expected.ko" | { grep -c '^sig' || true; })" ] ||
			fail "modinfo shows different signature fields for $d/m.ko and sign-file's $d/expected.ko"
		ok "same"
	fi

	step "modsignctl verify"
	expect_exit 0 ms verify --cert "$cert" "$d/m.ko"
	expect_exit 5 ms verify --cert "$other" "$d/m.ko"
	expect_exit 0 ms verify --cert "$other" --cert "$cert" "$d/m.ko"
	expect_exit 0 ms verify --cert "$cert" "$d/expected.ko"
	cp "$d/m.ko" "$d/bad.ko"
	flip_byte "$d/bad.ko" "$off"
	expect_exit 4 ms verify --cert "$cert" "$d/bad.ko"
	rm -rf "$d"
}

for keyname in ec-p256 ec-p384; do
	for hash in sha256 sha384 sha512; do
		for mode in serial keyid; do
			run_case "$keyname, $hash, $mode" ecdsa_case "$keyname" "$hash" "$mode"
		done
	done
done

finish
