#!/bin/bash
# The inotify queue overflows: with fs.inotify.max_queued_events lowered (for the daemon's
# inotify instance only: it is restored as soon as the daemon is up, and again at exit), 2000
# modules dropped at once (the daemon held with SIGSTOP meanwhile, so that the overflow does
# not depend on the machine's speed) overflow the queue; the daemon must log the overflow,
# look at every tree again, and within a deadline every one of the 2000 modules must verify
# with its certificate, each signed once, none stacked.
# Skipped (77) when /proc/sys is read-only (a container without the sysctl).
# shellcheck disable=SC2317 # the case functions are called through run_case
set -eu
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=SCRIPTDIR/lib.sh
. "$srcdir/tests/daemon/lib.sh"

N=${MODSIGN_OVERFLOW_MODULES:-2000}
QUEUE=64
SYSCTL=/proc/sys/fs/inotify/max_queued_events

daemon_setup_workdir
daemon_require
ORIG_QUEUE=$(cat "$SYSCTL" 2>/dev/null) || skip_test "$SYSCTL cannot be read"
# Writing the value it already has tells whether we may change it.
{ printf '%s\n' "$ORIG_QUEUE" >"$SYSCTL"; } 2>/dev/null || skip_test "$SYSCTL is read-only here (no sysctl in this container)"
restore_queue() {
	printf '%s\n' "$ORIG_QUEUE" >"$SYSCTL"
}
on_exit restore_queue

make_key_root rsa2048 a
CERT=$(cert_of a)
make_tree "$WORKDIR/root"
mkdir -p "$UPD/burst"

step "making $N small modules in a staging directory (one gcc -c, then split)"
STAGE=$(mktemp -d /dev/shm/modsign-overflow.XXXXXX 2>/dev/null) || STAGE=$WORKDIR/stage
mkdir -p "$STAGE"
case $STAGE in
/dev/shm/*) on_exit rm -rf "$STAGE" ;;
esac
make_small_module "$WORKDIR/small.ko" burst
SIZE=$(file_size "$WORKDIR/small.ko")
# N copies end to end, by doubling (forks are slow on some machines; 2000 cats are not needed)
cp "$WORKDIR/small.ko" "$STAGE/all.bin"
while [ "$(file_size "$STAGE/all.bin")" -lt $((N * SIZE)) ]; do
	cat "$STAGE/all.bin" "$STAGE/all.bin" >"$STAGE/all.bin.2"
	mv "$STAGE/all.bin.2" "$STAGE/all.bin"
done
truncate -s $((N * SIZE)) "$STAGE/all.bin"
mkdir "$STAGE/mods"
(cd "$STAGE/mods" && split -b "$SIZE" -d -a 5 --additional-suffix=.ko "$STAGE/all.bin" m)
rm -f "$STAGE/all.bin"
[ "$(find "$STAGE/mods" -name 'm*.ko' | wc -l)" -eq "$N" ] || fail "split did not make $N modules"
cmp -s "$WORKDIR/small.ko" "$STAGE/mods/m00000.ko" || fail "the split modules are not copies of the module"
ok "$N modules of $SIZE bytes in $STAGE/mods"

daemon_config "$WORKDIR/d" a "$TREE_ROOT"
step "fs.inotify.max_queued_events: $ORIG_QUEUE -> $QUEUE for the daemon's inotify instance"
# Exclusively: no other daemon test starts its daemon (makes its inotify instance) meanwhile.
exec {DAEMON_LOCK_FD}>>"$DAEMON_LOCK"
flock -x -w 120 "$DAEMON_LOCK_FD" || fail "cannot take $DAEMON_LOCK"
printf '%s\n' "$QUEUE" >"$SYSCTL"
DAEMON_START_LOCKED=1 daemon_start activate
printf '%s\n' "$ORIG_QUEUE" >"$SYSCTL"
exec {DAEMON_LOCK_FD}>&-
ok "restored to $ORIG_QUEUE (the daemon's instance keeps $QUEUE)"

burst_signed_paths() {
	grep -o "^modsignd: signed $UPD/burst/[^ ]*" "$DAEMON_LOG" | sort -u | wc -l
}
all_burst_signed() {
	[ "$(burst_signed_paths)" -ge "$N" ]
}

case_overflow() {
	local t0 dups
	# A daemon that reads its events fast enough never overflows even a short queue: it is
	# stopped (SIGSTOP) while the modules land, as a busy machine would hold it up, so that
	# the overflow is certain; its queue holds $QUEUE events, the copy makes about $((2 * N)).
	step "SIGSTOP the daemon; cp -r: $N modules into the watched updates/burst/ at once; SIGCONT"
	daemon_signal STOP
	now_ms
	t0=$NOW_MS
	cp -r "$STAGE/mods/." "$UPD/burst/" || {
		daemon_signal CONT
		fail "cp failed"
	}
	daemon_signal CONT
	now_ms
	ok "copied in $((NOW_MS - t0)) ms"
	step "the daemon logs the overflow and rescans"
	wait_until 30 "the overflow to be logged" log_has "inotify queue overflowed: looking at every module tree again"
	ok "logged: $(grep -m1 -F 'inotify queue overflowed' "$DAEMON_LOG")"
	step "within 90 s all $N are signed"
	wait_until 90 "all $N modules to be signed ($(burst_signed_paths) so far)" all_burst_signed
	now_ms
	ok "all $N signed $((NOW_MS - t0)) ms after the copy began"
	wait_idle
	step "all $N verify with the daemon's certificate"
	assert_verifies "$CERT" "$UPD"/burst/*.ko
	ok "modsignctl verify accepts all $N"
	step "each was signed once, and carries one signature (a sample of 50)"
	dups=$(grep -o "^modsignd: signed $UPD/burst/[^ ]*" "$DAEMON_LOG" | sort | uniq -d | wc -l)
	[ "$dups" -eq 0 ] || fail "$dups modules were signed more than once: $(grep -o "^modsignd: signed $UPD/burst/[^ ]*" "$DAEMON_LOG" | sort | uniq -d | head -n 3 | tr '\n' ' ')"
	for i in $(seq 0 $((N / 50)) $((N - 1))); do
		assert_one_signature "$(printf '%s/burst/m%05d.ko' "$UPD" "$i")"
	done
	ok "no module signed twice; the sample has one signature each"
	[ -z "$(find "$UPD" -name '.#*' -print -quit)" ] || fail "temporary files left in the tree"
	ok "no temporary files left"
	assert_daemon_alive
}
run_case "inotify queue overflow: rescan, all $N signed" case_overflow

case_stop() {
	daemon_stop 20
}
run_case "SIGTERM: exit 0" case_stop

finish
