/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* modsignctl rotate: replace the signing key without leaving a module the kernel would
 * refuse. The old key keeps signing until the kernel trusts the new certificate; then every
 * module the OLD key signed is re-signed with the new one (modules of other keys and unsigned
 * ones are never touched); then the configuration switches and the old key is retired.
 * Progress lives in STATE_DIRECTORY/rotation.json (src/lib/rotate.h), so a run that dies
 * half-way resumes with --resume. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "client.h"
#include "conf.h"
#include "key-backend.h"
#include "key.h"
#include "keygen.h"
#include "keyring.h"
#include "log.h"
#include "macro.h"
#include "modsign.h"
#include "modsignctl.h"
#include "newfile.h"
#include "openssl-util.h"
#include "rotate.h"
#include "verify.h"

#define DEFAULT_MODULES_DIR "/lib/modules"
#define DEFAULT_DKMS_TREE "/var/lib/dkms"
#define RELOAD_TIMEOUT_MS (30 * 1000)
/* Modules the daemon may still sign with the old key while we work are caught by a new scan
 * after each pass; a tree that keeps changing under us is an error after this many. */
#define MAX_PASSES 4
/* exit() status of the test-only crash knob, MODSIGNCTL_ROTATE_CRASH_AFTER (modsignctl(8)). */
#define CRASH_EXIT 99

static void help(void) {
        printf("Usage: modsignctl rotate --new-key REF --new-cert FILE [OPTIONS]\n"
               "       modsignctl rotate --generate [--new-key PATH] [OPTIONS]\n"
               "       modsignctl rotate --resume [--force]\n"
               "       modsignctl [--json] rotate --status\n"
               "\n"
               "Replace the module signing key: stage the new key, wait until the running\n"
               "kernel trusts its certificate (the old key keeps signing meanwhile), re-sign\n"
               "every module the OLD key signed in all installed kernels and the DKMS tree,\n"
               "switch the configuration to the new key (a drop-in) and retire the old key.\n"
               "\n"
               "  -k --new-key REF      the new key: a file, pkcs11:URI, handle:0x81..., object:PATH\n"
               "  -c --new-cert FILE    its certificate\n"
               "     --pin-file FILE    the new key's PIN or passphrase (root-only file)\n"
               "  -g --generate         make a new RSA key and certificate (as keygen does);\n"
               "                        --new-key PATH says where (default: beside the old key)\n"
               "  -f --force            do not wait for the kernel to trust the new certificate\n"
               "     --resume           continue the rotation in progress\n"
               "     --status           show the rotation's progress (with --json: its state)\n"
               "     --delete-old       delete the old key file instead of renaming it *.retired\n"
               "     --modules-dir DIR  installed kernels' modules (default %s)\n"
               "     --dkms-tree DIR    the DKMS tree (default %s)\n"
               "     --dropin FILE      configuration drop-in to write (default\n"
               "                        %s/%s)\n"
               "     --state-dir DIR    where rotation.json is kept (default: StateDirectory=)\n"
               "  -h --help             show this help\n"
               "\n"
               "Exit status: 0 done, 1 error, 2 usage, 5 the kernel does not trust the new\n"
               "certificate yet (enroll it, reboot, then 'modsignctl rotate --resume').\n",
               DEFAULT_MODULES_DIR, DEFAULT_DKMS_TREE, CONFIG_DEFAULT_DROPIN_DIR, ROTATE_DEFAULT_DROPIN);
}

struct rotate_args {
        const char *new_key, *new_cert, *pin_file;
        const char *modules_dir, *dkms_tree, *dropin, *state_dir;
        bool generate, force, resume, status, delete_old;
};

struct rotation {
        struct rotate_state s;
        const char *state_dir;
        STACK_OF(X509) *old_certs, *new_certs;
        EVP_PKEY *key;
        X509 *cert;
        struct signer *signer, *signer_keyid; /* the new key, naming itself by issuer+serial or SKID */
        unsigned resigned;                    /* in this process, for the crash knob */
        long crash_after;                     /* -1: none */
        unsigned failed;
};

static void rotation_done(struct rotation *r) {
        rotate_state_done(&r->s);
        sk_X509_pop_free(r->old_certs, X509_free);
        sk_X509_pop_free(r->new_certs, X509_free);
        signer_free(r->signer);
        signer_free(r->signer_keyid);
        X509_free(r->cert);
        EVP_PKEY_free(r->key);
}

/* The daemon's configuration: --config FILE with FILE.d/ (as modsignd reads it), else the
 * default file and its drop-in directory. */
static int load_config(struct config *ret, char **ret_dropin_dir) {
        _cleanup_free_ char *error = NULL, *dir = NULL;
        const char *path = arg_global.config_path ?: CONFIG_DEFAULT_FILE;
        int r;

        if (arg_global.config_path) {
                if (asprintf(&dir, "%s.d", arg_global.config_path) < 0)
                        return log_oom();
        } else if (!(dir = strdup(CONFIG_DEFAULT_DROPIN_DIR)))
                return log_oom();
        r = config_load(path, !!arg_global.config_path, dir, ret, &error);
        if (r < 0) {
                log_error("%s", error ?: "cannot load the configuration");
                return r;
        }
        *ret_dropin_dir = TAKE_PTR(dir);
        return 0;
}

