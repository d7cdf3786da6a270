/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* modsignctl report: for every installed kernel, the state of its out-of-tree modules (signed
 * by our key, by another trusted key, unsigned, bad, revoked), how many of our signatures the
 * policy gate recorded (coverage) and how many it did not (escapes); the debt of the signing
 * certificate and key. Text for people, JSON, or the Prometheus text format for node_exporter's
 * textfile collector. One model (JSON) is built; the three outputs are renderings of it. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "conf.h"
#include "io-util.h"
#include "key-backend.h"
#include "key.h"
#include "keyring.h"
#include "log.h"
#include "macro.h"
#include "modsignctl.h"
#include "openssl-util.h"
#include "policy.h"
#include "report.h"

#define DEFAULT_MODULES_DIR "/lib/modules"
#define DEFAULT_WARN_DAYS 30

static void help(void) {
        printf("Usage: modsignctl report [OPTIONS]\n"
               "\n"
               "Report, for every kernel under /lib/modules, the signature state of its out-of-tree\n"
               "modules (updates/, extra/, misc/), the policy gate's coverage of our signatures and\n"
               "the escapes (signed by our key without an audit record), and the debt of the\n"
               "signing certificate and key, each with its fix.\n"
               "\n"
               "  -c --cert FILE          our certificate (repeatable; default: Certificate=)\n"
               "  -k --key REF            our private key, for its file's owner and mode\n"
               "                          (default: PrivateKey=)\n"
               "  -t --trusted PATH       another trusted certificate, bundle or directory\n"
               "                          (repeatable), such as the distribution's\n"
               "     --revoked FILE       revoked keys: SHA-256 fingerprints, serial numbers or key\n"
               "                          ids in hex, one a line\n"
               "     --blocklist FILE     blocklisted keys, the same format\n"
               "     --audit FILE         the audit log (default: STATE_DIRECTORY/audit.jsonl)\n"
               "     --modules-dir DIR    where the kernels' modules are (default %s)\n"
               "     --kernel KVER        only this kernel (repeatable)\n"
               "     --expiry-warn-days N certificate expiry warning (default %d)\n"
               "     --max-debt N         debt items allowed before exit status %d (default 0)\n"
               "     --max-escapes N      escapes allowed before exit status %d (default 0)\n"
               "     --config FILE        configuration (default %s)\n"
               "  -j --json               JSON\n"
               "  -p --prometheus         Prometheus text format (node_exporter textfile collector)\n"
               "  -h --help               show this help\n"
               "\n"
               "Exit status: 0 within the thresholds, %d more debt items or escapes than allowed,\n"
               "1 error, 2 usage. The report is printed in full in either case.\n",
               DEFAULT_MODULES_DIR, DEFAULT_WARN_DAYS, EXIT_REPORT_THRESHOLD, EXIT_REPORT_THRESHOLD,
               CONFIG_DEFAULT_FILE, EXIT_REPORT_THRESHOLD);
}

/* --- the model ------------------------------------------------------------------------------- */

