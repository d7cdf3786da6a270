/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Making a key pair inside a PKCS#11 token (keygen.h, keygen_pkcs11_generate()).
 *
 * libp11 0.4.12 (Debian 12) offers only the deprecated PKCS11_generate_key(): RSA only, and
 * a private-key template without CKA_EXTRACTABLE, which leaves it to the token whether the key
 * may be exported. We call C_GenerateKeyPair ourselves, with a template that says what a
 * signing key must be: on the token, private, sensitive, never extractable, sign only. The
 * token's module is dlopen()ed (as libp11 does); only p11-kit's pkcs11.h is needed at build
 * time. Loading the new key afterwards is key-pkcs11.c's job, through libp11 as always. */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "key-backend.h"
#include "keygen.h"
#include "macro.h"

#if HAVE_PKCS11_H

#include <dlfcn.h>
#include <openssl/rand.h>
#include <p11-kit/pkcs11.h>

#define DEFAULT_MODULE "p11-kit-proxy.so"

/* DER OIDs of the curves, CKA_EC_PARAMS (namedCurve). */
static const unsigned char oid_p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
static const unsigned char oid_p384[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 };

struct p11 {
        void *dl;
        CK_FUNCTION_LIST_PTR f;
        bool initialized;
        CK_SESSION_HANDLE session;
        bool have_session, logged_in;
};

static void p11_done(struct p11 *p) {
        if (p->logged_in)
                (void) p->f->C_Logout(p->session);
        if (p->have_session)
                (void) p->f->C_CloseSession(p->session);
        if (p->initialized)
                (void) p->f->C_Finalize(NULL);
        if (p->dl)
                dlclose(p->dl);
        *p = (struct p11) {};
}

/* A token label is 32 characters padded with blanks. */
static bool label_equals(const CK_UTF8CHAR *padded, size_t size, const char *want) {
        size_t n = strlen(want);

        if (n > size || memcmp(padded, want, n) != 0)
                return false;
        for (size_t i = n; i < size; i++)
                if (padded[i] != ' ')
                        return false;
        return true;
}

