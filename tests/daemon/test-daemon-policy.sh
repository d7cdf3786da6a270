#!/bin/bash
# The policy gate (src/lib/policy.h) as the daemon applies it, rule by rule. Each refusal is
# asserted three ways: the module is not signed, the rule and reason reach the requester (the
# SIGN client's error reply, `modsignctl dkms-sign-file`'s message, or the daemon's log for the
# watcher), and the audit log has a "refused" record with that rule
# (`modsignctl audit show --json`). The [Policy] section is rewritten and reloaded between
# cases (one daemon throughout, activated as systemd does).
#  - always refused: not-a-module, vermagic, kernel-not-installed, compressed (SIGN), hash,
#    file-owner, dir-writable, blocklist (by SHA-256 and by name glob), deny,
#    signed-by-trusted-key (TrustedCertificates=, and a key of the kernel's trusted keyrings,
#    from a /proc/keys fixture: by SKID, and by issuer name, failing closed; the CLI's
#    --replace does not lift it; and against the running kernel's own /proc/keys), signed-by-another-key, cert-expired, cert-revoked,
#    cert-usage, rate-limit (one bucket for the daemon and every modsignctl sign);
#  - Mode=allowlist: globs admit and refuse (not-allowlisted);
#  - Mode=dkms: a module in the DKMS tree that its package's dkms.conf builds is signed; one
#    it does not build is refused (dkms-unregistered); a scratch module is refused (not-dkms);
#    the DKMS shim (ORIGIN=dkms) is believed for its build directory, not elsewhere;
#  - Mode=approve end to end: a new module waits (not-approved), `modsignctl pending` lists
#    it, `modsignctl approve NAME` approves it and has the daemon scan its directory, and it
#    is signed then (the next arrival would do too); the approval is an "approved" record of
#    the audit chain, with the approver.
# shellcheck disable=SC2317 # the case functions are called through run_case
set -eu
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=SCRIPTDIR/lib.sh
. "$srcdir/tests/daemon/lib.sh"

