/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* modsignctl doctor: checks the whole chain from a DKMS build to a module the kernel loads,
 * and prints what is wrong with the command that fixes it.
 *
 * The checks, in the order a module meets them: modsignd's configuration, its certificate
 * and key (they must match), the daemon (reachable, with that key), DKMS's signing settings
 * (what DKMS will actually call: framework.conf and its drop-ins are read the way DKMS
 * reads them, as assignments, though never executed here), the hash each kernel expects,
 * whether the running kernel trusts the certificate (and whether it enforces signatures:
 * Secure Boot, lockdown, module.sig_enforce), and the DKMS modules unsigned right now. */
#include <config.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "conf.h"
#include "dkms-modules.h"
#include "io-util.h"
#include "kconfig.h"
#include "key.h"
#include "log.h"
#include "macro.h"
#include "modsignctl.h"
#include "openssl-util.h"
#include "signing-key.h"

#define DKMS_DAEMON_KEY_REF "pkcs11:modsignd-daemon-key"
#define STATUS_TIMEOUT_MS (10 * 1000)

DEFINE_TRIVIAL_CLEANUP_FUNC(FILE *, fclose);

enum verdict { VERDICT_OK, VERDICT_INFO, VERDICT_WARN, VERDICT_FAIL };

static const char *const verdict_names[] = {
        [VERDICT_OK] = "ok", [VERDICT_INFO] = "info", [VERDICT_WARN] = "warn", [VERDICT_FAIL] = "fail",
};

struct doctor {
        struct config conf;
        bool conf_ok;
        X509 *cert;
        char fingerprint[65];
        bool dkms_present;
        bool enforcing;      /* the running kernel refuses unsigned modules */
        const char *modules_dir;
        const char *dkms_tree;
        json_object *checks; /* array */
        unsigned n_fail, n_warn;
};

static void report(struct doctor *d, const char *name, enum verdict v, const char *fix, const char *fmt, ...)
        _printf_(5, 6);
static void report(struct doctor *d, const char *name, enum verdict v, const char *fix, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        json_object *o;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);

        d->n_fail += v == VERDICT_FAIL;
        d->n_warn += v == VERDICT_WARN;
        o = json_object_new_object();
        json_object_object_add(o, "check", json_object_new_string(name));
        json_object_object_add(o, "result", json_object_new_string(verdict_names[v]));
        json_object_object_add(o, "message", json_object_new_string(msg ?: "(out of memory)"));
        json_object_object_add(o, "fix", fix ? json_object_new_string(fix) : NULL);
        json_object_array_add(d->checks, o);

        if (arg_global.json || (arg_global.quiet && v < VERDICT_WARN))
                return;
        printf("[%-4s] %-14s %s\n", verdict_names[v], name, msg ?: "(out of memory)");
        if (fix && v >= VERDICT_WARN)
                printf("       %-14s fix: %s\n", "", fix);
}

/* --- modsignd's own configuration, certificate, key and daemon ----------------------------- */

static void check_config(struct doctor *d) {
        _cleanup_free_ char *error = NULL;
        const char *path = arg_global.config_path ?: CONFIG_DEFAULT_FILE;
        int r;

        r = config_load(path, arg_global.config_path != NULL, arg_global.config_path ? NULL : CONFIG_DEFAULT_DROPIN_DIR,
                        &d->conf, &error);
        if (r < 0) {
                report(d, "configuration", VERDICT_FAIL, "correct the line named, then: modsignctl reload", "%s",
                       error ?: strerror(-r));
                return;
        }
        d->conf_ok = true;
        report(d, "configuration", VERDICT_OK, NULL, "%s read (key %s, certificate %s)", path, d->conf.private_key,
               d->conf.certificate);
}

