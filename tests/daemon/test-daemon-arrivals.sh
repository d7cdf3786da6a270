#!/bin/bash
# The safety net: every way a module arrives in a watched kernel tree
# (ROOT/lib/modules/KVER/updates) gets it signed by the daemon EXACTLY once: the daemon's
# "signed PATH" lines are counted per path, the module verifies with the daemon's
# certificate (modsignctl verify --cert) and carries one signature, not a stack
# (modsignctl info: "signed: yes"). Arrivals: cp to a new name; cp -f over an already signed
# module; install -m644 (and the mode it sets survives); mv within the file system; mv across
# file systems; DKMS's mktemp -d .tmp_x86_64_XXXXXX + mv -T; mkdir -p a/b/c && cp; a .ko.xz;
# a directory renamed inside the tree; a hard link; a whole kernel directory replaced by mv.
# Left alone: a symlink to a module (not followed), a .ko that is not a module, a module for
# a kernel that is not installed, a module signed by another key, a module outside updates/,
# extra/, misc/. Finally the daemon's own atomic renames must not have caused a second
# signature of anything, and no temporary file is left.
# shellcheck disable=SC2317 # the case functions are called through run_case
set -eu
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=SCRIPTDIR/lib.sh
. "$srcdir/tests/daemon/lib.sh"

daemon_setup_workdir
daemon_require
make_key_root rsa2048 a
make_key_root rsa2048 b
build_real_module
CERT=$(cert_of a)

# MOD: a writable unsigned copy of the real module, as a build would leave it.
MOD=$WORKDIR/src/hello.ko
mkdir -p "$WORKDIR/src" "$WORKDIR/stage"
cp "$REAL_MODULE" "$MOD"
chmod 0644 "$MOD"
make_small_module "$WORKDIR/src/small.ko" small

make_tree "$WORKDIR/root"
KDIR=$TREE_ROOT/$KVER
daemon_config "$WORKDIR/d" a "$TREE_ROOT"
daemon_start activate

# Every path the daemon must have signed, with the number of signatures it must have logged
# (the last line for a path counts).
EXPECT=$WORKDIR/expected-counts
: >"$EXPECT"
expect_count() {
	printf '%s\t%s\n' "$1" "$2" >>"$EXPECT"
}
expected_counts() {
	awk -F '\t' '{ n[$1] = $2 } END { for (p in n) print p "\t" n[p] }' "$EXPECT" | sort
}

BARRIER_NO=0
# barrier: a module dropped after an event and signed, then an idle daemon: every event
# before it has been looked at (inotify delivers in order; jobs before it have finished).
barrier() {
	BARRIER_NO=$((BARRIER_NO + 1))
	local bpath=$UPD/barrier-$BASHPID-$BARRIER_NO.ko
	cp "$WORKDIR/src/small.ko" "$bpath"
	wait_signed "$bpath"
	wait_idle
	expect_count "$bpath" 1
}

# arrived PATH [N]: wait until PATH was signed N times (default 1), wait for the daemon to be
# idle, then check it was signed exactly N times, verifies, and has one signature.
arrived() {
	local path=$1 n=${2:-1}
	wait_signed "$path" "$n"
	ok "signed after $WAITED_MS ms"
	wait_idle
	assert_signed_once "$path" "$CERT" "$n"
	expect_count "$path" "$n"
}

# arrived_by_barrier PATH: like arrived, but without waiting out a timeout when the daemon
# never noticed PATH: once a later arrival was signed and the daemon is idle, PATH must have
# been signed too.
arrived_by_barrier() {
	barrier
	if [ "$(signed_count "$1")" -eq 0 ]; then
		say "    FAIL: the daemon did not sign $1 (a module dropped after it was signed, and the daemon is idle)"
		daemon_show_log
		exit 1
	fi
	assert_signed_once "$1" "$CERT" 1
	expect_count "$1" 1
}

case_cp_new() {
	step "cp MODULE updates/cp-new.ko"
	cp "$MOD" "$UPD/cp-new.ko"
	arrived "$UPD/cp-new.ko"
}
run_case "cp to a new name" case_cp_new

