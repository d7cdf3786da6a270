/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The PKCS#11 backend, through libp11 (not its OpenSSL engine).
 *
 * We load the token's module ourselves and never register an ENGINE or make one a default:
 * SoftHSM2 computes with OpenSSL inside the same process, and a default engine routing its
 * digests back into the token deadlocks. The CMS code hashes with OpenSSL's default provider
 * and only the private-key operation (C_Sign, CKM_RSA_PKCS or CKM_ECDSA) goes to the token.
 *
 * The EVP_PKEY we hand out is our own, sharing libp11's RSA or EC_KEY; the PKCS#11 context
 * (module, slots, the logged-in session pool) hangs off it as ex_data and is released when the
 * last reference to the key goes. So a daemon that keeps the key keeps the login, and a
 * reload that drops the old key closes the old session. */
#include <config.h>

/* libp11 hands out RSA and EC_KEY objects; sharing one with our EVP_PKEY needs the legacy
 * accessors, deprecated in OpenSSL 3. */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "key-backend.h"
#include "macro.h"

#if HAVE_LIBP11

#include <libp11.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "openssl-util.h"

#define DEFAULT_MODULE "p11-kit-proxy.so"
/* CK_RV values (PKCS#11 v2.40 §11.1) libp11 puts in the OpenSSL error queue's reason. */
#define CKR_PIN_INCORRECT 0xa0UL
#define CKR_PIN_INVALID 0xa1UL
#define CKR_PIN_LEN_RANGE 0xa2UL
#define CKR_PIN_EXPIRED 0xa3UL
#define CKR_PIN_LOCKED 0xa4UL
/* ... and those that say the token, or our session with it, is gone. Measured with p11-kit's
 * client module whose server was killed: C_Sign returns CKR_DEVICE_ERROR, and keeps returning
 * it after the server is back (the client's connection is dead): only a new load helps. */
#define CKR_GENERAL_ERROR 0x05UL
#define CKR_SLOT_ID_INVALID 0x03UL
#define CKR_DEVICE_ERROR 0x30UL
#define CKR_DEVICE_REMOVED 0x32UL
#define CKR_SESSION_CLOSED 0xb0UL
#define CKR_SESSION_HANDLE_INVALID 0xb3UL
#define CKR_TOKEN_NOT_PRESENT 0xe0UL
#define CKR_TOKEN_NOT_RECOGNIZED 0xe1UL
#define CKR_USER_NOT_LOGGED_IN 0x101UL
#define CKR_CRYPTOKI_NOT_INITIALIZED 0x190UL

struct p11_state {
        PKCS11_CTX *ctx;
        PKCS11_SLOT *slots;
        unsigned int n_slots;
        bool loaded;
};

static void p11_state_free(struct p11_state *s) {
        if (!s)
                return;
        if (s->slots)
                PKCS11_release_all_slots(s->ctx, s->slots, s->n_slots);
        if (s->ctx) {
                if (s->loaded)
                        PKCS11_CTX_unload(s->ctx);
                PKCS11_CTX_free(s->ctx);
        }
        free(s);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct p11_state *, p11_state_free);

static int p11_state_new(struct p11_state **ret) {
        struct p11_state *s = calloc(1, sizeof(*s));

        if (!s)
                return -ENOMEM;
        s->ctx = PKCS11_CTX_new();
        if (!s->ctx) {
                free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

static void ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp) {
        p11_state_free(ptr);
}

static CRYPTO_ONCE ex_once = CRYPTO_ONCE_STATIC_INIT;
static int ex_index = -1;

static void ex_init(void) {
        ex_index = CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_EVP_PKEY, 0, NULL, NULL, NULL, ex_free);
}

/* The last CK_RV libp11 reported, or 0. */
static unsigned long last_ckr(void) {
        unsigned long e, rv = 0;

        while ((e = ERR_get_error()))
                if (ERR_GET_LIB(e) == ERR_get_CKR_code())
                        rv = (unsigned long) ERR_GET_REASON(e);
        return rv;
}

static bool ckr_means_token_gone(unsigned long rv) {
        switch (rv) {
        case CKR_GENERAL_ERROR:
        case CKR_SLOT_ID_INVALID:
        case CKR_DEVICE_ERROR:
        case CKR_DEVICE_REMOVED:
        case CKR_SESSION_CLOSED:
        case CKR_SESSION_HANDLE_INVALID:
        case CKR_TOKEN_NOT_PRESENT:
        case CKR_TOKEN_NOT_RECOGNIZED:
        case CKR_USER_NOT_LOGGED_IN: /* the token was re-plugged: our login is gone with it */
        case CKR_CRYPTOKI_NOT_INITIALIZED:
                return true;
        default:
                return false;
        }
}

