#!/bin/bash
# Debian's scripts/sign-file is the oracle: for RSA keys (PKCS#1 v1.5 is deterministic)
# modsignctl must produce the same bytes, through `modsignctl sign-file` (with DEST and in
# place, and its -d, -p, -s forms) and through `modsignctl sign`.
#
# Full matrix on the real module: RSA-2048/RSA-4096 x sha256/sha384/sha512 x
# issuer-and-serial/key-id. Reduced set on a 50 MiB module: RSA-2048 x sha256/sha512 x
# both modes. Also: DER key and certificate, and --hash auto (--sysroot, --kernel).
# shellcheck disable=SC2317 # the case functions are called through run_case
set -eu
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=SCRIPTDIR/lib.sh
. "$srcdir/tests/integration/lib.sh"

setup_workdir
require_common
require_cmd head find
require_modsignctl

make_key rsa2048 rsa2048
make_key rsa4096 rsa4096
build_real_module
BIG_MODULE=$WORKDIR/big.ko
make_big_module "$REAL_MODULE" "$BIG_MODULE" 50

# oracle_case MODULE KEYNAME HASH MODE(serial|keyid)
oracle_case() {
	local module=$1 keyname=$2 hash=$3 mode=$4
	local key cert d k=() keyid=() sum name=m.ko sub
	key=$(key_of "$keyname")
	cert=$(cert_of "$keyname")
	if [ "$mode" = keyid ]; then
		k=(-k)
		keyid=(--keyid)
	fi
	d=$(mktemp -d "$WORKDIR/case.XXXXXX")
	sum=$(sha256_of "$module")
	mkdir "$d/sf" "$d/a" "$d/b" "$d/c" "$d/sfd" "$d/d" "$d/sfp" "$d/p" "$d/sfs" "$d/s" "$d/s2"
	for sub in sf a b c sfd d sfp p sfs s s2; do
		cp "$module" "$d/$sub/$name"
	done

	step "oracle: sign-file ${k[*]} $hash $key $cert IN OUT"
	expect_exit 0 "$SIGN_FILE" "${k[@]}" "$hash" "$key" "$cert" "$d/sf/$name" "$d/expected.ko"
	assert_sha256 "$d/sf/$name" "$sum" "sign-file leaves its input alone"
	assert_cms_verifies "$d/expected.ko" "$cert" "oracle output sanity"

	step "(a) modsignctl sign-file ${k[*]} $hash KEY CERT IN DEST"
	expect_exit 0 ms sign-file "${k[@]}" "$hash" "$key" "$cert" "$d/a/$name" "$d/a/out.ko"
	assert_files_equal "$d/expected.ko" "$d/a/out.ko" "sign-file with DEST"
	assert_sha256 "$d/a/$name" "$sum" "input of sign-file with DEST"
	assert_dir_contents "$d/a" "$name" out.ko

	step "(b) modsignctl sign-file ${k[*]} $hash KEY CERT MODULE (in place)"
	expect_exit 0 ms sign-file "${k[@]}" "$hash" "$key" "$cert" "$d/b/$name"
	assert_files_equal "$d/expected.ko" "$d/b/$name" "sign-file in place"
	assert_dir_contents "$d/b" "$name"

	step "(c) modsignctl sign --key KEY --cert CERT --hash $hash ${keyid[*]} MODULE"
	expect_exit 0 ms sign --key "$key" --cert "$cert" --hash "$hash" "${keyid[@]}" "$d/c/$name"
	assert_files_equal "$d/expected.ko" "$d/c/$name" "sign"
	assert_dir_contents "$d/c" "$name"
	expect_exit 0 ms verify --cert "$cert" "$d/c/$name"

	step "(d) -d: detached signature only, module untouched"
	expect_exit 0 "$SIGN_FILE" -d "${k[@]}" "$hash" "$key" "$cert" "$d/sfd/$name"
	assert_dir_contents "$d/sfd" "$name" "$name.p7s"
	expect_exit 0 ms sign-file -d "${k[@]}" "$hash" "$key" "$cert" "$d/d/$name"
	assert_files_equal "$d/sfd/$name.p7s" "$d/d/$name.p7s" "sign-file -d: $name.p7s"
	assert_sha256 "$d/d/$name" "$sum" "sign-file -d leaves the module alone"
	assert_dir_contents "$d/d" "$name" "$name.p7s"

	step "(e) -p: signed module and MODULE.p7s"
	expect_exit 0 "$SIGN_FILE" -p "${k[@]}" "$hash" "$key" "$cert" "$d/sfp/$name" "$d/sfp/out.ko"
	expect_exit 0 ms sign-file -p "${k[@]}" "$hash" "$key" "$cert" "$d/p/$name" "$d/p/out.ko"
	assert_files_equal "$d/sfp/$name.p7s" "$d/p/$name.p7s" "sign-file -p: $name.p7s"
	assert_files_equal "$d/sfp/out.ko" "$d/p/out.ko" "sign-file -p: signed module"
	assert_files_equal "$d/expected.ko" "$d/sfp/out.ko" "oracle self-consistency (-p output = plain output)"
	assert_dir_contents "$d/p" "$name" "$name.p7s" out.ko

	step "(f) -s RAWSIG (the .p7s from -d) HASH CERT MODULE [DEST]"
	expect_exit 0 "$SIGN_FILE" -s "$d/sfd/$name.p7s" "$hash" "$cert" "$d/sfs/$name" "$d/sfs/out.ko"
	expect_exit 0 ms sign-file -s "$d/sfd/$name.p7s" "$hash" "$cert" "$d/s/$name" "$d/s/out.ko"
	assert_files_equal "$d/sfs/out.ko" "$d/s/out.ko" "sign-file -s with DEST"
	assert_sha256 "$d/s/$name" "$sum" "input of sign-file -s with DEST"
	expect_exit 0 ms sign-file -s "$d/sfd/$name.p7s" "$hash" "$cert" "$d/s2/$name"
	assert_files_equal "$d/sfs/out.ko" "$d/s2/$name" "sign-file -s in place"
	assert_dir_contents "$d/s2" "$name"
	assert_files_equal "$d/expected.ko" "$d/sfs/out.ko" "oracle self-consistency (-s of the -d signature = plain output)"

	rm -rf "$d"
}

