#!/bin/bash
# run-kernel-test.sh: the kernel acceptance test of modsignd.
#
# A real Linux 6.1 kernel with CONFIG_MODULE_SIG_FORCE (built once by
# build-kernel.sh, cached in KERNEL_CACHE) must load the modules that
# modsignctl signs and refuse the ones that are unsigned, tampered with, or
# signed by a key it does not trust. The kernel boots under qemu (TCG) with a
# busybox initramfs whose /init loads every variant with finit (finit.c) and
# prints one "RESULT <label> OK|ERR <errno>" line for each.
#
# Environment:
#   MODSIGNCTL    the CLI under test (default: $PWD/modsignctl)
#   KERNEL_CACHE  where the test kernel is built and kept
#                 (default: $PWD/tests/kernel/cache)
#   srcdir        automake's srcdir (default: two levels above this script)
#   KERNEL_TEST_LOG  where the serial log of the last run is kept
#                 (default: $KERNEL_CACHE/serial.log)
#   QEMU, BUSYBOX, SIGN_FILE, LINUX_SOURCE, QEMU_TIMEOUT  tool overrides
#
# Exit: 0 pass, 1 fail, 77 skip (qemu or linux-source-6.1 missing).
set -eu

me=kernel-test
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"
kt_find_tdir finit.c module/mst_hello.c

# ---------------------------------------------------------------- prerequisites
kt_require gcc make cpio gzip xz openssl od dd timeout
[ -x "$SIGN_FILE" ] || die "missing tools: $SIGN_FILE(linux-kbuild-6.1)"
kt_workdir kernel-test
serial_keep=${KERNEL_TEST_LOG:-$KERNEL_CACHE/serial.log}
t0=$(date +%s)

# ---------------------------------------------------------------- kernel
kt_kernel

# ---------------------------------------------------------------- modules
echo "$me: building test modules and finit"
kt_modules
H=$work/module/mst_hello.ko
B=$work/module/mst_big.ko
if [ ! -f "$H" ] || [ ! -f "$B" ]; then
	die "test modules not built"
fi
kt_root

# ---------------------------------------------------------------- variants
echo "$me: making the module variants with MODSIGNCTL=$MODSIGNCTL"
: >"$work/expect"
: >"$work/toolfail"
: >"$work/static"

# variant LABEL SOURCE MODE EXPECTED: copy SOURCE to $V/LABEL and record
# what the kernel must answer (MODE: plain or compressed).
variant() {
	cp "$2" "$V/$1"
	printf '%s %s %s\n' "$1" "$3" "$4" >>"$work/expect"
}

# tool LABEL COMMAND...: run a command that makes variant LABEL; if it fails,
# show its output and leave the variant out of the boot (reported as such).
tool() {
	local label=$1
	shift
	if ! "$@" >"$work/tool.out" 2>&1; then
		echo "$me: $label: command failed: $*" >&2
		sed 's/^/    | /' "$work/tool.out" >&2
		echo "$label" >>"$work/toolfail"
		rm -f "$V/$label"
		return 0
	fi
	if [ -s "$work/tool.out" ]; then
		sed "s/^/    $label: /" "$work/tool.out"
	fi
}

# sign LABEL KEYNAME HASH [EXTRA...]: modsignctl sign in place
sign() {
	local label=$1 key=$2 hash=$3
	shift 3
	tool "$label" "$MODSIGNCTL" sign --key "$K/$key.key" --cert "$K/$key.crt" \
		--hash "$hash" "$@" "$V/$label"
}

xz_blocks() {
	xz --robot --list "$1" | awk -F'\t' '$1 == "file" { print $3 }'
}

# recompress_multiblock IN.xz OUT.xz: same content, 3 MiB xz blocks
# shellcheck disable=SC2317 # called through tool()
recompress_multiblock() {
	xz -dc "$1" >"$work/recompress.tmp" &&
		xz -c -T2 --block-size=3MiB --check=crc32 --lzma2=dict=1MiB \
			"$work/recompress.tmp" >"$2" &&
		rm -f "$work/recompress.tmp"
}

