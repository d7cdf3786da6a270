# shellcheck shell=bash
# Shared helpers for the modsignd daemon tests (tests/daemon/test-*.sh).
#
# Sourced by each test after it has set $srcdir:
#
#     srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
#     . "$srcdir/tests/daemon/lib.sh"
#
# It sources tests/integration/lib.sh (keys, the real module, run_case, assertions) and adds
# what a daemon needs: a scratch module tree, a configuration, the daemon run the way systemd
# runs it (systemd-socket-activate with a notify socket and a watchdog), bounded waits, and
# counts of what the daemon logged.
#
# Environment (besides the integration lib's):
#   MODSIGND                the daemon under test (default: $top_builddir/modsignd)
#   top_builddir            the build tree (default: the current directory)
#   MODSIGN_DAEMON_TIMEOUT  the bound, in seconds, of an ordinary wait (default 30)
#
# Every process a test starts in the background is recorded under $WORKDIR/.pids and ended,
# by its pid, when the test exits, whatever the way; so is every daemon.

: "${srcdir:?srcdir must be set before sourcing tests/daemon/lib.sh}"
# shellcheck source=SCRIPTDIR/../integration/lib.sh
. "$srcdir/tests/integration/lib.sh"

top_builddir=${top_builddir:-$PWD}
MODSIGND=${MODSIGND:-$top_builddir/modsignd}
DAEMON_TIMEOUT=${MODSIGN_DAEMON_TIMEOUT:-30}
# Shared by every daemon test of the machine: see daemon_start.
DAEMON_LOCK=${TMPDIR:-/tmp}/modsignd-daemon-tests.lock
DAEMON_LOCK_FD=

DAEMON_DIR=
DAEMON_CONF=
DAEMON_SOCKET=
DAEMON_LOG=
NOTIFY_SOCK=
NOTIFY_LOG=
DAEMON_PID=
NOTIFY_PID=

# ---------------------------------------------------------------------------
# Setup, cleanup and requirements
# ---------------------------------------------------------------------------

# daemon_setup_workdir: the integration lib's work directory, with a cleanup that first
# ends every daemon and background process of the test and runs the registered undo commands.
daemon_setup_workdir() {
	setup_workdir
	mkdir -p "$WORKDIR/.pids" "$WORKDIR/bin"
	: >"$WORKDIR/.undo"
	# The daemon runs as root and must be able to reach everything; the non-root client of
	# the socket test must be able to traverse to the socket.
	chmod 0711 "$WORKDIR"
	trap _daemon_cleanup EXIT
}

# register_pid PID: end PID (TERM, then KILL) when the test exits.
register_pid() {
	printf '%s\n' "$1" >"$WORKDIR/.pids/$1"
}

unregister_pid() {
	rm -f "$WORKDIR/.pids/$1"
}

# on_exit COMMAND ARGS...: run the command when the test exits (last registered, first run).
on_exit() {
	local q
	printf -v q '%q ' "$@"
	printf '%s\n' "$q" >>"$WORKDIR/.undo"
}

_pid_alive() {
	kill -0 "$1" 2>/dev/null
}

_daemon_cleanup() {
	local rc=$? f pid i line
	trap - EXIT ERR
	set +e
	if [ -n "$WORKDIR" ] && [ -d "$WORKDIR/.pids" ]; then
		for f in "$WORKDIR"/.pids/*; do
			[ -f "$f" ] || continue
			pid=$(cat "$f")
			if _pid_alive "$pid"; then
				say "(cleanup: ending leftover process $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-100))"
				kill -TERM "$pid" 2>/dev/null
				kill -CONT "$pid" 2>/dev/null # a daemon held with SIGSTOP
			fi
		done
		for f in "$WORKDIR"/.pids/*; do
			[ -f "$f" ] || continue
			pid=$(cat "$f")
			for i in $(seq 100); do
				_pid_alive "$pid" || break
				[ "$i" -lt 100 ] || kill -KILL "$pid" 2>/dev/null
				sleep 0.05
			done
		done
		# the wrappers write each daemon's exit status: let them finish before removing
		for f in "$WORKDIR"/*/daemon.pid; do
			[ -f "$f" ] || continue
			for i in $(seq 40); do
				[ ! -e "${f%/daemon.pid}/exit" ] || break
				sleep 0.05
			done
		done
	fi
	if [ -n "$WORKDIR" ] && [ -s "$WORKDIR/.undo" ]; then
		tac "$WORKDIR/.undo" | while IFS= read -r line; do
			eval "$line" || say "(cleanup: '$line' failed)"
		done
	fi
	remove_workdir "$rc"
	exit "$rc"
}

