/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* modsignctl keygen: make the machine owner's module signing key and its certificate. */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <spawn.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "key-backend.h"
#include "key.h"
#include "keygen.h"
#include "keyring.h"
#include "log.h"
#include "macro.h"
#include "modsignctl.h"
#include "newfile.h"
#include "openssl-util.h"

#define DEFAULT_KEY "/etc/modsignd/signing.key"
#define DEFAULT_CERT "/etc/modsignd/signing.crt"
#define CN_MAX 64 /* ub-common-name, RFC 5280 */

static void help(void) {
        printf("Usage: modsignctl keygen [OPTIONS]\n"
               "\n"
               "Make a new module signing key and a self-signed X.509 certificate for it, as\n"
               "the kernel and shim expect them (CA:FALSE, digitalSignature, codeSigning).\n"
               "An existing key or certificate is never overwritten.\n"
               "\n"
               "  -k --key PATH       private key, PEM, mode 0600 (default %s)\n"
               "  -c --cert PATH      certificate, PEM (default: the key's name with .crt,\n"
               "                      %s for the default key)\n"
               "     --der PATH       certificate, DER, for mokutil --import (default: the\n"
               "                      certificate's name with .der)\n"
               "  -t --type rsa|ec    key type (default rsa)\n"
               "  -b --bits N         RSA size: 2048, 3072 or 4096 (default %u)\n"
               "     --curve NAME     EC curve: p256 or p384 (default p256)\n"
               "  -d --days N         validity in days (default %u)\n"
               "  -s --subject CN     the certificate's common name (also --cn; default\n"
               "                      \"modsignd module signing key on HOSTNAME\")\n"
               "  -j --json           machine-readable report\n"
               "  -h --help           show this help\n"
               "\n"
               "     --pin-file FILE  the token's user PIN (pkcs11:), from a root-only file\n"
               "\n"
               "--key pkcs11:token=T;object=LABEL[;id=%%XX]?module-path=M&pin-source=F makes the\n"
               "key inside the token (never extractable); --key handle:0x81...... makes it in\n"
               "the TPM and persists it there (tpm2-tools). Both need --cert.\n"
               "Next step: 'modsignctl enroll' makes the kernel trust the certificate.\n",
               DEFAULT_KEY, DEFAULT_CERT, KEYGEN_RSA_DEFAULT_BITS, KEYGEN_DEFAULT_DAYS);
}

/* path with its suffix 'from' (if it has it) replaced by 'to', else with 'to' appended. */
static char *swap_suffix(const char *path, const char *from, const char *to) {
        size_t n = strlen(path), f = strlen(from);
        char *s;

        if (n > f && streq(path + n - f, from))
                n -= f;
        if (asprintf(&s, "%.*s%s", (int) n, path, to) < 0)
                return NULL;
        return s;
}

static int default_common_name(char **ret) {
        char host[HOST_NAME_MAX + 1] = {};
        char *cn;

        if (gethostname(host, sizeof(host) - 1) < 0 || !*host)
                strcpy(host, "localhost");
        /* A long host name is cut so that the CN stays within its 64 characters. */
        if (asprintf(&cn, "modsignd module signing key on %.*s", CN_MAX - 31, host) < 0)
                return -ENOMEM;
        *ret = cn;
        return 0;
}

static bool is_key_reference(const char *s) {
        return strncmp(s, "pkcs11:", 7) == 0 || strncmp(s, "handle:", 7) == 0 || strncmp(s, "object:", 7) == 0;
}

struct output {
        const char *path;
        mode_t mode;
        const void *data;
        size_t size;
        int dir_fd;
        const char *base;
        bool created;
};

