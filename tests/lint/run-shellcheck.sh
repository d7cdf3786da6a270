#!/bin/sh
# Lints every shell script of the project with shellcheck: any finding fails the test.
set -eu
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v shellcheck >/dev/null 2>&1 || { echo "SKIP: shellcheck not installed"; exit 77; }
cd "$srcdir"
# Build caches (a kernel source tree, debootstrapped roots) hold scripts that are not ours.
scripts=$(find tests bench hooks tools demo .ci \( -name cache -o -name work -o -name build \) -prune -o \
        -type f \( -name '*.sh' -o -name run -o -name install-deps \) -print 2>/dev/null | sort)
# The hook templates are shell too (their @...@ placeholders are plain words to shellcheck).
scripts="$scripts $(find hooks -type f -name '*.in' 2>/dev/null | sort)"
# shellcheck disable=SC2086
shellcheck -x $scripts
echo "PASS: shellcheck clean ($(echo "$scripts" | wc -l) scripts)"