# daemon_require: what every daemon test needs; sets KVER (an installed kernel release whose
# headers are here) and MODSIGND.
daemon_require() {
	require_cmd systemd-socket-activate gcc openssl stat timeout readelf objcopy split tac modinfo flock
	[ "$(id -u)" -eq 0 ] || skip_test "the daemon tests run as root (key files must be root-owned)"
	require_kernel_headers
	[ -d "/lib/modules/$KVER" ] ||
		skip_test "/lib/modules/$KVER does not exist (the daemon signs only for installed kernels)"
	require_modsignctl
	if [ ! -x "$MODSIGND" ]; then
		fail "modsignd not found or not executable at '$MODSIGND'" "build it first, or set MODSIGND"
	fi
	say "$TEST_NAME: modsignd = $MODSIGND, kernel release $KVER"
}

# daemon_helper NAME: set HELPER to the test helper tests/daemon/NAME: the one `make check`
# built, or else (running a script by hand) compiled here from its source.
daemon_helper() {
	local name=$1 src=$srcdir/tests/daemon/$1.c built=$top_builddir/tests/daemon/$1 out
	if [ -x "$built" ] && [ ! "$src" -nt "$built" ]; then
		HELPER=$built
		return 0
	fi
	out=$WORKDIR/bin/$name
	if [ ! -x "$out" ]; then
		if [ ! -f "$top_builddir/libmodsign.a" ] || [ ! -f "$top_builddir/libshared.a" ]; then
			fail "cannot build $name: $top_builddir/libmodsign.a is missing (run make first)"
		fi
		gcc -O2 -Wall -Wextra -I"$srcdir/src/lib" -I"$srcdir/src/shared" -o "$out" "$src" \
			"$top_builddir/libmodsign.a" "$top_builddir/libshared.a" >"$WORKDIR/bin/$name.log" 2>&1 || {
			show_file "$WORKDIR/bin/$name.log"
			fail "cannot build the test helper $src"
		}
		step "built the test helper $out (not built by make check)"
	fi
	HELPER=$out
}

# ---------------------------------------------------------------------------
# Time and bounded waits
# ---------------------------------------------------------------------------

# now_ms: milliseconds since the epoch, into NOW_MS (no fork).
now_ms() {
	local t=${EPOCHREALTIME/[.,]/}
	NOW_MS=$((10#$t / 1000))
}

# poll_until SECONDS CMD...: run CMD every 50 ms until it succeeds (0) or SECONDS pass (1).
poll_until() {
	local limit=$1 deadline
	shift
	now_ms
	deadline=$((NOW_MS + limit * 1000))
	until "$@"; do
		now_ms
		[ "$NOW_MS" -lt "$deadline" ] || return 1
		if [ -n "$DAEMON_DIR" ] && [ -e "$DAEMON_DIR/exit" ] && [ "${EXPECT_DAEMON_EXIT:-0}" != 1 ]; then
			return 2
		fi
		sleep 0.05
	done
	return 0
}

# wait_until SECONDS WHAT CMD...: poll_until, failing the case with WHAT when the time is up
# (or the daemon died meanwhile).
wait_until() {
	local limit=$1 what=$2 rc=0 t0
	shift 2
	now_ms
	t0=$NOW_MS
	poll_until "$limit" "$@" || rc=$?
	now_ms
	case $rc in
	0) ;;
	2)
		say "    FAIL: the daemon exited (status $(cat "$DAEMON_DIR/exit")) while waiting for $what"
		daemon_show_log
		exit 1
		;;
	*)
		say "    FAIL: timed out after $limit s waiting for $what"
		daemon_show_log
		exit 1
		;;
	esac
	WAITED_MS=$((NOW_MS - t0))
}

# ---------------------------------------------------------------------------
# Modules and trees
# ---------------------------------------------------------------------------

