/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

#include "keyring.h"
#include "macro.h"
#include "openssl-util.h"
#include "verify.h"

struct verify_ctx {
        CMS_ContentInfo *cms;
        BIO *chain;
};

static CMS_ContentInfo *cms_parse(const uint8_t *der, size_t len) {
        const unsigned char *p = der;
        CMS_ContentInfo *cms;

        if (len > INT32_MAX)
                return NULL;
        cms = d2i_CMS_ContentInfo(NULL, &p, (long) len);
        if (!cms)
                return NULL;
        /* Trailing garbage inside sig_len would be ignored by a lenient parser; the kernel's
         * ASN.1 decoder refuses it, and so do we. The kernel also wants the signed content to
         * be plain data (id-data). */
        if (p != der + len || OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed ||
            OBJ_obj2nid(CMS_get0_eContentType(cms)) != NID_pkcs7_data ||
            sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)) <= 0) {
                CMS_ContentInfo_free(cms);
                return NULL;
        }
        return cms;
}

static char *hex_string(const unsigned char *data, size_t len, const char *sep) {
        size_t seplen = strlen(sep);
        char *s = malloc(len * (2 + seplen) + 1), *p = s;

        if (!s)
                return NULL;
        *p = '\0';
        for (size_t i = 0; i < len; i++)
                p += sprintf(p, "%s%02x", i > 0 ? sep : "", data[i]);
        return s;
}

static char *name_to_string(const X509_NAME *name) {
        _cleanup_(BIO_free_allp) BIO *b = BIO_new(BIO_s_mem());
        char *s, *data;
        long n;

        if (!b || X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0)
                return NULL;
        n = BIO_get_mem_data(b, &data);
        if (n < 0)
                return NULL;
        s = strndup(data, (size_t) n);
        return s;
}

static char *name_common_name(const X509_NAME *name) {
        int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
        const ASN1_STRING *s;
        unsigned char *utf8 = NULL;
        char *ret;
        int n;

        if (idx < 0)
                return NULL;
        s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
        n = ASN1_STRING_to_UTF8(&utf8, s);
        if (n < 0)
                return NULL;
        ret = strndup((char *) utf8, (size_t) n);
        OPENSSL_free(utf8);
        return ret;
}

static char *lowercase_sn(int nid) {
        const char *sn = OBJ_nid2sn(nid);
        char *s;

        if (!sn)
                return NULL;
        s = strdup(sn);
        for (char *p = s; p && *p; p++)
                *p = (char) tolower((unsigned char) *p);
        return s;
}

static char *key_algo_name(const X509_ALGOR *alg) {
        int nid = OBJ_obj2nid(alg->algorithm), pkey_nid = NID_undef;

        if (OBJ_find_sigid_algs(nid, NULL, &pkey_nid))
                nid = pkey_nid;
        if (nid == NID_rsaEncryption || nid == NID_rsa)
                return strdup("rsa");
        if (nid == NID_X9_62_id_ecPublicKey)
                return strdup("ecdsa");
        return lowercase_sn(nid);
}

int sig_describe(const uint8_t *der, size_t len, struct sig_details *ret) {
        _cleanup_(CMS_ContentInfo_freep) CMS_ContentInfo *cms = cms_parse(der, len);
        struct sig_details d = {};
        STACK_OF(CMS_SignerInfo) *sis;
        CMS_SignerInfo *si;
        ASN1_OCTET_STRING *keyid = NULL;
        X509_NAME *issuer = NULL;
        ASN1_INTEGER *serial = NULL;
        X509_ALGOR *dig = NULL, *sig = NULL;

        ERR_clear_error();
        if (!cms)
                return -EBADMSG;
        sis = CMS_get0_SignerInfos(cms);
        d.n_signers = (unsigned) sk_CMS_SignerInfo_num(sis);
        si = sk_CMS_SignerInfo_value(sis, 0);

        if (CMS_SignerInfo_get0_signer_id(si, &keyid, &issuer, &serial) <= 0)
                return -EBADMSG;
        CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, &sig);

        if (keyid)
                d.key_id = hex_string(ASN1_STRING_get0_data(keyid), (size_t) ASN1_STRING_length(keyid), "");
        if (issuer) {
                d.issuer = name_to_string(issuer);
                d.signer = name_common_name(issuer);
                if (kernel_name_of(issuer, &d.issuer_kernel) < 0)
                        d.issuer_kernel = NULL;
        }
        if (serial)
                d.serial = hex_string(ASN1_STRING_get0_data(serial), (size_t) ASN1_STRING_length(serial), ":");
        if (dig)
                d.hash = lowercase_sn(OBJ_obj2nid(dig->algorithm));
        if (sig)
                d.key_algo = key_algo_name(sig);

        *ret = d;
        return 0;
}