static int load_cert_stack(const char *path, X509 **ret_cert, STACK_OF(X509) **ret_stack) {
        _cleanup_(X509_freep) X509 *cert = NULL;
        STACK_OF(X509) *st;
        int r;

        r = cert_load_file(path, &cert);
        if (r < 0)
                return log_error_errno(r, "%s: cannot load the certificate: %s", path,
                                       r == -EBADMSG ? "not a PEM or DER X.509 certificate" : strerror(-r));
        st = sk_X509_new_null();
        if (!st || !X509_up_ref(cert) || !sk_X509_push(st, cert)) {
                sk_X509_free(st);
                return log_oom();
        }
        if (ret_cert)
                *ret_cert = TAKE_PTR(cert);
        *ret_stack = st;
        return 0;
}

static int save(struct rotation *rot) {
        int r = rotate_state_save(rot->state_dir, &rot->s);
        if (r < 0)
                return log_error_errno(r, "%s/%s: cannot write the rotation state: %m", rot->state_dir, ROTATE_STATE_FILE);
        return 0;
}

static int set_phase(struct rotation *rot, enum rotate_phase p) {
        rot->s.phase = p;
        log_debug("rotation: phase %s", rotate_phase_to_string(p));
        return save(rot);
}

/* ---- --generate ---- */

static int write_new_file(const char *path, mode_t mode, const void *data, size_t size) {
        _cleanup_close_ int dir_fd = -EBADF;
        const char *base;
        int r;

        r = open_parent_dir(path, &dir_fd, &base);
        if (r >= 0)
                r = newfile_create_at(dir_fd, base, mode, data, size);
        if (r == -EEXIST)
                return log_error_errno(r, "%s already exists; refusing to overwrite it", path);
        if (r < 0)
                return log_error_errno(r, "%s: cannot write: %m", path);
        return 0;
}

static char *with_suffix(const char *path, const char *from, const char *to) {
        size_t n = strlen(path), f = strlen(from);
        char *s;

        if (n > f && streq(path + n - f, from))
                n -= f;
        return asprintf(&s, "%.*s%s", (int) n, path, to) < 0 ? NULL : s;
}

/* A new RSA key as keygen makes it, beside the old key file unless told where. */
static int generate_key(const char *old_key, const char *key_arg, const char *cert_arg, char **ret_key,
                        char **ret_cert) {
        _cleanup_free_ char *key_path = NULL, *cert_path = NULL, *der_path = NULL, *cn = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        char stamp[32], host[HOST_NAME_MAX + 1] = {};
        char *key_pem = NULL, *cert_pem = NULL;
        unsigned char *cert_der = NULL;
        size_t key_len = 0, cert_len = 0, der_len = 0;
        time_t now = time(NULL);
        struct tm tm;
        int r;

        if (key_arg && key_arg[0] != '/') {
                log_error("rotate --generate: --new-key must be an absolute file path (making a key inside a token "
                          "or a TPM is 'modsignctl keygen --key REF', then 'rotate --new-key REF --new-cert FILE')");
                return -EINVAL;
        }
        gmtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
        if (key_arg)
                key_path = strdup(key_arg);
        else {
                const char *slash = old_key && old_key[0] == '/' ? strrchr(old_key, '/') : NULL;

                if (asprintf(&key_path, "%.*s/signing-%s.key", slash ? (int) (slash - old_key) : 13,
                             slash ? old_key : "/etc/modsignd", stamp) < 0)
                        key_path = NULL;
        }
        if (!key_path)
                return log_oom();
        cert_path = cert_arg ? strdup(cert_arg) : with_suffix(key_path, ".key", ".crt");
        der_path = cert_path ? with_suffix(cert_path, ".crt", ".der") : NULL;
        if (!cert_path || !der_path)
                return log_oom();
        if (streq(key_path, cert_path) || streq(cert_path, der_path)) {
                log_error("rotate --generate: the key, the certificate and its DER copy need different paths");
                return -EINVAL;
        }

        if (gethostname(host, sizeof(host) - 1) < 0 || !*host)
                strcpy(host, "localhost");
        strftime(stamp, sizeof(stamp), "%Y-%m-%d", &tm);
        if (asprintf(&cn, "modsignd module signing key %s on %.*s", stamp, 64 - 39, host) < 0)
                return log_oom();

        log_notice("generating a new RSA %u key", KEYGEN_RSA_DEFAULT_BITS);
        r = keygen_generate_key(KEYGEN_RSA, KEYGEN_RSA_DEFAULT_BITS, NULL, &key);
        if (r >= 0)
                r = keygen_self_signed_cert(key, cn, KEYGEN_DEFAULT_DAYS, &cert);
        if (r >= 0)
                r = keygen_key_to_pem(key, &key_pem, &key_len);
        if (r >= 0)
                r = keygen_cert_to_pem(cert, &cert_pem, &cert_len);
        if (r >= 0)
                r = keygen_cert_to_der(cert, &cert_der, &der_len);
        if (r < 0)
                log_error_errno(r, "cannot make the new key and certificate: %m");
        if (r >= 0)
                r = write_new_file(key_path, 0600, key_pem, key_len);
        if (r >= 0) {
                r = write_new_file(cert_path, 0644, cert_pem, cert_len);
                if (r < 0)
                        (void) unlink(key_path);
        }
        if (r >= 0)
                (void) write_new_file(der_path, 0644, cert_der, der_len); /* a convenience for mokutil */
        OPENSSL_clear_free(key_pem, key_len);
        OPENSSL_free(cert_pem);
        OPENSSL_free(cert_der);
        if (r < 0)
                return r;
        log_notice("new key %s, certificate %s (DER for mokutil: %s)", key_path, cert_path, der_path);
        *ret_key = TAKE_PTR(key_path);
        *ret_cert = TAKE_PTR(cert_path);
        return 0;
}