# sid_kind FILE: how the PKCS#7 appended to module FILE names its signer:
# "skid" (subjectKeyIdentifier, --keyid) or "issuer+serial".
sid_kind() {
	module_sig "$1" "$work/sid.p7" || {
		echo "unsigned"
		return 0
	}
	openssl cms -cmsout -print -inform DER -in "$work/sid.p7" \
		>"$work/sid.txt" 2>&1 || true
	if grep -q 'd.subjectKeyIdentifier:' "$work/sid.txt"; then
		echo "skid"
	elif grep -q 'd.issuerAndSerialNumber:' "$work/sid.txt"; then
		echo "issuer+serial"
	else
		echo "unparsable"
	fi
}

# static LABEL EXPECTED GOT: a check made before the boot, shown in the table
static() {
	printf '%s static %s\n' "$1" "$2" >>"$work/expect"
	printf '%s %s\n' "$1" "$3" >>"$work/static"
}

ok=OK
rej="ERR EKEYREJECTED"

# Unsigned compressed inputs, made like kbuild's modules_install would:
# CRC32 check (the kernel's xz decoder does not do CRC64), 1 MiB dictionary.
xz -c --check=crc32 --lzma2=dict=1MiB "$H" >"$work/mst_hello.ko.xz"
# The big one multi-threaded with 3 MiB blocks: several xz blocks.
xz -c -T2 --block-size=3MiB --check=crc32 --lzma2=dict=1MiB "$B" \
	>"$work/mst_big.ko.xz"
nb=$(xz_blocks "$work/mst_big.ko.xz")
[ "${nb:-0}" -ge 2 ] ||
	die "harness: unsigned mst_big.ko.xz has ${nb:-?} xz block(s), want >= 2"
echo "$me: unsigned mst_big.ko.xz: $(stat -c %s "$work/mst_big.ko.xz") bytes, $nb xz blocks"

# Must load.
variant rsa2048-sha256.ko "$H" plain "$ok"
sign rsa2048-sha256.ko rsa2048 sha256
variant rsa2048-sha512.ko "$H" plain "$ok"
sign rsa2048-sha512.ko rsa2048 sha512
variant rsa4096-sha384.ko "$H" plain "$ok"
sign rsa4096-sha384.ko rsa4096 sha384
variant rsa2048-keyid.ko "$H" plain "$ok"
sign rsa2048-keyid.ko rsa2048 sha256 --keyid
variant ec256-sha256.ko "$H" plain "$ok"
sign ec256-sha256.ko ec256 sha256
if [ -f "$K/ec384.key" ]; then
	variant ec384-sha384.ko "$H" plain "$ok"
	sign ec384-sha384.ko ec384 sha384
fi
variant rsa2048-sha256.ko.xz "$work/mst_hello.ko.xz" compressed "$ok"
sign rsa2048-sha256.ko.xz rsa2048 sha256
variant big-rsa2048-sha256.ko.xz "$work/mst_big.ko.xz" compressed "$ok"
sign big-rsa2048-sha256.ko.xz rsa2048 sha256
big_blocks=
if [ -f "$V/big-rsa2048-sha256.ko.xz" ]; then
	big_blocks=$(xz_blocks "$V/big-rsa2048-sha256.ko.xz" || true)
	# The same signed module, recompressed by the harness into several
	# blocks, so that the kernel's multi-block decoding is always tested.
	variant big-recompressed.ko.xz /dev/null compressed "$ok"
	tool big-recompressed.ko.xz recompress_multiblock \
		"$V/big-rsa2048-sha256.ko.xz" "$V/big-recompressed.ko.xz"
fi
variant signfile-compat.ko "$H" plain "$ok"
tool signfile-compat.ko "$MODSIGNCTL" sign-file sha256 "$K/rsa2048.key" \
	"$K/rsa2048.crt" "$V/signfile-compat.ko"
