/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "macro.h"
#include "policy.h"
#include "sign.h"

static const char *const requester_names[_POLICY_REQUESTER_MAX] = {
        [POLICY_REQUESTER_DKMS_SHIM] = "dkms-shim",
        [POLICY_REQUESTER_SOCKET] = "socket",
        [POLICY_REQUESTER_WATCHER] = "watcher",
        [POLICY_REQUESTER_CLI] = "cli",
};

const char *policy_requester_to_string(enum policy_requester r) {
        return (size_t) r < ELEMENTSOF(requester_names) ? requester_names[r] : NULL;
}

void policy_normalize_name(const char *in, char *out, size_t size) {
        static const char *const suffixes[] = { ".ko.xz", ".ko.zst", ".ko.gz", ".ko" };
        size_t n = 0, len;
        const char *base = strrchr(in, '/');

        if (size == 0)
                return;
        in = base ? base + 1 : in;
        len = strlen(in);
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                size_t s = strlen(suffixes[i]);
                if (len > s && streq(in + len - s, suffixes[i])) {
                        len -= s;
                        break;
                }
        }
        for (size_t i = 0; i < len && n + 1 < size; i++)
                out[n++] = in[i] == '-' ? '_' : in[i];
        out[n] = '\0';
}

bool policy_name_matches(const char *glob, const char *name) {
        char g[256], nm[256];
        size_t n = 0;

        /* The glob gets only the '-' -> '_' folding: its own ".ko" (if any) is kept. */
        for (const char *p = glob; *p && n + 1 < sizeof(g); p++)
                g[n++] = *p == '-' ? '_' : *p;
        g[n] = '\0';
        policy_normalize_name(name, nm, sizeof(nm));
        return fnmatch(g, nm, 0) == 0;
}

static bool any_matches(char *const *globs, size_t n, const char *name, const char **ret_glob) {
        for (size_t i = 0; i < n; i++)
                if (policy_name_matches(globs[i], name)) {
                        if (ret_glob)
                                *ret_glob = globs[i];
                        return true;
                }
        return false;
}

/* Serial numbers compare without leading zeros (00:ab and ab are the same number). */
static const char *skip_zeros(const char *s) {
        while (s[0] == '0' && s[1])
                s++;
        return s;
}

static bool cert_revoked(const struct policy *p, const struct policy_cert *c) {
        for (size_t i = 0; i < p->n_revoked; i++) {
                if (streq(p->revoked[i], c->fingerprint))
                        return true;
                if (c->serial[0] && streq(skip_zeros(p->revoked[i]), skip_zeros(c->serial)))
                        return true;
        }
        return false;
}

_printf_(3, 4) static void refuse(struct policy_decision *d, const char *rule, const char *fmt, ...) {
        va_list ap;

        d->allow = false;
        d->rule = rule;
        va_start(ap, fmt);
        (void) vsnprintf(d->reason, sizeof(d->reason), fmt, ap);
        va_end(ap);
}

_printf_(3, 4) static void admit(struct policy_decision *d, const char *rule, const char *fmt, ...) {
        va_list ap;

        d->allow = true;
        d->rule = rule;
        va_start(ap, fmt);
        (void) vsnprintf(d->reason, sizeof(d->reason), fmt, ap);
        va_end(ap);
}

#define REFUSE(...)                       \
        do {                              \
                refuse(d, __VA_ARGS__);   \
                return;                   \
        } while (0)
#define ADMIT(...)                        \
        do {                              \
                admit(d, __VA_ARGS__);    \
                return;                   \
        } while (0)

