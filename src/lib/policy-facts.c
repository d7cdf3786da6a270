/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "approvals.h"
#include "digest.h"
#include "io-util.h"
#include "key.h"
#include "keyring.h"
#include "macro.h"
#include "modsign.h"
#include "openssl-util.h"
#include "policy-facts.h"
#include "verify.h"

#define DKMS_CONF_MAX ((size_t) 1 << 20)

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);

/* One assignment's value, unquoted; NULL when it needs the shell (expansions, several words). */
static char *conf_value(const char *v) {
        size_t n = strcspn(v, "\n");
        char q = 0;

        if (n > 0 && (v[0] == '"' || v[0] == '\'')) {
                q = v[0];
                v++;
                n--;
                const char *end = memchr(v, q, n);
                if (!end)
                        return NULL;
                n = (size_t) (end - v);
        } else {
                /* unquoted: up to a blank or a comment */
                n = strcspn(v, " \t#;\n");
        }
        for (size_t i = 0; i < n; i++)
                if (v[i] == '$' || v[i] == '`' || v[i] == '\\' || v[i] == ' ' || v[i] == '\t' ||
                    (q != '\'' && v[i] == '"'))
                        return NULL;
        return n ? strndup(v, n) : NULL;
}

/* NAME[digits]= or NAME= at the start of a line (after blanks): the value's start, or NULL. */
static const char *assignment(const char *line, const char *name, bool indexed) {
        size_t n = strlen(name);

        line += strspn(line, " \t");
        if (strncmp(line, name, n) != 0)
                return NULL;
        line += n;
        if (indexed) {
                if (*line != '[')
                        return NULL;
                line++;
                if (*line < '0' || *line > '9')
                        return NULL;
                line += strspn(line, "0123456789");
                if (*line != ']')
                        return NULL;
                line++;
        }
        return *line == '=' ? line + 1 : NULL;
}

int dkms_conf_builds(const char *dkms_conf_path, const char *module_name) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL, *package = NULL;
        char want[256];
        bool any_module = false, found = false;
        size_t len = 0;
        struct stat st;
        int r;

        /* DKMSTREE/NAME/VERSION/source is a symlink to /usr/src/NAME-VERSION by design: follow
         * it, but insist on what it leads to being root's. */
        fd = openat_regular(AT_FDCWD, dkms_conf_path, O_RDONLY | O_NONBLOCK, 0, &st);
        if (fd < 0)
                return fd;
        if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))
                return -EPERM;
        r = read_full_fd(fd, DKMS_CONF_MAX, &buf, &len);
        if (r < 0)
                return r;
        policy_normalize_name(module_name, want, sizeof(want));

        for (char *line = buf; line && *line;) {
                char *next = strchr(line, '\n');
                const char *v;

                if (next)
                        *next++ = '\0';
                if ((v = assignment(line, "BUILT_MODULE_NAME", true)) || (v = assignment(line, "DEST_MODULE_NAME", true))) {
                        _cleanup_free_ char *val = conf_value(v);
                        char have[256];

                        any_module = true;
                        if (val) {
                                policy_normalize_name(val, have, sizeof(have));
                                found = found || streq(have, want);
                        }
                } else if ((v = assignment(line, "PACKAGE_NAME", false))) {
                        free(package);
                        package = conf_value(v);
                }
                line = next;
        }
        if (!any_module && package) {
                char have[256];
                policy_normalize_name(package, have, sizeof(have));
                found = streq(have, want);
        }
        return found;
}

static bool good_component(const char *s, size_t n) {
        return n > 0 && !(n == 1 && s[0] == '.') && !(n == 2 && s[0] == '.' && s[1] == '.') && memchr(s, '/', n) == NULL;
}

/* Splits 'rest' into up to 'max' components. */
static size_t split(const char *rest, const char **comp, size_t *len, size_t max) {
        size_t n = 0;

        while (*rest && n < max) {
                size_t l = strcspn(rest, "/");
                if ((l == 1 && rest[0] == '.') || (l == 2 && rest[0] == '.' && rest[1] == '.'))
                        return max + 1; /* a path that climbs is no DKMS place */
                if (l > 0) {
                        comp[n] = rest;
                        len[n++] = l;
                }
                rest += l;
                rest += *rest == '/';
        }
        return *rest ? max + 1 : n;
}