/* ---- the new key ---- */

static int load_new_key(struct rotation *rot) {
        _cleanup_(secret_freep) char *pin = NULL;
        int r;

        if (rot->signer)
                return 0;
        if (rot->s.new_pin_file) {
                _cleanup_free_ char *msg = NULL;

                r = key_read_secret(rot->s.new_pin_file, &pin, &msg);
                if (r < 0)
                        return log_error_errno(r, "%s: %s", rot->s.new_pin_file, msg ?: strerror(-r));
        }
        r = load_signing_key(rot->s.new_key, pin, true, &rot->key);
        if (r < 0)
                return r;
        if (!rot->cert) {
                r = cert_load_file(rot->s.new_cert, &rot->cert);
                if (r < 0)
                        return log_error_errno(r, "%s: cannot load the certificate: %m", rot->s.new_cert);
        }
        r = signer_new(rot->key, rot->cert, false, &rot->signer);
        if (r == -EKEYREJECTED)
                return log_error_errno(r, "%s: the new key does not belong to the certificate %s", rot->s.new_key,
                                       rot->s.new_cert);
        if (r < 0)
                return log_error_errno(r, "cannot set up signing with the new key: %m");
        /* Modules signed in key-id mode stay in key-id mode; a certificate without SKID cannot. */
        if (signer_new(rot->key, rot->cert, true, &rot->signer_keyid) < 0)
                rot->signer_keyid = NULL;
        return 0;
}

/* ---- re-signing ---- */

enum resign_result {
        RESIGNED,    /* was the old key's, is the new key's now */
        ALREADY_NEW, /* signed by the new key already (a crash after its replacement) */
        NOT_OLD,     /* not (any more) signed by the old key: left alone */
        GONE,        /* removed, or no longer a module */
};

/* Whether a module's outermost signature verifies against 'certs'. */
static bool signed_by(const struct module_file *m, STACK_OF(X509) *certs) {
        return m->meta.n_signatures > 0 && modsign_verify(m, certs, NULL) == 0;
}

static int resign_one(struct rotation *rot, const char *path, enum resign_result *ret) {
        _cleanup_close_ int dir_fd = -EBADF;
        struct module_file m = {};
        struct sig_details d = {};
        _cleanup_free_ uint8_t *der = NULL;
        enum modsign_outcome outcome;
        const struct signer *signer;
        const char *base, *why = NULL, *hash;
        size_t len;
        int r;

        r = open_parent_dir(path, &dir_fd, &base);
        if (r >= 0)
                r = module_file_open(dir_fd, base, &m, &why);
        if (r == -ENOENT || r == -ENOEXEC || r == -ELOOP || r == -EINVAL) {
                *ret = GONE;
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "%s: %s%s%m", path, why ?: "", why ? ": " : "");

        if (!signed_by(&m, rot->old_certs)) {
                *ret = signed_by(&m, rot->new_certs) ? ALREADY_NEW : NOT_OLD;
                module_file_close(&m);
                return 0;
        }

        /* The same hash and the same way of naming the signer as the old signature had: what
         * the kernel accepted before it accepts now. */
        if (module_file_read_signature(&m, &der, &len) >= 0)
                (void) sig_describe(der, len, &d);
        hash = d.hash && hash_classify(d.hash) == HASH_STRONG ? d.hash : "sha256";
        signer = d.key_id && rot->signer_keyid ? rot->signer_keyid : rot->signer;

        struct modsign_request req = {
                .signer = signer,
                .hash = hash,
                .existing = MODSIGN_EXISTING_REPLACE,
                .write_module = true,
        };
        r = modsign_sign(&m, &req, &outcome, &why);
        sig_details_done(&d);
        module_file_close(&m);
        if (r < 0)
                return log_error_errno(r, "%s: re-signing failed: %s: %m", path, why ?: "error");
        *ret = RESIGNED;
        return 0;
}

static void maybe_crash(struct rotation *rot) {
        /* Test only (modsignctl(8), ENVIRONMENT): die hard, the module replaced but the state
         * not yet saved, the worst moment for a resume. */
        if (rot->crash_after >= 0 && rot->resigned >= (unsigned long) rot->crash_after) {
                fprintf(stderr, "modsignctl: MODSIGNCTL_ROTATE_CRASH_AFTER=%ld: exiting hard (test only)\n",
                        rot->crash_after);
                _exit(CRASH_EXIT);
        }
}

