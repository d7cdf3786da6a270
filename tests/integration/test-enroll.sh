#!/bin/bash
# modsignctl enroll, every branch. What the kernel and the firmware say comes from fixtures:
# a /proc/keys text (MODSIGNCTL_PROC_KEYS) with keyring members (MODSIGNCTL_KEYRING_DIR), an
# EFI directory with a SecureBoot variable (MODSIGNCTL_EFI_DIR), and a stand-in for mokutil
# (MODSIGNCTL_MOKUTIL). The mokutil here is a TEST DOUBLE: the real one talks to EFI
# variables and shim, which this machine (no EFI firmware) does not have. It records its
# arguments and answers --test-key the way mokutil 0.6 words its answers. One case reads the
# real /proc/keys with a key the real kernel holds (keyctl padd to a session keyring), to
# check that the kernel's own description of a key is what enroll matches.
# shellcheck disable=SC2317 # the case functions are called through run_case
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=tests/integration/lib.sh
. "$srcdir/tests/integration/lib.sh"

require_cmd openssl python3 cmp
require_modsignctl
setup_workdir

K=$WORKDIR/key
mkdir -p "$K"
run_cmd ms keygen --key "$K/signing.key" --bits 2048 --cn "enroll test key"
[ "$LAST_RC" -eq 0 ] || fail "keygen failed" "$(cat "$LAST_ERR")"
CERT=$K/signing.crt
DER=$K/signing.der
SKID=$(openssl x509 -in "$CERT" -noout -ext subjectKeyIdentifier | tail -n 1 | tr -d ' :' | tr 'A-F' 'a-f')
[ "${#SKID}" -eq 40 ] || fail "cannot read the SKID of $CERT"
step "key id (SKID) $SKID"

# The test double for mokutil.
mkdir -p "$WORKDIR/bin"
cat >"$WORKDIR/bin/mokutil" <<'SH'
#!/bin/bash
# Test double for mokutil: records its arguments, answers from FAKE_MOKUTIL_STATE.
printf '%s\n' "$*" >>"$FAKE_MOKUTIL_LOG"
case ${1:-} in
--test-key)
	cp "$2" "$FAKE_MOKUTIL_LOG.test-key.der"
	case ${FAKE_MOKUTIL_STATE:-} in
	enrolled) echo "$2 is already enrolled"; exit 1 ;;
	pending) echo "$2 is already in the enrollment request"; exit 1 ;;
	*) echo "$2 is not enrolled"; exit 0 ;;
	esac ;;
--import)
	cp "$2" "$FAKE_MOKUTIL_LOG.import.der"
	exit "${FAKE_MOKUTIL_IMPORT_RC:-0}" ;;
esac
exit 2
SH
chmod +x "$WORKDIR/bin/mokutil"

# fixture NAME KEYRING...: a /proc/keys with the four kernel keyrings and three asymmetric
# keys: ours (id 1a2b3c4d) in the KEYRINGs named, a near miss, and a distribution key.
fixture() {
	local d=$WORKDIR/fx-$1 ring
	shift
	mkdir -p "$d/members"
	cat >"$d/keys" <<KEYS
3ac2be1c I------     1 perm 1f0b0000     0     0 keyring   .builtin_trusted_keys: 1
2e0e4a3b I------     1 perm 1f0f0000     0     0 keyring   .secondary_trusted_keys: 2
0c8f7a2d I------     1 perm 1f0f0000     0     0 keyring   .machine: 1
11aa22bb I------     1 perm 1f0b0000     0     0 keyring   .platform: 1
1a2b3c4d I------     1 perm 1f030000     0     0 asymmetri enroll test key: $SKID: X509.rsa ${SKID:32:8} []
1a2b3c4e I------     1 perm 1f030000     0     0 asymmetri enroll test key: ${SKID}00: X509.rsa ${SKID:32:8} []
1a2b3c4f I------     1 perm 1f030000     0     0 asymmetri Debian Secure Boot CA: 6ccece7e4c6c0d1f6149f3dd27dfcc5cbb419ea1: X509.rsa bb419ea1 []
KEYS
	echo 1a2b3c4f >"$d/members/.builtin_trusted_keys"
	echo "3ac2be1c 0c8f7a2d 1a2b3c4e" >"$d/members/.secondary_trusted_keys"
	for ring in "$@"; do
		echo 1a2b3c4d >>"$d/members/$ring"
	done
	printf '%s' "$d"
}

# efi_dir NAME [0|1]: a fake /sys/firmware/efi, with the SecureBoot variable if given.
efi_dir() {
	local d=$WORKDIR/efi-$1
	mkdir -p "$d/efivars"
	if [ -n "${2:-}" ]; then
		# efivarfs: 4 bytes of attributes (NV|BS|RT), then the one-byte value.
		case $2 in
		0) printf '\006\000\000\000\000' ;;
		1) printf '\006\000\000\000\001' ;;
		esac >"$d/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
	fi
	printf '%s' "$d"
}

