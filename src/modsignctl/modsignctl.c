/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* modsignctl: the command-line tool. A table of commands, each in a file of its own. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "key-backend.h"
#include "key.h"
#include "log.h"
#include "macro.h"
#include "modsignctl.h"
#include "client.h"
#include "openssl-util.h"

struct global_args arg_global = { .socket_path = CLIENT_DEFAULT_SOCKET };

struct command {
        const char *name;
        int (*run)(int argc, char *argv[]);
        const char *summary;
};

static const struct command commands[] = {
        { "sign", cmd_sign, "sign modules in place with a key and certificate" },
        { "verify", cmd_verify, "check module signatures against trusted certificates" },
        { "info", cmd_info, "show a module's name, version magic and signature" },
        { "strip", cmd_strip, "remove the signature from modules" },
        { "sign-file", cmd_sign_file, "drop-in for the kernel's scripts/sign-file" },
        { "status", cmd_status, "show what the running modsignd is doing" },
        { "scan", cmd_scan, "have modsignd sign what needs it in a kernel or a tree" },
        { "reload", cmd_reload, "have modsignd read its configuration and key again" },
        { "dkms-sign-file", cmd_dkms_sign_file, "DKMS's sign_file: sign through modsignd" },
        { "dkms-check", cmd_dkms_check, "check (and sign) the DKMS modules of kernels" },
        { "doctor", cmd_doctor, "check the whole chain from DKMS to the kernel, say what to fix" },
        { "keygen", cmd_keygen, "make a new signing key and its self-signed certificate" },
        { "enroll", cmd_enroll, "make the kernel trust the certificate (MOK via mokutil)" },
        { "audit", cmd_audit, "verify the audit log's hash chain, or show its records" },
        { "rotate", cmd_rotate, "replace the signing key and re-sign what the old one signed" },
        { "report", cmd_report, "signing coverage, escapes and certificate debt (text, JSON, Prometheus)" },
        { "provenance", cmd_provenance, "show the in-toto statement of a signed module" },
        { "approve", cmd_approve, "approve module names for signing (Mode=approve)" },
        { "pending", cmd_pending, "list the module names waiting for approval" },
};