/* Works through the pending list; each module leaves it for done or skipped as it is
 * finished, and the state is saved after each. Failures stay pending. */
static int resign_pending(struct rotation *rot) {
        struct rotate_list todo = {};
        int r = 0;

        for (size_t i = 0; i < rot->s.pending.n; i++)
                if (rotate_list_add(&todo, rot->s.pending.items[i]) < 0) {
                        rotate_list_done(&todo);
                        return log_oom();
                }
        for (size_t i = 0; i < todo.n; i++) {
                const char *path = todo.items[i];
                enum resign_result res;

                r = resign_one(rot, path, &res);
                if (r == -ESTALE) /* changed under us: look again */
                        r = resign_one(rot, path, &res);
                if (r == -ENODEV) {
                        /* The new key's token went away: every further try would fail the
                         * same way. What is left stays pending for --resume. */
                        rot->failed += (unsigned) (todo.n - i);
                        log_error("the new key's token went away; %zu module(s) not re-signed yet", todo.n - i);
                        r = 0;
                        break;
                }
                if (r < 0) {
                        rot->failed++;
                        continue;
                }
                if (res == RESIGNED) {
                        rot->resigned++;
                        maybe_crash(rot);
                        if (!arg_global.quiet && !arg_global.json)
                                printf("re-signed %s\n", path);
                } else if (res == ALREADY_NEW)
                        log_debug("%s: already signed by the new key", path);
                else
                        log_notice("%s: %s; left alone", path,
                                 res == GONE ? "gone, or no longer a module" : "no longer signed by the old key");

                (void) rotate_list_remove(&rot->s.pending, path);
                if (res == RESIGNED || res == ALREADY_NEW) {
                        if (!rotate_list_contains(&rot->s.done, path))
                                r = rotate_list_add(&rot->s.done, path);
                } else if (!rotate_list_contains(&rot->s.skipped, path))
                        r = rotate_list_add(&rot->s.skipped, path);
                if (r < 0)
                        break;
                r = save(rot);
                if (r < 0)
                        break;
        }
        rotate_list_done(&todo);
        return r < 0 ? r : 0;
}

/* Adds to the pending list every module under the roots that the old key signed. */
static int scan_old(struct rotation *rot, size_t *ret_found) {
        struct rotate_list all = {};
        size_t found = 0;
        int r;

        r = rotate_find_modules(rot->s.modules_dir, rot->s.dkms_tree, &all);
        if (r < 0)
                return log_error_errno(r, "cannot list the modules under %s and %s: %m", rot->s.modules_dir,
                                       rot->s.dkms_tree);
        for (size_t i = 0; i < all.n && r >= 0; i++) {
                _cleanup_close_ int dir_fd = -EBADF;
                struct module_file m = {};
                const char *base;

                if (rotate_list_contains(&rot->s.pending, all.items[i]))
                        continue;
                if (open_parent_dir(all.items[i], &dir_fd, &base) < 0 ||
                    module_file_open(dir_fd, base, &m, NULL) < 0)
                        continue; /* not a module we can read: not ours to re-sign */
                if (signed_by(&m, rot->old_certs)) {
                        r = rotate_list_add(&rot->s.pending, all.items[i]);
                        found++;
                }
                module_file_close(&m);
        }
        rotate_list_done(&all);
        if (r < 0)
                return log_oom();
        *ret_found = found;
        return 0;
}

/* Re-signs until a scan finds no module of the old key left. */
static int resign_all(struct rotation *rot) {
        int r;

        r = load_new_key(rot);
        if (r < 0)
                return r;
        for (unsigned pass = 0; pass < MAX_PASSES; pass++) {
                size_t found = 0;

                r = resign_pending(rot);
                if (r < 0)
                        return r;
                if (rot->failed > 0) {
                        log_error("%u module(s) could not be re-signed and stay pending; fix that, then run "
                                  "'modsignctl rotate --resume'",
                                  rot->failed);
                        return -EIO;
                }
                r = scan_old(rot, &found);
                if (r < 0)
                        return r;
                if (found == 0)
                        return 0;
                log_notice("%zu more module(s) signed by the old key found; re-signing them", found);
                r = save(rot);
                if (r < 0)
                        return r;
        }
        log_error("modules signed by the old key keep appearing (is something still signing with it?)");
        return -EBUSY;
}

/* ---- the switch ---- */