static json_object *jstr(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

static void counts_to_json(json_object *o, unsigned total, const unsigned n[_MODULE_STATE_MAX], unsigned escaped,
                           unsigned covered, unsigned invalid) {
        json_object_object_add(o, "out_of_tree", json_object_new_int64(total));
        for (int s = 0; s < _MODULE_STATE_MAX; s++)
                json_object_object_add(o, module_state_to_string(s), json_object_new_int64(n[s]));
        json_object_object_add(o, "escaped", json_object_new_int64(escaped));
        json_object_object_add(o, "covered", json_object_new_int64(covered));
        json_object_object_add(o, "invalid", json_object_new_int64(invalid));
        /* No signature of ours at all: nothing escaped the gate. */
        json_object_object_add(o, "policy_gate_coverage_ratio",
                               json_object_new_double(n[MODULE_STATE_SIGNED_OURS] ? (double) covered / n[MODULE_STATE_SIGNED_OURS] : 1.0));
}

static void on_module(const char *kernel, const char *relpath, const struct module_verdict *v, int error,
                      const char *why, void *userdata) {
        json_object *modules = userdata, *o = json_object_new_object();

        (void) kernel;
        json_object_object_add(o, "path", jstr(relpath));
        if (!v) {
                json_object_object_add(o, "state", jstr("invalid"));
                json_object_object_add(o, "why", jstr(why ?: strerror(-error)));
        } else {
                json_object_object_add(o, "state", jstr(module_state_to_string(v->state)));
                json_object_object_add(o, "escaped", json_object_new_boolean(v->escaped));
                if (v->signer)
                        json_object_object_add(o, "signer", jstr(v->signer));
                if (v->sha256[0])
                        json_object_object_add(o, "sha256", jstr(v->sha256));
                if (v->why)
                        json_object_object_add(o, "why", jstr(v->why));
        }
        json_object_array_add(modules, o);
}

/* Which trusted keyrings of the running kernel hold cert's key; the same reading as
 * `modsignctl enroll` (MODSIGNCTL_PROC_KEYS and MODSIGNCTL_KEYRING_DIR stand in for the kernel
 * in tests). 1 trusted, 0 not, < 0 unknown (no /proc/keys). */
static int kernel_trusts(X509 *cert, json_object *keyrings) {
        struct kernel_cert_trust t;
        int r;

        r = kernel_cert_trust(cert, getenv_or("MODSIGNCTL_PROC_KEYS", "/proc/keys"), getenv_or("MODSIGNCTL_KEYRING_DIR", NULL), &t);
        if (r < 0)
                return r;
        for (size_t i = 0; i < t.n_keyrings; i++)
                for (size_t k = 0; k < kernel_module_keyrings_n; k++)
                        if (streq(t.keyrings[i], kernel_module_keyrings[k]))
                                json_object_array_add(keyrings, jstr(t.keyrings[i]));
        return t.trusted;
}

static int check_cert(const char *path, X509 *cert, unsigned warn_days, const struct hexid_set *revoked,
                      const struct hexid_set *blocked, struct debt_list *debt, json_object **ret) {
        struct cert_facts f = {};
        size_t before = debt->n;
        json_object *o, *rings;
        char when[32];
        struct tm tm;
        int r, t;

        r = cert_check_hygiene(cert, path, time(NULL), warn_days, revoked, blocked, &f, debt);
        if (r < 0)
                return log_error_errno(r, "%s: cannot read the certificate: %m", path);
        rings = json_object_new_array();
        t = kernel_trusts(cert, rings);
        if (t == 0) {
                _cleanup_free_ char *fix = NULL;
                if (asprintf(&fix, "modsignctl enroll --cert %s (then reboot to confirm the MOK enrolment)", path) < 0)
                        fix = NULL;
                (void) debt_add(debt, "not-trusted-by-kernel", path,
                                "the running kernel does not trust the certificate: modules signed with it do not load "
                                "where signatures are enforced",
                                fix ?: "modsignctl enroll");
        } else if (t < 0)
                log_warning("%s: cannot tell whether the running kernel trusts it (%s)", path, strerror(-t));

        o = json_object_new_object();
        json_object_object_add(o, "path", jstr(path));
        json_object_object_add(o, "subject", jstr(f.subject));
        json_object_object_add(o, "fingerprint", jstr(f.fingerprint));
        json_object_object_add(o, "serial", jstr(f.serial));
        json_object_object_add(o, "key_type", jstr(f.key_type));
        json_object_object_add(o, "key_bits", json_object_new_int(f.key_bits));
        json_object_object_add(o, "signature_hash", jstr(f.signature_hash));
        if (gmtime_r(&f.not_after, &tm) && strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm))
                json_object_object_add(o, "not_after", jstr(when));
        json_object_object_add(o, "not_after_timestamp", json_object_new_int64((int64_t) f.not_after));
        json_object_object_add(o, "expiry_seconds", json_object_new_int64(f.expiry_seconds));
        /* Whole days, rounded towards minus infinity: -1 is "expired within the last day". */
        json_object_object_add(o, "expiry_days",
                               json_object_new_int64(f.expiry_seconds >= 0 ? f.expiry_seconds / 86400
                                                                           : -((-f.expiry_seconds + 86399) / 86400)));
        json_object_object_add(o, "key_usage_ok", json_object_new_boolean(f.key_usage_ok));
        json_object_object_add(o, "extended_key_usage_ok", json_object_new_boolean(f.ext_key_usage_ok));
        json_object_object_add(o, "trusted_by_kernel", t < 0 ? NULL : json_object_new_boolean(t > 0));
        json_object_object_add(o, "kernel_keyrings", rings);
        json_object_object_add(o, "debt_items", json_object_new_int64((int64_t) (debt->n - before)));
        cert_facts_done(&f);
        *ret = o;
        return 0;
}