static int find_slot(struct p11 *p, const struct pkcs11_uri *u, CK_SLOT_ID *ret, char **ret_message) {
        _cleanup_free_ CK_SLOT_ID *slots = NULL;
        CK_ULONG n = 0;

        if (p->f->C_GetSlotList(CK_TRUE, NULL, &n) != CKR_OK)
                return key_message(ret_message, -ENODEV, "the PKCS#11 module lists no slots");
        slots = calloc(n ? n : 1, sizeof(CK_SLOT_ID));
        if (!slots)
                return -ENOMEM;
        if (p->f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
                return key_message(ret_message, -ENODEV, "the PKCS#11 module lists no slots");
        for (CK_ULONG i = 0; i < n; i++) {
                CK_TOKEN_INFO ti;

                if (u->has_slot_id && slots[i] != u->slot_id)
                        continue;
                if (p->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK || !(ti.flags & CKF_TOKEN_INITIALIZED))
                        continue;
                if (u->token && !label_equals(ti.label, sizeof(ti.label), u->token))
                        continue;
                if (u->serial && !label_equals(ti.serialNumber, sizeof(ti.serialNumber), u->serial))
                        continue;
                if (ti.flags & CKF_WRITE_PROTECTED)
                        return key_message(ret_message, -EROFS, "token '%s' is write-protected", u->token ?: "?");
                *ret = slots[i];
                return 0;
        }
        return key_message(ret_message, -ENODEV, "no token %s%s%s is present", u->token ? "labelled '" : "matching the URI",
                       u->token ?: "", u->token ? "'" : "");
}

/* Whether a private key with this label or id exists already. */
static int key_exists(struct p11 *p, const struct pkcs11_uri *u, const uint8_t *id, size_t id_len, bool *ret) {
        CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
        CK_OBJECT_HANDLE h;
        CK_ULONG n = 0;

        for (int pass = 0; pass < 2; pass++) {
                CK_ATTRIBUTE t[2] = { { CKA_CLASS, &cls, sizeof(cls) } };

                if (pass == 0)
                        t[1] = (CK_ATTRIBUTE) { CKA_LABEL, u->object, strlen(u->object) };
                else
                        t[1] = (CK_ATTRIBUTE) { CKA_ID, (void *) id, id_len };
                if (p->f->C_FindObjectsInit(p->session, t, 2) != CKR_OK)
                        return -EIO;
                if (p->f->C_FindObjects(p->session, &h, 1, &n) != CKR_OK)
                        n = 0;
                (void) p->f->C_FindObjectsFinal(p->session);
                if (n > 0) {
                        *ret = true;
                        return 0;
                }
        }
        *ret = false;
        return 0;
}

int keygen_pkcs11_generate(const char *uri, const char *pin, enum keygen_type type, unsigned bits, const char *curve,
                           char **ret_message) {
        _cleanup_(pkcs11_uri_done) struct pkcs11_uri u = {};
        _cleanup_(p11_done) struct p11 p = {};
        CK_C_GetFunctionList get_list;
        CK_C_INITIALIZE_ARGS init = { .flags = CKF_OS_LOCKING_OK };
        CK_SLOT_ID slot = 0;
        CK_RV rv;
        uint8_t idbuf[8];
        const uint8_t *id;
        size_t id_len;
        bool exists;
        const char *why = NULL, *module;
        int r;

        if (ret_message)
                *ret_message = NULL;
        r = pkcs11_uri_parse(uri, &u, &why);
        if (r < 0)
                return key_message(ret_message, r, "%s", why);
        if (u.has_pin_value)
                return key_message(ret_message, -EINVAL, "pin-value= would leave the PIN in a command line; use pin-source=FILE");
        if (!u.token && !u.serial && !u.has_slot_id)
                return key_message(ret_message, -EINVAL, "the URI names no token (token=, serial= or slot-id=)");
        if (!u.object)
                return key_message(ret_message, -EINVAL, "the URI names no label for the new key (object=)");
        if (!pin)
                return key_message(ret_message, -ENOKEY, "making a key on a token needs its user PIN (pin-source= or --pin-file)");
        if (u.id) {
                id = u.id;
                id_len = u.id_len;
        } else {
                /* No id= given: a random one, so that id= can name the key unambiguously. */
                if (RAND_bytes(idbuf, sizeof(idbuf)) != 1)
                        return -EIO;
                id = idbuf;
                id_len = sizeof(idbuf);
        }
        module = u.module_path ?: DEFAULT_MODULE;

        p.dl = dlopen(module, RTLD_NOW | RTLD_LOCAL);
        if (!p.dl)
                return key_message(ret_message, -ENOPKG, "cannot load the PKCS#11 module %s", module);
        get_list = (CK_C_GetFunctionList) dlsym(p.dl, "C_GetFunctionList");
        if (!get_list || get_list(&p.f) != CKR_OK || !p.f)
                return key_message(ret_message, -ENOPKG, "%s is not a PKCS#11 module", module);
        rv = p.f->C_Initialize(&init);
        if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
                return key_message(ret_message, -EIO, "C_Initialize failed (CK_RV 0x%lx)", (unsigned long) rv);
        p.initialized = rv == CKR_OK;

        r = find_slot(&p, &u, &slot, ret_message);
        if (r < 0)
                return r;
        rv = p.f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &p.session);
        if (rv != CKR_OK)
                return key_message(ret_message, -EIO, "cannot open a session (CK_RV 0x%lx)", (unsigned long) rv);
        p.have_session = true;
        rv = p.f->C_Login(p.session, CKU_USER, (CK_UTF8CHAR_PTR) pin, strlen(pin));
        if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE)
                return key_message(ret_message, -EACCES, "wrong PIN for the token (not retried)");
        if (rv == CKR_PIN_LOCKED || rv == CKR_PIN_EXPIRED)
                return key_message(ret_message, -EACCES, "the token's PIN is locked or expired");
        if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
                return key_message(ret_message, -EIO, "login failed (CK_RV 0x%lx)", (unsigned long) rv);
        p.logged_in = rv == CKR_OK;

        r = key_exists(&p, &u, id, id_len, &exists);
        if (r < 0)
                return key_message(ret_message, r, "cannot search the token");
        if (exists)
                return key_message(ret_message, -EEXIST,
                               "the token holds a private key labelled '%s' or with that id already; refusing to add "
                               "a second one (choose another object=)",
                               u.object);

        CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
        CK_ULONG modulus_bits = bits;
        CK_BYTE exponent[] = { 0x01, 0x00, 0x01 };
        CK_MECHANISM mech;
        CK_ATTRIBUTE pub[8], priv[10];
        CK_ULONG npub = 0, npriv = 0;
        CK_OBJECT_HANDLE hpub, hpriv;

