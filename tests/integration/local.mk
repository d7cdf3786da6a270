# tests/integration: automake fragment, included by the top Makefile.am
#
# Shell tests with real tools (DESIGN.md §6): Debian's sign-file as the byte-for-byte
# oracle, openssl cms -verify, modinfo, xz/zstd/gzip, and a real module built against the
# installed kernel headers. They find the CLI through MODSIGNCTL and the sources through
# srcdir (both set by TESTS_ENVIRONMENT). Exit 77 (skip) only when a tool is missing.
# MODSIGN_TEST_KEEP=1 keeps each test's work directory; MODSIGN_TEST_CACHE_DIR=DIR reuses
# the built test module between tests.

INTEGRATION_TESTS = \
	tests/integration/test-signfile-oracle.sh \
	tests/integration/test-ecdsa.sh \
	tests/integration/test-compressed.sh \
	tests/integration/test-cli-errors.sh \
	tests/integration/test-info.sh \
	tests/integration/test-pkcs11.sh \
	tests/integration/test-tpm2.sh \
	tests/integration/test-key-files.sh \
	tests/integration/test-keygen.sh \
	tests/integration/test-enroll.sh \
	tests/integration/test-rotate.sh \
	tests/integration/test-keygen-token.sh \
	tests/integration/test-report.sh \
	tests/integration/test-provenance.sh

TESTS += $(INTEGRATION_TESTS)

EXTRA_DIST += \
	$(INTEGRATION_TESTS) \
	tests/integration/lib.sh \
	tests/integration/module/hello.c \
	tests/integration/module/Kbuild

# The test module is built once per build tree and shared by the tests (lib.sh).
clean-local: clean-integration-module-cache
clean-integration-module-cache:
	-rm -rf tests/integration/module-cache
.PHONY: clean-integration-module-cache