static int open_output_dir(struct output *o) {
        _cleanup_free_ char *dir = NULL;
        const char *slash = strrchr(o->path, '/');
        int r;

        r = open_parent_dir(o->path, &o->dir_fd, &o->base);
        if (r != -ENOENT)
                return r;
        /* The usual first run: /etc/modsignd does not exist yet. Make that one directory (not
         * a whole path: a missing /etc is a mistake worth an error). */
        if (!slash || slash == o->path)
                return r;
        dir = strndup(o->path, (size_t) (slash - o->path));
        if (!dir)
                return -ENOMEM;
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        return open_parent_dir(o->path, &o->dir_fd, &o->base);
}

static void json_add_str(json_object *o, const char *k, const char *v) {
        json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

static char *colon_fingerprint(const char hex[65]) {
        char *s = malloc(3 * 32);

        if (!s)
                return NULL;
        for (size_t i = 0; i < 32; i++) {
                s[3 * i] = (char) toupper((unsigned char) hex[2 * i]);
                s[3 * i + 1] = (char) toupper((unsigned char) hex[2 * i + 1]);
                s[3 * i + 2] = i == 31 ? 0 : ':';
        }
        return s;
}

static int report(const char *key_path, const char *cert_path, const char *der_path, const char *type_desc,
                  const char *cn, unsigned days, X509 *cert) {
        _cleanup_free_ char *key_id = NULL, *colons = NULL, *next = NULL;
        char fp[65], until[64] = "";
        struct tm tm;
        int r;

        r = cert_fingerprint_sha256(cert, fp);
        if (r < 0)
                return log_error_errno(r, "cannot compute the certificate's fingerprint: %m");
        r = cert_kernel_key_id(cert, &key_id);
        if (r < 0)
                return log_error_errno(r, "cannot read the certificate's key id: %m");
        /* enroll finds the default certificate through the configuration by itself. */
        if (streq(cert_path, DEFAULT_CERT) ? !(next = strdup("modsignctl enroll"))
                                           : asprintf(&next, "modsignctl enroll --cert %s", cert_path) < 0)
                return log_oom();
        if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1)
                strftime(until, sizeof(until), "%Y-%m-%d %H:%M:%S UTC", &tm);

        if (arg_global.json) {
                json_object *o = json_object_new_object();

                json_add_str(o, "key", key_path);
                json_add_str(o, "certificate", cert_path);
                json_add_str(o, "certificate_der", der_path);
                json_add_str(o, "key_type", type_desc);
                json_add_str(o, "subject", cn);
                json_object_object_add(o, "days", json_object_new_int((int) days));
                json_add_str(o, "not_after", until);
                json_add_str(o, "key_id", key_id);
                json_add_str(o, "fingerprint_sha256", fp);
                json_add_str(o, "next", next);
                printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                                         JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(o);
                return 0;
        }
        if (arg_global.quiet)
                return 0;

        colons = colon_fingerprint(fp);
        if (!colons)
                return log_oom();
        printf("Private key:         %s (%s, %s)\n"
               "Certificate:         %s (PEM)\n"
               "                     %s (DER, for mokutil --import)\n"
               "Subject:             CN=%s\n"
               "Valid until:         %s\n"
               "Key id (SKID):       %s\n"
               "SHA-256 fingerprint: %s\n"
               "\n"
               "Next step: make the kernel trust this certificate:\n"
               "    %s\n",
               key_path, type_desc, is_key_reference(key_path) ? "inside the device, not extractable" : "mode 0600",
               cert_path, der_path, cn, until, key_id, colons, next);
        return 0;
}

/* Runs a tool with its standard output discarded; 0 when it exits 0. */
static int run_tool(const char *const argv[]) {
        posix_spawn_file_actions_t fa;
        pid_t pid;
        int r, status;

        if (posix_spawn_file_actions_init(&fa) != 0)
                return -ENOMEM;
        (void) posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        r = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *) argv, environ); /* posix_spawn does not write them */
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return -r;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return negative_errno();
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/* A key made in the TPM and made persistent at 'handle' (0x81......), with tpm2-tools: the
 * tpm2-openssl provider makes keys (EVP_PKEY_keygen with provider=tpm2) but cannot make them
 * persistent, which a handle: reference needs. tpm2-tools finds the TPM through
 * TPM2TOOLS_TCTI (the provider, when it signs, through TPM2OPENSSL_TCTI). The key is a
 * restricted-to-signing child of the owner hierarchy's default primary, with
 * fixedtpm|fixedparent|sensitivedataorigin: it never leaves the TPM. */