case_cp_over() {
	step "cp MODULE updates/cp-over.ko, signed once"
	cp "$MOD" "$UPD/cp-over.ko"
	arrived "$UPD/cp-over.ko"
	step "cp -f MODULE over the signed updates/cp-over.ko (same inode, truncated and rewritten)"
	cp -f "$MOD" "$UPD/cp-over.ko"
	arrived "$UPD/cp-over.ko" 2
}
run_case "cp -f over an already signed module" case_cp_over

case_install() {
	local i modes
	step "install -m644 MODULE updates/installed.ko"
	install -m644 "$MOD" "$UPD/installed.ko"
	arrived "$UPD/installed.ko"
	step "the mode install set is kept (30 more: install creates 0600, writes, closes, then chmods)"
	mkdir -p "$UPD/inst"
	for i in $(seq 30); do
		install -m644 "$MOD" "$UPD/inst/i$i.ko"
	done
	for i in $(seq 30); do
		wait_signed "$UPD/inst/i$i.ko"
	done
	wait_idle
	for i in $(seq 30); do
		expect_count "$UPD/inst/i$i.ko" 1
	done
	modes=$(stat -c %a "$UPD/installed.ko" "$UPD"/inst/i*.ko | sort | uniq -c | tr -s ' \n' ' ')
	# Regression test, the bug is fixed: the daemon can undo a chmod (or chown) made right after the module was closed:
	# install(1) creates the file 0600, writes it, closes it (IN_CLOSE_WRITE) and only then
	# chmods it 0644. The worker has already taken fstat() of the inode it read; replace_commit
	# copies that stale mode onto the signed copy and renames it over the file, and the
	# freshness check (inode, size, mtime) does not see a chmod, which changes only ctime.
	# Typically half of the modules end up 0600 instead of 0644.
	[ "$modes" = " 31 644 " ] || fail "modes after signing (count mode): $modes; expected all 31 to stay 644"
	ok "all 31 kept mode 0644"
}
run_case "install -m644" case_install

case_mv_same_fs() {
	step "mv from $WORKDIR/stage (same file system) to updates/mv-same.ko"
	cp "$MOD" "$WORKDIR/stage/mv-same.ko"
	[ "$(stat -c %d "$WORKDIR/stage")" = "$(stat -c %d "$UPD")" ] || fail "stage and tree are not on one file system"
	mv "$WORKDIR/stage/mv-same.ko" "$UPD/mv-same.ko"
	arrived "$UPD/mv-same.ko"
}
run_case "mv within the file system" case_mv_same_fs

case_mv_cross_fs() {
	local other
	other=$(mktemp -d /dev/shm/modsign-arrivals.XXXXXX 2>/dev/null) || other=
	if [ -n "$other" ]; then
		on_exit rm -rf "$other"
	fi
	if [ -z "$other" ] || [ "$(stat -c %d "$other")" = "$(stat -c %d "$UPD")" ]; then
		other=$WORKDIR/mnt
		mkdir -p "$other"
		mount -t tmpfs -o size=64m modsign-test "$other" 2>/dev/null ||
			skip_case "no second file system: /dev/shm is missing or on the tree's, and tmpfs cannot be mounted"
		on_exit umount "$other"
	fi
	step "mv from $other ($(stat -f -c %T "$other"), dev $(stat -c %d "$other")) to the tree ($(stat -f -c %T "$UPD"), dev $(stat -c %d "$UPD"))"
	cp "$MOD" "$other/mv-cross.ko"
	mv "$other/mv-cross.ko" "$UPD/mv-cross.ko"
	arrived "$UPD/mv-cross.ko"
}
run_case "mv across file systems" case_mv_cross_fs

