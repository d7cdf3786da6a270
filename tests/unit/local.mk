# tests/unit: automake fragment, included by the top Makefile.am
#
# Check tests in fork mode, one binary per library file (DESIGN.md §6). Each binary builds
# tests/unit/unit-util.c, the shared fixtures, with its own flags.

UNIT_TESTS = \
	tests/unit/test-module \
	tests/unit/test-compress \
	tests/unit/test-sign \
	tests/unit/test-verify \
	tests/unit/test-key \
	tests/unit/test-key-ref \
	tests/unit/test-replace \
	tests/unit/test-kconfig \
	tests/unit/test-modsign \
	tests/unit/test-keygen

check_PROGRAMS += $(UNIT_TESTS)
TESTS += $(UNIT_TESTS)

UNIT_UTIL_SOURCES = tests/unit/unit-util.c tests/unit/unit-util.h
UNIT_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(LIBCRYPTO_CFLAGS)
UNIT_LDADD = $(LIBMODSIGN_LIBS) $(CHECK_LIBS)

tests_unit_test_module_SOURCES = tests/unit/test-module.c $(UNIT_UTIL_SOURCES)
tests_unit_test_module_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_module_LDADD = $(UNIT_LDADD)

tests_unit_test_compress_SOURCES = tests/unit/test-compress.c $(UNIT_UTIL_SOURCES)
tests_unit_test_compress_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_compress_LDADD = $(UNIT_LDADD)

tests_unit_test_sign_SOURCES = tests/unit/test-sign.c $(UNIT_UTIL_SOURCES)
tests_unit_test_sign_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_sign_LDADD = $(UNIT_LDADD)

tests_unit_test_verify_SOURCES = tests/unit/test-verify.c $(UNIT_UTIL_SOURCES)
tests_unit_test_verify_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_verify_LDADD = $(UNIT_LDADD)

tests_unit_test_key_SOURCES = tests/unit/test-key.c $(UNIT_UTIL_SOURCES)
tests_unit_test_key_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_key_LDADD = $(UNIT_LDADD)

tests_unit_test_replace_SOURCES = tests/unit/test-replace.c $(UNIT_UTIL_SOURCES)
tests_unit_test_replace_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_replace_LDADD = $(UNIT_LDADD)

tests_unit_test_kconfig_SOURCES = tests/unit/test-kconfig.c $(UNIT_UTIL_SOURCES)
tests_unit_test_kconfig_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_kconfig_LDADD = $(UNIT_LDADD)

tests_unit_test_modsign_SOURCES = tests/unit/test-modsign.c $(UNIT_UTIL_SOURCES)
tests_unit_test_modsign_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_modsign_LDADD = $(UNIT_LDADD)

tests_unit_test_key_ref_SOURCES = tests/unit/test-key-ref.c $(UNIT_UTIL_SOURCES)
tests_unit_test_key_ref_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_key_ref_LDADD = $(UNIT_LDADD)
tests_unit_test_keygen_SOURCES = tests/unit/test-keygen.c $(UNIT_UTIL_SOURCES)
tests_unit_test_keygen_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_keygen_LDADD = $(UNIT_LDADD)
UNIT_TESTS += tests/unit/test-audit
tests_unit_test_audit_SOURCES = tests/unit/test-audit.c $(UNIT_UTIL_SOURCES)
tests_unit_test_audit_CFLAGS = $(UNIT_CFLAGS) $(JSONC_CFLAGS) -pthread
tests_unit_test_audit_LDADD = $(UNIT_LDADD) -lpthread
UNIT_TESTS += tests/unit/test-report
tests_unit_test_report_SOURCES = tests/unit/test-report.c $(UNIT_UTIL_SOURCES)
tests_unit_test_report_CFLAGS = $(UNIT_CFLAGS) $(JSONC_CFLAGS)
tests_unit_test_report_LDADD = $(UNIT_LDADD)
UNIT_TESTS += tests/unit/test-policy
tests_unit_test_policy_SOURCES = tests/unit/test-policy.c $(UNIT_UTIL_SOURCES)
tests_unit_test_policy_CFLAGS = $(UNIT_CFLAGS) $(JSONC_CFLAGS)
tests_unit_test_policy_LDADD = $(UNIT_LDADD)
