#!/bin/bash
# vmtest.sh: the guest half of tests/vm/run-vm-test.sh. It runs as modsignd-vmtest.service under
# a real systemd (PID 1) in a Debian 12 VM, drives modsignd through systemctl, the socket and the
# module tree as an administrator and DKMS would, and prints exactly one line
#   VMTEST RESULT PASS          or
#   VMTEST RESULT FAIL <reasons>
# to /dev/console (the serial port the host reads), then powers the machine off.
#
# Every check runs, failed or not, so one boot reports every problem. Every wait is bounded.
# Progress lines start with "vmtest:"; on failure the service's status and journal follow.
set -u
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export SYSTEMD_PAGER='' SYSTEMD_COLORS=0 LC_ALL=C.UTF-8

MSGID_SIGNED=1f56f1a845014201b36522015b162f77
MSGID_RELOADED=fe5fe4de18be4cad979c5f1e46cb7257
MSGID_AUDIT_HEAD=5b5b707b6d9d437aaef30de27773db8d
here=/usr/lib/modsignd-vmtest
cert=/etc/modsignd/signing.crt
rel=$(uname -r)
dkms_dir=/lib/modules/$rel/updates/dkms
fails=()

say() {
	echo "vmtest: $*" >/dev/console 2>/dev/null || echo "vmtest: $*"
}

fail() {
	fails+=("$1")
	say "FAIL: $1"
}

# The first word of "systemctl is-active" etc. (they exit non-zero for inactive: not an error).
unit_state() {
	timeout 20 systemctl "$1" "$2" 2>/dev/null | head -n 1
}

prop() {
	timeout 20 systemctl show -p "$2" --value "$1" 2>/dev/null
}

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.2 s until it succeeds.
wait_for() {
	local secs=$1 what=$2 deadline
	shift 2
	deadline=$(($(date +%s) + secs))
	while ! "$@"; do
		if [ "$(date +%s)" -ge "$deadline" ]; then
			fail "$what (waited ${secs}s)"
			return 1
		fi
		sleep 0.2
	done
	return 0
}

is_state() { # UNIT STATE
	[ "$(unit_state is-active "$1")" = "$2" ]
}

verifies() { # MODULE: signed by our key, as modsignctl sees it
	timeout 20 modsignctl verify --cert "$cert" "$1" >/dev/null 2>&1
}

# journal_has MESSAGE_ID [MODULE]: a record of modsignd.service in `journalctl -o verbose` with
# that MESSAGE_ID (and MODSIGND_MODULE=MODULE) in the same record.
journal_has() {
	timeout 20 journalctl -u modsignd -o verbose --no-pager 2>/dev/null |
		awk -v id="MESSAGE_ID=$1" -v mod="${2:+MODSIGND_MODULE=$2}" '
			BEGIN { b = (mod == "") }
			/^[^ \t]/ { if (a && b) found = 1; a = 0; b = (mod == ""); next }
			{ sub(/^[ \t]+/, "") }
			$0 == id { a = 1 }
			mod != "" && $0 == mod { b = 1 }
			END { if (a && b) found = 1; exit !found }'
}

drop_module() { # NAME: as DKMS installs one: into updates/dkms, made on the spot if missing
	mkdir -p "$dkms_dir" && install -m 0644 "$here/$1.ko" "$dkms_dir/$1.ko"
}

say "start at uptime $(cut -d' ' -f1 /proc/uptime) s, kernel $rel, $(systemctl --version | head -n 1)"

# --- what is installed ------------------------------------------------------------------------
if ldd /usr/sbin/modsignd /usr/bin/modsignctl 2>&1 | grep -q 'not found'; then
	fail "shared libraries missing in the guest: $(ldd /usr/sbin/modsignd /usr/bin/modsignctl 2>&1 | grep 'not found' | tr -s ' \t\n' ' ')"
fi
if ! timeout 60 journalctl --update-catalog; then
	fail "journalctl --update-catalog failed on modsignd.catalog"
elif ! timeout 20 journalctl --list-catalog "$MSGID_SIGNED" 2>/dev/null | grep -q "$MSGID_SIGNED"; then
	fail "the catalog has no entry $MSGID_SIGNED after --update-catalog"
