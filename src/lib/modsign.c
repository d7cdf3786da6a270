/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compress.h"
#include "io-util.h"
#include "macro.h"
#include "modsign.h"
#include "openssl-util.h"
#include "replace.h"
#include "verify.h"

#define FAIL(error, why)                        \
        ({                                      \
                if (ret_why)                    \
                        *ret_why = (why);       \
                (error);                        \
        })

#define XZ_CHECK_CRC32 1

/* Start writeback every this many bytes, so that the fsync at commit finds little left to do. */
#define WRITEBACK_STEP ((off_t) 8 << 20)

/* Below this a second thread costs more than it saves. */
#define PARALLEL_MIN ((uint64_t) 1 << 20)

/* Where the bytes of a new module go: the digest, the output file, or both. */
struct pipe_ctx {
        struct sign_ctx *sign;
        struct compressor *out;
        int out_fd;
        off_t written_back; /* writeback started up to here */
};

/* Asks the kernel to start writing out what we wrote so far, without waiting: the disk works
 * while we hash the rest, and the durable commit costs little more than the copy itself. */
static void start_writeback(struct pipe_ctx *p) {
        off_t pos = lseek(p->out_fd, 0, SEEK_CUR);

        if (pos < 0 || pos - p->written_back < WRITEBACK_STEP)
                return;
        (void) sync_file_range(p->out_fd, p->written_back, pos - p->written_back, SYNC_FILE_RANGE_WRITE);
        p->written_back = pos;
}

static int pipe_chunk(const void *buf, size_t n, void *userdata) {
        struct pipe_ctx *p = userdata;
        int r;

        if (p->sign) {
                r = sign_update(p->sign, buf, n);
                if (r < 0)
                        return r;
        }
        if (p->out) {
                r = compressor_write(p->out, buf, n);
                if (r < 0)
                        return r;
                start_writeback(p);
        }
        return 0;
}

static int verify_chunk(const void *buf, size_t n, void *userdata) {
        return verify_update(userdata, buf, n);
}

int modsign_verify(const struct module_file *m, STACK_OF(X509) *trusted, X509 **ret_signer) {
        _cleanup_free_ uint8_t *der = NULL;
        struct verify_ctx *v = NULL;
        size_t len;
        int r;

        r = module_file_read_signature(m, &der, &len);
        if (r < 0)
                return r;
        r = verify_begin(der, len, &v);
        if (r < 0)
                return r;
        /* The kernel hashes everything before the outermost signature. */
        r = module_file_for_each_chunk(m, m->meta.last_sig.sig_offset, verify_chunk, v);
        if (r < 0) {
                verify_ctx_free(v);
                return r;
        }
        return verify_finish(v, trusted, ret_signer);
}

enum existing_signature {
        EXISTING_FOREIGN,   /* the outermost signature names another signer (or is unreadable) */
        EXISTING_OURS_STALE, /* names our certificate, but is invalid, stacked or of another hash */
        EXISTING_OURS_CURRENT, /* ours, valid, alone, with the hash asked for: nothing to do */
};

/* Who made the module's outermost signature, and is it still good? */
static int existing_signature(const struct module_file *m, const struct signer *s, const char *hash) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *ours = sk_X509_new_null();
        _cleanup_free_ uint8_t *der = NULL;
        struct sig_details d = {};
        size_t len;
        bool same_hash;
        int r;

        if (!ours)
                return -ENOMEM;
        r = module_file_read_signature(m, &der, &len);
        if (r < 0)
                return r;
        r = sig_describe(der, len, &d);
        if (r < 0)
                return EXISTING_FOREIGN;
        same_hash = streq_ptr(d.hash, hash);
        sig_details_done(&d);

        if (!X509_up_ref(signer_get_cert(s)))
                return -ENOMEM;
        if (!sk_X509_push(ours, signer_get_cert(s))) {
                X509_free(signer_get_cert(s));
                return -ENOMEM;
        }
        r = modsign_verify(m, ours, NULL);
        if (r == -ENOKEY || r == -EBADMSG)
                return EXISTING_FOREIGN;
        if (r == -EKEYREJECTED)
                return EXISTING_OURS_STALE; /* ours, but the module changed since: sign again */
        if (r < 0)
                return r;
        /* Stacked signatures are always rewritten as one. */
        return same_hash && m->meta.n_signatures == 1 ? EXISTING_OURS_CURRENT : EXISTING_OURS_STALE;
}

