/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/keyctl.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "io-util.h"
#include "keyring.h"
#include "macro.h"

const char *const kernel_module_keyrings[] = {
        ".builtin_trusted_keys",
        ".secondary_trusted_keys",
        ".machine",
};
const size_t kernel_module_keyrings_n = ELEMENTSOF(kernel_module_keyrings);

static char *hex_lower(const unsigned char *p, size_t n) {
        static const char digits[] = "0123456789abcdef";
        char *s = malloc(2 * n + 1);

        if (!s)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                s[2 * i] = digits[p[i] >> 4];
                s[2 * i + 1] = digits[p[i] & 0xf];
        }
        s[2 * n] = 0;
        return s;
}

int cert_kernel_key_id(X509 *cert, char **ret_hex) {
        const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(cert);
        unsigned char *der = NULL;
        char *hex;
        int n;

        if (skid && ASN1_STRING_length(skid) > 0) {
                hex = hex_lower(ASN1_STRING_get0_data(skid), (size_t) ASN1_STRING_length(skid));
                if (!hex)
                        return -ENOMEM;
                *ret_hex = hex;
                return 0;
        }

        /* No SKID: the kernel uses the serial's raw content octets (with any leading 00). A
         * serial is at most 20 octets (RFC 5280), so its DER length is a single byte. */
        n = i2d_ASN1_INTEGER(X509_get0_serialNumber(cert), &der);
        if (n < 3 || der[0] != 0x02 || der[1] >= 0x80 || der[1] != n - 2) {
                OPENSSL_free(der);
                return -EBADMSG;
        }
        hex = hex_lower(der + 2, (size_t) n - 2);
        OPENSSL_free(der);
        if (!hex)
                return -ENOMEM;
        *ret_hex = hex;
        return 0;
}

/* "%08x %c%c%c%c%c%c%c %5d %4s %08x %5d %5d %-9.9s DESCRIPTION" (security/keys/proc.c) */
static int parse_line(char *line, struct kernel_key *ret) {
        char *p = line, *end, *type;
        unsigned long serial;

        line[strcspn(line, "\n")] = 0;
        errno = 0;
        serial = strtoul(p, &end, 16);
        if (errno != 0 || end == p || serial == 0 || serial > UINT32_MAX || !isspace((unsigned char) *end))
                return -EINVAL;
        p = end;
        /* flags, usage, expiry, permissions, uid, gid */
        for (int i = 0; i < 6; i++) {
                p += strspn(p, " \t");
                if (!*p)
                        return -EINVAL;
                p += strcspn(p, " \t");
        }
        p += strspn(p, " \t");
        type = p;
        p += strcspn(p, " \t");
        if (p == type || !*p)
                return -EINVAL;
        *p++ = 0;
        p += strspn(p, " \t");

        ret->type = strdup(type);
        ret->description = strdup(p);
        if (!ret->type || !ret->description) {
                free(ret->type);
                free(ret->description);
                return -ENOMEM;
        }
        ret->serial = (uint32_t) serial;
        return 0;
}

int kernel_keys_parse(FILE *f, struct kernel_keys *ret) {
        struct kernel_keys k = {};
        _cleanup_free_ char *line = NULL;
        size_t alloc = 0, line_size = 0;

        while (getline(&line, &line_size, f) >= 0) {
                struct kernel_key key;
                int r = parse_line(line, &key);

                if (r == -ENOMEM) {
                        kernel_keys_done(&k);
                        return r;
                }
                if (r < 0)
                        continue;
                if (k.n == alloc) {
                        size_t na = alloc ? alloc * 2 : 32;
                        struct kernel_key *nk = reallocarray(k.keys, na, sizeof(*nk));

                        if (!nk) {
                                free(key.type);
                                free(key.description);
                                kernel_keys_done(&k);
                                return -ENOMEM;
                        }
                        k.keys = nk;
                        alloc = na;
                }
                k.keys[k.n++] = key;
        }
        if (ferror(f)) {
                kernel_keys_done(&k);
                return -EIO;
        }
        *ret = k;
        return 0;
}