void sig_details_done(struct sig_details *d) {
        free(d->signer);
        free(d->issuer);
        free(d->issuer_kernel);
        free(d->serial);
        free(d->key_id);
        free(d->hash);
        free(d->key_algo);
        *d = (struct sig_details) {};
}

int verify_begin(const uint8_t *der, size_t len, struct verify_ctx **ret) {
        _cleanup_(CMS_ContentInfo_freep) CMS_ContentInfo *cms = cms_parse(der, len);
        struct verify_ctx *c;
        BIO *chain;

        ERR_clear_error();
        if (!cms)
                return -EBADMSG;
        /* The content is detached: this makes the digest BIOs of every digestAlgorithm over a
         * null sink, so writing the module's bytes into it hashes them. */
        chain = CMS_dataInit(cms, NULL);
        if (!chain) {
                ERR_clear_error();
                return -EBADMSG;
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
                BIO_free_all(chain);
                return -ENOMEM;
        }
        c->cms = TAKE_PTR(cms);
        c->chain = chain;
        *ret = c;
        return 0;
}

int verify_update(struct verify_ctx *c, const void *buf, size_t len) {
        while (len > 0) {
                int n = (int) MIN(len, (size_t) 1 << 30);

                if (BIO_write(c->chain, buf, n) != n)
                        return -EIO;
                buf = (const uint8_t *) buf + n;
                len -= (size_t) n;
        }
        return 0;
}

int verify_finish(struct verify_ctx *c, STACK_OF(X509) *trusted, X509 **ret_signer) {
        STACK_OF(CMS_SignerInfo) *sis = CMS_get0_SignerInfos(c->cms);
        X509 *first = NULL;
        int r = 0;

        (void) BIO_flush(c->chain);
        for (int i = 0; i < sk_CMS_SignerInfo_num(sis) && r == 0; i++) {
                CMS_SignerInfo *si = sk_CMS_SignerInfo_value(sis, i);
                X509 *match = NULL;

                for (int j = 0; j < sk_X509_num(trusted); j++)
                        if (CMS_SignerInfo_cert_cmp(si, sk_X509_value(trusted, j)) == 0) {
                                match = sk_X509_value(trusted, j);
                                break;
                        }
                if (!match) {
                        r = -ENOKEY;
                        break;
                }
                /* With signed attributes, CMS_SignerInfo_verify_content() only compares the
                 * messageDigest attribute and checks no signature at all, so anyone could forge
                 * one; the kernel refuses module signatures with authenticated attributes
                 * outright ("Invalid module sig (has authattrs)"), and so do we. Without them,
                 * it checks the signature over the content digest with the signer's key. */
                if (CMS_signed_get_attr_count(si) >= 0) {
                        r = -EKEYREJECTED;
                        break;
                }
                CMS_SignerInfo_set1_signer_cert(si, match);
                if (CMS_SignerInfo_verify_content(si, c->chain) != 1)
                        r = -EKEYREJECTED;
                else if (!first)
                        first = match;
        }
        ERR_clear_error();

        if (r == 0 && ret_signer) {
                X509_up_ref(first);
                *ret_signer = first;
        }
        verify_ctx_free(c);
        return r;
}

struct verify_ctx *verify_ctx_free(struct verify_ctx *c) {
        if (!c)
                return NULL;
        BIO_free_all(c->chain);
        CMS_ContentInfo_free(c->cms);
        free(c);
        return NULL;
}
