#!/bin/bash
# The audit log (src/lib/audit.h) as the daemon keeps it, in StateDirectory=DIR/state:
#  - the daemon's start is recorded (key-loaded, with the certificate's fingerprint);
#  - a module dropped into a watched tree is signed and recorded (signed, requester
#    "watcher", the module's name, kernel, the SHA-256 of the file before and after);
#  - a SIGN request over the socket is recorded with the client's pid, uid and comm, and the
#    SHA-256 of what the client wrote; a refused SIGN (kernel not installed) and a module
#    signed by another key in the tree are recorded as refused, with their rules;
#  - `modsignctl audit verify` passes, `audit show` filters; the head the daemon logs at stop
#    matches the file, and `audit verify --head` accepts it;
#  - a restarted daemon continues the chain;
#  - tampering (an edited field, a deleted record, records cut off the end) makes
#    `audit verify` exit 8 and name the record;
#  - fail closed: with the log's tail damaged under it, the daemon hands out no signature and
#    puts none in place, and a new daemon refuses to start.
# shellcheck disable=SC2317 # the case functions are called through run_case
set -eu
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=SCRIPTDIR/lib.sh
. "$srcdir/tests/daemon/lib.sh"

daemon_setup_workdir
daemon_require
require_cmd jq sha256sum
make_key_root rsa2048 a
make_key_root rsa2048 b
CERT=$(cert_of a)
FPR=$(openssl x509 -in "$CERT" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')
daemon_helper sign-client
CLIENT=$HELPER

mkdir -p "$WORKDIR/src" "$WORKDIR/out"
make_small_module "$WORKDIR/src/wsmall.ko" wsmall
make_small_module "$WORKDIR/src/ssmall.ko" ssmall
make_small_module "$WORKDIR/src/foreign.ko" foreign
expect_exit 0 "$MODSIGNCTL" sign --key "$(key_of b)" --cert "$(cert_of b)" --hash sha256 "$WORKDIR/src/foreign.ko"

make_tree "$WORKDIR/root"
daemon_config "$WORKDIR/d" a "$TREE_ROOT"
LOG=$WORKDIR/d/state/audit.jsonl
daemon_start activate

sha() { sha256sum "$1" | cut -d' ' -f1; }

# record SEQ: the record with that seq (one line of JSON) on stdout.
record() {
	jq -c "select(.seq == $1)" "$LOG"
}

# expect_field JSON FILTER VALUE
expect_field() {
	local got
	got=$(jq -r "$2" <<<"$1")
	[ "$got" = "$3" ] || fail "record field $2 is '$got', expected '$3'" "record: $1"
}

# last_record_where FILTER: the last record for which the jq FILTER holds.
last_record_where() {
	jq -c "select($1)" "$LOG" | tail -n 1
}

case_records() {
	local rec before pid
	step "the start is recorded first: key-loaded, the certificate's SHA-256 fingerprint, prev = 64 zeros"
	rec=$(record 1)
	expect_field "$rec" .event key-loaded
	expect_field "$rec" .key "$FPR"
	expect_field "$rec" .requester daemon
	expect_field "$rec" .prev "$(printf '0%.0s' $(seq 64))"
	ok "$rec"
	[ "$(stat -c %a "$WORKDIR/d/state")" = 700 ] || fail "state directory mode $(stat -c %a "$WORKDIR/d/state"), expected 700"
	[ "$(stat -c %a "$LOG")" = 600 ] || fail "audit log mode $(stat -c %a "$LOG"), expected 600"
	ok "state directory 0700, audit.jsonl 0600"

	step "a module dropped into the watched tree: signed by the watcher, recorded with both digests"
	before=$(sha "$WORKDIR/src/wsmall.ko")
	cp "$WORKDIR/src/wsmall.ko" "$UPD/wsmall.ko"
	wait_signed "$UPD/wsmall.ko"
	rec=$(last_record_where ".path == \"$UPD/wsmall.ko\"")
	[ -n "$rec" ] || fail "no record for $UPD/wsmall.ko" "$(cat "$LOG")"
	expect_field "$rec" .event signed
	expect_field "$rec" .requester watcher
	expect_field "$rec" .module wsmall
	expect_field "$rec" .kernel "$KVER"
	expect_field "$rec" .key "$FPR"
	expect_field "$rec" .rule watched-tree
	expect_field "$rec" .sha256_before "$before"
	expect_field "$rec" .sha256_after "$(sha "$UPD/wsmall.ko")"
	assert_verifies "$CERT" "$UPD/wsmall.ko"
	ok "$rec"

	step "a SIGN request: recorded with the client's pid, uid and comm, and the digest of what it wrote"
	expect_exit 0 "$CLIENT" "$DAEMON_SOCKET" sign "$WORKDIR/src/ssmall.ko" "$WORKDIR/out/ssmall.ko" sha256 ssmall.ko "$KVER"
	rec=$(last_record_where '.path == "ssmall.ko"')
	[ -n "$rec" ] || fail "no record for the SIGN of ssmall.ko" "$(cat "$LOG")"
	expect_field "$rec" .event signed
	expect_field "$rec" .requester.uid 0
	expect_field "$rec" .requester.comm sign-client
	pid=$(jq -r .requester.pid <<<"$rec")
	[ "$pid" -gt 1 ] || fail "requester pid '$pid'"
	expect_field "$rec" .rule sign-request
	expect_field "$rec" .sha256_before "$(sha "$WORKDIR/src/ssmall.ko")"
	expect_field "$rec" .sha256_after "$(sha "$WORKDIR/out/ssmall.ko")"
	ok "$rec"

	step "a refused SIGN (kernel not installed): recorded as refused with its rule"
	run_cmd "$CLIENT" "$DAEMON_SOCKET" sign "$WORKDIR/src/ssmall.ko" "$WORKDIR/out/nope.ko" sha256 nope.ko 9.99.0-nope
	[ "$LAST_RC" -eq 1 ] || fail "the SIGN for kernel 9.99.0-nope was not refused (exit $LAST_RC)"
	rec=$(last_record_where '.path == "nope.ko"')
	expect_field "$rec" .event refused
	expect_field "$rec" .rule kernel-not-installed
	expect_field "$rec" .kernel 9.99.0-nope
	expect_field "$rec" .requester.comm sign-client
	ok "$rec"

	step "a module signed by another key in the tree: left alone, recorded as refused"
	cp "$WORKDIR/src/foreign.ko" "$UPD/foreign.ko"
	wait_until "$DAEMON_TIMEOUT" "a record for foreign.ko" test -n "$(last_record_where ".path == \"$UPD/foreign.ko\"")"
	rec=$(last_record_where ".path == \"$UPD/foreign.ko\"")
	expect_field "$rec" .event refused
	expect_field "$rec" .rule signed-by-another-key
	expect_field "$rec" .requester watcher
	ok "$rec"

	step "modsignctl audit verify: intact"
	expect_exit 0 "$MODSIGNCTL" audit verify --file "$LOG"
	ok "$(cat "$LAST_OUT")"
	step "modsignctl audit show filters by event and module"
	expect_exit 0 "$MODSIGNCTL" audit show --file "$LOG" --event refused --json
	[ "$(wc -l <"$LAST_OUT")" -eq 2 ] || fail "audit show --event refused gave $(wc -l <"$LAST_OUT") records, expected 2"
	expect_exit 0 "$MODSIGNCTL" audit show --file "$LOG" --module 'wsm*'
	grep -q "signed *wsmall" "$LAST_OUT" || fail "audit show --module 'wsm*' does not list wsmall" "$(cat "$LAST_OUT")"
	ok "$(head -n 1 "$LAST_OUT")"
	expect_exit 0 "$MODSIGNCTL" audit show --file "$LOG" --since 2000-01-01 --until @1 --json
	[ ! -s "$LAST_OUT" ] || fail "audit show --until @1 listed records"
	ok "--since/--until select by time"
}
run_case "every decision is recorded, and the chain is intact" case_records

