#!/bin/bash
# run-tpm2-kernel-test.sh: does a real kernel load modules signed with a key that lives in a
# TPM (swtpm, through the tpm2-openssl provider)?
#
# The test kernel (build-kernel.sh, cached in KERNEL_CACHE) trusts only the certificates built
# into it, and the TPM key is made here, at each run. As in run-keygen-kernel-test.sh, the key
# is trusted through the secondary keyring: the TPM key makes a CSR (openssl req -provider
# tpm2), the built-in test key rsa2048 issues a code-signing certificate for it (its
# authorityKeyIdentifier names rsa2048, which is how the kernel finds the issuer), and the
# guest adds that certificate to .secondary_trusted_keys (addkey.c). modsignctl signs with
# `--key handle:0x81000001 --cert THAT.crt`, so the modules name that very certificate, by
# issuer and serial or (--keyid) by subjectKeyIdentifier.
#
# In the guest, in this order:
#   before-*        signed by the TPM key, loaded before its certificate is added: EKEYREJECTED
#   addkey-self     a self-signed certificate of the TPM key: refused (no trusted issuer)
#   addkey-forged   a certificate of the TPM key issued by an impostor key that bears rsa2048's
#                   name and subjectKeyIdentifier: refused (the kernel checks the signature
#                   with rsa2048's key; the error depends on the impostor's numbers: EINVAL
#                   when the signature is not below rsa2048's modulus or does not decrypt to
#                   a leading zero, EBADMSG for bad PKCS#1 padding, crypto/rsa*.c)
#   addkey-cross    the certificate issued by rsa2048: added
#   tpm-*           sha256/sha512, issuer+serial/--keyid, .ko.xz, sign-file, and (when the
#                   daemon is built) what modsignd with PrivateKey=handle:... signed in a
#                   watched tree: all load
#   other-tpm.ko    signed by a second TPM key, whose certificate is never added: EKEYREJECTED
# Before the boot, every signature is checked on the host with openssl cms -verify (rows
# cms:LABEL: verified, how the signer is named, the digest, and rsaEncryption).
#
# Environment: MODSIGNCTL, KERNEL_CACHE, srcdir, QEMU, BUSYBOX, LINUX_SOURCE, QEMU_TIMEOUT as
# for run-kernel-test.sh; MODSIGND (default: $PWD/modsignd; without it, or without root, the
# daemon row is left out); TPM2_KERNEL_TEST_LOG: where to keep the serial log (default: not
# kept).
# Exit: 0 pass, 1 fail, 77 skip (qemu, linux-source-6.1, swtpm, tpm2-tools, tpm2-openssl or
# the swtpm TCTI missing).
set -eu

me=tpm2-kernel-test
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"
MODSIGND=${MODSIGND:-$PWD/modsignd}
kt_find_tdir addkey.c finit.c module/mst_hello.c

# ---------------------------------------------------------------- prerequisites
command -v swtpm >/dev/null 2>&1 || skip "swtpm not found (apt-get install swtpm)"
for t in tpm2_createprimary tpm2_create tpm2_load tpm2_evictcontrol tpm2_flushcontext; do
	command -v "$t" >/dev/null 2>&1 || skip "$t not found (apt-get install tpm2-tools)"
done
[ -n "$(find /usr/lib -name tpm2.so -path '*ossl-modules*' 2>/dev/null | head -n 1)" ] ||
	skip "the tpm2 OpenSSL provider is not installed (apt-get install tpm2-openssl)"
[ -n "$(find /usr/lib -name 'libtss2-tcti-swtpm.so*' 2>/dev/null | head -n 1)" ] ||
	skip "the swtpm TCTI is not installed (apt-get install libtss2-tcti-swtpm0)"
kt_require gcc make cpio gzip xz openssl od dd timeout flock modinfo

kt_workdir tpm2-kernel
# Ends what this script started, by pid: swtpm and, if it ran, the daemon.
# shellcheck disable=SC2317 # called by the trap
cleanup() {
	local f
	for f in "$work/swtpm.pid" "$work/daemon.pid"; do
		if [ -s "$f" ]; then
			kill "$(cat "$f")" 2>/dev/null || true
		fi
	done
	rm -rf "$work"
}
trap cleanup EXIT
t0=$(date +%s)

