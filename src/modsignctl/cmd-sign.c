/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* modsignctl sign: sign modules in place. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "cli-policy.h"
#include "conf.h"
#include "digest.h"
#include "kconfig.h"
#include "key-backend.h"
#include "key.h"
#include "log.h"
#include "modsign.h"
#include "modsignctl.h"
#include "openssl-util.h"
#include "provenance.h"

#define DEFAULT_AUTO_HASH "sha512" /* what dkms uses when the kernel does not say */

static void help(void) {
        printf("Usage: modsignctl sign --key KEY --cert CERT [OPTIONS] MODULE...\n"
               "\n"
               "Sign kernel modules in place (atomically; compressed modules are signed inside).\n"
               "\n"
               "  -k --key REF           private key: a file (PEM or DER, RSA or EC, root-owned,\n"
               "                         mode 0600), credential:NAME, pkcs11:URI, handle:0x81...\n"
               "                         or object:PATH (TPM2)\n"
               "     --pin-file FILE     PIN or passphrase, from a root-only file or credential:NAME\n"
               "  -c --cert FILE         X.509 certificate of the key (PEM or DER)\n"
               "  -a --hash NAME         auto (default), sha256, sha384 or sha512\n"
               "     --keyid             identify the signer by subjectKeyIdentifier\n"
               "     --replace           re-sign modules signed by another key (never one in\n"
               "                         [Policy] TrustedCertificates= or the kernel's\n"
               "                         trusted keyrings)\n"
               "     --allow-weak-hash   allow sha1 and sha224\n"
               "     --kernel KVER       kernel release for --hash auto (default: vermagic)\n"
               "     --sysroot DIR       look up kernel configuration under DIR\n"
               "  -h --help              show this help\n");
}

/* The hash chosen for each kernel release met so far, so --hash auto looks once per release
 * and warns once. */
struct hash_cache {
        char *release[16];
        char *hash[16];
        size_t n;
};

struct sign_args {
        const char *hash, *kernel, *sysroot;
        bool allow_weak;
        struct hash_cache cache;
        struct cli_gate gate;   /* the policy every signature passes (cli-policy.h) */
};

static void sign_args_done(struct sign_args *a) {
        struct hash_cache *c = &a->cache;

        for (size_t i = 0; i < c->n; i++) {
                free(c->release[i]);
                free(c->hash[i]);
        }
}

static int check_hash_strength(const char *hash, bool allow_weak, const char *origin) {
        switch (hash_classify(hash)) {
        case HASH_STRONG:
                return 0;
        case HASH_WEAK:
                if (!allow_weak)
                        return log_error_errno(-EINVAL, "%s: hash '%s' is weak; pass --allow-weak-hash to use it anyway",
                                               origin, hash);
                log_warning("%s: signing with weak hash '%s'", origin, hash);
                return 0;
        case HASH_UNKNOWN:
        default:
                return log_error_errno(-EINVAL, "%s: unknown hash '%s' (use sha256, sha384 or sha512)", origin, hash);
        }
}