int key_openssl_error(int fallback) {
        int lib = ERR_get_CKR_code();
        unsigned long e;
        int r = fallback;

        while ((e = ERR_get_error()))
                if (ERR_GET_LIB(e) == lib && ckr_means_token_gone((unsigned long) ERR_GET_REASON(e)))
                        r = -ENODEV;
        return r;
}

static bool field_matches(const char *want, const char *have) {
        return !want || (have && streq(want, have));
}

static bool token_matches(const struct pkcs11_uri *u, PKCS11_SLOT *slot) {
        PKCS11_TOKEN *t = slot->token;

        if (!t || !t->initialized)
                return false;
        if (u->has_slot_id && PKCS11_get_slotid_from_slot(slot) != u->slot_id)
                return false;
        return field_matches(u->token, t->label) && field_matches(u->manufacturer, t->manufacturer) &&
               field_matches(u->serial, t->serialnr) && field_matches(u->model, t->model);
}

static bool key_matches(const struct pkcs11_uri *u, const PKCS11_KEY *k) {
        if (u->object && !(k->label && streq(u->object, k->label)))
                return false;
        if (u->id && !(k->id_len == u->id_len && memcmp(k->id, u->id, u->id_len) == 0))
                return false;
        return true;
}

/* Our own EVP_PKEY around libp11's key object, holding the context alive. */
static int wrap_key(EVP_PKEY *p11key, struct p11_state *state, EVP_PKEY **ret) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = EVP_PKEY_new();
        int ok;

        if (!k)
                return -ENOMEM;
        switch (EVP_PKEY_get_base_id(p11key)) {
        case EVP_PKEY_RSA: {
                RSA *rsa = EVP_PKEY_get1_RSA(p11key);

                ok = rsa && EVP_PKEY_assign_RSA(k, rsa);
                if (!ok)
                        RSA_free(rsa);
                break;
        }
        case EVP_PKEY_EC: {
                EC_KEY *ec = EVP_PKEY_get1_EC_KEY(p11key);

                ok = ec && EVP_PKEY_assign_EC_KEY(k, ec);
                if (!ok)
                        EC_KEY_free(ec);
                break;
        }
        default:
                return -EOPNOTSUPP;
        }
        if (!ok)
                return -ENOMEM;
        if (!CRYPTO_THREAD_run_once(&ex_once, ex_init) || ex_index < 0)
                return -ENOMEM;
        if (!EVP_PKEY_set_ex_data(k, ex_index, state))
                return -ENOMEM;
        *ret = TAKE_PTR(k);
        return 0;
}

static int read_pin(const struct pkcs11_uri *u, const struct key_options *o, char **ret, char **ret_message) {
        _cleanup_free_ char *inner = NULL;
        int r;

        if (u->pin_source) {
                /* RFC 7512 allows a file: URI there; a plain path is what people write. */
                const char *path = strncmp(u->pin_source, "file:", 5) == 0 ? u->pin_source + 5 : u->pin_source;

                r = key_read_secret(path, ret, &inner);
                if (r < 0)
                        return key_message(ret_message, r, "pin-source: %s", inner ?: strerror(-r));
                return 0;
        }
        if (o->pin) {
                *ret = strdup(o->pin);
                return *ret ? 0 : -ENOMEM;
        }
        *ret = NULL;
        return 0;
}

