#!/bin/bash
# Provenance statements written by the daemon (the hook in daemon-audit.c): a module the
# watcher signs in a tree, and a SIGN request over the socket for a module DKMS builds under
# /var/lib/dkms/NAME/VERSION/, each get STATE_DIRECTORY/provenance/SHA256.json, named by their
# audit record; the DKMS one carries the source tree's digest; `modsignctl provenance` finds
# both, and `modsignctl report` counts the watcher's signature as covered, not escaped.
# shellcheck disable=SC2317 # the case functions are called through run_case
set -eu
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=SCRIPTDIR/lib.sh
. "$srcdir/tests/daemon/lib.sh"

daemon_setup_workdir
daemon_require
require_cmd jq sha256sum
make_key_root rsa2048 a
daemon_helper sign-client
CLIENT=$HELPER

mkdir -p "$WORKDIR/src" "$WORKDIR/out" "$WORKDIR/usr-src/psmall-2.0"
make_small_module "$WORKDIR/src/wsmall.ko" wsmall
make_small_module "$WORKDIR/src/psmall.ko" psmall
printf 'PACKAGE_NAME="psmall"\nPACKAGE_VERSION="2.0"\n' >"$WORKDIR/usr-src/psmall-2.0/dkms.conf"
chmod 0644 "$WORKDIR/usr-src/psmall-2.0/dkms.conf"
export MODSIGND_DKMS_SOURCE_ROOT=$WORKDIR/usr-src

make_tree "$WORKDIR/root"
daemon_config "$WORKDIR/d" a "$TREE_ROOT"
STATE=$WORKDIR/d/state
LOG=$STATE/audit.jsonl
# direct: the daemon inherits MODSIGND_DKMS_SOURCE_ROOT.
daemon_start direct

case_watcher() {
	local sha st rec
	cp "$WORKDIR/src/wsmall.ko" "$UPD/wsmall.ko"
	wait_signed "$UPD/wsmall.ko"
	sha=$(sha256_of "$UPD/wsmall.ko")
	st=$STATE/provenance/$sha.json
	[ -f "$st" ] || fail "no statement $st" "$(ls -la "$STATE" "$STATE/provenance" 2>&1)"
	jq -e --arg sha "$sha" --arg k "$KVER" '.subject[0].name == "wsmall.ko" and .subject[0].digest.sha256 == $sha
		and .predicate.kernel == $k and .predicate.module.name == "wsmall" and (has("dkms") | not)' "$st" >/dev/null ||
		fail "unexpected statement" "$(cat "$st")"
	ok "statement $st: subject wsmall.ko, its sha256, kernel $KVER, no dkms"
	rec=$(jq -c --arg sha "$sha" 'select(.sha256_after == $sha)' "$LOG")
	[ "$(jq -r .provenance <<<"$rec")" = "$st" ] || fail "the record does not name the statement" "$rec"
	ok "the audit record names it"
	expect_exit 0 "$MODSIGNCTL" provenance --state-dir "$STATE" "$UPD/wsmall.ko"
	expect_exit 0 "$MODSIGNCTL" report --modules-dir "$TREE_ROOT" --kernel "$KVER" --cert "$(cert_of a)" \
		--key "$(key_of a)" --audit "$LOG" --json --max-debt 10
	[ "$(jq -r '.totals.covered, .escapes' "$LAST_OUT" | tr '\n' ' ')" = "1 0 " ] ||
		fail "report: expected 1 covered, 0 escapes" "$(jq -c .totals "$LAST_OUT")"
	ok "report: the watcher's signature is covered, no escape"
}

case_sign_request() {
	local name=/var/lib/dkms/psmall/2.0/build/psmall.ko sha st
	expect_exit 0 "$CLIENT" "$DAEMON_SOCKET" sign "$WORKDIR/src/psmall.ko" "$WORKDIR/out/psmall.ko" sha256 "$name" "$KVER"
	sha=$(sha256_of "$WORKDIR/out/psmall.ko")
	st=$STATE/provenance/$sha.json
	[ -f "$st" ] || fail "no statement $st for the SIGN request" "$(ls -la "$STATE/provenance" 2>&1)"
	jq -e --arg tree "$(cd "$WORKDIR/usr-src/psmall-2.0" && printf 'f 0644 %s dkms.conf\0' "$(sha256sum <dkms.conf | cut -c1-64)" | sha256sum | cut -c1-64)" \
		'.subject[0].name == "psmall.ko" and .predicate.dkms.package == "psmall" and .predicate.dkms.version == "2.0"
		and .predicate.dkms.source.digest.sha256 == $tree and .predicate.signature_hash == "sha256"' "$st" >/dev/null ||
		fail "unexpected statement" "$(cat "$st")"
	ok "statement for the SIGN request: dkms psmall 2.0, the source tree's digest"
	expect_exit 0 "$MODSIGNCTL" provenance --state-dir "$STATE" "$WORKDIR/out/psmall.ko"
	expect_exit 0 "$MODSIGNCTL" audit verify --file "$LOG"
}

run_case "the watcher's signature has a statement, named by its record" case_watcher
run_case "a SIGN request for a DKMS build has a statement with the source digest" case_sign_request
daemon_stop 20
finish