case_dkms() {
	local tmp
	step "DKMS: mktemp -d updates/.tmp_x86_64_XXXXXX, fill it, mv -T it to updates/dkms"
	tmp=$(mktemp -d "$UPD/.tmp_x86_64_XXXXXX")
	cp "$MOD" "$tmp/hello-dkms.ko"
	mkdir -p "$tmp/sub"
	cp "$MOD" "$tmp/sub/hello-dkms-sub.ko"
	barrier
	[ "$(signed_count "$tmp/hello-dkms.ko")" -eq 0 ] || fail "the daemon signed inside DKMS's temporary directory"
	ok "nothing signed inside $tmp while DKMS fills it"
	mv -T "$tmp" "$UPD/dkms"
	arrived "$UPD/dkms/hello-dkms.ko"
	arrived "$UPD/dkms/sub/hello-dkms-sub.ko"
	step "the new directory is watched: a module copied into it later is signed too"
	cp "$MOD" "$UPD/dkms/later.ko"
	arrived "$UPD/dkms/later.ko"
}
run_case "DKMS's temporary directory moved into place" case_dkms

case_mkdir_p() {
	step "mkdir -p updates/a/b/c && cp MODULE updates/a/b/c/deep.ko, at once"
	mkdir -p "$UPD/a/b/c" && cp "$MOD" "$UPD/a/b/c/deep.ko"
	arrived "$UPD/a/b/c/deep.ko"
	step "and in a directory tree made by extra/ (another kernel subtree)"
	mkdir -p "$KDIR/extra/x/y" && cp "$MOD" "$KDIR/extra/x/y/extra-deep.ko"
	arrived "$KDIR/extra/x/y/extra-deep.ko"
}
run_case "mkdir -p a/b/c && cp in one go" case_mkdir_p

case_xz() {
	command -v xz >/dev/null 2>&1 || skip_case "xz is not installed"
	step "an xz-compressed module (kernel parameters) arrives as updates/hello-xz.ko.xz"
	compress_module xz-crc32 "$MOD" "$WORKDIR/stage/hello-xz.ko.xz"
	cp "$WORKDIR/stage/hello-xz.ko.xz" "$UPD/hello-xz.ko.xz"
	arrived "$UPD/hello-xz.ko.xz"
	xz -t "$UPD/hello-xz.ko.xz" || fail "the signed .ko.xz is not a valid xz file"
	ok "still a valid xz file"
}
run_case "a compressed module (.ko.xz)" case_xz

case_dir_renamed() {
	step "a watched directory updates/dir-a (holding a module) is renamed to updates/dir-b"
	mkdir -p "$UPD/dir-a/sub"
	cp "$MOD" "$UPD/dir-a/first.ko"
	arrived "$UPD/dir-a/first.ko"
	mv "$UPD/dir-a" "$UPD/dir-b"
	barrier
	assert_verifies "$CERT" "$UPD/dir-b/first.ko"
	step "modules copied into the renamed directory and its subdirectory are signed"
	cp "$MOD" "$UPD/dir-b/sub/in-sub.ko"
	arrived "$UPD/dir-b/sub/in-sub.ko"
	cp "$MOD" "$UPD/dir-b/after-rename.ko"
	# Regression test, the bug is fixed: a directory renamed inside a watched tree loses its own inotify watch: the
	# IN_MOVED_TO of the parent re-adds the watch (same wd, new path), then the IN_MOVE_SELF
	# of the same rename, handled next, calls inotify_rm_watch() on that wd
	# (src/modsignd/watcher.c handle_event). Its subdirectories stay watched; modules
	# written directly into it are never signed (until a rescan or reload).
	arrived_by_barrier "$UPD/dir-b/after-rename.ko"
}
run_case "a directory renamed inside the tree stays watched" case_dir_renamed

case_hardlink() {
	step "ln (hard link) of an unsigned module into updates/hardlink.ko"
	cp "$MOD" "$WORKDIR/stage/hardlink-src.ko"
	ln "$WORKDIR/stage/hardlink-src.ko" "$UPD/hardlink.ko"
	# Regression test, the bug is fixed: a module hard-linked into a watched tree (ln, cp -l, rsync --link-dest) is never
	# signed: link(2) makes only IN_CREATE, which the watcher ignores for files (it waits for
	# IN_CLOSE_WRITE or IN_MOVED_TO), so the safety net misses it until a rescan or reload.
	arrived_by_barrier "$UPD/hardlink.ko"
	cmp -s "$MOD" "$WORKDIR/stage/hardlink-src.ko" || fail "signing the link changed the other name's content"
	ok "the other name of the inode is left as it was"
}
run_case "a hard link into the tree" case_hardlink

