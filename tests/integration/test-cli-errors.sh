#!/bin/bash
# Exit codes of modsignctl and files left untouched on failure (CLISPEC: 0 ok, 1 error,
# 2 usage, 3 unsigned, 4 bad signature, 5 untrusted signer, 6 not a valid module; most
# severe wins 1 > 6 > 4 > 5 > 3 > 0; one stderr line `modsignctl: FILE: problem`; a failed
# operation leaves the file on disk untouched).
# shellcheck disable=SC2317 # the case functions are called through run_case
set -eu
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=SCRIPTDIR/lib.sh
. "$srcdir/tests/integration/lib.sh"

setup_workdir
require_common
require_cmd touch ln truncate
require_modsignctl

make_key rsa2048 keyA
make_key rsa2048 keyB
build_real_module
KEY_A=$(key_of keyA)
CERT_A=$(cert_of keyA)
KEY_B=$(key_of keyB)
CERT_B=$(cert_of keyB)
SIGNED_A=$WORKDIR/signed-a.ko
SIGNED_B=$WORKDIR/signed-b.ko
"$SIGN_FILE" sha256 "$KEY_A" "$CERT_A" "$REAL_MODULE" "$SIGNED_A" || fail "oracle sign-file (key A) failed"
"$SIGN_FILE" sha256 "$KEY_B" "$CERT_B" "$REAL_MODULE" "$SIGNED_B" || fail "oracle sign-file (key B) failed"
chmod a-w "$SIGNED_A" "$SIGNED_B"

# newdir: a fresh directory for one case.
newdir() { mktemp -d "$WORKDIR/case.XXXXXX"; }

# --- verify: 3, 4, 5 --------------------------------------------------------------------

verify_codes_case() {
	local d off
	d=$(newdir)
	cp "$REAL_MODULE" "$d/unsigned.ko"
	cp "$SIGNED_A" "$d/signed.ko"
	cp "$SIGNED_A" "$d/tampered.ko"
	off=$(text_offset "$d/tampered.ko")
	[ -n "$off" ] || fail "cannot find the description string in $d/tampered.ko"
	flip_byte "$d/tampered.ko" "$off"

	step "signed by A, verified with A: 0"
	expect_exit 0 ms verify --cert "$CERT_A" "$d/signed.ko"
	step "unsigned module: 3"
	expect_exit 3 ms verify --cert "$CERT_A" "$d/unsigned.ko"
	step "signed, then one body byte flipped (offset $off, in .modinfo): 4"
	expect_exit 4 ms verify --cert "$CERT_A" "$d/tampered.ko"
	step "signed by A, verified with B: 5"
	expect_exit 5 ms verify --cert "$CERT_B" "$d/signed.ko"
	step "a directory and a PEM bundle as --cert"
	mkdir "$d/certs"
	cp "$CERT_B" "$d/certs/b.pem"
	cp "$CERT_A" "$d/certs/a.pem"
	expect_exit 0 ms verify --cert "$d/certs" "$d/signed.ko"
	cat "$CERT_B" "$CERT_A" >"$d/bundle.pem"
	expect_exit 0 ms verify --cert "$d/bundle.pem" "$d/signed.ko"
	expect_exit 0 ms verify --cert "$(cert_of keyA).der" "$d/signed.ko"

	step "several modules: the most severe result wins (1 > 6 > 4 > 5 > 3 > 0)"
	printf 'not a module\n' >"$d/text.ko"
	expect_exit 3 ms verify --cert "$CERT_A" "$d/signed.ko" "$d/unsigned.ko"
	expect_exit 5 ms verify --cert "$CERT_B" "$d/unsigned.ko" "$d/signed.ko"
	cp "$SIGNED_B" "$d/signed-b.ko"
	expect_exit 4 ms verify --cert "$CERT_A" "$d/signed-b.ko" "$d/tampered.ko" "$d/unsigned.ko"
	expect_exit 6 ms verify --cert "$CERT_A" "$d/tampered.ko" "$d/text.ko" "$d/signed.ko"
	expect_exit 1 ms verify --cert "$CERT_A" "$d/text.ko" "$d/does-not-exist.ko" "$d/tampered.ko"
	assert_files_equal "$SIGNED_A" "$d/signed.ko" "verify does not modify modules"
	rm -rf "$d"
}
run_case "verify exit codes: 0, 3 unsigned, 4 tampered, 5 untrusted, precedence" verify_codes_case

