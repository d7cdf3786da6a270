#!/bin/bash
# modsignd and its service manager: the daemon run the way systemd runs it (socket passed by
# systemd-socket-activate --seqpacket, NOTIFY_SOCKET, WATCHDOG_USEC=1000000) sends READY=1,
# STATUS=, WATCHDOG=1 again and again, RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 and
# exit 0 on SIGTERM; `modsignctl status` and `--json status` answer on the passed socket.
# Without socket activation it makes Socket= itself, mode 0600, and removes it at exit.
# `modsignd --check-config` accepts a good configuration and names FILE:LINE for an unknown
# key, an unknown section and a bad value, and names the key file when it is mode 0644 or a
# symlink.
# shellcheck disable=SC2317 # the case functions are called through run_case
set -eu
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=SCRIPTDIR/lib.sh
. "$srcdir/tests/daemon/lib.sh"

daemon_setup_workdir
daemon_require
make_key_root rsa2048 a
make_tree "$WORKDIR/root"
FPR=$(openssl x509 -in "$(cert_of a)" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')

say ""
say "--- the daemon under systemd-socket-activate"
daemon_config "$WORKDIR/d1" a "$TREE_ROOT"
daemon_start activate 1000000

case_ready() {
	step "READY=1 arrived on NOTIFY_SOCKET"
	notify_has READY=1 || fail "no READY=1"
	ok "READY=1"
	step "STATUS= lines are sent"
	wait_until 5 "a STATUS= line" grep -q '^STATUS=Signed ' "$NOTIFY_LOG"
	ok "$(grep -m1 '^STATUS=' "$NOTIFY_LOG")"
	step "the daemon did not make its own socket: it uses the one systemd-socket-activate passed"
	[ ! -e "$DAEMON_DIR/own.socket" ] || fail "the daemon created Socket= $DAEMON_DIR/own.socket although a socket was passed"
	ok "no $DAEMON_DIR/own.socket"
	step "the daemon's pid is the one systemd-socket-activate exec'd (LISTEN_PID)"
	grep -q "Execing $MODSIGND" "$DAEMON_LOG" || fail "systemd-socket-activate did not exec the daemon"
	ok "systemd-socket-activate exec'd $MODSIGND as pid $DAEMON_PID"
}
run_case "READY=1, STATUS= and the passed socket" case_ready

count_watchdog_since() {
	[ "$(notify_count_since "$1" WATCHDOG=1)" -ge "$2" ]
}
case_watchdog() {
	local mark
	# systemd kills a service that stays silent for WatchdogSec=; sd-event pings at about half
	# of it. Three in four seconds is what any live loop manages with a 1 s watchdog.
	step "WATCHDOG=1 keeps arriving with WATCHDOG_USEC=1000000 (3 within 4 s, twice)"
	mark=$(notify_lines)
	wait_until 4 "3 WATCHDOG=1 messages after line $mark" count_watchdog_since "$mark" 3
	ok "3 WATCHDOG=1 in $WAITED_MS ms"
	mark=$(notify_lines)
	wait_until 4 "3 more WATCHDOG=1 messages" count_watchdog_since "$mark" 3
	ok "3 more WATCHDOG=1 in $WAITED_MS ms: the loop keeps pinging"
}
run_case "WATCHDOG=1 repeatedly" case_watchdog

case_status() {
	local pid
	step "modsignctl status answers on the activated socket"
	ctl status
	[ "$LAST_RC" -eq 0 ] || {
		_report_last
		fail "modsignctl status failed"
	}
	grep -q "^modsignd .*, pid $DAEMON_PID, up " "$LAST_OUT" || {
		_report_last
		fail "status does not name the daemon's pid $DAEMON_PID"
	}
	grep -q "SHA-256 $FPR, hash sha256" "$LAST_OUT" || {
		_report_last
		fail "status does not show the key's fingerprint $FPR and hash sha256"
	}
	ok "$(head -n 1 "$LAST_OUT")"
	step "modsignctl --json status: valid JSON with the pid, fingerprint and counters"
	daemon_status_json
	if command -v python3 >/dev/null 2>&1; then
		python3 -m json.tool "$WORKDIR/status.json" >/dev/null || fail "--json status is not valid JSON"
	fi
	pid=$(json_int "$WORKDIR/status.json" pid)
	[ "$pid" = "$DAEMON_PID" ] || fail "--json status: pid is '$pid', expected $DAEMON_PID"
	grep -q "\"key_fingerprint\": \"$FPR\"" "$WORKDIR/status.json" || fail "--json status lacks key_fingerprint $FPR"
	for k in signed unchanged foreign refused failed queued workers watched_directories uptime_seconds requests; do
		[ -n "$(json_int "$WORKDIR/status.json" "$k")" ] || fail "--json status lacks the integer '$k'"
	done
	[ "$(json_int "$WORKDIR/status.json" workers)" -eq 2 ] || fail "--json status: workers is not 2 (Workers=2)"
	[ "$(json_int "$WORKDIR/status.json" watched_directories)" -eq 3 ] ||
		fail "--json status: watched_directories is $(json_int "$WORKDIR/status.json" watched_directories), expected 3 (lib/modules, $KVER, updates)"
	ok "pid $pid, fingerprint, counters, 2 workers, 3 watched directories"
}
run_case "modsignctl status and --json status" case_status

case_sighup() {
	local mark
	mark=$(notify_lines)
	step "SIGHUP: RELOADING=1, then READY=1"
	daemon_signal HUP
	wait_until 10 "RELOADING=1 after SIGHUP" notify_has_since "$mark" RELOADING=1
	wait_until 10 "READY=1 after RELOADING=1" notify_sequence_since "$mark" RELOADING=1 READY=1
	ok "RELOADING=1 then READY=1: $(notify_since "$mark" | grep -xE 'RELOADING=1|READY=1' | tr '\n' ' ')"
	wait_until 5 "the reload to be logged" log_has "configuration reloaded; signing key $FPR"
	ok "logged: configuration reloaded"
	step "the daemon still answers, same pid"
	daemon_status_json
	[ "$(json_int "$WORKDIR/status.json" pid)" = "$DAEMON_PID" ] || fail "the pid changed over SIGHUP"
	ok "pid $DAEMON_PID still answers"
	step "modsignctl reload (over the socket) does the same"
	mark=$(notify_lines)
	ctl reload
	if [ "$LAST_RC" -ne 0 ] || ! grep -q "reloaded; signing key SHA-256 $FPR" "$LAST_OUT"; then
		_report_last
		fail "modsignctl reload failed"
	fi
	wait_until 5 "RELOADING=1 and READY=1 after modsignctl reload" notify_sequence_since "$mark" RELOADING=1 READY=1
	ok "modsignctl reload: $(cat "$LAST_OUT")"
}
run_case "SIGHUP reloads: RELOADING=1 then READY=1" case_sighup

case_sigterm() {
	step "SIGTERM: STOPPING=1 and exit status 0 (bounded)"
	daemon_stop 15
	step "the socket systemd-socket-activate made is not the daemon's to remove; nothing else left"
	[ ! -e "$DAEMON_DIR/own.socket" ] || fail "$DAEMON_DIR/own.socket exists"
	ok "no own socket left behind"
}
run_case "SIGTERM: STOPPING=1, exit 0" case_sigterm

case_direct() {
	local mode
	daemon_config "$WORKDIR/d2" a "$TREE_ROOT"
	step "no socket activation: the daemon makes Socket= itself"
	daemon_start direct 1000000
	[ -S "$DAEMON_SOCKET" ] || fail "$DAEMON_SOCKET is not a socket"
	mode=$(stat -c '%a %U' "$DAEMON_SOCKET")
	[ "$mode" = "600 root" ] || fail "$DAEMON_SOCKET has mode/owner '$mode', expected '600 root'"
	ok "$DAEMON_SOCKET: socket, mode 0600, owner root"
	ctl status
	[ "$LAST_RC" -eq 0 ] || {
		_report_last
		fail "status over the daemon's own socket failed"
	}
	ok "status answers on it"
	wait_until 5 "WATCHDOG=1 without socket activation too" notify_has WATCHDOG=1
	daemon_stop 15
	[ ! -e "$DAEMON_SOCKET" ] || fail "the daemon left its socket $DAEMON_SOCKET behind"
	ok "the daemon removed $DAEMON_SOCKET at exit"
	step "a stale socket from a previous run is replaced; a regular file at Socket= is not"
	daemon_helper notify-recv
	"$HELPER" "$DAEMON_SOCKET" >/dev/null 2>&1 &
	local stale=$!
	register_pid "$stale"
	EXPECT_DAEMON_EXIT=1 wait_until 5 "a stale socket file" test -S "$DAEMON_SOCKET"
	kill "$stale"
	wait "$stale" 2>/dev/null || true
	unregister_pid "$stale"
	daemon_start direct 1000000
	[ "$(stat -c %a "$DAEMON_SOCKET")" = 600 ] || fail "the re-made socket is not mode 0600"
	ok "started over a stale socket; the new one is mode 0600"
	step "a second daemon on the same Socket= while the first is alive: refused, the first goes on"
	expect_fail timeout 20 env -u NOTIFY_SOCKET -u LISTEN_FDS -u LISTEN_PID "$MODSIGND" --config "$DAEMON_CONF"
	grep -qF "$DAEMON_SOCKET" "$LAST_ERR" || fail "the error does not name $DAEMON_SOCKET"
	ok "refused: $(head -n 1 "$LAST_ERR")"
	assert_daemon_alive
	daemon_stop 15
	printf 'not a socket\n' >"$DAEMON_SOCKET"
	expect_fail timeout 20 env -u NOTIFY_SOCKET -u LISTEN_FDS -u LISTEN_PID "$MODSIGND" --config "$DAEMON_CONF"
	grep -qF "$DAEMON_SOCKET" "$LAST_ERR" || fail "the error does not name $DAEMON_SOCKET"
	[ "$(cat "$DAEMON_SOCKET")" = "not a socket" ] || fail "the daemon replaced a regular file at Socket="
	ok "refused to replace a regular file: $(head -n 1 "$LAST_ERR")"
}
run_case "without socket activation: Socket= made with mode 0600" case_direct

# check_config_fails CONF WHAT TEXT...: --check-config exits non-zero; stderr holds each TEXT.
check_config_fails() {
	local conf=$1 what=$2 t
	shift 2
	expect_fail "$MODSIGND" --config "$conf" --check-config
	for t in "$@"; do
		grep -qF -- "$t" "$LAST_ERR" || {
			say "    FAIL: $what: the message does not contain '$t'"
			_report_last
			exit 1
		}
	done
	ok "$what: $(head -n 1 "$LAST_ERR")"
}

case_check_config() {
	local dir=$WORKDIR/cc conf line
	mkdir -p "$dir"
	daemon_config "$dir" a "$TREE_ROOT"
	conf=$DAEMON_CONF

	step "a good configuration: exit 0"
	expect_exit 0 "$MODSIGND" --config "$conf" --check-config
	grep -q "configuration OK: key $(key_of a).*SHA-256 $FPR.*hash sha256.*1 watched trees" "$LAST_OUT" || {
		_report_last
		fail "--check-config does not report the key, fingerprint, hash and trees"
	}
	ok "$(cat "$LAST_OUT")"

	step "an unknown key: FILE:LINE named"
	cp "$conf" "$dir/unknown-key.conf"
	printf '[Signing]\nHsh=sha512\n' >>"$dir/unknown-key.conf"
	line=$(grep -n '^Hsh=' "$dir/unknown-key.conf" | cut -d: -f1)
	check_config_fails "$dir/unknown-key.conf" "unknown key" "$dir/unknown-key.conf:$line:" "Hsh"

	step "an unknown section: FILE:LINE named"
	cp "$conf" "$dir/unknown-section.conf"
	printf '[Signnig]\nHash=sha512\n' >>"$dir/unknown-section.conf"
	line=$(grep -n '^Hash=sha512' "$dir/unknown-section.conf" | cut -d: -f1)
	check_config_fails "$dir/unknown-section.conf" "unknown section" "$dir/unknown-section.conf:$line:" "Signnig"

	step "a bad value (Hash=md5): FILE:LINE named"
	sed 's/^Hash=sha256$/Hash=md5/' "$conf" >"$dir/md5.conf"
	line=$(grep -n '^Hash=md5' "$dir/md5.conf" | cut -d: -f1)
	check_config_fails "$dir/md5.conf" "Hash=md5" "$dir/md5.conf:$line:" "md5"

	step "a bad value in a drop-in: the drop-in's FILE:LINE named"
	mkdir -p "$conf.d"
	printf '[Daemon]\nWorkers=many\n' >"$conf.d/50-bad.conf"
	check_config_fails "$conf" "Workers=many in a drop-in" "$conf.d/50-bad.conf:2:" "Workers"
	rm -rf "$conf.d"

	step "a key file with mode 0644: refused, the file named"
	cp -p "$(key_of a)" "$dir/k644.key"
	chmod 0644 "$dir/k644.key"
	sed "s|^PrivateKey=.*|PrivateKey=$dir/k644.key|" "$conf" >"$dir/k644.conf"
	check_config_fails "$dir/k644.conf" "key mode 0644" "$dir/k644.key"

	step "a symlinked key file: refused, the link named"
	ln -s "$(key_of a)" "$dir/link.key"
	sed "s|^PrivateKey=.*|PrivateKey=$dir/link.key|" "$conf" >"$dir/link.conf"
	check_config_fails "$dir/link.conf" "symlinked key" "$dir/link.key" "symlink"

	step "a key file owned by another user: refused, the file named"
	cp -p "$(key_of a)" "$dir/nobody.key"
	chown 65534:65534 "$dir/nobody.key"
	sed "s|^PrivateKey=.*|PrivateKey=$dir/nobody.key|" "$conf" >"$dir/nobody.conf"
	check_config_fails "$dir/nobody.conf" "key owned by nobody" "$dir/nobody.key" "root"
}
run_case "modsignd --check-config" case_check_config

finish