# make_tree ROOT: ROOT/lib/modules/$KVER/updates; sets TREE_ROOT (the lib/modules directory
# to watch) and UPD (the updates directory).
make_tree() {
	TREE_ROOT=$1/lib/modules
	UPD=$TREE_ROOT/$KVER/updates
	mkdir -p "$UPD"
}

# make_small_module OUT [NAME]: a tiny relocatable object whose .modinfo says name and the
# installed release's vermagic: the daemon takes it for a module (gcc -c, no kernel build).
make_small_module() {
	local out=$1 name=${2:-x} c=$WORKDIR/small-$$-$RANDOM.c
	cat >"$c" <<EOF
static const char __attribute__((section(".modinfo"), used, aligned(1))) modinfo[] =
	"name=$name\\0vermagic=$KVER SMP mod_unload modversions \\0license=GPL\\0";
int ${name}_init(void);
int ${name}_init(void) { return 0; }
EOF
	gcc -c -O2 -o "$out" "$c" || fail "gcc could not build the synthetic module $out"
	rm -f "$c"
	[ "$(modinfo -F vermagic "$out" 2>/dev/null | cut -d' ' -f1)" = "$KVER" ] ||
		fail "the synthetic module $out has no usable vermagic"
}

# make_key_root TYPE NAME: make_key, then the mode and owner the daemon insists on.
make_key_root() {
	make_key "$1" "$2"
	chown root:root "$(key_of "$2")"
	chmod 0600 "$(key_of "$2")"
}

# ---------------------------------------------------------------------------
# The daemon
# ---------------------------------------------------------------------------

# daemon_config DIR KEYNAME WATCH... : write DIR/modsignd.conf for key KEYNAME (make_key)
# watching only the given trees, Socket=DIR/own.socket, Hash=sha256, 2 workers. More
# sections may be appended to $DAEMON_CONF afterwards.
# The policy is Mode=allowlist, Allow=* and RateLimit=off: these tests are about the daemon's
# machinery (arrivals, the socket, reloads), and their scratch modules come from no DKMS
# package. The gate's own rules are tested in test-daemon-policy.sh; the DKMS test sets
# Mode=dkms (the default) again, for the real dkms builds. (A later [Policy] section's
# Allow= with an empty value clears the list.)
daemon_config() {
	local dir=$1 key=$2 p
	shift 2
	mkdir -p "$dir"
	DAEMON_DIR=$dir
	DAEMON_CONF=$dir/modsignd.conf
	{
		printf '# written by %s\n' "$TEST_NAME"
		printf '[Key]\nPrivateKey=%s\nCertificate=%s\n' "$(key_of "$key")" "$(cert_of "$key")"
		printf '[Signing]\nHash=sha256\n'
		printf '[Watch]\nPath=\n'
		for p in "$@"; do
			printf 'Path=%s\n' "$p"
		done
		printf '[Policy]\nMode=allowlist\nAllow=*\nRateLimit=off\n'
		printf '[Daemon]\nSocket=%s\nStateDirectory=%s\nWorkers=2\n' "$dir/own.socket" "$dir/state"
	} >"$DAEMON_CONF"
}

