/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* modsignctl enroll: tell whether the running kernel trusts the signing certificate, and if
 * not, start what makes it trust it: a MOK enrolment request through mokutil on EFI
 * machines, the kernel's own trusted keys elsewhere (printed, not done: it means rebuilding
 * or re-issuing). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "io-util.h"
#include "key.h"
#include "keyring.h"
#include "log.h"
#include "macro.h"
#include "modsignctl.h"
#include "openssl-util.h"

#define SECURE_BOOT_VAR "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
#define MOKUTIL_OUTPUT_MAX 65536

static void help(void) {
        printf("Usage: modsignctl enroll [--cert FILE] [--dry-run] [--json]\n"
               "\n"
               "Tell whether the running kernel trusts the module signing certificate and, if\n"
               "it does not, ask for it to be enrolled as a Machine Owner Key: 'mokutil\n"
               "--import' asks for a one-time password, which MokManager asks for again at\n"
               "the next boot. Without EFI, print how to build the certificate into the\n"
               "kernel instead.\n"
               "\n"
               "  -c --cert FILE     certificate (PEM or DER; default: Certificate= of the\n"
               "                     configuration)\n"
               "     --config FILE   configuration file (default %s)\n"
               "  -n --dry-run       show what would be run, change nothing\n"
               "  -j --json          machine-readable report\n"
               "  -h --help          show this help\n"
               "\n"
               "Exit status: 0 trusted now, or enrolment requested or pending a reboot;\n"
               "1 error; 2 usage; 5 not trusted and not enrollable here (no EFI, no mokutil,\n"
               "or blocked): the steps to take are printed.\n",
               CONFIG_DEFAULT_FILE);
}

/* The paths of what we read can be moved for tests (a fixture /proc/keys, a fake EFI
 * directory, a stand-in for mokutil); see ENVIRONMENT in modsignctl(8). */
enum mok_state {
        MOK_UNKNOWN,
        MOK_NOT_ENROLLED,
        MOK_PENDING,
        MOK_ENROLLED,
        MOK_BLOCKED,
};

static const char *mok_state_to_string(enum mok_state s) {
        static const char *const names[] = {
                [MOK_UNKNOWN] = NULL,           [MOK_NOT_ENROLLED] = "not-enrolled", [MOK_PENDING] = "pending",
                [MOK_ENROLLED] = "enrolled",    [MOK_BLOCKED] = "blocked",
        };
        return names[s];
}

struct enroll {
        const char *cert_path;
        X509 *cert;
        bool cert_is_der;
        char *key_id;
        char fingerprint[65];

        bool trusted_now;
        const char *keyrings[8];
        size_t n_keyrings;
        bool in_kernel; /* the key is in some kernel keyring listed in /proc/keys */

        bool efi;
        int secure_boot; /* -1 unknown */
        char *mokutil;
        char *der_path;
        char *tmp_dir;    /* a DER copy made for mokutil, removed at the end */
        enum mok_state mok;

        const char *action;
        char *commands[8];
        size_t n_commands;
};

static void enroll_done(struct enroll *e) {
        X509_free(e->cert);
        free(e->key_id);
        free(e->mokutil);
        if (e->tmp_dir) {
                (void) unlink(e->der_path);
                (void) rmdir(e->tmp_dir);
        }
        free(e->der_path);
        free(e->tmp_dir);
        for (size_t i = 0; i < e->n_commands; i++)
                free(e->commands[i]);
}

static int add_command(struct enroll *e, const char *fmt, ...) _printf_(2, 3);
static int add_command(struct enroll *e, const char *fmt, ...) {
        va_list ap;
        char *s;
        int n;

        if (e->n_commands >= ELEMENTSOF(e->commands))
                return -ENOBUFS;
        va_start(ap, fmt);
        n = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        e->commands[e->n_commands++] = s;
        return 0;
}

static int check_kernel_trust(struct enroll *e) {
        const char *proc_keys = getenv_or("MODSIGNCTL_PROC_KEYS", "/proc/keys");
        struct kernel_cert_trust t;
        int r;

        r = kernel_cert_trust(e->cert, proc_keys, getenv_or("MODSIGNCTL_KEYRING_DIR", NULL), &t);
        if (r == -ENOENT || r == -EACCES || r == -EPERM) {
                log_warning_errno(r, "%s: %m; cannot tell which keys the kernel trusts", proc_keys);
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "%s: cannot read: %m", proc_keys);
        e->in_kernel = t.in_kernel;
        e->trusted_now = t.trusted;
        for (size_t i = 0; i < t.n_keyrings && e->n_keyrings < ELEMENTSOF(e->keyrings); i++)
                e->keyrings[e->n_keyrings++] = t.keyrings[i];
        return 0;
}