# ---------------------------------------------------------------- kernel
kt_kernel rsa2048
CA=$K/rsa2048

# ---------------------------------------------------------------- swtpm and the TPM keys
# swtpm on two free TCP ports (server, control); a port taken by someone else means trying
# others.
mkdir -p "$work/tpm"
started=
for _ in 1 2 3 4 5 6 7 8; do
	PORT=$((20000 + RANDOM % 20000))
	if swtpm socket --tpmstate dir="$work/tpm" --tpm2 --server type=tcp,port=$PORT,bindaddr=127.0.0.1 \
		--ctrl type=tcp,port=$((PORT + 1)),bindaddr=127.0.0.1 --flags not-need-init,startup-clear \
		--pid file="$work/swtpm.pid" --daemon 2>"$work/swtpm.log"; then
		started=1
		break
	fi
done
[ -n "$started" ] || die "swtpm did not start: $(cat "$work/swtpm.log")"
export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$PORT"
export TPM2OPENSSL_TCTI=$TPM2TOOLS_TCTI
echo "$me: swtpm pid $(cat "$work/swtpm.pid") on 127.0.0.1:$PORT"

# tpm COMMAND...: one tpm2-tools step. There is no resource manager: transient objects are
# flushed after every step, or the TPM runs out of object slots.
tpm() {
	timeout 30 "$@" >>"$work/tpm2.log" 2>&1 || die "$1 failed: $(tail -n 20 "$work/tpm2.log")"
	tpm2_flushcontext -t >>"$work/tpm2.log" 2>&1 || true
}
# tpm_key HANDLE NAME: a persistent RSA-2048 key under a fresh primary key.
tpm_key() {
	tpm tpm2_createprimary -C o -c "$work/primary.ctx"
	tpm tpm2_create -C "$work/primary.ctx" -G rsa2048 -u "$work/$2.pub" -r "$work/$2.priv"
	tpm tpm2_load -C "$work/primary.ctx" -u "$work/$2.pub" -r "$work/$2.priv" -c "$work/$2.ctx"
	tpm tpm2_evictcontrol -C o -c "$work/$2.ctx" "$1"
}
HANDLE=0x81000001
OTHER=0x81000002
tpm_key "$HANDLE" tpm
tpm_key "$OTHER" other
ossl_tpm() {
	timeout 60 openssl "$1" -provider tpm2 -provider default "${@:2}"
}

echo "$me: a CSR from the TPM key $HANDLE; rsa2048 (built in) issues its certificate"
ossl_tpm req -new -key "handle:$HANDLE" -subj "/O=modsignd test suite/CN=modsignd TPM2 kernel test" \
	-sha256 -out "$work/tpm.csr" >"$work/req.log" 2>&1 || die "openssl req with the tpm2 provider: $(cat "$work/req.log")"
cat >"$work/cross.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=codeSigning
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EXT
CERT=$work/tpm.crt
openssl x509 -req -in "$work/tpm.csr" -CA "$CA.crt" -CAkey "$CA.key" -set_serial 0x4d5432 -days 30 \
	-sha256 -extfile "$work/cross.ext" -out "$CERT" >"$work/x509.log" 2>&1 ||
	die "openssl x509 -req: $(cat "$work/x509.log")"
openssl x509 -in "$CERT" -outform DER -out "$work/cross.der"
# The kernel looks the issuer up by the authorityKeyIdentifier (keyid, or issuer+serial); this
# 6.1 kernel also falls back on the issuer's name when there is no AKID
# (crypto/asymmetric_keys/x509_cert_parser.c, auth_ids[2]); older ones need the AKID. It must
# be rsa2048's SKID.
ca_skid=$(openssl x509 -in "$CA.crt" -noout -ext subjectKeyIdentifier | tail -n 1 | tr -d ' ')
akid=$(openssl x509 -in "$CERT" -noout -ext authorityKeyIdentifier | sed -n 's/^ *\(keyid:\)\{0,1\}\([0-9A-F:]\{20,\}\).*/\2/p' | head -n 1)
[ -n "$ca_skid" ] || die "rsa2048.crt has no subjectKeyIdentifier"
[ "$akid" = "$ca_skid" ] ||
	die "the certificate's authorityKeyIdentifier ($akid) is not rsa2048's SKID ($ca_skid)"