daemon_setup_workdir
daemon_require
require_cmd jq sha256sum xz
make_key_root rsa2048 a
make_key_root rsa2048 b
make_key_root rsa2048 k # a key the kernel trusts (in the /proc/keys fixture below)
CERT=$(cert_of a)
FPR=$(openssl x509 -in "$CERT" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')
daemon_helper sign-client
CLIENT=$HELPER
ARCH=$(uname -m)

mkdir -p "$WORKDIR/src" "$WORKDIR/out" "$WORKDIR/etc"
for n in plain hashmod owned foreign trusted blocked_sha blockedname denied vbox_x alpha beta scratch newmod \
	rated1 rated2 rated3 wr expired revoked usage kern kernkid shared1 shared2 shared3 shared4 shared5 \
	shared6 shared7 shared8 shared9; do
	make_small_module "$WORKDIR/src/$n.ko" "$n"
done
expect_exit 0 "$MODSIGNCTL" sign --key "$(key_of b)" --cert "$(cert_of b)" --hash sha256 "$WORKDIR/src/foreign.ko"
expect_exit 0 "$MODSIGNCTL" sign --key "$(key_of b)" --cert "$(cert_of b)" --hash sha256 "$WORKDIR/src/trusted.ko"
expect_exit 0 "$MODSIGNCTL" sign --key "$(key_of k)" --cert "$(cert_of k)" --hash sha256 "$WORKDIR/src/kern.ko"
expect_exit 0 "$MODSIGNCTL" sign --key "$(key_of k)" --cert "$(cert_of k)" --hash sha256 --keyid "$WORKDIR/src/kernkid.ko"
printf 'not a module\n' >"$WORKDIR/src/text.ko"
# a relocatable object with a .modinfo but no vermagic
printf 'static const char __attribute__((section(".modinfo"), used)) m[] = "name=novm\\0license=GPL\\0";\n' \
	>"$WORKDIR/novm.c"
gcc -c -o "$WORKDIR/src/novm.ko" "$WORKDIR/novm.c" || fail "cannot build novm.ko"
cp "$WORKDIR/src/plain.ko" "$WORKDIR/src/comp.ko"
xz --check=crc32 "$WORKDIR/src/comp.ko"

# Keys the certificate rules refuse: expired (openssl ca with dates in the past), and one for
# TLS servers only (extendedKeyUsage serverAuth, keyUsage keyEncipherment).
make_special_key() {
	local name=$1 dir=$WORKDIR/keys/$1
	mkdir -p "$dir/certs"
	: >"$dir/index.txt"
	echo 01 >"$dir/serial"
	cat >"$dir/ca.cnf" <<-EOF
		[ca]
		default_ca = c
		[c]
		database = $dir/index.txt
		new_certs_dir = $dir/certs
		serial = $dir/serial
		default_md = sha256
		policy = p
		x509_extensions = ext
		unique_subject = no
		[p]
		commonName = supplied
		[req]
		distinguished_name = dn
		prompt = no
		[dn]
		CN = modsignd test $name
		[ext]
		$2
	EOF
	openssl req -new -newkey rsa:2048 -nodes -keyout "$dir/key.pem" -out "$dir/req.csr" -config "$dir/ca.cnf" \
		>"$dir/log" 2>&1 || fail "openssl req failed for $name" "$(cat "$dir/log")"
	openssl ca -batch -selfsign -config "$dir/ca.cnf" -keyfile "$dir/key.pem" -in "$dir/req.csr" -out "$dir/cert.pem" \
		-startdate "$3" -enddate "$4" >>"$dir/log" 2>&1 || fail "openssl ca failed for $name" "$(cat "$dir/log")"
	chmod 0600 "$dir/key.pem"
}
make_special_key expired $'keyUsage = digitalSignature\nextendedKeyUsage = codeSigning' 20200101000000Z 20210101000000Z
make_special_key tls $'keyUsage = keyEncipherment\nextendedKeyUsage = serverAuth' 20200101000000Z 20991231000000Z

# A DKMS tree with one registered package that builds "alpha" (not "beta").
DKMS_TREE=$WORKDIR/dkms
PKGDIR=$DKMS_TREE/pkg/1.0
mkdir -p "$PKGDIR/source" "$PKGDIR/$KVER/$ARCH/module" "$PKGDIR/build"
cat >"$PKGDIR/source/dkms.conf" <<EOF
PACKAGE_NAME="pkg"
PACKAGE_VERSION="1.0"
BUILT_MODULE_NAME[0]="alpha"
DEST_MODULE_LOCATION[0]="/updates/dkms"
EOF

# The kernel, as /proc/keys and its keyrings' members show it (tests/integration/test-enroll.sh
# has the format): key k (described "CN: SKID", as the kernel describes an X.509 key) in
# .machine, a distribution key in .builtin_trusted_keys. Key b is in none.
KSKID=$(openssl x509 -in "$(cert_of k)" -noout -ext subjectKeyIdentifier | tail -n 1 | tr -d ' :' | tr 'A-F' 'a-f')
KCN=$(openssl x509 -in "$(cert_of k)" -noout -subject -nameopt sep_multiline,utf8 | sed -n 's/^ *CN=//p')
if [ -z "$KSKID" ] || [ "$KCN" != "modsignd test k" ]; then
	fail "cannot read key k's SKID and CN ($KSKID, $KCN)"
fi
KERNEL_FX=$WORKDIR/kernel
mkdir -p "$KERNEL_FX/members"
cat >"$KERNEL_FX/keys" <<KEYS
3ac2be1c I------     1 perm 1f0b0000     0     0 keyring   .builtin_trusted_keys: 1
2e0e4a3b I------     1 perm 1f0f0000     0     0 keyring   .secondary_trusted_keys: 2
0c8f7a2d I------     1 perm 1f0f0000     0     0 keyring   .machine: 1
11aa22bb I------     1 perm 1f0b0000     0     0 keyring   .platform: empty
1a2b3c4d I------     1 perm 1f030000     0     0 asymmetri $KCN: $KSKID: X509.rsa ${KSKID:32:8} []
1a2b3c4f I------     1 perm 1f030000     0     0 asymmetri Debian Secure Boot CA: 6ccece7e4c6c0d1f6149f3dd27dfcc5cbb419ea1: X509.rsa bb419ea1 []
KEYS
echo 1a2b3c4f >"$KERNEL_FX/members/.builtin_trusted_keys"
echo "3ac2be1c 0c8f7a2d" >"$KERNEL_FX/members/.secondary_trusted_keys"
echo 1a2b3c4d >"$KERNEL_FX/members/.machine"
export MODSIGNCTL_PROC_KEYS=$KERNEL_FX/keys MODSIGNCTL_KEYRING_DIR=$KERNEL_FX/members
DAEMON_ENV="MODSIGNCTL_PROC_KEYS=$MODSIGNCTL_PROC_KEYS MODSIGNCTL_KEYRING_DIR=$MODSIGNCTL_KEYRING_DIR"

make_tree "$WORKDIR/root"
daemon_config "$WORKDIR/d" a "$TREE_ROOT" "$DKMS_TREE"
BASE_CONF=$(cat "$DAEMON_CONF")
LOG=$WORKDIR/d/state/audit.jsonl
daemon_start activate

sha() { sha256sum "$1" | cut -d' ' -f1; }

# set_policy LINE...: the base configuration, then a [Policy] section of these lines (after
# Allow= and RateLimit=off, which reset the base's allowlist), and a reload.
set_policy() {
	{
		printf '%s\n' "$BASE_CONF"
		printf '[Policy]\nAllow=\nRateLimit=off\n'
		printf '%s\n' "$@"
	} >"$DAEMON_CONF"
	wait_idle
	ctl reload
	[ "$LAST_RC" -eq 0 ] || { _report_last; daemon_show_log; fail "reload with policy '$*' failed"; }
}

# audit_last PATH: the last record of the audit log (as `audit show --json` gives it) for PATH.
audit_last() {
	"$MODSIGNCTL" audit show --file "$LOG" --json | jq -c --arg p "$1" 'select(.path == $p)' | tail -n 1
}

# expect_record PATH EVENT RULE [REQUESTER]: the last record for PATH says so.
expect_record() {
	local rec
	rec=$(audit_last "$1")
	[ -n "$rec" ] || fail "no audit record for $1"
	[ "$(jq -r .event <<<"$rec")" = "$2" ] || fail "audit record of $1: event $(jq -r .event <<<"$rec"), expected $2" "$rec"
	[ "$(jq -r '.rule // "-"' <<<"$rec")" = "$3" ] || fail "audit record of $1: rule $(jq -r .rule <<<"$rec"), expected $3" "$rec"
	if [ -n "${4:-}" ]; then
		[ "$(jq -r 'if (.requester|type) == "object" then .requester.comm else .requester end' <<<"$rec")" = "$4" ] ||
			fail "audit record of $1: requester $(jq -c .requester <<<"$rec"), expected $4" "$rec"
	fi
	ok "audit: $rec"
}

# sign_refused MODULE NAME RULE [HASH [KERNEL]]: a SIGN request is refused with RULE, the
# reply carries it and a reason, nothing is written, and the audit log records it.
sign_refused() {
	local module=$1 name=$2 rule=$3 hash=${4:-sha256} kernel=${5:-$KVER}
	rm -f "$WORKDIR/out/$name"
	run_cmd "$CLIENT" "$DAEMON_SOCKET" sign "$module" "$WORKDIR/out/$name" "$hash" "$name" "$kernel"
	if [ "$LAST_RC" -ne 1 ] || ! grep -q "rule=$rule message=." "$LAST_OUT"; then
		_report_last
		daemon_show_log
		fail "SIGN of $name: expected a refusal with rule $rule"
	fi
	[ ! -e "$WORKDIR/out/$name" ] || fail "a signature was handed out for $name"
	ok "SIGN $name: $(cat "$LAST_OUT")"
	expect_record "$name" refused "$rule" sign-client
}

# sign_ok MODULE NAME: a SIGN request is answered with a signature that verifies.
sign_ok() {
	rm -f "$WORKDIR/out/$2"
	run_cmd "$CLIENT" "$DAEMON_SOCKET" sign "$1" "$WORKDIR/out/$2" sha256 "$2" "$KVER"
	[ "$LAST_RC" -eq 0 ] || { _report_last; daemon_show_log; fail "SIGN of $2 was not answered with a signature"; }
	assert_verifies "$CERT" "$WORKDIR/out/$2"
	expect_record "$2" signed sign-request sign-client
}

# log_has_rule PATH RULE: the daemon logged a decision about PATH naming RULE.
log_has_rule() {
	grep -F -- "$1" "$DAEMON_LOG" | grep -qF "rule $2"
}

# tree_refused PATH RULE: the watcher (or a scan) refuses PATH with RULE: the log says so with
# the rule, the file is unchanged, and the audit log records it.
tree_refused() {
	local path=$1 rule=$2 before
	before=$(sha "$path")
	wait_until "$DAEMON_TIMEOUT" "the refusal of $path (rule $rule) in the log" log_has_rule "$path" "$rule"
	ok "log: $(grep -F -- "$path" "$DAEMON_LOG" | tail -n 1)"
	[ "$(sha "$path")" = "$before" ] || fail "$path was changed although it was refused"
	expect_record "$path" refused "$rule" watcher
}

case_module_rules() {
	set_policy Mode=allowlist 'Allow=*'
	step "not an ELF module"
	sign_refused "$WORKDIR/src/text.ko" text.ko not-a-module
	step "no vermagic and no KERNEL"
	sign_refused "$WORKDIR/src/novm.ko" novm.ko vermagic sha256 -
	step "a kernel that is not installed"
	sign_refused "$WORKDIR/src/plain.ko" plain-9.ko kernel-not-installed sha256 9.99.0-nope
	step "a compressed module over the socket"
	sign_refused "$WORKDIR/src/comp.ko.xz" comp.ko.xz compressed
	step "a weak hash"
	sign_refused "$WORKDIR/src/hashmod.ko" hashmod.ko hash sha1
	step "for contrast: the same module with sha256 is signed"
	sign_ok "$WORKDIR/src/hashmod.ko" hashmod-ok.ko
}
run_case "module rules: not-a-module, vermagic, kernel-not-installed, compressed, hash" case_module_rules

case_file_rules() {
	step "a file not owned by root (SIGN)"
	cp "$WORKDIR/src/owned.ko" "$WORKDIR/src/owned-1000.ko"
	chown 1000:1000 "$WORKDIR/src/owned-1000.ko"
	sign_refused "$WORKDIR/src/owned-1000.ko" owned-1000.ko file-owner
	step "a file not owned by root (watcher)"
	cp "$WORKDIR/src/owned.ko" "$WORKDIR/staged.ko"
	chown 1000:1000 "$WORKDIR/staged.ko"
	mv "$WORKDIR/staged.ko" "$UPD/owned.ko"
	tree_refused "$UPD/owned.ko" file-owner
	step "a module in a world-writable directory (watcher)"
	mkdir -p "$UPD/wr"
	chmod 0777 "$UPD/wr"
	cp "$WORKDIR/src/wr.ko" "$UPD/wr/wr.ko"
	tree_refused "$UPD/wr/wr.ko" dir-writable
	step "group-writable, sticky or not, is no better (a scan)"
	chmod 1775 "$UPD/wr"
	ctl --json scan "$UPD/wr"
	[ "$(jq -r .refused "$LAST_OUT")" = 1 ] || { _report_last; fail "the scan did not refuse wr.ko"; }
	ok "scan (exit $LAST_RC): $(jq -c . "$LAST_OUT")"
	expect_record "$UPD/wr/wr.ko" refused dir-writable
}
run_case "file rules: file-owner, dir-writable" case_file_rules

case_lists() {
	printf '# test blocklist\n%s\nblocked*name\n' "$(sha "$WORKDIR/src/blocked_sha.ko")" >"$WORKDIR/etc/blocklist"
	set_policy Mode=allowlist 'Allow=*' "Blocklist=$WORKDIR/etc/blocklist" 'Deny=vbox*' 'Deny=denied'
	step "blocklisted by SHA-256 (SIGN)"
	sign_refused "$WORKDIR/src/blocked_sha.ko" blocked_sha.ko blocklist
	grep -q "SHA-256 $(sha "$WORKDIR/src/blocked_sha.ko")" "$LAST_OUT" || fail "the reason does not name the digest"
	step "blocklisted by a name glob (watcher)"
	cp "$WORKDIR/src/blockedname.ko" "$UPD/blockedname.ko"
	tree_refused "$UPD/blockedname.ko" blocklist
	step "Deny= globs (SIGN and watcher); Allow=* does not override them"
	sign_refused "$WORKDIR/src/vbox_x.ko" vbox_x.ko deny
	cp "$WORKDIR/src/denied.ko" "$UPD/denied.ko"
	tree_refused "$UPD/denied.ko" deny
	step "modsignctl sign (the CLI) passes the same gate"
	cp "$WORKDIR/src/denied.ko" "$WORKDIR/out/cli-denied.ko"
	run_cmd env "MODSIGND_STATE_DIRECTORY=$WORKDIR/d/state" "$MODSIGNCTL" --config "$DAEMON_CONF" sign \
		--key "$(key_of a)" --cert "$CERT" --hash sha256 "$WORKDIR/out/cli-denied.ko"
	if [ "$LAST_RC" -ne 1 ] || ! grep -q "refused by policy: .*(rule deny)" "$LAST_ERR"; then
		_report_last
		fail "modsignctl sign did not refuse with rule deny"
	fi
	ok "$(cat "$LAST_ERR")"
	expect_record "$WORKDIR/out/cli-denied.ko" refused deny cli
}
run_case "lists: blocklist (digest and name), deny" case_lists

case_signatures() {
	set_policy Mode=allowlist 'Allow=*' "TrustedCertificates=$(cert_of b)"
	step "signed by a key the kernel trusts (TrustedCertificates=): never re-signed (SIGN and watcher)"
	sign_refused "$WORKDIR/src/trusted.ko" trusted.ko signed-by-trusted-key
	cp "$WORKDIR/src/trusted.ko" "$UPD/trusted.ko"
	tree_refused "$UPD/trusted.ko" signed-by-trusted-key
	set_policy Mode=allowlist 'Allow=*'
	step "signed by another key, not trusted"
	sign_refused "$WORKDIR/src/foreign.ko" foreign.ko signed-by-another-key
}
run_case "signatures: signed-by-trusted-key, signed-by-another-key" case_signatures

# cli_sign FILE [ARGS...]: modsignctl sign with our key, recording in the daemon's state.
cli_sign() {
	local file=$1
	shift
	run_cmd env "MODSIGND_STATE_DIRECTORY=$WORKDIR/d/state" "$MODSIGNCTL" --config "$DAEMON_CONF" sign \
		--key "$(key_of a)" --cert "$CERT" --hash sha256 "$@" "$file"
}

# expect_reason PATH TEXT: the last audit record of PATH gives a reason containing TEXT.
expect_reason() {
	audit_last "$1" | jq -r .reason | grep -qF -- "$2" ||
		fail "the audit record of $1 does not say '$2'" "$(audit_last "$1")"
}

case_kernel_keyrings() {
	set_policy Mode=allowlist 'Allow=*'
	step "signed by a key of the kernel's .machine keyring (issuer and serial: by name, failing closed)"
	sign_refused "$WORKDIR/src/kern.ko" kern.ko signed-by-trusted-key
	grep -qF ".machine" "$LAST_OUT" || fail "the refusal does not name the keyring" "$(cat "$LAST_OUT")"
	expect_reason kern.ko "failing closed"
	expect_reason kern.ko "modsignd test k"
	step "... by subjectKeyIdentifier (key-id mode), SIGN and watcher"
	sign_refused "$WORKDIR/src/kernkid.ko" kernkid.ko signed-by-trusted-key
	expect_reason kernkid.ko "subjectKeyIdentifier $KSKID"
	cp "$WORKDIR/src/kernkid.ko" "$UPD/kernkid.ko"
	tree_refused "$UPD/kernkid.ko" signed-by-trusted-key
	step "modsignctl sign --replace does not replace it either"
	cp "$WORKDIR/src/kern.ko" "$WORKDIR/out/cli-kern.ko"
	cli_sign "$WORKDIR/out/cli-kern.ko" --replace
	if [ "$LAST_RC" -ne 1 ] || ! grep -q "refused by policy: .*(rule signed-by-trusted-key)" "$LAST_ERR"; then
		_report_last
		fail "modsignctl sign --replace did not refuse with rule signed-by-trusted-key"
	fi
	ok "$(cat "$LAST_ERR")"
	expect_record "$WORKDIR/out/cli-kern.ko" refused signed-by-trusted-key cli
	cmp -s "$WORKDIR/src/kern.ko" "$WORKDIR/out/cli-kern.ko" || fail "the refused module was changed"
	step "a signer whose name and SKID the keyrings do not hold: another key's, and --replace re-signs it"
	sign_refused "$WORKDIR/src/foreign.ko" foreign-k.ko signed-by-another-key
	cp "$WORKDIR/src/foreign.ko" "$WORKDIR/out/cli-foreign.ko"
	cli_sign "$WORKDIR/out/cli-foreign.ko" --replace
	[ "$LAST_RC" -eq 0 ] || { _report_last; fail "modsignctl sign --replace refused a module of an untrusted key"; }
	assert_verifies "$CERT" "$WORKDIR/out/cli-foreign.ko"
	step "key k loaded in the kernel but in no trusted keyring: not trusted"
	: >"$KERNEL_FX/members/.machine"
	sign_refused "$WORKDIR/src/kernkid.ko" kernkid-loose.ko signed-by-another-key
	echo 1a2b3c4d >"$KERNEL_FX/members/.machine"
}
run_case "signed-by-trusted-key: the kernel's trusted keyrings (a /proc/keys fixture)" case_kernel_keyrings

# The running kernel's own /proc/keys: key k loaded into a throw-away session keyring (in no
# trusted keyring), as the kernel describes it. modsignctl sign --replace reads the real
# trusted keyrings with keyctl and re-signs; told that the key is a member of
# .builtin_trusted_keys (MODSIGNCTL_KEYRING_DIR, the kernel's /proc/keys text still real), it
# refuses, by SKID and by issuer name.
case_kernel_real() {
	command -v keyctl >/dev/null 2>&1 || skip_case "keyctl (Debian package keyutils) is not installed"
	grep -q ' keyring ' /proc/keys 2>/dev/null || skip_case "/proc/keys lists no keyrings here"
	grep -q ' keyring *\.builtin_trusted_keys:' /proc/keys || skip_case "this kernel shows no .builtin_trusted_keys"
	openssl x509 -in "$(cert_of k)" -outform DER -out "$WORKDIR/k.der"
	mkdir -p "$WORKDIR/real-members"
	cp "$WORKDIR/src/kern.ko" "$WORKDIR/out/real-kern.ko"
	cp "$WORKDIR/src/kernkid.ko" "$WORKDIR/out/real-kernkid.ko"
	cp "$WORKDIR/src/kern.ko" "$WORKDIR/out/real-kern-2.ko"
	cp "$WORKDIR/src/kernkid.ko" "$WORKDIR/out/real-kernkid-2.ko"
	# shellcheck disable=SC2016 # the script's variables are its own arguments
	run_cmd keyctl session - bash -c '
		der=$1 members=$2 out=$3
		shift 3
		id=$(keyctl padd asymmetric "" @s <"$der") || exit 99
		grep -q "^$(printf %08x "$id") .*asymmetri" /proc/keys || exit 98
		env -u MODSIGNCTL_PROC_KEYS -u MODSIGNCTL_KEYRING_DIR "$@" "$out/real-kern.ko" "$out/real-kernkid.ko" || exit 97
		printf "%08x\n" "$id" >"$members/.builtin_trusted_keys"
		env -u MODSIGNCTL_PROC_KEYS "MODSIGNCTL_KEYRING_DIR=$members" "$@" "$out/real-kern-2.ko" && exit 96
		env -u MODSIGNCTL_PROC_KEYS "MODSIGNCTL_KEYRING_DIR=$members" "$@" "$out/real-kernkid-2.ko" && exit 95
		exit 0' _ "$WORKDIR/k.der" "$WORKDIR/real-members" "$WORKDIR/out" \
		env "MODSIGND_STATE_DIRECTORY=$WORKDIR/d/state" "$MODSIGNCTL" --config "$DAEMON_CONF" sign \
		--key "$(key_of a)" --cert "$CERT" --hash sha256 --replace
	case $LAST_RC in
	0) ;;
	99) skip_case "this kernel cannot load X.509 keys (keyctl padd asymmetric failed: $(cat "$LAST_ERR"))" ;;
	98) fail "the key added is not in /proc/keys" ;;
	97) _report_last; fail "a key outside the trusted keyrings kept modsignctl sign --replace from re-signing" ;;
	*) _report_last; fail "a member of .builtin_trusted_keys did not refuse (exit $LAST_RC)" ;;
	esac
	ok "$(cat "$LAST_ERR")"
	cp "$LAST_ERR" "$WORKDIR/real-kernel.err"
	grep -q "real-kern-2.ko: not signed: .*issuer 'modsignd test k'.*of .builtin_trusted_keys.*(rule signed-by-trusted-key)" \
		"$WORKDIR/real-kernel.err" || fail "the issuer-name refusal is not as expected" "$(cat "$WORKDIR/real-kernel.err")"
	grep -q "real-kernkid-2.ko: not signed: .*subjectKeyIdentifier $KSKID is key 'modsignd test k: $KSKID' of .builtin_trusted_keys" \
		"$WORKDIR/real-kernel.err" || fail "the SKID refusal is not as expected" "$(cat "$WORKDIR/real-kernel.err")"
	cmp -s "$WORKDIR/src/kern.ko" "$WORKDIR/out/real-kern-2.ko" || fail "a refused module was changed"
	assert_verifies "$CERT" "$WORKDIR/out/real-kern.ko"
	assert_verifies "$CERT" "$WORKDIR/out/real-kernkid.ko"
}
run_case "signed-by-trusted-key: the running kernel's /proc/keys and keyrings" case_kernel_real

