#!/bin/bash
# A configured tree that does not exist when the daemon starts (dkms installed after modsignd:
# /var/lib/dkms appears later) is watched once it appears, without a reload: the daemon
# watches its nearest existing parent. Its modules, copied in right after `mkdir -p`, are
# signed exactly once; an unrelated directory made in that parent changes nothing.
# shellcheck disable=SC2317 # the case functions are called through run_case
set -eu
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=SCRIPTDIR/lib.sh
. "$srcdir/tests/daemon/lib.sh"

daemon_setup_workdir
daemon_require
make_key_root rsa2048 a
CERT=$(cert_of a)
make_small_module "$WORKDIR/small.ko" late

LATE=$WORKDIR/root/var/lib/dkms
mkdir -p "$WORKDIR/root/var"
daemon_config "$WORKDIR/d" a "$LATE"
daemon_start direct

case_late_tree() {
	step "the daemon says it waits for $LATE"
	log_has "not a directory yet; watching for it to appear" || fail "no notice about the missing $LATE"
	ok "notice logged"
	step "an unrelated directory in the parent: nothing happens, the daemon keeps running"
	mkdir "$WORKDIR/root/var/cache"
	assert_daemon_alive
	step "mkdir -p the tree and copy a module into it at once"
	mkdir -p "$LATE/late/1.0/$KVER/x86_64/module"
	cp "$WORKDIR/small.ko" "$LATE/late/1.0/$KVER/x86_64/module/late.ko"
	wait_signed "$LATE/late/1.0/$KVER/x86_64/module/late.ko"
	ok "signed after $WAITED_MS ms"
	wait_idle
	assert_signed_once "$LATE/late/1.0/$KVER/x86_64/module/late.ko" "$CERT" 1
	step "a second module later in the same tree: watched now"
	cp "$WORKDIR/small.ko" "$LATE/late/1.0/$KVER/x86_64/module/late2.ko"
	wait_signed "$LATE/late/1.0/$KVER/x86_64/module/late2.ko"
	wait_idle
	assert_signed_once "$LATE/late/1.0/$KVER/x86_64/module/late2.ko" "$CERT" 1
	ok "both signed once"
}
run_case "a watched tree that appears after the start" case_late_tree

case_stop() {
	daemon_stop 20
	ok "exit 0"
}
run_case "SIGTERM: exit 0" case_stop

finish