static int check_package(const char *tree, const char *package, const char *version, const char *module_name,
                         bool *ret) {
        _cleanup_free_ char *conf = NULL;
        int r;

        if (asprintf(&conf, "%s/%s/%s/source/dkms.conf", tree, package, version) < 0)
                return -ENOMEM;
        r = dkms_conf_builds(conf, module_name);
        *ret = r > 0;
        return r == -ENOMEM ? r : 0;
}

/* The package (built for 'release') whose dkms.conf builds module_name: an installed copy
 * says only its kernel and its name. */
static int find_installed_package(const char *tree, const char *module_name, const char *release,
                                  struct policy_dkms_info *info) {
        _cleanup_(closedirp) DIR *d = opendir(tree);
        struct dirent *de;

        if (!d)
                return 0;
        while ((de = readdir(d))) {
                _cleanup_free_ char *pdir = NULL;
                _cleanup_(closedirp) DIR *pd = NULL;
                struct dirent *ve;

                if (de->d_name[0] == '.' || asprintf(&pdir, "%s/%s", tree, de->d_name) < 0)
                        continue;
                pd = opendir(pdir);
                if (!pd)
                        continue;
                while ((ve = readdir(pd))) {
                        _cleanup_free_ char *kdir = NULL;
                        struct stat st;
                        bool yes = false;

                        if (ve->d_name[0] == '.' || asprintf(&kdir, "%s/%s/%s", pdir, ve->d_name, release) < 0)
                                continue;
                        if (stat(kdir, &st) < 0 || !S_ISDIR(st.st_mode))
                                continue; /* not built for this kernel */
                        if (check_package(tree, de->d_name, ve->d_name, module_name, &yes) < 0)
                                return -ENOMEM;
                        if (yes) {
                                info->package = strdup(de->d_name);
                                info->version = strdup(ve->d_name);
                                if (!info->package || !info->version)
                                        return -ENOMEM;
                                info->registered = true;
                                return 0;
                        }
                }
        }
        return 0;
}

int policy_dkms_lookup(const char *dkms_tree, const char *path, const char *module_name, const char *release,
                       struct policy_dkms_info *ret) {
        struct policy_dkms_info info = {};
        const char *comp[8], *p;
        size_t len[8], n, tl;
        int r = 0;

        *ret = info;
        if (!path || path[0] != '/')
                return 0;
        tl = dkms_tree ? strlen(dkms_tree) : 0;
        while (tl > 1 && dkms_tree[tl - 1] == '/')
                tl--;
        if (tl > 0 && strncmp(path, dkms_tree, tl) == 0 && path[tl] == '/') {
                /* NAME/VERSION/KVER/ARCH/module/FILE, or NAME/VERSION/build/.../FILE */
                n = split(path + tl + 1, comp, len, ELEMENTSOF(comp));
                if (n < 4 || n > ELEMENTSOF(comp) || !good_component(comp[0], len[0]) || !good_component(comp[1], len[1]))
                        return 0;
                if (len[2] == 5 && strncmp(comp[2], "build", 5) == 0)
                        info.place = POLICY_DKMS_BUILD;
                else if (n == 6 && len[4] == 6 && strncmp(comp[4], "module", 6) == 0)
                        info.place = POLICY_DKMS_TREE;
                else
                        return 0;
                info.package = strndup(comp[0], len[0]);
                info.version = strndup(comp[1], len[1]);
                if (!info.package || !info.version) {
                        policy_dkms_info_done(&info);
                        return -ENOMEM;
                }
                _cleanup_free_ char *t = strndup(dkms_tree, tl);
                if (!t)
                        r = -ENOMEM;
                else
                        r = check_package(t, info.package, info.version, module_name, &info.registered);
                /* A tree copy for another kernel than its vermagic says is not that build. */
                if (info.place == POLICY_DKMS_TREE && release && (len[2] != strlen(release) || strncmp(comp[2], release, len[2])))
                        info.registered = false;
        } else if ((p = strstr(path, "/lib/modules/"))) {
                /* ROOT/lib/modules/KVER/updates/dkms/FILE */
                n = split(p + strlen("/lib/modules/"), comp, len, ELEMENTSOF(comp));
                if (n != 4 || len[1] != 7 || strncmp(comp[1], "updates", 7) || len[2] != 4 || strncmp(comp[2], "dkms", 4) ||
                    !good_component(comp[0], len[0]))
                        return 0;
                info.place = POLICY_DKMS_INSTALLED;
                _cleanup_free_ char *kver = strndup(comp[0], len[0]), *t = tl ? strndup(dkms_tree, tl) : NULL;
                if (!kver || (tl && !t))
                        r = -ENOMEM;
                else if (t && (!release || streq(kver, release)))
                        r = find_installed_package(t, module_name, kver, &info);
        }
        if (r < 0) {
                policy_dkms_info_done(&info);
                return r;
        }
        *ret = info;
        return 0;
}

