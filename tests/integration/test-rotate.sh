#!/bin/bash
# modsignctl rotate: key A -> key B over a scratch machine: two kernel trees
# (ROOT/lib/modules/KVER1, KVER2: updates/, extra/, misc/) and a DKMS-like tree, holding
# modules signed by A (plain, sha512, key-id mode, a .ko.xz), one signed by an unrelated key
# C, one unsigned, and A-signed ones where rotate must not look (lib/modules/KVER/kernel/,
# and behind a symlink in the DKMS tree).
#  - the trust gate: without --force and with a /proc/keys (MODSIGNCTL_PROC_KEYS, test
#    fixture) where the kernel does not know B, nothing changes and it waits (exit 5); a plain
#    rotate then refuses (a rotation is in progress); --resume once B is trusted finishes;
#  - --force: every A module is re-signed by B (modsignctl verify --cert B, openssl cms),
#    keeping its hash and key-id mode; C's module, the unsigned one and those out of scope
#    are byte-identical; the drop-in names B; the old key file is renamed *.retired;
#  - a crash half-way (MODSIGNCTL_ROTATE_CRASH_AFTER, exit 99): --status shows the progress,
#    --resume finishes with every A module signed by B;
#  - a running modsignd is reloaded and signs with B afterwards (modsignctl status).
# shellcheck disable=SC2317 # the case functions are called through run_case
set -eu
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=SCRIPTDIR/../daemon/lib.sh
. "$srcdir/tests/daemon/lib.sh"

daemon_setup_workdir
require_common
require_modsignctl
require_cmd xz python3
build_real_module
make_key_root rsa2048 a
make_key_root rsa2048 b
make_key_root rsa2048 c
KV1=6.1.0-rotate1-amd64
KV2=6.1.0-rotate2-amd64

# A key file the test may rename: a copy of key a per scenario.
# setup_machine DIR: the scratch machine under DIR; sets M (its root), CONF, STATE, the
# lists A_MODS (signed by A, in scope), KEEP (must stay byte-identical), and snapshots.
setup_machine() {
	M=$1
	local lm=$M/lib/modules dk=$M/var/lib/dkms/hello/1.0
	mkdir -p "$lm/$KV1/updates/dkms" "$lm/$KV1/extra" "$lm/$KV1/kernel/drivers" "$lm/$KV2/misc" \
		"$lm/$KV2/updates" "$dk/$KV1/x86_64/module" "$M/usr/src/hello-1.0" "$M/etc/modsignd" "$M/state"
	cp "$(key_of a)" "$M/etc/modsignd/a.key"
	cp "$(cert_of a)" "$M/etc/modsignd/a.crt"
	chmod 0600 "$M/etc/modsignd/a.key"
	CONF=$M/etc/modsignd/modsignd.conf
	STATE=$M/state
	printf '[Key]\nPrivateKey=%s\nCertificate=%s\n[Daemon]\nSocket=%s\nStateDirectory=%s\n' \
		"$M/etc/modsignd/a.key" "$M/etc/modsignd/a.crt" "$M/none.socket" "$STATE" >"$CONF"

	A_MODS=("$lm/$KV1/updates/dkms/a1.ko" "$lm/$KV1/extra/a2.ko.xz" "$lm/$KV2/misc/a3.ko"
		"$lm/$KV2/updates/a4.ko" "$dk/$KV1/x86_64/module/hello.ko")
	local f
	for f in "$lm/$KV1/updates/dkms/a1.ko" "$lm/$KV2/updates/a4.ko" "$dk/$KV1/x86_64/module/hello.ko" \
		"$lm/$KV2/updates/c.ko" "$lm/$KV2/updates/unsigned.ko" "$lm/$KV1/kernel/drivers/intree.ko" \
		"$M/usr/src/hello-1.0/behind-symlink.ko"; do
		cp "$REAL_MODULE" "$f"
		chmod 0644 "$f"
	done
	compress_module xz-crc32 "$REAL_MODULE" "$lm/$KV1/extra/a2.ko.xz"
	cp "$REAL_MODULE" "$lm/$KV2/misc/a3.ko"
	chmod 0644 "$lm/$KV2/misc/a3.ko"
	ms -q sign --hash sha256 --key "$(key_of a)" --cert "$(cert_of a)" \
		"$lm/$KV1/updates/dkms/a1.ko" "$lm/$KV1/extra/a2.ko.xz" "$dk/$KV1/x86_64/module/hello.ko" \
		"$lm/$KV1/kernel/drivers/intree.ko" "$M/usr/src/hello-1.0/behind-symlink.ko"
	ms -q sign --hash sha512 --key "$(key_of a)" --cert "$(cert_of a)" "$lm/$KV2/misc/a3.ko"
	ms -q sign --hash sha256 --keyid --key "$(key_of a)" --cert "$(cert_of a)" "$lm/$KV2/updates/a4.ko"
	ms -q sign --hash sha256 --key "$(key_of c)" --cert "$(cert_of c)" "$lm/$KV2/updates/c.ko"
	ln -s "$M/usr/src/hello-1.0" "$dk/source"
	ln -s "$dk/$KV1/x86_64/module/hello.ko" "$lm/$KV2/updates/link-to-dkms.ko"
	KEEP=("$lm/$KV2/updates/c.ko" "$lm/$KV2/updates/unsigned.ko" "$lm/$KV1/kernel/drivers/intree.ko"
		"$M/usr/src/hello-1.0/behind-symlink.ko")
	SNAP=()
	for f in "${KEEP[@]}"; do
		SNAP+=("$(snapshot "$f")")
	done
	for f in "${A_MODS[@]}"; do
		expect_exit 0 ms verify --cert "$(cert_of a)" "$f"
	done
	step "machine $M: ${#A_MODS[@]} modules signed by A in scope, ${#KEEP[@]} that must stay untouched"
}