# Controls: a certificate of the TPM key from an impostor issuer (rsa2048's subject and SKID,
# another key); a self-signed certificate of the same TPM key (no trusted issuer); and a second
# TPM key with only a self-signed certificate.
printf '[req]\ndistinguished_name=dn\nprompt=no\nx509_extensions=ext\n[dn]\n[ext]\n%s\n%s\n' \
	"basicConstraints=critical,CA:FALSE" "subjectKeyIdentifier=$ca_skid" >"$work/impostor.cnf"
openssl req -new -x509 -nodes -newkey rsa:2048 -keyout "$work/impostor.key" -config "$work/impostor.cnf" \
	-subj "$(openssl x509 -in "$CA.crt" -noout -subject -nameopt RFC2253 | sed 's/^subject=//' |
		awk -F, '{ s = ""; for (i = NF; i >= 1; i--) s = s "/" $i; print s }')" \
	-sha256 -days 30 -out "$work/impostor.crt" >"$work/impostor.log" 2>&1 ||
	die "making the impostor issuer: $(cat "$work/impostor.log")"
[ "$(openssl x509 -in "$work/impostor.crt" -noout -subject)" = "$(openssl x509 -in "$CA.crt" -noout -subject)" ] ||
	die "harness: the impostor's subject is not rsa2048's"
openssl x509 -req -in "$work/tpm.csr" -CA "$work/impostor.crt" -CAkey "$work/impostor.key" -set_serial 0x4d5433 \
	-days 30 -sha256 -extfile "$work/cross.ext" -outform DER -out "$work/forged.der" >"$work/x509.log" 2>&1 ||
	die "openssl x509 -req (impostor): $(cat "$work/x509.log")"
printf '[req]\ndistinguished_name=dn\nprompt=no\nx509_extensions=ext\n[dn]\nCN=%s\n[ext]\n%s\n%s\n%s\n%s\n' \
	"modsignd TPM2 kernel test (self-signed)" "basicConstraints=critical,CA:FALSE" \
	"keyUsage=critical,digitalSignature" "extendedKeyUsage=codeSigning" \
	"subjectKeyIdentifier=hash" >"$work/self.cnf"
ossl_tpm req -new -x509 -key "handle:$HANDLE" -config "$work/self.cnf" -sha256 -days 30 \
	-outform DER -out "$work/self.der" >"$work/req.log" 2>&1 || die "openssl req -x509 (TPM key): $(cat "$work/req.log")"
sed -i 's/(self-signed)/(other key)/' "$work/self.cnf"
OTHER_CERT=$work/other.crt
ossl_tpm req -new -x509 -key "handle:$OTHER" -config "$work/self.cnf" -sha256 -days 30 \
	-out "$OTHER_CERT" >"$work/req.log" 2>&1 || die "openssl req -x509 (other TPM key): $(cat "$work/req.log")"

# ---------------------------------------------------------------- modules and helpers
echo "$me: building the test module and the helpers"
kt_modules
H=$work/module/mst_hello.ko
kt_root addkey
cp "$work/cross.der" "$root/cross.der"
cp "$work/self.der" "$root/self.der"
cp "$work/forged.der" "$root/forged.der"
# Unsigned compressed input, made like kbuild's modules_install: CRC32 (the kernel's xz
# decoder has no CRC64), 1 MiB dictionary.
xz -c --check=crc32 --lzma2=dict=1MiB "$H" >"$work/mst_hello.ko.xz"

# ---------------------------------------------------------------- variants
: >"$work/expect"
: >"$work/static"
: >"$work/before"
: >"$work/after"
ok=OK
rej="ERR EKEYREJECTED"