# --- not a module: 6 ----------------------------------------------------------------------

# not_module_case NAME MAKER: MAKER FILE creates the file; sign must exit 6, leave it.
not_module_case() {
	local what=$1 maker=$2 d f sum
	d=$(newdir)
	f=$d/$what.ko
	"$maker" "$f"
	sum=$(sha256_of "$f")
	step "sign $what ($(file_size "$f") bytes): exit 6, file unchanged, one stderr line naming it"
	expect_exit 6 ms sign --key "$KEY_A" --cert "$CERT_A" --hash sha256 "$f"
	assert_stderr_one_line_naming "$f"
	assert_sha256 "$f" "$sum" "sign of $what"
	assert_dir_contents "$d" "$what.ko"
	step "verify, info and strip of $what: exit 6"
	expect_exit 6 ms verify --cert "$CERT_A" "$f"
	expect_exit 6 ms info "$f"
	expect_exit 6 ms strip "$f"
	assert_sha256 "$f" "$sum" "strip of $what"
	rm -rf "$d"
}
mk_text() { printf 'this is a text file, not a kernel module\n' >"$1"; }
mk_empty() { : >"$1"; }
mk_truncated() { head -c 100 "$REAL_MODULE" >"$1"; }
mk_truncated_signed() { head -c 100 "$SIGNED_A" >"$1"; }
mk_executable() { cp "$(type -P true)" "$1"; }
mk_m32() {
	printf 'int modsign_test_var = 42;\n' >"$1.c"
	if ! gcc -m32 -c "$1.c" -o "$1" >/dev/null 2>&1; then
		rm -f "$1.c"
		skip_case "gcc -m32 cannot build a 32-bit object here"
	fi
	rm -f "$1.c"
}
mk_m64_object() {
	# A 64-bit relocatable object without .modinfo.
	printf 'int modsign_test_var = 42;\n' >"$1.c"
	gcc -c "$1.c" -o "$1"
	rm -f "$1.c"
}
run_case "not a module: text file" not_module_case text mk_text
run_case "not a module: empty file" not_module_case empty mk_empty
run_case "not a module: ELF truncated to 100 bytes (head -c 100)" not_module_case truncated mk_truncated
run_case "not a module: an executable (/bin/true)" not_module_case executable mk_executable
run_case "not a module: 32-bit object (gcc -m32 -c)" not_module_case elf32 mk_m32

# Cases beyond the brief's list; their exit code is what CLISPEC implies, recorded apart.
run_case "not a module: 64-bit object without .modinfo (gcc -c)" not_module_case nomodinfo mk_m64_object

# --- malformed trailers -----------------------------------------------------------------

