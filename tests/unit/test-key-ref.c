/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* key-ref.c: which backend a key reference selects, and RFC 7512 PKCS#11 URI parsing. */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "key-backend.h"
#include "macro.h"
#include "unit-util.h"

#if HAVE_LIBP11
#include <libp11.h>
#include <openssl/err.h>
#endif

static void check_backend(const char *ref, enum key_backend want, const char *target) {
        struct key_ref r = {};
        const char *why = NULL;
        int k = key_ref_parse(ref, &r, &why);

        ck_assert_msg(k == 0, "%s: %s (%s)", ref, strerror(-k), why ?: "");
        ck_assert_msg(r.backend == want, "%s: backend %s", ref, key_backend_to_string(r.backend));
        ck_assert_str_eq(r.target, target);
        key_ref_done(&r);
}

static void check_bad_ref(const char *ref, int error) {
        struct key_ref r = {};
        const char *why = NULL;

        ck_assert_msg(key_ref_parse(ref, &r, &why) == error, "%s accepted or wrong error", ref ?: "(null)");
        ck_assert_ptr_null(r.target);
        ck_assert_ptr_nonnull(why);
}

START_TEST(test_ref_backends) {
        check_backend("/etc/modsignd/signing.key", KEY_BACKEND_FILE, "/etc/modsignd/signing.key");
        check_backend("relative.pem", KEY_BACKEND_FILE, "relative.pem");
        check_backend("pkcs11:token=T;object=O", KEY_BACKEND_PKCS11, "pkcs11:token=T;object=O");
        check_backend("handle:0x81000001", KEY_BACKEND_TPM2, "handle:0x81000001");
        check_backend("handle:0X8100ABcd", KEY_BACKEND_TPM2, "handle:0X8100ABcd");
        check_backend("object:/var/lib/k.tss2", KEY_BACKEND_TPM2, "object:/var/lib/k.tss2");
        /* A file that merely starts like a scheme without the colon is a file. */
        check_backend("pkcs11-key.pem", KEY_BACKEND_FILE, "pkcs11-key.pem");
}
END_TEST

START_TEST(test_ref_bad) {
        check_bad_ref("", -EINVAL);
        check_bad_ref(NULL, -EINVAL);
        check_bad_ref("handle:81000001", -EINVAL);
        check_bad_ref("handle:0x", -EINVAL);
        check_bad_ref("handle:0x810000011", -EINVAL); /* 9 digits */
        check_bad_ref("handle:0x8100000g", -EINVAL);
        check_bad_ref("object:", -EINVAL);
}
END_TEST

START_TEST(test_ref_credential) {
        ck_assert_int_eq(setenv("CREDENTIALS_DIRECTORY", "/run/credentials/modsignd.service", 1), 0);
        check_backend("credential:signing.key", KEY_BACKEND_FILE, "/run/credentials/modsignd.service/signing.key");
        check_bad_ref("credential:", -EINVAL);
        check_bad_ref("credential:../etc/shadow", -EINVAL);
        check_bad_ref("credential:..", -EINVAL);
        ck_assert_int_eq(unsetenv("CREDENTIALS_DIRECTORY"), 0);
        check_bad_ref("credential:signing.key", -ENOMEDIUM);
        ck_assert_int_eq(setenv("CREDENTIALS_DIRECTORY", "", 1), 0);
        check_bad_ref("credential:signing.key", -ENOMEDIUM);
}
END_TEST

START_TEST(test_uri_full) {
        struct pkcs11_uri u = {};
        const char *why = NULL;

        ck_assert_int_eq(pkcs11_uri_parse("pkcs11:token=My%20Token;manufacturer=SoftHSM%20project;serial=abc;"
                                          "model=SoftHSM%20v2;object=signer;id=%01%02%ff;type=private;slot-id=7;"
                                          "vendor-x=ignored?module-path=/usr/lib/softhsm/libsofthsm2.so"
                                          "&pin-source=/etc/modsignd/pin&other=ignored",
                                          &u, &why),
                         0);
        ck_assert_str_eq(u.token, "My Token");
        ck_assert_str_eq(u.manufacturer, "SoftHSM project");
        ck_assert_str_eq(u.serial, "abc");
        ck_assert_str_eq(u.model, "SoftHSM v2");
        ck_assert_str_eq(u.object, "signer");
        ck_assert_uint_eq(u.id_len, 3);
        ck_assert_mem_eq(u.id, "\x01\x02\xff", 3);
        ck_assert_str_eq(u.type, "private");
        ck_assert(u.has_slot_id);
        ck_assert_uint_eq(u.slot_id, 7);
        ck_assert_str_eq(u.module_path, "/usr/lib/softhsm/libsofthsm2.so");
        ck_assert_str_eq(u.pin_source, "/etc/modsignd/pin");
        ck_assert(!u.has_pin_value);
        pkcs11_uri_done(&u);
        ck_assert_ptr_null(u.token);
}
END_TEST