# enroll FIXTURE EFI MOKUTIL EXPECTED_RC ARGS...: run enroll --json with these stand-ins.
enroll() {
	local fx=$1 efi=$2 mok=$3 want=$4
	shift 4
	LOG=$WORKDIR/mokutil-$CASE_NO-$RANDOM.log
	: >"$LOG"
	FAKE_MOKUTIL_LOG=$LOG MODSIGNCTL_PROC_KEYS=$fx/keys MODSIGNCTL_KEYRING_DIR=$fx/members \
		MODSIGNCTL_EFI_DIR=$efi MODSIGNCTL_MOKUTIL=$mok expect_exit "$want" ms enroll "$@"
}

# json_is EXPR: a Python expression over the report `o` must be true.
json_is() {
	python3 - "$LAST_OUT" "$1" <<'PY' || fail "report does not satisfy: $1" "$(cat "$LAST_OUT")"
import json, sys
o = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
	ok "report: $1"
}

assert_log() {
	local want=$1
	[ "$(cat "$LOG")" = "$want" ] || fail "mokutil was called otherwise than expected" "want: $want" "got:  $(cat "$LOG")"
	ok "mokutil calls: $(tr '\n' ';' <"$LOG")"
}

NOEFI=$WORKDIR/no-efi
NOMOK=$WORKDIR/no-mokutil
FAKE=$WORKDIR/bin/mokutil

case_trusted() {
	local ring=$1 fx
	fx=$(fixture "trusted$ring" "$ring")
	enroll "$fx" "$(efi_dir t 1)" "$FAKE" 0 --json --cert "$CERT"
	json_is "o['trusted_now'] is True and o['keyrings'] == ['$ring'] and o['action'] == 'none'"
	json_is "o['key_id'] == '$SKID' and o['efi'] is True and o['secure_boot'] is True"
	! grep -q -- --import "$LOG" || fail "mokutil --import ran for a trusted key"
	enroll "$fx" "$NOEFI" "$NOMOK" 0 --cert "$DER"
	grep -q "trusted now (in $ring)" "$LAST_OUT" || fail "text output does not say trusted" "$(cat "$LAST_OUT")"
	ok "the DER certificate is found the same way"
}

case_not_trusted_no_efi() {
	local fx
	fx=$(fixture untrusted)
	enroll "$fx" "$NOEFI" "$FAKE" 5 --json --cert "$CERT"
	json_is "o['trusted_now'] is False and o['keyrings'] == [] and o['efi'] is False and o['secure_boot'] is None"
	json_is "o['action'] == 'manual' and o['enrolled'] is None"
	json_is "any('SYSTEM_TRUSTED_KEYS $CERT' in c for c in o['commands'])"
	json_is "any('.secondary_trusted_keys < $DER' in c for c in o['commands'])"
	assert_log ""
	enroll "$fx" "$NOEFI" "$FAKE" 5 --cert "$CERT"
	{ grep -q 'CONFIG_SYSTEM_TRUSTED_KEYS' "$LAST_OUT" && grep -q 'module.sig_enforce=1' "$LAST_OUT"; } ||
		fail "no explanation of the built-in keys route" "$(cat "$LAST_OUT")"
	ok "explains the built-in and secondary keyring routes"
}

case_only_platform() {
	local fx
	# .platform verifies kexec images, not modules; a key only there is not trusted for modules.
	fx=$(fixture platform .platform)
	enroll "$fx" "$NOEFI" "$FAKE" 5 --json --cert "$CERT"
	json_is "o['trusted_now'] is False and o['keyrings'] == ['.platform'] and o['in_kernel'] is True"
}

case_import() {
	local fx
	fx=$(fixture import)
	enroll "$fx" "$(efi_dir import 1)" "$FAKE" 0 --cert "$CERT"
	assert_log "--test-key $DER
--import $DER"
	cmp -s "$LOG.import.der" "$DER" || fail "mokutil was not given the DER certificate"
	{ grep -q 'Enroll MOK' "$LAST_OUT" && grep -q 'one-time password' "$LAST_OUT"; } ||
		fail "no next-boot instructions" "$(cat "$LAST_OUT")"
	ok "imports the DER file keygen wrote; tells what MokManager will ask"
	enroll "$fx" "$(efi_dir import0 0)" "$FAKE" 0 --json --cert "$CERT"
	json_is "o['action'] == 'import' and o['enrolled'] is False and o['mok_state'] == 'not-enrolled'"
	json_is "o['secure_boot'] is False and o['efi'] is True and o['mokutil'] == '$FAKE'"
	json_is "o['commands'] == ['$FAKE --import $DER']"
	# mokutil's own output must not break the JSON on stdout.
	grep -q 'import' "$LAST_OUT" || true
}

case_import_fails() {
	local fx
	fx=$(fixture importfail)
	FAKE_MOKUTIL_IMPORT_RC=1 enroll "$fx" "$(efi_dir if)" "$FAKE" 1 --json --cert "$CERT"
	json_is "o['action'] == 'import-failed' and o['secure_boot'] is None"
}

case_enrolled() {
	local fx state=$1
	fx=$(fixture "mok-$state")
	FAKE_MOKUTIL_STATE=$state enroll "$fx" "$(efi_dir "$state" 1)" "$FAKE" 0 --json --cert "$CERT"
	json_is "o['mok_state'] == '$state' and o['enrolled'] is ('$state' == 'enrolled') and o['action'] == 'reboot'"
	json_is "o['trusted_now'] is False"
	assert_log "--test-key $DER"
}