static int reload_daemon(struct rotation *rot, const struct config *cfg) {
        _cleanup_close_ int fd = -EBADF;
        json_object *o = NULL, *v;
        const char *fpr = NULL;
        int r, code;

        if (!arg_global.socket_given)
                arg_global.socket_path = cfg->socket_path;
        r = client_connect(arg_global.socket_path, &fd);
        if (r == -ENOENT || r == -ECONNREFUSED) {
                log_notice("modsignd is not running (%s); it reads the new key when it starts", arg_global.socket_path);
                return 0;
        }
        fd = safe_close(fd);
        code = daemon_request(PROTO_REQ_RELOAD, NULL, NULL, RELOAD_TIMEOUT_MS, &o);
        if (code == EXIT_DAEMON_DOWN)
                return 0;
        if (code != EXIT_OK) {
                log_error("modsignd did not take the new configuration; it still signs with the old key. Fix "
                          "that, then run 'modsignctl rotate --resume'");
                return -EIO;
        }
        if (json_object_object_get_ex(o, "key_fingerprint", &v))
                fpr = json_object_get_string(v);
        if (!fpr || !streq(fpr, rot->s.new_fingerprint)) {
                log_error("modsignd reloaded but signs with key %s, not the new %s (does it read the drop-in %s?)",
                          fpr ?: "?", rot->s.new_fingerprint, rot->s.dropin);
                json_object_put(o);
                return -EIO;
        }
        json_object_put(o);
        log_notice("modsignd reloaded: it signs with the new key now");
        return 0;
}

static int retire_old_key(struct rotation *rot) {
        _cleanup_(key_ref_done) struct key_ref ref = {};
        _cleanup_free_ char *retired = NULL;
        struct stat st;
        int r;

        if (rot->s.retired_key || !rot->s.old_key)
                return 0;
        if (key_ref_parse(rot->s.old_key, &ref, NULL) < 0 || ref.backend != KEY_BACKEND_FILE || ref.credential) {
                log_notice("the old key %s is not a file; it stays where it is (remove it from the token or TPM "
                         "once nothing needs it)",
                         rot->s.old_key);
                return 0;
        }
        if (lstat(ref.target, &st) < 0) {
                log_notice("%s: already gone", ref.target);
                rot->s.retired_key = strdup("");
                return rot->s.retired_key ? save(rot) : log_oom();
        }
        if (rot->s.delete_old) {
                if (unlink(ref.target) < 0)
                        return log_error_errno(-errno, "%s: cannot delete the old key: %m", ref.target);
                log_notice("deleted the old key %s", ref.target);
                retired = strdup("");
        } else {
                if (asprintf(&retired, "%s.retired", ref.target) < 0)
                        return log_oom();
                /* Never over an older retired key: that one may still be someone's backup. */
                r = renameat2(AT_FDCWD, ref.target, AT_FDCWD, retired, RENAME_NOREPLACE);
                if (r < 0 && errno == EEXIST) {
                        free(retired);
                        if (asprintf(&retired, "%s.retired.%lld", ref.target, (long long) time(NULL)) < 0)
                                return log_oom();
                        r = renameat2(AT_FDCWD, ref.target, AT_FDCWD, retired, RENAME_NOREPLACE);
                }
                if (r < 0)
                        return log_error_errno(-errno, "%s: cannot rename the old key: %m", ref.target);
                log_notice("the old key is kept as %s (back it up offline, or delete it)", retired);
        }
        if (!retired)
                return log_oom();
        rot->s.retired_key = TAKE_PTR(retired);
        return save(rot);
}

static int do_switch(struct rotation *rot, const struct config *cfg) {
        int r;

        r = rotate_write_dropin(rot->s.dropin, rot->s.new_key, rot->s.new_cert, rot->s.new_pin_file);
        if (r < 0)
                return log_error_errno(r, "%s: cannot write the configuration drop-in: %m", rot->s.dropin);
        log_notice("configuration: %s names the new key", rot->s.dropin);
        r = reload_daemon(rot, cfg);
        if (r < 0)
                return r;
        /* What the daemon signed with the old key before it reloaded. */
        r = resign_all(rot);
        if (r < 0)
                return r;
        return retire_old_key(rot);
}

/* ---- status ---- */

static int show_status(const char *state_dir) {
        _cleanup_(rotate_state_done) struct rotate_state s = {};
        int r;

        r = rotate_state_load(state_dir, &s);
        if (r == -ENOENT) {
                if (arg_global.json)
                        printf("{ \"phase\": null }\n");
                else
                        printf("No key rotation has been started (%s/%s does not exist).\n", state_dir, ROTATE_STATE_FILE);
                return EXIT_OK;
        }
        if (r < 0) {
                log_error_errno(r, "%s/%s: cannot read the rotation state: %m", state_dir, ROTATE_STATE_FILE);
                return EXIT_ERROR;
        }
        if (arg_global.json) {
                json_object *o = NULL, *c;

                if (rotate_state_to_json(&s, &o) < 0 || !(c = json_object_new_object()))
                        return log_oom(), EXIT_ERROR;
                json_object_object_add(c, "pending", json_object_new_int((int) s.pending.n));
                json_object_object_add(c, "done", json_object_new_int((int) s.done.n));
                json_object_object_add(c, "skipped", json_object_new_int((int) s.skipped.n));
                json_object_object_add(o, "counts", c);
                printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                                         JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(o);
                return EXIT_OK;
        }
        char started[32] = "?", updated[32] = "?";
        time_t t;
        struct tm tm;

        t = (time_t) s.started;
        if (gmtime_r(&t, &tm))
                strftime(started, sizeof(started), "%Y-%m-%d %H:%M:%S UTC", &tm);
        t = (time_t) s.updated;
        if (gmtime_r(&t, &tm))
                strftime(updated, sizeof(updated), "%Y-%m-%d %H:%M:%S UTC", &tm);
        printf("Phase:     %s\n"
               "Started:   %s (last update %s)\n"
               "Old key:   %s\n"
               "           certificate %s, SHA-256 %s\n"
               "New key:   %s\n"
               "           certificate %s, SHA-256 %s\n"
               "Modules:   %zu re-signed, %zu pending, %zu left alone\n"
               "Drop-in:   %s\n",
               rotate_phase_to_string(s.phase), started, updated, s.old_key ?: "?", s.old_cert, s.old_fingerprint,
               s.new_key, s.new_cert, s.new_fingerprint, s.done.n, s.pending.n, s.skipped.n, s.dropin);
        if (s.retired_key)
                printf("Old key file: %s\n", *s.retired_key ? s.retired_key : "deleted");
        for (size_t i = 0; i < s.pending.n; i++)
                printf("  pending: %s\n", s.pending.items[i]);
        if (s.phase == ROTATE_WAITING_TRUST)
                printf("\nThe kernel does not trust the new certificate yet: 'modsignctl enroll --cert %s',\n"
                       "reboot, then 'modsignctl rotate --resume'.\n",
                       s.new_cert);
        else if (s.phase != ROTATE_DONE)
                printf("\nInterrupted? 'modsignctl rotate --resume' continues.\n");
        return EXIT_OK;
}

