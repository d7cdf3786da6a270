/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What `modsignctl report` counts: the state of each installed out-of-tree module, the audit
 * log's signatures, and the debt of a signing certificate (report.h). */
#include <config.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "digest.h"
#include "io-util.h"
#include "key.h"
#include "macro.h"
#include "modsign.h"
#include "openssl-util.h"
#include "report.h"
#include "verify.h"

/* Deeper than any real updates/dkms/... tree; a bound on what a hostile tree can make us do. */
#define SCAN_MAX_DEPTH 16
#define HEXID_FILE_MAX (4U << 20)

static const char *const state_names[_MODULE_STATE_MAX] = {
        [MODULE_STATE_SIGNED_OURS] = "signed_ours", [MODULE_STATE_SIGNED_OTHER] = "signed_other",
        [MODULE_STATE_UNTRUSTED] = "untrusted",     [MODULE_STATE_UNSIGNED] = "unsigned",
        [MODULE_STATE_BAD] = "bad",                 [MODULE_STATE_REVOKED] = "revoked",
};

const char *module_state_to_string(enum module_state s) {
        return (size_t) s < ELEMENTSOF(state_names) ? state_names[s] : NULL;
}

const char *const report_out_of_tree_dirs[] = { "updates", "extra", "misc" };
const size_t report_out_of_tree_dirs_n = ELEMENTSOF(report_out_of_tree_dirs);

/* --- hex identifiers ---------------------------------------------------------------------- */

int hexid_normalize(const char *s, char **ret) {
        _cleanup_free_ char *out = NULL;
        size_t n = 0;
        const char *p = s;

        out = malloc(strlen(s) + 2);
        if (!out)
                return -ENOMEM;
        while (*p == ' ' || *p == '\t')
                p++;
        if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
                p += 2;
        for (; *p; p++) {
                if (*p == ':' || *p == ' ' || *p == '\t' || *p == '\r')
                        continue;
                if (!isxdigit((unsigned char) *p))
                        return -EINVAL;
                if (n == 0 && *p == '0')
                        continue; /* leading zeros */
                out[n++] = (char) tolower((unsigned char) *p);
        }
        if (n == 0) {
                /* All zeros is "0"; nothing at all is not an identifier. */
                bool any = false;
                for (p = s; *p; p++)
                        any = any || isxdigit((unsigned char) *p);
                if (!any)
                        return -EINVAL;
                out[n++] = '0';
        }
        out[n] = '\0';
        *ret = TAKE_PTR(out);
        return 0;
}

int hexid_set_parse(const char *text, struct hexid_set *s, unsigned *ret_line) {
        unsigned line_no = 0;
        const char *p = text;

        while (*p) {
                const char *eol = strchrnul(p, '\n');
                _cleanup_free_ char *line = strndup(p, (size_t) (eol - p)), *norm = NULL;
                char *hash, *start, **items;
                int r;

                line_no++;
                p = *eol ? eol + 1 : eol;
                if (!line)
                        return -ENOMEM;
                if ((hash = strchr(line, '#')))
                        *hash = '\0';
                start = line + strspn(line, " \t\r");
                if (!*start)
                        continue;
                r = hexid_normalize(start, &norm);
                if (r < 0) {
                        if (ret_line)
                                *ret_line = line_no;
                        return r;
                }
                items = reallocarray(s->items, s->n + 1, sizeof(char *));
                if (!items)
                        return -ENOMEM;
                s->items = items;
                s->items[s->n++] = TAKE_PTR(norm);
        }
        return 0;
}

int hexid_set_load_file(const char *path, struct hexid_set *s, unsigned *ret_line) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r;

        if (fd < 0)
                return negative_errno();
        r = read_full_fd(fd, HEXID_FILE_MAX, &text, &len);
        if (r < 0)
                return r;
        if (memchr(text, '\0', len))
                return -EINVAL;
        return hexid_set_parse(text, s, ret_line);
}

bool hexid_set_contains(const struct hexid_set *s, const char *hex) {
        _cleanup_free_ char *norm = NULL;

        if (!s || !hex || hexid_normalize(hex, &norm) < 0)
                return false;
        for (size_t i = 0; i < s->n; i++)
                if (streq(s->items[i], norm))
                        return true;
        return false;
}

void hexid_set_done(struct hexid_set *s) {
        for (size_t i = 0; i < s->n; i++)
                free(s->items[i]);
        free(s->items);
        *s = (struct hexid_set) {};
}

