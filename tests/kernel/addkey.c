/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * addkey: part of the keygen kernel test's initramfs (built with gcc -static).
 *
 *   addkey CERT.der
 *
 * Adds the certificate to the kernel's .secondary_trusted_keys keyring (found
 * by name in /proc/keys) with add_key(2) and prints one line,
 * "ADDKEY OK <serial>" or "ADDKEY ERR <error>". The kernel accepts there only
 * a certificate signed by a key it already trusts. Exit status 0 or 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
	static char cert[65536];
	char line[1024];
	unsigned long ring = 0;
	size_t n;
	long id;
	FILE *f;

	if (argc != 2) {
		printf("ADDKEY ERR usage\n");
		return 1;
	}
	f = fopen(argv[1], "rb");
	if (!f) {
		printf("ADDKEY ERR %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	n = fread(cert, 1, sizeof(cert), f);
	fclose(f);
	f = fopen("/proc/keys", "r");
	if (!f) {
		printf("ADDKEY ERR /proc/keys: %s\n", strerror(errno));
		return 1;
	}
	while (fgets(line, sizeof(line), f))
		if (strstr(line, " .secondary_trusted_keys:"))
			ring = strtoul(line, NULL, 16);
	fclose(f);
	if (!ring) {
		printf("ADDKEY ERR no .secondary_trusted_keys keyring\n");
		return 1;
	}
	id = syscall(SYS_add_key, "asymmetric", NULL, cert, n, (int) ring);
	if (id < 0) {
		printf("ADDKEY ERR %s\n", strerror(errno));
		return 1;
	}
	printf("ADDKEY OK %lx\n", id);
	return 0;
}