/* The Mode= rule (and Allow=, which admits in every mode). true: admitted. */
static bool mode_rule(const struct policy *p, const struct policy_facts *f, const char *name,
                      struct policy_decision *d) {
        const char *glob = NULL;

        if (any_matches(p->allow, p->n_allow, name, &glob)) {
                admit(d, "allowlist", "module name %s matches Allow=%s", name, glob);
                return true;
        }
        switch (p->mode) {
        case POLICY_MODE_ALLOWLIST:
                refuse(d, "not-allowlisted", "module name %s matches no Allow= glob (Mode=allowlist)", name);
                return false;
        case POLICY_MODE_APPROVE:
                if (f->approved) {
                        admit(d, "approved", "module name %s was approved (modsignctl approve)", name);
                        return true;
                }
                refuse(d, "not-approved", "module name %s is new: it waits for 'modsignctl approve %s' (Mode=approve)",
                       name, name);
                d->pending = true;
                return false;
        case POLICY_MODE_DKMS:
        default: {
                /* A build directory counts only with the shim's word that DKMS is building. */
                bool place = f->dkms_place == POLICY_DKMS_TREE || f->dkms_place == POLICY_DKMS_INSTALLED ||
                             (f->dkms_place == POLICY_DKMS_BUILD && f->dkms_origin &&
                              f->requester == POLICY_REQUESTER_DKMS_SHIM);
                if (!place) {
                        if (f->dkms_origin)
                                refuse(d, "not-dkms",
                                       "the DKMS shim's module is not in a DKMS build directory (Mode=dkms)");
                        else
                                refuse(d, "not-dkms",
                                       "not built by DKMS: neither in a DKMS tree nor sent by the DKMS shim during a "
                                       "build (Mode=dkms)");
                        return false;
                }
                if (!f->dkms_registered) {
                        refuse(d, "dkms-unregistered", "module name %s is not one that DKMS package %s%s%s builds "
                               "(BUILT_MODULE_NAME/DEST_MODULE_NAME in its dkms.conf)", name,
                               f->dkms_package ?: "(none)", f->dkms_version ? "/" : "", f->dkms_version ?: "");
                        return false;
                }
                admit(d, "dkms", "built by DKMS package %s/%s", f->dkms_package ?: "?", f->dkms_version ?: "?");
                return true;
        }
        }
}

static bool rate_take(const struct policy *p, struct policy_rate *r, uint64_t now) {
        double per_usec;

        if (!r || p->rate_tokens == 0 || p->rate_interval_usec == 0)
                return true;
        per_usec = (double) p->rate_tokens / (double) p->rate_interval_usec;
        if (!r->started) {
                r->started = true;
                r->tokens = p->rate_tokens;
                r->last_usec = now;
        } else {
                if (now > r->last_usec)
                        r->tokens += (double) (now - r->last_usec) * per_usec;
                /* (a clock set back refills nothing, and counts on from now) */
                if (r->tokens > p->rate_tokens)
                        r->tokens = p->rate_tokens; /* also when RateLimit= was lowered */
                r->last_usec = now;
        }
        if (r->tokens < 1.0)
                return false;
        r->tokens -= 1.0;
        return true;
}