# variant PHASE LABEL EXPECTED: copy the module (LABEL ending in .xz: the compressed one) to
# $V/LABEL, to be loaded in PHASE (before or after the certificate is added).
variant() {
	local mode=plain src=$H
	case $2 in *.xz)
		mode=compressed
		src=$work/mst_hello.ko.xz
		;;
	esac
	cp "$src" "$V/$2"
	echo "$2 $mode" >>"$work/$1"
	printf '%s %s %s\n' "$2" "$mode" "$3" >>"$work/expect"
}

# run COMMAND...: a signing command; its failure fails the test.
run() {
	"$@" >"$work/run.out" 2>&1 || die "command failed: $*: $(cat "$work/run.out")"
}

# msign LABEL HASH [--keyid]: modsignctl sign with the TPM key and its rsa2048-issued certificate
msign() {
	local label=$1 hash=$2
	shift 2
	run "$MODSIGNCTL" sign --key "handle:$HANDLE" --cert "$CERT" --hash "$hash" "$@" "$V/$label"
}

# host_check LABEL CERT EXPECTED: openssl cms -verify of the module's signature against CERT,
# on the host. Adds a row cms:LABEL whose value is
# "verified|not-verified,<how the signer is named>,<digest>,<signature algorithm>".
host_check() {
	local label=$1 cert=$2 expected=$3 f=$V/$1 got
	if [ "${label%.xz}" != "$label" ]; then
		xz -dc "$f" >"$work/plain.ko" || die "xz -dc $f"
		f=$work/plain.ko
	fi
	module_sig "$f" "$work/sig.p7" "$work/body" || die "$label is not signed"
	if openssl cms -verify -binary -inform DER -in "$work/sig.p7" -content "$work/body" \
		-certfile "$cert" -nointern -noverify >/dev/null 2>"$work/cms.log"; then
		got=verified
	else
		got=not-verified
		sed "s/^/    cms:$label: /" "$work/cms.log" >&2
	fi
	openssl cms -cmsout -print -inform DER -in "$work/sig.p7" >"$work/cms.txt" 2>&1 || true
	if grep -q 'd.subjectKeyIdentifier:' "$work/cms.txt"; then
		got="$got,skid"
	elif grep -q 'd.issuerAndSerialNumber:' "$work/cms.txt"; then
		got="$got,issuer+serial"
	else
		got="$got,?"
	fi
	got="$got,$(grep -A1 'digestAlgorithm:' "$work/cms.txt" | sed -n 's/^ *algorithm: \([a-z0-9]*\).*/\1/p' | head -n 1)"
	got="$got,$(grep -A1 'signatureAlgorithm:' "$work/cms.txt" | sed -n 's/^ *algorithm: \([A-Za-z0-9]*\).*/\1/p' | head -n 1)"
	printf 'cms:%s static %s\n' "$label" "$expected" >>"$work/expect"
	printf 'cms:%s %s\n' "$label" "$got" >>"$work/static"
}

echo "$me: signing with modsignctl --key handle:$HANDLE --cert tpm.crt"
# Loaded before the certificate is added: refused.
variant before before-sha256.ko "$rej"
msign before-sha256.ko sha256
variant before before-keyid.ko "$rej"
msign before-keyid.ko sha256 --keyid
# Then the certificates (the table lists the rows in the guest's order).
printf 'addkey-self.der key ERR ENOKEY\naddkey-forged.der key ERR EINVAL|ERR EBADMSG|ERR EKEYREJECTED\naddkey-cross.der key OK\n' >>"$work/expect"
# Loaded after: all load.
variant after tpm-sha256.ko "$ok"
msign tpm-sha256.ko sha256
variant after tpm-sha512.ko "$ok"
msign tpm-sha512.ko sha512
variant after tpm-keyid-sha256.ko "$ok"
msign tpm-keyid-sha256.ko sha256 --keyid
variant after tpm-keyid-sha512.ko "$ok"
msign tpm-keyid-sha512.ko sha512 --keyid
variant after tpm-sha256.ko.xz "$ok"
msign tpm-sha256.ko.xz sha256
variant after tpm-keyid-sha512.ko.xz "$ok"
msign tpm-keyid-sha512.ko.xz sha512 --keyid
variant after tpm-signfile.ko "$ok"
run "$MODSIGNCTL" sign-file sha256 "handle:$HANDLE" "$CERT" "$V/tpm-signfile.ko"