static void check_certificate(struct doctor *d) {
        const ASN1_TIME *not_after;
        int days = 0, secs = 0, r;

        r = cert_load_file(d->conf.certificate, &d->cert);
        if (r < 0) {
                report(d, "certificate", VERDICT_FAIL, "modsignctl keygen (a new key and certificate), or set Certificate=",
                       "%s: %s", d->conf.certificate, r == -EBADMSG ? "not an X.509 certificate" : strerror(-r));
                return;
        }
        (void) cert_fingerprint_sha256(d->cert, d->fingerprint);
        not_after = X509_get0_notAfter(d->cert);
        if (!ASN1_TIME_diff(&days, &secs, NULL, not_after)) {
                report(d, "certificate", VERDICT_WARN, NULL, "%s: cannot read its expiry date", d->conf.certificate);
                return;
        }
        if (days < 0 || (days == 0 && secs < 0))
                report(d, "certificate", VERDICT_FAIL, "modsignctl rotate --generate (a new key, then re-sign)",
                       "%s expired %d days ago", d->conf.certificate, -days);
        else if (days < 30)
                report(d, "certificate", VERDICT_WARN, "modsignctl rotate --generate (a new key, then re-sign)",
                       "%s expires in %d days", d->conf.certificate, days);
        else
                report(d, "certificate", VERDICT_OK, NULL, "%s, SHA-256 %s, valid for %d more days", d->conf.certificate,
                       d->fingerprint, days);
}

static void check_key(struct doctor *d) {
        _cleanup_free_ char *error = NULL;
        struct signing_key *key = NULL;
        int r;

        r = signing_key_load(&d->conf, &key, &error);
        if (r < 0) {
                bool credential = strncmp(d->conf.private_key, "credential:", 11) == 0 && !getenv("CREDENTIALS_DIRECTORY");
                report(d, "key", credential ? VERDICT_INFO : VERDICT_FAIL,
                       credential ? NULL : "make the key root-owned, mode 0600, matching Certificate= (modsignctl keygen makes a pair)",
                       "%s", error ?: strerror(-r));
                return;
        }
        report(d, "key", VERDICT_OK, NULL, "%s loads and belongs to the certificate", d->conf.private_key);
        signing_key_unref(key);
}

static const char *json_str(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                                                                  : NULL;
}

static void check_daemon(struct doctor *d) {
        _cleanup_close_ int fd = -EBADF;
        json_object *o = NULL;
        const char *fp;
        int r, code;

        r = client_connect(arg_global.socket_path, &fd);
        if (r < 0) {
                report(d, "daemon", VERDICT_FAIL, "systemctl enable --now modsignd.socket modsignd.service",
                       "not reachable at %s: %s", arg_global.socket_path, strerror(-r));
                return;
        }
        fd = safe_close(fd);
        log_set_max_level(LOG_LEVEL_ERROR);
        code = daemon_request(PROTO_REQ_STATUS, NULL, NULL, STATUS_TIMEOUT_MS, &o);
        log_set_max_level(arg_global.quiet ? LOG_LEVEL_WARNING : LOG_LEVEL_NOTICE);
        if (code != EXIT_OK) {
                report(d, "daemon", VERDICT_FAIL, "journalctl -u modsignd; systemctl restart modsignd",
                       "%s accepts connections but does not answer STATUS", arg_global.socket_path);
                return;
        }
        fp = json_str(o, "key_fingerprint");
        if (d->cert && fp && !streq(fp, d->fingerprint))
                report(d, "daemon", VERDICT_FAIL, "modsignctl reload (or systemctl reload modsignd)",
                       "modsignd signs with certificate %s, not the configured %s", fp, d->fingerprint);
        else
                report(d, "daemon", VERDICT_OK, NULL, "modsignd %s answers on %s", json_str(o, "version") ?: "?",
                       arg_global.socket_path);
        json_object_put(o);
}

/* --- what DKMS will call ------------------------------------------------------------------- */

struct dkms_settings {
        char *value[4];
        char *source[4];
};
enum { DKMS_SIGN_FILE, DKMS_MOK_KEY, DKMS_MOK_CERT, DKMS_SIGN_TOOL };
static const char *const dkms_vars[] = { "sign_file", "mok_signing_key", "mok_certificate", "sign_tool" };