void kernel_keys_done(struct kernel_keys *k) {
        for (size_t i = 0; i < k->n; i++) {
                free(k->keys[i].type);
                free(k->keys[i].description);
        }
        free(k->keys);
        *k = (struct kernel_keys) {};
}

int kernel_keys_find_keyring(const struct kernel_keys *k, const char *name, uint32_t *ret) {
        size_t len = strlen(name);

        /* A keyring is described as "NAME: N" or "NAME: empty". */
        for (size_t i = 0; i < k->n; i++)
                if (streq(k->keys[i].type, "keyring") && strncmp(k->keys[i].description, name, len) == 0 &&
                    k->keys[i].description[len] == ':') {
                        *ret = k->keys[i].serial;
                        return 0;
                }
        return -ENOENT;
}

bool kernel_key_has_id(const struct kernel_key *key, const char *key_id_hex) {
        const char *d = key->description, *p;
        size_t len = strlen(key_id_hex);

        if (!streq(key->type, "asymmetri") && !streq(key->type, "asymmetric"))
                return false;
        if (len == 0)
                return false;
        /* "SUBJECT: KEYID: X509..."; the SUBJECT may itself hold ": ", so look at every
         * occurrence of KEYID for the one between ": " and ":" (or the end). */
        for (p = strstr(d, key_id_hex); p; p = strstr(p + 1, key_id_hex)) {
                if (p - d < 2 || p[-2] != ':' || p[-1] != ' ')
                        continue;
                if (p[len] == ':' || p[len] == 0)
                        return true;
        }
        return false;
}

int keyring_read_members(uint32_t keyring, uint32_t **ret, size_t *ret_n) {
        _cleanup_free_ uint32_t *buf = NULL;
        long n, size = 0;

        /* The size may change between the two calls; retry until it fits. */
        for (int attempt = 0; attempt < 8; attempt++) {
                n = syscall(SYS_keyctl, KEYCTL_READ, (unsigned long) keyring, buf, (unsigned long) size);
                if (n < 0)
                        return negative_errno();
                if (n <= size) {
                        *ret_n = (size_t) n / sizeof(uint32_t);
                        *ret = TAKE_PTR(buf);
                        return 0;
                }
                free(buf);
                size = n;
                buf = malloc((size_t) size);
                if (!buf)
                        return -ENOMEM;
        }
        return -EAGAIN;
}

int keyring_parse_members(const char *text, uint32_t **ret, size_t *ret_n) {
        _cleanup_free_ uint32_t *v = NULL;
        size_t n = 0, alloc = 0;
        const char *p = text;

        for (;;) {
                unsigned long x;
                char *end;

                p += strspn(p, " \t\n");
                if (!*p)
                        break;
                errno = 0;
                x = strtoul(p, &end, 16);
                if (errno != 0 || end == p || x == 0 || x > UINT32_MAX || (*end && !isspace((unsigned char) *end)))
                        return -EINVAL;
                if (n == alloc) {
                        size_t na = alloc ? alloc * 2 : 8;
                        uint32_t *nv = reallocarray(v, na, sizeof(*nv));

                        if (!nv)
                                return -ENOMEM;
                        v = nv;
                        alloc = na;
                }
                v[n++] = (uint32_t) x;
                p = end;
        }
        *ret = TAKE_PTR(v);
        *ret_n = n;
        return 0;
}

/* Members of one keyring: from the kernel, or from members_dir/NAME (a missing file is an
 * empty keyring). */
static int members_of(const char *members_dir, const char *name, uint32_t serial, uint32_t **ret, size_t *ret_n) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t len;
        int r;

        if (!members_dir)
                return keyring_read_members(serial, ret, ret_n);
        if (asprintf(&path, "%s/%s", members_dir, name) < 0)
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        if (fd < 0)
                return negative_errno();
        r = read_full_fd(fd, 1 << 20, &text, &len);
        if (r < 0)
                return r;
        return keyring_parse_members(text, ret, ret_n);
}

