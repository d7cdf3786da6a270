/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer harness: everything modsignd parses out of an untrusted module file. The ELF and
 * .modinfo reader, the signature trailer (stacked ones too), and the PKCS#7 blob the trailer
 * points at, through the same calls modsignctl info and verify make. */
#include <config.h>

#include <openssl/x509.h>
#include <stdint.h>
#include <stdlib.h>

#include "module.h"
#include "verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct module_data d = { .fd = -1, .mem = data, .size = size };
        struct module_meta m;
        char *release = NULL;

        if (module_parse(&d, &m, NULL) < 0)
                return 0;

        if (module_vermagic_release(m.vermagic, &release) >= 0)
                free(release);

        if (m.n_signatures > 0) {
                const uint8_t *der = data + m.last_sig.sig_offset;
                struct sig_details s;
                struct verify_ctx *v;

                if (sig_describe(der, m.last_sig.sig_len, &s) >= 0)
                        sig_details_done(&s);
                if (verify_begin(der, m.last_sig.sig_len, &v) >= 0) {
                        STACK_OF(X509) *none = sk_X509_new_null();
                        (void) verify_update(v, data, (size_t) m.last_sig.sig_offset);
                        (void) verify_finish(v, none, NULL);
                        sk_X509_free(none);
                }
        }
        module_meta_done(&m);
        return 0;
}
