#!/bin/sh
# Builds the tree a second time with AddressSanitizer and UndefinedBehaviorSanitizer (out of
# tree, in the build directory) and runs the unit tests and the CLI tests against that build.
# Any sanitizer report fails the test. SANITIZE_TESTS overrides which tests run.
set -eu

srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-$PWD}
build="$top_builddir/tests/sanitize/build"

tests=${SANITIZE_TESTS:-"tests/unit/test-module tests/unit/test-compress tests/unit/test-sign tests/unit/test-verify tests/unit/test-key tests/unit/test-replace tests/unit/test-kconfig tests/unit/test-modsign tests/unit/test-key-ref tests/unit/test-keygen tests/unit/test-audit tests/unit/test-report tests/unit/test-policy tests/integration/test-cli-errors.sh tests/integration/test-compressed.sh tests/integration/test-info.sh tests/integration/test-keygen.sh tests/integration/test-enroll.sh"}

# The outer make check hands its sub-makes TEST_LOGS (every test) through MAKEFLAGS; a make
# started here would inherit it and run the whole suite again, this test included, without
# end. Ours start clean.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES GNUMAKEFLAGS

# A fresh copy of the distributed sources each run (the tree itself may be configured in place,
# which rules out a second, out-of-tree build of it; a copy kept from an earlier run would test
# old sources).
rm -rf "$build"
mkdir -p "$build"
echo "copying the sources (make distdir) to $build"
make -C "$top_builddir" distdir distdir="$build" >"$build.distdir.log" 2>&1 ||
        { tail -n 20 "$build.distdir.log"; exit 1; }
cd "$build"
echo "configuring the sanitizer build"
./configure -q --enable-sanitizers --enable-werror CFLAGS="-O1 -g" >configure.log 2>&1 ||
        { cat configure.log; exit 1; }
echo "building with ASan and UBSan"
make -j"$(nproc)" modsignctl modsignd >build.log 2>&1 || { tail -n 40 build.log; exit 1; }

# halt_on_error: the first report fails the run; detect_leaks: LeakSanitizer too.
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=0:exitcode=99
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:exitcode=99
status=0
make -j"$(nproc)" check TESTS="$tests" >check.log 2>&1 || status=$?
grep -E '^(PASS|FAIL|ERROR|SKIP):' check.log || true
if [ "$status" -ne 0 ] || grep -q -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' ./*.log tests/*/*.log 2>/dev/null; then
        grep -h -A 30 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' ./*.log tests/*/*.log 2>/dev/null | head -n 80
        echo "FAIL: sanitizer build or its tests failed (logs in $build)"
        exit 1
fi
echo "PASS: unit and CLI tests clean under ASan and UBSan"