# malformed_case WHAT: a signed module with its module_signature altered.
malformed_case() {
	local what=$1 d f size sum hdr
	d=$(newdir)
	f=$d/m.ko
	cp "$SIGNED_A" "$f"
	chmod u+w "$f"
	size=$(file_size "$f")
	hdr=$((size - 40))
	case $what in
	siglen-huge)
		poke_byte "$f" $((hdr + 8)) 127
		poke_byte "$f" $((hdr + 9)) 255
		poke_byte "$f" $((hdr + 10)) 255
		poke_byte "$f" $((hdr + 11)) 255
		;;
	siglen-file-plus-1)
		local n=$((size - 40 + 1))
		poke_byte "$f" $((hdr + 8)) $(((n >> 24) & 255))
		poke_byte "$f" $((hdr + 9)) $(((n >> 16) & 255))
		poke_byte "$f" $((hdr + 10)) $(((n >> 8) & 255))
		poke_byte "$f" $((hdr + 11)) $((n & 255))
		;;
	siglen-zero)
		poke_byte "$f" $((hdr + 8)) 0
		poke_byte "$f" $((hdr + 9)) 0
		poke_byte "$f" $((hdr + 10)) 0
		poke_byte "$f" $((hdr + 11)) 0
		;;
	id-type-1) poke_byte "$f" $((hdr + 2)) 1 ;;
	id-type-0) poke_byte "$f" $((hdr + 2)) 0 ;;
	reserved-pad) poke_byte "$f" $((hdr + 5)) 1 ;;
	reserved-algo) poke_byte "$f" $((hdr + 0)) 1 ;;
	magic-only) printf '%s\n' "$MODULE_MAGIC" >"$f" ;;
	*) fail "unknown malformation $what" ;;
	esac
	sum=$(sha256_of "$f")
	if [ "$(file_size "$f")" -ge 40 ]; then
		step "module_signature now: [$(read_bytes "$f" $(($(file_size "$f") - 40)) 12 | tr '\n' ' ')]"
	fi
	if [ "$what" = magic-only ]; then
		# Both "not ELF" (6) and "malformed trailer" (4) describe it.
		expect_no_crash ms verify --cert "$CERT_A" "$f"
		[ "$LAST_RC" -eq 6 ] || [ "$LAST_RC" -eq 4 ] ||
			fail "verify of a file holding only the magic exited $LAST_RC, expected 6 (or 4)"
	else
		expect_exit 4 ms verify --cert "$CERT_A" "$f"
	fi
	expect_no_crash ms info "$f"
	expect_no_crash ms --json info "$f"
	expect_no_crash ms strip "$f"
	if [ "$LAST_RC" -ne 0 ]; then
		assert_sha256 "$f" "$sum" "failed strip"
	fi
	cp "$f" "$d/m2.ko"
	step "sign of the malformed module: no crash; unchanged if refused, else a valid result"
	expect_no_crash ms sign --key "$KEY_A" --cert "$CERT_A" --hash sha256 "$d/m2.ko"
	if [ "$LAST_RC" -ne 0 ]; then
		assert_sha256 "$d/m2.ko" "$sum" "failed sign"
	else
		expect_exit 0 ms verify --cert "$CERT_A" "$d/m2.ko"
	fi
	rm -rf "$d"
}
run_case "malformed trailer: sig_len 0x7fffffff" malformed_case siglen-huge
run_case "malformed trailer: sig_len one byte more than the file holds" malformed_case siglen-file-plus-1
run_case "malformed trailer: sig_len 0" malformed_case siglen-zero
run_case "malformed trailer: id_type 1 (X.509) instead of 2" malformed_case id-type-1
run_case "malformed trailer: id_type 0 (PGP) instead of 2" malformed_case id-type-0
run_case "malformed trailer: non-zero reserved byte (__pad[0])" malformed_case reserved-pad
run_case "malformed trailer: non-zero algo byte" malformed_case reserved-algo
run_case "malformed: a file that is only the magic string" malformed_case magic-only

# --- usage and key errors ---------------------------------------------------------------

usage_and_key_case() {
	local d sum
	d=$(newdir)
	cp "$REAL_MODULE" "$d/m.ko"
	chmod u+w "$d/m.ko"
	sum=$(sha256_of "$d/m.ko")
	step "unknown hash: 2"
	expect_exit 2 ms sign --key "$KEY_A" --cert "$CERT_A" --hash md4 "$d/m.ko"
	assert_sha256 "$d/m.ko" "$sum" "sign --hash md4"
	step "weak hash without --allow-weak-hash: 2 (usage), module unchanged"
	expect_fail ms sign --key "$KEY_A" --cert "$CERT_A" --hash sha1 "$d/m.ko"
	assert_sha256 "$d/m.ko" "$sum" "sign --hash sha1"
	step "bad option, missing argument, unknown command: 2"
	expect_exit 2 ms sign --no-such-option --key "$KEY_A" --cert "$CERT_A" "$d/m.ko"
	expect_exit 2 ms sign --key "$KEY_A" --cert "$CERT_A" --hash sha256
	expect_exit 2 ms sign --cert "$CERT_A" --hash sha256 "$d/m.ko"
	expect_exit 2 ms verify "$d/m.ko"
	expect_exit 2 ms no-such-command
	expect_exit 2 ms
	assert_sha256 "$d/m.ko" "$sum" "usage errors"
	step "missing key file: 1, module unchanged"
	expect_exit 1 ms sign --key "$d/no-such.key" --cert "$CERT_A" --hash sha256 "$d/m.ko"
	assert_sha256 "$d/m.ko" "$sum" "sign with a missing key"
	step "missing certificate file: 1, module unchanged"
	expect_exit 1 ms sign --key "$KEY_A" --cert "$d/no-such.crt" --hash sha256 "$d/m.ko"
	assert_sha256 "$d/m.ko" "$sum" "sign with a missing certificate"
	step "key A with certificate B: 1, module unchanged"
	expect_exit 1 ms sign --key "$KEY_A" --cert "$CERT_B" --hash sha256 "$d/m.ko"
	assert_sha256 "$d/m.ko" "$sum" "sign with a key that does not match the certificate"
	step "a certificate given as the key: 1"
	expect_exit 1 ms sign --key "$CERT_A" --cert "$CERT_A" --hash sha256 "$d/m.ko"
	assert_sha256 "$d/m.ko" "$sum" "sign with a certificate as key"
	step "missing module: 1"
	expect_exit 1 ms sign --key "$KEY_A" --cert "$CERT_A" --hash sha256 "$d/no-such.ko"
	assert_stderr_one_line_naming "$d/no-such.ko"
	assert_dir_contents "$d" m.ko
	step "sign-file: key not matching, missing file (exit 1 like sign-file)"
	expect_exit 1 ms sign-file sha256 "$KEY_A" "$CERT_B" "$d/m.ko"
	expect_exit 1 ms sign-file sha256 "$KEY_A" "$CERT_A" "$d/no-such.ko"
	assert_sha256 "$d/m.ko" "$sum" "failed sign-file"
	assert_dir_contents "$d" m.ko
	rm -rf "$d"
}
run_case "usage errors (2) and key/certificate errors (1), module unchanged" usage_and_key_case