# The daemon with PrivateKey=handle:...: its watcher signs a module that arrives in a scratch
# tree ROOT/lib/modules/KREL/updates (KREL the test kernel's release, "installed" in that
# tree). Left out when modsignd is not built or we are not root (it insists on root).
daemon_row=
if [ -x "$MODSIGND" ] && [ "$(id -u)" -eq 0 ]; then
	d=$work/daemon
	krel=$(modinfo -F vermagic "$H" | cut -d' ' -f1)
	[ -n "$krel" ] || die "no vermagic in $H"
	mkdir -p "$d/root/lib/modules/$krel/updates" "$d/state"
	chmod 0700 "$d"
	printf '[Key]\nPrivateKey=handle:%s\nCertificate=%s\n[Signing]\nHash=sha256\n[Watch]\nPath=\nPath=%s\n[Policy]\nMode=allowlist\nAllow=*\nRateLimit=off\n[Daemon]\nSocket=%s\nStateDirectory=%s\nWorkers=1\n' \
		"$HANDLE" "$CERT" "$d/root/lib/modules" "$d/own.socket" "$d/state" >"$d/modsignd.conf"
	# tests/daemon/lib.sh: no daemon may make its inotify instance while test-daemon-overflow
	# has lowered fs.inotify.max_queued_events (it holds this lock exclusively meanwhile).
	exec {lockfd}>>"${TMPDIR:-/tmp}/modsignd-daemon-tests.lock"
	flock -s -w 60 "$lockfd" || die "cannot take the daemon tests' lock"
	env -u NOTIFY_SOCKET -u WATCHDOG_USEC -u LISTEN_FDS -u LISTEN_PID \
		"$MODSIGND" --config "$d/modsignd.conf" </dev/null >"$d/daemon.log" 2>&1 {lockfd}>&- &
	echo $! >"$work/daemon.pid"
	for _ in $(seq 300); do
		grep -q ' ready: ' "$d/daemon.log" && break
		kill -0 "$(cat "$work/daemon.pid")" 2>/dev/null || break
		sleep 0.1
	done
	exec {lockfd}>&-
	grep -q ' ready: ' "$d/daemon.log" || die "modsignd did not get ready: $(tail -n 20 "$d/daemon.log")"
	target=$d/root/lib/modules/$krel/updates/mst_hello.ko
	cp "$H" "$d/mst_hello.ko.tmp"
	mv "$d/mst_hello.ko.tmp" "$target"
	for _ in $(seq 600); do
		grep -qF "modsignd: signed $target (" "$d/daemon.log" && break
		sleep 0.1
	done
	grep -qF "modsignd: signed $target (" "$d/daemon.log" ||
		die "modsignd did not sign $target in 60 s: $(tail -n 20 "$d/daemon.log")"
	kill "$(cat "$work/daemon.pid")" 2>/dev/null || true
	wait "$(cat "$work/daemon.pid")" 2>/dev/null || true
	rm -f "$work/daemon.pid"
	sed -n "s|^modsignd: signed $target|    modsignd: signed .../updates/mst_hello.ko|p" "$d/daemon.log"
	variant after tpm-daemon.ko "$ok"
	cp "$target" "$V/tpm-daemon.ko"
	daemon_row=1
else
	echo "$me: note: no daemon row (needs root and $MODSIGND)"
fi

# The other TPM key, whose certificate the kernel never sees: refused.
variant after other-tpm.ko "$rej"
run "$MODSIGNCTL" sign --key "handle:$OTHER" --cert "$OTHER_CERT" --hash sha256 "$V/other-tpm.ko"