case_certificates() {
	local fpr_b
	step "an expired certificate signs nothing"
	set_policy Mode=allowlist 'Allow=*' '[Key]' "PrivateKey=$WORKDIR/keys/expired/key.pem" \
		"Certificate=$WORKDIR/keys/expired/cert.pem"
	sign_refused "$WORKDIR/src/expired.ko" expired.ko cert-expired
	step "a certificate for TLS servers (no codeSigning) signs nothing"
	set_policy Mode=allowlist 'Allow=*' '[Key]' "PrivateKey=$WORKDIR/keys/tls/key.pem" \
		"Certificate=$WORKDIR/keys/tls/cert.pem"
	sign_refused "$WORKDIR/src/usage.ko" usage.ko cert-usage
	step "a revoked certificate (by fingerprint, from a file) signs nothing"
	printf '%s\n' "$FPR" >"$WORKDIR/etc/revoked"
	set_policy Mode=allowlist 'Allow=*' "RevokedCertificates=$WORKDIR/etc/revoked"
	sign_refused "$WORKDIR/src/revoked.ko" revoked.ko cert-revoked
	step "... by serial number"
	set_policy Mode=allowlist 'Allow=*' "RevokedCertificates=$(openssl x509 -in "$CERT" -noout -serial | sed 's/.*=//')"
	sign_refused "$WORKDIR/src/revoked.ko" revoked2.ko cert-revoked
	step "another key's fingerprint revoked: ours still signs"
	fpr_b=$(openssl x509 -in "$(cert_of b)" -noout -fingerprint -sha256 | sed 's/.*=//')
	set_policy Mode=allowlist 'Allow=*' "RevokedCertificates=$fpr_b"
	sign_ok "$WORKDIR/src/revoked.ko" revoked-ok.ko
}
run_case "certificates: cert-expired, cert-usage, cert-revoked" case_certificates