# --- re-signing, --replace, strip -----------------------------------------------------------

resign_case() {
	local d snap
	d=$(newdir)
	cp "$SIGNED_A" "$d/m.ko"
	chmod u+w "$d/m.ko"

	step "signed by A, sign with B without --replace: refused, unchanged"
	touch -d '2001-02-03 04:05:06' "$d/m.ko"
	snap=$(snapshot "$d/m.ko")
	expect_fail ms sign --key "$KEY_B" --cert "$CERT_B" --hash sha256 "$d/m.ko"
	assert_unchanged "$d/m.ko" "$snap" "sign by another key without --replace"
	assert_dir_contents "$d" m.ko

	step "with --replace: signed by B, exactly one signature"
	expect_exit 0 ms sign --key "$KEY_B" --cert "$CERT_B" --hash sha256 --replace "$d/m.ko"
	[ "$(count_signatures "$d/m.ko")" -eq 1 ] || fail "$d/m.ko carries $(count_signatures "$d/m.ko") signatures after --replace"
	ok "one signature"
	strip_signature_sh "$d/m.ko" "$d/body"
	assert_files_equal "$REAL_MODULE" "$d/body" "stripped body after --replace = original unsigned module"
	assert_files_equal "$SIGNED_B" "$d/m.ko" "--replace result = sign-file output with key B"
	expect_exit 0 ms verify --cert "$CERT_B" "$d/m.ko"
	expect_exit 5 ms verify --cert "$CERT_A" "$d/m.ko"
	assert_dir_contents "$d" m.ko body

	step "--replace on a module already signed by the same key: no write"
	touch -d '2001-02-03 04:05:06' "$d/m.ko"
	snap=$(snapshot "$d/m.ko")
	expect_exit 0 ms sign --key "$KEY_B" --cert "$CERT_B" --hash sha256 --replace "$d/m.ko"
	assert_unchanged "$d/m.ko" "$snap" "sign --replace by the same key"
	rm -rf "$d"
}
run_case "signed by another key: refused without --replace; --replace replaces" resign_case

same_key_case() {
	local d snap f
	d=$(newdir)
	cp "$SIGNED_A" "$d/a.ko"
	chmod u+w "$d/a.ko"
	cp "$REAL_MODULE" "$d/b.ko"
	chmod u+w "$d/b.ko"
	expect_exit 0 ms sign --key "$KEY_A" --cert "$CERT_A" --hash sha256 "$d/b.ko"
	for f in "$d/a.ko" "$d/b.ko"; do
		step "$(basename "$f"): sign again with the same key: byte-identical, not rewritten"
		touch -d '2001-02-03 04:05:06' "$f"
		snap=$(snapshot "$f")
		expect_exit 0 ms sign --key "$KEY_A" --cert "$CERT_A" --hash sha256 "$f"
		assert_unchanged "$f" "$snap" "sign by the same key"
		assert_files_equal "$SIGNED_A" "$f" "module signed by A"
	done
	step "keyid-signed module, sign again with --keyid: no write"
	"$SIGN_FILE" -k sha384 "$KEY_A" "$CERT_A" "$REAL_MODULE" "$d/k.ko"
	touch -d '2001-02-03 04:05:06' "$d/k.ko"
	snap=$(snapshot "$d/k.ko")
	expect_exit 0 ms sign --key "$KEY_A" --cert "$CERT_A" --hash sha384 --keyid "$d/k.ko"
	assert_unchanged "$d/k.ko" "$snap" "sign --keyid by the same key"
	assert_dir_contents "$d" a.ko b.ko k.ko
	rm -rf "$d"
}
run_case "already signed by the same key: left byte-identical, not rewritten" same_key_case