START_TEST(test_uri_minimal) {
        struct pkcs11_uri u = {};
        const char *why = NULL;

        ck_assert_int_eq(pkcs11_uri_parse("pkcs11:", &u, &why), 0);
        ck_assert_ptr_null(u.token);
        ck_assert_ptr_null(u.id);
        ck_assert(!u.has_slot_id);
        pkcs11_uri_done(&u);

        ck_assert_int_eq(pkcs11_uri_parse("pkcs11:object=a;?pin-value=1234", &u, &why), 0);
        ck_assert_str_eq(u.object, "a");
        ck_assert(u.has_pin_value); /* noticed, so the backend can refuse it; the value is dropped */
        pkcs11_uri_done(&u);
}
END_TEST

static void check_bad_uri(const char *uri) {
        struct pkcs11_uri u = {};
        const char *why = NULL;

        ck_assert_msg(pkcs11_uri_parse(uri, &u, &why) == -EINVAL, "%s accepted", uri);
        ck_assert_ptr_nonnull(why);
        ck_assert_ptr_null(u.token);
}

START_TEST(test_uri_bad) {
        check_bad_uri("file:/x");
        check_bad_uri("pkcs11:token");              /* no '=' */
        check_bad_uri("pkcs11:token=a;token=b");    /* twice */
        check_bad_uri("pkcs11:object=%4");          /* truncated escape */
        check_bad_uri("pkcs11:object=%");
        check_bad_uri("pkcs11:object=%zz");
        check_bad_uri("pkcs11:object=a%00b");       /* NUL in text */
        check_bad_uri("pkcs11:id=");
        check_bad_uri("pkcs11:type=cert;object=a"); /* not a private key */
        check_bad_uri("pkcs11:slot-id=x");
        check_bad_uri("pkcs11:slot-id=99999999999999999999999");
        check_bad_uri("pkcs11:object=a?pin-source=");
        check_bad_uri("pkcs11:object=a?pin-source=a&pin-source=b");
}
END_TEST

/* A failed signature whose CK_RV says the token or session is gone is -ENODEV; anything else
 * keeps the caller's error. The queue is emptied either way. */
START_TEST(test_openssl_error_token_gone) {
#if HAVE_LIBP11
        static const unsigned long gone[] = { 0x30 /* DEVICE_ERROR: p11-kit's server killed */, 0x32, 0xb0, 0xb3, 0xe0 };
        static const unsigned long not_gone[] = { 0xa0 /* PIN_INCORRECT */, 0x68 /* KEY_FUNCTION_NOT_PERMITTED */ };

        ERR_clear_error();
        ck_assert_int_eq(key_openssl_error(-EIO), -EIO);
        ERR_raise(ERR_LIB_EVP, 0);
        ck_assert_int_eq(key_openssl_error(-EIO), -EIO);
        ck_assert_uint_eq(ERR_peek_error(), 0);
        for (size_t i = 0; i < ELEMENTSOF(gone); i++) {
                ERR_raise(ERR_LIB_EVP, 0);
                ERR_raise(ERR_get_CKR_code(), (int) gone[i]);
                ERR_raise(ERR_LIB_CMS, 0); /* what the CMS code adds on top */
                ck_assert_int_eq(key_openssl_error(-EIO), -ENODEV);
                ck_assert_uint_eq(ERR_peek_error(), 0);
        }
        for (size_t i = 0; i < ELEMENTSOF(not_gone); i++) {
                ERR_raise(ERR_get_CKR_code(), (int) not_gone[i]);
                ck_assert_int_eq(key_openssl_error(-EIO), -EIO);
                ck_assert_uint_eq(ERR_peek_error(), 0);
        }
#else
        ck_assert_int_eq(key_openssl_error(-EIO), -EIO);
#endif
}
END_TEST

static Suite *key_ref_suite(void) {
        Suite *s = suite_create("key-ref");
        TCase *tc = tu_tcase("ref");

        tcase_add_test(tc, test_ref_backends);
        tcase_add_test(tc, test_ref_bad);
        tcase_add_test(tc, test_ref_credential);
        suite_add_tcase(s, tc);

        tc = tu_tcase("pkcs11-uri");
        tcase_add_test(tc, test_uri_full);
        tcase_add_test(tc, test_uri_minimal);
        tcase_add_test(tc, test_uri_bad);
        tcase_add_test(tc, test_openssl_error_token_gone);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tu_run_suite(key_ref_suite());
}