static void check_efi(struct enroll *e) {
        const char *efi_dir = getenv_or("MODSIGNCTL_EFI_DIR", "/sys/firmware/efi");
        _cleanup_free_ char *var = NULL;
        _cleanup_close_ int fd = -EBADF;
        unsigned char buf[8];
        struct stat st;
        ssize_t n;

        e->secure_boot = -1;
        e->efi = stat(efi_dir, &st) >= 0 && S_ISDIR(st.st_mode);
        if (!e->efi || asprintf(&var, "%s/efivars/" SECURE_BOOT_VAR, efi_dir) < 0)
                return;
        /* efivarfs: 4 bytes of attributes, then the variable: one byte, 1 = enabled. */
        fd = open(var, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        n = loop_read(fd, buf, sizeof(buf));
        if (n == 5)
                e->secure_boot = buf[4] == 1;
}

static char *find_mokutil(void) {
        const char *env = getenv("MODSIGNCTL_MOKUTIL");
        const char *dirs[] = { "/usr/bin", "/usr/sbin", "/bin", "/sbin" };
        char *p;

        if (env && *env)
                return access(env, X_OK) >= 0 ? strdup(env) : NULL;
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                if (asprintf(&p, "%s/mokutil", dirs[i]) < 0)
                        return NULL;
                if (access(p, X_OK) >= 0)
                        return p;
                free(p);
        }
        return NULL;
}

static bool file_equals(const char *path, const unsigned char *data, size_t len) {
        _cleanup_free_ char *buf = NULL;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        size_t n;

        if (fd < 0 || read_full_fd(fd, len + 1, &buf, &n) < 0)
                return false;
        return n == len && memcmp(buf, data, len) == 0;
}

/* A private copy of the DER certificate for mokutil, in a directory of its own. */
static int write_tmp_der(struct enroll *e, const unsigned char *der, size_t len) {
        _cleanup_free_ char *dir = NULL, *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (asprintf(&dir, "%s/modsignctl-enroll.XXXXXX", getenv_or("TMPDIR", "/tmp")) < 0)
                return -ENOMEM;
        if (!mkdtemp(dir))
                return negative_errno();
        if (asprintf(&path, "%s/signing.der", dir) < 0) {
                (void) rmdir(dir);
                return -ENOMEM;
        }
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        r = fd < 0 ? negative_errno() : loop_write(fd, der, len);
        if (r < 0) {
                (void) unlink(path);
                (void) rmdir(dir);
                return r;
        }
        e->tmp_dir = TAKE_PTR(dir);
        e->der_path = TAKE_PTR(path);
        return 0;
}

/* mokutil reads DER only: the certificate itself when it is DER, the .der keygen wrote
 * beside a PEM one, or else a private copy. */
static int pick_der(struct enroll *e, const unsigned char *der, size_t len) {
        _cleanup_free_ char *cand = NULL;
        const char *dot;

        if (file_equals(e->cert_path, der, len)) {
                e->cert_is_der = true;
                e->der_path = strdup(e->cert_path);
                return e->der_path ? 0 : -ENOMEM;
        }
        dot = strrchr(e->cert_path, '.');
        if (dot && !strchr(dot, '/')) {
                if (asprintf(&cand, "%.*s.der", (int) (dot - e->cert_path), e->cert_path) < 0)
                        return -ENOMEM;
                if (file_equals(cand, der, len)) {
                        e->der_path = TAKE_PTR(cand);
                        return 0;
                }
        }
        return write_tmp_der(e, der, len);
}

static int find_der(struct enroll *e) {
        unsigned char *der = NULL;
        int len = i2d_X509(e->cert, &der), r;

        if (len <= 0)
                return -EIO;
        r = pick_der(e, der, (size_t) len);
        OPENSSL_free(der);
        return r;
}

/* Runs mokutil with args; its stdout goes to *ret_out when that is given, else to our
 * stdout (stderr when the report is JSON), its stdin is ours (it asks for the password on
 * the terminal itself). Returns the exit status, or a negative errno. */