for keyname in rsa2048 rsa4096; do
	for hash in sha256 sha384 sha512; do
		for mode in serial keyid; do
			run_case "real module, $keyname, $hash, $mode" oracle_case "$REAL_MODULE" "$keyname" "$hash" "$mode"
		done
	done
done

for hash in sha256 sha512; do
	for mode in serial keyid; do
		run_case "50 MiB module, rsa2048, $hash, $mode" oracle_case "$BIG_MODULE" rsa2048 "$hash" "$mode"
	done
done

# DER key and certificate (sign takes PEM or DER; sign-file takes a DER certificate).
der_case() {
	local d key cert
	key=$(key_of rsa2048)
	cert=$(cert_of rsa2048)
	d=$(mktemp -d "$WORKDIR/der.XXXXXX")
	cp "$REAL_MODULE" "$d/sign.ko"
	cp "$REAL_MODULE" "$d/signfile.ko"
	expect_exit 0 "$SIGN_FILE" sha256 "$key" "$cert" "$REAL_MODULE" "$d/expected.ko"
	step "modsignctl sign with a DER private key and a DER certificate"
	expect_exit 0 ms sign --key "$key.der" --cert "$cert.der" --hash sha256 "$d/sign.ko"
	assert_files_equal "$d/expected.ko" "$d/sign.ko" "sign, DER key and certificate"
	step "modsignctl sign-file with a DER certificate (as sign-file accepts)"
	expect_exit 0 "$SIGN_FILE" sha256 "$key" "$cert.der" "$REAL_MODULE" "$d/expected-der.ko"
	assert_files_equal "$d/expected.ko" "$d/expected-der.ko" "oracle: DER certificate = PEM certificate"
	expect_exit 0 ms sign-file sha256 "$key" "$cert.der" "$d/signfile.ko"
	assert_files_equal "$d/expected.ko" "$d/signfile.ko" "sign-file, DER certificate"
	rm -rf "$d"
}
run_case "DER key and certificate, rsa2048, sha256" der_case