static int keygen_tpm2_persistent(const char *handle, enum keygen_type type, unsigned bits, const char *curve) {
        char dir[] = "/tmp/modsignctl-keygen-XXXXXX";
        char primary[64], pub[64], priv[64], ctx[64], alg[16];
        const char *group = NULL;
        int r;

        if (strncasecmp(handle, "0x81", 4) != 0 || strlen(handle) != 10) {
                log_error("keygen: a persistent TPM key handle is 0x81000000 to 0x81ffffff, not %s", handle);
                return -EINVAL;
        }
        if (type == KEYGEN_RSA)
                snprintf(alg, sizeof(alg), "rsa%u", bits);
        else {
                if (!curve || keygen_curve_from_string(curve, &group) < 0)
                        return -EINVAL;
                snprintf(alg, sizeof(alg), "%s", streq(group, "P-384") ? "ecc384" : "ecc256");
        }
        {
                const char *const argv[] = { "tpm2_readpublic", "-c", handle, NULL };
                int fd = open("/dev/null", O_WRONLY | O_CLOEXEC), saved = dup(STDERR_FILENO);

                /* Quietly: "no such handle" is the answer we hope for. */
                if (fd >= 0 && saved >= 0)
                        (void) dup2(fd, STDERR_FILENO);
                r = run_tool(argv);
                if (saved >= 0) {
                        (void) dup2(saved, STDERR_FILENO);
                        close(saved);
                }
                safe_close(fd);
                if (r == -ENOENT) {
                        log_error("keygen: tpm2-tools are not installed (Debian package tpm2-tools); they make the key persistent");
                        return -EOPNOTSUPP;
                }
                if (r == 0) {
                        log_error("keygen: the TPM holds a persistent object at %s already; refusing to replace it", handle);
                        return -EEXIST;
                }
        }
        if (!mkdtemp(dir))
                return log_error_errno(-errno, "cannot make a temporary directory: %m");
        snprintf(primary, sizeof(primary), "%s/primary.ctx", dir);
        snprintf(pub, sizeof(pub), "%s/key.pub", dir);
        snprintf(priv, sizeof(priv), "%s/key.priv", dir);
        snprintf(ctx, sizeof(ctx), "%s/key.ctx", dir);

        const char *const steps[][16] = {
                { "tpm2_createprimary", "-Q", "-C", "o", "-g", "sha256", "-G", type == KEYGEN_RSA ? "rsa" : "ecc", "-c",
                  primary, NULL },
                { "tpm2_flushcontext", "-t", NULL },
                { "tpm2_create", "-Q", "-C", primary, "-G", alg, "-a",
                  "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign", "-u", pub, "-r", priv, NULL },
                { "tpm2_flushcontext", "-t", NULL },
                { "tpm2_load", "-Q", "-C", primary, "-u", pub, "-r", priv, "-c", ctx, NULL },
                { "tpm2_flushcontext", "-t", NULL },
                { "tpm2_evictcontrol", "-Q", "-C", "o", "-c", ctx, handle, NULL },
                { "tpm2_flushcontext", "-t", NULL },
        };
        log_notice("generating the key in the TPM (%s) and persisting it at %s", alg, handle);
        r = 0;
        for (size_t i = 0; i < ELEMENTSOF(steps) && r >= 0; i++) {
                r = run_tool(steps[i]);
                if (r < 0)
                        log_error("keygen: %s failed; is the TPM reachable (TPM2TOOLS_TCTI)? Can it make %s keys?",
                                  steps[i][0], alg);
        }
        (void) unlink(primary);
        (void) unlink(pub);
        (void) unlink(priv);
        (void) unlink(ctx);
        (void) rmdir(dir);
        return r;
}