# daemon_start [activate|direct] [WATCHDOG_USEC]: start the daemon of $DAEMON_DIR.
#   activate: as systemd does with modsignd.socket: systemd-socket-activate --seqpacket
#             listens on DIR/activated.socket and starts the daemon on the first connection
#             (which we make: a `modsignctl status`), with NOTIFY_SOCKET and WATCHDOG_USEC.
#   direct:   no socket activation: the daemon makes Socket= (DIR/own.socket) itself.
# DAEMON_ENV="VAR=VALUE ..." adds to the daemon's environment (stand-ins for the kernel, such
# as MODSIGNCTL_PROC_KEYS; values without blanks).
# Waits (bounded) for READY=1. Sets DAEMON_PID, DAEMON_SOCKET, DAEMON_LOG, NOTIFY_LOG.
# Holds $DAEMON_LOCK shared until then, unless DAEMON_START_LOCKED=1 (the caller holds it,
# on $DAEMON_LOCK_FD).
daemon_start() {
	local mode=${1:-activate} wd=${2:-1000000} dir=$DAEMON_DIR
	if [ -z "$dir" ] || [ ! -f "$DAEMON_CONF" ]; then
		fail "daemon_start: no daemon_config yet"
	fi
	NOTIFY_SOCK=$dir/notify.socket
	NOTIFY_LOG=$dir/notify.log
	DAEMON_LOG=$dir/daemon.log
	rm -f "$dir/exit" "$dir/daemon.pid" "$NOTIFY_SOCK"
	: >>"$NOTIFY_LOG"
	: >>"$DAEMON_LOG"

	# test-daemon-overflow lowers fs.inotify.max_queued_events while its daemon starts; a
	# daemon of another test (make -j check) must not make its inotify instance meanwhile.
	# (The lock's descriptor is closed for the processes started here: they would hold it.)
	if [ "${DAEMON_START_LOCKED:-0}" != 1 ]; then
		exec {DAEMON_LOCK_FD}>>"$DAEMON_LOCK"
		flock -s -w 60 "$DAEMON_LOCK_FD" || fail "cannot take $DAEMON_LOCK"
	fi

	daemon_helper notify-recv
	"$HELPER" "$NOTIFY_SOCK" >>"$NOTIFY_LOG" 2>>"$dir/notify.err" {DAEMON_LOCK_FD}>&- &
	NOTIFY_PID=$!
	register_pid "$NOTIFY_PID"
	EXPECT_DAEMON_EXIT=1 wait_until 5 "the notify listener's socket $NOTIFY_SOCK" test -S "$NOTIFY_SOCK"

	# A wrapper records the exit status; the daemon's pid is the one `sh` writes before it
	# execs (systemd-socket-activate execs the daemon in place, without --accept).
	local -a cmd extra_env=() extra_args=()
	local e
	for e in ${DAEMON_ENV:-}; do
		extra_env+=("$e")
		extra_args+=(-E "$e")
	done
	if [ "$mode" = activate ]; then
		DAEMON_SOCKET=$dir/activated.socket
		rm -f "$DAEMON_SOCKET"
		cmd=(systemd-socket-activate --seqpacket -l "$DAEMON_SOCKET"
			-E "NOTIFY_SOCKET=$NOTIFY_SOCK" -E "WATCHDOG_USEC=$wd" "${extra_args[@]}"
			"$MODSIGND" --config "$DAEMON_CONF")
	else
		DAEMON_SOCKET=$dir/own.socket
		cmd=(env "NOTIFY_SOCKET=$NOTIFY_SOCK" "WATCHDOG_USEC=$wd" "${extra_env[@]}" "$MODSIGND" --config "$DAEMON_CONF")
	fi
	# shellcheck disable=SC2016 # $$, $0 and $@ are the inner sh's
	(
		rc=0
		env -u JOURNAL_STREAM -u LISTEN_FDS -u LISTEN_PID -u LISTEN_FDNAMES -u NOTIFY_SOCKET \
			-u WATCHDOG_USEC -u WATCHDOG_PID \
			sh -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$dir/daemon.pid" "${cmd[@]}" \
			</dev/null >>"$DAEMON_LOG" 2>&1 || rc=$?
		echo "$rc" >"$dir/exit.tmp"
		mv "$dir/exit.tmp" "$dir/exit"
	) {DAEMON_LOCK_FD}>&- &
	EXPECT_DAEMON_EXIT=1 wait_until 5 "the daemon's pid file" test -s "$dir/daemon.pid"
	DAEMON_PID=$(cat "$dir/daemon.pid")
	register_pid "$DAEMON_PID"

	if [ "$mode" = activate ]; then
		wait_until 10 "systemd-socket-activate to listen on $DAEMON_SOCKET" test -S "$DAEMON_SOCKET"
		# The first connection makes systemd-socket-activate exec the daemon; the request
		# waits in the socket until the daemon answers it.
		run_cmd timeout 30 "$MODSIGNCTL" --socket "$DAEMON_SOCKET" status
		if [ "$LAST_RC" -ne 0 ]; then
			say "    FAIL: the first request on the activated socket got no answer"
			_report_last
			daemon_show_log
			exit 1
		fi
	fi
	wait_until "$DAEMON_TIMEOUT" "READY=1 from the daemon" notify_has READY=1
	if [ "${DAEMON_START_LOCKED:-0}" != 1 ]; then
		exec {DAEMON_LOCK_FD}>&-
	fi
	step "daemon pid $DAEMON_PID ready ($mode, socket $DAEMON_SOCKET) after $WAITED_MS ms more"
}

