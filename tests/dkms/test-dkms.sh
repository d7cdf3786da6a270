#!/bin/bash
# The DKMS integration with the real dkms (Debian 12: 3.0.10), building the real test
# package tests/dkms/pkg against the installed kernel headers, in throwaway trees
# (--dkmstree, --sourcetree, --installtree under the work directory). What cannot be moved
# out of the machine's own places is undone on exit: the drop-in in
# /etc/dkms/framework.conf.d and a fake kernel directory under /lib/modules.
#  - with modsignd running: dkms add/build/install signs through the drop-in and the shim
#    (the synchronous path); the DKMS tree copy and the installed copy are signed by the test
#    key (modsignctl verify, modinfo -F signer), identical, dkms status shows no differences,
#    and /var/lib/dkms/mok.key is never created;
#  - with no daemon: the shim signs with the configured key directly; with no daemon and no
#    usable key it fails loudly, and the module it leaves is reported unsigned;
#  - compressed: for a kernel whose modules are .ko.xz, dkms compresses with plain xz (a CRC64
#    check the in-kernel decompressor refuses); the safety net re-encodes both copies with
#    CRC32, the signature inside intact, and they stay identical;
#  - a kernel upgrade (and the kernel-install plugin): the postinst.d hooks run in a kernel package's order (dkms,
#    dkms-modsignd, initramfs-tools) with a DKMS that left its module unsigned: every module is
#    signed before the initramfs hook runs; with no usable key the hook fails, names the
#    module, and the initramfs hook never runs;
#  - the DKMS 2.8 sign_tool hook signs when called the way DKMS 2.8 calls it;
#  - dkms remove leaves nothing of ours behind;
#  - modsignctl doctor reports a healthy setup healthy, and names each fault made on purpose:
#    drop-in missing, daemon stopped, a certificate that is not the key's, an unsigned module,
#    a kernel that enforces signatures and does not trust the key.
# shellcheck disable=SC2317 # the case functions are called through run_case
set -eu
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=SCRIPTDIR/../daemon/lib.sh
. "$srcdir/tests/daemon/lib.sh"

daemon_setup_workdir
daemon_require
require_cmd dkms xz cmp run-parts modinfo jq
make_key_root rsa2048 a
make_key_root rsa2048 b
CERT=$(cert_of a)

PKG=modsignd-dkmstest
VER=1.0
MODNAME=modsignd_dkmstest
ARCH=$(uname -m)
DKMS_TREE=$WORKDIR/dkms
SOURCE_TREE=$WORKDIR/src
ROOT=$WORKDIR/root
INSTALL_TREE=$ROOT/lib/modules
ETC=$WORKDIR/etc
HOOKS=$WORKDIR/hooks
DROPIN_DIR=/etc/dkms/framework.conf.d
DROPIN=$DROPIN_DIR/zz-modsignd-test.conf
MOK_KEY=/var/lib/dkms/mok.key
# A kernel release that only exists for this test: its modules.dep lists .ko.xz modules, so
# dkms compresses what it builds for it; its build/ is the real kernel's headers.
XZ_KVER=$KVER-modsignd-test-xz

# Only one test on the machine may own the DKMS drop-in directory at a time.
exec {DKMS_LOCK_FD}>"${TMPDIR:-/tmp}/modsignd-dkms-tests.lock"
flock -w 600 "$DKMS_LOCK_FD" || fail "another DKMS test holds the lock"

mok_key_before=absent
[ -e "$MOK_KEY" ] && mok_key_before=$(stat -c '%i %Y %s' "$MOK_KEY")

mkdir -p "$DKMS_TREE" "$SOURCE_TREE/$PKG-$VER" "$INSTALL_TREE/$KVER" "$INSTALL_TREE/$XZ_KVER" \
	"$ETC/modsignd" "$HOOKS"
cp "$srcdir/tests/dkms/pkg/dkms.conf" "$srcdir/tests/dkms/pkg/Kbuild" \
	"$srcdir/tests/dkms/pkg/$MODNAME.c" "$SOURCE_TREE/$PKG-$VER/"
cp "$CERT" "$ETC/modsignd/signing.crt"