/* ---- the run ---- */

static int stage(struct rotation *rot, const struct rotate_args *a, const struct config *cfg, const char *dropin_dir) {
        _cleanup_free_ char *gen_key = NULL, *gen_cert = NULL;
        char fpr[65];
        int r;

        if (a->generate) {
                r = generate_key(cfg->private_key, a->new_key, a->new_cert, &gen_key, &gen_cert);
                if (r < 0)
                        return r;
        }
        struct rotate_state *s = &rot->s;
        s->phase = ROTATE_STAGED;
        s->old_key = strdup(cfg->private_key);
        s->old_cert = strdup(cfg->certificate);
        s->new_key = gen_key ? TAKE_PTR(gen_key) : strdup(a->new_key);
        s->new_cert = gen_cert ? TAKE_PTR(gen_cert) : strdup(a->new_cert);
        s->new_pin_file = a->pin_file ? strdup(a->pin_file) : NULL;
        s->modules_dir = strdup(a->modules_dir ?: DEFAULT_MODULES_DIR);
        s->dkms_tree = strdup(a->dkms_tree ?: DEFAULT_DKMS_TREE);
        if (a->dropin)
                s->dropin = strdup(a->dropin);
        else if (asprintf(&s->dropin, "%s/%s", dropin_dir, ROTATE_DEFAULT_DROPIN) < 0)
                s->dropin = NULL;
        s->delete_old = a->delete_old;
        if (!s->old_key || !s->old_cert || !s->new_key || !s->new_cert || (a->pin_file && !s->new_pin_file) ||
            !s->modules_dir || !s->dkms_tree || !s->dropin)
                return log_oom();

        /* The new key must load and belong to its certificate before anything is recorded. */
        r = load_new_key(rot);
        if (r < 0)
                return r;
        r = cert_fingerprint_sha256(rot->cert, fpr);
        if (r < 0 || !(s->new_fingerprint = strdup(fpr)))
                return log_oom();
        return 0;
}

static int load_old_cert(struct rotation *rot) {
        _cleanup_(X509_freep) X509 *old = NULL;
        char fpr[65];
        int r;

        r = load_cert_stack(rot->s.old_cert, &old, &rot->old_certs);
        if (r < 0)
                return r;
        r = load_cert_stack(rot->s.new_cert, NULL, &rot->new_certs);
        if (r < 0)
                return r;
        if (cert_fingerprint_sha256(old, fpr) < 0)
                return log_oom();
        if (!rot->s.old_fingerprint) {
                rot->s.old_fingerprint = strdup(fpr);
                if (!rot->s.old_fingerprint)
                        return log_oom();
        } else if (!streq(fpr, rot->s.old_fingerprint)) {
                log_error("%s is no longer the certificate this rotation started from (SHA-256 %s, not %s)",
                          rot->s.old_cert, fpr, rot->s.old_fingerprint);
                return -ESTALE;
        }
        if (rot->s.new_fingerprint && streq(rot->s.old_fingerprint, rot->s.new_fingerprint)) {
                log_error("the new certificate is the one in use (SHA-256 %s); nothing to rotate", fpr);
                return -EINVAL;
        }
        return 0;
}

static int check_trust(struct rotation *rot, bool force, bool *ret_trusted) {
        const char *proc_keys = getenv_or("MODSIGNCTL_PROC_KEYS", "/proc/keys");
        const char *members = getenv("MODSIGNCTL_KEYRING_DIR");
        bool trusted = false;
        int r;

        if (force) {
                log_notice("--force: not checking that the kernel trusts the new certificate");
                *ret_trusted = true;
                return 0;
        }
        if (!rot->cert) {
                r = cert_load_file(rot->s.new_cert, &rot->cert);
                if (r < 0)
                        return log_error_errno(r, "%s: cannot load the certificate: %m", rot->s.new_cert);
        }
        r = kernel_trusts_cert(rot->cert, proc_keys, members && *members ? members : NULL, &trusted);
        if (r < 0)
                log_warning_errno(r, "%s: cannot tell which keys the kernel trusts: %m", proc_keys);
        *ret_trusted = trusted;
        return 0;
}