/* Every keyring whose keys the kernel trusts for some code: modules (kernel_module_keyrings)
 * and, for .platform, kexec images. */
static const char *const trusted_keyrings[] = {
        ".builtin_trusted_keys", ".secondary_trusted_keys", ".machine", ".platform",
};

static int kernel_keys_load(const char *proc_keys, struct kernel_keys *ret) {
        FILE *f = fopen(proc_keys, "re");
        int r;

        if (!f)
                return negative_errno();
        r = kernel_keys_parse(f, ret);
        fclose(f);
        return r;
}

int kernel_cert_trust(X509 *cert, const char *proc_keys, const char *members_dir, struct kernel_cert_trust *ret) {
        struct kernel_cert_trust t = {};
        _cleanup_free_ char *key_id = NULL;
        struct kernel_keys keys = {};
        int r;

        r = cert_kernel_key_id(cert, &key_id);
        if (r < 0)
                return r;
        r = kernel_keys_load(proc_keys, &keys);
        if (r < 0)
                return r;

        for (size_t i = 0; i < keys.n; i++)
                if (kernel_key_has_id(&keys.keys[i], key_id))
                        t.in_kernel = true;

        for (size_t k = 0; t.in_kernel && k < ELEMENTSOF(trusted_keyrings); k++) {
                _cleanup_free_ uint32_t *members = NULL;
                size_t n = 0;
                uint32_t serial;
                bool found = false;

                if (kernel_keys_find_keyring(&keys, trusted_keyrings[k], &serial) < 0)
                        continue;
                if (members_of(members_dir, trusted_keyrings[k], serial, &members, &n) < 0)
                        continue; /* a keyring that cannot be read counts as not holding the key */
                for (size_t m = 0; m < n && !found; m++)
                        for (size_t i = 0; i < keys.n && !found; i++)
                                found = keys.keys[i].serial == members[m] && kernel_key_has_id(&keys.keys[i], key_id);
                if (!found)
                        continue;
                t.keyrings[t.n_keyrings++] = trusted_keyrings[k];
                for (size_t j = 0; j < kernel_module_keyrings_n; j++)
                        if (streq(trusted_keyrings[k], kernel_module_keyrings[j]))
                                t.trusted = true;
        }
        kernel_keys_done(&keys);
        *ret = t;
        return 0;
}

int kernel_trusts_cert(X509 *cert, const char *proc_keys, const char *members_dir, bool *ret) {
        struct kernel_cert_trust t;
        int r = kernel_cert_trust(cert, proc_keys, members_dir, &t);

        if (r < 0)
                return r;
        *ret = t.trusted;
        return 0;
}

int kernel_name_of(const X509_NAME *name, char **ret) {
        const ASN1_STRING *cn = NULL, *o = NULL, *email = NULL, *one;
        size_t cn_n, o_n;
        char *s;

        for (int i = 0; i < X509_NAME_entry_count(name); i++) {
                const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
                int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));

                if (nid == NID_commonName)
                        cn = X509_NAME_ENTRY_get_data(e);
                else if (nid == NID_organizationName)
                        o = X509_NAME_ENTRY_get_data(e);
                else if (nid == NID_pkcs9_emailAddress)
                        email = X509_NAME_ENTRY_get_data(e);
        }
        /* The kernel takes the values' bytes as they are, whatever their string type. */
        cn_n = cn ? (size_t) ASN1_STRING_length(cn) : 0;
        o_n = o ? (size_t) ASN1_STRING_length(o) : 0;
        if (cn_n && o_n) {
                const char *c = (const char *) ASN1_STRING_get0_data(cn), *org = (const char *) ASN1_STRING_get0_data(o);

                if ((cn_n >= o_n && memcmp(c, org, o_n) == 0) || (cn_n >= 7 && o_n >= 7 && memcmp(c, org, 7) == 0))
                        one = cn;
                else {
                        if (asprintf(&s, "%.*s: %.*s", (int) o_n, org, (int) cn_n, c) < 0)
                                return -ENOMEM;
                        *ret = s;
                        return 0;
                }
        } else
                one = cn_n ? cn : o_n ? o : email;
        s = one ? strndup((const char *) ASN1_STRING_get0_data(one), (size_t) ASN1_STRING_length(one)) : strdup("");
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* Whether an asymmetric key's description is "NAME: KEYID..." for exactly this NAME. */
static bool kernel_key_subject_is(const struct kernel_key *key, const char *name) {
        const char *d = key->description;
        size_t len = strlen(name), n;

        if (!streq(key->type, "asymmetri") && !streq(key->type, "asymmetric"))
                return false;
        if (strncmp(d, name, len) != 0 || d[len] != ':' || d[len + 1] != ' ')
                return false;
        d += len + 2;
        n = strspn(d, "0123456789abcdef");
        return n > 0 && n % 2 == 0 && (d[n] == ':' || d[n] == '\0');
}