/* An uncompressed module is hashed on a second thread while this one copies it with
 * copy_file_range() (no copy through user space): the wall time is that of the slower of the
 * two, not of their sum, and the copy's writeback starts while the hash is still running. */
struct hash_job {
        const struct module_file *m;
        uint64_t len;
        struct sign_ctx *sign;
        int r;
};

static void *hash_thread(void *userdata) {
        struct hash_job *j = userdata;
        struct pipe_ctx p = { .sign = j->sign, .out_fd = -EBADF };

        j->r = module_file_for_each_chunk(j->m, j->len, pipe_chunk, &p);
        return NULL;
}

/* Copies the module's first len bytes to out_fd, in the kernel where it can. */
static int copy_body(const struct module_file *m, int out_fd, uint64_t len) {
        return copy_fd_prefix(m->data.fd, out_fd, len);
}

/* True when the module was hashed already (module_file_sha256()) with the digest the
 * signature takes: its state goes into the signature, and the module is not read again. */
static bool sign_from_digest_cache(const struct module_file *m, struct sign_ctx *sign) {
        return sign && m->compression == COMPRESSION_NONE && m->body_sha256 && sign_resume(sign, m->body_sha256) >= 0;
}

static int hash_and_copy(const struct module_file *m, int out_fd, struct sign_ctx *sign) {
        struct hash_job job = { .m = m, .len = m->meta.body_len, .sign = sign };
        pthread_t t;
        int r;

        r = -pthread_create(&t, NULL, hash_thread, &job);
        if (r < 0)
                return r;
        r = copy_body(m, out_fd, job.len);
        /* The copy is done long before the hash: make it durable now, while the other thread
         * is still hashing, so that the commit's fsync has only the signature left to write. */
        if (r >= 0)
                (void) fdatasync(out_fd);
        (void) pthread_join(t, NULL);
        return r < 0 ? r : job.r;
}

/* Writes body + blob + trailer (compressed like the original) to 'out'. Signs on the way when
 * 'sign' is set, in which case the blob comes from it. */
static int write_module(const struct module_file *m, int out_fd, unsigned threads, struct sign_ctx *sign,
                        const uint8_t *blob, size_t blob_len, uint8_t **ret_blob, size_t *ret_blob_len) {
        _cleanup_free_ uint8_t *made = NULL;
        struct compressor *z = NULL;
        struct pipe_ctx p;
        int r;

        r = compressor_new(m->compression, out_fd, threads, &z);
        if (r < 0) {
                sign_ctx_free(sign);
                return r;
        }
        p = (struct pipe_ctx) { .sign = sign, .out = z, .out_fd = out_fd };
        if (m->compression == COMPRESSION_NONE && m->data.fd >= 0 && sign_from_digest_cache(m, sign))
                r = copy_body(m, out_fd, m->meta.body_len);
        else if (sign && m->compression == COMPRESSION_NONE && m->data.fd >= 0 && m->meta.body_len >= PARALLEL_MIN)
                r = hash_and_copy(m, out_fd, sign);
        else
                r = module_file_for_each_chunk(m, m->meta.body_len, pipe_chunk, &p);
        if (r < 0) {
                sign_ctx_free(sign);
                goto finish;
        }
        if (sign) {
                r = sign_finish(sign, &made, &blob_len);
                if (r < 0)
                        goto finish;
                blob = made;
        }
        if (blob) {
                uint8_t trailer[MODULE_SIG_TRAILER_LEN];

                if (blob_len > UINT32_MAX) {
                        r = -E2BIG;
                        goto finish;
                }
                module_sig_trailer_build((uint32_t) blob_len, trailer);
                r = compressor_write(z, blob, blob_len);
                if (r >= 0)
                        r = compressor_write(z, trailer, sizeof(trailer));
                if (r < 0)
                        goto finish;
        }
        r = compressor_finish(z);
        if (r >= 0 && ret_blob) {
                *ret_blob = TAKE_PTR(made);
                *ret_blob_len = blob_len;
        }
finish:
        compressor_free(z);
        return r;
}

struct modsign_copy_ahead {
        const struct module_file *m;
        struct replace out;
        pthread_t thread;
        int r;
};

static void *copy_ahead_thread(void *userdata) {
        struct modsign_copy_ahead *c = userdata;

        c->r = copy_body(c->m, c->out.fd, c->m->meta.body_len);
        /* Durable now, while the caller still hashes: the commit's fsync has little left. */
        if (c->r >= 0 && fdatasync(c->out.fd) < 0)
                c->r = negative_errno();
        return NULL;
}