/* One line NAME=VALUE, VALUE bare or in single or double quotes (what DKMS's own files use). */
static void parse_assignment(struct dkms_settings *s, const char *file, char *line) {
        char *p = line, *eq, *v;
        size_t n;

        while (isspace((unsigned char) *p))
                p++;
        if (*p == '#' || !(eq = strchr(p, '=')))
                return;
        *eq = '\0';
        v = eq + 1;
        n = strcspn(v, "\n");
        v[n] = '\0';
        if ((*v == '"' || *v == '\'') && n >= 2 && v[n - 1] == *v) {
                v[n - 1] = '\0';
                v++;
        }
        for (size_t i = 0; i < ELEMENTSOF(dkms_vars); i++)
                if (streq(p, dkms_vars[i])) {
                        free(s->value[i]);
                        free(s->source[i]);
                        s->value[i] = strdup(v);
                        s->source[i] = strdup(file);
                }
}

static void read_dkms_file(struct dkms_settings *s, const char *path) {
        _cleanup_(fclosep) FILE *f = fopen(path, "re");
        char line[4096];

        if (!f)
                return;
        while (fgets(line, sizeof(line), f))
                parse_assignment(s, path, line);
}

static int sort_names(const struct dirent **a, const struct dirent **b) {
        return strcmp((*a)->d_name, (*b)->d_name);
}

static void read_dkms_settings(struct dkms_settings *s, const char *dir) {
        _cleanup_free_ char *main_conf = NULL, *dropins = NULL;
        struct dirent **names = NULL;
        int n;

        if (asprintf(&main_conf, "%s/framework.conf", dir) < 0 || asprintf(&dropins, "%s/framework.conf.d", dir) < 0)
                return;
        read_dkms_file(s, main_conf);
        n = scandir(dropins, &names, NULL, sort_names);
        for (int i = 0; i < n; i++) {
                size_t len = strlen(names[i]->d_name);
                _cleanup_free_ char *p = NULL;

                if (len > 5 && streq(names[i]->d_name + len - 5, ".conf") &&
                    asprintf(&p, "%s/%s", dropins, names[i]->d_name) >= 0)
                        read_dkms_file(s, p);
                free(names[i]);
        }
        free(names);
}

/* "dkms-3.0.10" -> 3000010; 0 when dkms is not there. */
static long dkms_version(void) {
        FILE *p = popen("dkms --version 2>/dev/null", "re");
        unsigned a = 0, b = 0, c = 0;
        char buf[128] = "";
        bool got;

        if (!p)
                return 0;
        got = fgets(buf, sizeof(buf), p) != NULL;
        (void) pclose(p);
        if (!got)
                return 0;
        if (sscanf(buf, "dkms-%u.%u.%u", &a, &b, &c) < 2 && sscanf(buf, "dkms: %u.%u.%u", &a, &b, &c) < 2)
                return 0;
        return (long) a * 1000000 + (long) b * 1000 + c;
}

static bool same_certificate(const char *path, const char *fingerprint) {
        _cleanup_(X509_freep) X509 *c = NULL;
        char fp[65];

        return cert_load_file(path, &c) >= 0 && cert_fingerprint_sha256(c, fp) >= 0 && streq(fp, fingerprint);
}

