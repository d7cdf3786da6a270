/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* modsignctl sign-file: the kernel's scripts/sign-file argument syntax, so that dkms'
 * sign_file= and kernel build scripts can call us unchanged. Differences, on purpose: an
 * already signed module has its signature replaced rather than stacked; the output is written
 * atomically and durably; compressed modules are signed inside. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io-util.h"
#include "key.h"
#include "log.h"
#include "modsign.h"
#include "modsignctl.h"
#include "openssl-util.h"
#include "replace.h"

#define RAW_SIG_MAX (1U << 20)

static int usage(void) {
        fprintf(stderr,
                "Usage: modsignctl sign-file [-dpk] <hash algo> <key> <x509> <module> [<dest>]\n"
                "       modsignctl sign-file -s <raw sig> <hash algo> <x509> <module> [<dest>]\n");
        return EXIT_USAGE;
}

static void help(void) {
        printf("Usage: modsignctl sign-file [-dpk] HASH KEY X509 MODULE [DEST]\n"
               "       modsignctl sign-file -s RAWSIG HASH X509 MODULE [DEST]\n"
               "\n"
               "Drop-in for the kernel's scripts/sign-file, with the same output bytes.\n"
               "\n"
               "  -d         write only the detached signature, to MODULE.p7s\n"
               "  -p         also write the detached signature to MODULE.p7s\n"
               "  -k         identify the signer by subjectKeyIdentifier\n"
               "  -s RAWSIG  append a PKCS#7 signature made elsewhere\n"
               "\n"
               "KEY is a key file, or pkcs11:URI, handle:0x81... or object:PATH (TPM2).\n"
               "An encrypted PEM key or a token takes its passphrase or PIN from KBUILD_SIGN_PIN,\n"
               "as sign-file does (a pkcs11: URI's pin-source=FILE wins).\n"
               "Exit status: 0 success, 1 error, 2 usage error.\n");
}

static int write_p7s(int dir_fd, const char *base, const uint8_t *der, size_t len) {
        _cleanup_free_ char *name = NULL;
        struct replace out;
        int r;

        if (asprintf(&name, "%s.p7s", base) < 0)
                return -ENOMEM;
        r = replace_begin(dir_fd, name, NULL, &out);
        if (r < 0)
                return r;
        r = loop_write(out.fd, der, len);
        if (r < 0) {
                replace_abort(&out);
                return r;
        }
        return replace_commit(&out);
}

static int read_raw_sig(const char *path, uint8_t **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        char *data;
        int r;

        if (fd < 0)
                return negative_errno();
        r = read_full_fd(fd, RAW_SIG_MAX, &data, ret_len);
        if (r < 0)
                return r;
        *ret = (uint8_t *) data;
        return 0;
}

int cmd_sign_file(int argc, char *argv[]) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_free_ uint8_t *raw_sig = NULL, *sig = NULL;
        _cleanup_close_ int dest_dir_fd = -EBADF;
        _cleanup_(module_arg_close) struct module_arg m = { .dir_fd = -EBADF };
        struct signer *signer = NULL;
        const char *raw_sig_path = NULL, *hash, *key_path = NULL, *cert_path, *module_path, *dest_path = NULL;
        const char *dest_base = NULL, *why = NULL;
        bool sign_only = false, save_sig = false, keyid = false;
        enum modsign_outcome outcome;
        size_t raw_sig_len = 0, sig_len = 0;
        int c, r, n;

        if (argc == 2 && (streq(argv[1], "--help") || streq(argv[1], "-h"))) {
                help();
                return EXIT_OK;
        }

        while ((c = getopt(argc, argv, "+dpks:")) >= 0)
                switch (c) {
                case 'd':
                        sign_only = true;
                        save_sig = true;
                        break;
                case 'p':
                        save_sig = true;
                        break;
                case 'k':
                        keyid = true;
                        break;
                case 's':
                        raw_sig_path = optarg;
                        break;
                default:
                        return usage();
                }

        n = argc - optind;
        if (raw_sig_path ? (n != 3 && n != 4) : (n != 4 && n != 5))
                return usage();
        if (raw_sig_path && (sign_only || keyid)) {
                log_error("sign-file: -s cannot be combined with -d or -k");
                return EXIT_USAGE;
        }
        hash = argv[optind++];
        if (!raw_sig_path)
                key_path = argv[optind++];
        cert_path = argv[optind++];
        module_path = argv[optind++];
        if (optind < argc)
                dest_path = argv[optind];

        if (!raw_sig_path) {
                if (hash_classify(hash) == HASH_UNKNOWN) {
                        log_error("sign-file: unknown hash algorithm '%s'", hash);
                        return EXIT_ERROR;
                }
                if (hash_classify(hash) == HASH_WEAK)
                        log_warning("sign-file: signing with weak hash '%s'", hash);

                /* The kernel's build passes an encrypted key's passphrase this way; we accept
                 * it here, for compatibility, and nowhere else. */
                if (load_signing_key(key_path, getenv("KBUILD_SIGN_PIN"), false, &key) < 0)
                        return EXIT_ERROR;
                r = cert_load_file(cert_path, &cert);
                if (r < 0) {
                        log_error_errno(r, "%s: cannot load certificate: %s", cert_path,
                                        r == -EBADMSG ? "not a PEM or DER X.509 certificate" : strerror(-r));
                        return EXIT_ERROR;
                }
                r = signer_new(key, cert, keyid, &signer);
                if (r == -EKEYREJECTED)
                        log_error("%s: the private key does not belong to certificate %s", key_path, cert_path);
                else if (r == -ENOKEY)
                        log_error("%s: -k needs a certificate with a subjectKeyIdentifier", cert_path);
                else if (r < 0)
                        log_error_errno(r, "cannot set up signing: %m");
                if (r < 0)
                        return EXIT_ERROR;
        } else {
                r = read_raw_sig(raw_sig_path, &raw_sig, &raw_sig_len);
                if (r < 0) {
                        log_error_errno(r, "%s: cannot read raw signature: %m", raw_sig_path);
                        return EXIT_ERROR;
                }
        }

        if (module_arg_open(module_path, &m) != EXIT_OK)
                goto fail;
        if (dest_path) {
                r = open_parent_dir(dest_path, &dest_dir_fd, &dest_base);
                if (r < 0) {
                        log_error_errno(r, "%s: %m", dest_path);
                        goto fail;
                }
        }

        struct modsign_request req = {
                .signer = signer,
                .hash = hash,
                .raw_sig = raw_sig,
                .raw_sig_len = raw_sig_len,
                .existing = MODSIGN_EXISTING_REPLACE,
                .write_module = !sign_only,
                .always_write = true,
                .dest_dir_fd = dest_dir_fd,
                .dest_name = dest_base,
                .ret_sig = save_sig ? &sig : NULL,
                .ret_sig_len = save_sig ? &sig_len : NULL,
        };
        r = modsign_sign(&m.file, &req, &outcome, &why);
        if (r < 0) {
                log_error("%s: %s: %s", dest_path ?: module_path, why ?: "signing failed", strerror(-r));
                goto fail;
        }
        if (save_sig) {
                const char *slash = strrchr(module_path, '/');
                r = write_p7s(m.dir_fd, slash ? slash + 1 : module_path, sig, sig_len);
                if (r < 0) {
                        log_error_errno(r, "%s.p7s: cannot write: %m", module_path);
                        goto fail;
                }
        }
        signer_free(signer);
        return EXIT_OK;

fail:
        signer_free(signer);
        return EXIT_ERROR;
}
