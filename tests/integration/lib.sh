# shellcheck shell=bash
# Shared helpers for the modsignd integration tests (tests/integration/test-*.sh).
#
# Sourced by each test after it has set $srcdir (the source top directory; automake
# sets it, the scripts default it to their own directory/../..):
#
#     srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
#     . "$srcdir/tests/integration/lib.sh"
#
# Environment:
#   MODSIGNCTL             absolute path of the CLI under test (default: $PWD/modsignctl)
#   SIGN_FILE              the kernel's sign-file used as oracle
#                          (default: newest /usr/lib/linux-kbuild-*/scripts/sign-file)
#   KERNEL_HEADERS         headers tree to build the test module against
#                          (default: newest /usr/src/linux-headers-*-amd64)
#   MODSIGN_TEST_KEEP=1    keep the work directory (its path is printed)
#   MODSIGN_TEST_CACHE_DIR where the built test module is cached between tests (default:
#                          $top_builddir/tests/integration/module-cache when top_builddir
#                          is set, as under `make check`; else no cache)
#   MODSIGN_TEST_TIMEOUT   seconds before one modsignctl call counts as hung (default 300)
#
# Test structure: setup in the main shell (a failure there ends the test), then
# `run_case DESCRIPTION FUNCTION ARGS...` for each check group. A case runs in a
# subshell with `set -e`; the first failed assertion ends that case only; `finish`
# prints the summary and exits 0 (all passed), 1 (a case failed) or 77 (all skipped).
# Exit 77 is used only when a required tool is absent.

set -eu
set -o pipefail
set -E

PATH=$PATH:/usr/sbin:/sbin
export PATH
LC_ALL=C
export LC_ALL

: "${srcdir:?srcdir must be set before sourcing lib.sh}"
TEST_NAME=$(basename "$0" .sh)
MODSIGNCTL=${MODSIGNCTL:-$PWD/modsignctl}
MODULE_SRC_DIR=$srcdir/tests/integration/module
MODSIGN_TEST_TIMEOUT=${MODSIGN_TEST_TIMEOUT:-300}
MODULE_MAGIC='~Module signature appended~'

WORKDIR=
CASE_NO=0
CASES_PASSED=0
CASES_SKIPPED=0
FAILED_CASES=()
LAST_OUT=
LAST_ERR=
LAST_RC=

# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------

say() { printf '%s\n' "$*"; }
step() { printf '  * %s\n' "$*"; }
ok() { printf '    ok: %s\n' "$*"; }

# fail MESSAGE...: report and end the current case (or the whole test during setup).
fail() {
	local line
	say "    FAIL: $1"
	shift
	for line in "$@"; do
		say "          $line"
	done
	exit 1
}

# skip_test REASON: a required tool is absent; the whole test is skipped.
skip_test() {
	say "SKIP: $TEST_NAME: $*"
	exit 77
}

# skip_case REASON: only the current case is skipped (a case-specific tool is absent).
skip_case() {
	say "    SKIP: $*"
	exit 77
}

# Print a file's content indented, at most $2 lines (default 20).
show_file() {
	local f=$1 max=${2:-20}
	if [ ! -s "$f" ]; then
		say "          (empty)"
		return 0
	fi
	head -n "$max" "$f" | sed 's/^/          | /'
	if [ "$(wc -l <"$f")" -gt "$max" ]; then
		say "          | ... ($(wc -l <"$f") lines)"
	fi
}

_on_err() {
	local rc=$1 line=$2 cmd=$3
	say "    ERROR: command failed with exit $rc at ${BASH_SOURCE[1]:-?}:$line: $cmd"
}

# remove_workdir RC: remove $WORKDIR (or say where it was kept); the last step of every exit.
remove_workdir() {
	local rc=$1
	if [ -n "$WORKDIR" ] && [ -d "$WORKDIR" ]; then
		if [ "${MODSIGN_TEST_KEEP:-0}" = 1 ]; then
			say "(work directory kept: $WORKDIR)"
		else
			rm -rf "$WORKDIR"
			if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
				say "(set MODSIGN_TEST_KEEP=1 to keep the work directory for inspection)"
			fi
		fi
	fi
}

