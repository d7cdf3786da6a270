#!/bin/bash
# modsignd's socket (src/lib/proto.h), with the daemon under systemd-socket-activate:
#  - a client that is not root (setpriv to nobody, the socket opened up to it for the test so
#    that the daemon's SO_PEERCRED check is what stops it) is refused, with a message that
#    says root, and nothing is signed for it;
#  - SIGN (module fd over SCM_RIGHTS, HASH, NAME) answers with a trailer: MODULE[0:BODY_LEN]
#    + TRAILER equals Debian's sign-file output byte for byte (RSA, sha256 and sha512; also
#    for a module already signed by another key), and the client's file is not touched;
#  - a compressed module, a bad hash, a kernel that is not installed, a non-module are
#    refused with a message and a rule;
#  - the fuzz corpus (tests/fuzz/corpus/proto) and hand-made malformed, truncated, oversized
#    packets and odd descriptors each get an error reply or a closed connection; afterwards
#    the same daemon (pid) answers STATUS and holds no descriptor more than before;
#  - several clients at once: STATUS answers promptly while a SCAN of a tree with a 100 MB
#    module is in progress, and a SIGN is served meanwhile.
# shellcheck disable=SC2317 # the case functions are called through run_case
set -eu
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=SCRIPTDIR/lib.sh
. "$srcdir/tests/daemon/lib.sh"

daemon_setup_workdir
daemon_require
require_cmd setpriv cmp xz
make_key_root rsa2048 a
make_key_root rsa2048 b
CERT=$(cert_of a)
build_real_module
daemon_helper sign-client
CLIENT=$HELPER

MOD=$WORKDIR/src/hello.ko
mkdir -p "$WORKDIR/src" "$WORKDIR/out" "$WORKDIR/pkt"
cp "$REAL_MODULE" "$MOD"
chmod 0644 "$MOD"

make_tree "$WORKDIR/root"
daemon_config "$WORKDIR/d" a "$TREE_ROOT"
daemon_start activate

# stat_signed: the daemon's "signed" counter.
stat_signed() {
	daemon_status_json
	json_int "$WORKDIR/status.json" signed
}

# nobody CMD...: run CMD as uid/gid 65534 without supplementary groups (run_cmd semantics).
nobody() {
	run_cmd setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
}

# open_socket_to_nobody: the socket file (and the directories to it) reachable for nobody, so
# that only the daemon's own check stands between a non-root client and a signature.
open_socket_to_nobody() {
	chmod 0711 "$WORKDIR" "$DAEMON_DIR"
	chmod 0666 "$DAEMON_SOCKET"
	mkdir -p "$WORKDIR/pub/out"
	chmod 0755 "$WORKDIR/pub"
	chmod 0777 "$WORKDIR/pub/out"
	cp "$MOD" "$WORKDIR/pub/hello.ko"
	chmod 0644 "$WORKDIR/pub/hello.ko"
	cp "$CLIENT" "$WORKDIR/pub/sign-client"
	cp "$MODSIGNCTL" "$WORKDIR/pub/modsignctl"
	chmod 0755 "$WORKDIR/pub/sign-client" "$WORKDIR/pub/modsignctl"
	NOBODY_CTL=$WORKDIR/pub/modsignctl
	nobody test -x "$NOBODY_CTL" -a -r "$WORKDIR/pub/hello.ko" -a -w "$DAEMON_SOCKET"
	[ "$LAST_RC" -eq 0 ] ||
		skip_case "uid 65534 cannot reach $WORKDIR (a parent directory of TMPDIR is closed to others)"
}

