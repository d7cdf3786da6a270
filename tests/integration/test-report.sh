#!/bin/bash
# modsignctl report: a fixture /lib/modules with two kernels and every state a module can be
# in (signed by our key with and without an audit record, compressed, by the distribution's
# key, by a revoked and a blocklisted key, by a stranger, unsigned, tampered, in-tree), real
# signatures (modsignctl sign as root writes real audit records; sign-file signs outside the
# log), and certificates with every kind of debt (expired through `openssl ca` with explicit
# dates, expiring soon, RSA-1024, SHA-1, no codeSigning EKU, not trusted by the kernel, a
# loose key file). The kernel's keyrings come from fixtures (MODSIGNCTL_PROC_KEYS,
# MODSIGNCTL_KEYRING_DIR), as in test-enroll.sh. Counts are asserted from --json, the exit
# status against --max-debt/--max-escapes, and --prometheus passes `promtool check metrics`.
# shellcheck disable=SC2317 # the case functions are called through run_case
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=tests/integration/lib.sh
. "$srcdir/tests/integration/lib.sh"

require_cmd openssl jq sha256sum xz modinfo
require_kernel_headers
require_sign_file
require_modsignctl
[ "$(id -u)" -eq 0 ] || skip_test "modsignctl sign writes audit records only as root"
setup_workdir
build_real_module

for k in ours distro revoked blocked stranger; do
	make_key rsa2048 "$k"
done

# A cert with explicit validity dates (openssl ca is the one tool here that takes them).
# ca_cert NAME STARTDATE ENDDATE KEYOPT DIGEST EKU
ca_cert() {
	local name=$1 start=$2 end=$3 keyopt=$4 md=$5 eku=$6 d=$WORKDIR/ca-$1
	mkdir -p "$d/new"
	: >"$d/index.txt"
	echo 01 >"$d/serial"
	cat >"$d/ca.cnf" <<EOF
[ca]
default_ca = ca_default
[ca_default]
dir = $d
database = $d/index.txt
new_certs_dir = $d/new
serial = $d/serial
policy = policy_any
email_in_dn = no
unique_subject = no
copy_extensions = none
x509_extensions = ext
[policy_any]
commonName = supplied
[req]
distinguished_name = dn
prompt = no
[dn]
CN = modsignd test $name
[ext]
basicConstraints = critical,CA:FALSE
keyUsage = digitalSignature
extendedKeyUsage = $eku
subjectKeyIdentifier = hash
EOF
	if ! openssl req -new -newkey "$keyopt" -nodes -keyout "$WORKDIR/keys/$name.key" -config "$d/ca.cnf" \
		-out "$d/req.csr" >"$d/log" 2>&1 ||
		! openssl ca -batch -selfsign -config "$d/ca.cnf" -keyfile "$WORKDIR/keys/$name.key" -md "$md" \
			-startdate "$start" -enddate "$end" -in "$d/req.csr" -out "$WORKDIR/keys/$name.crt" \
			-notext >>"$d/log" 2>&1; then
		show_file "$d/log" 30
		fail "openssl ca could not make the certificate $name"
	fi
	step "made $name: $(openssl x509 -in "$WORKDIR/keys/$name.crt" -noout -enddate -ext extendedKeyUsage 2>/dev/null | tr '\n' ' ')"
}

ca_cert expired 20200101000000Z 20210101000000Z rsa:2048 sha256 codeSigning
ca_cert expiring "$(date -u -d '-1 day' +%Y%m%d%H%M%SZ)" "$(date -u -d '+10 days' +%Y%m%d%H%M%SZ)" rsa:2048 sha256 codeSigning
ca_cert rsa1024 20200101000000Z 20991231000000Z rsa:1024 sha256 codeSigning
ca_cert sha1 20200101000000Z 20991231000000Z rsa:2048 sha1 codeSigning
ca_cert noeku 20200101000000Z 20991231000000Z rsa:2048 sha256 serverAuth
openssl x509 -in "$(cert_of sha1)" -noout -text | grep -q 'Signature Algorithm: sha1WithRSAEncryption' ||
	fail "the sha1 fixture is not signed with SHA-1"