# Sanity check of the harness itself: Debian's sign-file.
variant debian-sign-file.ko "$H" plain "$ok"
tool debian-sign-file.ko "$SIGN_FILE" sha256 "$K/rsa2048.key" \
	"$K/rsa2048.crt" "$V/debian-sign-file.ko"

# Must be refused.
variant unsigned.ko "$H" plain "$rej"
variant tampered.ko "$H" plain "$rej"
sign tampered.ko rsa2048 sha256
if [ -f "$V/tampered.ko" ]; then
	cp "$V/tampered.ko" "$work/tampered.orig"
	flip_byte "$V/tampered.ko" $(($(stat -c %s "$H") / 2))
	if cmp -s "$V/tampered.ko" "$work/tampered.orig"; then
		die "harness: flipping a byte did not change tampered.ko"
	fi
fi
openssl req -new -x509 -nodes -days 2 -newkey rsa:2048 -sha256 \
	-subj "/O=modsignd test suite/CN=untrusted test key" \
	-addext "basicConstraints=critical,CA:FALSE" \
	-addext "keyUsage=critical,digitalSignature" \
	-addext "extendedKeyUsage=codeSigning" \
	-keyout "$work/untrusted.key" -out "$work/untrusted.crt" \
	>"$work/openssl.log" 2>&1 || {
	cat "$work/openssl.log" >&2
	die "generating the untrusted key"
}
variant untrusted.ko "$H" plain "$rej"
tool untrusted.ko "$MODSIGNCTL" sign --key "$work/untrusted.key" \
	--cert "$work/untrusted.crt" --hash sha256 "$V/untrusted.ko"
variant unsigned.ko.xz "$work/mst_hello.ko.xz" compressed "$rej"

# Static checks, so that the variants test what they claim to: --keyid
# names the signer by subjectKeyIdentifier, the default by issuer and serial,
# and the tampered and untrusted modules do carry a signature.
for f in rsa2048-keyid.ko:skid rsa2048-sha256.ko:issuer+serial \
	tampered.ko:issuer+serial untrusted.ko:issuer+serial; do
	if [ -f "$V/${f%%:*}" ]; then
		static "sid:${f%%:*}" "${f#*:}" "$(sid_kind "$V/${f%%:*}")"
	fi
done

# ---------------------------------------------------------------- initramfs
awk '$2 != "static" { print $1, $2 }' "$work/expect" | while read -r f mode; do
	[ -f "$V/$f" ] && echo "$f $mode"
done >"$V/list" || true

{
	kt_guest_prologue
	cat <<'EOF'
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "MST-BEGIN $(uname -r)"
while read -r f mode; do
	if [ "$mode" = compressed ]; then
		/finit "/v/$f" compressed
	else
		/finit "/v/$f"
	fi
done </v/list
echo "MST-END"
echo "----- kernel log -----"
dmesg
echo "----- end of kernel log -----"
reboot -f
EOF
} >"$root/init"

# ---------------------------------------------------------------- boot
kt_boot
mkdir -p "$(dirname "$serial_keep")"
cp "$work/serial.log" "$serial_keep"
echo "$me: serial log: $serial_keep"

# ---------------------------------------------------------------- verdict
kt_table 28 18

if [ -n "$big_blocks" ]; then
	echo "$me: big-rsa2048-sha256.ko.xz as signed by modsignctl has $big_blocks xz block(s)"
	[ "$big_blocks" -ge 2 ] ||
		echo "$me: WARNING: modsignctl wrote a single-block .ko.xz; multi-block decoding is covered by big-recompressed.ko.xz only"
fi
kt_summary "$t0"
if [ "$fails" -ne 0 ]; then
	echo "$me: FAIL; last lines of the serial log ($serial_keep):"
	tail -n 60 "$work/serial.log" | sed 's/^/    | /'
	exit 1
fi
exit 0
