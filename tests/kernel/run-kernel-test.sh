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
srcdir=${srcdir:-$(cd "$here/../.." && pwd)}
MODSIGNCTL=${MODSIGNCTL:-$PWD/modsignctl}
KERNEL_CACHE=${KERNEL_CACHE:-$PWD/tests/kernel/cache}
QEMU=${QEMU:-qemu-system-x86_64}
QEMU_TIMEOUT=${QEMU_TIMEOUT:-120}
BUSYBOX=${BUSYBOX:-/bin/busybox}
SIGN_FILE=${SIGN_FILE:-/usr/lib/linux-kbuild-6.1/scripts/sign-file}
LINUX_SOURCE=${LINUX_SOURCE:-/usr/src/linux-source-6.1.tar.xz}
export LINUX_SOURCE

# Our own files: found through srcdir (automake), else next to this script.
tdir=
for d in "$srcdir/tests/kernel" "$srcdir/kernel" "$srcdir" "$here"; do
	if [ -f "$d/finit.c" ] && [ -f "$d/module/mst_hello.c" ]; then
		tdir=$(cd "$d" && pwd)
		break
	fi
done
if [ -z "$tdir" ]; then
	echo "$me: cannot find finit.c and module/ (srcdir=$srcdir)" >&2
	exit 1
fi

# ---------------------------------------------------------------- prerequisites
if ! command -v "$QEMU" >/dev/null 2>&1; then
	echo "$me: SKIP: $QEMU not found (apt-get install qemu-system-x86)"
	exit 77
fi
if [ ! -f "$LINUX_SOURCE" ]; then
	echo "$me: SKIP: $LINUX_SOURCE not found (apt-get install linux-source-6.1)"
	exit 77
fi
missing=
for t in gcc make cpio gzip xz openssl od dd timeout; do
	command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
[ -x "$BUSYBOX" ] || missing="$missing $BUSYBOX(busybox-static)"
[ -x "$SIGN_FILE" ] || missing="$missing $SIGN_FILE(linux-kbuild-6.1)"
if [ -n "$missing" ]; then
	echo "$me: FAIL: missing tools:$missing" >&2
	exit 1
fi
if ldd "$BUSYBOX" >/dev/null 2>&1; then
	echo "$me: FAIL: $BUSYBOX is dynamically linked (apt-get install busybox-static)" >&2
	exit 1
fi
if [ ! -x "$MODSIGNCTL" ]; then
	echo "$me: FAIL: MODSIGNCTL=$MODSIGNCTL is not an executable" >&2
	exit 1
fi

# The kernel's build system must not see the make variables of an outer
# `make check`.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES

work=$(mktemp -d "${TMPDIR:-/tmp}/modsignd-kernel-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
serial_keep=${KERNEL_TEST_LOG:-$KERNEL_CACHE/serial.log}

die() {
	echo "$me: FAIL: $*" >&2
	exit 1
}

t0=$(date +%s)

# ---------------------------------------------------------------- kernel
# The kernel tests run side by side under make -j: one builds the shared cache, the others
# wait for it (flock), then find it built.
mkdir -p "$KERNEL_CACHE"
flock "$KERNEL_CACHE/.build-lock" "$tdir/build-kernel.sh" "$KERNEL_CACHE" || die "build-kernel.sh failed"
KSRC=$KERNEL_CACHE/src
K=$KERNEL_CACHE/keys
[ -f "$KERNEL_CACHE/bzImage" ] || die "no $KERNEL_CACHE/bzImage"

# ---------------------------------------------------------------- modules
echo "$me: building test modules and finit"
mkdir -p "$work/module"
cp "$tdir/module/Kbuild" "$tdir/module/"*.c "$tdir/module/"*.S "$work/module/"
make -C "$KSRC" M="$work/module" modules >"$work/modules.log" 2>&1 || {
	cat "$work/modules.log" >&2
	die "building the test modules"
}
H=$work/module/mst_hello.ko
B=$work/module/mst_big.ko
if [ ! -f "$H" ] || [ ! -f "$B" ]; then
	die "test modules not built"
fi

root=$work/root
V=$root/v
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$V"
gcc -static -O2 -Wall -o "$root/finit" "$tdir/finit.c" ||
	die "building finit.c"
cp "$BUSYBOX" "$root/bin/busybox"

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

# flip_byte FILE OFFSET: invert one byte in place
flip_byte() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' \n')
	# shellcheck disable=SC2059
	printf "\\$(printf '%03o' $((b ^ 255)))" |
		dd of="$1" bs=1 seek="$2" count=1 conv=notrunc status=none
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
	local f=$1 size sl
	size=$(stat -c %s "$f")
	[ "$(tail -c 28 "$f")" = "~Module signature appended~" ] || {
		echo "unsigned"
		return 0
	}
	# struct module_signature ends with the big-endian sig_len
	# shellcheck disable=SC2046
	set -- $(od -An -tu1 -j $((size - 28 - 4)) -N4 "$f")
	sl=$((($1 << 24) | ($2 << 16) | ($3 << 8) | $4))
	dd if="$f" bs=1 skip=$((size - 28 - 12 - sl)) count="$sl" status=none \
		>"$work/sid.p7"
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

