#!/bin/bash
# `modsignctl info --json` (and `modsignctl --json info`): one JSON document (checked with
# `python3 -m json.tool`) whose name, vermagic, signer, serial / key id and hash agree with
# modinfo, openssl and the extracted signature, for unsigned, RSA, ECDSA, key-id and .ko.xz
# modules, and for several modules in one call. Field names as CLISPEC lists them: name,
# vermagic, compression, signed, signer, serial, key_id, hash, key_algorithm,
# signature_length.
# shellcheck disable=SC2317 # the case functions are called through run_case
set -eu
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=SCRIPTDIR/lib.sh
. "$srcdir/tests/integration/lib.sh"

setup_workdir
require_common
require_cmd python3 xz
require_modsignctl

make_key rsa2048 rsa2048
make_key ec-p384 ec-p384
build_real_module

# load_json FILE: read the document once (python3 starts slowly under pyenv) into
# JSON["INDEX.FIELD"] (strings raw, null/true/false as such, numbers as digits) and
# JSON[count]. The document is a list of objects, or one object.
declare -A JSON
load_json() {
	local k v
	JSON=()
	while IFS=$'\t' read -r k v; do
		JSON[$k]=$v
	done < <(python3 - "$1" <<'EOF'
import json, sys
with open(sys.argv[1]) as f:
    doc = json.load(f)
if isinstance(doc, dict):
    doc = doc.get("modules", [doc])
print("count\t%d" % len(doc))
for i, obj in enumerate(doc):
    for k, v in obj.items():
        if v is None:
            v = "null"
        elif isinstance(v, bool):
            v = "true" if v else "false"
        elif not isinstance(v, str):
            v = json.dumps(v)
        print("%d.%s\t%s" % (i, k, v.replace("\t", " ").replace("\n", " ")))
EOF
	)
	[ -n "${JSON[count]:-}" ] || fail "could not read the JSON document $1"
}

# json_field INDEX FIELD: a value loaded by load_json ("<missing>" if absent).
json_field() {
	printf '%s' "${JSON[$1.$2]-<missing>}"
}

# hexnorm STRING: lowercase hex digits only, leading zeros dropped.
hexnorm() {
	local h
	h=$(printf '%s' "$1" | tr -cd '0-9a-fA-F' | tr 'A-F' 'a-f' | sed 's/^0*//')
	printf '%s' "${h:-0}"
}

# info_json OUT ARGS...: run `modsignctl info --json ARGS` (exit 0), check the document
# with json.tool, and check that `modsignctl --json info ARGS` prints the same.
info_json() {
	local out=$1
	shift
	expect_exit 0 ms info --json "$@"
	cp "$LAST_OUT" "$out"
	if ! python3 -m json.tool "$out" >"$out.pretty" 2>"$out.err"; then
		say "    FAIL: modsignctl info --json output is not valid JSON (python3 -m json.tool)"
		show_file "$out.err"
		show_file "$out" 40
		exit 1
	fi
	ok "python3 -m json.tool parses it"
	expect_exit 0 ms --json info "$@"
	cmp -s "$LAST_OUT" "$out" || fail "'modsignctl --json info' and 'modsignctl info --json' print different documents"
	ok "modsignctl --json info prints the same document"
	load_json "$out"
}

# expect_field FILE INDEX FIELD VALUE (FILE: the document loaded by info_json)
expect_field() {
	local v
	v=$(json_field "$2" "$3")
	[ "$v" = "$4" ] || fail "info --json: module $2 field '$3' is '$v', expected '$4'" "document: $(tr -d '\n' <"$1" | head -c 1500)"
	ok "$3 = '$v'"
}

# check_common FILE INDEX MODULE: name and vermagic as modinfo shows them.
check_common() {
	expect_field "$1" "$2" name "$(modinfo -F name "$3")"
	expect_field "$1" "$2" vermagic "$(modinfo -F vermagic "$3")"
}

# check_signed FILE INDEX MODULE CERT HASH KEYALG
check_signed() {
	local j=$1 i=$2 m=$3 hash=$5 alg=$6 d v
	d=$(mktemp -d "$WORKDIR/sig.XXXXXX")
	extract_signature "$m" "$d/sig"
	expect_field "$j" "$i" signed true
	expect_field "$j" "$i" hash "$hash"
	expect_field "$j" "$i" signature_length "$SIG_LEN"
	v=$(json_field "$i" key_algorithm)
	case $alg:$v in
	rsa:rsa* | rsa:RSA* | ec:ec* | ec:EC*) ok "key_algorithm = '$v'" ;;
	*) fail "info --json: key_algorithm is '$v', expected $alg" ;;
	esac
	rm -rf "$d"
}

unsigned_case() {
	local d
	d=$(mktemp -d "$WORKDIR/unsigned.XXXXXX")
	info_json "$d/info.json" "$REAL_MODULE"
	[ "${JSON[count]}" = 1 ] || fail "info --json of one module describes ${JSON[count]} modules"
	check_common "$d/info.json" 0 "$REAL_MODULE"
	expect_field "$d/info.json" 0 signed false
	expect_field "$d/info.json" 0 signer null
	expect_field "$d/info.json" 0 hash null
	expect_field "$d/info.json" 0 compression none
	step "text output"
	expect_exit 0 ms info "$REAL_MODULE"
	grep -q hello "$LAST_OUT" || fail "modsignctl info does not show the module name" "$(cat "$LAST_OUT")"
	rm -rf "$d"
}
run_case "unsigned module" unsigned_case