daemon_config "$WORKDIR/d" a "$DKMS_TREE" "$INSTALL_TREE"
# The policy DKMS machines run with (the default Mode=dkms), not the daemon tests' allowlist:
# what the real dkms builds from its registered package must pass the dkms rule, in the
# build directory (the shim's ORIGIN=dkms), the DKMS tree and the installed copies.
printf '[Policy]\nMode=dkms\nAllow=\nDkmsTree=%s\n' "$DKMS_TREE" >>"$DAEMON_CONF"

# The hooks exactly as installed, but pointing at this build and this configuration.
subst_hook() {
	sed -e "s|@bindir@|$top_builddir|g" -e "s|@sysconfdir@|$ETC|g" -e "s|@modsignd_libdir@|$HOOKS|g" \
		-e "s|@MODSIGNCTL_ARGS@|--config $DAEMON_CONF|g" \
		-e "s|@DKMS_CHECK_ARGS@|--modules-dir $INSTALL_TREE --dkms-tree $DKMS_TREE |g" "$1" >"$2"
	chmod 0755 "$2"
}
subst_hook "$srcdir/hooks/dkms-sign-file.in" "$HOOKS/dkms-sign-file"
subst_hook "$srcdir/hooks/dkms-sign-tool.in" "$HOOKS/dkms-sign-tool"
subst_hook "$srcdir/hooks/kernel-postinst.in" "$HOOKS/kernel-postinst"
subst_hook "$srcdir/hooks/kernel-install.in" "$HOOKS/60-modsignd.install"
subst_hook "$srcdir/hooks/dkms-framework.conf.in" "$WORKDIR/dropin.conf"
chmod 0644 "$WORKDIR/dropin.conf"

install_dropin() {
	mkdir -p "$DROPIN_DIR"
	cp "$WORKDIR/dropin.conf" "$DROPIN"
}
on_exit rm -f "$DROPIN"
install_dropin

# The fake kernel: /lib/modules/$XZ_KVER with the real headers and one .ko.xz module of its
# own, so that the modules.dep that dkms' depmod writes keeps naming .ko.xz.
mkdir "/lib/modules/$XZ_KVER"
on_exit rm -rf "/lib/modules/$XZ_KVER"
ln -s "$(readlink -f "/lib/modules/$KVER/build")" "/lib/modules/$XZ_KVER/build"
mkdir -p "/lib/modules/$XZ_KVER/kernel/drivers/fake"
make_small_module "/lib/modules/$XZ_KVER/kernel/drivers/fake/fake.ko" fake
xz --check=crc32 "/lib/modules/$XZ_KVER/kernel/drivers/fake/fake.ko"
depmod "$XZ_KVER"
grep -q '\.xz:' "/lib/modules/$XZ_KVER/modules.dep" || fail "depmod did not list the fake kernel's .ko.xz"

# dkms_run ARGS...: the real dkms on the throwaway trees (run_cmd semantics).
dkms_run() {
	run_cmd dkms --dkmstree "$DKMS_TREE" --sourcetree "$SOURCE_TREE" --installtree "$INSTALL_TREE" "$@"
}
dkms_ok() {
	dkms_run "$@"
	if [ "$LAST_RC" -ne 0 ]; then
		say "    FAIL: dkms $* failed"
		_report_last
		exit 1
	fi
	cat "$LAST_OUT" "$LAST_ERR" >"$WORKDIR/dkms.out"
}

