#!/bin/bash
# Compressed modules: .ko.xz (kernel parameters, CRC32), .ko.xz made by plain xz (CRC64,
# which the 6.1 kernel refuses), .ko.zst, .ko.gz (gzip -n). After `modsignctl sign`:
#   - same file name, nothing else left in the directory;
#   - decompresses with the standard tool, and the result equals Debian's sign-file output
#     on the decompressed original (RSA: byte-identical);
#   - xz: integrity check CRC32 (even for a CRC64 input), LZMA2 dict 1 MiB, one stream;
#     gzip: no file name, mtime 0 (gzip -n);
#   - `modsignctl verify` exits 0 (and 3 before signing);
#   - signing again is a no-op (bytes, inode and mtime unchanged).
# shellcheck disable=SC2317 # the case functions are called through run_case
set -eu
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=SCRIPTDIR/lib.sh
. "$srcdir/tests/integration/lib.sh"

setup_workdir
require_common
require_cmd xz zstd gzip touch
require_modsignctl

make_key rsa2048 rsa2048
build_real_module
KEY=$(key_of rsa2048)
CERT=$(cert_of rsa2048)

# xz_check_of FILE: the integrity check of an .xz file (CRC32, CRC64, ...).
xz_check_of() {
	xz --robot --list -v "$1" | awk -F'\t' '$1 == "file" { print $7 }'
}

# compressed_case KIND SUFFIX
compressed_case() {
	local kind=$1 suffix=$2 d o f name snap check filters streams hdr id1 id2 cm flg m1 m2 m3 m4
	d=$(mktemp -d "$WORKDIR/$kind.XXXXXX")
	name=hello.ko.$suffix
	f=$d/$name
	compress_module "$kind" "$REAL_MODULE" "$f"
	step "made $f ($kind, $(file_size "$f") bytes)"
	if [ "$suffix" = xz ]; then
		check=$(xz_check_of "$f")
		case $kind in
		xz-crc32) [ "$check" = CRC32 ] || fail "test setup: $f has check $check, not CRC32" ;;
		xz-crc64) [ "$check" = CRC64 ] || fail "test setup: $f has check $check, not CRC64" ;;
		esac
		ok "input integrity check: $check"
	fi
	step "oracle: sign-file sha256 on the decompressed original"
	o=$d.oracle
	mkdir "$o"
	decompress_module "$f" "$o/original.ko"
	expect_exit 0 "$SIGN_FILE" sha256 "$KEY" "$CERT" "$o/original.ko" "$o/expected.ko"

	step "unsigned: verify exits 3"
	expect_exit 3 ms verify --cert "$CERT" "$f"

	step "modsignctl sign --hash sha256 (in place)"
	expect_exit 0 ms sign --key "$KEY" --cert "$CERT" --hash sha256 "$f"
	assert_dir_contents "$d" "$name"

	step "decompress with the standard tool and compare with sign-file's output"
	case $suffix in
	xz) xz -t "$f" || fail "xz -t $f: corrupt" ;;
	zst) zstd -q -t "$f" || fail "zstd -t $f: corrupt" ;;
	gz) gzip -t "$f" || fail "gzip -t $f: corrupt" ;;
	esac
	decompress_module "$f" "$d/decompressed.ko"
	assert_files_equal "$o/expected.ko" "$d/decompressed.ko" "$name decompressed = sign-file sha256 output"

	case $suffix in
	xz)
		check=$(xz_check_of "$f")
		[ "$check" = CRC32 ] || fail "$f: xz integrity check is '$check', expected CRC32 (the kernel's decompressor needs it)" \
			"xz --robot --list -v: $(xz --robot --list -v "$f" | tr '\t' ' ' | tr '\n' '|')"
		ok "xz integrity check: CRC32"
		filters=$(xz --robot --list -vv "$f" | awk -F'\t' '$1 == "block" { print $NF }' | sort -u)
		[ "$filters" = '--lzma2=dict=1MiB' ] || fail "$f: xz filter chain is '$filters', expected '--lzma2=dict=1MiB'"
		ok "xz filters: $filters"
		streams=$(xz --robot --list -v "$f" | awk -F'\t' '$1 == "file" { print $2 }')
		[ "$streams" = 1 ] || fail "$f: $streams xz streams, expected 1"
		;;
	gz)
		# ID1 ID2 CM FLG MTIME(4): FLG must not have FNAME (0x08), MTIME must be 0.
		hdr=$(read_bytes "$f" 0 8 | tr '\n' ' ')
		read -r id1 id2 cm flg m1 m2 m3 m4 <<<"$hdr"
		[ "$id1 $id2 $cm" = "31 139 8" ] || fail "$f: not a gzip deflate stream (header: $hdr)"
		[ $((flg & 8)) -eq 0 ] || fail "$f: gzip header stores a file name (FLG=$flg); the kernel uses gzip -n"
		[ "$m1$m2$m3$m4" = 0000 ] || fail "$f: gzip header has a non-zero mtime ($m1 $m2 $m3 $m4); the kernel uses gzip -n"
		ok "gzip header: no name, mtime 0"
		;;
	zst)
		[ "$(read_bytes "$f" 0 4 | tr '\n' ' ')" = "40 181 47 253 " ] || fail "$f: no zstd frame magic"
		ok "zstd frame"
		;;
	esac

	step "verify exits 0"
	expect_exit 0 ms verify --cert "$CERT" "$f"

	step "signing again is a no-op"
	touch -d '2001-02-03 04:05:06' "$f"
	snap=$(snapshot "$f")
	expect_exit 0 ms sign --key "$KEY" --cert "$CERT" --hash sha256 "$f"
	assert_unchanged "$f" "$snap" "second sign of $name"
	assert_dir_contents "$d" "$name" decompressed.ko
	rm -rf "$d" "$o"
}

run_case ".ko.xz made with xz --check=crc32 --lzma2=dict=1MiB" compressed_case xz-crc32 xz
run_case ".ko.xz made with plain xz (CRC64)" compressed_case xz-crc64 xz
run_case ".ko.zst made with zstd" compressed_case zstd zst
run_case ".ko.gz made with gzip -n" compressed_case gzip gz

finish
