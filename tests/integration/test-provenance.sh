#!/bin/bash
# Provenance: modsignctl sign run as root writes an in-toto statement per signature into
# STATE_DIRECTORY/provenance/SHA256.json and names it in the audit record; `modsignctl
# provenance MODULE` finds it by the module's digest, and flags a module changed after signing.
# The DKMS source tree digest is checked against an independent shell implementation of the
# documented algorithm (provenance.h), for stability (same tree elsewhere, other mtimes and
# creation order) and for change (a byte, a mode, a symlink target).
# shellcheck disable=SC2317 # the case functions are called through run_case
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=tests/integration/lib.sh
. "$srcdir/tests/integration/lib.sh"

require_cmd openssl jq sha256sum find sort stat readlink
require_kernel_headers
require_sign_file
require_modsignctl
[ "$(id -u)" -eq 0 ] || skip_test "modsignctl sign writes audit records and statements only as root"
setup_workdir
build_real_module
make_key rsa2048 ours

STATE=$WORKDIR/state
SRC=$WORKDIR/usr-src
mkdir -p "$STATE" "$SRC"
chmod 0700 "$STATE"
export MODSIGND_STATE_DIRECTORY=$STATE MODSIGND_DKMS_SOURCE_ROOT=$SRC

# tree_digest DIR: the documented algorithm, from the shell.
tree_digest() {
	(
		cd "$1" || exit 1
		find . \( -type f -o -type l \) -printf '%P\0' | LC_ALL=C sort -z |
			while IFS= read -r -d '' p; do
				if [ -L "$p" ]; then
					printf 'l 0777 %s %s\0' "$(readlink -n "$p" | sha256sum | cut -c1-64)" "$p"
				else
					printf 'f %04o %s %s\0' "$((8#$(stat -c %a "$p")))" "$(sha256sum <"$p" | cut -c1-64)" "$p"
				fi
			done | sha256sum | cut -c1-64
	)
}

# A DKMS source tree: files in subdirectories, an executable, a symlink, an empty directory.
make_source() {
	local d=$1
	mkdir -p "$d/src/sub" "$d/empty"
	cp "$MODULE_SRC_DIR/hello.c" "$d/src/hello.c"
	cp "$MODULE_SRC_DIR/Kbuild" "$d/Kbuild"
	printf 'PACKAGE_NAME="hello"\nPACKAGE_VERSION="1.0"\nBUILT_MODULE_NAME[0]="hello"\n' >"$d/dkms.conf"
	printf '#!/bin/sh\necho configure\n' >"$d/configure"
	chmod 0755 "$d/configure"
	printf 'name with space\n' >"$d/src/sub/a b.txt"
	ln -s src/hello.c "$d/hello-link.c"
}
make_source "$SRC/hello-1.0"

# dkms_module VERSION: a fresh unsigned copy of the module where DKMS builds it; prints its path.
dkms_module() {
	local d=$WORKDIR/var/lib/dkms/hello/$1/$KVER/x86_64/module
	mkdir -p "$d"
	cp "$REAL_MODULE" "$d/hello.ko"
	chmod u+w "$d/hello.ko"
	printf '%s' "$d/hello.ko"
}

statement_of() { printf '%s' "$STATE/provenance/$(sha256_of "$1").json"; }