/* Resolves --hash auto for one module; returns a string owned by the cache or by args. */
static int resolve_hash(struct sign_args *a, const char *path, const struct module_file *m, const char **ret) {
        _cleanup_free_ char *release = NULL, *hash = NULL, *source = NULL;
        int r;

        if (!streq(a->hash, "auto")) {
                *ret = a->hash;
                return 0;
        }

        if (a->kernel)
                release = strdup(a->kernel);
        else if (module_vermagic_release(m->meta.vermagic, &release) < 0)
                return log_error_errno(-EINVAL, "%s: no usable vermagic to find its kernel; pass --kernel or --hash", path);
        if (!release)
                return log_oom();

        for (size_t i = 0; i < a->cache.n; i++)
                if (streq(a->cache.release[i], release)) {
                        *ret = a->cache.hash[i];
                        return 0;
                }

        r = kernel_module_sig_hash(a->sysroot, release, &hash, &source);
        if (r == -ENOENT || r == -ENODATA) {
                log_warning("kernel %s: %s; using %s", release,
                            r == -ENOENT ? "no configuration found (no build/.config, no /boot/config)"
                                         : "its configuration does not set CONFIG_MODULE_SIG_HASH",
                            DEFAULT_AUTO_HASH);
                hash = strdup(DEFAULT_AUTO_HASH);
                if (!hash)
                        return log_oom();
        } else if (r < 0)
                return log_error_errno(r, "kernel %s: cannot read its configuration: %m", release);
        else {
                r = check_hash_strength(hash, a->allow_weak, source);
                if (r < 0)
                        return r;
                log_debug("kernel %s: CONFIG_MODULE_SIG_HASH=%s from %s", release, hash, source);
        }

        if (a->cache.n == ELEMENTSOF(a->cache.release)) { /* full: forget the oldest */
                free(a->cache.release[0]);
                free(a->cache.hash[0]);
                memmove(a->cache.release, a->cache.release + 1, sizeof(char *) * (a->cache.n - 1));
                memmove(a->cache.hash, a->cache.hash + 1, sizeof(char *) * (a->cache.n - 1));
                a->cache.n--;
        }
        a->cache.release[a->cache.n] = TAKE_PTR(release);
        a->cache.hash[a->cache.n] = TAKE_PTR(hash);
        *ret = a->cache.hash[a->cache.n++];
        return 0;
}

/* Signed modules whose new contents wait in the batch for one durable commit. */
#define BATCH_MAX 128

struct pending {
        struct replace_batch batch;
        char *report[BATCH_MAX]; /* what to print once the module is in place */
        const char *path[BATCH_MAX];
        struct audit_record rec[BATCH_MAX]; /* strings: see cli_record_done() */
        bool key_gone;                      /* the key's token went away: sign no more */
};

/* Run as root with modsignd's state directory present, signing leaves records in its audit
 * log too (requester "cli"). The key's holder could sign without us, so a log that cannot be
 * written is a warning here, not a refusal (modsignd(8) fails closed; we cannot). */
static struct audit_log *cli_audit;
static const char *cli_fingerprint;

static void cli_audit_open(X509 *cert) {
        static char fpr[65];
        _cleanup_free_ char *dir = NULL;
        struct stat st;
        int r;

        if (geteuid() != 0 || audit_state_directory(&dir) < 0 || stat(dir, &st) < 0)
                return;
        r = audit_log_open(dir, &cli_audit);
        if (r < 0)
                log_warning("%s/%s: cannot record in the audit log: %s; signing without records", dir, AUDIT_LOG_FILE,
                            r == -EBADMSG ? "its last line is not a complete record" : strerror(-r));
        if (cert_fingerprint_sha256(cert, fpr) >= 0)
                cli_fingerprint = fpr;
}

static void cli_record(const char *path, struct audit_record *rec) {
        int r;

        if (!cli_audit)
                return;
        rec->path = path;
        rec->key_fingerprint = cli_fingerprint;
        rec->requester = (struct audit_requester) { .kind = AUDIT_REQUESTER_CLI };
        _cleanup_free_ char *statement = NULL; /* provenance.h: the statement first, named by the record */
        if (provenance_record(cli_audit, rec, &statement) >= 0)
                rec->provenance = statement;
        r = audit_log_append(cli_audit, rec, NULL, NULL);
        rec->provenance = NULL;
        if (r < 0)
                log_warning("%s: cannot record in the audit log %s: %s", path, audit_log_path(cli_audit), strerror(-r));
}

static void cli_record_done(struct audit_record *rec) {
        free((char *) rec->module);
        free((char *) rec->version);
        free((char *) rec->kernel);
        free((char *) rec->sha256_before);
        free((char *) rec->sha256_after);
        *rec = (struct audit_record) {};
}

