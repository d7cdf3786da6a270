# tests/kernel: automake fragment, included by the top Makefile.am
#
# The kernel acceptance test (tests/kernel/README.md): a Linux 6.1 kernel with
# CONFIG_MODULE_SIG_FORCE, booted under qemu (TCG), must load what modsignctl
# signs and refuse unsigned, tampered and untrusted modules. It finds the CLI
# through MODSIGNCTL and its files through srcdir (TESTS_ENVIRONMENT). The
# kernel is built once into $(KERNEL_CACHE) (default: tests/kernel/cache in
# the build tree; set KERNEL_CACHE in the environment to share one between
# build trees). Exit 77 (skip) only when qemu or linux-source-6.1 is missing.

TESTS += tests/kernel/run-kernel-test.sh
TESTS += tests/kernel/run-keygen-kernel-test.sh
TESTS += tests/kernel/run-rotate-kernel-test.sh
TESTS += tests/kernel/run-tpm2-kernel-test.sh

EXTRA_DIST += \
	tests/kernel/run-kernel-test.sh \
	tests/kernel/lib.sh \
	tests/kernel/build-kernel.sh \
	tests/kernel/finit.c \
	tests/kernel/run-keygen-kernel-test.sh \
	tests/kernel/run-rotate-kernel-test.sh \
	tests/kernel/run-tpm2-kernel-test.sh \
	tests/kernel/addkey.c \
	tests/kernel/README.md \
	tests/kernel/module/Kbuild \
	tests/kernel/module/Makefile \
	tests/kernel/module/mst_hello.c \
	tests/kernel/module/mst_big_main.c \
	tests/kernel/module/mst_big_data.S

# The kernel cache costs minutes to rebuild: `make clean` keeps it,
# `make distclean` removes it.
distclean-local: distclean-kernel-cache
distclean-kernel-cache:
	-rm -rf tests/kernel/cache
.PHONY: distclean-kernel-cache