_cleanup() {
	local rc=$?
	trap - EXIT ERR
	remove_workdir "$rc"
	exit "$rc"
}

# setup_workdir: create $WORKDIR, removed on exit.
setup_workdir() {
	WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/modsign-$TEST_NAME.XXXXXX")
	trap _cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap '_on_err $? $LINENO "$BASH_COMMAND"' ERR
	TEST_START=$SECONDS
	say "$TEST_NAME: work directory $WORKDIR"
	say "$TEST_NAME: modsignctl = $MODSIGNCTL"
}

# run_case DESCRIPTION FUNCTION [ARGS...]
run_case() {
	local desc=$1 rc t0=$SECONDS
	shift
	CASE_NO=$((CASE_NO + 1))
	say ""
	say "=== [$CASE_NO] $desc"
	trap - ERR
	set +e
	(
		trap '_on_err $? $LINENO "$BASH_COMMAND"' ERR
		set -e
		"$@"
	)
	rc=$?
	set -e
	trap '_on_err $? $LINENO "$BASH_COMMAND"' ERR
	case $rc in
	0)
		CASES_PASSED=$((CASES_PASSED + 1))
		say "=== [$CASE_NO] PASS ($((SECONDS - t0)) s): $desc"
		;;
	77)
		CASES_SKIPPED=$((CASES_SKIPPED + 1))
		say "=== [$CASE_NO] SKIP: $desc"
		;;
	*)
		FAILED_CASES+=("[$CASE_NO] $desc")
		say "=== [$CASE_NO] FAIL: $desc"
		;;
	esac
	return 0
}

# finish: summary and exit status of the test.
finish() {
	local c
	say ""
	say "$TEST_NAME: $CASES_PASSED passed, ${#FAILED_CASES[@]} failed, $CASES_SKIPPED skipped, $((SECONDS - TEST_START)) s"
	if [ "${#FAILED_CASES[@]}" -gt 0 ]; then
		say "$TEST_NAME: failed cases:"
		for c in "${FAILED_CASES[@]}"; do
			say "  $c"
		done
		exit 1
	fi
	if [ "$CASES_PASSED" -eq 0 ] && [ "$CASES_SKIPPED" -gt 0 ]; then
		exit 77
	fi
	exit 0
}

# ---------------------------------------------------------------------------
# Required tools
# ---------------------------------------------------------------------------

# require_cmd CMD...: skip the test when one is missing.
require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip_test "required tool '$c' is not installed"
	done
}

# require_sign_file: set $SIGN_FILE to the kernel's sign-file (skip if there is none).
require_sign_file() {
	local c
	if [ -z "${SIGN_FILE:-}" ]; then
		for c in $(find /usr/lib -maxdepth 3 -path '/usr/lib/linux-kbuild-*/scripts/sign-file' 2>/dev/null | sort -V); do
			SIGN_FILE=$c
		done
	fi
	if [ -z "${SIGN_FILE:-}" ] && [ -n "${KERNEL_HEADERS:-}" ] && [ -x "$KERNEL_HEADERS/scripts/sign-file" ]; then
		SIGN_FILE=$KERNEL_HEADERS/scripts/sign-file
	fi
	if [ -z "${SIGN_FILE:-}" ] || [ ! -x "$SIGN_FILE" ]; then
		skip_test "the kernel's sign-file is not installed (Debian package linux-kbuild-6.1)${SIGN_FILE:+; SIGN_FILE=$SIGN_FILE is not executable}"
	fi
	say "$TEST_NAME: oracle sign-file = $SIGN_FILE"
}