case_rate_limit() {
	set_policy Mode=allowlist 'Allow=*' RateLimit=2/hour
	step "RateLimit=2/hour: two signatures, then refused"
	sign_ok "$WORKDIR/src/rated1.ko" rated1.ko
	sign_ok "$WORKDIR/src/rated2.ko" rated2.ko
	sign_refused "$WORKDIR/src/rated3.ko" rated3.ko rate-limit
	step "a refusal by another rule is that rule's, not the rate limit's"
	sign_refused "$WORKDIR/src/plain.ko" plain-9b.ko kernel-not-installed sha256 9.99.0-nope
}
run_case "rate-limit" case_rate_limit

case_rate_shared() {
	local state=$WORKDIR/d/state i
	set_policy Mode=allowlist 'Allow=*' RateLimit=3/minute
	rm -f "$state/ratelimit"
	step "RateLimit=3/minute: four modsignctl sign runs (four processes), the fourth refused"
	for i in 1 2 3; do
		cp "$WORKDIR/src/shared$i.ko" "$WORKDIR/out/shared$i.ko"
		cli_sign "$WORKDIR/out/shared$i.ko"
		[ "$LAST_RC" -eq 0 ] || { _report_last; fail "modsignctl sign $i of 3 was refused"; }
	done
	cp "$WORKDIR/src/shared4.ko" "$WORKDIR/out/shared4.ko"
	cli_sign "$WORKDIR/out/shared4.ko"
	if [ "$LAST_RC" -ne 1 ] || ! grep -q "refused by policy: .*(rule rate-limit)" "$LAST_ERR"; then
		_report_last
		fail "the fourth modsignctl sign was not refused by the rate limit"
	fi
	ok "$(cat "$LAST_ERR")"
	expect_record "$WORKDIR/out/shared4.ko" refused rate-limit cli
	[ "$(stat -c '%a %U' "$state/ratelimit")" = "600 root" ] || fail "the bucket's file is $(stat -c '%a %U' "$state/ratelimit")"
	ok "bucket: $(cat "$state/ratelimit")"
	step "the daemon charges the same bucket: its SIGN is refused too"
	sign_refused "$WORKDIR/src/shared5.ko" shared5.ko rate-limit
	step "and the other way: three signatures by the daemon leave none for modsignctl sign"
	rm -f "$state/ratelimit"
	sign_ok "$WORKDIR/src/shared5.ko" shared5-ok.ko
	sign_ok "$WORKDIR/src/shared6.ko" shared6.ko
	cp "$WORKDIR/src/shared7.ko" "$UPD/shared7.ko"
	wait_signed "$UPD/shared7.ko"
	cp "$WORKDIR/src/shared8.ko" "$WORKDIR/out/shared8.ko"
	cli_sign "$WORKDIR/out/shared8.ko"
	if [ "$LAST_RC" -ne 1 ] || ! grep -q "(rule rate-limit)" "$LAST_ERR"; then
		_report_last
		fail "modsignctl sign was not refused after the daemon's three signatures"
	fi
	expect_record "$WORKDIR/out/shared8.ko" refused rate-limit cli
	rm -f "$state/ratelimit"
}
run_case "rate-limit: one bucket for the daemon and modsignctl sign" case_rate_shared