/* --- the audit log's signatures ---------------------------------------------------------------- */

int audit_digests_add(struct audit_digests *d, const char *sha256_hex) {
        char (*items)[65];
        size_t i;

        for (i = 0; sha256_hex[i]; i++)
                if (!isxdigit((unsigned char) sha256_hex[i]))
                        return -EINVAL;
        if (i != 64)
                return -EINVAL;
        items = reallocarray(d->items, d->n + 1, sizeof(*items));
        if (!items)
                return -ENOMEM;
        d->items = items;
        for (i = 0; i < 64; i++)
                d->items[d->n][i] = (char) tolower((unsigned char) sha256_hex[i]);
        d->items[d->n][64] = '\0';
        d->n++;
        return 0;
}

static int digest_cmp(const void *a, const void *b) {
        return strcmp(a, b);
}

void audit_digests_seal(struct audit_digests *d) {
        if (d->n > 1)
                qsort(d->items, d->n, sizeof(*d->items), digest_cmp);
}

bool audit_digests_contains(const struct audit_digests *d, const char *sha256_hex) {
        if (!d || d->n == 0 || !sha256_hex || !*sha256_hex)
                return false;
        return bsearch(sha256_hex, d->items, d->n, sizeof(*d->items), digest_cmp) != NULL;
}

bool audit_digests_match(const struct audit_digests *d, const char *sha256, const char *sha256_content) {
        return audit_digests_contains(d, sha256) || audit_digests_contains(d, sha256_content);
}

void audit_digests_done(struct audit_digests *d) {
        free(d->items);
        *d = (struct audit_digests) {};
}

static int collect_line(uint64_t line_no, const char *line, size_t len, bool complete, void *userdata) {
        struct audit_digests *d = userdata;
        json_tokener *tok;
        json_object *o, *v;
        const char *event;
        int r = 0;

        (void) line_no;
        if (!complete || len == 0 || len > INT32_MAX)
                return 0;
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        o = json_tokener_parse_ex(tok, line, (int) len);
        if (o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, "event", &v) &&
            json_object_is_type(v, json_type_string)) {
                event = json_object_get_string(v);
                if ((streq(event, "signed") || streq(event, "resigned")) &&
                    json_object_object_get_ex(o, "sha256_after", &v) && json_object_is_type(v, json_type_string)) {
                        r = audit_digests_add(d, json_object_get_string(v));
                        if (r == -EINVAL)
                                r = 0; /* not a digest: not ours to judge here */
                }
        }
        json_object_put(o);
        json_tokener_free(tok);
        return r;
}

int audit_digests_load_fd(int fd, struct audit_digests *ret) {
        struct audit_digests d = {};
        int r;

        r = audit_for_each_line(fd, collect_line, &d);
        if (r < 0) {
                audit_digests_done(&d);
                return r;
        }
        audit_digests_seal(&d);
        *ret = d;
        return 0;
}

/* --- one module ------------------------------------------------------------------------------ */

static char *asn1_integer_hex(const ASN1_INTEGER *i) {
        BIGNUM *bn = ASN1_INTEGER_to_BN(i, NULL);
        char *hex, *out;

        if (!bn)
                return NULL;
        hex = BN_bn2hex(bn);
        BN_free(bn);
        if (!hex)
                return NULL;
        out = strdup(hex);
        OPENSSL_free(hex);
        if (out)
                for (char *p = out; *p; p++)
                        *p = (char) tolower((unsigned char) *p);
        return out;
}

static char *octets_hex(const ASN1_OCTET_STRING *o) {
        const unsigned char *d = ASN1_STRING_get0_data(o);
        int len = ASN1_STRING_length(o);
        char *out;

        if (len < 0 || !(out = malloc((size_t) len * 2 + 1)))
                return NULL;
        for (int i = 0; i < len; i++)
                snprintf(out + 2 * i, 3, "%02x", d[i]);
        out[2 * len] = '\0';
        return out;
}

/* Is cert listed in set, by fingerprint, serial number or subjectKeyIdentifier? */
static bool cert_listed(X509 *cert, const struct hexid_set *set) {
        _cleanup_free_ char *serial = NULL, *skid = NULL;
        const ASN1_OCTET_STRING *k;
        char fpr[65];

        if (!set || set->n == 0)
                return false;
        if (cert_fingerprint_sha256(cert, fpr) >= 0 && hexid_set_contains(set, fpr))
                return true;
        serial = asn1_integer_hex(X509_get0_serialNumber(cert));
        if (serial && hexid_set_contains(set, serial))
                return true;
        k = X509_get0_subject_key_id(cert);
        if (k && (skid = octets_hex(k)) && hexid_set_contains(set, skid))
                return true;
        return false;
}