case_nonroot_refused() {
	local before i
	open_socket_to_nobody
	before=$(stat_signed)
	step "nobody runs modsignctl status: refused by the daemon (the socket itself is open to it)"
	nobody "$NOBODY_CTL" --socket "$DAEMON_SOCKET" status
	if [ "$LAST_RC" -eq 0 ] || [ "$LAST_RC" -ge 124 ]; then
		_report_last
		fail "a non-root client got an answer (exit $LAST_RC)"
	fi
	ok "exit $LAST_RC: $(cat "$LAST_ERR")"
	step "nobody sends SIGN with a module it may read: refused, no signature, nothing written"
	for i in 1 2 3 4 5; do
		nobody "$WORKDIR/pub/sign-client" "$DAEMON_SOCKET" sign "$WORKDIR/pub/hello.ko" "$WORKDIR/pub/out/nobody-$i.ko" sha256
		if [ "$LAST_RC" -eq 0 ] || [ -e "$WORKDIR/pub/out/nobody-$i.ko" ]; then
			_report_last
			fail "a non-root SIGN got a signature"
		fi
	done
	ok "5 attempts: exit $LAST_RC, '$(cat "$LAST_OUT")'; no output file"
	cmp -s "$MOD" "$WORKDIR/pub/hello.ko" || fail "the non-root client's module was modified"
	[ "$(stat_signed)" -eq "$before" ] || fail "the daemon's signed counter moved: $before -> $(stat_signed)"
	ok "the daemon signed nothing (counter $before)"
	wait_until 5 "the refusal to be logged" log_has "refused a client that is not root (pid="
	ok "logged: $(grep -m1 -F 'refused a client that is not root' "$DAEMON_LOG")"
}
run_case "a non-root client is refused and gets no signature" case_nonroot_refused

case_nonroot_message() {
	local i bad=0
	open_socket_to_nobody
	step "the refusal reaches the client as a message naming root, every time (10 tries each)"
	for i in $(seq 10); do
		nobody "$NOBODY_CTL" --socket "$DAEMON_SOCKET" status
		if ! grep -q 'root' "$LAST_ERR"; then
			say "    try $i: modsignctl status as nobody said: $(cat "$LAST_ERR")"
			bad=$((bad + 1))
		fi
		nobody "$WORKDIR/pub/sign-client" "$DAEMON_SOCKET" sign "$WORKDIR/pub/hello.ko" "$WORKDIR/pub/out/m.ko" sha256
		if ! grep -q 'root' "$LAST_OUT"; then
			say "    try $i: sign-client as nobody got: $(cat "$LAST_OUT" "$LAST_ERR")"
			bad=$((bad + 1))
		fi
	done
	# Regression test, the bug is fixed: the daemon sends its "only root may use modsignd" reply and closes the connection
	# right in on_accept(), before the client's request has arrived or been read. Closing a
	# unix socket with unread data makes the peer's recv() fail with ECONNRESET (or its send()
	# with EPIPE) ahead of the queued reply, so modsignctl mostly prints "no valid answer from
	# modsignd: Connection reset by peer" / "Broken pipe" instead of the reason.
	[ "$bad" -eq 0 ] || fail "$bad of 20 refused non-root requests did not get the message (it should say root)"
	ok "20 of 20 refusals said root"
}
run_case "the refusal message reaches a non-root client" case_nonroot_message

# expect_refused WHAT RULE TEXT CLIENT-ARGS...: a SIGN that must get an error reply with RULE
# and a message containing TEXT, and no output file.
expect_refused() {
	local what=$1 rule=$2 text=$3 out
	shift 3
	out=$WORKDIR/out/refused-$RANDOM.ko
	run_cmd "$CLIENT" "$DAEMON_SOCKET" sign "$1" "$out" "${@:2}"
	if [ "$LAST_RC" -ne 1 ] || ! grep -q "^error errno=[0-9]* rule=$rule message=.*$text" "$LAST_OUT" || [ -e "$out" ]; then
		say "    FAIL: $what: expected an error reply with rule $rule mentioning '$text', and no output"
		_report_last
		exit 1
	fi
	ok "$what: $(cat "$LAST_OUT")"
}