# CLISPEC: "A module already signed by this certificate is left byte-identical (no write)"
# -- this holds whatever --hash/--keyid are asked for now; in any case never two signatures.
same_cert_other_params_case() {
	local d snap
	d=$(newdir)
	cp "$SIGNED_A" "$d/a.ko"
	chmod u+w "$d/a.ko"
	touch -d '2001-02-03 04:05:06' "$d/a.ko"
	snap=$(snapshot "$d/a.ko")
	step "signed by A (sha256, issuer+serial); sign with A again, same hash, --keyid: no write"
	expect_exit 0 ms sign --key "$KEY_A" --cert "$CERT_A" --hash sha256 --keyid "$d/a.ko"
	assert_unchanged "$d/a.ko" "$snap" "sign by the same certificate and hash, other identifier mode"
	step "sign with A again, --hash sha512: re-signed with sha512, still one signature"
	expect_exit 0 ms sign --key "$KEY_A" --cert "$CERT_A" --hash sha512 "$d/a.ko"
	[ "$(count_signatures "$d/a.ko")" -eq 1 ] || fail "$d/a.ko now carries $(count_signatures "$d/a.ko") signatures"
	ok "one signature"
	"$MODSIGNCTL" info "$d/a.ko" | grep -q '^hash: *sha512$' || fail "$d/a.ko is not signed with sha512 after --hash sha512"
	ok "now sha512"
	expect_exit 0 ms verify --cert "$CERT_A" "$d/a.ko"
	rm -rf "$d"
}
run_case "already signed by this certificate: same hash, no write; another hash asked, re-signed" same_cert_other_params_case

strip_case() {
	local d snap want
	d=$(newdir)
	cp "$SIGNED_A" "$d/m.ko"
	chmod 0640 "$d/m.ko"
	step "strip gives back the original bytes"
	expect_exit 0 ms strip "$d/m.ko"
	assert_files_equal "$REAL_MODULE" "$d/m.ko" "strip"
	[ "$(stat -c %a "$d/m.ko")" = 640 ] || fail "strip changed the mode of $d/m.ko to $(stat -c %a "$d/m.ko") (expected 640 kept)"
	ok "mode 640 kept"
	assert_dir_contents "$d" m.ko
	step "strip of an unsigned module does not rewrite it"
	touch -d '2001-02-03 04:05:06' "$d/m.ko"
	snap=$(snapshot "$d/m.ko")
	expect_no_crash ms strip "$d/m.ko"
	[ "$LAST_RC" -eq 0 ] || [ "$LAST_RC" -eq 3 ] || fail "strip of an unsigned module exited $LAST_RC (expected 0, or 3)"
	assert_unchanged "$d/m.ko" "$snap" "strip of an unsigned module"
	step "sign keeps the mode and the owner"
	# (owner root, another group: the policy signs only root's files when root runs it)
	if [ "$(id -u)" -eq 0 ]; then
		chown 0:65534 "$d/m.ko"
	fi
	want=$(stat -c '%a %u:%g' "$d/m.ko")
	expect_exit 0 ms sign --key "$KEY_A" --cert "$CERT_A" --hash sha256 "$d/m.ko"
	[ "$(stat -c '%a %u:%g' "$d/m.ko")" = "$want" ] ||
		fail "sign changed mode/owner of $d/m.ko to $(stat -c '%a %u:%g' "$d/m.ko") (expected '$want' kept)"
	ok "mode and owner kept: $want"
	assert_files_equal "$SIGNED_A" "$d/m.ko" "sign after strip"
	rm -rf "$d"
}
run_case "strip gives back the original bytes; mode and owner kept" strip_case

