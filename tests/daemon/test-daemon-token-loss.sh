#!/bin/bash
# The daemon's PKCS#11 key when its token goes away and comes back (src/modsignd/daemon-key.c).
# The token is a SoftHSM2 token behind a real `p11-kit server`; the daemon reaches it through
# p11-kit's client module (module-path=.../p11-kit-client.so, P11_KIT_SERVER_ADDRESS), so
# killing the server (and its per-connection p11-kit-remote) takes the token away for real,
# and starting it again brings it back:
#  - signing works, and the SIGN trailer equals what the same key as a file gives;
#  - server killed: a SIGN fails within a few seconds saying "token '...' went away;
#    re-opening, next try in N s", the client's file is untouched (SIGN client and the DKMS
#    shim `modsignctl dkms-sign-file`), STATUS says the key is unavailable, and further SIGNs
#    fail at once; a module dropped into the watched tree meanwhile stays as it is;
#  - server back: the daemon re-opens the key on its own within the backoff (1, 2, 4 ... s),
#    with few tries (no tight loop), records the load in the audit log (key-loaded), signs
#    again byte for byte as before, and the module dropped meanwhile ends up signed;
#  - server killed, and a module arriving in the watched tree is what notices: the same;
#  - server stopped (SIGSTOP): a SIGN is answered with an error after 20 s, STATUS answers
#    meanwhile, and once the server goes on the key is re-opened and signs again;
#  - server killed again, and the PIN file changed to a wrong PIN before it comes back: the
#    re-open fails once with "wrong PIN", is not tried again (one login attempt in the log,
#    none more after several seconds), STATUS gives the reason, SIGN fails at once, the
#    daemon keeps answering; the token is not locked; a reload with the right PIN recovers;
#  - the CLI's own session (modsignctl sign of 500 modules) and a rotation to the token's key
#    (200 modules) lose the token half-way: each stops at the first module it cannot sign with
#    one message, not SIGPIPE; every module is either signed or as it was; the rotation
#    resumes with the token back and ends with every module the token key's.
# Every client call runs under timeout (run_cmd): a hang is a failure.
# shellcheck disable=SC2317 # the case functions are called through run_case
set -eu
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=SCRIPTDIR/lib.sh
. "$srcdir/tests/daemon/lib.sh"
MODSIGN_TEST_TIMEOUT=${MODSIGN_TOKEN_LOSS_TIMEOUT:-30}
# The longest wait for a re-open: the backoff's cap (60 s) and some.
REOPEN_LIMIT=75

daemon_setup_workdir
daemon_require
require_cmd softhsm2-util pkcs11-tool p11-kit setsid cmp
SOFTHSM_MODULE=
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so; do
	[ -f "$m" ] && SOFTHSM_MODULE=$m && break
done
[ -n "$SOFTHSM_MODULE" ] || skip_test "libsofthsm2.so not found (Debian package softhsm2)"
P11_CLIENT=
for m in /usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so /usr/lib/pkcs11/p11-kit-client.so; do
	[ -f "$m" ] && P11_CLIENT=$m && break
done
[ -n "$P11_CLIENT" ] || skip_test "p11-kit-client.so not found (Debian package p11-kit-modules)"
grep -q '^#define HAVE_LIBP11 1' "${top_builddir:-.}/config.h" 2>/dev/null ||
	skip_test "modsignd was built without libp11 (configure found no libp11-dev)"
daemon_helper sign-client
CLIENT=$HELPER