rsa_serial_case() {
	local d m v
	d=$(mktemp -d "$WORKDIR/rsa.XXXXXX")
	m=$d/m.ko
	"$SIGN_FILE" sha256 "$(key_of rsa2048)" "$(cert_of rsa2048)" "$REAL_MODULE" "$m"
	info_json "$d/info.json" "$m"
	check_common "$d/info.json" 0 "$m"
	step "signer and hash as modinfo shows them"
	expect_field "$d/info.json" 0 signer "$(modinfo -F signer "$m")"
	expect_field "$d/info.json" 0 signer "$(cn_of rsa2048)"
	expect_field "$d/info.json" 0 hash "$(modinfo -F sig_hashalgo "$m")"
	check_signed "$d/info.json" 0 "$m" "$(cert_of rsa2048)" sha256 rsa
	step "serial = modinfo sig_key = the certificate's serial"
	v=$(json_field 0 serial)
	[ "$(hexnorm "$v")" = "$(hexnorm "$(modinfo -F sig_key "$m")")" ] ||
		fail "info --json serial '$v' differs from modinfo sig_key '$(modinfo -F sig_key "$m")'"
	[ "$(hexnorm "$v")" = "$(hexnorm "$(openssl x509 -in "$(cert_of rsa2048)" -noout -serial | cut -d= -f2)")" ] ||
		fail "info --json serial '$v' differs from the certificate's serial"
	ok "serial = $v"
	rm -rf "$d"
}
run_case "RSA-2048 sha256 signed by sign-file (issuer and serial)" rsa_serial_case

ec_case() {
	local d m
	d=$(mktemp -d "$WORKDIR/ec.XXXXXX")
	m=$d/m.ko
	cp "$REAL_MODULE" "$m"
	chmod u+w "$m"
	expect_exit 0 ms sign --key "$(key_of ec-p384)" --cert "$(cert_of ec-p384)" --hash sha384 "$m"
	info_json "$d/info.json" "$m"
	check_common "$d/info.json" 0 "$m"
	expect_field "$d/info.json" 0 signer "$(modinfo -F signer "$m")"
	expect_field "$d/info.json" 0 signer "$(cn_of ec-p384)"
	expect_field "$d/info.json" 0 hash "$(modinfo -F sig_hashalgo "$m")"
	check_signed "$d/info.json" 0 "$m" "$(cert_of ec-p384)" sha384 ec
	rm -rf "$d"
}
run_case "EC P-384 sha384 signed by modsignctl" ec_case

keyid_case() {
	local d m v ski
	d=$(mktemp -d "$WORKDIR/keyid.XXXXXX")
	m=$d/m.ko
	"$SIGN_FILE" -k sha512 "$(key_of rsa2048)" "$(cert_of rsa2048)" "$REAL_MODULE" "$m"
	info_json "$d/info.json" "$m"
	check_common "$d/info.json" 0 "$m"
	check_signed "$d/info.json" 0 "$m" "$(cert_of rsa2048)" sha512 rsa
	step "key_id = the certificate's subjectKeyIdentifier"
	ski=$(openssl x509 -in "$(cert_of rsa2048)" -noout -ext subjectKeyIdentifier | tail -n 1)
	v=$(json_field 0 key_id)
	[ "$(hexnorm "$v")" = "$(hexnorm "$ski")" ] || fail "info --json key_id '$v' differs from the subjectKeyIdentifier '$ski'"
	ok "key_id = $v"
	rm -rf "$d"
}
run_case "RSA-2048 sha512 signed by sign-file -k (key identifier)" keyid_case

xz_case() {
	local d m
	d=$(mktemp -d "$WORKDIR/xz.XXXXXX")
	"$SIGN_FILE" sha256 "$(key_of rsa2048)" "$(cert_of rsa2048)" "$REAL_MODULE" "$d/signed.ko"
	m=$d/m.ko.xz
	compress_module xz-crc32 "$d/signed.ko" "$m"
	info_json "$d/info.json" "$m"
	expect_field "$d/info.json" 0 compression xz
	check_common "$d/info.json" 0 "$m"
	expect_field "$d/info.json" 0 signer "$(modinfo -F signer "$m")"
	expect_field "$d/info.json" 0 hash "$(modinfo -F sig_hashalgo "$m")"
	check_signed "$d/info.json" 0 "$d/signed.ko" "$(cert_of rsa2048)" sha256 rsa
	rm -rf "$d"
}
run_case "signed .ko.xz" xz_case

several_case() {
	local d
	d=$(mktemp -d "$WORKDIR/several.XXXXXX")
	"$SIGN_FILE" sha384 "$(key_of rsa2048)" "$(cert_of rsa2048)" "$REAL_MODULE" "$d/a.ko"
	cp "$REAL_MODULE" "$d/b.ko"
	compress_module zstd "$d/a.ko" "$d/c.ko.zst"
	info_json "$d/info.json" "$d/a.ko" "$d/b.ko" "$d/c.ko.zst"
	[ "${JSON[count]}" = 3 ] || fail "info --json of three modules describes ${JSON[count]}"
	ok "three modules, one document"
	expect_field "$d/info.json" 0 signed true
	expect_field "$d/info.json" 0 hash sha384
	expect_field "$d/info.json" 1 signed false
	expect_field "$d/info.json" 2 compression zstd
	expect_field "$d/info.json" 2 signed true
	expect_field "$d/info.json" 2 signer "$(cn_of rsa2048)"
	rm -rf "$d"
}
run_case "several modules in one call: one JSON document, in order" several_case

finish