case_allowlist() {
	set_policy Mode=allowlist 'Allow=scr?tch' 'Allow=al*'
	step "Mode=allowlist: a name no glob matches is refused"
	sign_refused "$WORKDIR/src/beta.ko" beta.ko not-allowlisted
	step "globs admit"
	sign_ok "$WORKDIR/src/scratch.ko" scratch.ko
}
run_case "Mode=allowlist" case_allowlist

case_dkms() {
	local snap
	set_policy Mode=dkms "DkmsTree=$DKMS_TREE"
	step "Mode=dkms: a scratch module in a watched tree is refused"
	cp "$WORKDIR/src/scratch.ko" "$UPD/scratch.ko"
	tree_refused "$UPD/scratch.ko" not-dkms
	step "a module in the DKMS tree that its dkms.conf builds is signed"
	cp "$WORKDIR/src/alpha.ko" "$PKGDIR/$KVER/$ARCH/module/alpha.ko"
	wait_signed "$PKGDIR/$KVER/$ARCH/module/alpha.ko"
	assert_verifies "$CERT" "$PKGDIR/$KVER/$ARCH/module/alpha.ko"
	expect_record "$PKGDIR/$KVER/$ARCH/module/alpha.ko" signed watched-tree watcher
	[ "$(audit_last "$PKGDIR/$KVER/$ARCH/module/alpha.ko" | jq -r .dkms.package)" = pkg ] ||
		fail "the record does not name the DKMS package"
	step "one it does not build is refused"
	cp "$WORKDIR/src/beta.ko" "$PKGDIR/$KVER/$ARCH/module/beta.ko"
	tree_refused "$PKGDIR/$KVER/$ARCH/module/beta.ko" dkms-unregistered
	step "a SIGN without ORIGIN=dkms is refused"
	sign_refused "$WORKDIR/src/alpha.ko" alpha-plain.ko not-dkms

	# The DKMS shim, as DKMS runs it on the module in its build directory.
	step "the DKMS shim (ORIGIN=dkms) for its build directory: signed"
	cp "$WORKDIR/src/alpha.ko" "$PKGDIR/build/alpha.ko"
	run_cmd "$MODSIGNCTL" --config "$DAEMON_CONF" --socket "$DAEMON_SOCKET" dkms-sign-file sha256 pkcs11:modsignd-daemon-key "$CERT" "$PKGDIR/build/alpha.ko"
	[ "$LAST_RC" -eq 0 ] || { _report_last; daemon_show_log; fail "the shim's module was not signed"; }
	assert_verifies "$CERT" "$PKGDIR/build/alpha.ko"
	expect_record "$PKGDIR/build/alpha.ko" signed sign-request
	# The shim copies the module while the daemon signs and cuts the copy where the daemon
	# says the signed bytes end: here before the old signature.
	step "the shim again on the module it signed: a fresh signature in place of the old one"
	cp "$PKGDIR/build/alpha.ko" "$WORKDIR/out/alpha-once.ko"
	run_cmd "$MODSIGNCTL" --config "$DAEMON_CONF" --socket "$DAEMON_SOCKET" dkms-sign-file sha256 pkcs11:modsignd-daemon-key "$CERT" "$PKGDIR/build/alpha.ko"
	[ "$LAST_RC" -eq 0 ] || { _report_last; daemon_show_log; fail "the shim did not re-sign its own module"; }
	assert_one_signature "$PKGDIR/build/alpha.ko"
	assert_verifies "$CERT" "$PKGDIR/build/alpha.ko"
	# PKCS#1 v1.5 over the same bytes with the same key: the same file as after the first.
	assert_files_equal "$WORKDIR/out/alpha-once.ko" "$PKGDIR/build/alpha.ko" "re-signed by the shim vs signed once"
	step "the shim for a name the package does not build: refused, and it says which rule"
	cp "$WORKDIR/src/beta.ko" "$PKGDIR/build/beta.ko"
	snap=$(snapshot "$PKGDIR/build/beta.ko")
	run_cmd "$MODSIGNCTL" --config "$DAEMON_CONF" --socket "$DAEMON_SOCKET" dkms-sign-file sha256 pkcs11:modsignd-daemon-key "$CERT" "$PKGDIR/build/beta.ko"
	if [ "$LAST_RC" -ne 1 ] || ! grep -q "modsignd refused: .*(rule dkms-unregistered)" "$LAST_ERR"; then
		_report_last
		fail "the shim did not report the dkms-unregistered refusal"
	fi
	ok "$(cat "$LAST_ERR")"
	assert_unchanged "$PKGDIR/build/beta.ko" "$snap" "the refused module"
	[ "$(find "$PKGDIR/build" -mindepth 1 -maxdepth 1 -name '.*' | wc -l)" -eq 0 ] ||
		fail "the refused shim left files behind: $(find "$PKGDIR/build" -mindepth 1 -maxdepth 1 -name '.*')"
	expect_record "$PKGDIR/build/beta.ko" refused dkms-unregistered
	step "the shim for a file outside any DKMS build directory: refused"
	cp "$WORKDIR/src/alpha.ko" "$WORKDIR/out/elsewhere-alpha.ko"
	run_cmd "$MODSIGNCTL" --config "$DAEMON_CONF" --socket "$DAEMON_SOCKET" dkms-sign-file sha256 pkcs11:modsignd-daemon-key "$CERT" \
		"$WORKDIR/out/elsewhere-alpha.ko"
	if [ "$LAST_RC" -ne 1 ] || ! grep -q "(rule not-dkms)" "$LAST_ERR"; then
		_report_last
		fail "the shim did not report the not-dkms refusal"
	fi
	ok "$(cat "$LAST_ERR")"
	expect_record "$WORKDIR/out/elsewhere-alpha.ko" refused not-dkms
}
run_case "Mode=dkms: DKMS tree, dkms.conf, the shim's ORIGIN=dkms" case_dkms