chmod 0600 "$WORKDIR"/keys/*.key

# The kernel's keyrings: our certificate's key is in .secondary_trusted_keys, no other.
skid_of() { openssl x509 -in "$1" -noout -ext subjectKeyIdentifier | tail -n 1 | tr -d ' :' | tr 'A-F' 'a-f'; }
KR=$WORKDIR/keyrings
mkdir -p "$KR/members"
OURS_SKID=$(skid_of "$(cert_of ours)")
cat >"$KR/keys" <<KEYS
3ac2be1c I------     1 perm 1f0b0000     0     0 keyring   .builtin_trusted_keys: 1
2e0e4a3b I------     1 perm 1f0f0000     0     0 keyring   .secondary_trusted_keys: 1
1a2b3c4d I------     1 perm 1f030000     0     0 asymmetri modsignd test ours: $OURS_SKID: X509.rsa ${OURS_SKID:32:8} []
KEYS
echo 1a2b3c4d >"$KR/members/.secondary_trusted_keys"
export MODSIGNCTL_PROC_KEYS=$KR/keys MODSIGNCTL_KEYRING_DIR=$KR/members

# --- the module tree -------------------------------------------------------------------------
K1=6.1.0-99-report
K2=6.1.0-98-report
MODS=$WORKDIR/lib/modules
STATE=$WORKDIR/state
mkdir -p "$MODS/$K1/updates/dkms" "$MODS/$K1/extra" "$MODS/$K1/kernel/drivers" "$MODS/$K2/misc" "$STATE"
chmod 0700 "$STATE"
U=$MODS/$K1/updates/dkms

put() { cp "$REAL_MODULE" "$1" && chmod u+w "$1"; }
# Signed by our key through modsignctl sign (an audit record each) ...
put "$U/covered.ko"
put "$WORKDIR/covered-xz.ko"
# (The second with sha512: identical bytes would share one record.)
MODSIGND_STATE_DIRECTORY=$STATE "$MODSIGNCTL" sign --key "$(key_of ours)" --cert "$(cert_of ours)" \
	"$U/covered.ko" >/dev/null || fail "modsignctl sign failed"
MODSIGND_STATE_DIRECTORY=$STATE "$MODSIGNCTL" sign --hash sha512 --key "$(key_of ours)" --cert "$(cert_of ours)" \
	"$WORKDIR/covered-xz.ko" >/dev/null || fail "modsignctl sign failed"
[ "$(grep -c '"event":"signed"' "$STATE/audit.jsonl")" -eq 2 ] || fail "modsignctl sign did not write two records"
# ... compressed after signing, as DKMS does: the record has the uncompressed digest.
compress_module xz-crc64 "$WORKDIR/covered-xz.ko" "$U/covered-xz.ko.xz"
# ... and by sign-file, outside the log: an escape.
put "$U/escape.ko"
# (sha384: with the hashes of the signatures above, the bytes would equal theirs, RSA PKCS#1 v1.5
# being deterministic)
"$SIGN_FILE" sha384 "$(key_of ours)" "$(cert_of ours)" "$U/escape.ko"
put "$U/unsigned.ko"
put "$U/bad.ko"
"$SIGN_FILE" sha256 "$(key_of ours)" "$(cert_of ours)" "$U/bad.ko"
flip_byte "$U/bad.ko" "$(text_offset "$U/bad.ko")"
put "$MODS/$K1/extra/distro.ko"
"$SIGN_FILE" sha512 "$(key_of distro)" "$(cert_of distro)" "$MODS/$K1/extra/distro.ko"
put "$MODS/$K1/extra/revoked.ko"
"$SIGN_FILE" sha256 "$(key_of revoked)" "$(cert_of revoked)" "$MODS/$K1/extra/revoked.ko"
put "$MODS/$K1/extra/blocked.ko"
"$SIGN_FILE" sha256 "$(key_of blocked)" "$(cert_of blocked)" "$MODS/$K1/extra/blocked.ko"
put "$MODS/$K1/extra/stranger.ko"
"$SIGN_FILE" sha256 "$(key_of stranger)" "$(cert_of stranger)" "$MODS/$K1/extra/stranger.ko"
# In-tree: not counted. A symlink in an out-of-tree directory: not followed.
put "$MODS/$K1/kernel/drivers/intree.ko"
ln -s ../../kernel/drivers/intree.ko "$U/link.ko"
put "$MODS/$K2/misc/other-kernel.ko"

# The revocation list names the revoked certificate by fingerprint (it is also given as
# trusted, as a rotated-out key would be); the blocklist names the blocked one by serial
# number only, with colons and upper case (as modinfo prints sig_key), and it is not trusted.
openssl x509 -in "$(cert_of revoked)" -outform DER | sha256sum | cut -c1-64 >"$WORKDIR/revoked.list"
{
	echo "# blocklisted keys"
	openssl x509 -in "$(cert_of blocked)" -noout -serial | cut -d= -f2 | sed 's/../&:/g; s/:$//'
} >"$WORKDIR/blocklist"
mkdir -p "$WORKDIR/trusted"
cp "$(cert_of distro)" "$(cert_of revoked)" "$WORKDIR/trusted/"
step "fixture: $(find "$MODS" -name '*.ko*' | wc -l) module files under $MODS"

# report ARGS...: modsignctl report over the fixture (our cert and key, the audit log).
report() {
	run_cmd ms report --modules-dir "$MODS" --cert "$(cert_of ours)" --key "$(key_of ours)" \
		--trusted "$WORKDIR/trusted" --revoked "$WORKDIR/revoked.list" --blocklist "$WORKDIR/blocklist" \
		--audit "$STATE/audit.jsonl" "$@"
}

# jq_is FILTER WANT: the value of FILTER in $LAST_OUT.
jq_is() {
	local got
	got=$(jq -r "$1" "$LAST_OUT") || fail "jq '$1' failed on the output" "$(head -c 2000 "$LAST_OUT")"
	[ "$got" = "$2" ] || fail "$1 is '$got', expected '$2'" "$(jq -c "${3:-.}" "$LAST_OUT" | head -c 3000)"
	ok "$1 = $2"
}

case_counts() {
	report --json --max-escapes 1
	[ "$LAST_RC" -eq 0 ] || { _report_last; fail "expected exit 0 (one escape allowed, no debt)"; }
	local k1=".kernels[] | select(.release == \"$K1\")" k2=".kernels[] | select(.release == \"$K2\")"
	jq_is "[.kernels[].release] | join(\",\")" "$K2,$K1"
	jq_is "$k1 | .out_of_tree" 9 "$k1 | .modules"
	jq_is "$k1 | .signed_ours" 3 "$k1 | .modules"
	jq_is "$k1 | .covered" 2 "$k1 | .modules"
	jq_is "$k1 | .escaped" 1 "$k1 | .modules"
	jq_is "$k1 | .signed_other" 1 "$k1 | .modules"
	jq_is "$k1 | .unsigned" 1 "$k1 | .modules"
	jq_is "$k1 | .bad" 1 "$k1 | .modules"
	jq_is "$k1 | .revoked" 2 "$k1 | .modules"
	jq_is "$k1 | .untrusted" 1 "$k1 | .modules"
	jq_is "$k1 | .modules[] | select(.path == \"updates/dkms/escape.ko\") | .escaped" true
	jq_is "$k1 | .modules[] | select(.path == \"updates/dkms/covered-xz.ko.xz\") | .state + \" \" + (.escaped|tostring)" "signed_ours false"
	jq_is "$k1 | .modules[] | select(.path == \"updates/dkms/bad.ko\") | .why" "the module does not match its signature (changed after signing)"
	jq_is "$k1 | .modules[] | select(.path == \"extra/revoked.ko\") | .why" "signed by a revoked key"
	jq_is "$k1 | .modules[] | select(.path == \"extra/blocked.ko\") | .why" "signed by a blocklisted key"
	jq_is "[$k1 | .modules[].path] | map(select(test(\"intree|link\"))) | length" 0
	jq_is "$k2 | .out_of_tree" 1
	jq_is "$k2 | .unsigned" 1
	jq_is ".totals.out_of_tree" 10
	jq_is ".escapes" 1
	jq_is ".policy_gate_coverage_ratio * 1000 | floor" 666
	jq_is ".debt_items" 0 ".debt"
	jq_is ".certificates[0].trusted_by_kernel" true
	jq_is ".certificates[0].fingerprint" "$(openssl x509 -in "$(cert_of ours)" -outform DER | sha256sum | cut -c1-64)"
	jq_is ".key_file.mode" 0600
}

case_thresholds() {
	report --json
	[ "$LAST_RC" -eq 9 ] || { _report_last; fail "one escape with --max-escapes 0 (the default): expected exit 9"; }
	jq_is ".exceeded" true
	ok "one escape over the default of 0: exit 9"
	report --max-escapes 1
	[ "$LAST_RC" -eq 0 ] || { _report_last; fail "expected exit 0 with --max-escapes 1"; }
	grep -q '^OK: 0 debt items (allowed 0), 1 escape (allowed 1)' "$LAST_OUT" || fail "no OK summary line" "$(cat "$LAST_OUT")"
	grep -q 'updates/dkms/escape.ko: ESCAPE' "$LAST_OUT" || fail "the text report does not name the escape"
	ok "text report names the escape and says OK"
	# A loose key file is debt.
	chmod 0644 "$(key_of ours)"
	report --json --max-escapes 1
	chmod 0600 "$(key_of ours)"
	[ "$LAST_RC" -eq 9 ] || { _report_last; fail "a key file of mode 0644: expected exit 9"; }
	jq_is "[.debt[].id] | join(\",\")" key-file-mode
	jq_is ".debt[0].fix" "chmod 0600 $(key_of ours)"
	report --json --max-escapes 1 --max-debt 1
	[ "$LAST_RC" -eq 0 ] || { _report_last; fail "expected exit 0 with --max-debt 1 (the key is 0600 again)"; }
	expect_exit 2 ms report --max-debt lots
	# A removed audit record makes the covered module an escape too.
	head -n 1 "$STATE/audit.jsonl" >"$WORKDIR/audit-short.jsonl"
	run_cmd ms report --modules-dir "$MODS" --cert "$(cert_of ours)" --key "$(key_of ours)" \
		--audit "$WORKDIR/audit-short.jsonl" --kernel "$K1" --json --max-escapes 5
	jq_is ".escapes" 2
}

# cert_debt NAME IDS [ARGS]: the debt ids of certificate NAME alone, over an empty tree.
cert_debt() {
	local name=$1 want=$2
	shift 2
	mkdir -p "$WORKDIR/empty"
	run_cmd ms report --modules-dir "$WORKDIR/empty" --cert "$(cert_of "$name")" --key "$(key_of "$name")" \
		--audit "$STATE/audit.jsonl" --json "$@"
	jq_is "[.debt[].id] | join(\",\")" "$want" ".debt"
	if [ -n "$want" ]; then
		[ "$LAST_RC" -eq 9 ] || fail "debt $want: expected exit 9, got $LAST_RC"
	else
		[ "$LAST_RC" -eq 0 ] || fail "no debt: expected exit 0, got $LAST_RC"
	fi
}

case_cert_debt() {
	cert_debt ours ""
	cert_debt expired cert-expired,not-trusted-by-kernel
	jq_is ".certificates[0].expiry_days < -1000" true
	cert_debt expiring cert-expiring,not-trusted-by-kernel
	jq_is ".certificates[0].expiry_days" 9
	cert_debt expiring not-trusted-by-kernel --expiry-warn-days 5
	cert_debt rsa1024 weak-key,not-trusted-by-kernel
	jq_is ".certificates[0].key_bits" 1024
	cert_debt sha1 weak-signature-hash,not-trusted-by-kernel
	jq_is ".certificates[0].signature_hash" sha1
	cert_debt noeku extended-key-usage,not-trusted-by-kernel
	jq_is ".certificates[0].extended_key_usage_ok" false
	jq_is ".debt[0].fix | test(\"codeSigning\")" true
	cert_debt revoked cert-revoked,not-trusted-by-kernel --revoked "$WORKDIR/revoked.list"
	# The same revocation from the configuration: [Policy] RevokedCertificates=, a fingerprint.
	printf '[Policy]\nRevokedCertificates=%s\n' "$(cat "$WORKDIR/revoked.list")" >"$WORKDIR/revoked.conf"
	cert_debt revoked cert-revoked,not-trusted-by-kernel --config "$WORKDIR/revoked.conf"
	run_cmd ms report --config "$WORKDIR/revoked.conf" --modules-dir "$MODS" --cert "$(cert_of ours)" \
		--key "$(key_of ours)" --trusted "$WORKDIR/trusted" --audit "$STATE/audit.jsonl" --json
	jq_is ".kernels[] | select(.release == \"$K1\") | .modules[] | select(.path == \"extra/revoked.ko\") | .why" \
		"signed by a revoked key"
	chown nobody "$(key_of ours)"
	cert_debt ours key-file-owner
	chown root "$(key_of ours)"
	jq_is ".debt[0].fix" "chown root:root $(key_of ours)"
}

case_prometheus() {
	require_cmd promtool
	report --prometheus --max-escapes 1
	[ "$LAST_RC" -eq 0 ] || { _report_last; fail "expected exit 0"; }
	promtool check metrics <"$LAST_OUT" >"$WORKDIR/promtool.out" 2>&1 || {
		show_file "$WORKDIR/promtool.out"
		show_file "$LAST_OUT" 60
		fail "promtool check metrics rejects the output"
	}
	ok "promtool check metrics accepts $(grep -vc '^#' "$LAST_OUT") samples"
	local want
	for want in "modsignd_modules{kernel=\"$K1\",state=\"signed_ours\"} 3" \
		"modsignd_modules{kernel=\"$K1\",state=\"escaped\"} 1" \
		"modsignd_modules{kernel=\"$K1\",state=\"revoked\"} 2" \
		"modsignd_modules{kernel=\"$K2\",state=\"unsigned\"} 1" \
		"modsignd_out_of_tree_modules{kernel=\"$K1\"} 9" \
		"modsignd_policy_gate_coverage_ratio 0.666667" \
		"modsignd_escapes 1" \
		"modsignd_debt_items 0"; do
		grep -qxF "$want" "$LAST_OUT" || fail "no sample '$want'" "$(grep -v '^#' "$LAST_OUT")"
		ok "$want"
	done
	grep -q '^modsignd_certificate_expiry_seconds{certificate=".*",fingerprint="[0-9a-f]\{64\}"} [0-9]\+$' "$LAST_OUT" ||
		fail "no certificate expiry sample"
	ok "certificate expiry sample"
	# An expired certificate: a negative expiry, and the debt is counted.
	run_cmd ms report --modules-dir "$WORKDIR/empty" --cert "$(cert_of expired)" --key "$(key_of expired)" \
		--audit "$STATE/audit.jsonl" --prometheus
	[ "$LAST_RC" -eq 9 ] || fail "expired certificate: expected exit 9, got $LAST_RC"
	grep -q '^modsignd_certificate_expiry_seconds{.*} -[0-9]\+$' "$LAST_OUT" || fail "no negative expiry"
	grep -qx 'modsignd_certificate_debt_items{.*} 2' "$LAST_OUT" || fail "the expired certificate's debt is not 2"
	promtool check metrics <"$LAST_OUT" >"$WORKDIR/promtool.out" 2>&1 || {
		show_file "$WORKDIR/promtool.out"
		fail "promtool check metrics rejects the output for the expired certificate"
	}
	ok "expired certificate: negative expiry, 2 debt items, promtool accepts it"
}

case_errors() {
	expect_exit 1 ms report --modules-dir "$WORKDIR/nonexistent" --cert "$(cert_of ours)" --key "$(key_of ours)" \
		--audit "$STATE/audit.jsonl"
	expect_exit 1 ms report --modules-dir "$MODS" --cert "$WORKDIR/revoked.list" --audit "$STATE/audit.jsonl"
	printf 'not-hex\n' >"$WORKDIR/bad.list"
	expect_exit 1 ms report --modules-dir "$MODS" --cert "$(cert_of ours)" --revoked "$WORKDIR/bad.list"
	grep -q 'bad.list:1:' "$LAST_ERR" || fail "the error does not name the line" "$(cat "$LAST_ERR")"
	expect_exit 1 ms report --modules-dir "$MODS" --cert "$(cert_of ours)" --audit "$WORKDIR/no-such-log"
	expect_exit 2 ms report --json --prometheus
}

run_case "counts per kernel and state, escapes, coverage (--json)" case_counts
run_case "thresholds and exit status 9; key file mode" case_thresholds
run_case "certificate debt: expired, expiring, weak key, SHA-1, EKU, revoked, kernel trust, owner" case_cert_debt
run_case "--prometheus passes promtool check metrics" case_prometheus
run_case "errors" case_errors
finish