/* Makes the key inside a token or the TPM, then its certificate (signed by that key) in the
 * files out[1] and out[2]; the key never leaves the device. */
static int keygen_in_device(const char *ref, const char *pin_file, enum keygen_type type, unsigned bits,
                            const char *curve, EVP_PKEY **ret_key) {
        _cleanup_(secret_freep) char *pin = NULL;
        _cleanup_free_ char *msg = NULL;
        int r;

        if (pin_file) {
                r = key_read_secret(pin_file, &pin, &msg);
                if (r < 0)
                        return log_error_errno(r, "%s: %s", pin_file, msg ?: strerror(-r));
        }
        if (strncmp(ref, "pkcs11:", 7) == 0) {
                _cleanup_(pkcs11_uri_done) struct pkcs11_uri u = {};

                if (!pin && pkcs11_uri_parse(ref, &u, NULL) >= 0 && u.pin_source) {
                        const char *src = strncmp(u.pin_source, "file:", 5) == 0 ? u.pin_source + 5 : u.pin_source;

                        r = key_read_secret(src, &pin, &msg);
                        if (r < 0)
                                return log_error_errno(r, "pin-source: %s", msg ?: strerror(-r));
                }
                log_notice("generating the key on the token (%s %u)", keygen_type_to_string(type),
                           type == KEYGEN_RSA ? bits : 0);
                r = keygen_pkcs11_generate(ref, pin, type, bits, curve, &msg);
                if (r < 0)
                        return log_error_errno(r, "%s: %s", ref, msg ?: strerror(-r));
        } else if (strncmp(ref, "handle:", 7) == 0) {
                r = keygen_tpm2_persistent(ref + 7, type, bits, curve);
                if (r < 0)
                        return r;
        } else {
                log_error("keygen: %s: making an object: key blob is not supported; use handle:0x81...... or pkcs11:", ref);
                return -EOPNOTSUPP;
        }
        return load_signing_key(ref, pin, true, ret_key);
}