# The token, private to this test.
export SOFTHSM2_CONF=$WORKDIR/softhsm2.conf
mkdir -p "$WORKDIR/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$WORKDIR" >"$SOFTHSM2_CONF"
LABEL=modsign-loss
PIN=271828
softhsm2-util --init-token --free --label "$LABEL" --pin "$PIN" --so-pin 314159 >"$WORKDIR/init.log" 2>&1 || {
	show_file "$WORKDIR/init.log"
	fail "softhsm2-util could not create the token"
}
make_key_root rsa2048 a
CERT=$(cert_of a)
openssl pkcs8 -topk8 -nocrypt -in "$(key_of a)" -out "$WORKDIR/a.p8"
softhsm2-util --import "$WORKDIR/a.p8" --token "$LABEL" --label signer --id 01 --pin "$PIN" >"$WORKDIR/import.log" 2>&1 || {
	show_file "$WORKDIR/import.log"
	fail "softhsm2-util could not import the key"
}
rm -f "$WORKDIR/a.p8"
PINFILE=$WORKDIR/pin
(
	umask 077
	printf '%s\n' "$PIN" >"$PINFILE"
)

# The server: its own session (setsid), so that the server and the p11-kit-remote it forks
# for each connection are one process group, ended together.
P11_SOCK=$WORKDIR/p11-kit.socket
P11_PIDFILE=$WORKDIR/p11-kit.pid
export P11_KIT_SERVER_ADDRESS="unix:path=$P11_SOCK"

# server_start: start the p11-kit server for the token; wait (bounded) for its socket.
server_start() {
	local pid
	rm -f "$P11_SOCK"
	setsid p11-kit server -f -n "$P11_SOCK" --provider "$SOFTHSM_MODULE" "pkcs11:token=$LABEL" \
		</dev/null >>"$WORKDIR/p11-kit.log" 2>&1 &
	pid=$!
	register_pid "$pid"
	printf '%s\n' "$pid" >"$P11_PIDFILE"
	wait_until 10 "the p11-kit server's socket $P11_SOCK" test -S "$P11_SOCK"
	step "p11-kit server (pid $pid) serves token '$LABEL' on $P11_SOCK"
}

group_gone() {
	! kill -0 -- "-$1" 2>/dev/null
}

# server_kill: end the server and every p11-kit-remote of it (its process group).
server_kill() {
	local pid
	pid=$(cat "$P11_PIDFILE")
	[ "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid" ] || fail "the p11-kit server $pid does not lead its process group"
	kill -TERM -- "-$pid"
	wait_until 10 "the p11-kit server's processes to end" group_gone "$pid"
	unregister_pid "$pid"
	step "p11-kit server (pid $pid) and its p11-kit-remote processes ended"
}
# server_end_quietly: at exit, whatever state the test left the server in.
server_end_quietly() {
	local pid
	pid=$(cat "$P11_PIDFILE" 2>/dev/null) || return 0
	kill -TERM -- "-$pid" 2>/dev/null || true
	kill -CONT -- "-$pid" 2>/dev/null || true # a server held with SIGSTOP
}
on_exit server_end_quietly

server_start

# Modules: a small one for the socket, the reference signature with the key as a file.
mkdir -p "$WORKDIR/src" "$WORKDIR/out" "$WORKDIR/build"
MOD=$WORKDIR/src/m.ko
make_small_module "$MOD" tokloss
chmod 0644 "$MOD"
cp "$MOD" "$WORKDIR/ref.ko"
expect_exit 0 ms sign --hash sha256 --key "$(key_of a)" --cert "$CERT" "$WORKDIR/ref.ko"
REF=$WORKDIR/ref.ko

make_tree "$WORKDIR/root"
daemon_config "$WORKDIR/d" a "$TREE_ROOT"
URI="pkcs11:token=$LABEL;object=signer;type=private?module-path=$P11_CLIENT"
sed -i "s|^PrivateKey=.*|PrivateKey=$URI\nPinFile=$PINFILE|" "$DAEMON_CONF"
grep -q '^PinFile=' "$DAEMON_CONF" || fail "could not point the configuration at the token"
# direct: systemd-socket-activate would not pass P11_KIT_SERVER_ADDRESS on to the daemon.
daemon_start direct

status_field() {
	daemon_status_json
	sed -n "s/^ *\"$1\": *\\(.*\\)$/\\1/p" "$WORKDIR/status.json" | sed 's/,$//' | head -n 1
}
key_available_is() {
	[ "$(status_field key_available)" = "$1" ]
}
key_error_has() {
	status_field key_error | grep -qF -- "$1"
}
count_in_log() {
	grep -cF -- "$1" "$DAEMON_LOG" || true
}