echo "$me: checking the signatures on the host (openssl cms -verify)"
is=issuer+serial
host_check before-sha256.ko "$CERT" "verified,$is,sha256,rsaEncryption"
host_check before-keyid.ko "$CERT" "verified,skid,sha256,rsaEncryption"
host_check tpm-sha256.ko "$CERT" "verified,$is,sha256,rsaEncryption"
host_check tpm-sha512.ko "$CERT" "verified,$is,sha512,rsaEncryption"
host_check tpm-keyid-sha256.ko "$CERT" "verified,skid,sha256,rsaEncryption"
host_check tpm-keyid-sha512.ko "$CERT" "verified,skid,sha512,rsaEncryption"
host_check tpm-sha256.ko.xz "$CERT" "verified,$is,sha256,rsaEncryption"
host_check tpm-keyid-sha512.ko.xz "$CERT" "verified,skid,sha512,rsaEncryption"
host_check tpm-signfile.ko "$CERT" "verified,$is,sha256,rsaEncryption"
[ -z "$daemon_row" ] || host_check tpm-daemon.ko "$CERT" "verified,$is,sha256,rsaEncryption"
host_check other-tpm.ko "$OTHER_CERT" "verified,$is,sha256,rsaEncryption"
# Controls of the check itself: one byte of the signed body inverted; the right signature
# with the certificate of the other key.
cp "$V/tpm-sha256.ko" "$V/tampered.ko"
flip_byte "$V/tampered.ko" $(($(stat -c %s "$H") / 2))
cmp -s "$V/tampered.ko" "$V/tpm-sha256.ko" && die "harness: flipping a byte did not change tampered.ko"
host_check tampered.ko "$CERT" "not-verified,$is,sha256,rsaEncryption"
cp "$V/tpm-sha256.ko" "$V/wrong-cert.ko"
host_check wrong-cert.ko "$OTHER_CERT" "not-verified,$is,sha256,rsaEncryption"
rm -f "$V/tampered.ko" "$V/wrong-cert.ko"

# ---------------------------------------------------------------- initramfs and boot
mv "$work/before" "$V/before.list"
mv "$work/after" "$V/after.list"
{
	kt_guest_prologue
	cat <<'INIT'
# load LIST: finit every "FILE MODE" line of LIST
load() {
	while read -r f mode; do
		if [ "$mode" = compressed ]; then
			/finit "/v/$f" compressed
		else
			/finit "/v/$f"
		fi
	done <"$1"
}
# addkey DER: add to .secondary_trusted_keys, print a RESULT line (no key serial)
addkey() {
	r=$(/addkey "/$1")
	echo "ADDKEY-RAW $1 $r"
	case $r in
	"ADDKEY OK "*) echo "RESULT addkey-$1 OK" ;;
	"ADDKEY ERR Required key not available") echo "RESULT addkey-$1 ERR ENOKEY" ;;
	"ADDKEY ERR Key was rejected by service") echo "RESULT addkey-$1 ERR EKEYREJECTED" ;;
	"ADDKEY ERR Invalid argument") echo "RESULT addkey-$1 ERR EINVAL" ;;
	"ADDKEY ERR Bad message") echo "RESULT addkey-$1 ERR EBADMSG" ;;
	*) echo "RESULT addkey-$1 ${r#ADDKEY }" ;;
	esac
}
echo "MST-BEGIN $(uname -r)"
load /v/before.list
addkey self.der
addkey forged.der
addkey cross.der
load /v/after.list
echo "MST-END"
echo "----- kernel log -----"
dmesg
echo "----- end of kernel log -----"
reboot -f
INIT
} >"$root/init"
kt_boot
if [ -n "${TPM2_KERNEL_TEST_LOG:-}" ]; then
	cp "$work/serial.log" "$TPM2_KERNEL_TEST_LOG"
fi
sed -n '/^MST-BEGIN/,/^MST-END/p' "$work/serial.log"

# ---------------------------------------------------------------- verdict
kt_table 26 48
kt_summary "$t0"
if [ "$fails" -ne 0 ]; then
	echo "$me: FAIL; the kernel's messages about keys and modules:"
	sed -n '/^----- kernel log/,/^----- end of kernel log/p' "$work/serial.log" |
		grep -iE 'x509|key|sig|module|mst_|asymmetric|pkcs7' | tail -n 40 | sed 's/^/    | /'
	tail -n 20 "$work/serial.log" | sed 's/^/    | /'
	exit 1
fi
echo "$me: PASS: the kernel loads modules signed with a TPM-resident key once its rsa2048-issued certificate is trusted"
exit 0
