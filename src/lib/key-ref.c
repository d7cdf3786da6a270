/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Key references: which backend a string names, RFC 7512 PKCS#11 URIs, and the dispatcher.
 * Pure parsing, apart from $CREDENTIALS_DIRECTORY, so the unit tests cover it all. */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "key-backend.h"
#include "macro.h"

#define WHY(error, why)                         \
        ({                                      \
                if (ret_why)                    \
                        *ret_why = (why);       \
                (error);                        \
        })

static bool startswith(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

const char *key_backend_to_string(enum key_backend b) {
        switch (b) {
        case KEY_BACKEND_FILE:
                return "file";
        case KEY_BACKEND_PKCS11:
                return "pkcs11";
        case KEY_BACKEND_TPM2:
                return "tpm2";
        }
        return "unknown";
}

int key_ref_parse(const char *ref, struct key_ref *ret, const char **ret_why) {
        struct key_ref r = { .backend = KEY_BACKEND_FILE };

        if (!ref || !*ref)
                return WHY(-EINVAL, "empty key reference");

        if (startswith(ref, "pkcs11:"))
                r.backend = KEY_BACKEND_PKCS11;
        else if (startswith(ref, "handle:")) {
                const char *h = ref + 7;
                size_t n;

                /* A TPM2 handle as tpm2-openssl takes it: 0x and up to 8 hex digits. */
                if (h[0] != '0' || (h[1] != 'x' && h[1] != 'X'))
                        return WHY(-EINVAL, "a TPM2 handle is written handle:0x81000001");
                n = strspn(h + 2, "0123456789abcdefABCDEF");
                if (n == 0 || n > 8 || h[2 + n])
                        return WHY(-EINVAL, "a TPM2 handle is written handle:0x81000001");
                r.backend = KEY_BACKEND_TPM2;
        } else if (startswith(ref, "object:")) {
                if (!ref[7])
                        return WHY(-EINVAL, "object: needs the path of a TPM2 key blob");
                r.backend = KEY_BACKEND_TPM2;
        } else if (startswith(ref, "credential:")) {
                const char *name = ref + 11, *dir = getenv("CREDENTIALS_DIRECTORY");

                if (!*name || strchr(name, '/') || streq(name, ".") || streq(name, ".."))
                        return WHY(-EINVAL, "credential: needs a credential name (no '/')");
                if (!dir || !*dir)
                        return WHY(-ENOMEDIUM, "no $CREDENTIALS_DIRECTORY (LoadCredential= missing in the unit?)");
                if (asprintf(&r.target, "%s/%s", dir, name) < 0)
                        return -ENOMEM;
                r.credential = true;
                *ret = r;
                return 0;
        }

        r.target = strdup(ref);
        if (!r.target)
                return -ENOMEM;
        *ret = r;
        return 0;
}

void key_ref_done(struct key_ref *r) {
        free(r->target);
        r->target = NULL;
}

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Percent-decodes s[0..len) into a new buffer (NUL-terminated too, for strings). */
static int pct_decode(const char *s, size_t len, uint8_t **ret, size_t *ret_len) {
        uint8_t *out = malloc(len + 1);
        size_t n = 0;

        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++) {
                if (s[i] == '%') {
                        int hi, lo;

                        if (i + 2 >= len) { /* a '%' needs two hex digits after it */
                                free(out);
                                return -EINVAL;
                        }
                        hi = unhex(s[i + 1]);
                        lo = hi < 0 ? -1 : unhex(s[i + 2]);
                        if (lo < 0) {
                                free(out);
                                return -EINVAL;
                        }
                        out[n++] = (uint8_t) (hi << 4 | lo);
                        i += 2;
                } else
                        out[n++] = (uint8_t) s[i];
        }
        out[n] = 0;
        *ret = out;
        if (ret_len)
                *ret_len = n;
        return 0;
}

/* Sets a string attribute once; a NUL inside a text attribute is refused. */
static int set_str(char **field, const char *v, size_t len, const char **ret_why) {
        uint8_t *d;
        size_t n;

        if (*field)
                return WHY(-EINVAL, "a PKCS#11 URI attribute is given twice");
        if (pct_decode(v, len, &d, &n) < 0)
                return WHY(-EINVAL, "bad percent-encoding in the PKCS#11 URI");
        if (strlen((char *) d) != n) {
                free(d);
                return WHY(-EINVAL, "a PKCS#11 URI text attribute contains %00");
        }
        *field = (char *) d;
        return 0;
}