# daemon_signal SIG: send SIG to the daemon.
daemon_signal() {
	kill "-$1" "$DAEMON_PID" || fail "cannot send SIG$1 to the daemon (pid $DAEMON_PID)"
}

# daemon_wait_exit SECONDS: wait for the daemon to exit; sets DAEMON_EXIT.
daemon_wait_exit() {
	EXPECT_DAEMON_EXIT=1 wait_until "$1" "the daemon (pid $DAEMON_PID) to exit" test -e "$DAEMON_DIR/exit"
	DAEMON_EXIT=$(cat "$DAEMON_DIR/exit")
	unregister_pid "$DAEMON_PID"
}

# daemon_stop [SECONDS]: SIGTERM; the daemon must exit 0 within SECONDS (default 20) and
# have sent STOPPING=1. Ends the notify listener too.
daemon_stop() {
	local limit=${1:-20} t0
	now_ms
	t0=$NOW_MS
	daemon_signal TERM
	daemon_wait_exit "$limit"
	now_ms
	if [ "$DAEMON_EXIT" -ne 0 ]; then
		say "    FAIL: the daemon exited with status $DAEMON_EXIT after SIGTERM (expected 0)"
		daemon_show_log
		exit 1
	fi
	ok "daemon exited 0 $((NOW_MS - t0)) ms after SIGTERM"
	EXPECT_DAEMON_EXIT=1 wait_until 5 "STOPPING=1 on the notify socket" notify_has STOPPING=1
	ok "STOPPING=1 was sent"
	notify_stop
}

# notify_stop: end the notify listener.
notify_stop() {
	if [ -n "$NOTIFY_PID" ]; then
		kill -TERM "$NOTIFY_PID" 2>/dev/null || true
		wait "$NOTIFY_PID" 2>/dev/null || true
		unregister_pid "$NOTIFY_PID"
		NOTIFY_PID=
	fi
}

# daemon_show_log: the tail of the daemon's log, for a failure report.
daemon_show_log() {
	if [ -z "$DAEMON_LOG" ] || [ ! -f "$DAEMON_LOG" ]; then
		return 0
	fi
	say "          daemon log ($DAEMON_LOG), last 25 lines:"
	tail -n 25 "$DAEMON_LOG" | sed 's/^/          | /'
}

# ctl ARGS...: modsignctl talking to the daemon under test (run_cmd semantics).
ctl() {
	run_cmd "$MODSIGNCTL" --socket "$DAEMON_SOCKET" "$@"
}

# daemon_status_json: `modsignctl --json status` into $WORKDIR/status.json; fails if no answer.
daemon_status_json() {
	ctl --json status
	if [ "$LAST_RC" -ne 0 ]; then
		say "    FAIL: modsignctl --json status did not answer"
		_report_last
		daemon_show_log
		exit 1
	fi
	cp "$LAST_OUT" "$WORKDIR/status.json"
}

# json_int FILE KEY: an integer member of the (pretty-printed) JSON object in FILE.
json_int() {
	sed -n "s/^ *\"$2\": *\\(-\\{0,1\\}[0-9][0-9]*\\).*/\\1/p" "$1" | head -n 1
}

# ---------------------------------------------------------------------------
# What the daemon said
# ---------------------------------------------------------------------------

# notify_has LINE: the notify log has LINE (a whole line).
notify_has() {
	grep -qxF -- "$1" "$NOTIFY_LOG"
}

# notify_count LINE: how many times LINE was sent.
notify_count() {
	grep -cxF -- "$1" "$NOTIFY_LOG" || true
}

# notify_lines: how many lines the notify log has (a mark for notify_since).
notify_lines() {
	wc -l <"$NOTIFY_LOG"
}

# notify_since MARK: the lines after MARK.
notify_since() {
	tail -n "+$(($1 + 1))" "$NOTIFY_LOG"
}

# notify_has_since MARK LINE: LINE was sent after MARK.
notify_has_since() {
	notify_since "$1" | grep -qxF -- "$2"
}