static enum kernel_signer_match signer_hit(const struct kernel_key *key, const struct kernel_signer *s) {
        if (s->key_id && kernel_key_has_id(key, s->key_id))
                return KERNEL_SIGNER_BY_KEY_ID;
        if (s->issuer && kernel_key_subject_is(key, s->issuer))
                return KERNEL_SIGNER_BY_NAME;
        return KERNEL_SIGNER_UNTRUSTED;
}

/* Keeps the first name match, and a key-id match over it. */
static void signer_note(struct kernel_signer_trust *t, enum kernel_signer_match hit, const char *keyring,
                        const struct kernel_key *key) {
        char *x509;

        if (hit == KERNEL_SIGNER_UNTRUSTED || (t->match != KERNEL_SIGNER_UNTRUSTED && hit != KERNEL_SIGNER_BY_KEY_ID))
                return;
        t->match = hit;
        t->keyring = keyring;
        /* "SUBJECT: KEYID", without the type and the flags the kernel adds */
        (void) snprintf(t->key, sizeof(t->key), "%s", key->description);
        x509 = strstr(t->key, ": X509.");
        if (x509)
                *x509 = '\0';
}

int kernel_signer_trust(const struct kernel_signer *s, const char *proc_keys, const char *members_dir,
                        struct kernel_signer_trust *ret) {
        struct kernel_signer_trust t = {};
        struct kernel_keys keys = {};
        bool unreadable = false;
        int r;

        r = kernel_keys_load(proc_keys, &keys);
        if (r < 0)
                return r;
        for (size_t k = 0; k < ELEMENTSOF(trusted_keyrings) && t.match != KERNEL_SIGNER_BY_KEY_ID; k++) {
                _cleanup_free_ uint32_t *members = NULL;
                size_t n = 0;
                uint32_t serial;

                if (kernel_keys_find_keyring(&keys, trusted_keyrings[k], &serial) < 0)
                        continue; /* this kernel has no such keyring */
                if (members_of(members_dir, trusted_keyrings[k], serial, &members, &n) < 0) {
                        unreadable = true;
                        continue;
                }
                for (size_t m = 0; m < n; m++)
                        for (size_t i = 0; i < keys.n; i++)
                                if (keys.keys[i].serial == members[m])
                                        signer_note(&t, signer_hit(&keys.keys[i], s), trusted_keyrings[k], &keys.keys[i]);
        }
        /* Unlike kernel_cert_trust() (which asks whether our key will do, and answers no), the
         * gate fails closed: with a trusted keyring unreadable, any key the kernel holds counts. */
        if (unreadable && t.match != KERNEL_SIGNER_BY_KEY_ID)
                for (size_t i = 0; i < keys.n; i++)
                        signer_note(&t, signer_hit(&keys.keys[i], s), "a trusted keyring that cannot be read", &keys.keys[i]);
        kernel_keys_done(&keys);
        *ret = t;
        return 0;
}