static bool sig_listed(const struct sig_details *d, const struct hexid_set *set) {
        return set && ((d->serial && hexid_set_contains(set, d->serial)) || (d->key_id && hexid_set_contains(set, d->key_id)));
}

static char *subject_cn(X509 *cert) {
        char buf[256];

        if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof(buf)) < 0)
                return NULL;
        return strdup(buf);
}

static bool stack_has(STACK_OF(X509) *s, X509 *cert) {
        for (int i = 0; s && i < sk_X509_num(s); i++)
                if (X509_cmp(sk_X509_value(s, i), cert) == 0)
                        return true;
        return false;
}

int module_classify(const struct module_file *m, const struct module_trust *t, const struct audit_digests *audit,
                    struct module_verdict *ret) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *all = NULL;
        _cleanup_(X509_freep) X509 *signer = NULL;
        _cleanup_free_ uint8_t *der = NULL;
        struct module_verdict v = {};
        struct sig_details d = {};
        size_t len;
        int r;

        r = digest_fd_sha256(m->fd, v.sha256);
        if (r < 0)
                return r;
        if (m->decompressed) {
                r = digest_sha256_hex(m->decompressed, (size_t) m->data.size, v.sha256_content);
                if (r < 0)
                        return r;
        }

        if (m->meta.n_signatures == 0) {
                v.state = MODULE_STATE_UNSIGNED;
                *ret = v;
                return 0;
        }
        r = module_file_read_signature(m, &der, &len);
        if (r < 0)
                return r;
        if (sig_describe(der, len, &d) < 0) {
                v.state = MODULE_STATE_BAD;
                v.why = "the PKCS#7 signature is malformed";
                *ret = v;
                return 0;
        }
        if (d.signer)
                v.signer = strdup(d.signer);
        else if (d.key_id)
                v.signer = strdup(d.key_id);

        /* One pass over the module with every trusted certificate; then which set the signer
         * came from. The stack holds references of its own. */
        all = sk_X509_new_null();
        if (!all) {
                r = -ENOMEM;
                goto fail;
        }
        for (int pass = 0; pass < 2; pass++) {
                STACK_OF(X509) *s = pass == 0 ? t->ours : t->others;
                for (int i = 0; s && i < sk_X509_num(s); i++) {
                        X509 *c = sk_X509_value(s, i);
                        if (!X509_up_ref(c) || !sk_X509_push(all, c)) {
                                r = -ENOMEM;
                                goto fail;
                        }
                }
        }

        r = modsign_verify(m, all, &signer);
        switch (r) {
        case 0:
                free(v.signer);
                v.signer = subject_cn(signer);
                if (cert_listed(signer, t->revoked) || cert_listed(signer, t->blocked)) {
                        v.state = MODULE_STATE_REVOKED;
                        v.why = cert_listed(signer, t->revoked) ? "signed by a revoked key" : "signed by a blocklisted key";
                } else
                        v.state = stack_has(t->ours, signer) ? MODULE_STATE_SIGNED_OURS : MODULE_STATE_SIGNED_OTHER;
                break;
        case -ENOKEY:
                if (sig_listed(&d, t->revoked) || sig_listed(&d, t->blocked)) {
                        v.state = MODULE_STATE_REVOKED;
                        v.why = sig_listed(&d, t->revoked) ? "signed by a revoked key" : "signed by a blocklisted key";
                } else
                        v.state = MODULE_STATE_UNTRUSTED;
                break;
        case -EKEYREJECTED:
                v.state = MODULE_STATE_BAD;
                v.why = "the module does not match its signature (changed after signing)";
                break;
        case -EBADMSG:
        case -ENOPKG:
                v.state = MODULE_STATE_BAD;
                v.why = "the signature is malformed";
                break;
        case -ENODATA:
                v.state = MODULE_STATE_UNSIGNED;
                break;
        default:
                goto fail;
        }
        v.escaped = v.state == MODULE_STATE_SIGNED_OURS && audit && !audit_digests_match(audit, v.sha256, v.sha256_content);
        sig_details_done(&d);
        *ret = v;
        return 0;
fail:
        sig_details_done(&d);
        module_verdict_done(&v);
        return r;
}

