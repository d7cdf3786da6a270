/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* report.c and provenance.c, the pure parts: identifier lists, the audit log's signatures,
 * certificate debt, module states, the source tree digest (checked against a manifest written
 * out here by hand from provenance.h) and the statement's shape. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "macro.h"
#include "module-file.h"
#include "provenance.h"
#include "report.h"
#include "unit-util.h"

static void hex_sha256(const void *buf, size_t len, char out[65]) {
        unsigned char md[32];
        unsigned n = 0;

        ck_assert(EVP_Digest(buf, len, md, &n, EVP_sha256(), NULL) == 1 && n == 32);
        for (unsigned i = 0; i < 32; i++)
                snprintf(out + 2 * i, 3, "%02x", md[i]);
}

START_TEST(test_hexid) {
        struct hexid_set s = {};
        unsigned line = 0;
        char *n = NULL;

        ck_assert_int_eq(hexid_normalize("0x00AB:cd", &n), 0);
        ck_assert_str_eq(n, "abcd");
        free(n);
        ck_assert_int_eq(hexid_normalize("00:00", &n), 0);
        ck_assert_str_eq(n, "0");
        free(n);
        ck_assert_int_eq(hexid_normalize("xyz", &n), -EINVAL);
        ck_assert_int_eq(hexid_normalize("", &n), -EINVAL);

        ck_assert_int_eq(hexid_set_parse("# revoked\n\n  3A:4B  # old key\n00ff\n", &s, &line), 0);
        ck_assert_uint_eq(s.n, 2);
        ck_assert(hexid_set_contains(&s, "3a4b"));
        ck_assert(hexid_set_contains(&s, "0xFF"));
        ck_assert(!hexid_set_contains(&s, "3a4c"));
        ck_assert_int_eq(hexid_set_parse("ab\nnot hex\n", &s, &line), -EINVAL);
        ck_assert_uint_eq(line, 2);
        hexid_set_done(&s);
}
END_TEST

START_TEST(test_audit_digests) {
        char *dir = tu_tmpdir(), *path = tu_path(dir, AUDIT_LOG_FILE), a[65], b[65], c[65];
        struct audit_digests d = {};
        struct audit_log *log = NULL;
        int fd;

        hex_sha256("a", 1, a);
        hex_sha256("b", 1, b);
        hex_sha256("c", 1, c);
        ck_assert_int_eq(audit_log_open(dir, &log), 0);
        struct audit_record r1 = { .event = AUDIT_EVENT_SIGNED, .path = "/x/a.ko", .sha256_after = a };
        struct audit_record r2 = { .event = AUDIT_EVENT_REFUSED, .path = "/x/b.ko", .sha256_after = b };
        struct audit_record r3 = { .event = AUDIT_EVENT_RESIGNED, .path = "/x/c.ko", .sha256_after = c,
                                   .provenance = "/state/provenance/c.json" };
        ck_assert_int_eq(audit_log_append(log, &r1, NULL, NULL), 0);
        ck_assert_int_eq(audit_log_append(log, &r2, NULL, NULL), 0);
        ck_assert_int_eq(audit_log_append(log, &r3, NULL, NULL), 0);
        audit_log_free(log);

        fd = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(audit_digests_load_fd(fd, &d), 0);
        close(fd);
        ck_assert_uint_eq(d.n, 2);
        ck_assert(audit_digests_contains(&d, a));
        ck_assert(!audit_digests_contains(&d, b)); /* refused: no signature */
        ck_assert(audit_digests_match(&d, "", c));
        ck_assert(!audit_digests_match(&d, "", ""));
        ck_assert_int_eq(audit_digests_add(&d, "abc"), -EINVAL);
        audit_digests_done(&d);

        /* The provenance member is written, between reason and prev. */
        size_t tlen;
        char *text = (char *) tu_read_file(path, &tlen);
        ck_assert_ptr_nonnull(strstr(text, "\"provenance\":\"/state/provenance/c.json\",\"prev\""));
        free(text);
        free(path);
        free(dir);
}
END_TEST