# sign_ok OUT: SIGN over the socket; OUT must equal the file key's signed module.
sign_ok() {
	local out=$1
	rm -f "$out"
	run_cmd "$CLIENT" "$DAEMON_SOCKET" sign "$MOD" "$out" sha256
	if [ "$LAST_RC" -ne 0 ]; then
		_report_last
		daemon_show_log
		fail "SIGN through the token failed"
	fi
	assert_files_equal "$REF" "$out" "the token's signature against the file key's"
}

case_signs() {
	sign_ok "$WORKDIR/out/first.ko"
	key_available_is true || fail "STATUS does not say key_available: true"
	ok "SIGN through p11-kit's client and server equals the file key's module, byte for byte"
}
run_case "signing through the p11-kit server works" case_signs

# sign_fails_fast TEXT: SIGN fails within 5 s with TEXT in the message, and writes nothing.
sign_fails_fast() {
	local text=$1 t0 took
	rm -f "$WORKDIR/out/lost.ko"
	now_ms
	t0=$NOW_MS
	run_cmd "$CLIENT" "$DAEMON_SOCKET" sign "$MOD" "$WORKDIR/out/lost.ko" sha256
	now_ms
	took=$((NOW_MS - t0))
	if [ "$LAST_RC" -ne 1 ]; then
		_report_last
		daemon_show_log
		fail "SIGN did not get an error reply (exit $LAST_RC, expected 1)"
	fi
	grep -qF -- "$text" "$LAST_OUT" || {
		_report_last
		fail "the error does not say '$text'"
	}
	[ "$took" -le 5000 ] || fail "the error took $took ms (more than 5 s)"
	[ ! -e "$WORKDIR/out/lost.ko" ] || fail "the client wrote a module although SIGN failed"
	assert_files_equal "$WORKDIR/ref-unsigned.ko" "$MOD" "the module sent to SIGN"
	ok "$took ms: $(cut -c1-200 "$LAST_OUT")"
}
cp "$MOD" "$WORKDIR/ref-unsigned.ko"

case_token_goes() {
	server_kill
	sign_fails_fast "token '$LABEL' went away; re-opening, next try in"
	log_has "token '$LABEL' went away" || fail "the daemon did not log the loss"
	key_available_is false || fail "STATUS still says the key is available"
	key_error_has "token '$LABEL' went away" || fail "STATUS's key_error does not name the token"
	ok "STATUS: key_available false, key_error $(status_field key_error)"
	ctl status
	grep -qF "UNAVAILABLE: token '$LABEL' went away" "$LAST_OUT" || {
		_report_last
		fail "modsignctl status does not say the key is unavailable"
	}
	wait_until 5 "STATUS=Not signing on the notify socket" notify_has_since 0 "STATUS=Not signing: token '$LABEL' went away; re-opening, next try in 1 s"
	ok "modsignctl status and the service's status line say the key is unavailable"
	step "a second SIGN while the key is away fails at once"
	sign_fails_fast "token '$LABEL' went away"

	step "the DKMS shim on a module in a build directory"
	cp "$MOD" "$WORKDIR/build/shim.ko"
	run_cmd "$MODSIGNCTL" --config "$DAEMON_CONF" --socket "$DAEMON_SOCKET" dkms-sign-file sha256 \
		pkcs11:modsignd-daemon-key "$CERT" "$WORKDIR/build/shim.ko"
	[ "$LAST_RC" -eq 1 ] || {
		_report_last
		fail "dkms-sign-file did not fail with exit 1 while the token is away"
	}
	grep -qF -- "token '$LABEL' went away" "$LAST_ERR" || {
		_report_last
		fail "dkms-sign-file does not print the daemon's reason"
	}
	assert_files_equal "$WORKDIR/ref-unsigned.ko" "$WORKDIR/build/shim.ko" "the shim's module"
	ok "dkms-sign-file: exit 1, '$(head -n 1 "$LAST_ERR" | cut -c1-160)', module untouched"

	step "a module dropped into the watched tree while the token is away"
	cp "$MOD" "$UPD/late.ko"
	sleep 1
	module_is_signed "$UPD/late.ko" && fail "$UPD/late.ko got signed with no token"
	ok "$UPD/late.ko stays unsigned meanwhile"
	assert_daemon_alive
}
run_case "the token goes away: SIGN fails fast and names it" case_token_goes

