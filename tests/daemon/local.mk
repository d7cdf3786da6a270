# tests/daemon: automake fragment, included by the top Makefile.am
#
# The daemon run the way systemd runs it: systemd-socket-activate --seqpacket passes the
# socket, a small receiver (notify-recv) reads READY=1/STATUS=/WATCHDOG=1/RELOADING=1/
# STOPPING=1 from NOTIFY_SOCKET, and the tests drive it with modsignctl and sign-client (a
# raw client of the socket protocol). They watch scratch trees ROOT/lib/modules/KVER only,
# never the machine's, and need root, the kernel headers of an installed kernel and
# systemd-socket-activate (skip, 77, without). The scripts find the daemon as
# $(top_builddir)/modsignd; MODSIGN_TEST_KEEP=1 keeps a test's work directory.

DAEMON_TESTS = \
	tests/daemon/test-daemon-notify.sh \
	tests/daemon/test-daemon-arrivals.sh \
	tests/daemon/test-daemon-overflow.sh \
	tests/daemon/test-daemon-socket.sh \
	tests/daemon/test-daemon-reload-term.sh \
	tests/daemon/test-daemon-late-tree.sh \
	tests/daemon/test-daemon-audit.sh \
	tests/daemon/test-daemon-provenance.sh \
	tests/daemon/test-daemon-policy.sh \
	tests/daemon/test-daemon-token-loss.sh

TESTS += $(DAEMON_TESTS)

EXTRA_DIST += \
	$(DAEMON_TESTS) \
	tests/daemon/lib.sh

check_PROGRAMS += tests/daemon/sign-client tests/daemon/notify-recv

tests_daemon_sign_client_SOURCES = tests/daemon/sign-client.c
tests_daemon_sign_client_CFLAGS = $(AM_CFLAGS)
tests_daemon_sign_client_LDADD = $(LIBMODSIGN_LIBS)

tests_daemon_notify_recv_SOURCES = tests/daemon/notify-recv.c
tests_daemon_notify_recv_CFLAGS = $(AM_CFLAGS)