/* A self-signed certificate, changed by 'edit' and signed again with md. */
static X509 *cert_variant(EVP_PKEY *key, const EVP_MD *md, long not_after_days, const char *eku) {
        X509 *c = tu_cert(key, "report test", 0x1234, true), *fresh;
        uint8_t *der = NULL;
        const uint8_t *p;
        int len;

        ck_assert_ptr_nonnull(X509_time_adj_ex(X509_getm_notAfter(c), (int) not_after_days, 0, NULL));
        if (eku) {
                X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_ext_key_usage, eku);
                ck_assert_ptr_nonnull(e);
                ck_assert(X509_add_ext(c, e, -1));
                X509_EXTENSION_free(e);
        }
        ck_assert(X509_sign(c, key, md) > 0);
        /* A fresh parse: no cached extension flags. */
        len = i2d_X509(c, &der);
        ck_assert_int_gt(len, 0);
        p = der;
        fresh = d2i_X509(NULL, &p, len);
        ck_assert_ptr_nonnull(fresh);
        OPENSSL_free(der);
        X509_free(c);
        return fresh;
}

static char *debt_ids(const struct debt_list *l) {
        static char buf[512];
        buf[0] = '\0';
        for (size_t i = 0; i < l->n; i++) {
                strcat(buf, i ? "," : "");
                strcat(buf, l->items[i].id);
        }
        return buf;
}

START_TEST(test_cert_debt) {
        EVP_PKEY *k2048 = tu_rsa_key(2048), *k1024 = tu_rsa_key(1024);
        struct debt_list debt = {};
        struct hexid_set revoked = {};
        struct cert_facts f;
        X509 *c;

        c = cert_variant(k2048, EVP_sha256(), 3650, NULL);
        ck_assert_int_eq(cert_check_hygiene(c, "good", time(NULL), 30, NULL, NULL, &f, &debt), 0);
        ck_assert_str_eq(debt_ids(&debt), "");
        ck_assert_str_eq(f.key_type, "rsa");
        ck_assert_int_eq(f.key_bits, 2048);
        ck_assert_str_eq(f.signature_hash, "sha256");
        ck_assert(f.expiry_seconds > 3649LL * 86400);
        cert_facts_done(&f);
        /* Ten years is within a warning of 4000 days. */
        ck_assert_int_eq(cert_check_hygiene(c, "good", time(NULL), 4000, NULL, NULL, &f, &debt), 0);
        ck_assert_str_eq(debt_ids(&debt), "cert-expiring");
        cert_facts_done(&f);
        debt_list_done(&debt);
        /* Revoked by serial number. */
        ck_assert_int_eq(hexid_set_parse("12:34\n", &revoked, NULL), 0);
        ck_assert_int_eq(cert_check_hygiene(c, "good", time(NULL), 30, NULL, &revoked, &f, &debt), 0);
        ck_assert_str_eq(debt_ids(&debt), "cert-revoked");
        cert_facts_done(&f);
        debt_list_done(&debt);
        X509_free(c);

        c = cert_variant(k1024, EVP_sha1(), -2, "serverAuth");
        ck_assert_int_eq(cert_check_hygiene(c, "bad", time(NULL), 30, NULL, NULL, &f, &debt), 0);
        ck_assert_str_eq(debt_ids(&debt), "cert-expired,weak-key,weak-signature-hash,extended-key-usage");
        ck_assert(f.expiry_seconds < 0);
        ck_assert_str_eq(f.signature_hash, "sha1");
        ck_assert_str_eq(debt.items[0].subject, "bad");
        ck_assert_ptr_nonnull(strstr(debt.items[0].fix, "modsignctl keygen"));
        cert_facts_done(&f);
        debt_list_done(&debt);
        X509_free(c);

        /* codeSigning among others is fine. */
        c = cert_variant(k2048, EVP_sha256(), 3650, "serverAuth,codeSigning");
        ck_assert_int_eq(cert_check_hygiene(c, "ok", time(NULL), 30, NULL, NULL, &f, &debt), 0);
        ck_assert_str_eq(debt_ids(&debt), "");
        cert_facts_done(&f);
        X509_free(c);
        hexid_set_done(&revoked);
        EVP_PKEY_free(k2048);
        EVP_PKEY_free(k1024);
}
END_TEST

/* Writes img as dir/name and classifies it. */
static enum module_state classify(const char *dir, const char *name, const uint8_t *img, size_t len,
                                  const struct module_trust *t, const struct audit_digests *a, bool *ret_escaped) {
        char *path = tu_path(dir, name);
        struct module_file m;
        struct module_verdict v;
        int dfd = tu_open_dir(dir);

        tu_write_file(path, img, len, 0644);
        ck_assert_int_eq(module_file_open(dfd, name, &m, NULL), 0);
        ck_assert_int_eq(module_classify(&m, t, a, &v), 0);
        module_file_close(&m);
        close(dfd);
        free(path);
        if (ret_escaped)
                *ret_escaped = v.escaped;
        module_verdict_done(&v);
        return v.state;
}