void policy_decide(const struct policy *p, const struct policy_facts *f, struct policy_rate *rate,
                   struct policy_decision *d) {
        char name[256];
        const char *glob = NULL;

        *d = (struct policy_decision) {};
        policy_normalize_name(f->module_name ?: f->path ?: "", name, sizeof(name));

        if (!f->is_module)
                REFUSE("not-a-module", "not an ELF relocatable kernel module");
        if (!f->release || !*f->release)
                REFUSE("vermagic", "no kernel release given and no usable vermagic");
        /* modsignctl sign signs for kernels elsewhere too (an image, a cross build, a test kernel
         * under qemu): the operator names the file and holds the key. The daemon and the DKMS
         * shim sign for this machine only. */
        if (!f->kernel_installed && f->requester != POLICY_REQUESTER_CLI)
                REFUSE("kernel-not-installed", "built for a kernel that is not installed (%s)", f->release);
        if (f->compressed && (f->requester == POLICY_REQUESTER_SOCKET || f->requester == POLICY_REQUESTER_DKMS_SHIM))
                REFUSE("compressed",
                              "compressed module: send it before compression, or sign it in place with 'modsignctl sign'");
        if (f->hash && !streq(f->hash, "auto")) {
                enum hash_strength h = hash_classify(f->hash);
                if (h != HASH_STRONG && !(h == HASH_WEAK && f->allow_weak_hash))
                        REFUSE("hash", "hash not allowed (use sha256, sha384, sha512 or auto): %s", f->hash);
        }
        if (f->have_owner && f->file_uid != 0 && f->file_uid != f->requester_uid)
                REFUSE("file-owner", "the file is owned by uid %u, not root", (unsigned) f->file_uid);
        if (f->have_dir && (f->dir_mode & (S_IWGRP | S_IWOTH)))
                REFUSE("dir-writable", "its directory is %s-writable (mode %04o)",
                              (f->dir_mode & S_IWOTH) ? "world" : "group", (unsigned) (f->dir_mode & 07777));
        if (f->sha256) {
                for (size_t i = 0; i < p->n_block_sha256; i++)
                        if (streq(p->block_sha256[i], f->sha256))
                                REFUSE("blocklist", "its SHA-256 %s is on the blocklist", f->sha256);
        } else if (f->is_module && p->n_block_sha256 > 0)
                /* Unreadable, or changed while it was read: it cannot be checked, so it is not signed. */
                REFUSE("blocklist", "its SHA-256 could not be computed to check the blocklist");
        if (any_matches(p->block_names, p->n_block_names, name, &glob))
                REFUSE("blocklist", "module name %s matches blocklist entry %s", name, glob);
        if (any_matches(p->deny, p->n_deny, name, &glob))
                REFUSE("deny", "module name %s matches Deny=%s", name, glob);

        if (f->cert.known) {
                if (f->now > f->cert.not_after)
                        REFUSE("cert-expired", "the signing certificate %.16s... expired", f->cert.fingerprint);
                if (f->now < f->cert.not_before)
                        REFUSE("cert-expired", "the signing certificate %.16s... is not valid yet",
                                      f->cert.fingerprint);
                if (cert_revoked(p, &f->cert))
                        REFUSE("cert-revoked", "the signing certificate %.16s... (serial %s) is revoked",
                                      f->cert.fingerprint, f->cert.serial);
                if (f->cert.has_eku && !f->cert.eku_code_signing)
                        REFUSE("cert-usage",
                                      "the signing certificate's extendedKeyUsage does not include codeSigning");
                if (f->cert.has_key_usage && !f->cert.key_usage_digital_signature)
                        REFUSE("cert-usage", "the signing certificate's keyUsage does not include digitalSignature");
        }

        switch (f->signature) {
        case POLICY_SIG_TRUSTED:
                if (f->signature_trust)
                        REFUSE("signed-by-trusted-key", "already signed by a key the kernel trusts (%s); never re-signed",
                               f->signature_trust);
                REFUSE("signed-by-trusted-key",
                              "already signed by a key the kernel trusts (TrustedCertificates=); never re-signed");
        case POLICY_SIG_OTHER:
                if (!f->replace_foreign)
                        REFUSE("signed-by-another-key",
                                      "already signed by another key; modsignd does not replace other keys' signatures");
                break;
        case POLICY_SIG_OURS_VALID:
                ADMIT("ours", "already signed by our key");
        case POLICY_SIG_NONE:
        case POLICY_SIG_OURS_STALE:
        default:
                break;
        }

        /* An operator naming the file on modsignctl sign's command line is its provenance. */
        if (f->requester == POLICY_REQUESTER_CLI) {
                if (any_matches(p->allow, p->n_allow, name, &glob))
                        admit(d, "allowlist", "module name %s matches Allow=%s", name, glob);
                else
                        admit(d, "cli", "named on modsignctl sign's command line by root");
        } else if (!mode_rule(p, f, name, d))
                return;

        if (!rate_take(p, rate, f->now_usec)) {
                d->pending = false;
                REFUSE("rate-limit", "more than %u signatures in %llu s (RateLimit=)", p->rate_tokens,
                              (unsigned long long) (p->rate_interval_usec / 1000000));
        }
}

/* --- the files [Policy] names ------------------------------------------------------------- */

static int push(char ***v, size_t *n, const char *s) {
        char **items = reallocarray(*v, *n + 1, sizeof(char *));

        if (!items)
                return -ENOMEM;
        *v = items;
        items[*n] = strdup(s);
        if (!items[*n])
                return -ENOMEM;
        (*n)++;
        return 0;
}

static void free_list(char ***v, size_t *n) {
        for (size_t i = 0; i < *n; i++)
                free((*v)[i]);
        free(*v);
        *v = NULL;
        *n = 0;
}

static bool is_sha256_hex(const char *s) {
        size_t n = 0;
        for (; s[n]; n++)
                if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f') || (s[n] >= 'A' && s[n] <= 'F')))
                        return false;
        return n == 64;
}

static bool is_name_glob(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-*?[]!.", *s))
                        return false;
        return true;
}