static int parse_attr(struct pkcs11_uri *u, const char *a, size_t len, bool query, const char **ret_why) {
        const char *eq = memchr(a, '=', len);
        size_t klen, vlen;
        const char *v;

        if (len == 0)
                return 0; /* "pkcs11:" with nothing, or a trailing ';' */
        if (!eq)
                return WHY(-EINVAL, "a PKCS#11 URI attribute lacks '='");
        klen = (size_t) (eq - a);
        v = eq + 1;
        vlen = len - klen - 1;

#define KEY_IS(k) (klen == strlen(k) && strncmp(a, k, klen) == 0)
        if (!query) {
                if (KEY_IS("token"))
                        return set_str(&u->token, v, vlen, ret_why);
                if (KEY_IS("manufacturer"))
                        return set_str(&u->manufacturer, v, vlen, ret_why);
                if (KEY_IS("serial"))
                        return set_str(&u->serial, v, vlen, ret_why);
                if (KEY_IS("model"))
                        return set_str(&u->model, v, vlen, ret_why);
                if (KEY_IS("object"))
                        return set_str(&u->object, v, vlen, ret_why);
                if (KEY_IS("type"))
                        return set_str(&u->type, v, vlen, ret_why);
                if (KEY_IS("id")) {
                        if (u->id)
                                return WHY(-EINVAL, "a PKCS#11 URI attribute is given twice");
                        if (vlen == 0 || pct_decode(v, vlen, &u->id, &u->id_len) < 0)
                                return WHY(-EINVAL, "bad percent-encoding in the PKCS#11 URI id");
                        return 0;
                }
                if (KEY_IS("slot-id")) {
                        char buf[24], *end;

                        if (u->has_slot_id)
                                return WHY(-EINVAL, "a PKCS#11 URI attribute is given twice");
                        if (vlen == 0 || vlen >= sizeof(buf) || strspn(v, "0123456789") < vlen)
                                return WHY(-EINVAL, "slot-id must be a decimal number");
                        memcpy(buf, v, vlen);
                        buf[vlen] = 0;
                        errno = 0;
                        u->slot_id = strtoul(buf, &end, 10);
                        if (errno != 0 || *end)
                                return WHY(-EINVAL, "slot-id must be a decimal number");
                        u->has_slot_id = true;
                        return 0;
                }
        } else {
                if (KEY_IS("module-path"))
                        return set_str(&u->module_path, v, vlen, ret_why);
                if (KEY_IS("pin-source"))
                        return set_str(&u->pin_source, v, vlen, ret_why);
                if (KEY_IS("pin-value")) {
                        u->has_pin_value = true; /* the value itself is never kept */
                        return 0;
                }
        }
#undef KEY_IS
        return 0; /* RFC 7512 §2.3: unknown attributes are ignored */
}

int pkcs11_uri_parse(const char *uri, struct pkcs11_uri *ret, const char **ret_why) {
        _cleanup_(pkcs11_uri_done) struct pkcs11_uri u = {};
        const char *p, *q;
        int r;

        if (!uri || !startswith(uri, "pkcs11:"))
                return WHY(-EINVAL, "not a pkcs11: URI");
        p = uri + 7;
        q = strchr(p, '?');

        for (const char *end = q ?: p + strlen(p); p < end;) {
                const char *semi = memchr(p, ';', (size_t) (end - p)) ?: end;

                r = parse_attr(&u, p, (size_t) (semi - p), false, ret_why);
                if (r < 0)
                        return r;
                p = semi + (semi < end);
        }
        if (q)
                for (p = q + 1; *p;) {
                        const char *amp = strchr(p, '&') ?: p + strlen(p);

                        r = parse_attr(&u, p, (size_t) (amp - p), true, ret_why);
                        if (r < 0)
                                return r;
                        p = amp + (*amp == '&');
                }

        if (u.type && !streq(u.type, "private"))
                return WHY(-EINVAL, "the PKCS#11 URI names an object that is not a private key (type=)");
        if (u.pin_source && !*u.pin_source)
                return WHY(-EINVAL, "pin-source= is empty");

        *ret = u;
        u = (struct pkcs11_uri) {};
        return 0;
}

void pkcs11_uri_done(struct pkcs11_uri *u) {
        free(u->token);
        free(u->manufacturer);
        free(u->serial);
        free(u->model);
        free(u->object);
        free(u->id);
        free(u->type);
        free(u->module_path);
        free(u->pin_source);
        *u = (struct pkcs11_uri) {};
}

int key_load(const char *ref, const struct key_options *o, EVP_PKEY **ret, char **ret_message) {
        static const struct key_options defaults = {};
        _cleanup_(key_ref_done) struct key_ref r = {};
        const char *why = NULL;
        int k;

        if (ret_message)
                *ret_message = NULL;
        k = key_ref_parse(ref, &r, &why);
        if (k < 0) {
                if (ret_message && why)
                        *ret_message = strdup(why);
                return k;
        }
        switch (r.backend) {
        case KEY_BACKEND_PKCS11:
                return key_pkcs11_load(r.target, o ?: &defaults, ret, ret_message);
        case KEY_BACKEND_TPM2:
                return key_tpm2_load(r.target, o ?: &defaults, ret, ret_message);
        case KEY_BACKEND_FILE:
        default:
                return key_file_load(r.target, o ?: &defaults, ret, ret_message);
        }
}

int key_message(char **ret_message, int r, const char *fmt, ...) {
        va_list ap;

        if (!ret_message)
                return r;
        va_start(ap, fmt);
        if (vasprintf(ret_message, fmt, ap) < 0)
                *ret_message = NULL;
        va_end(ap);
        return r;
}
