# tests/fuzz: libFuzzer harnesses, built with clang by the script (the tree may be built
# with gcc), run for a bounded time under ASan and UBSan.
TESTS += tests/fuzz/run-fuzz.sh
EXTRA_DIST += \
	tests/fuzz/run-fuzz.sh \
	tests/fuzz/fuzz-module.c \
	tests/fuzz/fuzz-proto.c \
	tests/fuzz/corpus
CLEANFILES += tests/fuzz/fuzz-module tests/fuzz/fuzz-proto