case_symlink() {
	local outside=$WORKDIR/outside snap1 snap2
	mkdir -p "$outside"
	cp "$MOD" "$outside/target1.ko"
	cp "$MOD" "$outside/target2.ko"
	snap1=$(snapshot "$outside/target1.ko")
	snap2=$(snapshot "$outside/target2.ko")
	step "ln -s outside/target1.ko updates/link1.ko; and a symlink moved in with mv"
	ln -s "$outside/target1.ko" "$UPD/link1.ko"
	ln -s "$outside/target2.ko" "$WORKDIR/stage/link2.ko"
	mv "$WORKDIR/stage/link2.ko" "$UPD/link2.ko"
	barrier
	if [ ! -L "$UPD/link1.ko" ] || [ ! -L "$UPD/link2.ko" ]; then
		fail "a symlink in the tree was replaced"
	fi
	ok "both are still symlinks"
	assert_unchanged "$outside/target1.ko" "$snap1" "symlink target 1"
	assert_unchanged "$outside/target2.ko" "$snap2" "symlink target 2"
	if [ "$(signed_count "$UPD/link1.ko")" -ne 0 ] || [ "$(signed_count "$UPD/link2.ko")" -ne 0 ]; then
		fail "the daemon logged a signature of a symlink"
	fi
	ok "no signature logged for either link"
}
run_case "a symlink to a module is not followed" case_symlink

case_not_module() {
	local s1 s2 s3 s4
	step "a text file, an executable, an empty file named .ko, and a module for a kernel that is not installed"
	printf 'this is not a kernel module\n' >"$WORKDIR/stage/text.ko"
	cp /bin/true "$WORKDIR/stage/exec.ko"
	: >"$WORKDIR/stage/empty.ko"
	KVER_SAVE=$KVER
	KVER=9.99.0-not-installed
	make_small_module "$WORKDIR/stage/otherkernel.ko" other
	KVER=$KVER_SAVE
	cp "$WORKDIR/stage/text.ko" "$UPD/text.ko"
	cp "$WORKDIR/stage/exec.ko" "$UPD/exec.ko"
	cp "$WORKDIR/stage/empty.ko" "$UPD/empty.ko"
	cp "$WORKDIR/stage/otherkernel.ko" "$UPD/otherkernel.ko"
	s1=$(snapshot "$UPD/text.ko")
	s2=$(snapshot "$UPD/exec.ko")
	s3=$(snapshot "$UPD/empty.ko")
	s4=$(snapshot "$UPD/otherkernel.ko")
	barrier
	assert_unchanged "$UPD/text.ko" "$s1" "text file named .ko"
	assert_unchanged "$UPD/exec.ko" "$s2" "ELF executable named .ko"
	assert_unchanged "$UPD/empty.ko" "$s3" "empty file named .ko"
	assert_unchanged "$UPD/otherkernel.ko" "$s4" "module for 9.99.0-not-installed"
	wait_until 5 "the refusal to be logged" log_has "refused to sign $UPD/otherkernel.ko: built for a kernel that is not installed"
	ok "logged: refused to sign otherkernel.ko (kernel not installed)"
	assert_daemon_alive
}
run_case "files that are not modules for this machine are left alone" case_not_module

case_foreign() {
	local snap
	step "a module signed by another key (b) arrives: left alone, bytes unchanged"
	cp "$MOD" "$WORKDIR/stage/foreign.ko"
	expect_exit 0 "$MODSIGNCTL" sign --key "$(key_of b)" --cert "$(cert_of b)" --hash sha256 "$WORKDIR/stage/foreign.ko"
	cp "$WORKDIR/stage/foreign.ko" "$UPD/foreign.ko"
	snap=$(snapshot "$UPD/foreign.ko")
	barrier
	assert_unchanged "$UPD/foreign.ko" "$snap" "module signed by key b"
	cmp -s "$WORKDIR/stage/foreign.ko" "$UPD/foreign.ko" || fail "foreign.ko differs from what was copied in"
	assert_verifies "$(cert_of b)" "$UPD/foreign.ko"
	wait_until 5 "'left alone' in the log" log_has "left $UPD/foreign.ko alone: signed by another key"
	ok "logged: left foreign.ko alone"
}
run_case "a module signed by another key is left alone" case_foreign