fi
# Regression test: this failed while the unit had ExecReload=/bin/kill, from procps, which a
# minimal Debian (debootstrap minbase, containers) does not have; it now runs modsignctl reload.
if ! out=$(timeout 60 systemd-analyze verify --man=no modsignd.service modsignd.socket 2>&1); then
	fail "systemd-analyze verify: $(echo "$out" | tr -s '\n' ' ')"
fi
if ! timeout 20 systemctl enable modsignd.service >/dev/null 2>&1; then
	fail "systemctl enable modsignd.service failed"
elif [ "$(unit_state is-enabled modsignd.socket)" != enabled ]; then
	fail "enabling modsignd.service did not enable modsignd.socket (Also=)"
fi

# --- the socket, and activation through it -----------------------------------------------------
if ! timeout 30 systemctl start modsignd.socket; then
	fail "systemctl start modsignd.socket failed"
fi
[ "$(unit_state is-active modsignd.socket)" = active ] || fail "modsignd.socket is $(unit_state is-active modsignd.socket), not active"
if [ -S /run/modsignd/io.socket ]; then
	mode=$(stat -c '%a %U %G' /run/modsignd/io.socket)
	[ "$mode" = "600 root root" ] || fail "/run/modsignd/io.socket is $mode, not 600 root root"
else
	fail "/run/modsignd/io.socket is not a socket"
fi
state=$(unit_state is-active modsignd.service)
[ "$state" = inactive ] || fail "modsignd.service is $state before anyone connected (expected inactive)"

if ! out=$(timeout 30 modsignctl status 2>&1); then
	fail "modsignctl status (socket activation) failed: $(echo "$out" | tr -s '\n' ' ')"
fi
say "modsignctl status: $(echo "$out" | tr -s '\n' ' ')"
wait_for 20 "modsignd.service active after the first connection" is_state modsignd.service active
timeout 30 systemctl start modsignd.service || fail "systemctl start modsignd.service failed"
pid=$(prop modsignd.service MainPID)
if [ -z "$pid" ] || [ "$pid" = 0 ]; then
	fail "modsignd.service has no main PID"
fi
say "modsignd.service active, main PID $pid"
# WatchdogSec=30s: systemd stamps the watchdog when the service gets ready and again at each
# WATCHDOG=1 (not at reloads); sd-event sends one at the first loop wake-up 7.5 s after the last,
# or 15 to 22.5 s after it at the latest: the stamp must move before the stop below.
watchdog0=$(prop modsignd.service WatchdogTimestampMonotonic)

# --- the safety net: an unsigned module appears in updates/dkms --------------------------------
drop_module vmtest || fail "cannot install vmtest.ko into $dkms_dir"
if wait_for 60 "vmtest.ko signed in $dkms_dir" verifies "$dkms_dir/vmtest.ko"; then
	say "vmtest.ko signed at uptime $(cut -d' ' -f1 /proc/uptime) s"
fi
if wait_for 20 "a journal record with MESSAGE_ID=$MSGID_SIGNED and MODSIGND_MODULE=$dkms_dir/vmtest.ko" \
	journal_has "$MSGID_SIGNED" "$dkms_dir/vmtest.ko"; then
	# The catalog explains the record, with the module's name filled in.
	if ! timeout 20 journalctl -u modsignd -x --no-pager "MESSAGE_ID=$MSGID_SIGNED" 2>/dev/null |
		grep -q "Subject: Kernel module $dkms_dir/vmtest.ko signed"; then
		fail "journalctl -x does not show the catalog's Subject for the signed record"
	fi
fi
mode=$(stat -c '%a' /var/lib/modsignd 2>/dev/null || echo missing)
[ "$mode" = 700 ] || fail "StateDirectory /var/lib/modsignd is $mode, not 700"

# --- reload -----------------------------------------------------------------------------------
# Regression test: this failed (status=203/EXEC) while the unit reloaded with ExecReload=/bin/kill
# and procps was not installed (see systemd-analyze verify above).
if ! timeout 60 systemctl reload modsignd; then
	fail "systemctl reload modsignd failed: $(journalctl -u modsignd -n 3 -o cat --no-pager 2>/dev/null | tr -s '\n' ' ')"
	# The daemon's own reload (SIGHUP) is still tested below: send it the signal ExecReload= would.
	timeout 20 systemctl kill --kill-who=main -s HUP modsignd.service || fail "systemctl kill -s HUP modsignd failed"