START_TEST(test_classify) {
        char *dir = tu_tmpdir(), sha[65];
        EVP_PKEY *ka = tu_rsa_key(2048), *kb = tu_rsa_key(2048);
        X509 *ca = tu_cert(ka, "a", 1, true), *cb = tu_cert(kb, "b", 2, true);
        STACK_OF(X509) *ours = tu_cert_stack(ca), *others = tu_cert_stack(cb);
        struct hexid_set revoked = {};
        struct audit_digests audit = {};
        size_t len, slen, blen;
        uint8_t *img = tu_module_default(&len), *signed_a, *signed_b, *sig;
        bool esc;

        signed_a = malloc(len);
        memcpy(signed_a, img, len);
        blen = len;
        sig = tu_sign_file_oracle(ka, ca, "sha256", false, img, len, &slen);
        tu_append_sig(&signed_a, &blen, sig, slen);
        free(sig);
        signed_b = malloc(len);
        memcpy(signed_b, img, len);
        size_t blen_b = len;
        sig = tu_sign_file_oracle(kb, cb, "sha256", false, img, len, &slen);
        tu_append_sig(&signed_b, &blen_b, sig, slen);
        free(sig);

        struct module_trust t = { .ours = ours, .others = others, .revoked = &revoked };
        ck_assert_int_eq(classify(dir, "u.ko", img, len, &t, NULL, NULL), MODULE_STATE_UNSIGNED);
        ck_assert_int_eq(classify(dir, "a.ko", signed_a, blen, &t, &audit, &esc), MODULE_STATE_SIGNED_OURS);
        ck_assert(esc);
        hex_sha256(signed_a, blen, sha);
        ck_assert_int_eq(audit_digests_add(&audit, sha), 0);
        audit_digests_seal(&audit);
        ck_assert_int_eq(classify(dir, "a.ko", signed_a, blen, &t, &audit, &esc), MODULE_STATE_SIGNED_OURS);
        ck_assert(!esc);
        ck_assert_int_eq(classify(dir, "b.ko", signed_b, blen_b, &t, &audit, &esc), MODULE_STATE_SIGNED_OTHER);
        ck_assert(!esc);
        struct module_trust only_ours = { .ours = ours };
        ck_assert_int_eq(classify(dir, "b.ko", signed_b, blen_b, &only_ours, NULL, NULL), MODULE_STATE_UNTRUSTED);
        /* b's serial, 2, on the revocation list: trusted or not, revoked. */
        ck_assert_int_eq(hexid_set_parse("02\n", &revoked, NULL), 0);
        ck_assert_int_eq(classify(dir, "b.ko", signed_b, blen_b, &t, NULL, NULL), MODULE_STATE_REVOKED);
        struct module_trust ours_revoked = { .ours = ours, .revoked = &revoked };
        ck_assert_int_eq(classify(dir, "b.ko", signed_b, blen_b, &ours_revoked, NULL, NULL), MODULE_STATE_REVOKED);
        /* A changed byte of the body. */
        signed_a[tu_shdr(signed_a, TU_SEC_TEXT)->sh_offset] ^= 1;
        ck_assert_int_eq(classify(dir, "a.ko", signed_a, blen, &t, NULL, NULL), MODULE_STATE_BAD);

        hexid_set_done(&revoked);
        audit_digests_done(&audit);
        sk_X509_pop_free(ours, X509_free);
        sk_X509_pop_free(others, X509_free);
        X509_free(ca);
        X509_free(cb);
        EVP_PKEY_free(ka);
        EVP_PKEY_free(kb);
        free(img);
        free(signed_a);
        free(signed_b);
        free(dir);
}
END_TEST

