# shellcheck shell=bash
# lib.sh: the scaffolding shared by the kernel acceptance tests (run-*kernel-test.sh).
#
# Sourced by each test after it has set $me (its name in messages) and $here (its own
# directory, where this file is):
#
#     me=kernel-test
#     here=$(cd "$(dirname "$0")" && pwd)
#     # shellcheck source=SCRIPTDIR/lib.sh
#     . "$here/lib.sh"
#
# Sourcing sets the defaults of the environment (MODSIGNCTL, KERNEL_CACHE, srcdir, QEMU,
# QEMU_TIMEOUT, BUSYBOX, SIGN_FILE, LINUX_SOURCE; see README.md). The functions then set
# these globals, which the tests use:
#   tdir   the directory of our own files (finit.c, addkey.c, module/, build-kernel.sh)
#   work   the temporary directory of this run (removed at exit)
#   K      $KERNEL_CACHE/keys, the built-in test keys;  KSRC  the kernel source tree
#   root   the initramfs tree ($root/init is the test's own guest script)
#   V      $root/v, where the guest finds the modules
#   qrc    the exit status of qemu;  fails, passes  the counts of the verdict
# A test writes its guest script and its expectations; the rest is here.

: "${me:?set me before sourcing lib.sh}" "${here:?set here before sourcing lib.sh}"
srcdir=${srcdir:-$(cd "$here/../.." && pwd)}
MODSIGNCTL=${MODSIGNCTL:-$PWD/modsignctl}
KERNEL_CACHE=${KERNEL_CACHE:-$PWD/tests/kernel/cache}
QEMU=${QEMU:-qemu-system-x86_64}
QEMU_TIMEOUT=${QEMU_TIMEOUT:-120}
BUSYBOX=${BUSYBOX:-/bin/busybox}
SIGN_FILE=${SIGN_FILE:-/usr/lib/linux-kbuild-6.1/scripts/sign-file}
LINUX_SOURCE=${LINUX_SOURCE:-/usr/src/linux-source-6.1.tar.xz}
export LINUX_SOURCE
fails=0
passes=0

# die MESSAGE: fail the test.
die() {
	echo "$me: FAIL: $*" >&2
	exit 1
}

# skip MESSAGE: skip the test (exit 77); only for a missing tool.
skip() {
	echo "$me: SKIP: $*"
	exit 77
}

# kt_find_tdir FILE...: set tdir to the first directory that has all the FILEs (paths
# relative to it): found through srcdir (automake), else next to the test.
kt_find_tdir() {
	local d f found
	tdir=
	for d in "$srcdir/tests/kernel" "$srcdir/kernel" "$srcdir" "$here"; do
		found=1
		for f in "$@"; do
			[ -f "$d/$f" ] || found=
		done
		if [ -n "$found" ]; then
			tdir=$(cd "$d" && pwd)
			return 0
		fi
	done
	echo "$me: cannot find $* (srcdir=$srcdir)" >&2
	exit 1
}

# kt_require TOOL...: skip without qemu or the kernel source; fail when one of the TOOLs,
# a static busybox or MODSIGNCTL is missing. Also hides an outer make's variables from the
# kernel's build system.
kt_require() {
	local t missing=
	command -v "$QEMU" >/dev/null 2>&1 || skip "$QEMU not found (apt-get install qemu-system-x86)"
	[ -f "$LINUX_SOURCE" ] || skip "$LINUX_SOURCE not found (apt-get install linux-source-6.1)"
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
	done
	[ -x "$BUSYBOX" ] || missing="$missing $BUSYBOX(busybox-static)"
	[ -z "$missing" ] || die "missing tools:$missing"
	if ldd "$BUSYBOX" >/dev/null 2>&1; then
		die "$BUSYBOX is dynamically linked (apt-get install busybox-static)"
	fi
	[ -x "$MODSIGNCTL" ] || die "MODSIGNCTL=$MODSIGNCTL is not an executable"
	unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
}

