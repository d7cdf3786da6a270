# tests/vm: automake fragment, included by the top Makefile.am
#
# modsignd under a real systemd as PID 1: a Debian 12 root (debootstrap minbase with systemd)
# and Debian's own kernel (/boot/vmlinuz-*, package linux-image-amd64) boot under qemu (TCG);
# a oneshot unit in the guest (guest/vmtest.sh) drives modsignd.socket and modsignd.service
# with systemctl, the socket and the module tree, and prints one "VMTEST RESULT" line on the
# serial console. The host also checks `systemd-analyze security --offline=true` (<= 2.5).
# The root is built once into $(VM_CACHE) (default: tests/vm/cache in the build tree; set
# VM_CACHE in the environment to share one between build trees) and rebuilt when its package
# list changes. Needs root (debootstrap). Exit 77 (skip) only when qemu or debootstrap is
# missing or unusable, or there is no kernel in /boot to boot.

TESTS += tests/vm/run-vm-test.sh

EXTRA_DIST += \
	tests/vm/run-vm-test.sh \
	tests/vm/vmtest-module.c \
	tests/vm/guest/vmtest.sh \
	tests/vm/guest/modsignd-vmtest.service

# The cached root costs minutes to rebuild: `make clean` keeps it, `make distclean` removes it.
distclean-local: distclean-vm-cache
distclean-vm-cache:
	-rm -rf tests/vm/cache
.PHONY: distclean-vm-cache