/* The private key's file: root's, mode 0600 or 0400, not a symlink (the daemon refuses a key
 * that is not; the report says so before a restart finds out). */
static json_object *check_key_file(const char *ref, struct debt_list *debt) {
        struct key_ref kr = {};
        _cleanup_free_ char *fix = NULL;
        json_object *o;
        struct stat st;

        if (key_ref_parse(ref, &kr, NULL) < 0 || kr.backend != KEY_BACKEND_FILE || kr.credential) {
                key_ref_done(&kr);
                return NULL; /* a token, a TPM or a credential: no file of ours to check */
        }
        o = json_object_new_object();
        json_object_object_add(o, "path", jstr(kr.target));
        if (lstat(kr.target, &st) < 0) {
                (void) debt_add(debt, "key-file-missing", kr.target, "the private key file cannot be read",
                                "make the key with modsignctl keygen, or point PrivateKey= at it");
                json_object_object_add(o, "error", jstr(strerror(errno)));
        } else if (S_ISLNK(st.st_mode)) {
                (void) debt_add(debt, "key-file-symlink", kr.target, "the private key path is a symbolic link (refused)",
                                "point PrivateKey= at the file itself");
        } else {
                json_object_object_add(o, "owner_uid", json_object_new_int64((int64_t) st.st_uid));
                char mode[8];
                snprintf(mode, sizeof(mode), "%04o", (unsigned) (st.st_mode & 07777));
                json_object_object_add(o, "mode", jstr(mode));
                if (st.st_uid != 0) {
                        if (asprintf(&fix, "chown root:root %s", kr.target) < 0)
                                fix = NULL;
                        (void) debt_add(debt, "key-file-owner", kr.target, "the private key file is not owned by root",
                                        fix ?: "chown root:root KEY");
                        free(fix);
                        fix = NULL;
                }
                if ((st.st_mode & 07777) != 0600 && (st.st_mode & 07777) != 0400) {
                        _cleanup_free_ char *msg = NULL;
                        if (asprintf(&fix, "chmod 0600 %s", kr.target) < 0)
                                fix = NULL;
                        if (asprintf(&msg, "the private key file has mode %s (must be 0600 or 0400)", mode) < 0)
                                msg = NULL;
                        (void) debt_add(debt, "key-file-mode", kr.target, msg ?: "the private key file's mode is loose",
                                        fix ?: "chmod 0600 KEY");
                }
        }
        key_ref_done(&kr);
        return o;
}

/* --- text ------------------------------------------------------------------------------------ */

static int64_t geti(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static double getd(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) ? json_object_get_double(v) : 0;
}

static const char *gets(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                                                                  : NULL;
}