# kt_workdir NAME: make $work (removed at exit; a test with more to clean up sets its own
# EXIT trap afterwards, which must remove $work too).
kt_workdir() {
	work=$(mktemp -d "${TMPDIR:-/tmp}/modsignd-$1.XXXXXX")
	trap 'rm -rf "$work"' EXIT
}

# kt_kernel [KEYNAME...]: the test kernel, built once into KERNEL_CACHE. The kernel tests
# run side by side under make -j: one builds the shared cache, the others wait for it
# (flock), then find it built. Fails without bzImage or one of the built-in keys KEYNAME.
# shellcheck disable=SC2120 # the keys are optional
kt_kernel() {
	local k
	mkdir -p "$KERNEL_CACHE"
	flock "$KERNEL_CACHE/.build-lock" "$tdir/build-kernel.sh" "$KERNEL_CACHE" || die "build-kernel.sh failed"
	KSRC=$KERNEL_CACHE/src
	K=$KERNEL_CACHE/keys
	[ -f "$KERNEL_CACHE/bzImage" ] || die "no $KERNEL_CACHE/bzImage"
	for k in "$@"; do
		{ [ -f "$K/$k.key" ] && [ -f "$K/$k.crt" ]; } || die "no built-in test key $k in $K"
	done
}

# kt_kbuild DIR: build the external modules in DIR against the test kernel.
kt_kbuild() {
	make -C "$KSRC" M="$1" modules >"$work/modules.log" 2>&1 || {
		cat "$work/modules.log" >&2
		die "building the test modules in $1"
	}
}

# kt_modules: build all the test modules (module/) into $work/module.
kt_modules() {
	mkdir -p "$work/module"
	cp "$tdir/module/Kbuild" "$tdir/module/"*.c "$tdir/module/"*.S "$work/module/"
	kt_kbuild "$work/module"
}

# kt_root [HELPER...]: the initramfs tree $root with busybox, $V and the static helpers
# finit and HELPERs (their names without .c, built from $tdir/HELPER.c) at its top.
# shellcheck disable=SC2120 # the helpers are optional
kt_root() {
	local h
	root=$work/root
	V=$root/v
	mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$V"
	for h in finit "$@"; do
		gcc -static -O2 -Wall -o "$root/$h" "$tdir/$h.c" || die "building $h.c"
	done
	cp "$BUSYBOX" "$root/bin/busybox"
}

# kt_guest_prologue: print the first lines of a guest /init: busybox's applets on PATH,
# /proc and /sys mounted, the kernel's console messages silenced.
kt_guest_prologue() {
	printf '%s\n' '#!/bin/busybox sh' '/bin/busybox --install -s /bin' 'export PATH=/bin' \
		'mount -t proc proc /proc' 'mount -t sysfs sysfs /sys' 'dmesg -n 1'
}