void module_verdict_done(struct module_verdict *v) {
        free(v->signer);
        v->signer = NULL;
}

/* --- one kernel ------------------------------------------------------------------------------- */

static int cmp_strp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static bool is_module_name(const char *name) {
        static const char *const suffixes[] = { ".ko", ".ko.xz", ".ko.zst", ".ko.gz" };
        size_t n = strlen(name);

        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                size_t s = strlen(suffixes[i]);
                if (n > s && streq(name + n - s, suffixes[i]))
                        return true;
        }
        return false;
}

struct scan {
        const char *release;
        const struct module_trust *trust;
        const struct audit_digests *audit;
        report_module_fn fn;
        void *userdata;
        struct kernel_report *k;
};

static int scan_file(struct scan *s, int dir_fd, const char *name, const char *relpath) {
        struct module_file mf = {};
        struct module_verdict v = {};
        const char *why = NULL;
        int r;

        r = module_file_open(dir_fd, name, &mf, &why);
        if (r == -EBADMSG || r == -ENOPKG) {
                /* A module with a trailer the kernel would refuse: a bad signature. */
                v.state = MODULE_STATE_BAD;
                v.why = why ?: "malformed signature trailer";
                s->k->total++;
                s->k->n[MODULE_STATE_BAD]++;
                if (s->fn)
                        s->fn(s->release, relpath, &v, 0, NULL, s->userdata);
                return 0;
        }
        if (r == -ENOMEM)
                return r;
        if (r >= 0) {
                r = module_classify(&mf, s->trust, s->audit, &v);
                module_file_close(&mf);
                if (r == -ENOMEM)
                        return r;
        }
        if (r < 0) {
                s->k->invalid++;
                if (s->fn)
                        s->fn(s->release, relpath, NULL, r, why, s->userdata);
                return 0;
        }
        s->k->total++;
        s->k->n[v.state]++;
        if (v.escaped)
                s->k->escaped++;
        else if (v.state == MODULE_STATE_SIGNED_OURS)
                s->k->covered++;
        if (s->fn)
                s->fn(s->release, relpath, &v, 0, NULL, s->userdata);
        module_verdict_done(&v);
        return 0;
}

/* The names in a directory, sorted, without "." and ".."; only_dirs: only the directories
 * (not followed if symlinks) whose names do not start with a dot. */
static int read_sorted_names(int dir_fd, bool only_dirs, char ***ret, size_t *ret_n) {
        char **names = NULL;
        size_t n = 0;
        struct dirent *de;
        int r = 0, fd;
        DIR *d;

        fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        d = fdopendir(fd);
        if (!d) {
                r = negative_errno();
                safe_close(fd);
                return r;
        }
        while ((de = readdir(d))) {
                struct stat st;
                char **nn;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (only_dirs && (de->d_name[0] == '.' || fstatat(dir_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                                  !S_ISDIR(st.st_mode)))
                        continue;
                nn = reallocarray(names, n + 1, sizeof(char *));
                if (!nn || !(nn[n] = strdup(de->d_name))) {
                        if (nn)
                                names = nn;
                        r = -ENOMEM;
                        break;
                }
                names = nn;
                n++;
        }
        closedir(d);
        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        free(names[i]);
                free(names);
                return r;
        }
        if (n > 1)
                qsort(names, n, sizeof(char *), cmp_strp);
        *ret = names;
        *ret_n = n;
        return 0;
}

static int scan_dir(struct scan *s, int dir_fd, const char *rel, unsigned depth) {
        _cleanup_free_ char **names = NULL;
        size_t n = 0;
        int r;

        if (depth > SCAN_MAX_DEPTH)
                return 0;
        /* The names first: the order of the report is the sorted one, and no directory stays
         * open while we descend. */
        r = read_sorted_names(dir_fd, false, &names, &n);
        if (r < 0)
                return r;

        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL;
                struct stat st;

                if (r < 0 || asprintf(&path, "%s/%s", rel, names[i]) < 0) {
                        r = r < 0 ? r : -ENOMEM;
                        free(names[i]);
                        continue;
                }
                if (fstatat(dir_fd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        free(names[i]);
                        continue;
                }
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int sub = openat(dir_fd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub >= 0)
                                r = scan_dir(s, sub, path, depth + 1);
                } else if (S_ISREG(st.st_mode) && is_module_name(names[i]))
                        r = scan_file(s, dir_fd, names[i], path);
                free(names[i]);
        }
        return r;
}