# --- several modules, one bad -------------------------------------------------------------

several_case() {
	local d sum
	d=$(newdir)
	cp "$REAL_MODULE" "$d/one.ko"
	cp "$REAL_MODULE" "$d/three.ko"
	chmod u+w "$d/one.ko" "$d/three.ko"
	printf 'not a module\n' >"$d/two.ko"
	sum=$(sha256_of "$d/two.ko")
	step "one.ko two.ko(bad: text) three.ko: exit 6, the good ones signed"
	expect_exit 6 ms sign --key "$KEY_A" --cert "$CERT_A" --hash sha256 "$d/one.ko" "$d/two.ko" "$d/three.ko"
	assert_stderr_one_line_naming "$d/two.ko"
	assert_files_equal "$SIGNED_A" "$d/one.ko" "one.ko signed"
	assert_files_equal "$SIGNED_A" "$d/three.ko" "three.ko signed"
	assert_sha256 "$d/two.ko" "$sum" "bad module in a batch"
	assert_dir_contents "$d" one.ko two.ko three.ko

	step "a missing file (1) and a non-module (6) and a good one: exit 1, the good one signed"
	cp "$REAL_MODULE" "$d/four.ko"
	chmod u+w "$d/four.ko"
	expect_exit 1 ms sign --key "$KEY_A" --cert "$CERT_A" --hash sha256 "$d/two.ko" "$d/missing.ko" "$d/four.ko"
	assert_files_equal "$SIGNED_A" "$d/four.ko" "four.ko signed"
	assert_sha256 "$d/two.ko" "$sum" "bad module in a batch"
	rm -rf "$d"
}
run_case "several modules in one call, one bad: others signed, exit code of the bad one" several_case

# --- --help ---------------------------------------------------------------------------------

help_case() {
	local c
	step "top level"
	expect_exit 0 ms --help
	[ -s "$LAST_OUT" ] || fail "modsignctl --help printed nothing on stdout"
	expect_exit 0 ms --version
	[ -s "$LAST_OUT" ] || fail "modsignctl --version printed nothing on stdout"
	for c in sign verify info strip sign-file; do
		step "$c --help"
		expect_exit 0 ms "$c" --help
		[ -s "$LAST_OUT" ] || fail "modsignctl $c --help printed nothing on stdout"
		grep -q -- "$c" "$LAST_OUT" || fail "modsignctl $c --help does not mention '$c'"
	done
}
run_case "--help for the top level and every command" help_case

# --- symlinks -------------------------------------------------------------------------------

symlink_case() {
	local d snap
	d=$(newdir)
	cp "$REAL_MODULE" "$d/target.ko"
	chmod u+w "$d/target.ko"
	ln -s target.ko "$d/link.ko"
	snap=$(snapshot "$d/target.ko")
	step "sign LINK: refused (not followed), target and link untouched"
	expect_fail ms sign --key "$KEY_A" --cert "$CERT_A" --hash sha256 "$d/link.ko"
	assert_unchanged "$d/target.ko" "$snap" "sign through a symlink"
	if [ ! -L "$d/link.ko" ] || [ "$(readlink "$d/link.ko")" != target.ko ]; then
		fail "$d/link.ko is no longer a symlink to target.ko"
	fi
	ok "link.ko is still a symlink to target.ko"
	assert_dir_contents "$d" target.ko link.ko

	step "strip LINK (target signed): refused, target untouched"
	rm "$d/target.ko"
	cp "$SIGNED_A" "$d/target.ko"
	chmod u+w "$d/target.ko"
	snap=$(snapshot "$d/target.ko")
	expect_fail ms strip "$d/link.ko"
	assert_unchanged "$d/target.ko" "$snap" "strip through a symlink"
	[ -L "$d/link.ko" ] || fail "$d/link.ko is no longer a symlink"

	step "sign --replace LINK (target signed by A, key B): refused, target untouched"
	expect_fail ms sign --key "$KEY_B" --cert "$CERT_B" --hash sha256 --replace "$d/link.ko"
	assert_unchanged "$d/target.ko" "$snap" "sign --replace through a symlink"
	[ -L "$d/link.ko" ] || fail "$d/link.ko is no longer a symlink"
	assert_dir_contents "$d" target.ko link.ko
	rm -rf "$d"
}
run_case "symlink as MODULE: refused, target not modified" symlink_case

finish