int cmd_keygen(int argc, char *argv[]) {
        enum { ARG_DER = 0x100, ARG_CURVE, ARG_PIN_FILE };
        static const struct option options[] = {
                { "key", required_argument, NULL, 'k' },
                { "cert", required_argument, NULL, 'c' },
                { "der", required_argument, NULL, ARG_DER },
                { "type", required_argument, NULL, 't' },
                { "bits", required_argument, NULL, 'b' },
                { "curve", required_argument, NULL, ARG_CURVE },
                { "days", required_argument, NULL, 'd' },
                { "subject", required_argument, NULL, 's' },
                { "cn", required_argument, NULL, 's' },
                { "json", no_argument, NULL, 'j' },
                { "pin-file", required_argument, NULL, ARG_PIN_FILE },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        const char *pin_file = NULL;
        bool in_device = false;
        _cleanup_free_ char *cert_buf = NULL, *der_buf = NULL, *cn_buf = NULL, *type_desc = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        const char *key_path = NULL, *cert_path = NULL, *der_path = NULL, *cn = NULL, *curve_arg = NULL;
        const char *curve = KEYGEN_EC_DEFAULT_CURVE;
        enum keygen_type type = KEYGEN_RSA;
        unsigned bits = 0, days = KEYGEN_DEFAULT_DAYS;
        char *key_pem = NULL, *cert_pem = NULL;
        unsigned char *cert_der = NULL;
        size_t key_pem_len = 0, cert_pem_len = 0, cert_der_len = 0;
        bool written = false;
        int c, r, code = EXIT_ERROR;

        while ((c = getopt_long(argc, argv, "k:c:t:b:d:s:jh", options, NULL)) >= 0)
                switch (c) {
                case 'k':
                        key_path = optarg;
                        break;
                case 'c':
                        cert_path = optarg;
                        break;
                case ARG_DER:
                        der_path = optarg;
                        break;
                case 't':
                        if (keygen_type_from_string(optarg, &type) < 0) {
                                log_error("keygen: --type must be rsa or ec, not '%s'", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 'b': {
                        char *end;
                        unsigned long v;

                        errno = 0;
                        v = strtoul(optarg, &end, 10);
                        if (errno || *end || !keygen_rsa_bits_valid((unsigned) v) || v > UINT_MAX) {
                                log_error("keygen: --bits must be 2048, 3072 or 4096, not '%s'", optarg);
                                return EXIT_USAGE;
                        }
                        bits = (unsigned) v;
                        break;
                }
                case ARG_PIN_FILE:
                        pin_file = optarg;
                        break;
                case ARG_CURVE:
                        curve_arg = optarg;
                        if (keygen_curve_from_string(optarg, &curve) < 0) {
                                log_error("keygen: --curve must be p256 or p384, not '%s'", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 'd': {
                        char *end;
                        unsigned long v;

                        errno = 0;
                        v = strtoul(optarg, &end, 10);
                        if (errno || *end || optarg[0] == '-' || v == 0 || v > KEYGEN_MAX_DAYS) {
                                log_error("keygen: --days must be between 1 and %u, not '%s'", KEYGEN_MAX_DAYS, optarg);
                                return EXIT_USAGE;
                        }
                        days = (unsigned) v;
                        break;
                }
                case 's':
                        cn = optarg;
                        break;
                case 'j':
                        arg_global.json = true;
                        break;
                case 'h':
                        help();
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }

        if (optind < argc) {
                log_error("keygen: unexpected argument '%s'", argv[optind]);
                return EXIT_USAGE;
        }
        if (type == KEYGEN_EC && bits) {
                log_error("keygen: --bits is for RSA keys; an EC key takes --curve");
                return EXIT_USAGE;
        }
        if (type == KEYGEN_RSA && curve_arg) {
                log_error("keygen: --curve is for EC keys (--type ec)");
                return EXIT_USAGE;
        }
        /* TPMs make RSA 2048 (some 3072), not the 4096 of a key file. */
        if (!bits && key_path && strncmp(key_path, "handle:", 7) == 0)
                bits = 2048;
        if (!bits)
                bits = KEYGEN_RSA_DEFAULT_BITS;
        if (key_path && is_key_reference(key_path)) {
                if (!cert_path) {
                        log_error("keygen: a key inside a token or the TPM needs --cert FILE for its certificate");
                        return EXIT_USAGE;
                }
                in_device = true;
        }
        if (cn && (!*cn || strlen(cn) > CN_MAX)) {
                log_error("keygen: --subject must be 1 to %d characters", CN_MAX);
                return EXIT_USAGE;
        }

        if (!key_path)
                key_path = DEFAULT_KEY;
        if (!cert_path) {
                if (streq(key_path, DEFAULT_KEY))
                        cert_path = DEFAULT_CERT;
                else {
                        cert_buf = swap_suffix(key_path, ".key", ".crt");
                        if (!cert_buf)
                                return log_oom(), EXIT_ERROR;
                        cert_path = cert_buf;
                }
        }
        if (!der_path) {
                der_buf = swap_suffix(cert_path, strlen(cert_path) > 4 && streq(cert_path + strlen(cert_path) - 4, ".pem") ? ".pem" : ".crt", ".der");
                if (!der_buf)
                        return log_oom(), EXIT_ERROR;
                der_path = der_buf;
        }
        if (streq(key_path, cert_path) || streq(key_path, der_path) || streq(cert_path, der_path)) {
                log_error("keygen: the key, the certificate and the DER certificate need three different paths");
                return EXIT_USAGE;
        }
        if (!cn) {
                if (default_common_name(&cn_buf) < 0)
                        return log_oom(), EXIT_ERROR;
                cn = cn_buf;
        }

        struct output out[3] = {
                { .path = key_path, .mode = 0600, .dir_fd = -EBADF },
                { .path = cert_path, .mode = 0644, .dir_fd = -EBADF },
                { .path = der_path, .mode = 0644, .dir_fd = -EBADF },
        };

        /* Refuse before the (slow) key generation; newfile_create_at() checks again, race-free.
         * A key made in a device has no file: out[0] is skipped. */
        for (size_t i = in_device; i < ELEMENTSOF(out); i++) {
                struct stat st;

                if (lstat(out[i].path, &st) >= 0) {
                        log_error("%s already exists; refusing to overwrite it (a key in use would be lost). "
                                  "Remove it first, or choose other paths with --key/--cert.",
                                  out[i].path);
                        return EXIT_ERROR;
                }
        }
        for (size_t i = in_device; i < ELEMENTSOF(out); i++) {
                r = open_output_dir(&out[i]);
                if (r < 0) {
                        log_error_errno(r, "%s: cannot open its directory: %m", out[i].path);
                        goto finish;
                }
        }

        if (in_device) {
                r = keygen_in_device(key_path, pin_file, type, bits, curve, &key);
                if (r < 0)
                        goto finish;
        } else {
                r = keygen_generate_key(type, bits, curve, &key);
                if (r < 0) {
                        log_error_errno(r, "cannot generate the key: %m");
                        goto finish;
                }
        }
        r = keygen_self_signed_cert(key, cn, days, &cert);
        if (r < 0) {
                log_error_errno(r, "cannot make the certificate: %m");
                goto finish;
        }
        r = in_device ? 0 : keygen_key_to_pem(key, &key_pem, &key_pem_len);
        if (r >= 0)
                r = keygen_cert_to_pem(cert, &cert_pem, &cert_pem_len);
        if (r >= 0)
                r = keygen_cert_to_der(cert, &cert_der, &cert_der_len);
        if (r < 0) {
                log_error_errno(r, "cannot encode the key or certificate: %m");
                goto finish;
        }
        out[0].data = key_pem, out[0].size = key_pem_len;
        out[1].data = cert_pem, out[1].size = cert_pem_len;
        out[2].data = cert_der, out[2].size = cert_der_len;

        /* The key first: a certificate without its key is useless, the other way round the
         * key is still safe. On any failure, what this run created is removed again. */
        for (size_t i = in_device; i < ELEMENTSOF(out); i++) {
                r = newfile_create_at(out[i].dir_fd, out[i].base, out[i].mode, out[i].data, out[i].size);
                if (r == -EEXIST) {
                        log_error("%s already exists; refusing to overwrite it", out[i].path);
                        goto finish;
                }
                if (r < 0) {
                        log_error_errno(r, "%s: cannot write: %m", out[i].path);
                        goto finish;
                }
                out[i].created = true;
        }

        /* Everything is in place: from here on nothing is removed, whatever the report does. */
        written = true;
        if ((type == KEYGEN_RSA ? asprintf(&type_desc, "rsa %u", bits) : asprintf(&type_desc, "ec %s", curve)) < 0)
                type_desc = NULL;
        code = report(key_path, cert_path, der_path, type_desc ?: keygen_type_to_string(type), cn, days, cert) < 0
                       ? EXIT_ERROR
                       : EXIT_OK;

finish:
        for (size_t i = 0; i < ELEMENTSOF(out); i++) {
                if (!written && out[i].created)
                        (void) unlinkat(out[i].dir_fd, out[i].base, 0);
                safe_close(out[i].dir_fd);
        }
        OPENSSL_clear_free(key_pem, key_pem_len);
        OPENSSL_free(cert_pem);
        OPENSSL_free(cert_der);
        return code;
}