# rot ARGS...: modsignctl with this machine's configuration and trees.
rot_args() {
	ROT=(--config "$CONF" rotate --modules-dir "$M/lib/modules" --dkms-tree "$M/var/lib/dkms")
}

# status_field NAME: a top-level field of rotate --status --json.
status_json() {
	expect_exit 0 ms --config "$CONF" --json rotate --status
	cp "$LAST_OUT" "$WORKDIR/status.json"
}
json_get() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); exec("print("+sys.argv[2]+")")' "$WORKDIR/status.json" "$1"; }

# assert_rotated: every A module verifies with B only, keeps its hash; the rest untouched.
assert_rotated() {
	local f i
	for f in "${A_MODS[@]}"; do
		expect_exit 0 ms verify --cert "$(cert_of b)" "$f"
		expect_exit 5 ms verify --cert "$(cert_of a)" "$f"
	done
	ok "every module A signed verifies with B now, no longer with A"
	assert_cms_verifies "${A_MODS[0]}" "$(cert_of b)" "openssl cms"
	[ "$(modinfo -F sig_hashalgo "${A_MODS[2]}")" = sha512 ] || fail "a3.ko lost its sha512"
	[ "$(modinfo -F sig_hashalgo "${A_MODS[0]}")" = sha256 ] || fail "a1.ko is not sha256"
	[ -z "$(modinfo -F signer "${A_MODS[3]}")" ] || fail "a4.ko (key-id mode) now names a signer by issuer"
	ok "hashes kept (sha256, sha512) and key-id mode kept"
	[ "$(count_signatures "${A_MODS[0]}")" = 1 ] || fail "signatures stacked on ${A_MODS[0]}"
	xz -t "${A_MODS[1]}" || fail "a2.ko.xz is not a valid xz file"
	for i in "${!KEEP[@]}"; do
		assert_unchanged "${KEEP[$i]}" "${SNAP[$i]}" "not the old key's, or out of scope"
	done
	[ -L "$M/lib/modules/$KV2/updates/link-to-dkms.ko" ] || fail "the symlink was replaced"
}

# trust_fixture NAME CERT RING: a /proc/keys text where CERT's key is in RING (or nowhere).
trust_fixture() {
	local d=$WORKDIR/fx-$1 skid
	skid=$(openssl x509 -in "$2" -noout -ext subjectKeyIdentifier | tail -n 1 | tr -d ' :' | tr 'A-F' 'a-f')
	mkdir -p "$d/members"
	cat >"$d/keys" <<KEYS
3ac2be1c I------     1 perm 1f0b0000     0     0 keyring   .builtin_trusted_keys: 1
2e0e4a3b I------     1 perm 1f0f0000     0     0 keyring   .secondary_trusted_keys: 2
0c8f7a2d I------     1 perm 1f0f0000     0     0 keyring   .machine: 1
1a2b3c4d I------     1 perm 1f030000     0     0 asymmetri modsignd test b: $skid: X509.rsa ${skid:32:8} []
KEYS
	: >"$d/members/.builtin_trusted_keys"
	if [ -n "$3" ]; then
		echo 1a2b3c4d >"$d/members/$3"
	fi
	printf '%s' "$d"
}