int modsign_copy_ahead(struct module_file *m, struct modsign_copy_ahead **ret) {
        struct modsign_copy_ahead *c;
        int r;

        *ret = NULL;
        if (m->compression != COMPRESSION_NONE || m->data.fd < 0 || m->meta.n_signatures > 0 ||
            m->meta.body_len < PARALLEL_MIN)
                return 0;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->m = m;
        r = replace_begin(m->dir_fd, m->name, &m->st, &c->out);
        if (r < 0) {
                free(c);
                return r;
        }
        r = -pthread_create(&c->thread, NULL, copy_ahead_thread, c);
        if (r < 0) {
                replace_abort(&c->out);
                free(c);
                return r;
        }
        *ret = c;
        return 0;
}

/* Waits for the copy; returns its outcome. */
static int copy_ahead_join(struct modsign_copy_ahead *c) {
        if (c->m) {
                (void) pthread_join(c->thread, NULL);
                c->m = NULL;
        }
        return c->r;
}

struct modsign_copy_ahead *modsign_copy_ahead_free(struct modsign_copy_ahead *c) {
        if (!c)
                return NULL;
        (void) copy_ahead_join(c);
        replace_abort(&c->out);
        free(c);
        return NULL;
}

/* Appends blob and trailer to a file holding the body already. */
static int append_signature(int out_fd, const uint8_t *blob, size_t blob_len) {
        uint8_t trailer[MODULE_SIG_TRAILER_LEN];
        int r;

        if (blob_len > UINT32_MAX)
                return -E2BIG;
        module_sig_trailer_build((uint32_t) blob_len, trailer);
        r = loop_write(out_fd, blob, blob_len);
        if (r >= 0)
                r = loop_write(out_fd, trailer, sizeof(trailer));
        return r;
}

/* The module's new file from the copy made ahead (modsign_copy_ahead()), with the signature
 * appended. The signature is made before waiting for the copy: the copy thread's fdatasync of
 * a large body, or a token's slow signing, then runs meanwhile. Returns 1 when *ret holds the
 * signed file (and *ret_blob the signature), 0 when there is no usable copy (nothing done:
 * *sign untouched), < 0 on failure (*sign consumed). */
static int take_copy_ahead(struct module_file *m, const struct modsign_request *req, struct sign_ctx **sign,
                           struct replace *ret, uint8_t **ret_blob, size_t *ret_blob_len) {
        struct modsign_copy_ahead *c = req->copy_ahead;
        _cleanup_free_ uint8_t *blob = NULL;
        size_t blob_len;
        int r;

        if (!c || req->dest_name || !*sign || c->out.fd < 0)
                return 0;
        /* The digest: from the gate's pass, or read now, once the copy is done. */
        if (!sign_from_digest_cache(m, *sign)) {
                struct pipe_ctx p = { .sign = *sign, .out_fd = -EBADF };

                if (copy_ahead_join(c) < 0)
                        return 0;
                r = module_file_for_each_chunk(m, m->meta.body_len, pipe_chunk, &p);
                if (r < 0) {
                        *sign = sign_ctx_free(*sign);
                        return r;
                }
        }
        r = sign_finish(TAKE_PTR(*sign), &blob, &blob_len);
        if (r < 0)
                return r;
        r = copy_ahead_join(c);
        if (r < 0)
                return r;
        if (lseek(c->out.fd, (off_t) m->meta.body_len, SEEK_SET) < 0)
                return negative_errno();
        r = append_signature(c->out.fd, blob, blob_len);
        if (r < 0)
                return r;
        *ret = c->out;
        c->out = (struct replace) { .fd = -EBADF };
        *ret_blob = TAKE_PTR(blob);
        *ret_blob_len = blob_len;
        return 1;
}

static int begin_output(struct module_file *m, const struct modsign_request *req, struct replace *ret) {
        if (req && req->dest_name)
                return replace_begin(req->dest_dir_fd, req->dest_name, NULL, ret);
        return replace_begin(m->dir_fd, m->name, &m->st, ret);
}

static int copy_blob(const uint8_t *blob, size_t len, uint8_t **ret, size_t *ret_len) {
        uint8_t *c = malloc(len);

        if (!c)
                return -ENOMEM;
        memcpy(c, blob, len);
        *ret = c;
        *ret_len = len;
        return 0;
}