static void check_dkms(struct doctor *d) {
        const char *dir = getenv_or("MODSIGNCTL_DKMS_CONF_DIR", "/etc/dkms");
        const char *shim = getenv_or("MODSIGNCTL_DKMS_SHIM", MODSIGND_LIBDIR "/dkms-sign-file");
        const char *tool = getenv_or("MODSIGNCTL_DKMS_SIGN_TOOL", MODSIGND_LIBDIR "/dkms-sign-tool");
        struct dkms_settings s = {};
        struct stat st;
        long version;

        version = dkms_version();
        d->dkms_present = version > 0;
        if (!d->dkms_present) {
                report(d, "dkms", VERDICT_INFO, NULL, "dkms is not installed: the daemon's watch is the only path");
                return;
        }
        read_dkms_settings(&s, dir);

        if (version < 3000004) {
                /* DKMS 2.8 to 3.0.3: sign_tool, from framework.conf only. */
                if (s.value[DKMS_SIGN_TOOL] && streq(s.value[DKMS_SIGN_TOOL], tool))
                        report(d, "dkms", VERDICT_OK, NULL, "dkms %ld.%ld.%ld calls %s", version / 1000000,
                               version / 1000 % 1000, version % 1000, tool);
                else
                        report(d, "dkms", VERDICT_FAIL, "set sign_tool=\"" MODSIGND_LIBDIR "/dkms-sign-tool\" in /etc/dkms/framework.conf",
                               "this dkms (%ld.%ld.%ld) uses sign_tool, which is %s", version / 1000000, version / 1000 % 1000,
                               version % 1000, s.value[DKMS_SIGN_TOOL] ?: "not set: modules are not signed at build");
                goto out;
        }

        if (!s.value[DKMS_SIGN_FILE] || !streq(s.value[DKMS_SIGN_FILE], shim))
                report(d, "dkms", VERDICT_FAIL,
                       "install modsignd's drop-in: " SYSCONFDIR "/dkms/framework.conf.d/modsignd.conf (and remove the other setting)",
                       "DKMS will call %s%s%s, not modsignd's shim %s", s.value[DKMS_SIGN_FILE] ?: "its default sign-file",
                       s.source[DKMS_SIGN_FILE] ? ", set in " : "", s.source[DKMS_SIGN_FILE] ?: "", shim);
        else if (!s.value[DKMS_MOK_KEY] || !streq(s.value[DKMS_MOK_KEY], DKMS_DAEMON_KEY_REF))
                report(d, "dkms", VERDICT_FAIL, "remove the mok_signing_key line that overrides modsignd's drop-in",
                       "DKMS passes key %s%s%s: the shim then signs with that key, not modsignd's",
                       s.value[DKMS_MOK_KEY] ?: "/var/lib/dkms/mok.key (its default, generated when missing)",
                       s.source[DKMS_MOK_KEY] ? ", set in " : "", s.source[DKMS_MOK_KEY] ?: "");
        else if (!s.value[DKMS_MOK_CERT] || stat(s.value[DKMS_MOK_CERT], &st) < 0)
                report(d, "dkms", VERDICT_FAIL, "modsignctl keygen, or point Certificate= and mok_certificate= at one file",
                       "mok_certificate %s does not exist: DKMS skips signing without a word",
                       s.value[DKMS_MOK_CERT] ?: "(unset)");
        else if (d->cert && !same_certificate(s.value[DKMS_MOK_CERT], d->fingerprint))
                report(d, "dkms", VERDICT_WARN, "point mok_certificate= at modsignd's Certificate=",
                       "mok_certificate %s is not modsignd's certificate %s (DKMS only checks that it exists)",
                       s.value[DKMS_MOK_CERT], d->conf.certificate);
        else
                report(d, "dkms", VERDICT_OK, NULL, "dkms %ld.%ld.%ld calls %s (set in %s)", version / 1000000,
                       version / 1000 % 1000, version % 1000, shim, s.source[DKMS_SIGN_FILE]);

        if (stat("/var/lib/dkms/mok.key", &st) >= 0)
                report(d, "dkms-key", VERDICT_WARN,
                       "keep it only if the kernel trusts its certificate (mokutil --list-enrolled); else remove /var/lib/dkms/mok.key and mok.pub",
                       "/var/lib/dkms/mok.key exists: a key DKMS generated itself, not modsignd's");
out:
        for (size_t i = 0; i < ELEMENTSOF(s.value); i++) {
                free(s.value[i]);
                free(s.source[i]);
        }
}

/* --- the kernels --------------------------------------------------------------------------- */

static int read_small(const char *path, char *buf, size_t size) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return -errno;
        n = loop_read(fd, buf, size - 1);
        if (n < 0)
                return (int) n;
        buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        return 0;
}