case_trust_gate_then_resume() {
	local fx i
	setup_machine "$WORKDIR/m1"
	rot_args
	expect_exit 0 ms --config "$CONF" rotate --status
	grep -q 'No key rotation' "$LAST_OUT" || fail "--status before any rotation says: $(cat "$LAST_OUT")"
	fx=$(trust_fixture untrusted "$(cert_of b)" "")
	step "the kernel does not trust B yet: rotate waits, changes nothing"
	MODSIGNCTL_PROC_KEYS=$fx/keys MODSIGNCTL_KEYRING_DIR=$fx/members \
		expect_exit 5 ms "${ROT[@]}" --new-key "$(key_of b)" --new-cert "$(cert_of b)"
	grep -q 'does not trust the new certificate' "$LAST_ERR" || fail "no word about trust: $(cat "$LAST_ERR")"
	for i in "${A_MODS[@]}"; do
		expect_exit 0 ms verify --cert "$(cert_of a)" "$i"
	done
	[ ! -e "$M/etc/modsignd/modsignd.conf.d/50-rotation.conf" ] || fail "the drop-in was written already"
	[ -f "$M/etc/modsignd/a.key" ] || fail "the old key was retired already"
	status_json
	[ "$(json_get 'd["phase"]')" = waiting-trust ] || fail "phase is not waiting-trust"
	[ "$(json_get 'd["new"]["fingerprint_sha256"]')" = "$(openssl x509 -in "$(cert_of b)" -outform DER | sha256sum | cut -d' ' -f1)" ] ||
		fail "the state's new fingerprint is not B's"
	ok "waiting for trust, nothing changed; state names B's fingerprint"
	step "a plain rotate refuses while one is in progress"
	expect_exit 1 ms "${ROT[@]}" --force --new-key "$(key_of c)" --new-cert "$(cert_of c)"
	grep -q 'in progress' "$LAST_ERR" || fail "the refusal does not say a rotation is in progress"
	step "B trusted through .machine: --resume finishes"
	fx=$(trust_fixture trusted "$(cert_of b)" .machine)
	MODSIGNCTL_PROC_KEYS=$fx/keys MODSIGNCTL_KEYRING_DIR=$fx/members expect_exit 0 ms --config "$CONF" rotate --resume
	assert_rotated
	status_json
	[ "$(json_get 'd["phase"]')" = "done" ] || fail "phase is not done"
	[ "$(json_get 'd["counts"]["done"]')" = "${#A_MODS[@]}" ] || fail "done count is not ${#A_MODS[@]}"
	ok "state: done, ${#A_MODS[@]} modules"
}
run_case "the trust gate: wait for the kernel to trust B, then --resume" case_trust_gate_then_resume

case_force() {
	setup_machine "$WORKDIR/m2"
	rot_args
	expect_exit 0 ms "${ROT[@]}" --force --new-key "$(key_of b)" --new-cert "$(cert_of b)"
	assert_rotated
	if ! grep -qx "PrivateKey=$(key_of b)" "$M/etc/modsignd/modsignd.conf.d/50-rotation.conf" ||
		! grep -qx "Certificate=$(cert_of b)" "$M/etc/modsignd/modsignd.conf.d/50-rotation.conf"; then
		fail "the drop-in does not name B" "$(cat "$M/etc/modsignd/modsignd.conf.d/50-rotation.conf")"
	fi
	ok "drop-in $M/etc/modsignd/modsignd.conf.d/50-rotation.conf names B"
	if [ -e "$M/etc/modsignd/a.key" ] || ! cmp -s "$M/etc/modsignd/a.key.retired" "$(key_of a)"; then
		fail "the old key was not renamed to a.key.retired"
	fi
	ok "the old key is kept as a.key.retired"
	step "the configuration as modsignd reads it now signs with B"
	ms --config "$CONF" rotate --status >"$WORKDIR/st.txt"
	grep -q '^Phase: *done' "$WORKDIR/st.txt" || fail "--status does not say done" "$(cat "$WORKDIR/st.txt")"
	expect_exit 0 ms --config "$CONF" rotate --resume --help
	expect_exit 1 ms --config "$CONF" rotate --resume
	ok "--resume after done: nothing in progress"
}
run_case "rotate --force: every A module re-signed by B, nothing else touched" case_force