# kt_boot: pack $root (whose init the test wrote) into a newc cpio, gzipped, boot the test
# kernel with it under qemu (TCG, serial console, no reboot, QEMU_TIMEOUT), and leave the
# serial output in $work/serial.log, qemu's exit status in $qrc.
kt_boot() {
	local tb te
	chmod 755 "$root/init"
	(cd "$root" && find . | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$work/initrd.gz"
	echo "$me: booting the test kernel under qemu (TCG, timeout ${QEMU_TIMEOUT}s)"
	tb=$(date +%s)
	qrc=0
	timeout "$QEMU_TIMEOUT" "$QEMU" -m 256 -nographic -no-reboot \
		-kernel "$KERNEL_CACHE/bzImage" -initrd "$work/initrd.gz" \
		-append "console=ttyS0 panic=-1 oops=panic" </dev/null >"$work/serial.raw" 2>&1 || qrc=$?
	te=$(date +%s)
	tr -d '\r' <"$work/serial.raw" >"$work/serial.log"
	echo "$me: qemu exited with $qrc after $((te - tb)) s"
}

# kt_guest_output: fail unless the guest finished its run (MST-END); show what it printed.
kt_guest_output() {
	grep -q '^MST-END' "$work/serial.log" || {
		tail -n 40 "$work/serial.log" >&2
		die "the guest did not finish (qemu exit $qrc)"
	}
	sed -n '/^MST-BEGIN/,/^MST-END/p' "$work/serial.log"
}

# expect REGEX: the serial log must have a line that matches REGEX (grep -x); counts fails.
expect() {
	if grep -qx "$1" "$work/serial.log"; then
		echo "$me: ok: $1"
	else
		echo "$me: FAIL: expected '$1'" >&2
		fails=$((fails + 1))
	fi
}

# kt_table W1 W2: the verdict of $work/expect, one "LABEL MODE EXPECTED" line per row, as a
# table with columns of widths W1 (label) and W2 (expected, got). A row's result is the
# guest's "RESULT LABEL ..." line, or for MODE static the "LABEL GOT" line of $work/static,
# or "(not made)" for a LABEL in $work/toolfail. EXPECTED may list alternatives: A|B.
# Counts passes and fails.
kt_table() {
	local label mode expected got verdict
	printf "\\n%-$1s %-$2s %-$2s %s\\n" LABEL EXPECTED GOT VERDICT
	printf "%-$1s %-$2s %-$2s %s\\n" ----- -------- --- -------
	while read -r label mode expected; do
		if [ "$mode" = static ]; then
			got=$(awk -v l="$label" '$1 == l { print $2; exit }' "$work/static")
		elif [ -f "$work/toolfail" ] && grep -qxF "$label" "$work/toolfail"; then
			got="(not made)"
		else
			got=$(awk -v l="$label" '$1 == "RESULT" && $2 == l {
				$1 = ""; $2 = ""; sub(/^ +/, ""); print; exit }' "$work/serial.log")
			[ -n "$got" ] || got="(missing)"
		fi
		case "|$expected|" in
		*"|$got|"*)
			verdict=pass
			passes=$((passes + 1))
			;;
		*)
			verdict=FAIL
			fails=$((fails + 1))
			;;
		esac
		printf "%-$1s %-$2s %-$2s %s\\n" "$label" "$expected" "$got" "$verdict"
	done <"$work/expect"
	echo
}

# kt_summary T0: count a guest that did not finish as a failure, and print the counts and
# the seconds since T0.
kt_summary() {
	if ! grep -q '^MST-END' "$work/serial.log"; then
		echo "$me: the guest did not finish its run (qemu exit $qrc)"
		fails=$((fails + 1))
	fi
	echo "$me: $passes passed, $fails failed ($(($(date +%s) - $1)) s)"
}

# flip_byte FILE OFFSET: invert one byte in place.
flip_byte() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' \n')
	# shellcheck disable=SC2059
	printf "\\$(printf '%03o' $((b ^ 255)))" |
		dd of="$1" bs=1 seek="$2" count=1 conv=notrunc status=none
}

# module_sig FILE P7 [BODY]: write the PKCS#7 appended to module FILE to P7 (and the signed
# body before it to BODY); returns 1 if FILE carries no signature.
module_sig() {
	local f=$1 size sl
	size=$(stat -c %s "$f")
	[ "$(tail -c 28 "$f")" = "~Module signature appended~" ] || return 1
	# struct module_signature (12 bytes) ends with the big-endian sig_len.
	# shellcheck disable=SC2046
	set -- $(od -An -tu1 -j $((size - 28 - 4)) -N4 "$f") "$2" "${3:-}"
	sl=$((($1 << 24) | ($2 << 16) | ($3 << 8) | $4))
	dd if="$f" of="$5" iflag=skip_bytes,count_bytes skip=$((size - 28 - 12 - sl)) \
		count="$sl" status=none
	[ -z "$6" ] || head -c $((size - 28 - 12 - sl)) "$f" >"$6"
}