static int run_mokutil(const char *mokutil, const char *a1, const char *a2, char **ret_out) {
        int pipefd[2] = { -1, -1 }, status;
        pid_t pid;

        if (ret_out && pipe2(pipefd, O_CLOEXEC) < 0)
                return negative_errno();
        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid < 0) {
                int r = negative_errno();
                safe_close(pipefd[0]);
                safe_close(pipefd[1]);
                return r;
        }
        if (pid == 0) {
                if (ret_out) {
                        int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
                        if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0 || dup2(pipefd[1], STDOUT_FILENO) < 0)
                                _exit(127);
                } else if (arg_global.json && dup2(STDERR_FILENO, STDOUT_FILENO) < 0)
                        _exit(127);
                execl(mokutil, mokutil, a1, a2, (char *) NULL);
                _exit(127);
        }
        if (ret_out) {
                _cleanup_free_ char *out = NULL;
                size_t len;
                int r;

                safe_close(pipefd[1]);
                r = read_full_fd(pipefd[0], MOKUTIL_OUTPUT_MAX, &out, &len);
                safe_close(pipefd[0]);
                if (r < 0) {
                        (void) waitpid(pid, &status, 0);
                        return r;
                }
                *ret_out = TAKE_PTR(out);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return negative_errno();
        if (!WIFEXITED(status))
                return -ECHILD;
        return WEXITSTATUS(status);
}

/* mokutil --test-key tells by its output (the exit status differs between versions). */
static enum mok_state parse_test_key(const char *out) {
        if (strstr(out, "is already in the enrollment request"))
                return MOK_PENDING;
        if (strstr(out, "is already enrolled") || strstr(out, "is already in db"))
                return MOK_ENROLLED;
        if (strstr(out, "blocked") || strstr(out, "dbx"))
                return MOK_BLOCKED;
        if (strstr(out, "is not enrolled"))
                return MOK_NOT_ENROLLED;
        return MOK_UNKNOWN;
}

static void explain_no_efi(struct enroll *e) {
        const char *pem = e->cert_is_der ? "CERT.pem" : e->cert_path;

        e->action = "manual";
        if (e->cert_is_der)
                (void) add_command(e, "openssl x509 -inform DER -in %s -out CERT.pem", e->cert_path);
        (void) add_command(e, "scripts/config --set-str SYSTEM_TRUSTED_KEYS %s", pem);
        (void) add_command(e, "scripts/insert-sys-cert -b vmlinux -s System.map -c %s", e->der_path);
        (void) add_command(e, "keyctl padd asymmetric \"\" %%:.secondary_trusted_keys < %s", e->der_path);
        if (arg_global.json)
                return;
        printf("\nThis machine has no EFI firmware (no /sys/firmware/efi): there is no Machine Owner\n"
               "Key list to enroll into. A kernel that enforces module signatures (module.sig_enforce=1,\n"
               "CONFIG_MODULE_SIG_FORCE) trusts only its built-in keys and its secondary keyring, so\n"
               "the certificate has to go into one of them:\n"
               "\n"
               "  1. Build it into the kernel's trusted keys (CONFIG_SYSTEM_TRUSTED_KEYS, PEM; put\n"
               "     several certificates into one file to keep the distribution's key too):\n"
               "%s%s%s"
               "       %s\n"
               "       make olddefconfig && make   # then install and boot that kernel\n"
               "     or, into an already built kernel that reserved room for it\n"
               "     (CONFIG_SYSTEM_EXTRA_CERTIFICATE=y):\n"
               "       %s\n"
               "\n"
               "  2. Add it to the secondary trusted keyring (CONFIG_SECONDARY_TRUSTED_KEYRING=y) at\n"
               "     every boot. The kernel accepts there only a certificate signed by a key it\n"
               "     already trusts, so a self-signed certificate from 'modsignctl keygen' must first\n"
               "     be re-issued by such a key:\n"
               "       %s\n",
               e->cert_is_der ? "       " : "", e->cert_is_der ? e->commands[0] : "", e->cert_is_der ? "\n" : "",
               e->commands[e->n_commands - 3], e->commands[e->n_commands - 2], e->commands[e->n_commands - 1]);
}

static void explain_next_boot(void) {
        if (arg_global.json)
                return;
        printf("\nAt the next boot, shim's MokManager (a blue screen) asks what to do:\n"
               "  1. choose \"Enroll MOK\", then \"Continue\", and confirm with \"Yes\";\n"
               "  2. type the one-time password given to mokutil;\n"
               "  3. choose \"Reboot\".\n"
               "Then 'modsignctl enroll' should report the certificate as trusted. Without an\n"
               "answer within a few seconds MokManager boots on, and the request waits for the\n"
               "next reboot.\n");
}