fi
wait_for 20 "modsignd.service active after reload" is_state modsignd.service active
pid2=$(prop modsignd.service MainPID)
[ "$pid2" = "$pid" ] || fail "main PID changed across reload ($pid -> $pid2)"
wait_for 20 "a journal record with MESSAGE_ID=$MSGID_RELOADED (configuration reloaded)" journal_has "$MSGID_RELOADED"
# The reload watches the trees anew: a module that arrives afterwards is signed too.
drop_module vmtest2 || fail "cannot install vmtest2.ko into $dkms_dir"
wait_for 60 "vmtest2.ko (installed after the reload) signed" verifies "$dkms_dir/vmtest2.ko"

watchdog_pinged() {
	local t
	t=$(prop modsignd.service WatchdogTimestampMonotonic)
	[ -n "$t" ] && [ "$t" != 0 ] && [ "$t" != "$watchdog0" ]
}
if wait_for 20 "a WATCHDOG=1 from modsignd (WatchdogSec=30s)" watchdog_pinged; then
	say "watchdog stamp moved from $((watchdog0 / 1000)) ms to $(($(prop modsignd.service WatchdogTimestampMonotonic) / 1000)) ms (monotonic)"
fi
[ "$(prop modsignd.service MainPID)" = "$pid" ] || fail "main PID changed while the test ran ($pid -> $(prop modsignd.service MainPID))"

# --- the DKMS shim, called the way DKMS 3.0 calls it ------------------------------------------
# The drop-in, read the way DKMS reads it (sourced by bash), names the shim and a certificate.
if ! dropin=$(bash -c '. /etc/dkms/framework.conf.d/modsignd.conf && echo "$sign_file|$mok_signing_key|$mok_certificate"'); then
	fail "the DKMS drop-in does not source"
fi
IFS='|' read -r sign_file mok_key mok_cert <<<"$dropin"
if [ "$sign_file" != /usr/lib/modsignd/dkms-sign-file ] || [ ! -x "$sign_file" ]; then
	fail "the drop-in's sign_file is '$sign_file', not the installed shim"
fi
case $mok_key in pkcs11:*) ;; *) fail "the drop-in's mok_signing_key '$mok_key' would let DKMS make a key of its own" ;; esac
[ -f "$mok_cert" ] || fail "the drop-in's mok_certificate '$mok_cert' does not exist (DKMS would skip signing)"
# Where DKMS builds it: the package's build directory (the policy signs DKMS builds only).
build=/var/lib/dkms/vmtest/1.0/build
install -m 0644 "$here/vmtest3.ko" "$build/vmtest3.ko"
if ! out=$(timeout 60 "$sign_file" sha256 "$mok_key" "$mok_cert" "$build/vmtest3.ko" 2>&1); then
	fail "the DKMS shim failed: $(echo "$out" | tr -s '\n' ' ')"
fi
say "dkms-sign-file: $(echo "$out" | tr -s '\n' ' ')"
echo "$out" | grep -q "signed by modsignd" || fail "the shim did not sign through the daemon"
verifies "$build/vmtest3.ko" || fail "$build/vmtest3.ko is not signed by our key after the shim"
if ! out=$(timeout 60 modsignctl doctor 2>&1); then
	say "doctor (exit non-zero is expected here: no dkms in the guest, the kernel does not trust the test key):"
fi
while IFS= read -r line; do
	echo "vmtest: doctor | $line"
done <<<"$out" >/dev/console 2>&1
echo "$out" | grep -q '^\[ok  \] daemon' || fail "modsignctl doctor does not find the daemon healthy"
echo "$out" | grep -q '^\[ok  \] key' || fail "modsignctl doctor does not find the key healthy"

