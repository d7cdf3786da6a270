# tests/dkms: automake fragment, included by the top Makefile.am
#
# The DKMS integration with the real dkms building the test package tests/dkms/pkg against
# the installed kernel headers, in throwaway trees (dkms --dkmstree/--sourcetree/
# --installtree); the drop-in it must place in /etc/dkms/framework.conf.d and a fake kernel
# directory under /lib/modules are removed when the test ends. Needs root and dkms.

DKMS_TESTS = \
	tests/dkms/test-dkms.sh

TESTS += $(DKMS_TESTS)

EXTRA_DIST += \
	$(DKMS_TESTS) \
	tests/dkms/pkg/dkms.conf \
	tests/dkms/pkg/Kbuild \
	tests/dkms/pkg/modsignd_dkmstest.c