static int pending_commit(struct pending *p) {
        int results[BATCH_MAX], code = EXIT_OK;
        size_t n = p->batch.n;

        (void) replace_batch_commit(&p->batch, results);
        for (size_t i = 0; i < n; i++) {
                if (results[i] < 0) {
                        if (results[i] == -ESTALE)
                                log_error("%s: the module changed while it was being signed; nothing written, try again",
                                          p->path[i]);
                        else
                                log_error_errno(results[i], "%s: replacing the module failed: %m", p->path[i]);
                        code = exit_code_merge(code, EXIT_ERROR);
                        p->rec[i].event = AUDIT_EVENT_FAILED;
                        p->rec[i].reason = "replacing the module failed";
                        cli_record(p->path[i], &p->rec[i]);
                } else {
                        if (cli_audit && !p->rec[i].sha256_after) {
                                /* recompressed: the digest of what is now in place */
                                char after[65];
                                _cleanup_close_ int fd = open(p->path[i], O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                                if (fd >= 0 && digest_fd_sha256(fd, after) >= 0)
                                        p->rec[i].sha256_after = strdup(after);
                        }
                        cli_record(p->path[i], &p->rec[i]);
                        if (!arg_global.quiet)
                                printf("%s\n", p->report[i] ?: p->path[i]);
                }
                cli_record_done(&p->rec[i]);
                free(p->report[i]);
                p->report[i] = NULL;
        }
        return code;
}

static void pending_done(struct pending *p) {
        for (size_t i = 0; i < p->batch.n; i++) {
                free(p->report[i]);
                cli_record_done(&p->rec[i]);
        }
        replace_batch_done(&p->batch);
}

static int sign_one(struct sign_args *a, const struct signer *signer, bool replace, const char *path,
                    struct pending *p) {
        _cleanup_(module_arg_close) struct module_arg m = { .dir_fd = -EBADF };
        _cleanup_(modsign_copy_ahead_freep) struct modsign_copy_ahead *ahead = NULL;
        _cleanup_free_ uint8_t *sig = NULL;
        enum modsign_outcome outcome;
        const char *hash = NULL, *why = NULL;
        size_t before = p->batch.n, sig_len = 0;
        char *report;
        int r, code;

        code = module_arg_open(path, &m);
        if (code != EXIT_OK)
                return code;
        /* A large unsigned module is copied while the gate reads it (modsign.h); a refusal
         * drops the copy unseen. Without it, nothing is lost but time. */
        (void) modsign_copy_ahead(&m.file, &ahead);

        {
                struct policy_decision d;
                struct policy_gathered g = {};
                struct policy_request preq = {
                        .requester = POLICY_REQUESTER_CLI,
                        .m = &m.file,
                        .path = path,
                        .dir_fd = m.dir_fd,
                        .release = a->kernel,
                        .sysroot = a->sysroot,
                        .hash = a->hash,
                        .allow_weak_hash = a->allow_weak,
                        .replace_foreign = replace,
                        .requester_uid = geteuid(),
                };
                r = cli_gate_check(&a->gate, &preq, path, &d, &g);
                if (r == -EPERM) {
                        char digest[65];
                        struct audit_record rec = {
                                .event = AUDIT_EVENT_REFUSED,
                                .module = m.file.meta.name,
                                .version = m.file.meta.version,
                                .kernel = a->kernel,
                                .sha256_before = cli_audit && module_file_sha256(&m.file, digest) >= 0 ? digest : NULL,
                                .rule = d.rule,
                                .reason = d.reason,
                        };
                        cli_record(path, &rec);
                        return EXIT_ERROR;
                }
                if (r < 0)
                        return EXIT_ERROR;
                policy_gathered_done(&g);
        }

        r = resolve_hash(a, path, &m.file, &hash);
        if (r < 0)
                return r == -EINVAL ? EXIT_USAGE : EXIT_ERROR;

        struct modsign_request req = {
                .signer = signer,
                .hash = hash,
                .existing = replace ? MODSIGN_EXISTING_REPLACE : MODSIGN_EXISTING_REFUSE,
                .write_module = true,
                .batch = &p->batch,
                .copy_ahead = ahead,
                .ret_sig = &sig,
                .ret_sig_len = &sig_len,
        };
        r = modsign_sign(&m.file, &req, &outcome, &why);
        struct audit_record rec = { .event = AUDIT_EVENT_SIGNED };
        if (cli_audit && (r < 0 || outcome != MODSIGN_UNCHANGED)) {
                char digest[65];
                _cleanup_free_ char *release = NULL;
                if (module_file_sha256(&m.file, digest) >= 0)
                        rec.sha256_before = strdup(digest);
                if (r >= 0 && sig && module_file_sha256_signed(&m.file, sig, sig_len, digest) >= 0)
                        rec.sha256_after = strdup(digest); /* what was written: no second read */
                rec.module = m.file.meta.name ? strdup(m.file.meta.name) : NULL;
                rec.version = m.file.meta.version ? strdup(m.file.meta.version) : NULL;
                if (a->kernel || module_vermagic_release(m.file.meta.vermagic, &release) >= 0)
                        rec.kernel = strdup(a->kernel ?: release);
                rec.event = m.file.meta.n_signatures > 0 ? AUDIT_EVENT_RESIGNED : AUDIT_EVENT_SIGNED;
                rec.rule = "cli";
                rec.reason = hash;
        }
        if (r < 0) {
                rec.event = r == -EEXIST ? AUDIT_EVENT_REFUSED : AUDIT_EVENT_FAILED;
                rec.rule = r == -EEXIST ? "signed-by-another-key" : NULL;
                rec.reason = why ?: strerror(-r);
                cli_record(path, &rec);
                cli_record_done(&rec);
                if (r == -ENODEV)
                        p->key_gone = true;
                if (r == -EEXIST)
                        log_error("%s: %s", path, why);
                else if (why)
                        log_error_errno(r, "%s: %s: %m", path, why);
                else
                        log_error_errno(r, "%s: signing failed: %m", path);
                return EXIT_ERROR;
        }

        if (outcome == MODSIGN_UNCHANGED) {
                if (!arg_global.quiet)
                        printf("%s: already signed with this key (%s), unchanged\n", path, hash);
                return EXIT_OK;
        }

        if (asprintf(&report, "%s: signed (%s%s%s)", path, hash,
                     m.file.compression != COMPRESSION_NONE ? ", " : "",
                     m.file.compression != COMPRESSION_NONE ? compression_to_string(m.file.compression) : "") < 0)
                report = NULL; /* only the report line is lost */
        p->report[before] = report;
        p->path[before] = path;
        p->rec[before] = rec; /* recorded once it is in place */
        return p->batch.n >= BATCH_MAX ? pending_commit(p) : EXIT_OK;
}

int cmd_sign(int argc, char *argv[]) {
        enum { ARG_KEYID = 0x100, ARG_REPLACE, ARG_ALLOW_WEAK, ARG_KERNEL, ARG_SYSROOT, ARG_PIN_FILE };
        static const struct option options[] = {
                { "key", required_argument, NULL, 'k' },
                { "cert", required_argument, NULL, 'c' },
                { "hash", required_argument, NULL, 'a' },
                { "keyid", no_argument, NULL, ARG_KEYID },
                { "replace", no_argument, NULL, ARG_REPLACE },
                { "allow-weak-hash", no_argument, NULL, ARG_ALLOW_WEAK },
                { "kernel", required_argument, NULL, ARG_KERNEL },
                { "sysroot", required_argument, NULL, ARG_SYSROOT },
                { "pin-file", required_argument, NULL, ARG_PIN_FILE },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        _cleanup_(sign_args_done) struct sign_args a = { .hash = "auto" };
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        const char *key_path = NULL, *cert_path = NULL, *pin_file = NULL;
        _cleanup_(secret_freep) char *pin = NULL;
        bool keyid = false, replace = false;
        struct signer *signer = NULL;
        int c, r, code = EXIT_OK;

        while ((c = getopt_long(argc, argv, "k:c:a:h", options, NULL)) >= 0)
                switch (c) {
                case 'k':
                        key_path = optarg;
                        break;
                case 'c':
                        cert_path = optarg;
                        break;
                case 'a':
                        a.hash = optarg;
                        break;
                case ARG_KEYID:
                        keyid = true;
                        break;
                case ARG_REPLACE:
                        replace = true;
                        break;
                case ARG_ALLOW_WEAK:
                        a.allow_weak = true;
                        break;
                case ARG_KERNEL:
                        a.kernel = optarg;
                        break;
                case ARG_SYSROOT:
                        a.sysroot = optarg;
                        break;
                case ARG_PIN_FILE:
                        pin_file = optarg;
                        break;
                case 'h':
                        help();
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }

        if (!key_path || !cert_path) {
                log_error("sign: --key and --cert are required");
                return EXIT_USAGE;
        }
        if (optind >= argc) {
                log_error("sign: no module given");
                return EXIT_USAGE;
        }
        if (!streq(a.hash, "auto") && check_hash_strength(a.hash, a.allow_weak, "--hash") < 0)
                return EXIT_USAGE;
        if (a.kernel && strchr(a.kernel, '/')) {
                log_error("sign: --kernel takes a release such as 6.1.0-28-amd64, not a path");
                return EXIT_USAGE;
        }

        if (pin_file) {
                _cleanup_free_ char *msg = NULL;

                r = key_read_secret(pin_file, &pin, &msg);
                if (r < 0) {
                        log_error_errno(r, "%s: %s", pin_file, msg ?: strerror(-r));
                        return EXIT_ERROR;
                }
        }
        if (load_signing_key(key_path, pin, true, &key) < 0)
                return EXIT_ERROR;
        r = cert_load_file(cert_path, &cert);
        if (r < 0) {
                log_error_errno(r, "%s: cannot load certificate: %s", cert_path,
                                r == -EBADMSG ? "not a PEM or DER X.509 certificate" : strerror(-r));
                return EXIT_ERROR;
        }
        r = signer_new(key, cert, keyid, &signer);
        if (r == -EKEYREJECTED) {
                log_error("%s: the private key does not belong to certificate %s", key_path, cert_path);
                return EXIT_ERROR;
        }
        if (r == -ENOKEY) {
                log_error("%s: --keyid needs a certificate with a subjectKeyIdentifier", cert_path);
                return EXIT_ERROR;
        }
        if (r < 0) {
                log_error_errno(r, "cannot set up signing: %m");
                return EXIT_ERROR;
        }

        {
                _cleanup_(config_done) struct config conf = {};
                _cleanup_free_ char *conf_error = NULL;

                r = config_load(arg_global.config_path ?: CONFIG_DEFAULT_FILE, arg_global.config_path != NULL,
                                arg_global.config_path ? NULL : CONFIG_DEFAULT_DROPIN_DIR, &conf, &conf_error);
                if (r < 0) {
                        log_error("sign: the policy cannot be read: %s", conf_error ?: strerror(-r));
                        signer_free(signer);
                        return EXIT_ERROR;
                }
                if (cli_gate_open(&a.gate, &conf, signer_get_cert(signer), false) < 0) {
                        signer_free(signer);
                        return EXIT_ERROR;
                }
        }
        cli_audit_open(cert);
        struct pending p = {};
        int i;
        for (i = optind; i < argc && !p.key_gone; i++)
                code = exit_code_merge(code, sign_one(&a, signer, replace, argv[i], &p));
        /* Those signed before the token went away are put in place; the rest not tried. */
        code = exit_code_merge(code, pending_commit(&p));
        if (i < argc)
                log_error("%s: the key's token went away: %d more module%s not signed, left as %s",
                          key_path, argc - i, argc - i == 1 ? "" : "s", argc - i == 1 ? "it was" : "they were");
        pending_done(&p);
        cli_audit = audit_log_free(cli_audit);
        cli_gate_close(&a.gate);

        signer_free(signer);
        return code;
}