count_differs() {
	local path n
	while IFS=$'\t' read -r path n; do
		[ "$(signed_count "$path")" -eq "$n" ] || return 0
	done < <(expected_counts)
	return 1
}

case_no_second_signature() {
	local path n have bad=0 paths=() there=()
	step "the daemon is idle, then nothing more is signed for 1 s (its own renames are not news)"
	wait_idle
	if poll_until 1 count_differs; then
		say "    (a count changed while the daemon should have been quiet)"
	fi
	while IFS=$'\t' read -r path n; do
		have=$(signed_count "$path")
		if [ "$have" -ne "$n" ]; then
			say "    FAIL: $path: $have signatures logged, expected $n"
			bad=1
		fi
		paths+=("$path")
	done < <(expected_counts)
	[ "$bad" -eq 0 ] || exit 1
	ok "${#paths[@]} paths: each signed exactly as often as it arrived"
	step "every one (still there) verifies with the daemon's certificate and has one signature"
	for path in "${paths[@]}"; do
		[ ! -e "$path" ] || there+=("$path")
	done
	assert_verifies "$CERT" "${there[@]}"
	for path in "${there[@]}"; do
		assert_one_signature "$path"
	done
	ok "all ${#there[@]} verify, none stacked ($((${#paths[@]} - ${#there[@]})) moved away since)"
	step "no other signature was logged"
	have=$(grep -o '^modsignd: signed /[^ ]*' "$DAEMON_LOG" | sort -u | wc -l)
	[ "$have" -eq "${#paths[@]}" ] || fail "the daemon signed $have paths, ${#paths[@]} expected"
	ok "the daemon signed exactly these ${#paths[@]} paths"
	step "no temporary file (.#*) left in the tree"
	[ -z "$(find "$TREE_ROOT" -name '.#*' -print -quit)" ] || fail "temporary files left: $(find "$TREE_ROOT" -name '.#*' | head -n 3)"
	ok "none"
}
run_case "the daemon's own renames cause no second signature" case_no_second_signature

case_new_kernel_dir() {
	local stage=$WORKDIR/root/stage-kernel
	step "rm -rf lib/modules/$KVER (the daemon loses those watches and goes on)"
	rm -rf "$KDIR"
	assert_daemon_alive
	step "a new lib/modules/$KVER with updates/nk.ko moved into place with mv"
	mkdir -p "$stage/$KVER/updates/sub"
	cp "$MOD" "$stage/$KVER/updates/nk.ko"
	cp "$MOD" "$stage/$KVER/updates/sub/nk-sub.ko"
	mv "$stage/$KVER" "$KDIR"
	arrived "$KDIR/updates/nk.ko"
	arrived "$KDIR/updates/sub/nk-sub.ko"
	step "the new kernel directory is watched: misc/ made later, and a module in it"
	mkdir "$KDIR/misc"
	cp "$MOD" "$KDIR/misc/nk-misc.ko"
	arrived "$KDIR/misc/nk-misc.ko"
	cp "$MOD" "$KDIR/updates/nk-later.ko"
	arrived "$KDIR/updates/nk-later.ko"
	step "a directory beside updates/extra/misc (e.g. kernel/) is not the daemon's business"
	mkdir -p "$KDIR/kernel/drivers"
	cp "$MOD" "$KDIR/kernel/drivers/distro.ko"
	barrier
	if module_is_signed "$KDIR/kernel/drivers/distro.ko"; then
		fail "the daemon signed a module outside updates/, extra/, misc/"
	fi
	ok "$KDIR/kernel/drivers/distro.ko left unsigned"
}
run_case "a new kernel directory appears" case_new_kernel_dir

case_stop() {
	daemon_stop 20
	[ -z "$(find "$TREE_ROOT" -name '.#*' -print -quit)" ] || fail "temporary files left after the daemon stopped"
	ok "no temporary files"
}
run_case "SIGTERM at the end: exit 0" case_stop

finish