static json_object *geto(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static void print_text(json_object *m) {
        json_object *kernels = geto(m, "kernels"), *certs = geto(m, "certificates"), *debt = geto(m, "debt");
        json_object *totals = geto(m, "totals"), *key = geto(m, "key_file");

        for (size_t i = 0; i < json_object_array_length(kernels); i++) {
                json_object *k = json_object_array_get_idx(kernels, i), *mods = geto(k, "modules");
                bool header = false;

                printf("Kernel %s: %" PRId64 " out-of-tree module%s\n", gets(k, "release"), geti(k, "out_of_tree"),
                       geti(k, "out_of_tree") == 1 ? "" : "s");
                printf("  signed by our key      %4" PRId64 "  (%" PRId64 " in the audit log, %" PRId64 " escaped)\n",
                       geti(k, "signed_ours"), geti(k, "covered"), geti(k, "escaped"));
                printf("  signed by another key  %4" PRId64 "\n", geti(k, "signed_other"));
                printf("  untrusted signer       %4" PRId64 "\n", geti(k, "untrusted"));
                printf("  unsigned               %4" PRId64 "\n", geti(k, "unsigned"));
                printf("  bad signature          %4" PRId64 "\n", geti(k, "bad"));
                printf("  revoked/blocked key    %4" PRId64 "\n", geti(k, "revoked"));
                if (geti(k, "invalid"))
                        printf("  not modules/unreadable %4" PRId64 "\n", geti(k, "invalid"));
                for (size_t j = 0; j < json_object_array_length(mods); j++) {
                        json_object *mod = json_object_array_get_idx(mods, j), *esc = geto(mod, "escaped");
                        const char *state = gets(mod, "state"), *why = gets(mod, "why");
                        bool escaped = esc && json_object_get_boolean(esc);

                        if (streq(state, "signed_ours") && !escaped)
                                continue;
                        if (streq(state, "signed_other"))
                                continue;
                        if (!header) {
                                printf("  needs attention:\n");
                                header = true;
                        }
                        if (escaped)
                                printf("    %s: ESCAPE: signed by our key, but no audit record has its SHA-256\n",
                                       gets(mod, "path"));
                        else
                                printf("    %s: %s%s%s%s%s\n", gets(mod, "path"), state, why ? ": " : "", why ?: "",
                                       gets(mod, "signer") ? ", signer " : "", gets(mod, "signer") ?: "");
                }
                printf("\n");
        }
        if (json_object_array_length(kernels) == 0)
                printf("No kernels under %s.\n\n", gets(m, "modules_dir"));

        printf("Policy-gate coverage: %.1f%% (%" PRId64 " of %" PRId64 " modules signed by our key have an audit record); "
               "escapes: %" PRId64 "\n",
               100.0 * getd(m, "policy_gate_coverage_ratio"), geti(totals, "covered"), geti(totals, "signed_ours"),
               geti(m, "escapes"));
        printf("Audit log: %s\n\n", gets(m, "audit_log") ?: "(none)");

        for (size_t i = 0; i < json_object_array_length(certs); i++) {
                json_object *c = json_object_array_get_idx(certs, i), *t = geto(c, "trusted_by_kernel");
                printf("Certificate %s\n"
                       "  subject   %s\n"
                       "  SHA-256   %s\n"
                       "  key       %s %" PRId64 " bits, certificate signed with %s\n"
                       "  expires   %s (%" PRId64 " days)\n"
                       "  kernel    %s\n\n",
                       gets(c, "path"), gets(c, "subject") ?: "?", gets(c, "fingerprint") ?: "?", gets(c, "key_type") ?: "?",
                       geti(c, "key_bits"), gets(c, "signature_hash") ?: "?", gets(c, "not_after") ?: "?",
                       geti(c, "expiry_days"),
                       !t ? "unknown (cannot read /proc/keys)" : json_object_get_boolean(t) ? "trusted" : "NOT trusted");
        }
        if (key)
                printf("Key file %s: owner %" PRId64 ", mode %s\n\n", gets(key, "path"), geti(key, "owner_uid"),
                       gets(key, "mode") ?: "?");

        if (json_object_array_length(debt) == 0)
                printf("Debt: none\n");
        else {
                printf("Debt: %zu item%s\n", json_object_array_length(debt), json_object_array_length(debt) == 1 ? "" : "s");
                for (size_t i = 0; i < json_object_array_length(debt); i++) {
                        json_object *d = json_object_array_get_idx(debt, i);
                        printf("  [%s] %s: %s\n      fix: %s\n", gets(d, "id"), gets(d, "subject"), gets(d, "message"),
                               gets(d, "fix"));
                }
        }
        json_object *th = geto(m, "thresholds");
        printf("\n%s: %" PRId64 " debt item%s (allowed %" PRId64 "), %" PRId64 " escape%s (allowed %" PRId64 ")\n",
               json_object_get_boolean(geto(m, "exceeded")) ? "FAILED" : "OK", geti(m, "debt_items"),
               geti(m, "debt_items") == 1 ? "" : "s", geti(th, "max_debt"), geti(m, "escapes"),
               geti(m, "escapes") == 1 ? "" : "s", geti(th, "max_escapes"));
}

/* --- Prometheus ------------------------------------------------------------------------------ */

/* A label value: backslash, double quote and newline escaped (the text format's rules). */
static void label(FILE *f, const char *s) {
        fputc('"', f);
        for (; s && *s; s++) {
                if (*s == '\\' || *s == '"')
                        fprintf(f, "\\%c", *s);
                else if (*s == '\n')
                        fputs("\\n", f);
                else
                        fputc(*s, f);
        }
        fputc('"', f);
}

static void metric_head(FILE *f, const char *name, const char *help_text) {
        fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", name, help_text, name);
}

static void cert_metric(FILE *f, json_object *certs, const char *name, const char *help_text, const char *key, bool boolean) {
        metric_head(f, name, help_text);
        for (size_t i = 0; i < json_object_array_length(certs); i++) {
                json_object *c = json_object_array_get_idx(certs, i), *v = geto(c, key);
                if (!v)
                        continue;
                fprintf(f, "%s{certificate=", name);
                label(f, gets(c, "path"));
                fputs(",fingerprint=", f);
                label(f, gets(c, "fingerprint"));
                if (boolean)
                        fprintf(f, "} %d\n", json_object_get_boolean(v) ? 1 : 0);
                else
                        fprintf(f, "} %" PRId64 "\n", json_object_get_int64(v));
        }
}

static void print_prometheus(json_object *m) {
        static const char *const states[] = { "signed_ours", "signed_other", "untrusted", "unsigned", "bad", "revoked", "escaped" };
        json_object *kernels = geto(m, "kernels"), *certs = geto(m, "certificates");
        FILE *f = stdout;

        metric_head(f, "modsignd_modules",
                    "Out-of-tree kernel modules (updates/, extra/, misc/) by signature state; escaped (signed by our key "
                    "without an audit record) is a subset of signed_ours.");
        for (size_t i = 0; i < json_object_array_length(kernels); i++) {
                json_object *k = json_object_array_get_idx(kernels, i);
                for (size_t s = 0; s < ELEMENTSOF(states); s++) {
                        fputs("modsignd_modules{kernel=", f);
                        label(f, gets(k, "release"));
                        fprintf(f, ",state=\"%s\"} %" PRId64 "\n", states[s], geti(k, states[s]));
                }
        }
        metric_head(f, "modsignd_out_of_tree_modules", "Out-of-tree kernel modules installed, per kernel.");
        for (size_t i = 0; i < json_object_array_length(kernels); i++) {
                json_object *k = json_object_array_get_idx(kernels, i);
                fputs("modsignd_out_of_tree_modules{kernel=", f);
                label(f, gets(k, "release"));
                fprintf(f, "} %" PRId64 "\n", geti(k, "out_of_tree"));
        }
        metric_head(f, "modsignd_policy_gate_coverage_ratio",
                    "Modules signed by our key that have a matching audit record, over all modules signed by our key (1 "
                    "when there are none).");
        fprintf(f, "modsignd_policy_gate_coverage_ratio %.6g\n", getd(m, "policy_gate_coverage_ratio"));
        metric_head(f, "modsignd_escapes", "Modules signed by our key whose SHA-256 no audit record has.");
        fprintf(f, "modsignd_escapes %" PRId64 "\n", geti(m, "escapes"));
        cert_metric(f, certs, "modsignd_certificate_expiry_seconds",
                    "Seconds until the signing certificate's notAfter (negative when expired).", "expiry_seconds", false);
        cert_metric(f, certs, "modsignd_certificate_not_after_timestamp_seconds",
                    "The signing certificate's notAfter, as a Unix time.", "not_after_timestamp", false);
        /* No key size metric: promtool wants sizes in bytes, and a weak key is debt anyway. */
        cert_metric(f, certs, "modsignd_certificate_trusted_by_kernel",
                    "1 when the running kernel trusts the certificate for modules, 0 when not.", "trusted_by_kernel", true);
        cert_metric(f, certs, "modsignd_certificate_debt_items", "Debt items of the signing certificate.", "debt_items", false);
        metric_head(f, "modsignd_debt_items", "Debt items in all: certificates and the private key file.");
        fprintf(f, "modsignd_debt_items %" PRId64 "\n", geti(m, "debt_items"));
}

/* --- the command ----------------------------------------------------------------------------- */

static int parse_unsigned(const char *s, const char *opt, unsigned *ret) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || end == s || *end || s[0] == '-' || v > 1000000000UL) {
                log_error("report: %s takes a number, not '%s'", opt, s);
                return -EINVAL;
        }
        *ret = (unsigned) v;
        return 0;
}