# require_kernel_headers: set $KERNEL_HEADERS and $KVER (skip if none installed).
require_kernel_headers() {
	local c
	if [ -z "${KERNEL_HEADERS:-}" ]; then
		for c in $(find /usr/src -maxdepth 1 -name 'linux-headers-*-amd64' 2>/dev/null | sort -V); do
			KERNEL_HEADERS=$c
		done
	fi
	if [ -z "${KERNEL_HEADERS:-}" ] || [ ! -f "$KERNEL_HEADERS/Makefile" ]; then
		skip_test "no kernel headers in /usr/src/linux-headers-*-amd64 (Debian package linux-headers-amd64)"
	fi
	KVER=$(basename "$KERNEL_HEADERS")
	KVER=${KVER#linux-headers-}
	say "$TEST_NAME: kernel headers = $KERNEL_HEADERS"
}

# require_modsignctl: the CLI under test must exist (this is a failure, not a skip).
require_modsignctl() {
	if [ ! -f "$MODSIGNCTL" ] || [ ! -x "$MODSIGNCTL" ]; then
		fail "modsignctl not found or not executable at '$MODSIGNCTL'" \
			"build it first, or set MODSIGNCTL to its absolute path"
	fi
}

# Common requirements of every test: build tools, headers, sign-file, openssl, kmod.
require_common() {
	require_cmd openssl modinfo make gcc objcopy readelf cmp sha256sum stat od dd timeout
	require_kernel_headers
	require_sign_file
}

# ---------------------------------------------------------------------------
# Keys and certificates
# ---------------------------------------------------------------------------

# make_key TYPE NAME: create $WORKDIR/keys/NAME.key (PKCS#8 PEM), NAME.crt (PEM),
# NAME.key.der, NAME.crt.der. TYPE: rsa2048 rsa4096 ec-p256 ec-p384.
# The certificate is self-signed, CN="modsignd test NAME", with subjectKeyIdentifier,
# keyUsage=digitalSignature, extendedKeyUsage=codeSigning (like the kernel's x509.genkey).
make_key() {
	local type=$1 name=$2 dir=$WORKDIR/keys newkey
	mkdir -p "$dir"
	case $type in
	rsa2048) newkey=(-newkey rsa:2048) ;;
	rsa4096) newkey=(-newkey rsa:4096) ;;
	ec-p256) newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
	ec-p384) newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-384) ;;
	*) fail "make_key: unknown key type '$type'" ;;
	esac
	cat >"$dir/$name.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
x509_extensions = ext
string_mask = utf8only
[dn]
O = modsignd integration tests
CN = modsignd test $name
[ext]
basicConstraints = critical,CA:FALSE
keyUsage = digitalSignature
extendedKeyUsage = codeSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
	openssl req -new -x509 "${newkey[@]}" -nodes -sha256 -days 36500 \
		-config "$dir/$name.cnf" -keyout "$dir/$name.key" -out "$dir/$name.crt" \
		>"$dir/$name.log" 2>&1 || {
		show_file "$dir/$name.log"
		fail "could not create the $type key/certificate '$name'"
	}
	openssl pkey -in "$dir/$name.key" -outform DER -out "$dir/$name.key.der"
	openssl x509 -in "$dir/$name.crt" -outform DER -out "$dir/$name.crt.der"
	openssl x509 -in "$dir/$name.crt" -noout -ext subjectKeyIdentifier,keyUsage,extendedKeyUsage \
		>"$dir/$name.ext" 2>&1
	if ! grep -q 'Subject Key Identifier' "$dir/$name.ext" ||
		! grep -q 'Digital Signature' "$dir/$name.ext" ||
		! grep -q 'Code Signing' "$dir/$name.ext"; then
		fail "certificate $dir/$name.crt lacks the expected extensions"
	fi
	step "made $type key $dir/$name.key and certificate $dir/$name.crt"
}

key_of() { printf '%s' "$WORKDIR/keys/$1.key"; }
cert_of() { printf '%s' "$WORKDIR/keys/$1.crt"; }
cn_of() { printf 'modsignd test %s' "$1"; }

# ---------------------------------------------------------------------------
# Test modules
# ---------------------------------------------------------------------------

