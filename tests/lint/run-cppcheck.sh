#!/bin/sh
# cppcheck over all C sources: any finding fails the test. Test kernel modules (module/
# directories) are kernel code, built against kernel headers cppcheck cannot follow.
set -eu
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v cppcheck >/dev/null 2>&1 || { echo "SKIP: cppcheck not installed"; exit 77; }
cd "$srcdir"
# shellcheck disable=SC2046
cppcheck --quiet --enable=warning,performance,portability --error-exitcode=1 --inline-suppr \
        --std=c11 -I src/shared -I src/lib --suppress=missingIncludeSystem \
        $(find src tests \( -name cache -o -name work -o -name module -o -name build \) -prune -o -name '*.c' -print | sort)
echo "PASS: cppcheck clean"