case_crash_resume() {
	local done_before pending_before
	setup_machine "$WORKDIR/m3"
	rot_args
	step "MODSIGNCTL_ROTATE_CRASH_AFTER=2: dies after the second module is replaced"
	MODSIGNCTL_ROTATE_CRASH_AFTER=2 expect_exit 99 ms "${ROT[@]}" --force --delete-old \
		--new-key "$(key_of b)" --new-cert "$(cert_of b)"
	status_json
	done_before=$(json_get 'len(d["modules"]["done"])')
	pending_before=$(json_get 'len(d["modules"]["pending"])')
	[ "$(json_get 'd["phase"]')" = resigning ] || fail "phase after the crash is not resigning"
	# The second module was replaced but not yet recorded: the worst moment.
	{ [ "$done_before" = 1 ] && [ "$pending_before" = $((${#A_MODS[@]} - 1)) ]; } ||
		fail "after the crash: $done_before done, $pending_before pending (expected 1 and $((${#A_MODS[@]} - 1)))"
	ok "after the crash: phase resigning, $done_before done, $pending_before pending"
	ms --config "$CONF" rotate --status >"$WORKDIR/st.txt"
	grep -q "1 re-signed, $pending_before pending" "$WORKDIR/st.txt" || fail "--status: $(cat "$WORKDIR/st.txt")"
	expect_exit 1 ms "${ROT[@]}" --force --new-key "$(key_of b)" --new-cert "$(cert_of b)"
	grep -q 'in progress' "$LAST_ERR" || fail "a plain rotate does not refuse"
	expect_exit 0 ms --config "$CONF" rotate --resume
	assert_rotated
	status_json
	{ [ "$(json_get 'd["phase"]')" = "done" ] && [ "$(json_get 'len(d["modules"]["done"])')" = "${#A_MODS[@]}" ] &&
		[ "$(json_get 'len(d["modules"]["pending"])')" = 0 ]; } || fail "state after resume: $(cat "$WORKDIR/status.json")"
	{ [ ! -e "$M/etc/modsignd/a.key" ] && [ ! -e "$M/etc/modsignd/a.key.retired" ]; } || fail "--delete-old kept the old key"
	ok "resumed: every module signed by B; --delete-old removed the old key"
}
run_case "a rotation killed half-way resumes with --resume" case_crash_resume

# daemon_fpr: the fingerprint of the key the running daemon signs with.
daemon_fpr() {
	ctl --json status
	[ "$LAST_RC" -eq 0 ] || fail "modsignctl status: exit $LAST_RC: $(cat "$LAST_ERR")"
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["key_fingerprint"])' "$LAST_OUT"
}

case_daemon_reload() {
	local before after
	daemon_require
	setup_machine "$WORKDIR/m4"
	# The daemon of this machine, watching nothing but an empty tree.
	mkdir -p "$M/watch"
	printf '[Key]\nPrivateKey=%s\nCertificate=%s\n[Signing]\nHash=sha256\n[Watch]\nPath=\nPath=%s\n[Daemon]\nSocket=%s\nStateDirectory=%s\nWorkers=1\n' \
		"$M/etc/modsignd/a.key" "$M/etc/modsignd/a.crt" "$M/watch" "$M/own.socket" "$STATE" >"$CONF"
	DAEMON_DIR=$M
	DAEMON_CONF=$CONF
	daemon_start direct
	before=$(daemon_fpr)
	rot_args
	expect_exit 0 ms "${ROT[@]}" --force --new-key "$(key_of b)" --new-cert "$(cert_of b)"
	grep -q 'modsignd reloaded' "$LAST_ERR" || fail "rotate did not reload the daemon" "$(cat "$LAST_ERR")"
	after=$(daemon_fpr)
	{ [ "$before" != "$after" ] &&
		[ "$after" = "$(openssl x509 -in "$(cert_of b)" -outform DER | sha256sum | cut -d' ' -f1)" ]; } ||
		fail "the daemon signs with $after (before: $before), not B"
	ok "modsignd signed with A ($before), signs with B now"
	assert_rotated
	daemon_stop 20
}
run_case "a running modsignd is reloaded onto B" case_daemon_reload

finish