/* The running kernel's stance, then whether it trusts our certificate (through enroll). */
static void check_kernel(struct doctor *d) {
        const char *lockdown_path = getenv_or("MODSIGNCTL_LOCKDOWN", "/sys/kernel/security/lockdown");
        const char *enforce_path = getenv_or("MODSIGNCTL_SIG_ENFORCE", "/sys/module/module/parameters/sig_enforce");
        char lockdown[128] = "", enforce[16] = "";
        _cleanup_free_ char *out = NULL;
        json_object *e = NULL, *v;
        bool trusted = false, lockdown_on;
        const char *mok_state = NULL;
        int secure_boot = -1;

        (void) read_small(lockdown_path, lockdown, sizeof(lockdown));
        (void) read_small(enforce_path, enforce, sizeof(enforce));
        lockdown_on = *lockdown && !strstr(lockdown, "[none]");

        if (d->cert) {
                /* enroll --dry-run knows how to read /proc/keys, the keyrings and mokutil. */
                const char *argv[] = { "/proc/self/exe", "--json", "enroll", "--dry-run", "--cert", d->conf.certificate, NULL };
                size_t len;
                int pfd[2], status = 0;
                pid_t pid;

                if (pipe2(pfd, O_CLOEXEC) >= 0) {
                        pid = fork();
                        if (pid == 0) {
                                (void) dup2(pfd[1], STDOUT_FILENO);
                                int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
                                if (devnull >= 0)
                                        (void) dup2(devnull, STDERR_FILENO);
                                execv(argv[0], (char **) argv);
                                _exit(127);
                        }
                        safe_close(pfd[1]);
                        if (pid > 0 && read_full_fd(pfd[0], 1 << 20, &out, &len) >= 0)
                                e = json_tokener_parse(out);
                        safe_close(pfd[0]);
                        if (pid > 0)
                                (void) waitpid(pid, &status, 0);
                }
        }
        if (e && json_object_object_get_ex(e, "trusted_now", &v))
                trusted = json_object_get_boolean(v);
        if (e && json_object_object_get_ex(e, "mok_state", &v) && json_object_is_type(v, json_type_string))
                mok_state = json_object_get_string(v);
        if (e && json_object_object_get_ex(e, "secure_boot", &v) && json_object_is_type(v, json_type_boolean))
                secure_boot = json_object_get_boolean(v);

        d->enforcing = secure_boot == 1 || lockdown_on || streq(enforce, "Y");
        report(d, "enforcement", VERDICT_INFO, NULL, "Secure Boot %s, lockdown %s, module.sig_enforce %s: %s",
               secure_boot < 0 ? "unknown (no EFI)" : secure_boot ? "on" : "off", *lockdown ? lockdown : "not available",
               *enforce ? enforce : "unknown",
               d->enforcing                ? "unsigned or untrusted modules are refused"
               : *enforce || *lockdown     ? "the kernel loads unsigned modules (and taints itself)"
                                           : "whether signatures are enforced is unknown");

        if (!d->cert)
                ; /* the certificate check said why */
        else if (!e)
                report(d, "kernel-trust", VERDICT_WARN, "modsignctl enroll", "cannot tell whether the kernel trusts %s",
                       d->conf.certificate);
        else if (trusted)
                report(d, "kernel-trust", VERDICT_OK, NULL, "the running kernel trusts %s", d->conf.certificate);
        else if (mok_state && (streq(mok_state, "pending") || streq(mok_state, "enrolled")))
                report(d, "kernel-trust", VERDICT_WARN, "reboot, and confirm the enrollment in MokManager",
                       "%s is %s as a Machine Owner Key, but the running kernel does not trust it yet",
                       d->conf.certificate, streq(mok_state, "pending") ? "queued for enrollment" : "enrolled");
        else
                report(d, "kernel-trust", d->enforcing ? VERDICT_FAIL : VERDICT_WARN,
                       "modsignctl enroll (then reboot and confirm in MokManager)",
                       "the running kernel does not trust %s: what it signs will %s", d->conf.certificate,
                       d->enforcing ? "not load" : "load only while signatures are not enforced");
        json_object_put(e);
}

static void check_hashes(struct doctor *d, struct dkms_modules *m) {
        for (size_t i = 0; i < m->n_kernels; i++) {
                _cleanup_free_ char *hash = NULL, *source = NULL;
                int r = kernel_module_sig_hash("/", m->kernels[i], &hash, &source);

                if (r < 0)
                        report(d, "hash", VERDICT_INFO, NULL, "kernel %s: CONFIG_MODULE_SIG_HASH unknown (no configuration found)",
                               m->kernels[i]);
                else if (!streq(d->conf.hash, "auto") && !streq(d->conf.hash, hash))
                        report(d, "hash", VERDICT_WARN, "set Hash=auto in [Signing]",
                               "kernel %s expects %s (%s), modsignd is set to %s", m->kernels[i], hash, source, d->conf.hash);
                else
                        report(d, "hash", VERDICT_OK, NULL, "kernel %s: %s (%s)", m->kernels[i], hash, source);
        }
}