case_dry_run() {
	local fx
	fx=$(fixture dry)
	enroll "$fx" "$(efi_dir dry 1)" "$FAKE" 0 --dry-run --cert "$CERT"
	assert_log "--test-key $DER"
	grep -qF "Would run: $FAKE --import $DER" "$LAST_OUT" || fail "dry run does not show the command" "$(cat "$LAST_OUT")"
	ok "dry run: shows mokutil --import, runs only the --test-key query"
	enroll "$fx" "$(efi_dir dry 1)" "$FAKE" 0 --dry-run --json --cert "$CERT"
	json_is "o['dry_run'] is True and o['action'] == 'import'"
}

case_no_mokutil() {
	local fx
	fx=$(fixture nomok)
	enroll "$fx" "$(efi_dir nomok 1)" "$NOMOK" 5 --json --cert "$CERT"
	json_is "o['action'] == 'install-mokutil' and o['mokutil'] is None and o['enrolled'] is None"
}

case_der_copy() {
	local fx d=$WORKDIR/pem-only
	# A PEM certificate with no .der beside it: mokutil gets a private DER copy, removed after.
	mkdir -p "$d"
	cp "$CERT" "$d/cert.pem"
	fx=$(fixture dercopy)
	TMPDIR=$d enroll "$fx" "$(efi_dir dercopy 1)" "$FAKE" 0 --cert "$d/cert.pem"
	cmp -s "$LOG.import.der" "$DER" || fail "the copy given to mokutil is not the certificate's DER"
	grep -q "^--import $d/modsignctl-enroll\.[^/]*/signing.der\$" "$LOG" || fail "unexpected import path" "$(cat "$LOG")"
	assert_dir_contents "$d" cert.pem
	ok "DER copy made for mokutil and removed afterwards"
}

case_config() {
	local fx conf=$WORKDIR/modsignd.conf
	printf '[Key]\nCertificate=%s\n' "$CERT" >"$conf"
	fx=$(fixture config .machine)
	enroll "$fx" "$NOEFI" "$FAKE" 0 --json --config "$conf"
	json_is "o['certificate'] == '$CERT' and o['keyrings'] == ['.machine']"
	enroll "$fx" "$NOEFI" "$FAKE" 1 --config "$WORKDIR/missing.conf"
	enroll "$fx" "$NOEFI" "$FAKE" 1 --cert "$WORKDIR/missing.crt"
	enroll "$fx" "$NOEFI" "$FAKE" 2 --cert "$CERT" extra-argument
}

case_real_kernel() {
	command -v keyctl >/dev/null 2>&1 || skip_case "keyctl (Debian package keyutils) is not installed"
	grep -q ' keyring ' /proc/keys 2>/dev/null || skip_case "/proc/keys lists no keyrings here"
	# The key goes into a throw-away session keyring: loaded in the real kernel, but in no
	# keyring that verifies modules. enroll must find it by the kernel's own description,
	# read the real trusted keyrings with keyctl, and still say "not trusted".
	# shellcheck disable=SC2016 # the script's variables are its own arguments
	run_cmd keyctl session - bash -c '
		id=$(keyctl padd asymmetric "" @s <"$1") || exit 99
		grep -q "^$(printf %08x "$id") .*asymmetri" /proc/keys || exit 98
		MODSIGNCTL_EFI_DIR=$2 "$3" enroll --json --cert "$4"' _ "$DER" "$NOEFI" "$MODSIGNCTL" "$CERT"
	case $LAST_RC in
	99) skip_case "this kernel cannot load X.509 keys (keyctl padd asymmetric failed: $(cat "$LAST_ERR"))" ;;
	98) fail "the key added is not in /proc/keys" ;;
	5) ;;
	*) fail "enroll exited $LAST_RC" "$(cat "$LAST_ERR")" ;;
	esac
	json_is "o['in_kernel'] is True and o['trusted_now'] is False and o['keyrings'] == []"
}

run_case "trusted now: in .builtin_trusted_keys" case_trusted .builtin_trusted_keys
run_case "trusted now: in .secondary_trusted_keys" case_trusted .secondary_trusted_keys
run_case "trusted now: in .machine" case_trusted .machine
run_case "not trusted, no EFI: the built-in keys route" case_not_trusted_no_efi
run_case "in .platform only: not trusted for modules" case_only_platform
run_case "EFI, not enrolled: mokutil --import" case_import
run_case "EFI, mokutil --import fails" case_import_fails
run_case "EFI, already enrolled: reboot" case_enrolled enrolled
run_case "EFI, enrolment pending: reboot" case_enrolled pending
run_case "EFI, --dry-run" case_dry_run
run_case "EFI without mokutil" case_no_mokutil
run_case "PEM certificate without a .der: a temporary DER copy" case_der_copy
run_case "certificate from the configuration; errors" case_config
run_case "real /proc/keys: a loaded key outside the trusted keyrings" case_real_kernel
finish