# end_daemons: no modsignd left from an earlier case (one that failed before its stop).
end_daemons() {
	local f pid i
	for f in "$WORKDIR"/.pids/*; do
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$pid" 2>/dev/null || true
		rm -f "$f"
	done
}

tree_copy() { printf '%s' "$DKMS_TREE/$PKG/$VER/$1/$ARCH/module/$MODNAME.ko${2:-}"; }
installed_copy() { printf '%s' "$INSTALL_TREE/$1/updates/dkms/$MODNAME.ko${2:-}"; }

# dkms_fresh: nothing of the package in the trees, then dkms add.
dkms_fresh() {
	dkms_run remove -m "$PKG" -v "$VER" --all
	rm -rf "${DKMS_TREE:?}/$PKG"
	dkms_ok add -m "$PKG" -v "$VER"
}

assert_signer_is_test_key() {
	local signer
	signer=$(modinfo -F signer "$1")
	[ "$signer" = "$(cn_of a)" ] || fail "modinfo -F signer $1 says '$signer', expected '$(cn_of a)'"
	ok "$1: modinfo signer '$signer'"
}

assert_no_mok_key() {
	local now=absent
	[ -e "$MOK_KEY" ] && now=$(stat -c '%i %Y %s' "$MOK_KEY")
	[ "$now" = "$mok_key_before" ] || fail "$MOK_KEY was created or changed by dkms ($mok_key_before -> $now)"
	ok "$MOK_KEY untouched ($now)"
}

assert_status_clean() {
	dkms_run status -m "$PKG" -v "$VER" -k "$1"
	# dkms 3.0.10 says "Diff between built and installed module", later ones "Differences ..."
	if grep -qE "Diff(erences)? between built and installed" "$LAST_OUT" "$LAST_ERR"; then
		_report_last
		fail "dkms status reports differences between the built and the installed module"
	fi
	grep -q "installed" "$LAST_OUT" || { _report_last; fail "dkms status does not say installed"; }
	ok "dkms status: $(head -n 1 "$LAST_OUT")"
}

assert_no_temp_files() {
	local left
	left=$(find "$DKMS_TREE" "$INSTALL_TREE" -name '.#*' -o -name '*.tmp' -o -name '.modsign*' | head -n 5)
	[ -z "$left" ] || fail "temporary files left behind: $left"
}

case_daemon_signs_dkms_builds() {
	end_daemons
	daemon_start direct
	dkms_fresh
	step "dkms build and install with modsignd running"
	dkms_ok build -m "$PKG" -v "$VER" -k "$KVER"
	grep -q "Sign command: $HOOKS/dkms-sign-file" "$WORKDIR/dkms.out" ||
		fail "dkms did not pick up the drop-in's sign_file: $(grep 'Sign command' "$WORKDIR/dkms.out")"
	grep -q "signed by modsignd" "$WORKDIR/dkms.out" ||
		{ show_file "$WORKDIR/dkms.out" 40; fail "the shim did not report a signature by modsignd"; }
	dkms_ok install -m "$PKG" -v "$VER" -k "$KVER"
	assert_verifies "$CERT" "$(tree_copy "$KVER")" "$(installed_copy "$KVER")"
	assert_one_signature "$(installed_copy "$KVER")"
	assert_signer_is_test_key "$(installed_copy "$KVER")"
	assert_files_equal "$(tree_copy "$KVER")" "$(installed_copy "$KVER")" "DKMS tree copy and installed copy"
	assert_status_clean "$KVER"
	log_has "signed $MODNAME.ko for" || fail "the daemon's log has no SIGN request for $MODNAME.ko"
	ok "the daemon signed it on request (the synchronous path)"
	assert_no_mok_key
	assert_no_temp_files
	daemon_stop 20
}

case_no_daemon_direct() {
	end_daemons
	dkms_fresh
	step "dkms build with no daemon: the shim signs with the configured key directly"
	dkms_ok build -m "$PKG" -v "$VER" -k "$KVER"
	grep -q "with modsignd's key directly" "$WORKDIR/dkms.out" ||
		{ show_file "$WORKDIR/dkms.out" 40; fail "the shim did not say it signed directly"; }
	dkms_ok install -m "$PKG" -v "$VER" -k "$KVER"
	assert_verifies "$CERT" "$(tree_copy "$KVER")" "$(installed_copy "$KVER")"
	assert_files_equal "$(tree_copy "$KVER")" "$(installed_copy "$KVER")" "DKMS tree copy and installed copy"
	assert_status_clean "$KVER"
	assert_no_mok_key
}

case_no_daemon_no_key_loud() {
	local conf=$WORKDIR/nokey.conf
	end_daemons
	sed "s|^PrivateKey=.*|PrivateKey=$WORKDIR/no-such.key|" "$DAEMON_CONF" >"$conf"
	sed "s|--config [^ ]*|--config $conf|" "$HOOKS/dkms-sign-file" >"$HOOKS/dkms-sign-file.nokey"
	chmod 0755 "$HOOKS/dkms-sign-file.nokey"
	sed "s|^sign_file=.*|sign_file=\"$HOOKS/dkms-sign-file.nokey\"|" "$WORKDIR/dropin.conf" >"$DROPIN"
	dkms_fresh
	step "dkms build with no daemon and no usable key: the shim fails loudly"
	dkms_run build -m "$PKG" -v "$VER" -k "$KVER"
	install_dropin
	cat "$LAST_OUT" "$LAST_ERR" >"$WORKDIR/dkms.out"
	grep -q "not signed: modsignd is not running" "$WORKDIR/dkms.out" ||
		{ show_file "$WORKDIR/dkms.out" 40; fail "no loud failure from the shim in dkms' output"; }
	grep -q "no-such.key" "$WORKDIR/dkms.out" || fail "the message does not name the key"
	ok "dkms' output carries: $(grep -m1 'not signed' "$WORKDIR/dkms.out")"
	run_cmd ms verify --cert "$CERT" "$(tree_copy "$KVER")"
	[ "$LAST_RC" -eq 3 ] || { _report_last; fail "the module left behind is not reported unsigned (exit 3)"; }
	ok "the module dkms kept is reported unsigned by modsignctl verify (exit 3)"
	assert_no_mok_key
}

xz_check_of() {
	xz --robot --list "$1" | awk -F'\t' '$1 == "file" { print $7 }'
}

both_crc32() {
	[ "$(xz_check_of "$1")" = CRC32 ] && [ "$(xz_check_of "$2")" = CRC32 ]
}

case_compressed_reencoded() {
	end_daemons
	daemon_start direct
	dkms_fresh
	step "dkms build/install for a kernel with .ko.xz modules: dkms compresses with plain xz"
	dkms_ok build -m "$PKG" -v "$VER" -k "$XZ_KVER"
	dkms_ok install -m "$PKG" -v "$VER" -k "$XZ_KVER"
	local tree inst
	tree=$(tree_copy "$XZ_KVER" .xz)
	inst=$(installed_copy "$XZ_KVER" .xz)
	if [ ! -f "$tree" ] || [ ! -f "$inst" ]; then
		fail "dkms did not produce .ko.xz copies"
	fi
	wait_until "$DAEMON_TIMEOUT" "both copies re-encoded with CRC32" both_crc32 "$tree" "$inst"
	wait_idle
	ok "xz check of both copies: $(xz_check_of "$tree"), $(xz_check_of "$inst")"
	assert_verifies "$CERT" "$tree" "$inst"
	assert_one_signature "$inst"
	assert_files_equal "$tree" "$inst" "DKMS tree copy and installed copy (.ko.xz)"
	assert_status_clean "$XZ_KVER"
	assert_no_temp_files
	daemon_stop 20
}

# A kernel package's postinst.d, in its order: dkms (here: a DKMS whose signing is off, as
# without the drop-in), dkms-modsignd (ours), initramfs-tools (here: a stand-in that records
# whether every DKMS module it would pack is signed by the test key).
make_postinst_dir() {
	local dir=$1 hook=$2
	mkdir -p "$dir"
	cat >"$dir/dkms" <<-EOF
		#!/bin/sh
		exec dkms --dkmstree "$DKMS_TREE" --sourcetree "$SOURCE_TREE" --installtree "$INSTALL_TREE" \\
			install -m "$PKG" -v "$VER" -k "\$1"
	EOF
	cp "$hook" "$dir/dkms-modsignd"
	cat >"$dir/initramfs-tools" <<-EOF
		#!/bin/sh
		"$MODSIGNCTL" verify --cert "$CERT" "$(installed_copy "$KVER")" >"$WORKDIR/initramfs-saw" 2>&1
		echo "exit \$?" >>"$WORKDIR/initramfs-saw"
	EOF
	chmod 0755 "$dir/dkms" "$dir/dkms-modsignd" "$dir/initramfs-tools"
}

unsigning_dropin() {
	printf 'sign_file="/bin/true"\nmok_signing_key="pkcs11:none"\nmok_certificate="%s"\n' "$CERT" >"$DROPIN"
}

case_kernel_upgrade() {
	end_daemons
	dkms_fresh
	unsigning_dropin
	make_postinst_dir "$WORKDIR/postinst.d" "$HOOKS/kernel-postinst"
	rm -f "$WORKDIR/initramfs-saw"
	step "postinst.d in a kernel package's order, a DKMS that leaves its module unsigned, no daemon"
	run_cmd run-parts --verbose --exit-on-error --arg="$KVER" --arg=/boot/vmlinuz-"$KVER" "$WORKDIR/postinst.d"
	install_dropin
	[ "$LAST_RC" -eq 0 ] || { _report_last; fail "the hooks failed"; }
	[ -f "$WORKDIR/initramfs-saw" ] || fail "the initramfs-tools stand-in did not run"
	grep -q "^exit 0" "$WORKDIR/initramfs-saw" ||
		{ show_file "$WORKDIR/initramfs-saw"; fail "the initramfs hook saw an unsigned module"; }
	ok "the initramfs hook saw every DKMS module signed"
	assert_verifies "$CERT" "$(tree_copy "$KVER")" "$(installed_copy "$KVER")"
	assert_files_equal "$(tree_copy "$KVER")" "$(installed_copy "$KVER")" "DKMS tree copy and installed copy"
	assert_status_clean "$KVER"

	step "the kernel-install(8) plugin: 'add' signs what is unsigned, 'remove' does nothing"
	run_cmd ms strip "$(tree_copy "$KVER")" "$(installed_copy "$KVER")"
	[ "$LAST_RC" -eq 0 ] || { _report_last; fail "strip failed"; }
	expect_exit 0 "$HOOKS/60-modsignd.install" remove "$KVER" "$WORKDIR/entry"
	run_cmd ms verify --cert "$CERT" "$(installed_copy "$KVER")"
	[ "$LAST_RC" -eq 3 ] || { _report_last; fail "'remove' touched the module"; }
	expect_exit 0 "$HOOKS/60-modsignd.install" add "$KVER" "$WORKDIR/entry" "/boot/vmlinuz-$KVER"
	assert_verifies "$CERT" "$(tree_copy "$KVER")" "$(installed_copy "$KVER")"
	assert_files_equal "$(tree_copy "$KVER")" "$(installed_copy "$KVER")" "DKMS tree copy and installed copy"
}

case_kernel_upgrade_fails_loudly() {
	local conf=$WORKDIR/nokey.conf
	end_daemons
	sed "s|^PrivateKey=.*|PrivateKey=$WORKDIR/no-such.key|" "$DAEMON_CONF" >"$conf"
	sed "s|--config [^ ]*|--config $conf|" "$HOOKS/kernel-postinst" >"$WORKDIR/kernel-postinst.nokey"
	dkms_fresh
	unsigning_dropin
	rm -rf "$WORKDIR/postinst2.d" "$WORKDIR/initramfs-saw"
	make_postinst_dir "$WORKDIR/postinst2.d" "$WORKDIR/kernel-postinst.nokey"
	step "the same with no usable key: the hook fails and names the module"
	run_cmd run-parts --exit-on-error --arg="$KVER" "$WORKDIR/postinst2.d"
	install_dropin
	[ "$LAST_RC" -ne 0 ] || { _report_last; fail "run-parts succeeded with an unsigned module"; }
	grep -q "$MODNAME.ko: unsigned" "$LAST_OUT" || { _report_last; fail "the hook did not list the unsigned module"; }
	grep -q "not all signed" "$LAST_ERR" || { _report_last; fail "the hook did not say what is wrong"; }
	[ ! -e "$WORKDIR/initramfs-saw" ] || fail "the initramfs hook ran after the failure"
	ok "exit $LAST_RC, the module listed, the initramfs hook never ran"
}

case_sign_tool_hook() {
	end_daemons
	dkms_fresh
	unsigning_dropin
	dkms_ok build -m "$PKG" -v "$VER" -k "$KVER"
	install_dropin
	# DKMS 2.8 calls it on the module in its build directory, where Mode=dkms believes it
	local m=$DKMS_TREE/$PKG/$VER/build/$MODNAME.ko
	mkdir -p "$(dirname "$m")"
	cp "$(tree_copy "$KVER")" "$m"
	step "the DKMS 2.8 sign_tool hook, called as DKMS 2.8 calls it: KERNELVERSION MODULE"
	run_cmd "$HOOKS/dkms-sign-tool" "$KVER" "$m"
	[ "$LAST_RC" -eq 0 ] || { _report_last; fail "dkms-sign-tool failed"; }
	assert_verifies "$CERT" "$m"
	expect_exit 2 "$HOOKS/dkms-sign-tool" "$m"
	step "a module outside any DKMS build directory is refused by the policy (rule not-dkms)"
	cp "$(tree_copy "$KVER")" "$WORKDIR/m.ko"
	run_cmd "$HOOKS/dkms-sign-tool" "$KVER" "$WORKDIR/m.ko"
	if [ "$LAST_RC" -eq 0 ] || ! grep -q "(rule not-dkms)" "$LAST_ERR"; then
		_report_last
		fail "dkms-sign-tool signed a module from outside DKMS under Mode=dkms"
	fi
	ok "$(grep -m1 'rule not-dkms' "$LAST_ERR")"
}

case_remove_leaves_nothing() {
	end_daemons
	daemon_start direct
	dkms_fresh
	dkms_ok build -m "$PKG" -v "$VER" -k "$KVER"
	dkms_ok install -m "$PKG" -v "$VER" -k "$KVER"
	step "dkms remove --all"
	dkms_ok remove -m "$PKG" -v "$VER" --all
	wait_idle
	local left
	left=$(find "$DKMS_TREE" "$INSTALL_TREE" -mindepth 1 ! -type d | head -n 5)
	[ -z "$left" ] || fail "left behind after dkms remove: $left"
	[ ! -e "$DKMS_TREE/$PKG" ] || fail "$DKMS_TREE/$PKG still exists"
	ok "nothing left in the DKMS tree or the install tree"
	daemon_stop 20
	assert_no_mok_key
}

# doctor [ENV=VALUE...]: modsignctl --json doctor on this test's setup (run_cmd semantics);
# the kernel's stance comes from fixtures: no lockdown, signatures not enforced, no keys.
doctor() {
	printf '[none] integrity confidentiality\n' >"$WORKDIR/lockdown"
	printf 'N\n' >"$WORKDIR/sig_enforce"
	: >"$WORKDIR/proc-keys"
	run_cmd env MODSIGNCTL_DKMS_SHIM="$HOOKS/dkms-sign-file" MODSIGNCTL_LOCKDOWN="$WORKDIR/lockdown" \
		MODSIGNCTL_SIG_ENFORCE="$WORKDIR/sig_enforce" MODSIGNCTL_PROC_KEYS="$WORKDIR/proc-keys" \
		MODSIGNCTL_EFI_DIR="$WORKDIR/no-efi" "$@" \
		"$MODSIGNCTL" --json --config "${DOCTOR_CONF:-$DAEMON_CONF}" doctor \
		--modules-dir "$INSTALL_TREE" --dkms-tree "$DKMS_TREE"
	cp "$LAST_OUT" "$WORKDIR/doctor.json"
}

# doctor_result CHECK: the worst result of CHECK in the last doctor report.
doctor_result() {
	jq -r --arg c "$1" '[.checks[] | select(.check == $c) | .result] |
		if index("fail") then "fail" elif index("warn") then "warn" elif length > 0 then .[0] else "none" end' \
		"$WORKDIR/doctor.json"
}

# expect_doctor_fault CHECK TEXT: doctor exits 1 and names CHECK as failed, with TEXT in its message.
expect_doctor_fault() {
	[ "$LAST_RC" -eq 1 ] || { _report_last; fail "doctor exited $LAST_RC, expected 1 (a fault)"; }
	[ "$(doctor_result "$1")" = fail ] || { _report_last; fail "doctor did not report check '$1' as failed"; }
	jq -e --arg c "$1" --arg t "$2" '[.checks[] | select(.check == $c and .result == "fail") |
		select(.message | contains($t)) | select(.fix != null)] | length > 0' "$WORKDIR/doctor.json" >/dev/null ||
		{ _report_last; fail "doctor's '$1' failure does not mention '$2' with a fix"; }
	ok "doctor names the fault: $(jq -r --arg c "$1" '[.checks[] | select(.check == $c and .result == "fail")][0] | .message' "$WORKDIR/doctor.json")"
}

case_doctor() {
	end_daemons
	daemon_start direct
	dkms_fresh
	dkms_ok build -m "$PKG" -v "$VER" -k "$KVER"
	dkms_ok install -m "$PKG" -v "$VER" -k "$KVER"
	step "a healthy setup"
	doctor
	[ "$LAST_RC" -eq 0 ] || { _report_last; fail "doctor exited $LAST_RC on a healthy setup"; }
	jq -e '.healthy == true and .failures == 0' "$WORKDIR/doctor.json" >/dev/null || fail "doctor does not say healthy"
	for c in configuration certificate key daemon dkms dkms-modules; do
		[ "$(doctor_result "$c")" = ok ] || { _report_last; fail "check $c is not ok on a healthy setup"; }
	done
	[ "$(doctor_result kernel-trust)" = warn ] || fail "kernel-trust should warn: the fixture kernel trusts nothing"
	ok "healthy: every check ok, kernel-trust a warning (signatures not enforced)"

	step "the drop-in missing"
	rm -f "$DROPIN"
	doctor
	install_dropin
	expect_doctor_fault dkms "not modsignd's shim"

	step "the kernel enforces signatures and does not trust the key"
	printf 'Y\n' >"$WORKDIR/sig_enforce.y"
	doctor MODSIGNCTL_SIG_ENFORCE="$WORKDIR/sig_enforce.y"
	expect_doctor_fault kernel-trust "does not trust"

	step "an EFI machine whose MOK enrollment waits for a reboot (mokutil is a test double here)"
	mkdir -p "$WORKDIR/efi/efivars"
	cat >"$WORKDIR/fake-mokutil" <<-'EOF'
		#!/bin/sh
		echo "$2 is already in the enrollment request"
	EOF
	chmod 0755 "$WORKDIR/fake-mokutil"
	doctor MODSIGNCTL_EFI_DIR="$WORKDIR/efi" MODSIGNCTL_MOKUTIL="$WORKDIR/fake-mokutil"
	[ "$LAST_RC" -eq 0 ] || { _report_last; fail "doctor failed on a pending enrollment"; }
	[ "$(doctor_result kernel-trust)" = warn ] || { _report_last; fail "kernel-trust is not a warning"; }
	jq -e '[.checks[] | select(.check == "kernel-trust") | select(.message | contains("queued for enrollment"))] |
		length == 1' "$WORKDIR/doctor.json" >/dev/null || { _report_last; fail "doctor does not say the enrollment is pending"; }
	ok "doctor: enrollment queued, reboot to confirm it"

	step "a module that is not signed (the daemon stopped first: its watch would sign it again)"
	daemon_stop 20
	run_cmd ms strip "$(installed_copy "$KVER")"
	[ "$LAST_RC" -eq 0 ] || { _report_last; fail "strip failed"; }
	doctor
	expect_doctor_fault dkms-modules "$(installed_copy "$KVER"): unsigned"

	step "the daemon stopped"
	expect_doctor_fault daemon "not reachable"

	step "a certificate that is not the key's"
	sed "s|^Certificate=.*|Certificate=$(cert_of b)|" "$DAEMON_CONF" >"$WORKDIR/wrongcert.conf"
	DOCTOR_CONF=$WORKDIR/wrongcert.conf doctor
	expect_doctor_fault key "does not belong"
}

# dkms_case DESCRIPTION FUNCTION: run_case, unless DKMS_TEST_CASES (function names separated
# by spaces, for a run by hand) leaves it out.
dkms_case() {
	case " ${DKMS_TEST_CASES:-$2} " in
	*" $2 "*) run_case "$@" ;;
	esac
}

dkms_case "modsignd running: dkms build signs through the shim" case_daemon_signs_dkms_builds
dkms_case "no daemon: the shim signs with the configured key" case_no_daemon_direct
dkms_case "no daemon, no key: the shim fails loudly" case_no_daemon_no_key_loud
dkms_case "compressed installs are re-encoded CRC32, signed inside" case_compressed_reencoded
dkms_case "kernel upgrade: modules signed before the initramfs hook" case_kernel_upgrade
dkms_case "kernel upgrade with no usable key: the hook fails" case_kernel_upgrade_fails_loudly
dkms_case "DKMS 2.8 sign_tool hook" case_sign_tool_hook
dkms_case "dkms remove leaves nothing behind" case_remove_leaves_nothing
dkms_case "modsignctl doctor: healthy, then each fault named" case_doctor
finish