static int run(struct rotation *rot, const struct rotate_args *a, const struct config *cfg) {
        bool trusted;
        int r;

        for (;;)
                switch (rot->s.phase) {
                case ROTATE_STAGED:
                        r = set_phase(rot, ROTATE_WAITING_TRUST);
                        if (r < 0)
                                return EXIT_ERROR;
                        break;
                case ROTATE_WAITING_TRUST: {
                        size_t found = 0;

                        r = check_trust(rot, a->force, &trusted);
                        if (r < 0)
                                return EXIT_ERROR;
                        if (!trusted) {
                                log_error("the running kernel does not trust the new certificate %s yet; the old key "
                                          "keeps signing. Enroll it ('modsignctl enroll --cert %s'), reboot, then run "
                                          "'modsignctl rotate --resume' (or --force, if you know better)",
                                          rot->s.new_cert, rot->s.new_cert);
                                return EXIT_UNTRUSTED;
                        }
                        r = scan_old(rot, &found);
                        if (r < 0)
                                return EXIT_ERROR;
                        log_notice("%zu module(s) signed by the old key", found);
                        r = set_phase(rot, ROTATE_RESIGNING);
                        if (r < 0)
                                return EXIT_ERROR;
                        break;
                }
                case ROTATE_RESIGNING:
                        r = resign_all(rot);
                        if (r < 0)
                                return EXIT_ERROR;
                        r = set_phase(rot, ROTATE_SWITCHING);
                        if (r < 0)
                                return EXIT_ERROR;
                        break;
                case ROTATE_SWITCHING:
                        r = do_switch(rot, cfg);
                        if (r < 0)
                                return EXIT_ERROR;
                        r = set_phase(rot, ROTATE_DONE);
                        if (r < 0)
                                return EXIT_ERROR;
                        break;
                case ROTATE_DONE:
                default:
                        if (!arg_global.quiet)
                                printf("rotation done: %zu module(s) re-signed, %zu left alone; the new key %s signs "
                                       "from now on\n",
                                       rot->s.done.n, rot->s.skipped.n, rot->s.new_key);
                        return EXIT_OK;
                }
}

/* Only one rotation at a time: an exclusive lock on the state directory while we run. */
static int lock_state_dir(const char *dir, int *ret_fd) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0)
                return log_error_errno(-errno, "%s: cannot open the state directory: %m", dir);
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int r = -errno;
                close(fd);
                if (r == -EWOULDBLOCK)
                        log_error("another 'modsignctl rotate' is running (%s is locked)", dir);
                else
                        log_error_errno(r, "%s: cannot lock: %m", dir);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