# notify_sequence_since MARK FIRST THEN: FIRST was sent after MARK, and THEN after FIRST.
notify_sequence_since() {
	notify_since "$1" | awk -v a="$2" -v b="$3" '$0 == a { seen = 1 } seen && $0 == b { found = 1 } END { exit !found }'
}

# notify_count_since MARK LINE
notify_count_since() {
	notify_since "$1" | grep -cxF -- "$2" || true
}

# signed_count PATH: how many times the daemon logged "signed PATH (...)".
signed_count() {
	grep -cF -- "modsignd: signed $1 (" "$DAEMON_LOG" || true
}

# log_has TEXT: the daemon's log contains TEXT (fixed string).
log_has() {
	grep -qF -- "$1" "$DAEMON_LOG"
}

# signed_count_is PATH N
signed_count_is() {
	[ "$(signed_count "$1")" -eq "$2" ]
}

# signed_at_least PATH N
signed_at_least() {
	[ "$(signed_count "$1")" -ge "$2" ]
}

# total_signed: every "signed" line of the tree watcher.
total_signed() {
	grep -c '^modsignd: signed /' "$DAEMON_LOG" || true
}

total_signed_at_least() {
	[ "$(total_signed)" -ge "$1" ]
}

# wait_signed PATH [N]: wait (bounded) until the daemon logged at least N (default 1)
# signatures of PATH.
wait_signed() {
	wait_until "$DAEMON_TIMEOUT" "the daemon to sign $1" signed_at_least "$1" "${2:-1}"
}

# ---------------------------------------------------------------------------
# Assertions about modules
# ---------------------------------------------------------------------------

# assert_verifies CERT MODULE...: modsignctl verify --cert CERT accepts every module.
assert_verifies() {
	local cert=$1
	shift
	run_cmd "$MODSIGNCTL" verify --cert "$cert" "$@"
	if [ "$LAST_RC" -ne 0 ]; then
		say "    FAIL: modsignctl verify --cert $cert rejects (exit $LAST_RC) some of: $*"
		_report_last
		exit 1
	fi
}

# assert_one_signature MODULE: modsignctl info says "signed: yes" (not stacked).
assert_one_signature() {
	run_cmd "$MODSIGNCTL" info "$1"
	if [ "$LAST_RC" -ne 0 ] || ! grep -qE '^signed: +yes$' "$LAST_OUT"; then
		say "    FAIL: $1 does not carry exactly one signature"
		_report_last
		exit 1
	fi
}

# assert_signed_once PATH CERT [N]: the daemon logged exactly N (default 1) signatures of
# PATH, the module verifies with CERT, and it carries one signature.
assert_signed_once() {
	local path=$1 cert=$2 n=${3:-1} have
	have=$(signed_count "$path")
	if [ "$have" -ne "$n" ]; then
		say "    FAIL: the daemon logged $have signatures of $path, expected $n"
		grep -F -- "$path" "$DAEMON_LOG" | sed 's/^/          | /' | head -n 10
		exit 1
	fi
	assert_verifies "$cert" "$path"
	assert_one_signature "$path"
	ok "$path: signed $n time(s) by the daemon, verifies with $(basename "$cert"), one signature"
}

# daemon_is_idle: the daemon answers STATUS and has nothing queued or running.
daemon_is_idle() {
	run_cmd "$MODSIGNCTL" --socket "$DAEMON_SOCKET" --json status
	[ "$LAST_RC" -eq 0 ] && [ "$(json_int "$LAST_OUT" queued)" = 0 ]
}

# wait_idle: wait until the daemon has no module queued or being looked at.
wait_idle() {
	wait_until "$DAEMON_TIMEOUT" "the daemon to be idle (0 queued)" daemon_is_idle
}

# assert_daemon_alive: the same daemon (pid) still answers STATUS.
assert_daemon_alive() {
	local pid
	daemon_status_json
	pid=$(json_int "$WORKDIR/status.json" pid)
	[ "$pid" = "$DAEMON_PID" ] || fail "status answered with pid '$pid', expected the daemon's $DAEMON_PID"
	ok "the daemon (pid $DAEMON_PID) is alive and answers"
}