static int report(struct enroll *e, bool dry_run) {
        if (arg_global.json) {
                json_object *o = json_object_new_object(), *kr = json_object_new_array(),
                            *cmds = json_object_new_array();

                json_object_object_add(o, "certificate", json_object_new_string(e->cert_path));
                json_object_object_add(o, "fingerprint_sha256", json_object_new_string(e->fingerprint));
                json_object_object_add(o, "key_id", json_object_new_string(e->key_id));
                json_object_object_add(o, "trusted_now", json_object_new_boolean(e->trusted_now));
                for (size_t i = 0; i < e->n_keyrings; i++)
                        json_object_array_add(kr, json_object_new_string(e->keyrings[i]));
                json_object_object_add(o, "keyrings", kr);
                json_object_object_add(o, "in_kernel", json_object_new_boolean(e->in_kernel));
                json_object_object_add(o, "enrolled",
                                       e->mok == MOK_UNKNOWN ? NULL : json_object_new_boolean(e->mok == MOK_ENROLLED));
                json_object_object_add(o, "mok_state",
                                       mok_state_to_string(e->mok) ? json_object_new_string(mok_state_to_string(e->mok))
                                                                   : NULL);
                json_object_object_add(o, "efi", json_object_new_boolean(e->efi));
                json_object_object_add(o, "secure_boot",
                                       e->secure_boot < 0 ? NULL : json_object_new_boolean(e->secure_boot));
                json_object_object_add(o, "mokutil", e->mokutil ? json_object_new_string(e->mokutil) : NULL);
                json_object_object_add(o, "action", json_object_new_string(e->action));
                for (size_t i = 0; i < e->n_commands; i++)
                        json_object_array_add(cmds, json_object_new_string(e->commands[i]));
                json_object_object_add(o, "commands", cmds);
                json_object_object_add(o, "dry_run", json_object_new_boolean(dry_run));
                printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                                         JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(o);
        }
        return 0;
}

static void print_status(const struct enroll *e) {
        if (arg_global.json)
                return;
        printf("Certificate:  %s\n"
               "Key id:       %s\n"
               "SHA-256:      %s\n",
               e->cert_path, e->key_id, e->fingerprint);
        if (e->trusted_now) {
                printf("Kernel:       trusted now (in");
                for (size_t i = 0; i < e->n_keyrings; i++)
                        printf(" %s", e->keyrings[i]);
                printf(")\n");
        } else if (e->n_keyrings > 0)
                printf("Kernel:       not trusted for modules (only in %s)\n", e->keyrings[0]);
        else if (e->in_kernel)
                printf("Kernel:       not trusted (its key is loaded, but in no trusted keyring)\n");
        else
                printf("Kernel:       not trusted (in no trusted keyring)\n");
        printf("EFI:          %s\n", !e->efi ? "no" : e->secure_boot < 0 ? "yes" : e->secure_boot ? "yes, Secure Boot on" : "yes, Secure Boot off");
        if (e->efi)
                printf("MOK list:     %s\n", e->mok == MOK_UNKNOWN ? "unknown" : mok_state_to_string(e->mok));
}