case_statement() {
	local m st fpr
	m=$(dkms_module 1.0)
	expect_exit 0 ms sign --key "$(key_of ours)" --cert "$(cert_of ours)" "$m"
	st=$(statement_of "$m")
	[ -f "$st" ] || fail "no statement $st for the signed module" "$(ls -la "$STATE" "$STATE/provenance" 2>&1)"
	ok "statement $st"
	[ "$(stat -c %a "$st")" = 644 ] || fail "statement mode $(stat -c %a "$st"), expected 644"
	[ "$(stat -c %a "$STATE/provenance")" = 755 ] || fail "provenance directory mode $(stat -c %a "$STATE/provenance")"
	ok "modes 0644 (file), 0755 (directory)"
	fpr=$(openssl x509 -in "$(cert_of ours)" -outform DER | sha256sum | cut -c1-64)
	jq -e --arg sha "$(sha256_of "$m")" --arg fpr "$fpr" --arg kver "$KVER" --arg tree "$(tree_digest "$SRC/hello-1.0")" '
		._type == "https://in-toto.io/Statement/v1" and
		.predicateType == "https://modsignd.example/provenance/v1" and
		(.subject | length) == 1 and .subject[0].name == "hello.ko" and .subject[0].digest.sha256 == $sha and
		.predicate.module.name == "hello" and .predicate.kernel == $kver and
		.predicate.dkms.package == "hello" and .predicate.dkms.version == "1.0" and
		.predicate.dkms.source.algorithm == "modsignd-tree-v1" and
		.predicate.dkms.source.digest.sha256 == $tree and
		.predicate.signer.certificate_sha256 == $fpr and
		(.predicate.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$")) and
		(.predicate.build_host | length) > 0' "$st" >/dev/null ||
		fail "the statement is not what was expected" "$(jq -c . "$st")"
	ok "subject = the module's sha256; dkms package, version, source tree digest (= the shell's), signer, time"
	# The audit record names it.
	jq -e --arg st "$st" --arg sha "$(sha256_of "$m")" 'select(.sha256_after == $sha) | .provenance == $st' \
		"$STATE/audit.jsonl" | grep -qx true || fail "the audit record does not name the statement" "$(tail -n 1 "$STATE/audit.jsonl")"
	ok "the audit record's provenance member names the statement"
	expect_exit 0 ms audit verify
	# modsignctl provenance prints it.
	expect_exit 0 ms provenance --json "$m"
	[ "$(jq -c . "$LAST_OUT")" = "$(jq -c . "$st")" ] || fail "modsignctl provenance printed another statement"
	ok "modsignctl provenance prints the statement"
	# A compressed copy of the signed module is found by its contents.
	xz --check=crc32 -c "$m" >"$WORKDIR/hello.ko.xz"
	expect_exit 0 ms provenance "$WORKDIR/hello.ko.xz"
}

case_changed() {
	local m
	m=$(dkms_module 1.0)
	expect_exit 0 ms sign --key "$(key_of ours)" --cert "$(cert_of ours)" "$m"
	flip_byte "$m" "$(text_offset "$m")"
	expect_exit 10 ms provenance "$m"
	grep -q 'changed after signing' "$LAST_ERR" || fail "no 'changed after signing' message" "$(cat "$LAST_ERR")"
	ok "$(cat "$LAST_ERR")"
	# Nothing ever signed, and a state directory without statements.
	mkdir -p "$WORKDIR/other-state"
	expect_exit 10 ms provenance --state-dir "$WORKDIR/other-state" "$REAL_MODULE"
	grep -q 'no provenance statement' "$LAST_ERR" || fail "no 'no provenance statement' message" "$(cat "$LAST_ERR")"
	ok "$(cat "$LAST_ERR")"
	# A statement file edited to name another digest is refused.
	expect_exit 0 ms strip "$m"
	expect_exit 0 ms sign --key "$(key_of ours)" --cert "$(cert_of ours)" "$m"
	# (the subject's digest, its last hex digit changed: to 1 if it is 0, else to 0)
	sed -i -e 's/"sha256":"\([0-9a-f]\{63\}\)0"/"sha256":"\11"/' -e 't' \
		-e 's/"sha256":"\([0-9a-f]\{63\}\)[1-9a-f]"/"sha256":"\10"/' "$(statement_of "$m")"
	expect_exit 10 ms provenance "$m"
	expect_exit 6 ms provenance "$WORKDIR/keys/ours.crt"
	expect_exit 2 ms provenance
}

case_tree_digest() {
	local m d1 d2 d3 d4 copy=$WORKDIR/usr-src2
	# The same tree copied elsewhere (new inodes, other times): same digest. Each module below is
	# a fresh unsigned copy: signed with the same key its bytes are the same, and its statement is
	# written again.
	mkdir -p "$copy"
	cp -r "$SRC/hello-1.0" "$copy/hello-2.0"
	touch -d '2001-01-01' "$copy/hello-2.0/src/hello.c"
	mv "$copy/hello-2.0" "$SRC/hello-2.0"
	m=$(dkms_module 2.0)
	expect_exit 0 ms sign --key "$(key_of ours)" --cert "$(cert_of ours)" "$m"
	d1=$(jq -r .predicate.dkms.source.digest.sha256 "$(statement_of "$m")")
	[ "$d1" = "$(tree_digest "$SRC/hello-1.0")" ] || fail "the copy's digest $d1 differs from the original's"
	ok "a copy made elsewhere, other mtimes: same digest $d1"
	# A changed byte.
	printf '/* changed */\n' >>"$SRC/hello-2.0/src/hello.c"
	m=$(dkms_module 2.0)
	expect_exit 0 ms sign --key "$(key_of ours)" --cert "$(cert_of ours)" "$m"
	d2=$(jq -r .predicate.dkms.source.digest.sha256 "$(statement_of "$m")")
	if [ "$d2" = "$d1" ] || [ "$d2" != "$(tree_digest "$SRC/hello-2.0")" ]; then fail "a changed source file: digest $d2 (was $d1)"; fi
	ok "a changed source file: digest $d2 (= the shell's)"
	# A changed mode, then a changed symlink target.
	chmod 0700 "$SRC/hello-2.0/configure"
	m=$(dkms_module 2.0)
	expect_exit 0 ms sign --key "$(key_of ours)" --cert "$(cert_of ours)" "$m"
	d3=$(jq -r .predicate.dkms.source.digest.sha256 "$(statement_of "$m")")
	if [ "$d3" = "$d2" ] || [ "$d3" != "$(tree_digest "$SRC/hello-2.0")" ]; then fail "a changed mode: digest $d3 (was $d2)"; fi
	ok "a changed mode: digest $d3"
	ln -sfn Kbuild "$SRC/hello-2.0/hello-link.c"
	m=$(dkms_module 2.0)
	expect_exit 0 ms sign --key "$(key_of ours)" --cert "$(cert_of ours)" "$m"
	d4=$(jq -r .predicate.dkms.source.digest.sha256 "$(statement_of "$m")")
	if [ "$d4" = "$d3" ] || [ "$d4" != "$(tree_digest "$SRC/hello-2.0")" ]; then fail "a changed symlink: digest $d4 (was $d3)"; fi
	ok "a changed symlink target: digest $d4"
	# No source tree: the statement says so.
	m=$(dkms_module 3.0)
	expect_exit 0 ms sign --key "$(key_of ours)" --cert "$(cert_of ours)" "$m"
	jq -e '.predicate.dkms.source.present == false and (.predicate.dkms.source | has("digest") | not)' \
		"$(statement_of "$m")" >/dev/null || fail "a missing source tree is not marked" "$(jq -c . "$(statement_of "$m")")"
	ok "a missing source tree: present false, no digest"
}

run_case "a statement per signature: subject, predicate, file modes, audit record, modsignctl provenance" case_statement
run_case "a module changed after signing, or never signed, is flagged (exit 10)" case_changed
run_case "the source tree digest: stable, and it changes with a byte, a mode, a symlink" case_tree_digest
finish