cat >"$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
dmesg -n 1
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
chmod 755 "$root/init" "$root/finit"
(cd "$root" && find . | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$work/initrd.gz"

# ---------------------------------------------------------------- boot
echo "$me: booting the test kernel under qemu (TCG, timeout ${QEMU_TIMEOUT}s)"
tb=$(date +%s)
qrc=0
timeout "$QEMU_TIMEOUT" "$QEMU" -m 256 -nographic -no-reboot \
	-kernel "$KERNEL_CACHE/bzImage" -initrd "$work/initrd.gz" \
	-append "console=ttyS0 panic=-1 oops=panic" \
	</dev/null >"$work/serial.raw" 2>&1 || qrc=$?
te=$(date +%s)
tr -d '\r' <"$work/serial.raw" >"$work/serial.log"
mkdir -p "$(dirname "$serial_keep")"
cp "$work/serial.log" "$serial_keep"
echo "$me: qemu exited with $qrc after $((te - tb)) s; serial log: $serial_keep"

# ---------------------------------------------------------------- verdict
fails=0
passes=0
printf '\n%-28s %-18s %-18s %s\n' LABEL EXPECTED GOT VERDICT
printf '%-28s %-18s %-18s %s\n' ----- -------- --- -------
while read -r label mode expected; do
	if [ "$mode" = static ]; then
		got=$(awk -v l="$label" '$1 == l { print $2; exit }' "$work/static")
	elif grep -qxF "$label" "$work/toolfail"; then
		got="(not made)"
	else
		got=$(awk -v l="$label" '$1 == "RESULT" && $2 == l {
			$1 = ""; $2 = ""; sub(/^ +/, ""); print; exit }' "$work/serial.log")
		[ -n "$got" ] || got="(missing)"
	fi
	if [ "$got" = "$expected" ]; then
		verdict=pass
		passes=$((passes + 1))
	else
		verdict=FAIL
		fails=$((fails + 1))
	fi
	printf '%-28s %-18s %-18s %s\n' "$label" "$expected" "$got" "$verdict"
done <"$work/expect"
echo

if [ -n "$big_blocks" ]; then
	echo "$me: big-rsa2048-sha256.ko.xz as signed by modsignctl has $big_blocks xz block(s)"
	[ "$big_blocks" -ge 2 ] ||
		echo "$me: WARNING: modsignctl wrote a single-block .ko.xz; multi-block decoding is covered by big-recompressed.ko.xz only"
fi
if ! grep -q '^MST-END' "$work/serial.log"; then
	echo "$me: the guest did not finish its run (qemu exit $qrc)"
	fails=$((fails + 1))
fi

t1=$(date +%s)
echo "$me: $passes passed, $fails failed ($((t1 - t0)) s)"
if [ "$fails" -ne 0 ]; then
	echo "$me: FAIL; last lines of the serial log ($serial_keep):"
	tail -n 60 "$work/serial.log" | sed 's/^/    | /'
	exit 1
fi
exit 0