case_sign_oracle() {
	local h
	require_sign_file
	for h in sha256 sha512; do
		step "SIGN $h over the socket: MODULE[0:BODY_LEN] + TRAILER = sign-file $h"
		cp "$MOD" "$WORKDIR/out/in-$h.ko"
		local snap
		snap=$(snapshot "$WORKDIR/out/in-$h.ko")
		expect_exit 0 "$CLIENT" "$DAEMON_SOCKET" sign "$WORKDIR/out/in-$h.ko" "$WORKDIR/out/daemon-$h.ko" "$h"
		grep -q "^ok body_len=$(file_size "$MOD") .*hash=$h\$" "$LAST_OUT" || {
			_report_last
			fail "unexpected reply"
		}
		"$SIGN_FILE" "$h" "$(key_of a)" "$CERT" "$MOD" "$WORKDIR/out/signfile-$h.ko"
		assert_files_equal "$WORKDIR/out/signfile-$h.ko" "$WORKDIR/out/daemon-$h.ko" "daemon SIGN vs sign-file ($h)"
		assert_unchanged "$WORKDIR/out/in-$h.ko" "$snap" "the client's module"
		assert_verifies "$CERT" "$WORKDIR/out/daemon-$h.ko"
	done
	wait_until 5 "the SIGN to be logged" log_has "signed in-sha256.ko for pid="
	ok "logged: $(grep -m1 -F 'signed in-sha256.ko for pid=' "$DAEMON_LOG")"

	step "SIGN of a module already signed by the daemon's key: a fresh signature that replaces it"
	cp "$MOD" "$WORKDIR/out/by-a.ko"
	expect_exit 0 "$MODSIGNCTL" sign --key "$(key_of a)" --cert "$CERT" --hash sha256 "$WORKDIR/out/by-a.ko"
	for h in sha256 sha512; do
		expect_exit 0 "$CLIENT" "$DAEMON_SOCKET" sign "$WORKDIR/out/by-a.ko" "$WORKDIR/out/daemon-by-a-$h.ko" "$h" by-a.ko "$KVER"
		grep -q "^ok body_len=$(file_size "$MOD") " "$LAST_OUT" || fail "BODY_LEN is not the unsigned module's length: $(cat "$LAST_OUT")"
		assert_files_equal "$WORKDIR/out/signfile-$h.ko" "$WORKDIR/out/daemon-by-a-$h.ko" "re-signed ($h) vs sign-file on the unsigned module"
		assert_one_signature "$WORKDIR/out/daemon-by-a-$h.ko"
	done
	ok "replaced, not stacked"
	step "SIGN of a module signed by another key (b): refused (not ours to replace), nothing sent back"
	cp "$MOD" "$WORKDIR/out/by-b.ko"
	expect_exit 0 "$MODSIGNCTL" sign --key "$(key_of b)" --cert "$(cert_of b)" --hash sha256 "$WORKDIR/out/by-b.ko"
	expect_refused "signed by key b" signed-by-another-key "another key" "$WORKDIR/out/by-b.ko" sha256
}
run_case "SIGN over the socket equals sign-file byte for byte" case_sign_oracle

case_refusals() {
	step "a compressed module (.ko.xz) over SIGN is refused with a message"
	compress_module xz-crc32 "$MOD" "$WORKDIR/out/hello.ko.xz"
	expect_refused "compressed module" compressed "compressed module" "$WORKDIR/out/hello.ko.xz" sha256
	step "a weak hash, a kernel that is not installed, a file that is not a module"
	expect_refused "HASH=md5" hash "hash not allowed" "$MOD" md5
	expect_refused "HASH=sha1" hash "hash not allowed" "$MOD" sha1
	expect_refused "KERNEL=9.99.0-nope" kernel-not-installed "not installed" "$MOD" sha256 hello.ko 9.99.0-nope
	expect_refused "KERNEL=../../etc" kernel-not-installed "not installed" "$MOD" sha256 hello.ko ../../etc
	printf 'not a module\n' >"$WORKDIR/out/text.ko"
	expect_refused "a text file" not-a-module "" "$WORKDIR/out/text.ko" sha256
	assert_daemon_alive
}
run_case "refused SIGN requests say why" case_refusals

# daemon_fds: how many descriptors the daemon holds.
daemon_fds() {
	find "/proc/$DAEMON_PID/fd" -mindepth 1 -maxdepth 1 | wc -l
}
fds_at_most() {
	[ "$(daemon_fds)" -le "$1" ]
}

# P NAME FORMAT: a hand-made packet from printf escapes.
P() {
	# shellcheck disable=SC2059 # the format is the packet
	printf "$2" >"$WORKDIR/pkt/$1"
}