# --- stop -------------------------------------------------------------------------------------
timeout 120 systemctl stop modsignd.service 2>/dev/null || fail "systemctl stop modsignd failed"
state=$(unit_state is-active modsignd.service)
[ "$state" = inactive ] || fail "modsignd.service is $state after stop (expected inactive)"
status=$(prop modsignd.service ExecMainStatus)
code=$(prop modsignd.service ExecMainCode)
result=$(prop modsignd.service Result)
say "after stop: ExecMainCode=$code ExecMainStatus=$status Result=$result"
[ "$status" = 0 ] || fail "ExecMainStatus=$status after stop (expected 0)"
[ "$code" = 1 ] || fail "ExecMainCode=$code after stop (expected 1, exited)"
[ "$result" = success ] || fail "Result=$result after stop (expected success)"
# The socket outlives the service, so the next client starts it again.
[ "$(unit_state is-active modsignd.socket)" = active ] || fail "modsignd.socket is not active after stopping the service"
[ -S /run/modsignd/io.socket ] || fail "/run/modsignd/io.socket is gone after stopping the service"
if timeout 30 modsignctl status >/dev/null 2>&1; then
	wait_for 20 "modsignd.service active again after a connection following stop" is_state modsignd.service active
else
	fail "modsignctl status after stop did not start the service again"
fi
timeout 120 systemctl stop modsignd.service modsignd.socket 2>/dev/null || fail "final stop of service and socket failed"

# --- the audit log's head in the real journal -----------------------------------------------
# At stop the daemon writes the chain head (count and hash of the last record) to the journal,
# MESSAGE_ID=5b5b707b...: the log on disk must verify against the last such head.
head=$(timeout 20 journalctl -u modsignd -o verbose --no-pager "MESSAGE_ID=$MSGID_AUDIT_HEAD" 2>/dev/null |
	sed -n 's/^ *MODSIGND_AUDIT_HEAD=//p' | tail -n 1)
if [ -z "$head" ]; then
	fail "no audit head (MESSAGE_ID=$MSGID_AUDIT_HEAD, MODSIGND_AUDIT_HEAD=) in the journal"
elif ! out=$(timeout 60 modsignctl audit verify --head "$head" 2>&1); then
	fail "modsignctl audit verify --head $head: $(echo "$out" | tr -s '\n' ' ')"
else
	say "audit log verifies against the journal's head $head"
fi

# --- a kernel upgrade with no daemon: the postinst hook signs what DKMS left unsigned -----------
tree=/var/lib/dkms/vmtest/1.0/$rel/$(uname -m)/module
mkdir -p "$tree" && install -m 0644 "$here/vmtest4.ko" "$tree/vmtest4.ko"
drop_module vmtest4 || fail "cannot install vmtest4.ko into $dkms_dir"
if ! out=$(timeout 120 /etc/kernel/postinst.d/dkms-modsignd "$rel" "/boot/vmlinuz-$rel" 2>&1); then
	fail "/etc/kernel/postinst.d/dkms-modsignd failed: $(echo "$out" | tr -s '\n' ' ')"
fi
say "dkms-modsignd: $(echo "$out" | tr -s '\n' ' ')"
verifies "$tree/vmtest4.ko" || fail "the kernel hook left $tree/vmtest4.ko unsigned"
verifies "$dkms_dir/vmtest4.ko" || fail "the kernel hook left $dkms_dir/vmtest4.ko unsigned"

# --- the verdict ------------------------------------------------------------------------------
{
	if [ "${#fails[@]}" -gt 0 ]; then
		echo "---- systemctl status"
		timeout 20 systemctl status --no-pager -l modsignd.service modsignd.socket 2>&1
	fi
	echo "---- journalctl -u modsignd.service -u modsignd.socket (last 60)"
	timeout 20 journalctl --no-pager -o short-monotonic -u modsignd.service -u modsignd.socket 2>&1 | tail -n 60
	echo "----"
} | sed 's/^/vmtest: | /' >/dev/console 2>&1
say "end at uptime $(cut -d' ' -f1 /proc/uptime) s"
if [ "${#fails[@]}" -eq 0 ]; then
	line="VMTEST RESULT PASS"
else
	line="VMTEST RESULT FAIL $(printf '%s; ' "${fails[@]}")"
	line=${line%; }
fi
echo "$line" >/dev/console
sync
# -f: no unit stops, straight to the kernel (the host waits for qemu to exit).
systemctl poweroff -f