static void help(void) {
        printf("Usage: modsignctl [--json] [--quiet] COMMAND [OPTIONS] ...\n"
               "\n"
               "Sign, verify and inspect Linux kernel modules.\n"
               "\n"
               "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                printf("  %-10s %s\n", commands[i].name, commands[i].summary);
        printf("\n"
               "Options:\n"
               "  -j --json      machine-readable output where a command reports\n"
               "  -q --quiet     print errors only\n"
               "  -s --socket PATH  modsignd's socket (default %s)\n"
               "  -c --config FILE  modsignd's configuration, for the key and socket it names\n"
               "                    (default /etc/modsignd/modsignd.conf and modsignd.conf.d/)\n"
               "  -h --help      show this help\n"
               "  -V --version   show the version\n"
               "\n"
               "'modsignctl COMMAND --help' shows a command's options. See modsignctl(8).\n"
               "Exit status: 0 success, 1 error, 2 usage, 3 unsigned, 4 bad signature,\n"
               "5 untrusted signer, 6 not a valid module, 7 modsignd not running,\n"
               "8 audit log chain broken, 9 report thresholds exceeded,\n"
               "10 no provenance statement for the module as it is.\n",
               CLIENT_DEFAULT_SOCKET);
}

int exit_code_merge(int a, int b) {
        /* Severity rank of each exit code, higher wins. */
        static const int rank[] = {
                [EXIT_OK] = 0,        [EXIT_UNSIGNED] = 1, [EXIT_UNTRUSTED] = 2, [EXIT_BAD_SIGNATURE] = 3,
                [EXIT_NOT_MODULE] = 4, [EXIT_ERROR] = 5,    [EXIT_DAEMON_DOWN] = 6, [EXIT_USAGE] = 7,
                [EXIT_AUDIT_BROKEN] = 5,
                [EXIT_REPORT_THRESHOLD] = 5, [EXIT_NO_PROVENANCE] = 5,
        };
        return rank[a] >= rank[b] ? a : b;
}

int exit_code_from_errno(int r) {
        switch (r) {
        case 0:
                return EXIT_OK;
        case -ENODATA:
                return EXIT_UNSIGNED;
        case -EBADMSG:
        case -ENOPKG:
        case -EKEYREJECTED:
                return EXIT_BAD_SIGNATURE;
        case -ENOKEY:
                return EXIT_UNTRUSTED;
        case -ENOEXEC:
                return EXIT_NOT_MODULE;
        default:
                return EXIT_ERROR;
        }
}

const char *getenv_or(const char *name, const char *fallback) {
        const char *v = getenv(name);
        return v && *v ? v : fallback;
}

int open_parent_dir(const char *path, int *ret_dir_fd, const char **ret_base) {
        _cleanup_free_ char *dir = NULL;
        const char *slash = strrchr(path, '/');
        const char *base = slash ? slash + 1 : path;
        int fd;

        if (!*base || streq(base, ".") || streq(base, ".."))
                return -EISDIR;
        if (!slash)
                dir = strdup(".");
        else if (slash == path)
                dir = strdup("/");
        else
                dir = strndup(path, (size_t) (slash - path));
        if (!dir)
                return -ENOMEM;
        /* Directories on the way may be symlinks (/lib -> usr/lib); only the last component
         * is opened with O_NOFOLLOW. */
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        *ret_dir_fd = fd;
        *ret_base = base;
        return 0;
}

int module_arg_open(const char *path, struct module_arg *ret) {
        const char *base, *why = NULL;
        int r;

        *ret = (struct module_arg) { .dir_fd = -EBADF };
        r = open_parent_dir(path, &ret->dir_fd, &base);
        if (r < 0) {
                log_error_errno(r, "%s: %m", path);
                return EXIT_ERROR;
        }
        r = module_file_open(ret->dir_fd, base, &ret->file, &why);
        if (r < 0) {
                ret->dir_fd = safe_close(ret->dir_fd);
                if (r == -ENOEXEC)
                        log_error("%s: not a valid kernel module: %s", path, why ?: "unrecognised format");
                else if (r == -EBADMSG || r == -ENOPKG)
                        log_error("%s: malformed signature: %s", path, why ?: "bad trailer");
                else if (why)
                        log_error("%s: %s", path, why);
                else
                        log_error_errno(r, "%s: %m", path);
                return exit_code_from_errno(r);
        }
        return EXIT_OK;
}

void module_arg_close(struct module_arg *m) {
        module_file_close(&m->file);
        m->dir_fd = safe_close(m->dir_fd);
}

int load_signing_key(const char *ref, const char *passphrase, bool strict, EVP_PKEY **ret) {
        _cleanup_free_ char *msg = NULL;
        struct key_options o = { .pin = passphrase, .lax_file_access = !strict };
        int r;

        /* A token behind a socket (p11-kit's client module) that goes away makes the next
         * PKCS#11 call write to a closed socket. That must be a failed signature, reported
         * with the module's name, and the modules already done put in place; not the end of
         * the process. The daemon does the same (modsignd.c). */
        {
                _cleanup_(key_ref_done) struct key_ref kr = {};
                if (key_ref_parse(ref, &kr, NULL) >= 0 && kr.backend != KEY_BACKEND_FILE)
                        (void) signal(SIGPIPE, SIG_IGN);
        }

        r = key_load(ref, &o, ret, &msg);
        if (r < 0)
                return log_error_errno(r, "%s: %s", ref, msg ?: strerror(-r));
        if (msg)
                log_warning("%s: %s", ref, msg);
        return 0;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                { "quiet", no_argument, NULL, 'q' },
                { "socket", required_argument, NULL, 's' },
                { "config", required_argument, NULL, 'c' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {}
        };
        int c;

        log_set_program_name("modsignctl");

        while ((c = getopt_long(argc, argv, "+jqs:c:hV", options, NULL)) >= 0)
                switch (c) {
                case 'j':
                        arg_global.json = true;
                        break;
                case 'q':
                        arg_global.quiet = true;
                        log_set_max_level(LOG_LEVEL_WARNING);
                        break;
                case 's':
                        arg_global.socket_path = optarg;
                        arg_global.socket_given = true;
                        break;
                case 'c':
                        arg_global.config_path = optarg;
                        break;
                case 'h':
                        help();
                        return EXIT_OK;
                case 'V':
                        printf("modsignctl %s (%s)\n", PACKAGE_VERSION, OpenSSL_version(OPENSSL_VERSION));
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }

        if (optind >= argc) {
                log_error("missing command; see 'modsignctl --help'");
                return EXIT_USAGE;
        }

        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(argv[optind], commands[i].name)) {
                        int n = argc - optind;
                        char **args = argv + optind;

                        optind = 0; /* reset getopt for the command's own options */
                        return commands[i].run(n, args);
                }

        log_error("unknown command '%s'; see 'modsignctl --help'", argv[optind]);
        return EXIT_USAGE;
}