int modsign_sign(struct module_file *m, const struct modsign_request *req, enum modsign_outcome *ret_outcome,
                 const char **ret_why) {
        _cleanup_free_ uint8_t *blob = NULL;
        struct sign_ctx *sign = NULL;
        struct replace out;
        size_t blob_len = 0;
        int r;

        if (!req->signer && !req->raw_sig)
                return -EINVAL;
        if (!req->write_module && !req->signer)
                return -EINVAL; /* a raw signature needs no computing */

        if (m->meta.n_signatures > 0 && req->signer) {
                r = existing_signature(m, req->signer, req->hash);
                if (r < 0)
                        return r;
                /* Nothing to do, unless the container itself is what the kernel would refuse:
                 * an xz stream with a CRC64 check (as dkms' plain "xz -f" makes). */
                if (r == EXISTING_OURS_CURRENT && !req->always_write && !req->dest_name && req->write_module &&
                    (m->compression != COMPRESSION_XZ || m->xz_check == XZ_CHECK_CRC32)) {
                        *ret_outcome = MODSIGN_UNCHANGED;
                        return 0;
                }
                if (r == EXISTING_FOREIGN && req->existing == MODSIGN_EXISTING_REFUSE)
                        return FAIL(-EEXIST, "already signed by another key (use --replace to re-sign)");
        }

        if (req->signer) {
                r = sign_begin(req->signer, req->hash, &sign);
                if (r < 0)
                        return FAIL(r, r == -EOPNOTSUPP ? "hash algorithm not available in OpenSSL" : "cannot start signature");
        }

        if (!req->write_module) {
                struct pipe_ctx p = { .sign = sign };

                r = sign_from_digest_cache(m, sign) ? 0 : module_file_for_each_chunk(m, m->meta.body_len, pipe_chunk, &p);
                if (r < 0) {
                        sign_ctx_free(sign);
                        return r;
                }
                r = sign_finish(sign, &blob, &blob_len);
                if (r < 0)
                        return FAIL(r, r == -ENODEV ? KEY_DEVICE_GONE_WHY : "signing failed");
                if (req->ret_sig) {
                        *req->ret_sig = TAKE_PTR(blob);
                        *req->ret_sig_len = blob_len;
                }
                *ret_outcome = MODSIGN_DETACHED;
                return 0;
        }

        r = take_copy_ahead(m, req, &sign, &out, &blob, &blob_len);
        if (r > 0)
                goto written;
        if (r < 0)
                return FAIL(r, r == -ENODEV ? KEY_DEVICE_GONE_WHY : "writing the signed module failed");
        r = begin_output(m, req, &out);
        if (r < 0) {
                sign_ctx_free(sign);
                return FAIL(r, "cannot create the output file");
        }
        r = write_module(m, out.fd, req->threads, sign, req->raw_sig, req->raw_sig_len, &blob, &blob_len);
        if (r < 0) {
                replace_abort(&out);
                return FAIL(r, r == -ENODEV ? KEY_DEVICE_GONE_WHY : "writing the signed module failed");
        }
written:
        if (req->on_written) {
                struct stat st;

                if (fstat(out.fd, &st) < 0) {
                        r = negative_errno();
                        replace_abort(&out);
                        return FAIL(r, "cannot stat the signed module");
                }
                req->on_written(&st, req->userdata);
        }
        r = req->batch ? replace_batch_add(req->batch, &out) : replace_commit(&out);
        if (r < 0) {
                replace_abort(&out);
                return FAIL(r, r == -ESTALE ? "the module changed while it was being signed" : "replacing the module failed");
        }

        if (req->ret_sig) {
                r = req->raw_sig ? copy_blob(req->raw_sig, req->raw_sig_len, req->ret_sig, req->ret_sig_len)
                                 : (*req->ret_sig = TAKE_PTR(blob), *req->ret_sig_len = blob_len, 0);
                if (r < 0)
                        return r;
        }
        *ret_outcome = MODSIGN_SIGNED;
        return 0;
}

int modsign_strip(struct module_file *m, unsigned threads) {
        struct replace out;
        int r;

        if (m->meta.n_signatures == 0)
                return 1;
        r = begin_output(m, NULL, &out);
        if (r < 0)
                return r;
        r = write_module(m, out.fd, threads, NULL, NULL, 0, NULL, NULL);
        if (r < 0) {
                replace_abort(&out);
                return r;
        }
        return replace_commit(&out);
}