void policy_dkms_info_done(struct policy_dkms_info *i) {
        free(i->package);
        free(i->version);
        *i = (struct policy_dkms_info) {};
}

static int asn1_time(const ASN1_TIME *a, time_t *ret) {
        struct tm tm = {};

        if (!a || ASN1_TIME_to_tm(a, &tm) != 1)
                return -EBADMSG;
        *ret = timegm(&tm);
        return 0;
}

int policy_cert_facts(X509 *cert, struct policy_cert *ret) {
        struct policy_cert c = { .known = true };
        BIGNUM *bn;
        char *hex;
        uint32_t flags;
        int r;

        if (asn1_time(X509_get0_notBefore(cert), &c.not_before) < 0 ||
            asn1_time(X509_get0_notAfter(cert), &c.not_after) < 0)
                return -EBADMSG;
        r = cert_fingerprint_sha256(cert, c.fingerprint);
        if (r < 0)
                return r;
        bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
        hex = bn ? BN_bn2hex(bn) : NULL;
        BN_free(bn);
        if (!hex)
                return -ENOMEM;
        for (size_t i = 0, n = 0; hex[i] && n + 1 < sizeof(c.serial); i++)
                if (hex[i] != '-') {
                        c.serial[n++] = (char) (hex[i] >= 'A' && hex[i] <= 'F' ? hex[i] - 'A' + 'a' : hex[i]);
                        c.serial[n] = '\0';
                }
        OPENSSL_free(hex);

        flags = X509_get_extension_flags(cert); /* also computes the cached usages */
        c.has_eku = flags & EXFLAG_XKUSAGE;
        c.eku_code_signing = X509_get_extended_key_usage(cert) & (XKU_CODE_SIGN | XKU_ANYEKU);
        c.has_key_usage = flags & EXFLAG_KUSAGE;
        c.key_usage_digital_signature = X509_get_key_usage(cert) & KU_DIGITAL_SIGNATURE;
        *ret = c;
        return 0;
}

static int verify_with(const struct module_file *m, X509 *cert) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *one = sk_X509_new_null();

        if (!one || !X509_up_ref(cert))
                return -ENOMEM;
        if (!sk_X509_push(one, cert)) {
                X509_free(cert);
                return -ENOMEM;
        }
        return modsign_verify(m, one, NULL);
}

int policy_signature_state(const struct module_file *m, X509 *ours, STACK_OF(X509) *trusted,
                           enum policy_signature *ret) {
        int r;

        if (m->meta.n_signatures == 0) {
                *ret = POLICY_SIG_NONE;
                return 0;
        }
        if (ours) {
                r = verify_with(m, ours);
                if (r == 0 || r == -EKEYREJECTED) {
                        *ret = r == 0 ? POLICY_SIG_OURS_VALID : POLICY_SIG_OURS_STALE;
                        return 0;
                }
                if (r == -ENOMEM)
                        return r;
        }
        if (trusted && sk_X509_num(trusted) > 0) {
                r = modsign_verify(m, trusted, NULL);
                if (r == 0) {
                        *ret = POLICY_SIG_TRUSTED;
                        return 0;
                }
                if (r == -ENOMEM)
                        return r;
        }
        *ret = POLICY_SIG_OTHER;
        return 0;
}