static int load_ids(const char *path, const char *what, struct hexid_set *set) {
        unsigned line = 0;
        int r = hexid_set_load_file(path, set, &line);

        if (r == -EINVAL && line > 0)
                return log_error_errno(r, "%s:%u: not a fingerprint, serial number or key id in hex (%s list)", path, line,
                                       what);
        if (r < 0)
                return log_error_errno(r, "%s: cannot read the %s list: %m", path, what);
        return 0;
}

int cmd_report(int argc, char *argv[]) {
        enum {
                ARG_REVOKED = 0x100, ARG_BLOCKLIST, ARG_AUDIT, ARG_MODULES_DIR, ARG_KERNEL, ARG_WARN_DAYS, ARG_MAX_DEBT,
                ARG_MAX_ESCAPES, ARG_CONFIG,
        };
        static const struct option options[] = {
                { "cert", required_argument, NULL, 'c' },
                { "key", required_argument, NULL, 'k' },
                { "trusted", required_argument, NULL, 't' },
                { "revoked", required_argument, NULL, ARG_REVOKED },
                { "blocklist", required_argument, NULL, ARG_BLOCKLIST },
                { "audit", required_argument, NULL, ARG_AUDIT },
                { "modules-dir", required_argument, NULL, ARG_MODULES_DIR },
                { "kernel", required_argument, NULL, ARG_KERNEL },
                { "expiry-warn-days", required_argument, NULL, ARG_WARN_DAYS },
                { "max-debt", required_argument, NULL, ARG_MAX_DEBT },
                { "max-escapes", required_argument, NULL, ARG_MAX_ESCAPES },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "json", no_argument, NULL, 'j' },
                { "prometheus", no_argument, NULL, 'p' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *ours = sk_X509_new_null();
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *others = sk_X509_new_null();
        _cleanup_(hexid_set_done) struct hexid_set revoked = {}, blocked = {};
        _cleanup_(audit_digests_done) struct audit_digests audit = {};
        _cleanup_(debt_list_done) struct debt_list debt = {};
        _cleanup_(config_done) struct config cfg = {};
        _cleanup_free_ const char **certs = NULL, **kernels_arg = NULL;
        _cleanup_free_ char *audit_path = NULL;
        _cleanup_close_ int mfd = -EBADF;
        const char *key_ref = NULL, *audit_arg = NULL, *modules_dir = DEFAULT_MODULES_DIR, *config_path = arg_global.config_path;
        unsigned warn_days = DEFAULT_WARN_DAYS, max_debt = 0, max_escapes = 0;
        size_t n_certs = 0, n_kernels_arg = 0;
        bool prometheus = false, json = arg_global.json;
        json_object *m, *jk, *jc;
        unsigned t_total = 0, t_n[_MODULE_STATE_MAX] = {}, t_esc = 0, t_cov = 0, t_inv = 0;
        char **kernels = NULL;
        size_t n_kernels = 0;
        int c, r, code = EXIT_OK;

        if (!ours || !others)
                return log_oom(), EXIT_ERROR;

        while ((c = getopt_long(argc, argv, "c:k:t:jph", options, NULL)) >= 0)
                switch (c) {
                case 'c': {
                        const char **n = reallocarray(certs, n_certs + 1, sizeof(char *));
                        if (!n)
                                return log_oom(), EXIT_ERROR;
                        certs = n;
                        certs[n_certs++] = optarg;
                        break;
                }
                case 'k':
                        key_ref = optarg;
                        break;
                case 't':
                        r = certs_load_path(optarg, others);
                        if (r <= 0) {
                                log_error_errno(r, "%s: no trusted certificate can be read there: %s", optarg,
                                                r == 0 || r == -ENOENT ? "none found" : strerror(-r));
                                return EXIT_ERROR;
                        }
                        break;
                case ARG_REVOKED:
                        if (load_ids(optarg, "revoked", &revoked) < 0)
                                return EXIT_ERROR;
                        break;
                case ARG_BLOCKLIST:
                        if (load_ids(optarg, "blocklist", &blocked) < 0)
                                return EXIT_ERROR;
                        break;
                case ARG_AUDIT:
                        audit_arg = optarg;
                        break;
                case ARG_MODULES_DIR:
                        modules_dir = optarg;
                        break;
                case ARG_KERNEL: {
                        const char **n = reallocarray(kernels_arg, n_kernels_arg + 1, sizeof(char *));
                        if (!n)
                                return log_oom(), EXIT_ERROR;
                        kernels_arg = n;
                        kernels_arg[n_kernels_arg++] = optarg;
                        break;
                }
                case ARG_WARN_DAYS:
                        if (parse_unsigned(optarg, "--expiry-warn-days", &warn_days) < 0)
                                return EXIT_USAGE;
                        break;
                case ARG_MAX_DEBT:
                        if (parse_unsigned(optarg, "--max-debt", &max_debt) < 0)
                                return EXIT_USAGE;
                        break;
                case ARG_MAX_ESCAPES:
                        if (parse_unsigned(optarg, "--max-escapes", &max_escapes) < 0)
                                return EXIT_USAGE;
                        break;
                case ARG_CONFIG:
                        config_path = optarg;
                        break;
                case 'j':
                        json = true;
                        break;
                case 'p':
                        prometheus = true;
                        break;
                case 'h':
                        help();
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        if (optind < argc) {
                log_error("report: unexpected argument '%s'", argv[optind]);
                return EXIT_USAGE;
        }
        if (json && prometheus) {
                log_error("report: --json and --prometheus exclude each other");
                return EXIT_USAGE;
        }

        {
                _cleanup_free_ char *error = NULL;
                r = config_load(config_path ?: CONFIG_DEFAULT_FILE, !!config_path, config_path ? NULL : CONFIG_DEFAULT_DROPIN_DIR,
                                &cfg, &error);
                if (r < 0) {
                        log_error("%s", error ?: "cannot load the configuration");
                        return EXIT_ERROR;
                }
        }
        /* [Policy] RevokedCertificates= (fingerprints or serials, or files of them) joins
         * --revoked: a key the gate refuses to sign with is revoked here too. (Blocklist= lists
         * modules, not keys: the gate's business, not a key state.) */
        {
                _cleanup_free_ char *error = NULL;
                struct policy pol = {};

                r = policy_load(&cfg, &pol, &error);
                if (r < 0) {
                        log_error("%s", error ?: "cannot load [Policy]");
                        return EXIT_ERROR;
                }
                for (size_t i = 0; i < pol.n_revoked && r >= 0; i++)
                        r = hexid_set_parse(pol.revoked[i], &revoked, NULL);
                policy_done(&pol);
                if (r < 0) {
                        log_error_errno(r, "[Policy] RevokedCertificates=: %m");
                        return EXIT_ERROR;
                }
        }
        if (n_certs == 0) {
                certs = calloc(1, sizeof(char *));
                if (!certs)
                        return log_oom(), EXIT_ERROR;
                certs[n_certs++] = cfg.certificate;
        }
        if (!key_ref)
                key_ref = cfg.private_key;

        m = json_object_new_object();
        json_object_object_add(m, "modules_dir", jstr(modules_dir));

        /* Our certificates, and their debt. */
        jc = json_object_new_array();
        json_object_object_add(m, "certificates", jc);
        for (size_t i = 0; i < n_certs; i++) {
                _cleanup_(X509_freep) X509 *cert = NULL;
                json_object *o = NULL;

                r = cert_load_file(certs[i], &cert);
                if (r < 0) {
                        log_error_errno(r, "%s: cannot load the certificate: %s", certs[i],
                                        r == -EBADMSG ? "not a PEM or DER X.509 certificate" : strerror(-r));
                        json_object_put(m);
                        return EXIT_ERROR;
                }
                if (check_cert(certs[i], cert, warn_days, &revoked, &blocked, &debt, &o) < 0) {
                        json_object_put(m);
                        return EXIT_ERROR;
                }
                json_object_array_add(jc, o);
                if (!sk_X509_push(ours, cert)) {
                        json_object_put(m);
                        return log_oom(), EXIT_ERROR;
                }
                cert = NULL;
        }
        json_object_object_add(m, "key_file", key_ref ? check_key_file(key_ref, &debt) : NULL);

        /* The audit log's signatures. */
        if (audit_arg)
                audit_path = strdup(audit_arg);
        else {
                const char *e = getenv(AUDIT_STATE_DIR_ENV);
                if (asprintf(&audit_path, "%s/%s", e && *e ? e : cfg.state_directory, AUDIT_LOG_FILE) < 0)
                        audit_path = NULL;
        }
        if (!audit_path) {
                json_object_put(m);
                return log_oom(), EXIT_ERROR;
        }
        {
                _cleanup_close_ int afd = open(audit_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (afd < 0 && (errno != ENOENT || audit_arg)) {
                        log_error_errno(negative_errno(), "%s: cannot open the audit log: %m", audit_path);
                        json_object_put(m);
                        return EXIT_ERROR;
                }
                if (afd < 0)
                        log_warning("%s: no audit log; every module signed by our key counts as an escape", audit_path);
                else if ((r = audit_digests_load_fd(afd, &audit)) < 0) {
                        log_error_errno(r, "%s: cannot read the audit log: %m", audit_path);
                        json_object_put(m);
                        return EXIT_ERROR;
                }
                json_object_object_add(m, "audit_log", afd >= 0 ? jstr(audit_path) : NULL);
                json_object_object_add(m, "audit_signatures", json_object_new_int64((int64_t) audit.n));
        }

        /* Every kernel's modules. */
        mfd = open(modules_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (mfd < 0) {
                log_error_errno(negative_errno(), "%s: %m", modules_dir);
                json_object_put(m);
                return EXIT_ERROR;
        }
        if (n_kernels_arg == 0) {
                r = report_list_kernels(mfd, &kernels, &n_kernels);
                if (r < 0) {
                        log_error_errno(r, "%s: cannot list the kernels: %m", modules_dir);
                        json_object_put(m);
                        return EXIT_ERROR;
                }
        }
        struct module_trust trust = { .ours = ours, .others = others, .revoked = &revoked, .blocked = &blocked };
        jk = json_object_new_array();
        json_object_object_add(m, "kernels", jk);
        for (size_t i = 0; i < (n_kernels_arg ? n_kernels_arg : n_kernels); i++) {
                const char *release = n_kernels_arg ? kernels_arg[i] : kernels[i];
                struct kernel_report k = {};
                json_object *o = json_object_new_object(), *mods = json_object_new_array();

                r = report_scan_kernel(mfd, release, &trust, &audit, on_module, mods, &k);
                if (r < 0) {
                        log_error_errno(r, "%s/%s: cannot scan: %m", modules_dir, release);
                        json_object_put(o);
                        json_object_put(mods);
                        code = EXIT_ERROR;
                        continue;
                }
                json_object_object_add(o, "release", jstr(release));
                counts_to_json(o, k.total, k.n, k.escaped, k.covered, k.invalid);
                json_object_object_add(o, "modules", mods);
                json_object_array_add(jk, o);
                t_total += k.total;
                for (int s = 0; s < _MODULE_STATE_MAX; s++)
                        t_n[s] += k.n[s];
                t_esc += k.escaped;
                t_cov += k.covered;
                t_inv += k.invalid;
                kernel_report_done(&k);
        }
        for (size_t i = 0; i < n_kernels; i++)
                free(kernels[i]);
        free(kernels);

        json_object *totals = json_object_new_object();
        counts_to_json(totals, t_total, t_n, t_esc, t_cov, t_inv);
        json_object_object_add(m, "totals", totals);
        json_object_object_add(m, "policy_gate_coverage_ratio",
                               json_object_new_double(t_n[MODULE_STATE_SIGNED_OURS] ? (double) t_cov / t_n[MODULE_STATE_SIGNED_OURS] : 1.0));
        json_object_object_add(m, "escapes", json_object_new_int64(t_esc));

        json_object *jd = json_object_new_array();
        for (size_t i = 0; i < debt.n; i++) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "id", jstr(debt.items[i].id));
                json_object_object_add(o, "subject", jstr(debt.items[i].subject));
                json_object_object_add(o, "message", jstr(debt.items[i].message));
                json_object_object_add(o, "fix", jstr(debt.items[i].fix));
                json_object_array_add(jd, o);
        }
        json_object_object_add(m, "debt", jd);
        json_object_object_add(m, "debt_items", json_object_new_int64((int64_t) debt.n));
        json_object *th = json_object_new_object();
        json_object_object_add(th, "max_debt", json_object_new_int64(max_debt));
        json_object_object_add(th, "max_escapes", json_object_new_int64(max_escapes));
        json_object_object_add(m, "thresholds", th);
        bool exceeded = debt.n > max_debt || t_esc > max_escapes;
        json_object_object_add(m, "exceeded", json_object_new_boolean(exceeded));

        if (prometheus)
                print_prometheus(m);
        else if (json)
                printf("%s\n", json_object_to_json_string_ext(m, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                                       JSON_C_TO_STRING_NOSLASHESCAPE));
        else
                print_text(m);
        json_object_put(m);
        if (fflush(stdout) != 0)
                return log_error_errno(negative_errno(), "cannot write the report: %m"), EXIT_ERROR;
        if (code == EXIT_OK && exceeded)
                code = EXIT_REPORT_THRESHOLD;
        return code;
}