case_approve() {
	local path=$UPD/newmod.ko rec
	set_policy Mode=approve
	step "Mode=approve: a new module waits"
	cp "$WORKDIR/src/newmod.ko" "$path"
	tree_refused "$path" not-approved
	step "modsignctl pending lists it"
	run_cmd "$MODSIGNCTL" --config "$DAEMON_CONF" --json pending
	[ "$LAST_RC" -eq 0 ] || { _report_last; fail "modsignctl pending failed"; }
	[ "$(jq -r '.[] | select(.name == "newmod") | .path' "$LAST_OUT")" = "$path" ] ||
		fail "pending does not list newmod at $path" "$(cat "$LAST_OUT")"
	ok "$(jq -c '.[]' "$LAST_OUT")"
	[ "$(stat -c %a "$WORKDIR/d/state/pending.json")" = 600 ] || fail "pending.json is not 0600"
	step "modsignctl approve newmod: approved, its directory scanned, the module signed"
	run_cmd "$MODSIGNCTL" --config "$DAEMON_CONF" --socket "$DAEMON_SOCKET" approve newmod
	[ "$LAST_RC" -eq 0 ] || { _report_last; fail "modsignctl approve failed"; }
	ok "$(cat "$LAST_OUT")"
	wait_signed "$path"
	assert_verifies "$CERT" "$path"
	expect_record "$path" signed scan
	run_cmd "$MODSIGNCTL" --config "$DAEMON_CONF" --json pending
	[ -z "$(jq -r '.[] | select(.name == "newmod") | .name' "$LAST_OUT")" ] || fail "newmod still pending" "$(cat "$LAST_OUT")"
	run_cmd "$MODSIGNCTL" --config "$DAEMON_CONF" --json pending --approved
	[ "$(jq -r '.[0].name' "$LAST_OUT")" = newmod ] || fail "newmod is not listed approved" "$(cat "$LAST_OUT")"
	step "the approval is in the audit chain: who, what, and where the module waited"
	rec=$("$MODSIGNCTL" audit show --file "$LOG" --event approved --json | tail -n 1)
	[ -n "$rec" ] || fail "no \"approved\" record"
	jq -e --arg p "$path" '.module == "newmod" and .path == $p and .rule == "approved" and .requester.uid == 0
		and .requester.comm == "modsignctl" and .requester.command == "approve newmod"
		and (.requester.pid | type) == "number" and (.sha256_before | length) == 64' <<<"$rec" >/dev/null ||
		fail "the approved record is not what approve did" "$rec"
	ok "audit: $rec"
	run_cmd "$MODSIGNCTL" audit show --file "$LOG" --event approved
	grep -q "approved *newmod .*by pid [0-9]* uid 0 (modsignctl) 'approve newmod' rule approved" "$LAST_OUT" ||
		fail "audit show does not list the approval" "$(cat "$LAST_OUT")"
	expect_exit 0 "$MODSIGNCTL" audit verify --file "$LOG"
	step "an approved name is signed on arrival too, with no reload"
	cp "$WORKDIR/src/newmod.ko" "$UPD/newmod-again.ko"
	wait_signed "$UPD/newmod-again.ko"
	step "approve refuses globs and paths"
	expect_exit 2 "$MODSIGNCTL" --config "$DAEMON_CONF" approve 'nv*'
	expect_exit 2 "$MODSIGNCTL" --config "$DAEMON_CONF" approve /x/y.ko
}
run_case "Mode=approve end to end" case_approve

case_audit_intact() {
	wait_idle
	expect_exit 0 "$MODSIGNCTL" audit verify --file "$LOG"
	ok "$(cat "$LAST_OUT")"
	daemon_stop 20
}
run_case "the audit log is intact after all of it" case_audit_intact

finish