# build_real_module: build tests/integration/module against $KERNEL_HEADERS once; sets
# $REAL_MODULE (an unsigned hello.ko, read-only: copy it before modifying).
build_real_module() {
	local dir=$WORKDIR/module-build key cache='' cachedir t0=$SECONDS how
	mkdir -p "$dir"
	cp "$MODULE_SRC_DIR/hello.c" "$MODULE_SRC_DIR/Kbuild" "$dir/"
	cachedir=${MODSIGN_TEST_CACHE_DIR:-}
	if [ -z "$cachedir" ] && [ -n "${top_builddir:-}" ] && [ -d "$top_builddir" ]; then
		cachedir=$top_builddir/tests/integration/module-cache
	fi
	if [ -n "$cachedir" ] && command -v flock >/dev/null 2>&1 && mkdir -p "$cachedir" 2>/dev/null; then
		# The key covers the module source, the headers tree and the compiler.
		key=$({
			cat "$dir/hello.c" "$dir/Kbuild"
			printf '%s\n' "$KERNEL_HEADERS"
			stat -c '%Y %s' "$KERNEL_HEADERS/Makefile" "$KERNEL_HEADERS/.config" 2>/dev/null || true
			gcc -dumpfullversion
		} | sha256sum | cut -c1-16)
		cache=$cachedir/hello-$KVER-$key.ko
		(
			flock 9
			if [ ! -s "$cache" ]; then
				make -C "$KERNEL_HEADERS" M="$dir" modules >"$dir/build.log" 2>&1 &&
					cp "$dir/hello.ko" "$cache.tmp.$$" && mv "$cache.tmp.$$" "$cache"
			fi
		) 9>"$cachedir/.lock" || true
		if [ -s "$dir/hello.ko" ]; then
			how="built with make -C $KERNEL_HEADERS M=$dir modules, cached as $cache"
		elif [ -s "$cache" ]; then
			cp "$cache" "$dir/hello.ko"
			how="taken from $cache (built earlier in this build tree)"
		fi
	fi
	if [ ! -s "$dir/hello.ko" ]; then
		how="built with make -C $KERNEL_HEADERS M=$dir modules"
		make -C "$KERNEL_HEADERS" M="$dir" modules >"$dir/build.log" 2>&1 || {
			show_file "$dir/build.log" 40
			fail "building the test module failed: make -C $KERNEL_HEADERS M=$dir modules"
		}
	fi
	REAL_MODULE=$WORKDIR/hello.ko
	cp "$dir/hello.ko" "$REAL_MODULE"
	chmod a-w "$REAL_MODULE"
	check_is_module "$REAL_MODULE"
	! module_is_signed "$REAL_MODULE" || fail "the freshly built $REAL_MODULE is already signed"
	step "real module $REAL_MODULE: $(file_size "$REAL_MODULE") bytes, vermagic '$(modinfo -F vermagic "$REAL_MODULE")'"
	step "  $how ($((SECONDS - t0)) s)"
}

# make_big_module SRC DEST [MIB]: SRC plus a section .data.big of MIB (default 50) MiB
# random data; it stays an ELF relocatable with .modinfo.
make_big_module() {
	local src=$1 dest=$2 mib=${3:-50} blob=$WORKDIR/big.bin
	head -c "$((mib * 1024 * 1024))" /dev/urandom >"$blob"
	objcopy --add-section .data.big="$blob" --set-section-flags .data.big=alloc,load,data \
		"$src" "$dest" || fail "objcopy could not add .data.big to $src"
	rm -f "$blob"
	chmod a-w "$dest"
	check_is_module "$dest"
	[ "$(file_size "$dest")" -ge $((mib * 1024 * 1024)) ] || fail "$dest is smaller than $mib MiB"
	step "made synthetic module $dest ($(file_size "$dest") bytes)"
}

# check_is_module FILE: ELF64 relocatable x86-64 with a .modinfo that modinfo can read.
check_is_module() {
	local f=$1 out
	out=$(readelf -h "$f" 2>&1) || fail "readelf cannot read $f: $out"
	case $out in
	*'Type:'*'REL (Relocatable file)'*) ;;
	*) fail "$f is not an ELF relocatable" ;;
	esac
	out=$(readelf -S -W "$f")
	case $out in
	*' .modinfo '*) ;;
	*) fail "$f has no .modinfo section" ;;
	esac
	[ "$(modinfo -F name "$f")" = hello ] || fail "modinfo cannot read the name of $f"
}