static void check_modules(struct doctor *d, struct dkms_modules *m) {
        size_t bad;

        if (!d->cert)
                return;
        m->trusted = sk_X509_new_null();
        if (!m->trusted || !X509_up_ref(d->cert) || !sk_X509_push(m->trusted, d->cert))
                return (void) log_oom();
        if (dkms_modules_collect(m) < 0)
                return;
        dkms_modules_check(m);
        bad = dkms_modules_not_ours(m);
        if (bad == 0) {
                report(d, "dkms-modules", VERDICT_OK, NULL, "%zu DKMS module file(s), all signed by modsignd's key", m->n);
                return;
        }
        for (size_t i = 0; i < m->n; i++)
                if (m->items[i].state != DKMS_MODULE_OURS)
                        report(d, "dkms-modules", VERDICT_FAIL, "modsignctl dkms-check --sign", "%s: %s", m->items[i].path,
                               dkms_module_state_names[m->items[i].state]);
}

static void help(void) {
        printf("Usage: modsignctl doctor [--json] [--modules-dir DIR] [--dkms-tree DIR]\n"
               "\n"
               "Check the chain from a DKMS build to a module the kernel loads, and say what\n"
               "is wrong and the command that fixes it: the configuration, certificate and key,\n"
               "the daemon, what DKMS will call, the hash each kernel expects, whether the\n"
               "running kernel trusts the certificate and enforces signatures, and the DKMS\n"
               "modules that are not signed right now.\n"
               "\n"
               "     --modules-dir DIR  default /lib/modules\n"
               "     --dkms-tree DIR    default /var/lib/dkms\n"
               "\n"
               "Exit status: 0 nothing failed (warnings allowed), 1 a check failed.\n");
}

int cmd_doctor(int argc, char *argv[]) {
        enum { ARG_MODULES_DIR = 0x100, ARG_DKMS_TREE };
        static const struct option options[] = {
                { "modules-dir", required_argument, NULL, ARG_MODULES_DIR },
                { "dkms-tree", required_argument, NULL, ARG_DKMS_TREE },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        char *kernels[DKMS_MODULES_MAX_KERNELS] = {};
        struct doctor d = { .checks = json_object_new_array() };
        struct dkms_modules m = { .modules_dir = "/lib/modules", .dkms_tree = "/var/lib/dkms", .kernels = kernels };
        int c;

        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
                switch (c) {
                case ARG_MODULES_DIR:
                        m.modules_dir = optarg;
                        break;
                case ARG_DKMS_TREE:
                        m.dkms_tree = optarg;
                        break;
                case 'h':
                        help();
                        json_object_put(d.checks);
                        return EXIT_OK;
                default:
                        json_object_put(d.checks);
                        return EXIT_USAGE;
                }
        if (optind < argc) {
                log_error("doctor: unexpected argument '%s'", argv[optind]);
                json_object_put(d.checks);
                return EXIT_USAGE;
        }

        check_config(&d);
        if (d.conf_ok) {
                if (!arg_global.socket_given)
                        arg_global.socket_path = d.conf.socket_path;
                check_certificate(&d);
                check_key(&d);
                check_daemon(&d);
                check_dkms(&d);
                check_kernel(&d);
                if (dkms_modules_list_kernels(&m) >= 0) {
                        check_hashes(&d, &m);
                        check_modules(&d, &m);
                }
        }

        if (arg_global.json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "healthy", json_object_new_boolean(d.n_fail == 0));
                json_object_object_add(o, "failures", json_object_new_int((int) d.n_fail));
                json_object_object_add(o, "warnings", json_object_new_int((int) d.n_warn));
                json_object_object_add(o, "checks", json_object_get(d.checks));
                printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
                json_object_put(o);
        } else if (!arg_global.quiet)
                printf("\n%s: %u failed, %u warning(s)\n", d.n_fail ? "unhealthy" : "healthy", d.n_fail, d.n_warn);

        dkms_modules_done(&m);
        for (size_t i = 0; i < m.n_kernels; i++)
                free(kernels[i]);
        sk_X509_pop_free(m.trusted, X509_free);
        X509_free(d.cert);
        config_done(&d.conf);
        json_object_put(d.checks);
        return d.n_fail ? EXIT_ERROR : EXIT_OK;
}
