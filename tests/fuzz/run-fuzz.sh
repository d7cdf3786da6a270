#!/bin/sh
# Builds the libFuzzer harnesses with clang (ASan + UBSan) and runs each for a bounded time
# on a copy of its seed corpus. Any crash, leak or sanitizer report fails the test.
# Environment: FUZZ_SECONDS (default 60, split across harnesses), srcdir, top_builddir.
set -eu

srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-$PWD}
seconds=${FUZZ_SECONDS:-60}
CLANG=${CLANG:-clang}

if ! command -v "$CLANG" >/dev/null 2>&1; then
        echo "SKIP: $CLANG not installed"
        exit 77
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

harnesses="module proto"
per=$((seconds / $(echo "$harnesses" | wc -w)))
[ "$per" -ge 5 ] || per=5

for h in $harnesses; do
        bin="$top_builddir/tests/fuzz/fuzz-$h"
        echo "building fuzz-$h"
        # shellcheck disable=SC2046
        "$CLANG" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -I"$top_builddir" \
                -I"$srcdir/src/shared" -I"$srcdir/src/lib" \
                "$srcdir/tests/fuzz/fuzz-$h.c" \
                "$srcdir/src/lib/module.c" "$srcdir/src/lib/verify.c" "$srcdir/src/lib/proto.c" \
                "$srcdir/src/lib/keyring.c" "$srcdir/src/shared/io-util.c" \
                $(pkg-config --cflags --libs libcrypto) \
                -o "$bin"

        mkdir -p "$work/$h"
        cp "$srcdir/tests/fuzz/corpus/$h/"* "$work/$h/"
        echo "running fuzz-$h for ${per}s"
        if ! "$bin" -max_total_time="$per" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
                -artifact_prefix="$work/" "$work/$h" >"$work/$h.log" 2>&1; then
                tail -n 60 "$work/$h.log"
                for a in "$work"/crash-* "$work"/leak-* "$work"/timeout-*; do
                        [ -e "$a" ] || continue
                        cp "$a" "$top_builddir/tests/fuzz/" && echo "saved reproducer: tests/fuzz/$(basename "$a")"
                done
                echo "FAIL: fuzz-$h"
                exit 1
        fi
        grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$work/$h.log" || true
        echo "PASS: fuzz-$h"
done