int key_pkcs11_load(const char *uri, const struct key_options *o, EVP_PKEY **ret, char **ret_message) {
        _cleanup_(pkcs11_uri_done) struct pkcs11_uri u = {};
        _cleanup_(p11_state_freep) struct p11_state *s = NULL;
        _cleanup_(secret_freep) char *pin = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *wrapped = NULL;
        PKCS11_SLOT *slot = NULL;
        PKCS11_KEY *keys = NULL, *key = NULL;
        unsigned int n_keys = 0, n_match = 0;
        const char *module, *why = NULL;
        EVP_PKEY *p11key;
        int r;

        if (ret_message)
                *ret_message = NULL;
        r = pkcs11_uri_parse(uri, &u, &why);
        if (r < 0)
                return key_message(ret_message, r, "%s", why);
        if (u.has_pin_value)
                return key_message(ret_message, -EINVAL,
                               "pin-value= would leave the PIN in a command line or configuration; "
                               "use pin-source=FILE or PinFile= (a root-only file or a credential)");
        if (!u.token && !u.serial && !u.has_slot_id)
                return key_message(ret_message, -EINVAL, "the URI names no token (token=, serial= or slot-id=)");
        if (!u.object && !u.id)
                return key_message(ret_message, -EINVAL, "the URI names no key (object= or id=)");
        module = u.module_path ?: DEFAULT_MODULE;

        r = read_pin(&u, o, &pin, ret_message);
        if (r < 0)
                return r;

        r = p11_state_new(&s);
        if (r < 0)
                return r;
        if (PKCS11_CTX_load(s->ctx, module) < 0) {
                ERR_clear_error();
                return key_message(ret_message, -ENOPKG, "cannot load the PKCS#11 module %s (module-path= in the URI)", module);
        }
        s->loaded = true;
        if (PKCS11_enumerate_slots(s->ctx, &s->slots, &s->n_slots) < 0) {
                ERR_clear_error();
                return key_message(ret_message, -ENODEV, "the PKCS#11 module %s lists no slots", module);
        }
        for (unsigned i = 0; i < s->n_slots; i++)
                if (token_matches(&u, &s->slots[i])) {
                        slot = &s->slots[i];
                        break;
                }
        if (!slot)
                return key_message(ret_message, -ENODEV, "no token %s%s%s is present (module %s)",
                               u.token ? "labelled '" : "matching the URI", u.token ?: "", u.token ? "'" : "",
                               module);

        if (slot->token->loginRequired) {
                int logged_in = 0;

                if (PKCS11_is_logged_in(slot, 0, &logged_in) < 0)
                        logged_in = 0;
                if (!logged_in) {
                        unsigned long rv;

                        if (!pin)
                                return key_message(ret_message, -ENOKEY,
                                               "token '%s' needs a PIN: add pin-source=FILE to the URI, or PinFile=",
                                               slot->token->label);
                        /* Never spend the last try: a locked token is worse than a failed sign. */
                        if (slot->token->userPinLocked)
                                return key_message(ret_message, -EACCES, "the user PIN of token '%s' is locked; unlock it with the SO PIN",
                                               slot->token->label);
                        if (slot->token->userPinFinalTry)
                                return key_message(ret_message, -EACCES,
                                               "token '%s' has one PIN try left; not trying (check the PIN, then log in once by hand)",
                                               slot->token->label);
                        ERR_clear_error();
                        if (PKCS11_login(slot, 0, pin) < 0) {
                                rv = last_ckr();
                                if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE)
                                        return key_message(ret_message, -EACCES,
                                                       "wrong PIN for token '%s' (not retried, so as not to lock the token)",
                                                       slot->token->label);
                                if (rv == CKR_PIN_LOCKED || rv == CKR_PIN_EXPIRED)
                                        return key_message(ret_message, -EACCES, "the PIN of token '%s' is locked or expired",
                                                       slot->token->label);
                                return key_message(ret_message, -EIO, "login to token '%s' failed (CK_RV 0x%lx)",
                                               slot->token->label, rv);
                        }
                }
        }

        if (PKCS11_enumerate_keys(slot->token, &keys, &n_keys) < 0) {
                ERR_clear_error();
                return key_message(ret_message, -EIO, "cannot list the keys of token '%s'", slot->token->label);
        }
        for (unsigned i = 0; i < n_keys; i++)
                if (key_matches(&u, &keys[i])) {
                        if (!key)
                                key = &keys[i];
                        n_match++;
                }
        if (!key)
                return key_message(ret_message, -ENOKEY, "no private key %s%s%s on token '%s'",
                               u.object ? "labelled '" : "with the URI's id", u.object ?: "", u.object ? "'" : "",
                               slot->token->label);
        if (n_match > 1)
                return key_message(ret_message, -EINVAL, "%u private keys on token '%s' match; add id= to the URI",
                               n_match, slot->token->label);

        p11key = PKCS11_get_private_key(key);
        if (!p11key) {
                ERR_clear_error();
                return key_message(ret_message, -EIO, "cannot use the private key on token '%s'", slot->token->label);
        }
        /* libp11 hands us a new EVP_PKEY of our own; the wrapper shares its RSA/EC_KEY. */
        r = wrap_key(p11key, s, &wrapped);
        EVP_PKEY_free(p11key);
        if (r == -EOPNOTSUPP)
                return key_message(ret_message, r, "the key on token '%s' is neither RSA nor EC (the kernel verifies no other)",
                               slot->token->label);
        if (r < 0)
                return r;
        s = NULL; /* owned by the key now */
        ERR_clear_error();
        *ret = TAKE_PTR(wrapped);
        return 0;
}

#else

int key_openssl_error(int fallback) {
        return fallback;
}

int key_pkcs11_load(const char *uri, const struct key_options *o, EVP_PKEY **ret, char **ret_message) {
        return key_message(ret_message, -EOPNOTSUPP,
                       "PKCS#11 support is not built in (rebuild with libp11: Debian package libp11-dev)");
}

#endif