void policy_env_kernel_keys(const char **ret_proc_keys, const char **ret_keyring_dir) {
        const char *p = getenv(KERNEL_PROC_KEYS_ENV), *d = getenv(KERNEL_KEYRING_DIR_ENV);

        *ret_proc_keys = p && *p ? p : KERNEL_PROC_KEYS_DEFAULT;
        *ret_keyring_dir = d && *d ? d : NULL;
}

int policy_kernel_signature(const struct module_file *m, const char *proc_keys, const char *keyring_dir,
                            bool fail_closed, enum policy_signature *ret, char **ret_why) {
        _cleanup_free_ uint8_t *der = NULL;
        struct sig_details d = {};
        struct kernel_signer_trust t;
        size_t len = 0;
        char *why = NULL;
        int r;

        *ret = POLICY_SIG_OTHER;
        *ret_why = NULL;
        r = module_file_read_signature(m, &der, &len);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || sig_describe(der, len, &d) < 0)
                return 0; /* no signature the kernel could check, so none of its keys made it */

        r = kernel_signer_trust(&(struct kernel_signer) { .key_id = d.key_id, .issuer = d.key_id ? NULL : d.issuer_kernel },
                                proc_keys, keyring_dir, &t);
        if (r == -ENOMEM)
                goto out;
        if (r < 0) {
                if (fail_closed) {
                        if (asprintf(&why, "the kernel's keyrings cannot be read (%s: %s), so a signature by another key "
                                     "counts as the kernel's, failing closed", proc_keys, strerror(-r)) < 0) {
                                r = -ENOMEM;
                                goto out;
                        }
                        *ret = POLICY_SIG_TRUSTED;
                }
                r = 0;
                goto out;
        }
        r = 0;
        if (t.match == KERNEL_SIGNER_BY_KEY_ID)
                r = asprintf(&why, "its signer's subjectKeyIdentifier %s is key '%s' of %s", d.key_id, t.key, t.keyring);
        else if (t.match == KERNEL_SIGNER_BY_NAME)
                r = asprintf(&why, "its signer, issuer '%s' serial %s, has the name of key '%s' of %s; /proc/keys shows "
                             "no serial numbers, so the name alone counts, failing closed", d.issuer_kernel,
                             d.serial ?: "?", t.key, t.keyring);
        if (r < 0) {
                r = -ENOMEM;
                goto out;
        }
        if (why)
                *ret = POLICY_SIG_TRUSTED;
        r = 0;
out:
        sig_details_done(&d);
        *ret_why = why;
        return r;
}

bool policy_kernel_installed(const char *path, const char *sysroot, const char *release) {
        _cleanup_free_ char *dir = NULL;
        const char *p = path ? strstr(path, "/lib/modules/") : NULL;
        struct stat st;
        int r;

        if (!release || !*release || strchr(release, '/') || streq(release, ".") || streq(release, ".."))
                return false;
        if (p)
                r = asprintf(&dir, "%.*s/lib/modules/%s", (int) (p - path), path, release);
        else
                r = asprintf(&dir, "/lib/modules/%s", release);
        if (r >= 0 && stat(dir, &st) >= 0 && S_ISDIR(st.st_mode))
                return true;
        if (!p && sysroot && !streq(sysroot, "/")) {
                /* An image being built may have the kernel's image or configuration before its
                 * modules directory: either says the kernel is there. */
                static const char *const boot[] = { "lib/modules", "boot/config", "boot/vmlinuz" };
                for (size_t i = 0; i < ELEMENTSOF(boot); i++) {
                        _cleanup_free_ char *f = NULL;
                        if (asprintf(&f, "%s/%s%s%s", sysroot, boot[i], i == 0 ? "/" : "-", release) >= 0 &&
                            stat(f, &st) >= 0)
                                return true;
                }
        }
        return false;
}