case_malformed() {
	local f name rc fds0 sent=0 bad=0 pid0 signed0 spec
	local -a fdargs
	fds0=$(daemon_fds)
	pid0=$DAEMON_PID
	signed0=$(stat_signed)
	step "the daemon holds $fds0 descriptors; sending the fuzz corpus and malformed packets"

	# Hand-made: header = "MSGD" u16 version u16 type u32 payload length; field = u16 tag u16 len.
	P empty ''
	P one-byte 'M'
	P short-header 'MSGD\x00\x01\x00\x03\x00\x00\x00'
	P bad-magic 'XSGD\x00\x01\x00\x03\x00\x00\x00\x00'
	P version-0 'MSGD\x00\x00\x00\x03\x00\x00\x00\x00'
	P version-2 'MSGD\x00\x02\x00\x03\x00\x00\x00\x00'
	P type-0 'MSGD\x00\x01\x00\x00\x00\x00\x00\x00'
	P type-7 'MSGD\x00\x01\x00\x07\x00\x00\x00\x00'
	P type-reply-ok 'MSGD\x00\x01\x00\x80\x00\x00\x00\x00'
	P type-reply-error 'MSGD\x00\x01\x00\x81\x00\x05\x00\x04\x00\x00\x00\x01'
	P length-too-big 'MSGD\x00\x01\x00\x03\x00\x00\x00\x64'
	P length-huge 'MSGD\x00\x01\x00\x03\xff\xff\xff\xff'
	P length-too-small 'MSGD\x00\x01\x00\x01\x00\x00\x00\x00\x00\x01\x00\x06sha256'
	P field-beyond-packet 'MSGD\x00\x01\x00\x01\x00\x00\x00\x0a\x00\x01\x00\xffsha256'
	P field-header-cut 'MSGD\x00\x01\x00\x03\x00\x00\x00\x03\x00\x01\x00'
	P tag-0 'MSGD\x00\x01\x00\x01\x00\x00\x00\x0a\x00\x00\x00\x06sha256'
	P tag-99 'MSGD\x00\x01\x00\x03\x00\x00\x00\x06\x00\x63\x00\x02xx'
	P tag-max 'MSGD\x00\x01\x00\x03\x00\x00\x00\x06\xff\xff\x00\x02xx'
	P duplicate-tag 'MSGD\x00\x01\x00\x01\x00\x00\x00\x14\x00\x01\x00\x06sha256\x00\x01\x00\x06sha512'
	P sign-no-fd 'MSGD\x00\x01\x00\x01\x00\x00\x00\x00'
	P scan-path-nul 'MSGD\x00\x01\x00\x02\x00\x00\x00\x08\x00\x04\x00\x04/t\x00p'
	# a reply's field in a request: known tag, ignored by STATUS (an answer is fine)
	P status-with-reply-field 'MSGD\x00\x01\x00\x03\x00\x00\x00\x07\x00\x05\x00\x03\x00\x00\x01'
	head -c 4096 /dev/urandom >"$WORKDIR/pkt/garbage-4k"
	{
		printf 'MSGD\x00\x01\x00\x01\x00\x00\x0f\xf4'
		head -c 4084 /dev/urandom
	} >"$WORKDIR/pkt/sign-random-fields"
	{
		printf 'MSGD\x00\x01\x00\x03\x00\x01\x11\x64'
		head -c 70000 /dev/zero
	} >"$WORKDIR/pkt/oversized-70012"
	head -c 65537 /dev/urandom >"$WORKDIR/pkt/oversized-65537-random"
	"$CLIENT" build "$WORKDIR/pkt/scan-relative" 2 4=relative/path
	"$CLIENT" build "$WORKDIR/pkt/scan-kernel-missing" 2 2=9.99.0-not-installed
	"$CLIENT" build "$WORKDIR/pkt/sign-long-string" 1 "1=sha256" "3=$(printf '%05000d' 0)"
	"$CLIENT" build "$WORKDIR/pkt/sign-sha256" 1 1=sha256 3=odd-fd.ko
	P sign-hash-nul 'MSGD\x00\x01\x00\x01\x00\x00\x00\x0a\x00\x01\x00\x06sha\x00256'
	cp "$WORKDIR/pkt/sign-sha256" "$WORKDIR/pkt/sign-sha256-b"
	: >"$WORKDIR/out/empty.ko"
	printf 'text\n' >"$WORKDIR/out/text-fd.ko"
	mkdir -p "$WORKDIR/out/dir"

	# NAME|packet file|descriptors: every one must get an error reply (1) or a close (3),
	# except the few valid requests among them (the corpus' STATUS and SCAN)
	{
		for f in "$srcdir"/tests/fuzz/corpus/proto/*; do
			printf 'corpus:%s|%s|\n' "$(basename "$f")" "$f"
			printf 'corpus+fd:%s|%s|r:%s\n' "$(basename "$f")" "$f" "$MOD"
		done
		for f in "$WORKDIR"/pkt/*; do
			printf '%s|%s|\n' "$(basename "$f")" "$f"
		done
		printf 'sign+2fds|%s|r:%s r:%s\n' "$WORKDIR/pkt/sign-sha256" "$MOD" "$MOD"
		printf 'sign+5fds|%s|r:%s r:%s r:%s r:%s r:%s\n' "$WORKDIR/pkt/sign-sha256" "$MOD" "$MOD" "$MOD" "$MOD" "$MOD"
		printf 'sign+directory-fd|%s|r:%s\n' "$WORKDIR/pkt/sign-sha256" "$WORKDIR/out/dir"
		printf 'sign+socket-fd|%s|sock\n' "$WORKDIR/pkt/sign-sha256"
		printf 'sign+dev-null-fd|%s|r:/dev/null\n' "$WORKDIR/pkt/sign-sha256"
		printf 'sign+write-only-fd|%s|w:%s\n' "$WORKDIR/pkt/sign-sha256" "$WORKDIR/out/text-fd.ko"
		printf 'sign+empty-file-fd|%s|r:%s\n' "$WORKDIR/pkt/sign-sha256" "$WORKDIR/out/empty.ko"
		printf 'sign+text-file-fd|%s|r:%s\n' "$WORKDIR/pkt/sign-sha256" "$WORKDIR/out/text-fd.ko"
		printf 'sign-hash-nul+fd|%s|r:%s\n' "$WORKDIR/pkt/sign-hash-nul" "$MOD"
		printf 'sign-long-string+fd|%s|r:%s\n' "$WORKDIR/pkt/sign-long-string" "$MOD"
		printf 'status+fd|%s|r:%s\n' "$srcdir/tests/fuzz/corpus/proto/status" "$MOD"
	} >"$WORKDIR/cases"

	while IFS='|' read -r name f spec; do
		if ! "$CLIENT" check "$f" >"$WORKDIR/check.out"; then
			say "    (not sent: $name would make the daemon look at this machine's files: $(cat "$WORKDIR/check.out"))"
			continue
		fi
		read -r -a fdargs <<<"$spec"
		rc=0
		timeout 60 "$CLIENT" "$DAEMON_SOCKET" raw "$f" "${fdargs[@]}" >"$WORKDIR/reply" 2>&1 || rc=$?
		sent=$((sent + 1))
		case $name:$rc in
		corpus:status:0 | corpus:scan:0 | status-with-reply-field:0 | *:1 | *:3)
			printf '    %-34s -> %s\n' "$name" "$(head -c 150 "$WORKDIR/reply")"
			;;
		*)
			say "    FAIL: $name: exit $rc, reply: $(cat "$WORKDIR/reply")"
			bad=$((bad + 1))
			;;
		esac
		if ! _pid_alive "$DAEMON_PID"; then
			say "    FAIL: the daemon died after $name"
			daemon_show_log
			exit 1
		fi
	done <"$WORKDIR/cases"
	[ "$bad" -eq 0 ] || fail "$bad of $sent packets did not get an error reply or a closed connection"
	ok "$sent packets: each got an error reply or a closed connection (a valid STATUS/SCAN an answer)"

	step "the same daemon still answers STATUS; no descriptor leaked; nothing signed"
	assert_daemon_alive
	[ "$DAEMON_PID" = "$pid0" ] || fail "the daemon's pid changed"
	wait_until 10 "the daemon to hold at most $fds0 descriptors again (has $(daemon_fds))" fds_at_most "$fds0"
	ok "$(daemon_fds) descriptors (was $fds0)"
	[ "$(stat_signed)" -eq "$signed0" ] || fail "a malformed request got something signed"
	ok "signed counter unchanged ($signed0)"
}
run_case "malformed requests: an error reply or a closed connection, and the daemon goes on" case_malformed

case_concurrent() {
	local scan_pid t0 t1 i ok_status=0 seen_busy=0 slowest=0 pids=() sign_rc
	mkdir -p "$WORKDIR/scan-tree/sub"
	step "a tree (not watched) with a 100 MiB module, scanned with modsignctl scan"
	make_big_module "$MOD" "$WORKDIR/scan-tree/sub/big.ko" 100
	chmod 0644 "$WORKDIR/scan-tree/sub/big.ko"
	cp "$MOD" "$WORKDIR/scan-tree/small.ko"
	"$MODSIGNCTL" --socket "$DAEMON_SOCKET" --json scan "$WORKDIR/scan-tree" >"$WORKDIR/scan.out" 2>&1 &
	scan_pid=$!
	register_pid "$scan_pid"
	step "while the scan runs: 4 STATUS clients at a time, and one SIGN"
	"$CLIENT" "$DAEMON_SOCKET" sign "$MOD" "$WORKDIR/out/during-scan.ko" sha256 >"$WORKDIR/sign-during.out" 2>&1 &
	local sign_pid=$!
	register_pid "$sign_pid"
	now_ms
	local deadline=$((NOW_MS + 120000))
	while _pid_alive "$scan_pid"; do
		pids=()
		now_ms
		t0=$NOW_MS
		for i in 1 2 3 4; do
			timeout 20 "$MODSIGNCTL" --socket "$DAEMON_SOCKET" --json status >"$WORKDIR/st-$i.json" 2>&1 &
			pids+=($!)
		done
		for i in 1 2 3 4; do
			if wait "${pids[$((i - 1))]}"; then
				ok_status=$((ok_status + 1))
				if [ "$(json_int "$WORKDIR/st-$i.json" queued)" -gt 0 ] && _pid_alive "$scan_pid"; then
					seen_busy=$((seen_busy + 1))
				fi
			else
				say "    FAIL: a STATUS during the scan failed: $(cat "$WORKDIR/st-$i.json")"
				exit 1
			fi
		done
		now_ms
		t1=$((NOW_MS - t0))
		[ "$t1" -le "$slowest" ] || slowest=$t1
		[ "$NOW_MS" -lt "$deadline" ] || fail "the scan did not finish within 120 s"
	done
	wait "$scan_pid" || fail "modsignctl scan failed: $(cat "$WORKDIR/scan.out")"
	unregister_pid "$scan_pid"
	ok "scan answered: $(tr -d ' \n' <"$WORKDIR/scan.out")"
	[ "$(json_int "$WORKDIR/scan.out" signed)" -eq 2 ] || fail "the scan did not sign the 2 modules"
	[ "$seen_busy" -gt 0 ] || fail "no STATUS was answered while the scan's module was being signed ($ok_status answered, none saw queued > 0)"
	ok "$ok_status STATUS answered during the scan, $seen_busy of them while its modules were queued; slowest round of 4: $slowest ms"
	[ "$slowest" -lt 5000 ] || fail "STATUS took $slowest ms while scanning: the loop is blocked"
	sign_rc=0
	wait "$sign_pid" || sign_rc=$?
	unregister_pid "$sign_pid"
	[ "$sign_rc" -eq 0 ] || fail "the SIGN during the scan failed: $(cat "$WORKDIR/sign-during.out")"
	assert_verifies "$CERT" "$WORKDIR/out/during-scan.ko"
	ok "the SIGN sent during the scan was answered: $(cat "$WORKDIR/sign-during.out")"
	assert_verifies "$CERT" "$WORKDIR/scan-tree/sub/big.ko" "$WORKDIR/scan-tree/small.ko"
	assert_one_signature "$WORKDIR/scan-tree/sub/big.ko"
	ok "the 100 MiB module verifies, one signature"
}
run_case "STATUS answers while a SCAN of a 100 MB module runs" case_concurrent

case_stop() {
	daemon_stop 20
}
run_case "SIGTERM: exit 0" case_stop

finish