HEAD=
case_head_at_stop() {
	local n last
	daemon_stop 20
	n=$(wc -l <"$LOG")
	last=$(tail -n 1 "$LOG" | tr -d '\n' | sha256sum | cut -d' ' -f1)
	step "the head the daemon logged at stop is the log's: $n:$last"
	grep -q "audit log head $n:$last (.*stop)" "$DAEMON_LOG" ||
		fail "the daemon did not log 'audit log head $n:$last ... stop'" "$(grep 'audit log head' "$DAEMON_LOG")"
	ok "$(grep 'audit log head' "$DAEMON_LOG" | tail -n 1)"
	expect_exit 0 "$MODSIGNCTL" audit verify --file "$LOG" --head "$n:$last"
	ok "$(cat "$LAST_OUT")"
	printf '%s:%s\n' "$n" "$last" >"$WORKDIR/head"
}
run_case "the chain head goes to the log at stop and checks out" case_head_at_stop
HEAD=$(cat "$WORKDIR/head" 2>/dev/null || true)

case_restart_continues() {
	local n=$1
	wait_until 10 "the key-loaded record of the restart" test "$(wc -l <"$LOG")" -gt "$n"
	expect_field "$(record $((n + 1)))" .event key-loaded
	expect_field "$(record $((n + 1)))" .prev "$(sed -n "${n}p" "$LOG" | tr -d '\n' | sha256sum | cut -d' ' -f1)"
	expect_exit 0 "$MODSIGNCTL" audit verify --file "$LOG" --head "$HEAD"
	ok "seq $((n + 1)) continues the chain; the earlier head still checks out"
}
N_BEFORE=$(wc -l <"$LOG")
daemon_start activate
run_case "a restarted daemon continues the chain" case_restart_continues "$N_BEFORE"