START_TEST(test_tree_digest) {
        char *dir = tu_tmpdir(), *sub = tu_path(dir, "sub"), *p, want[65], got[65], h1[65], h2[65], h3[65];
        char manifest[512];
        size_t n;

        ck_assert_int_eq(mkdir(sub, 0755), 0);
        p = tu_path(dir, "a.txt");
        tu_write_file(p, "alpha\n", 6, 0644);
        free(p);
        p = tu_path(sub, "x");
        tu_write_file(p, "#!/bin/sh\n", 10, 0755);
        ck_assert_int_eq(chmod(p, 0755), 0);
        free(p);
        p = tu_path(dir, "link");
        ck_assert_int_eq(symlink("a.txt", p), 0);
        free(p);
        p = tu_path(dir, "empty");
        ck_assert_int_eq(mkdir(p, 0755), 0);
        free(p);

        /* The manifest, by hand: sorted paths "a.txt" < "link" < "sub/x". */
        hex_sha256("alpha\n", 6, h1);
        hex_sha256("a.txt", 5, h2);
        hex_sha256("#!/bin/sh\n", 10, h3);
        n = (size_t) snprintf(manifest, sizeof(manifest), "f 0644 %s a.txt%cl 0777 %s link%cf 0755 %s sub/x%c", h1, 0, h2,
                              0, h3, 0);
        hex_sha256(manifest, n, want);
        ck_assert_int_eq(source_tree_digest(dir, got), 0);
        ck_assert_str_eq(got, want);

        /* A mode counts. */
        p = tu_path(dir, "a.txt");
        ck_assert_int_eq(chmod(p, 0600), 0);
        ck_assert_int_eq(source_tree_digest(dir, got), 0);
        ck_assert_str_ne(got, want);
        free(p);
        ck_assert_int_eq(source_tree_digest("/nonexistent-modsignd-tree", got), -ENOENT);
        free(sub);
        free(dir);
}
END_TEST

START_TEST(test_statement) {
        char sha[65];
        json_object *st = NULL;

        hex_sha256("module", 6, sha);
        struct provenance_input in = {
                .subject_name = "zfs.ko", .sha256 = sha, .module = "zfs", .kernel = "6.1.0-1-amd64",
                .dkms_package = "zfs", .dkms_version = "2.1", .source_root = "/nonexistent-modsignd-src",
                .signer_fingerprint = sha, .build_host = "host1", .time = "2025-01-31T23:59:59Z",
        };
        ck_assert_int_eq(provenance_statement(&in, &st), 0);
        ck_assert_str_eq(provenance_subject_sha256(st), sha);
        const char *text = json_object_to_json_string_ext(st, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        ck_assert_ptr_nonnull(strstr(text, "\"_type\":\"https://in-toto.io/Statement/v1\""));
        ck_assert_ptr_nonnull(strstr(text, "\"subject\":[{\"name\":\"zfs.ko\",\"digest\":{\"sha256\":\""));
        ck_assert_ptr_nonnull(strstr(text, "\"predicateType\":\"https://modsignd.example/provenance/v1\""));
        ck_assert_ptr_nonnull(strstr(text, "\"dkms\":{\"package\":\"zfs\",\"version\":\"2.1\",\"source\":{\"path\":\"/nonexistent-modsignd-src/zfs-2.1\",\"algorithm\":\"modsignd-tree-v1\",\"present\":false}}"));
        ck_assert_ptr_nonnull(strstr(text, "\"build_host\":\"host1\""));
        ck_assert_ptr_nonnull(strstr(text, "\"time\":\"2025-01-31T23:59:59Z\""));
        json_object_put(st);

        /* A statement written and read back; one for another digest is refused. */
        char *dir = tu_tmpdir(), *path = NULL, other[65];
        ck_assert_int_eq(provenance_statement(&in, &st), 0);
        ck_assert_int_eq(provenance_write(dir, sha, st, &path), 0);
        json_object_put(st);
        struct stat sb;
        ck_assert_int_eq(stat(path, &sb), 0);
        ck_assert_uint_eq(sb.st_mode & 07777, 0644);
        ck_assert_int_eq(provenance_load(dir, sha, &st), 0);
        json_object_put(st);
        hex_sha256("other", 5, other);
        ck_assert_int_eq(provenance_load(dir, other, &st), -ENOENT);
        in.sha256 = other;
        ck_assert_int_eq(provenance_statement(&in, &st), 0);
        ck_assert_int_eq(provenance_write(dir, sha, st, NULL), 0); /* under the wrong name */
        json_object_put(st);
        ck_assert_int_eq(provenance_load(dir, sha, &st), -EBADMSG);
        in.sha256 = "not-a-digest";
        ck_assert_int_eq(provenance_statement(&in, &st), -EINVAL);
        free(path);
        free(dir);
}
END_TEST

static Suite *report_suite(void) {
        Suite *s = suite_create("report");
        TCase *tc = tu_tcase("report");

        tcase_add_test(tc, test_hexid);
        tcase_add_test(tc, test_audit_digests);
        tcase_add_test(tc, test_cert_debt);
        tcase_add_test(tc, test_classify);
        suite_add_tcase(s, tc);
        tc = tu_tcase("provenance");
        tcase_add_test(tc, test_tree_digest);
        tcase_add_test(tc, test_statement);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tu_run_suite(report_suite());
}