case_token_back() {
	local t0 tries
	sleep 2 # a try or two against no server at all
	server_start
	now_ms
	t0=$NOW_MS
	wait_until "$REOPEN_LIMIT" "the daemon to re-open the key" key_available_is true
	now_ms
	ok "the key is available again $((NOW_MS - t0)) ms after the server came back"
	log_has "token '$LABEL' is back: signing key" || fail "the daemon did not log the re-open"
	tries=$(count_in_log "re-opening the signing key failed (try")
	# 1 + 2 + 4 + 8 ... s: about 3 s without a server is at most 3 failed tries.
	[ "$tries" -le 4 ] || fail "$tries failed tries while the server was away about 3 s: no backoff"
	ok "$tries failed tries before the server came back (backoff, not a loop)"
	grep -q '"event":"key-loaded".*re-opened after' "$DAEMON_DIR/state/audit.jsonl" ||
		fail "the audit log has no key-loaded record of the re-open"
	ok "the re-open is in the audit log: $(grep '"event":"key-loaded".*re-opened' "$DAEMON_DIR/state/audit.jsonl" | tail -n 1 | cut -c1-160)"
	sign_ok "$WORKDIR/out/after.ko"
	ok "SIGN works again, byte-identical to the file key"
	wait_signed "$UPD/late.ko"
	assert_verifies "$CERT" "$UPD/late.ko"
	ok "the module dropped while the token was away got signed after the re-open"
}
run_case "the token comes back: the daemon re-opens the key and catches up" case_token_back

case_watcher_notices() {
	local t0
	server_kill
	step "no SIGN this time: a module arrives in the watched tree and its signature fails"
	cp "$MOD" "$UPD/noticed.ko"
	wait_until 20 "the watcher's failure to take the key down" key_available_is false
	log_has "failed to sign $UPD/noticed.ko: $(printf '%s' "the key's token went away")" ||
		fail "the watcher's failure does not say the token went away"
	ok "the watcher's failed signature took the key down: $(status_field key_error)"
	server_start
	now_ms
	t0=$NOW_MS
	wait_until "$REOPEN_LIMIT" "the daemon to re-open the key" key_available_is true
	now_ms
	ok "re-opened $((NOW_MS - t0)) ms after the server came back"
	wait_signed "$UPD/noticed.ko"
	assert_verifies "$CERT" "$UPD/noticed.ko"
	ok "the module whose signature failed got signed after the re-open"
}
run_case "a loss noticed by the watcher, not by a SIGN" case_watcher_notices