# compress_module KIND IN OUT: KIND xz-crc32 (the kernel's parameters), xz-crc64 (plain
# xz, as DKMS does), zstd, gzip (gzip -n).
compress_module() {
	local kind=$1 in=$2 out=$3
	case $kind in
	xz-crc32) xz --check=crc32 --lzma2=dict=1MiB -c "$in" >"$out" ;;
	xz-crc64) xz -c "$in" >"$out" ;;
	zstd) zstd -q -c "$in" >"$out" ;;
	gzip) gzip -n -c "$in" >"$out" ;;
	*) fail "compress_module: unknown kind '$kind'" ;;
	esac
}

# decompress_module FILE OUT: with the standard tool chosen by the file's name.
decompress_module() {
	local in=$1 out=$2
	case $in in
	*.xz) xz -dc "$in" >"$out" ;;
	*.zst) zstd -q -dc "$in" >"$out" ;;
	*.gz) gzip -dc "$in" >"$out" ;;
	*) fail "decompress_module: unknown suffix of $in" ;;
	esac
}

# ---------------------------------------------------------------------------
# The appended signature
#   [ELF][PKCS#7 DER][module_signature: algo hash id_type signer_len key_id_len pad[3]
#    be32 sig_len]["~Module signature appended~\n"]
# ---------------------------------------------------------------------------

file_size() { stat -c %s "$1"; }
sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# module_is_signed FILE: the last 28 bytes are the magic string.
module_is_signed() {
	local f=$1 size
	size=$(file_size "$f")
	[ "$size" -ge 28 ] || return 1
	[ "$(tail -c 28 "$f" | od -An -c | tr -d ' \n')" = "$(printf '%s\n' "$MODULE_MAGIC" | od -An -c | tr -d ' \n')" ]
}

# read_bytes FILE OFFSET COUNT: the bytes as unsigned decimal numbers, one per line.
read_bytes() {
	od -An -v -tu1 -j "$2" -N "$3" "$1" | tr -s ' \n' '\n' | sed '/^$/d'
}