#define ADD(a, t, v, l) (a)[n##a++] = (CK_ATTRIBUTE) { (t), (void *) (v), (l) }
        ADD(pub, CKA_TOKEN, &yes, sizeof(yes));
        ADD(pub, CKA_VERIFY, &yes, sizeof(yes));
        ADD(pub, CKA_ENCRYPT, &no, sizeof(no));
        ADD(pub, CKA_WRAP, &no, sizeof(no));
        ADD(pub, CKA_LABEL, u.object, strlen(u.object));
        ADD(pub, CKA_ID, id, id_len);
        ADD(priv, CKA_TOKEN, &yes, sizeof(yes));
        ADD(priv, CKA_PRIVATE, &yes, sizeof(yes));
        ADD(priv, CKA_SENSITIVE, &yes, sizeof(yes));
        ADD(priv, CKA_EXTRACTABLE, &no, sizeof(no));
        ADD(priv, CKA_SIGN, &yes, sizeof(yes));
        ADD(priv, CKA_DECRYPT, &no, sizeof(no));
        ADD(priv, CKA_UNWRAP, &no, sizeof(no));
        ADD(priv, CKA_LABEL, u.object, strlen(u.object));
        ADD(priv, CKA_ID, id, id_len);
        if (type == KEYGEN_RSA) {
                if (!keygen_rsa_bits_valid(bits))
                        return -EINVAL;
                mech = (CK_MECHANISM) { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
                ADD(pub, CKA_MODULUS_BITS, &modulus_bits, sizeof(modulus_bits));
                ADD(pub, CKA_PUBLIC_EXPONENT, exponent, sizeof(exponent));
        } else {
                const char *group;

                if (!curve || keygen_curve_from_string(curve, &group) < 0)
                        return -EINVAL;
                mech = (CK_MECHANISM) { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
                if (streq(group, "P-384"))
                        ADD(pub, CKA_EC_PARAMS, oid_p384, sizeof(oid_p384));
                else
                        ADD(pub, CKA_EC_PARAMS, oid_p256, sizeof(oid_p256));
        }
#undef ADD
        rv = p.f->C_GenerateKeyPair(p.session, &mech, pub, npub, priv, npriv, &hpub, &hpriv);
        if (rv == CKR_MECHANISM_INVALID || rv == CKR_ATTRIBUTE_VALUE_INVALID || rv == CKR_TEMPLATE_INCONSISTENT)
                return key_message(ret_message, -EOPNOTSUPP, "the token cannot make this kind of key (CK_RV 0x%lx)",
                               (unsigned long) rv);
        if (rv != CKR_OK)
                return key_message(ret_message, -EIO, "C_GenerateKeyPair failed (CK_RV 0x%lx)", (unsigned long) rv);
        return 0;
}

#else

int keygen_pkcs11_generate(const char *uri, const char *pin, enum keygen_type type, unsigned bits, const char *curve,
                           char **ret_message) {
        return key_message(ret_message, -EOPNOTSUPP,
                       "making a key on a PKCS#11 token is not built in (rebuild with libp11-dev and libp11-kit-dev)");
}

#endif