case_cli_and_daemon() {
	local rec n
	step "modsignctl sign as root appends to the daemon's log (requester cli) while the daemon runs"
	cp "$WORKDIR/src/ssmall.ko" "$WORKDIR/out/cli.ko"
	expect_exit 0 env "MODSIGND_STATE_DIRECTORY=$WORKDIR/d/state" "$MODSIGNCTL" sign --key "$(key_of a)" --cert "$CERT" \
		--hash sha256 "$WORKDIR/out/cli.ko"
	rec=$(last_record_where ".path == \"$WORKDIR/out/cli.ko\"")
	expect_field "$rec" .event signed
	expect_field "$rec" .requester cli
	expect_field "$rec" .rule cli
	expect_field "$rec" .key "$FPR"
	expect_field "$rec" .sha256_before "$(sha "$WORKDIR/src/ssmall.ko")"
	expect_field "$rec" .sha256_after "$(sha "$WORKDIR/out/cli.ko")"
	ok "$rec"
	step "the daemon's next record follows the CLI's"
	n=$(jq -r .seq <<<"$rec")
	cp "$WORKDIR/src/wsmall.ko" "$UPD/after-cli.ko"
	wait_signed "$UPD/after-cli.ko"
	rec=$(last_record_where ".path == \"$UPD/after-cli.ko\"")
	expect_field "$rec" .seq $((n + 1))
	expect_exit 0 "$MODSIGNCTL" audit verify --file "$LOG"
	ok "$(cat "$LAST_OUT")"
}
run_case "modsignctl sign and the daemon share one chain" case_cli_and_daemon