int policy_gather(const struct policy_env *env, const struct policy_request *req, struct policy_gathered *ret) {
        struct policy_gathered g = {};
        struct policy_facts *f = &g.facts;
        struct module_file *m = req->m;
        const char *where = req->dkms_origin && req->dkms_path ? req->dkms_path : req->path;
        struct timespec ts;
        struct stat st;
        int r;

        *f = (struct policy_facts) {
                .requester = req->requester,
                .path = req->path,
                .hash = req->hash,
                .allow_weak_hash = req->allow_weak_hash,
                .replace_foreign = req->replace_foreign,
                .requester_uid = req->requester_uid,
                .dkms_origin = req->dkms_origin,
                .now = time(NULL),
        };
        if (clock_gettime(CLOCK_REALTIME, &ts) >= 0) /* the rate limit's, shared between processes */
                f->now_usec = (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
        if (env->cert)
                f->cert = *env->cert;

        /* The name rules compare: modinfo's name=, else the file's. */
        if (m && m->meta.name)
                g.module_name = strdup(m->meta.name);
        else if (req->path || req->file_name) {
                char n[256];
                policy_normalize_name(req->path ?: req->file_name, n, sizeof(n));
                g.module_name = strdup(n);
        }
        if ((m && m->meta.name) || req->path || req->file_name)
                if (!g.module_name)
                        return -ENOMEM;
        f->module_name = g.module_name;

        if (m) {
                f->is_module = true;
                f->compressed = m->compression != COMPRESSION_NONE;
                if (req->release)
                        g.release = strdup(req->release);
                else if (module_vermagic_release(m->meta.vermagic, &g.release) < 0)
                        g.release = NULL;
                f->release = g.release;
                f->kernel_installed = policy_kernel_installed(req->path, req->sysroot, g.release);
                if (module_file_sha256(m, g.sha256) >= 0)
                        f->sha256 = g.sha256;
                f->have_owner = true;
                f->file_uid = m->st.st_uid;
                r = policy_signature_state(m, env->our_cert, env->trusted, &f->signature);
                if (r < 0)
                        goto fail;
                /* Unreadable keyrings fail closed only where the answer matters: a module signed
                 * by another key is refused anyway unless the CLI's --replace asks otherwise. */
                if (f->signature == POLICY_SIG_OTHER && env->proc_keys) {
                        r = policy_kernel_signature(m, env->proc_keys, env->keyring_dir, req->replace_foreign,
                                                    &f->signature, &g.signature_trust);
                        if (r < 0)
                                goto fail;
                        f->signature_trust = g.signature_trust;
                }
        }
        if (req->dir_fd >= 0 && fstat(req->dir_fd, &st) >= 0) {
                f->have_dir = true;
                f->dir_uid = st.st_uid;
                f->dir_mode = st.st_mode;
        }
        if (f->module_name) {
                r = policy_dkms_lookup(env->dkms_tree, where, f->module_name, f->release, &g.dkms);
                if (r < 0)
                        goto fail;
                f->dkms_place = g.dkms.place;
                f->dkms_package = g.dkms.package;
                f->dkms_version = g.dkms.version;
                f->dkms_registered = g.dkms.registered;
                if (env->policy && env->policy->mode == POLICY_MODE_APPROVE && env->state_dir)
                        f->approved = approvals_is_approved(env->state_dir, f->module_name) > 0;
        }
        *ret = g;
        /* the digest lives in *ret now, not in our copy */
        ret->facts.sha256 = f->sha256 ? ret->sha256 : NULL;
        return 0;
fail:
        policy_gathered_done(&g);
        return r;
}

void policy_gathered_done(struct policy_gathered *g) {
        free(g->module_name);
        free(g->release);
        free(g->signature_trust);
        policy_dkms_info_done(&g->dkms);
        *g = (struct policy_gathered) {};
}

int policy_load_trusted(const struct config *c, STACK_OF(X509) **ret, char **ret_error) {
        STACK_OF(X509) *s = sk_X509_new_null();
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (!s)
                return -ENOMEM;
        for (size_t i = 0; i < c->trusted_certificates.n; i++) {
                r = certs_load_path(c->trusted_certificates.items[i], s);
                if (r < 0) {
                        if (ret_error && asprintf(ret_error, "TrustedCertificates=%s: %s", c->trusted_certificates.items[i],
                                                  r == -EBADMSG ? "not PEM or DER certificates" : strerror(-r)) < 0)
                                *ret_error = NULL;
                        sk_X509_pop_free(s, X509_free);
                        return r;
                }
        }
        *ret = s;
        return 0;
}