case_token_frozen() {
	local pid t0 took
	pid=$(cat "$P11_PIDFILE")
	step "the p11-kit server and its p11-kit-remote stopped (SIGSTOP): the token answers nothing"
	kill -STOP -- "-$pid"
	now_ms
	t0=$NOW_MS
	run_cmd "$CLIENT" "$DAEMON_SOCKET" sign "$MOD" "$WORKDIR/out/frozen.ko" sha256
	now_ms
	took=$((NOW_MS - t0))
	if [ "$LAST_RC" -ne 1 ] || ! grep -qF "token '$LABEL' went away (it did not answer within 20 s)" "$LAST_OUT"; then
		kill -CONT -- "-$pid"
		_report_last
		daemon_show_log
		fail "SIGN to a frozen token did not get the deadline's error"
	fi
	if [ "$took" -lt 19000 ] || [ "$took" -gt 27000 ]; then
		kill -CONT -- "-$pid"
		fail "the deadline's error came after $took ms (expected about 20 s)"
	fi
	[ ! -e "$WORKDIR/out/frozen.ko" ] || fail "the client wrote a module although SIGN failed"
	ok "$took ms: $(cut -c1-200 "$LAST_OUT")"
	assert_daemon_alive
	sign_fails_fast "token '$LABEL' went away"
	kill -CONT -- "-$pid"
	step "the server goes on (SIGCONT)"
	now_ms
	t0=$NOW_MS
	wait_until "$REOPEN_LIMIT" "the daemon to re-open the key" key_available_is true
	now_ms
	ok "re-opened $((NOW_MS - t0)) ms after the server went on"
	wait_until 20 "the stuck job's late end" log_has "the token answered only after the deadline; the signature was not handed out"
	ok "the stuck signature ended late, recorded as failed, not handed out"
	# The late signature's own record, when the token did sign in the end, comes right
	# before the one saying it was not handed out: the log never shows a signature alone.
	local log=$DAEMON_DIR/state/audit.jsonl late prev
	late=$(grep -n 'answered only after the deadline' "$log" | tail -n 1 | cut -d: -f1)
	[ -n "$late" ] || fail "no audit record says the late signature was not handed out"
	jq -e '.event == "failed"' <(sed -n "${late}p" "$log") >/dev/null || fail "the late record is not a failure: $(sed -n "${late}p" "$log")"
	prev=$(sed -n "$((late - 1))p" "$log")
	if jq -e '.event == "signed" and .path == "m.ko"' <<<"$prev" >/dev/null; then
		ok "recorded: signed (on the worker, when the token answered), then failed: not handed out"
	else
		ok "recorded: failed, not handed out (the token did not sign in the end)"
	fi
	expect_exit 0 "$MODSIGNCTL" --config "$DAEMON_CONF" audit verify
	sign_ok "$WORKDIR/out/thawed.ko"
	ok "SIGN works again, byte-identical to the file key"
}
run_case "a token that stops answering: SIGN answered after 20 s, the key re-opened" case_token_frozen

case_wrong_pin() {
	local n t0
	server_kill
	sign_fails_fast "token '$LABEL' went away"
	printf '000000\n' >"$PINFILE"
	server_start
	now_ms
	t0=$NOW_MS
	wait_until "$REOPEN_LIMIT" "STATUS to report the wrong PIN" key_error_has "wrong PIN"
	now_ms
	ok "$((NOW_MS - t0)) ms: STATUS key_error: $(status_field key_error)"
	sleep 4 # a retry loop would log more tries meanwhile
	n=$(count_in_log "cannot re-open the signing key, and not trying again")
	[ "$n" -eq 1 ] || fail "the daemon logged $n failed re-opens with the wrong PIN (expected exactly 1)"
	n=$(grep -cF "wrong PIN" "$DAEMON_LOG" || true)
	[ "$n" -eq 1 ] || fail "the log mentions a wrong PIN $n times (one login attempt expected)"
	[ -z "$(status_field key_retry_in_seconds)" ] || fail "STATUS still plans a retry"
	ok "one failed login, logged once, no further tries after 4 s"
	sign_fails_fast "wrong PIN"
	assert_daemon_alive
	step "the token is not locked: the right PIN still logs in"
	expect_exit 0 pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$LABEL" --login --pin "$PIN" --list-objects
}
run_case "a wrong PIN at re-open: reported once, not retried" case_wrong_pin

case_reload_recovers() {
	printf '%s\n' "$PIN" >"$PINFILE"
	ctl reload
	[ "$LAST_RC" -eq 0 ] || {
		_report_last
		daemon_show_log
		fail "modsignctl reload failed with the right PIN"
	}
	key_available_is true || fail "STATUS does not say the key is available after the reload"
	sign_ok "$WORKDIR/out/reloaded.ko"
	ok "after the PIN was fixed, a reload brought the key back; SIGN equals the file key again"
}
run_case "fixing the PIN and reloading brings the key back" case_reload_recovers