int report_scan_kernel(int modules_dir_fd, const char *release, const struct module_trust *t,
                       const struct audit_digests *audit, report_module_fn fn, void *userdata, struct kernel_report *ret) {
        _cleanup_close_ int kfd = -EBADF;
        struct kernel_report k = {};
        int r = 0;

        k.release = strdup(release);
        if (!k.release)
                return -ENOMEM;
        kfd = openat(modules_dir_fd, release, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (kfd < 0) {
                r = negative_errno();
                kernel_report_done(&k);
                return r;
        }
        struct scan s = { .release = release, .trust = t, .audit = audit, .fn = fn, .userdata = userdata, .k = &k };
        for (size_t i = 0; i < report_out_of_tree_dirs_n && r >= 0; i++) {
                _cleanup_close_ int sub = openat(kfd, report_out_of_tree_dirs[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub < 0)
                        continue; /* absent (the usual case for two of the three) */
                r = scan_dir(&s, sub, report_out_of_tree_dirs[i], 0);
        }
        if (r < 0) {
                kernel_report_done(&k);
                return r;
        }
        *ret = k;
        return 0;
}

void kernel_report_done(struct kernel_report *k) {
        free(k->release);
        *k = (struct kernel_report) {};
}

int report_list_kernels(int modules_dir_fd, char ***ret, size_t *ret_n) {
        return read_sorted_names(modules_dir_fd, true, ret, ret_n);
}

/* --- debt ------------------------------------------------------------------------------------- */

int debt_add(struct debt_list *l, const char *id, const char *subject, const char *message, const char *fix) {
        struct debt_item *items = reallocarray(l->items, l->n + 1, sizeof(*items));
        struct debt_item *it;

        if (!items)
                return -ENOMEM;
        l->items = items;
        it = &l->items[l->n];
        *it = (struct debt_item) {
                .id = strdup(id),
                .subject = strdup(subject ?: ""),
                .message = strdup(message),
                .fix = strdup(fix),
        };
        if (!it->id || !it->subject || !it->message || !it->fix) {
                free(it->id);
                free(it->subject);
                free(it->message);
                free(it->fix);
                return -ENOMEM;
        }
        l->n++;
        return 0;
}

void debt_list_done(struct debt_list *l) {
        for (size_t i = 0; i < l->n; i++) {
                free(l->items[i].id);
                free(l->items[i].subject);
                free(l->items[i].message);
                free(l->items[i].fix);
        }
        free(l->items);
        *l = (struct debt_list) {};
}

static int debt_addf(struct debt_list *l, const char *id, const char *subject, const char *fix, const char *fmt, ...)
        _printf_(5, 6);
static int debt_addf(struct debt_list *l, const char *id, const char *subject, const char *fix, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        return debt_add(l, id, subject, msg, fix);
}

/* --- certificates ----------------------------------------------------------------------------- */

static const char *key_type_name(EVP_PKEY *pk) {
        switch (EVP_PKEY_get_base_id(pk)) {
        case EVP_PKEY_RSA:
        case EVP_PKEY_RSA_PSS:
                return "rsa";
        case EVP_PKEY_EC:
                return "ec";
        case EVP_PKEY_ED25519:
                return "ed25519";
        case EVP_PKEY_ED448:
                return "ed448";
        case EVP_PKEY_DSA:
                return "dsa";
        default:
                return EVP_PKEY_get0_type_name(pk) ?: "unknown";
        }
}

static bool weak_md(int nid) {
        return nid == NID_sha1 || nid == NID_md5 || nid == NID_md4 || nid == NID_md2 || nid == NID_mdc2 ||
               nid == NID_md5_sha1;
}

#define REISSUE "make a new key and certificate: modsignctl keygen, then modsignctl enroll and modsignctl rotate"

int cert_check_hygiene(X509 *cert, const char *path, time_t now, unsigned warn_days, const struct hexid_set *revoked,
                       const struct hexid_set *blocked, struct cert_facts *ret, struct debt_list *debt) {
        struct cert_facts f = {};
        EVP_PKEY *pk = X509_get0_pubkey(cert);
        const ASN1_TIME *na = X509_get0_notAfter(cert);
        char *subj;
        struct tm tm;
        int mdnid = NID_undef, pknid = NID_undef, r;
        uint32_t flags;

        if (!pk || !na)
                return -EBADMSG;
        r = cert_fingerprint_sha256(cert, f.fingerprint);
        if (r < 0)
                return r;
        subj = X509_NAME_oneline(X509_get_subject_name(cert), NULL, 0);
        f.subject = subj ? strdup(subj) : NULL;
        OPENSSL_free(subj);
        f.serial = asn1_integer_hex(X509_get0_serialNumber(cert));
        f.key_type = strdup(key_type_name(pk));
        if (!f.subject || !f.serial || !f.key_type) {
                cert_facts_done(&f);
                return -ENOMEM;
        }
        f.key_bits = EVP_PKEY_get_bits(pk);
        if (X509_get_signature_info(cert, &mdnid, &pknid, NULL, NULL) && mdnid != NID_undef) {
                const char *sn = OBJ_nid2sn(mdnid);
                if (sn && (f.signature_hash = strdup(sn)))
                        for (char *p = f.signature_hash; *p; p++)
                                *p = (char) tolower((unsigned char) *p);
        }
        if (!ASN1_TIME_to_tm(na, &tm)) {
                cert_facts_done(&f);
                return -EBADMSG;
        }
        f.not_after = timegm(&tm);
        f.expiry_seconds = (int64_t) f.not_after - (int64_t) now;

        flags = X509_get_extension_flags(cert);
        f.has_key_usage = flags & EXFLAG_KUSAGE;
        f.key_usage_ok = !f.has_key_usage || (X509_get_key_usage(cert) & KU_DIGITAL_SIGNATURE);
        f.has_ext_key_usage = flags & EXFLAG_XKUSAGE;
        f.ext_key_usage_ok = !f.has_ext_key_usage || (X509_get_extended_key_usage(cert) & (XKU_CODE_SIGN | XKU_ANYEKU));

        r = 0;
        if (f.expiry_seconds < 0)
                r = debt_addf(debt, "cert-expired", path, REISSUE,
                              "the certificate expired %lld days ago (the kernel does not check the dates of module "
                              "keys, but MOK tools, scanners and auditors do)",
                              (long long) (-f.expiry_seconds / 86400));
        else if (f.expiry_seconds < (int64_t) warn_days * 86400)
                r = debt_addf(debt, "cert-expiring", path, REISSUE, "the certificate expires in %lld days (warning at %u)",
                              (long long) (f.expiry_seconds / 86400), warn_days);
        if (r >= 0 && ((streq(f.key_type, "rsa") && f.key_bits < REPORT_RSA_MIN_BITS) ||
                       (streq(f.key_type, "ec") && f.key_bits < REPORT_EC_MIN_BITS) || streq(f.key_type, "dsa")))
                r = debt_addf(debt, "weak-key", path,
                              "make a new key of at least RSA 2048 bits (better 4096) or EC P-256: modsignctl keygen, then "
                              "modsignctl enroll and modsignctl rotate",
                              "the key is %s of %d bits, which is weak", f.key_type, f.key_bits);
        if (r >= 0 && weak_md(mdnid))
                r = debt_addf(debt, "weak-signature-hash", path,
                              "re-issue the certificate signed with SHA-256 or better (modsignctl keygen does), then "
                              "enroll it",
                              "the certificate is signed with %s, which is broken", f.signature_hash ?: "a weak hash");
        if (r >= 0 && !f.key_usage_ok)
                r = debt_add(debt, "key-usage", path, "the certificate's keyUsage does not allow digitalSignature",
                             "re-issue the certificate with keyUsage=digitalSignature (modsignctl keygen does)");
        if (r >= 0 && !f.ext_key_usage_ok)
                r = debt_add(debt, "extended-key-usage", path,
                             "the certificate's extendedKeyUsage does not allow codeSigning",
                             "re-issue the certificate with extendedKeyUsage=codeSigning (modsignctl keygen does)");
        if (r >= 0 && (cert_listed(cert, revoked) || cert_listed(cert, blocked)))
                r = debt_add(debt, "cert-revoked", path, "the certificate is on the revocation list or the blocklist",
                             "stop signing with it: modsignctl keygen, then modsignctl rotate, and re-sign the modules");
        if (r < 0) {
                cert_facts_done(&f);
                return r;
        }
        *ret = f;
        return 0;
}

void cert_facts_done(struct cert_facts *f) {
        free(f->subject);
        free(f->serial);
        free(f->key_type);
        free(f->signature_hash);
        f->subject = f->serial = f->key_type = f->signature_hash = NULL;
}
