/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * finit: the module loader of the kernel acceptance test (runs as part of
 * the test initramfs, so it is built with `gcc -static -O2`).
 *
 *   finit FILE [compressed]
 *
 * Calls finit_module(fd, "", flags) on FILE, with MODULE_INIT_COMPRESSED_FILE
 * when "compressed" is given (for .ko.xz), and prints exactly one line
 *
 *   RESULT <label> OK
 *   RESULT <label> ERR <errno-name>
 *
 * where <label> is the base name of FILE. After a successful load the module
 * is removed again with delete_module() (its name is found by comparing
 * /proc/modules before and after), so that the next variant of a module with
 * the same name can be loaded.
 *
 * Exit status: 0 if the module loaded, 1 if finit_module failed, 2 on usage
 * or I/O error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4
#endif

#define MAX_MODULES 256
#define NAME_LEN 64

struct modlist {
	int n;
	char name[MAX_MODULES][NAME_LEN];
};

static void read_modules(struct modlist *l)
{
	char line[512];
	FILE *f;

	l->n = 0;
	f = fopen("/proc/modules", "r");
	if (!f)
		return;
	while (l->n < MAX_MODULES && fgets(line, sizeof(line), f)) {
		size_t len = strcspn(line, " \n");

		if (len == 0 || len >= NAME_LEN)
			continue;
		memcpy(l->name[l->n], line, len);
		l->name[l->n][len] = '\0';
		l->n++;
	}
	fclose(f);
}

static int in_list(const struct modlist *l, const char *name)
{
	for (int i = 0; i < l->n; i++)
		if (strcmp(l->name[i], name) == 0)
			return 1;
	return 0;
}

static const char *errname(int e)
{
	static char buf[32];
	const char *s = strerrorname_np(e);

	if (s)
		return s;
	snprintf(buf, sizeof(buf), "E%d", e);
	return buf;
}

int main(int argc, char **argv)
{
	static struct modlist before, after;
	const char *file, *label;
	unsigned int flags = 0;
	int fd, rc;

	if (argc < 2 || argc > 3 ||
	    (argc == 3 && strcmp(argv[2], "compressed") != 0)) {
		fprintf(stderr, "usage: %s FILE [compressed]\n", argv[0]);
		return 2;
	}
	file = argv[1];
	label = strrchr(file, '/');
	label = label ? label + 1 : file;
	if (argc == 3)
		flags |= MODULE_INIT_COMPRESSED_FILE;

	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		printf("RESULT %s ERR %s\n", label, errname(e));
		fprintf(stderr, "finit: open %s: %s\n", file, strerror(e));
		fflush(stdout);
		return 2;
	}

	read_modules(&before);
	rc = (int)syscall(SYS_finit_module, fd, "", flags);
	if (rc != 0) {
		int e = errno;

		close(fd);
		printf("RESULT %s ERR %s\n", label, errname(e));
		fflush(stdout);
		return 1;
	}
	close(fd);
	printf("RESULT %s OK\n", label);
	fflush(stdout);

	read_modules(&after);
	for (int i = 0; i < after.n; i++) {
		if (in_list(&before, after.name[i]))
			continue;
		if (syscall(SYS_delete_module, after.name[i], O_NONBLOCK) != 0)
			fprintf(stderr, "finit: delete_module(%s): %s\n",
				after.name[i], strerror(errno));
	}
	return 0;
}