# The CLI holds its own session to the token. When the server goes away in the middle of a
# batch, p11-kit's client writes to a closed socket: modsignctl must fail with a message
# (and leave each module signed or untouched), not die of SIGPIPE.
case_cli_token_goes() {
	# Enough modules that the CLI is still at work when the server goes: it commits them in
	# groups of 128, and the first group's m1.ko being signed is the cue.
	local pid rc=0 i n=500 signed=0 untouched=0 first=$WORKDIR/batch/m1.ko
	mkdir -p "$WORKDIR/batch"
	for i in $(seq "$n"); do cp "$MOD" "$WORKDIR/batch/m$i.ko"; done
	step "modsignctl sign of $n modules through the token; the server killed after the first group"
	MODSIGND_STATE_DIRECTORY=$DAEMON_DIR/state timeout "$MODSIGN_TEST_TIMEOUT" "$MODSIGNCTL" --config "$DAEMON_CONF" sign --hash sha256 \
		--key "$URI&pin-source=$PINFILE" --cert "$CERT" "$WORKDIR"/batch/m*.ko \
		</dev/null >"$WORKDIR/cli.out" 2>"$WORKDIR/cli.err" &
	pid=$!
	register_pid "$pid"
	for i in $(seq 400); do
		[ "$(file_size "$first")" -gt "$(file_size "$MOD")" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	[ "$(file_size "$first")" -gt "$(file_size "$MOD")" ] || fail "modsignctl did not sign the first module: $(cat "$WORKDIR/cli.err")"
	server_kill
	wait "$pid" || rc=$?
	unregister_pid "$pid"
	say "    modsignctl exit status $rc; stderr: $(head -c 300 "$WORKDIR/cli.err")"
	if [ "$rc" -eq 141 ] || [ "$rc" -ge 124 ]; then
		fail "modsignctl was killed (exit $rc) when the token went away"
	fi
	for i in $(seq "$n"); do
		if cmp -s "$MOD" "$WORKDIR/batch/m$i.ko"; then
			untouched=$((untouched + 1))
		elif cmp -s "$REF" "$WORKDIR/batch/m$i.ko"; then
			signed=$((signed + 1))
		else
			fail "m$i.ko is neither the unsigned module nor the file key's signed one"
		fi
	done
	ok "$signed signed as with the file key, $untouched untouched, none half-done"
	if [ "$untouched" -gt 0 ]; then
		[ "$rc" -ne 0 ] || fail "modsignctl exited 0 although $untouched modules were not signed"
		grep -q "the key's token went away: [0-9]* more modules\? not signed" "$WORKDIR/cli.err" ||
			fail "modsignctl did not say that it stopped, and how many modules it left" "$(cat "$WORKDIR/cli.err")"
		[ "$(wc -l <"$WORKDIR/cli.err")" -le 3 ] ||
			fail "modsignctl went on trying the key for each module: $(wc -l <"$WORKDIR/cli.err") lines of errors"
		ok "exit $rc; it stopped at the first failure: $(tr '\n' ' ' <"$WORKDIR/cli.err")"
	fi
}
run_case "the CLI's own token session goes away mid-batch: an error, not SIGPIPE" case_cli_token_goes

# A rotation to the token's key, the token lost half-way through the re-signing: rotate stops
# at the first module it cannot sign, says so, and leaves the rest pending; with the token
# back, rotate --resume finishes, and every module is the token key's.
case_rotate_token_goes() {
	local m=$WORKDIR/rotm n=200 pid rc=0 i f new=0 old=0
	local kv=6.1.0-tokloss-amd64
	local conf=$m/etc/modsignd/modsignd.conf
	server_start
	make_key_root rsa2048 o
	mkdir -p "$m/lib/modules/$kv/updates" "$m/var/lib/dkms" "$m/etc/modsignd" "$m/state"
	cp "$(key_of o)" "$m/etc/modsignd/o.key"
	chmod 0600 "$m/etc/modsignd/o.key"
	printf '[Key]\nPrivateKey=%s\nCertificate=%s\n[Daemon]\nSocket=%s\nStateDirectory=%s\n[Policy]\nRateLimit=off\n' \
		"$m/etc/modsignd/o.key" "$(cert_of o)" "$m/none.socket" "$m/state" >"$conf"
	for i in $(seq "$n"); do cp "$MOD" "$m/lib/modules/$kv/updates/r$i.ko"; done
	run_cmd ms --config "$conf" -q sign --hash sha256 --key "$(key_of o)" --cert "$(cert_of o)" \
		"$m/lib/modules/$kv/updates/"*.ko
	[ "$LAST_RC" -eq 0 ] || { _report_last; fail "could not sign the modules with the old key"; }
	step "rotate from the file key o to the token's key, $n modules; the server killed after the first"
	timeout "$MODSIGN_TEST_TIMEOUT" "$MODSIGNCTL" --config "$conf" rotate --force --new-key "$URI" \
		--new-cert "$CERT" --pin-file "$PINFILE" --modules-dir "$m/lib/modules" --dkms-tree "$m/var/lib/dkms" \
		--dropin "$m/etc/modsignd/modsignd.conf.d/50-rotation.conf" \
		</dev/null >"$WORKDIR/rot.out" 2>"$WORKDIR/rot.err" &
	pid=$!
	register_pid "$pid"
	for i in $(seq 400); do
		grep -q '^re-signed ' "$WORKDIR/rot.out" && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	grep -q '^re-signed ' "$WORKDIR/rot.out" || fail "rotate re-signed nothing: $(cat "$WORKDIR/rot.err")"
	server_kill
	wait "$pid" || rc=$?
	unregister_pid "$pid"
	say "    rotate: exit $rc, $(grep -c '^re-signed ' "$WORKDIR/rot.out") re-signed; stderr: $(head -c 400 "$WORKDIR/rot.err")"
	[ "$rc" -eq 1 ] || fail "rotate did not fail with exit 1 when the token went away (exit $rc)"
	grep -q "the new key's token went away; [0-9]* module(s) not re-signed yet" "$WORKDIR/rot.err" ||
		fail "rotate did not say that the token went away" "$(cat "$WORKDIR/rot.err")"
	[ "$(grep -c 'went away' "$WORKDIR/rot.err")" -le 2 ] ||
		fail "rotate went on trying the token for each module: $(grep -c 'went away' "$WORKDIR/rot.err") lines"
	for f in "$m/lib/modules/$kv/updates/"*.ko; do
		if "$MODSIGNCTL" verify --cert "$CERT" "$f" >/dev/null 2>&1; then
			new=$((new + 1))
		elif "$MODSIGNCTL" verify --cert "$(cert_of o)" "$f" >/dev/null 2>&1; then
			old=$((old + 1))
		else
			fail "$f verifies with neither key"
		fi
	done
	[ "$old" -gt 0 ] || fail "every module was re-signed before the server was killed: the case proves nothing"
	ok "$new re-signed by the token's key, $old still the old key's, none broken"
	expect_exit 0 ms --config "$conf" rotate --status
	[ "$(grep -c '^  pending: ' "$LAST_OUT")" -eq "$old" ] ||
		fail "rotate --status does not list the $old modules left pending" "$(cat "$LAST_OUT")"
	ok "rotate --status: $(grep '^Modules:' "$LAST_OUT")"
	step "the token back: rotate --resume finishes"
	server_start
	expect_exit 0 "$MODSIGNCTL" --config "$conf" rotate --resume
	for f in "$m/lib/modules/$kv/updates/"*.ko; do
		"$MODSIGNCTL" verify --cert "$CERT" "$f" >/dev/null 2>&1 || fail "$f is not the token key's after --resume"
	done
	ok "all $n modules verify with the token key's certificate"
	daemon_stop 20
}
run_case "a rotation to the token's key survives the token going away" case_rotate_token_goes

finish