int cmd_rotate(int argc, char *argv[]) {
        enum {
                ARG_PIN_FILE = 0x100,
                ARG_RESUME,
                ARG_STATUS,
                ARG_DELETE_OLD,
                ARG_MODULES_DIR,
                ARG_DKMS_TREE,
                ARG_DROPIN,
                ARG_STATE_DIR,
        };
        static const struct option options[] = {
                { "new-key", required_argument, NULL, 'k' },
                { "new-cert", required_argument, NULL, 'c' },
                { "pin-file", required_argument, NULL, ARG_PIN_FILE },
                { "generate", no_argument, NULL, 'g' },
                { "force", no_argument, NULL, 'f' },
                { "resume", no_argument, NULL, ARG_RESUME },
                { "status", no_argument, NULL, ARG_STATUS },
                { "delete-old", no_argument, NULL, ARG_DELETE_OLD },
                { "modules-dir", required_argument, NULL, ARG_MODULES_DIR },
                { "dkms-tree", required_argument, NULL, ARG_DKMS_TREE },
                { "dropin", required_argument, NULL, ARG_DROPIN },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        _cleanup_(config_done) struct config cfg = {};
        _cleanup_free_ char *dropin_dir = NULL, *state_dir = NULL;
        _cleanup_close_ int lock_fd = -EBADF;
        struct rotate_args a = {};
        struct rotation rot = { .crash_after = -1 };
        const char *crash;
        int c, r, code;

        while ((c = getopt_long(argc, argv, "k:c:gfjh", options, NULL)) >= 0)
                switch (c) {
                case 'k':
                        a.new_key = optarg;
                        break;
                case 'c':
                        a.new_cert = optarg;
                        break;
                case ARG_PIN_FILE:
                        a.pin_file = optarg;
                        break;
                case 'g':
                        a.generate = true;
                        break;
                case 'f':
                        a.force = true;
                        break;
                case ARG_RESUME:
                        a.resume = true;
                        break;
                case ARG_STATUS:
                        a.status = true;
                        break;
                case ARG_DELETE_OLD:
                        a.delete_old = true;
                        break;
                case ARG_MODULES_DIR:
                        a.modules_dir = optarg;
                        break;
                case ARG_DKMS_TREE:
                        a.dkms_tree = optarg;
                        break;
                case ARG_DROPIN:
                        a.dropin = optarg;
                        break;
                case ARG_STATE_DIR:
                        a.state_dir = optarg;
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
                log_error("rotate: unexpected argument '%s'", argv[optind]);
                return EXIT_USAGE;
        }
        bool starting = !a.resume && !a.status;
        if (a.resume + a.status > 1) {
                log_error("rotate: --resume and --status do not go together");
                return EXIT_USAGE;
        }
        if (!starting && (a.new_key || a.new_cert || a.generate || a.pin_file || a.modules_dir || a.dkms_tree ||
                          a.dropin || a.delete_old)) {
                log_error("rotate: --%s continues or shows the rotation as it was started; it takes no key, path or "
                          "--delete-old",
                          a.resume ? "resume" : "status");
                return EXIT_USAGE;
        }
        if (a.status && a.force) {
                log_error("rotate: --force goes with starting or resuming a rotation");
                return EXIT_USAGE;
        }
        if (starting && !a.generate && (!a.new_key || !a.new_cert)) {
                log_error("rotate: give the new key and its certificate (--new-key REF --new-cert FILE), or --generate");
                return EXIT_USAGE;
        }
        const char *const paths[] = { a.modules_dir, a.dkms_tree, a.dropin, a.new_cert, a.pin_file };
        for (size_t i = 0; i < ELEMENTSOF(paths); i++)
                if (paths[i] && paths[i][0] != '/' && !(paths[i] == a.pin_file && strncmp(paths[i], "credential:", 11) == 0)) {
                        log_error("rotate: %s: give an absolute path (the configuration and --resume keep it)", paths[i]);
                        return EXIT_USAGE;
                }
        if (a.new_key && a.new_key[0] != '/' && strncmp(a.new_key, "pkcs11:", 7) != 0 &&
            strncmp(a.new_key, "handle:", 7) != 0 && strncmp(a.new_key, "object:/", 8) != 0 &&
            strncmp(a.new_key, "credential:", 11) != 0) {
                log_error("rotate: --new-key %s: give an absolute path or a pkcs11:, handle:, object: or credential: "
                          "reference",
                          a.new_key);
                return EXIT_USAGE;
        }

        r = load_config(&cfg, &dropin_dir);
        if (r < 0)
                return EXIT_ERROR;
        if (a.state_dir)
                state_dir = strdup(a.state_dir);
        else if (getenv(AUDIT_STATE_DIR_ENV) && *getenv(AUDIT_STATE_DIR_ENV))
                state_dir = strdup(getenv(AUDIT_STATE_DIR_ENV));
        else
                state_dir = strdup(cfg.state_directory);
        if (!state_dir)
                return log_oom(), EXIT_ERROR;

        if (a.status)
                return show_status(state_dir);

        if (mkdir(state_dir, 0700) < 0 && errno != EEXIST) {
                log_error_errno(-errno, "%s: cannot make the state directory: %m", state_dir);
                return EXIT_ERROR;
        }
        if (lock_state_dir(state_dir, &lock_fd) < 0)
                return EXIT_ERROR;
        rot.state_dir = state_dir;
        crash = getenv("MODSIGNCTL_ROTATE_CRASH_AFTER");
        if (crash && *crash)
                rot.crash_after = strtol(crash, NULL, 10);

        r = rotate_state_load(state_dir, &rot.s);
        if (r < 0 && r != -ENOENT) {
                log_error_errno(r, "%s/%s: cannot read the rotation state: %m%s", state_dir, ROTATE_STATE_FILE,
                                r == -EBADMSG ? " (not a rotation state; move it away to start afresh)" : "");
                code = EXIT_ERROR;
                goto finish;
        }
        if (a.resume) {
                if (r == -ENOENT || rot.s.phase == ROTATE_DONE) {
                        log_error("rotate --resume: no rotation in progress");
                        code = EXIT_ERROR;
                        goto finish;
                }
                log_notice("resuming the rotation in phase %s (%zu module(s) pending, %zu done)",
                         rotate_phase_to_string(rot.s.phase), rot.s.pending.n, rot.s.done.n);
        } else {
                if (r >= 0 && rot.s.phase != ROTATE_DONE) {
                        log_error("a key rotation is in progress (phase %s, %zu module(s) pending, %zu done, new key "
                                  "%s); continue it with 'modsignctl rotate --resume', see 'modsignctl rotate --status'",
                                  rotate_phase_to_string(rot.s.phase), rot.s.pending.n, rot.s.done.n, rot.s.new_key);
                        code = EXIT_ERROR;
                        goto finish;
                }
                rotate_state_done(&rot.s);
                r = stage(&rot, &a, &cfg, dropin_dir);
                if (r < 0) {
                        code = r == -EINVAL ? EXIT_USAGE : EXIT_ERROR;
                        goto finish;
                }
        }
        r = load_old_cert(&rot);
        if (r < 0) {
                code = EXIT_ERROR;
                goto finish;
        }
        if (!a.resume && save(&rot) < 0) {
                code = EXIT_ERROR;
                goto finish;
        }
        code = run(&rot, &a, &cfg);
finish:
        rotation_done(&rot);
        return code;
}