case_reload_rotate() {
	local rec fpr_b n
	# (a reload also looks at the watched trees again: foreign.ko is refused again after it)
	step "a reload with the same key: reloaded"
	wait_idle
	n=$(wc -l <"$LOG")
	ctl reload
	[ "$LAST_RC" -eq 0 ] || fail "modsignctl reload failed (exit $LAST_RC)"
	rec=$(record $((n + 1)))
	expect_field "$rec" .event reloaded
	expect_field "$rec" .key "$FPR"
	ok "$rec"
	step "a reload that brings key b: reloaded, then key-rotated naming the previous key"
	fpr_b=$(openssl x509 -in "$(cert_of b)" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')
	sed -i "s|^PrivateKey=.*|PrivateKey=$(key_of b)|; s|^Certificate=.*|Certificate=$(cert_of b)|" "$DAEMON_CONF"
	wait_idle
	n=$(wc -l <"$LOG")
	ctl reload
	[ "$LAST_RC" -eq 0 ] || fail "modsignctl reload with key b failed (exit $LAST_RC)"
	expect_field "$(record $((n + 1)))" .event reloaded
	rec=$(record $((n + 2)))
	expect_field "$rec" .event key-rotated
	expect_field "$rec" .key "$fpr_b"
	expect_field "$rec" .reason "the previous key was $FPR"
	ok "$rec"
	wait_idle
	expect_exit 0 "$MODSIGNCTL" audit verify --file "$LOG"
}
run_case "reloads and key rotation are recorded" case_reload_rotate

# tampered COPY-NAME: a copy of the log to tamper with.
tampered() {
	cp "$LOG" "$WORKDIR/$1"
	printf '%s' "$WORKDIR/$1"
}

case_tamper() {
	local f n
	[ -n "$HEAD" ] || skip_case "no head from the stop case"
	step "an edited field (record 2's requester): exit 8, line 2 named"
	f=$(tampered edited.jsonl)
	sed -i '2s/"requester":"watcher"/"requester":"cli"/' "$f"
	cmp -s "$f" "$LOG" && fail "the edit did not change the copy"
	expect_exit 8 "$MODSIGNCTL" audit verify --file "$f"
	grep -q "line 2 (seq 2)" "$LAST_OUT" || fail "the broken record is not named" "$(cat "$LAST_OUT")"
	ok "$(cat "$LAST_OUT")"

	step "a deleted record (3): exit 8, line 3 carries seq 4"
	f=$(tampered deleted.jsonl)
	sed -i '3d' "$f"
	expect_exit 8 "$MODSIGNCTL" audit verify --file "$f"
	grep -q "line 3 (seq 4)" "$LAST_OUT" || fail "the gap is not named" "$(cat "$LAST_OUT")"
	ok "$(cat "$LAST_OUT")"

	step "the last two records cut off: intact in itself, broken against the head from the stop"
	f=$(tampered cut.jsonl)
	n=${HEAD%%:*}
	head -n $((n - 2)) "$LOG" >"$f"
	expect_exit 0 "$MODSIGNCTL" audit verify --file "$f"
	expect_exit 8 "$MODSIGNCTL" audit verify --file "$f" --head "$HEAD"
	grep -q "seq $((n - 1)).*cut off the end" "$LAST_OUT" || fail "the cut is not named" "$(cat "$LAST_OUT")"
	ok "$(cat "$LAST_OUT")"

	step "cut in the middle of the last line: exit 8"
	f=$(tampered midline.jsonl)
	truncate -s -7 "$f"
	expect_exit 8 "$MODSIGNCTL" audit verify --file "$f" --json
	[ "$(jq -r .intact "$LAST_OUT")" = false ] || fail "--json does not say intact: false"
	ok "$(jq -c . "$LAST_OUT")"
}
run_case "tampering is found and the record named" case_tamper

case_fail_closed() {
	local snap
	step "the log's tail damaged behind the daemon's back (a line without its newline)"
	printf '{"seq":999' >>"$LOG"
	step "a SIGN request gets no signature"
	run_cmd "$CLIENT" "$DAEMON_SOCKET" sign "$WORKDIR/src/ssmall.ko" "$WORKDIR/out/closed.ko" sha256 closed.ko "$KVER"
	if [ "$LAST_RC" -ne 1 ] || [ -e "$WORKDIR/out/closed.ko" ] || ! grep -q "audit log" "$LAST_OUT"; then
		_report_last
		fail "a signature was handed out, or the refusal does not name the audit log"
	fi
	ok "$(cat "$LAST_OUT")"
	step "a module dropped into the tree is not signed in place"
	cp "$WORKDIR/src/wsmall.ko" "$UPD/closed.ko"
	snap=$(sha "$UPD/closed.ko")
	wait_until "$DAEMON_TIMEOUT" "the failure to be logged" log_has "failed to sign $UPD/closed.ko"
	[ "$(sha "$UPD/closed.ko")" = "$snap" ] || fail "$UPD/closed.ko was changed although its record could not be written"
	ok "$(grep -F "failed to sign $UPD/closed.ko" "$DAEMON_LOG" | tail -n 1)"
	log_has "cannot append to the audit log" || fail "the audit failure was not logged"
	daemon_stop 20
	step "a new daemon refuses to start on a log whose tail is not a record"
	run_cmd timeout 20 "$MODSIGND" --config "$DAEMON_CONF"
	if [ "$LAST_RC" -eq 0 ] || ! grep -q "cannot open the audit log" "$LAST_ERR"; then
		_report_last
		fail "the daemon started (or did not say why not)"
	fi
	ok "exit $LAST_RC: $(grep -m1 'cannot open the audit log' "$LAST_ERR")"
}
run_case "fail closed: no record, no signature" case_fail_closed

finish