/* Each line of 'path' to fn: leading and trailing blanks and '#' comments cut, empty lines skipped. */
static int for_each_line(const char *path, int (*fn)(const char *line, void *userdata), void *userdata,
                         char **ret_error) {
        _cleanup_free_ char *buf = NULL;
        size_t cap = 0;
        unsigned line_no = 0;
        struct stat st;
        FILE *f;
        int fd, r = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
        if (fd < 0 || fstat(fd, &st) < 0) {
                r = negative_errno();
                if (fd >= 0)
                        (void) close(fd);
                if (ret_error && asprintf(ret_error, "%s: %s", path, strerror(-r)) < 0)
                        *ret_error = NULL;
                return r;
        }
        if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & S_IWOTH)) {
                (void) close(fd);
                if (ret_error && asprintf(ret_error, "%s: must be a regular file owned by root, not world-writable",
                                          path) < 0)
                        *ret_error = NULL;
                return -EPERM;
        }
        f = fdopen(fd, "re");
        if (!f) {
                r = negative_errno();
                (void) close(fd);
                return r;
        }
        while (getline(&buf, &cap, f) >= 0) {
                char *s = buf, *e;

                line_no++;
                s[strcspn(s, "#\n")] = '\0';
                s += strspn(s, " \t");
                e = s + strlen(s);
                while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
                        *--e = '\0';
                if (!*s)
                        continue;
                r = fn(s, userdata);
                if (r < 0) {
                        if (ret_error && asprintf(ret_error, "%s:%u: %s", path, line_no,
                                                  r == -ENOMEM ? "out of memory" : "not a SHA-256 digest, a module name glob, "
                                                  "a fingerprint or a serial number as expected here") < 0)
                                *ret_error = NULL;
                        break;
                }
        }
        fclose(f);
        return r;
}

static int block_line(const char *s, void *userdata) {
        struct policy *p = userdata;
        char lower[65];

        if (is_sha256_hex(s)) {
                for (size_t i = 0; i < 64; i++)
                        lower[i] = (char) (s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 'a' : s[i]);
                lower[64] = '\0';
                return push(&p->block_sha256, &p->n_block_sha256, lower);
        }
        if (!is_name_glob(s))
                return -EINVAL;
        return push(&p->block_names, &p->n_block_names, s);
}

static int revoked_line(const char *s, void *userdata) {
        struct policy *p = userdata;
        char id[130];

        if (config_parse_hex_id(s, id, sizeof(id)) < 0)
                return -EINVAL;
        return push(&p->revoked, &p->n_revoked, id);
}

int policy_load(const struct config *c, struct policy *ret, char **ret_error) {
        struct policy p = {
                .mode = c->policy_mode,
                .rate_tokens = c->rate_tokens,
                .rate_interval_usec = c->rate_interval_usec,
                .owns_lists = true,
        };
        int r;

        if (ret_error)
                *ret_error = NULL;
        /* Copies: a reload replaces the configuration while workers still decide with this. */
        for (size_t i = 0; i < c->allow.n; i++)
                if ((r = push(&p.allow, &p.n_allow, c->allow.items[i])) < 0)
                        goto fail;
        for (size_t i = 0; i < c->deny.n; i++)
                if ((r = push(&p.deny, &p.n_deny, c->deny.items[i])) < 0)
                        goto fail;
        if (c->blocklist) {
                r = for_each_line(c->blocklist, block_line, &p, ret_error);
                if (r < 0)
                        goto fail;
        }
        for (size_t i = 0; i < c->revoked_certificates.n; i++) {
                const char *v = c->revoked_certificates.items[i];
                if (v[0] == '/')
                        r = for_each_line(v, revoked_line, &p, ret_error);
                else
                        r = revoked_line(v, &p);
                if (r < 0)
                        goto fail;
        }
        *ret = p;
        return 0;
fail:
        policy_done(&p);
        return r;
}

void policy_done(struct policy *p) {
        if (p->owns_lists) {
                free_list(&p->allow, &p->n_allow);
                free_list(&p->deny, &p->n_deny);
                free_list(&p->block_names, &p->n_block_names);
                free_list(&p->block_sha256, &p->n_block_sha256);
                free_list(&p->revoked, &p->n_revoked);
        }
        *p = (struct policy) {};
}