# --hash auto: CONFIG_MODULE_SIG_HASH of the module's kernel, from SYSROOT.
auto_case() {
	local d key cert sr kv h
	key=$(key_of rsa2048)
	cert=$(cert_of rsa2048)
	d=$(mktemp -d "$WORKDIR/auto.XXXXXX")
	kv=$(modinfo -F vermagic "$REAL_MODULE")
	kv=${kv%% *}
	step "module kernel release from vermagic: $kv"
	for h in sha384 sha512 sha256; do
		expect_exit 0 "$SIGN_FILE" "$h" "$key" "$cert" "$REAL_MODULE" "$d/expected-$h.ko"
	done

	step "only SYSROOT/boot/config-$kv says sha384"
	sr=$d/root1
	mkdir -p "$sr/boot"
	printf 'CONFIG_MODULES=y\nCONFIG_MODULE_SIG=y\nCONFIG_MODULE_SIG_HASH="sha384"\n' >"$sr/boot/config-$kv"
	cp "$REAL_MODULE" "$d/m1.ko"
	expect_exit 0 ms sign --key "$key" --cert "$cert" --sysroot "$sr" "$d/m1.ko"
	assert_files_equal "$d/expected-sha384.ko" "$d/m1.ko" "--hash auto from boot/config"
	cp "$REAL_MODULE" "$d/m1b.ko"
	expect_exit 0 ms sign --key "$key" --cert "$cert" --hash auto --sysroot "$sr" "$d/m1b.ko"
	assert_files_equal "$d/expected-sha384.ko" "$d/m1b.ko" "explicit --hash auto from boot/config"

	step "auto.conf (sha512) wins over .config (sha256) and boot/config (sha384)"
	mkdir -p "$sr/lib/modules/$kv/build/include/config"
	printf 'CONFIG_MODULE_SIG_HASH="sha512"\n' >"$sr/lib/modules/$kv/build/include/config/auto.conf"
	printf 'CONFIG_MODULE_SIG_HASH="sha256"\n' >"$sr/lib/modules/$kv/build/.config"
	cp "$REAL_MODULE" "$d/m2.ko"
	expect_exit 0 ms sign --key "$key" --cert "$cert" --sysroot "$sr" "$d/m2.ko"
	assert_files_equal "$d/expected-sha512.ko" "$d/m2.ko" "--hash auto from auto.conf"

	step ".config (sha256) wins over boot/config (sha384)"
	rm "$sr/lib/modules/$kv/build/include/config/auto.conf"
	cp "$REAL_MODULE" "$d/m3.ko"
	expect_exit 0 ms sign --key "$key" --cert "$cert" --sysroot "$sr" "$d/m3.ko"
	assert_files_equal "$d/expected-sha256.ko" "$d/m3.ko" "--hash auto from build/.config"

	step "--kernel KVER overrides the module's vermagic"
	sr=$d/root2
	mkdir -p "$sr/boot"
	printf 'CONFIG_MODULE_SIG_HASH="sha384"\n' >"$sr/boot/config-9.9.9-other"
	printf 'CONFIG_MODULE_SIG_HASH="sha256"\n' >"$sr/boot/config-$kv"
	cp "$REAL_MODULE" "$d/m4.ko"
	expect_exit 0 ms sign --key "$key" --cert "$cert" --kernel 9.9.9-other --sysroot "$sr" "$d/m4.ko"
	assert_files_equal "$d/expected-sha384.ko" "$d/m4.ko" "--hash auto with --kernel"

	step "no configuration in SYSROOT: a warning, and sha512 (DKMS's default)"
	mkdir -p "$d/empty-root"
	cp "$REAL_MODULE" "$d/m5.ko"
	expect_exit 0 ms sign --key "$key" --cert "$cert" --sysroot "$d/empty-root" "$d/m5.ko"
	if [ ! -s "$LAST_ERR" ]; then
		fail "no warning on stderr when no kernel configuration was found (command: $LAST_CMD)"
	fi
	ok "warning: $(head -n 1 "$LAST_ERR")"
	assert_files_equal "$d/expected-sha512.ko" "$d/m5.ko" "--hash auto without configuration"
	rm -rf "$d"
}
run_case "--hash auto (CONFIG_MODULE_SIG_HASH via --sysroot / --kernel)" auto_case

finish