# poke_byte FILE OFFSET VALUE: overwrite one byte in place.
poke_byte() {
	# shellcheck disable=SC2059
	printf "\\$(printf '%03o' "$3")" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# flip_byte FILE OFFSET: invert the lowest bit of one byte.
flip_byte() {
	local v
	v=$(read_bytes "$1" "$2" 1)
	poke_byte "$1" "$2" $((v ^ 1))
}

# text_offset FILE: byte offset of the test module's description string in .modinfo,
# a byte that can be changed without making the ELF invalid (prints nothing if absent).
text_offset() {
	local hit
	hit=$(grep -obaF 'modsignd integration test module' "$1" | head -n 1) || true
	[ -n "$hit" ] && printf '%s' $((${hit%%:*} + 9))
}

# parse_trailer FILE: sets SIG_LEN, BODY_LEN, SIG_HEADER (the 12 bytes, space separated).
# Returns 1 (with a message in PARSE_ERROR) when the file has no valid trailer.
parse_trailer() {
	local f=$1 size b
	PARSE_ERROR=
	size=$(file_size "$f")
	if ! module_is_signed "$f"; then
		PARSE_ERROR="no '$MODULE_MAGIC' at the end of $f"
		return 1
	fi
	if [ "$size" -lt 40 ]; then
		PARSE_ERROR="$f is too short for a signature trailer"
		return 1
	fi
	mapfile -t b < <(read_bytes "$f" $((size - 40)) 12)
	SIG_HEADER="${b[*]}"
	SIG_LEN=$(((b[8] << 24) | (b[9] << 16) | (b[10] << 8) | b[11]))
	if [ "${b[2]}" -ne 2 ]; then
		PARSE_ERROR="id_type is ${b[2]}, not 2 (PKCS#7)"
		return 1
	fi
	if [ "${b[0]}${b[1]}${b[3]}${b[4]}${b[5]}${b[6]}${b[7]}" != 0000000 ]; then
		PARSE_ERROR="non-zero reserved bytes in module_signature: $SIG_HEADER"
		return 1
	fi
	if [ "$SIG_LEN" -le 0 ] || [ "$SIG_LEN" -gt $((size - 40)) ]; then
		PARSE_ERROR="sig_len $SIG_LEN does not fit in the file ($size bytes)"
		return 1
	fi
	BODY_LEN=$((size - 40 - SIG_LEN))
	return 0
}

# extract_signature MODULE SIG_OUT [BODY_OUT]: the DER PKCS#7 and the signed body.
extract_signature() {
	local f=$1 sig=$2 body=${3:-}
	parse_trailer "$f" || fail "cannot extract the signature of $f: $PARSE_ERROR"
	dd if="$f" of="$sig" iflag=skip_bytes,count_bytes skip="$BODY_LEN" count="$SIG_LEN" \
		bs=64K status=none
	if [ -n "$body" ]; then
		head -c "$BODY_LEN" "$f" >"$body"
	fi
	[ "$(file_size "$sig")" -eq "$SIG_LEN" ] || fail "short read extracting the signature of $f"
}

# strip_signature_sh MODULE OUT: the module without its (last) signature.
strip_signature_sh() {
	parse_trailer "$1" || fail "cannot strip $1: $PARSE_ERROR"
	head -c "$BODY_LEN" "$1" >"$2"
}

# count_signatures MODULE: how many trailers are stacked.
count_signatures() {
	local f=$1 n=0 tmp=$WORKDIR/.count.$$.$RANDOM
	cp "$f" "$tmp"
	while parse_trailer "$tmp"; do
		n=$((n + 1))
		head -c "$BODY_LEN" "$tmp" >"$tmp.next"
		mv "$tmp.next" "$tmp"
	done
	rm -f "$tmp"
	printf '%s' "$n"
}

# cms_verify SIG BODY CERT: a real CMS verification of the detached signature
# (signer certificate from CERT only; no chain policy).
cms_verify() {
	openssl cms -verify -binary -inform DER -in "$1" -content "$2" -certfile "$3" \
		-nointern -noverify -out /dev/null
}

# ---------------------------------------------------------------------------
# Running commands and assertions
# ---------------------------------------------------------------------------

# run_cmd CMD...: run with stdin from /dev/null, stdout/stderr to $LAST_OUT/$LAST_ERR,
# status in $LAST_RC. Never fails by itself.
run_cmd() {
	if [ "$1" = ms ]; then
		shift
		set -- "$MODSIGNCTL" "$@"
	fi
	LAST_OUT=$WORKDIR/last.out
	LAST_ERR=$WORKDIR/last.err
	printf -v LAST_CMD '%q ' "$@"
	LAST_CMD=${LAST_CMD% }
	LAST_RC=0
	timeout "$MODSIGN_TEST_TIMEOUT" "$@" </dev/null >"$LAST_OUT" 2>"$LAST_ERR" || LAST_RC=$?
	if [ "$LAST_RC" -eq 124 ]; then
		say "    (timed out after $MODSIGN_TEST_TIMEOUT s: $LAST_CMD)"
	fi
	return 0
}

_report_last() {
	say "          command: $LAST_CMD"
	say "          exit status: $LAST_RC"
	say "          stdout:"
	show_file "$LAST_OUT"
	say "          stderr:"
	show_file "$LAST_ERR"
}

# expect_exit N CMD...: run CMD, fail unless it exits with N.
expect_exit() {
	local want=$1
	shift
	run_cmd "$@"
	if [ "$LAST_RC" -ne "$want" ]; then
		say "    FAIL: expected exit status $want, got $LAST_RC"
		_report_last
		exit 1
	fi
	ok "exit $want: $LAST_CMD"
}

# expect_fail CMD...: run CMD, fail unless it exits non-zero (and was not killed).
expect_fail() {
	run_cmd "$@"
	if [ "$LAST_RC" -eq 0 ] || [ "$LAST_RC" -ge 124 ]; then
		say "    FAIL: expected a non-zero exit status (an error), got $LAST_RC"
		_report_last
		exit 1
	fi
	ok "exit $LAST_RC (non-zero): $LAST_CMD"
}

# expect_no_crash CMD...: run CMD, fail if it was killed by a signal or timed out.
expect_no_crash() {
	run_cmd "$@"
	if [ "$LAST_RC" -ge 124 ]; then
		say "    FAIL: the command crashed or hung (exit status $LAST_RC)"
		_report_last
		exit 1
	fi
	ok "exit $LAST_RC (no crash): $LAST_CMD"
}

# ms ARGS...: the CLI under test (run_cmd and the expect_* helpers also accept the word
# `ms` as the command name).
ms() { "$MODSIGNCTL" "$@"; }

# assert_files_equal EXPECTED ACTUAL WHAT: byte-for-byte (cmp).
assert_files_equal() {
	local exp=$1 act=$2 what=$3 c
	[ -f "$exp" ] || fail "$what: expected file $exp does not exist"
	[ -f "$act" ] || fail "$what: $act does not exist"
	if ! c=$(cmp "$exp" "$act" 2>&1); then
		say "    FAIL: $what: files differ"
		say "          expected: $exp ($(file_size "$exp") bytes, sha256 $(sha256_of "$exp"))"
		say "          actual:   $act ($(file_size "$act") bytes, sha256 $(sha256_of "$act"))"
		say "          cmp: $c"
		say "          differing bytes: $({ cmp -l "$exp" "$act" 2>/dev/null || true; } | wc -l)"
		if parse_trailer "$exp"; then
			say "          expected trailer: sig_len $SIG_LEN body $BODY_LEN header [$SIG_HEADER]"
		fi
		if parse_trailer "$act"; then
			say "          actual trailer:   sig_len $SIG_LEN body $BODY_LEN header [$SIG_HEADER]"
		else
			say "          actual trailer:   $PARSE_ERROR"
		fi
		exit 1
	fi
	ok "$what: identical ($(file_size "$act") bytes)"
}

# snapshot FILE: "sha256 inode mtime(ns) size mode" (to compare later).
snapshot() {
	printf '%s %s' "$(sha256_of "$1")" "$(stat -c '%i %.9Y %s %a' "$1")"
}

# assert_unchanged FILE SNAPSHOT WHAT: same bytes, inode, mtime, size and mode.
assert_unchanged() {
	local now
	now=$(snapshot "$1")
	if [ "$now" != "$2" ]; then
		fail "$3: $1 was modified or rewritten" \
			"before (sha256 inode mtime size mode): $2" \
			"after:                                  $now"
	fi
	ok "$3: $1 untouched (bytes, inode and mtime)"
}

# assert_sha256 FILE SHA WHAT: the file's content is unchanged.
assert_sha256() {
	local now
	[ -e "$1" ] || fail "$3: $1 disappeared"
	now=$(sha256_of "$1")
	[ "$now" = "$2" ] || fail "$3: $1 content changed" "sha256 before: $2" "sha256 after:  $now"
	ok "$3: sha256 of $1 unchanged"
}

# assert_dir_contents DIR NAME...: the directory holds exactly these names (no temp files).
assert_dir_contents() {
	local dir=$1 want have
	shift
	want=$(printf '%s\n' "$@" | sort | tr '\n' ' ')
	have=$(find "$dir" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort | tr '\n' ' ')
	[ "$want" = "$have" ] || fail "unexpected files in $dir" "expected: $want" "found:    $have"
	ok "$dir holds exactly: $want"
}

# assert_signed_ok MODULE CERT WHAT: trailer well formed and CMS verifies over the body.
assert_cms_verifies() {
	local m=$1 cert=$2 what=$3 d
	d=$(mktemp -d "$WORKDIR/cms.XXXXXX")
	extract_signature "$m" "$d/sig" "$d/body"
	if ! cms_verify "$d/sig" "$d/body" "$cert" >"$d/log" 2>&1; then
		show_file "$d/log"
		fail "$what: openssl cms -verify rejects the signature of $m with $cert"
	fi
	rm -rf "$d"
	ok "$what: openssl cms -verify accepts $m with $cert"
}

# assert_stderr_one_line_naming PATH: $LAST_ERR is one line that names PATH.
assert_stderr_one_line_naming() {
	local n
	n=$(wc -l <"$LAST_ERR")
	if [ "$n" -ne 1 ] || ! grep -qF -- "$1" "$LAST_ERR"; then
		say "    FAIL: expected exactly one stderr line naming '$1' (like 'modsignctl: $1: problem'), got $n lines"
		_report_last
		exit 1
	fi
	ok "stderr is one line naming $1: $(cat "$LAST_ERR")"
}