int cmd_enroll(int argc, char *argv[]) {
        enum { ARG_CONFIG = 0x100 };
        static const struct option options[] = {
                { "cert", required_argument, NULL, 'c' },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "dry-run", no_argument, NULL, 'n' },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        _cleanup_(enroll_done) struct enroll e = { .secure_boot = -1 };
        _cleanup_(config_done) struct config cfg = {};
        const char *cert_arg = NULL, *config_path = NULL;
        bool dry_run = false;
        int c, r, code;

        while ((c = getopt_long(argc, argv, "c:njh", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        cert_arg = optarg;
                        break;
                case ARG_CONFIG:
                        config_path = optarg;
                        break;
                case 'n':
                        dry_run = true;
                        break;
                case 'j':
                        arg_global.json = true;
                        break;
                case 'h':
                        help();
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        if (optind < argc) {
                log_error("enroll: unexpected argument '%s'", argv[optind]);
                return EXIT_USAGE;
        }

        if (!cert_arg) {
                _cleanup_free_ char *error = NULL;

                r = config_load(config_path ?: CONFIG_DEFAULT_FILE, !!config_path,
                                config_path ? NULL : CONFIG_DEFAULT_DROPIN_DIR, &cfg, &error);
                if (r < 0) {
                        log_error("%s", error ?: "cannot load the configuration");
                        return EXIT_ERROR;
                }
                cert_arg = cfg.certificate;
        }
        e.cert_path = cert_arg;

        r = cert_load_file(e.cert_path, &e.cert);
        if (r < 0) {
                log_error_errno(r, "%s: cannot load certificate: %s", e.cert_path,
                                r == -EBADMSG ? "not a PEM or DER X.509 certificate" : strerror(-r));
                return EXIT_ERROR;
        }
        r = cert_kernel_key_id(e.cert, &e.key_id);
        if (r >= 0)
                r = cert_fingerprint_sha256(e.cert, e.fingerprint);
        if (r < 0) {
                log_error_errno(r, "%s: cannot read the certificate: %m", e.cert_path);
                return EXIT_ERROR;
        }
        r = find_der(&e);
        if (r < 0) {
                log_error_errno(r, "%s: cannot make a DER copy for mokutil: %m", e.cert_path);
                return EXIT_ERROR;
        }

        if (check_kernel_trust(&e) < 0)
                return EXIT_ERROR;
        check_efi(&e);
        if (e.efi) {
                e.mokutil = find_mokutil();
                if (e.mokutil) {
                        _cleanup_free_ char *out = NULL;

                        /* A query only; it runs in --dry-run too. */
                        r = run_mokutil(e.mokutil, "--test-key", e.der_path, &out);
                        if (r < 0)
                                log_warning_errno(r, "%s --test-key: %m", e.mokutil);
                        else {
                                e.mok = parse_test_key(out);
                                if (e.mok == MOK_UNKNOWN)
                                        log_warning("%s --test-key %s: unexpected answer: %s", e.mokutil, e.der_path,
                                                    out);
                        }
                }
        }
        print_status(&e);

        if (e.trusted_now) {
                e.action = "none";
                code = EXIT_OK;
        } else if (!e.efi) {
                explain_no_efi(&e);
                code = EXIT_UNTRUSTED;
        } else if (!e.mokutil) {
                e.action = "install-mokutil";
                (void) add_command(&e, "apt-get install mokutil");
                if (!arg_global.json)
                        printf("\nmokutil is not installed; install it (apt-get install mokutil) and run\n"
                               "'modsignctl enroll' again.\n");
                code = EXIT_UNTRUSTED;
        } else if (e.mok == MOK_ENROLLED || e.mok == MOK_PENDING) {
                e.action = "reboot";
                if (!arg_global.json) {
                        if (e.mok == MOK_PENDING) {
                                printf("\nThe enrolment request is already waiting for the next boot.\n");
                                explain_next_boot();
                        } else
                                printf("\nThe certificate is enrolled, but the running kernel has not loaded it:\n"
                                       "reboot. If it is still not trusted then, the kernel may keep Machine Owner Keys\n"
                                       "in .platform only (shim older than 15.6 does not set MokListTrustedRT).\n");
                }
                code = EXIT_OK;
        } else if (e.mok == MOK_BLOCKED) {
                e.action = "none";
                log_error("%s: the firmware's forbidden-signature list (dbx) blocks this certificate; "
                          "make a new key with 'modsignctl keygen'",
                          e.cert_path);
                code = EXIT_UNTRUSTED;
        } else {
                e.action = "import";
                (void) add_command(&e, "%s --import %s", e.mokutil, e.der_path);
                if (e.secure_boot == 0 && !arg_global.json)
                        printf("\nSecure Boot is off: the kernel does not require signed modules unless\n"
                               "module.sig_enforce=1; the key is enrolled for when it is turned on.\n");
                if (dry_run) {
                        if (!arg_global.json)
                                printf("\nWould run: %s%s\n", e.commands[e.n_commands - 1],
                                       e.tmp_dir ? "   (with a temporary DER copy of the certificate)" : "");
                        code = EXIT_OK;
                } else {
                        if (!arg_global.json)
                                printf("\nRunning: %s\n"
                                       "mokutil asks for a one-time password (twice). Remember it: MokManager asks\n"
                                       "for it at the next boot. It is not stored anywhere.\n",
                                       e.commands[e.n_commands - 1]);
                        /* The password goes from the terminal to mokutil, never through us. */
                        r = run_mokutil(e.mokutil, "--import", e.der_path, NULL);
                        if (r != 0) {
                                if (r < 0)
                                        log_error_errno(r, "cannot run %s: %m", e.mokutil);
                                else
                                        log_error("%s --import %s failed (exit status %d); nothing was enrolled",
                                                  e.mokutil, e.der_path, r);
                                e.action = "import-failed";
                                code = EXIT_ERROR;
                        } else {
                                explain_next_boot();
                                code = EXIT_OK;
                        }
                }
        }

        if (e.trusted_now && !arg_global.json)
                printf("\nNothing to do: modules signed with this key load now.\n");
        report(&e, dry_run);
        return code;
}
