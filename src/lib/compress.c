/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "compress.h"
#include "io-util.h"
#include "macro.h"

#define IO_CHUNK (256U * 1024U)

static const uint8_t xz_magic[] = { 0xfd, '7', 'z', 'X', 'Z', 0x00 };
static const uint8_t zstd_magic[] = { 0x28, 0xb5, 0x2f, 0xfd };
static const uint8_t gzip_magic[] = { 0x1f, 0x8b };

enum compression compression_detect(const void *head, size_t len) {
        if (len >= sizeof(xz_magic) && memcmp(head, xz_magic, sizeof(xz_magic)) == 0)
                return COMPRESSION_XZ;
        if (len >= sizeof(zstd_magic) && memcmp(head, zstd_magic, sizeof(zstd_magic)) == 0)
                return COMPRESSION_ZSTD;
        if (len >= sizeof(gzip_magic) && memcmp(head, gzip_magic, sizeof(gzip_magic)) == 0)
                return COMPRESSION_GZIP;
        return COMPRESSION_NONE;
}

const char *compression_to_string(enum compression c) {
        switch (c) {
        case COMPRESSION_XZ:
                return "xz";
        case COMPRESSION_ZSTD:
                return "zstd";
        case COMPRESSION_GZIP:
                return "gzip";
        case COMPRESSION_NONE:
        default:
                return "none";
        }
}

const char *compression_suffix(enum compression c) {
        switch (c) {
        case COMPRESSION_XZ:
                return ".xz";
        case COMPRESSION_ZSTD:
                return ".zst";
        case COMPRESSION_GZIP:
                return ".gz";
        case COMPRESSION_NONE:
        default:
                return "";
        }
}

int xz_stream_check(const void *head, size_t len) {
        const uint8_t *p = head;

        /* Stream header: 6 bytes magic, 2 bytes stream flags (the second holds the check ID). */
        if (len < 8 || memcmp(p, xz_magic, sizeof(xz_magic)) != 0)
                return -EINVAL;
        if (p[6] != 0 || (p[7] & 0xf0))
                return -EBADMSG;
        return p[7] & 0x0f;
}

/* A growing output buffer with a hard ceiling. */
struct outbuf {
        uint8_t *data;
        size_t len, alloc, limit;
};

/* Makes room for more output. The buffer may grow to limit + 1 bytes: one byte past the limit
 * is how an oversized stream is told apart from one that ends exactly at it. When it can grow
 * no more, whatever room is left is still offered; only a full buffer fails. */
static int outbuf_reserve(struct outbuf *o, size_t want_free) {
        size_t cap = o->limit == SIZE_MAX ? SIZE_MAX : o->limit + 1, want;
        uint8_t *p;

        if (o->alloc - o->len >= want_free)
                return 0;
        if (o->alloc >= cap)
                return o->alloc > o->len ? 0 : -EFBIG;
        if (ADD_OVERFLOW(o->len, want_free, &want))
                want = SIZE_MAX;
        want = MIN(MAX(want, o->alloc < SIZE_MAX / 2 ? o->alloc * 2 : SIZE_MAX), cap);
        p = realloc(o->data, want);
        if (!p)
                return -ENOMEM;
        o->data = p;
        o->alloc = want;
        return 0;
}

static int decompress_xz(int fd, uint8_t *in, struct outbuf *o) {
        lzma_stream s = LZMA_STREAM_INIT;
        lzma_action action = LZMA_RUN;
        int r = 0;

        if (lzma_stream_decoder(&s, UINT64_MAX, 0) != LZMA_OK)
                return -ENOMEM;

        for (;;) {
                lzma_ret lr;

                if (s.avail_in == 0 && action == LZMA_RUN) {
                        ssize_t n = loop_read(fd, in, IO_CHUNK);
                        if (n < 0) {
                                r = (int) n;
                                break;
                        }
                        s.next_in = in;
                        s.avail_in = (size_t) n;
                        if (n == 0)
                                action = LZMA_FINISH;
                }
                r = outbuf_reserve(o, IO_CHUNK);
                if (r < 0)
                        break;
                s.next_out = o->data + o->len;
                s.avail_out = o->alloc - o->len;
                lr = lzma_code(&s, action);
                o->len = o->alloc - s.avail_out;
                if (o->len > o->limit) {
                        r = -EFBIG;
                        break;
                }
                if (lr == LZMA_STREAM_END) {
                        r = 0;
                        break;
                }
                if (lr == LZMA_MEM_ERROR) {
                        r = -ENOMEM;
                        break;
                }
                if (lr != LZMA_OK) {
                        r = -EBADMSG;
                        break;
                }
        }
        lzma_end(&s);
        return r;
}

static int decompress_zstd(int fd, uint8_t *in, struct outbuf *o) {
        ZSTD_DStream *ds = ZSTD_createDStream();
        size_t last = 1;
        int r = 0;

        if (!ds)
                return -ENOMEM;

        for (;;) {
                ssize_t n = loop_read(fd, in, IO_CHUNK);
                ZSTD_inBuffer ib;

                if (n < 0) {
                        r = (int) n;
                        break;
                }
                if (n == 0) {
                        /* A frame that did not end is a truncated file. */
                        r = last == 0 ? 0 : -EBADMSG;
                        break;
                }
                ib = (ZSTD_inBuffer) { in, (size_t) n, 0 };
                while (ib.pos < ib.size && r == 0) {
                        ZSTD_outBuffer ob;

                        r = outbuf_reserve(o, IO_CHUNK);
                        if (r < 0)
                                break;
                        ob = (ZSTD_outBuffer) { o->data, o->alloc, o->len };
                        last = ZSTD_decompressStream(ds, &ob, &ib);
                        o->len = ob.pos;
                        if (ZSTD_isError(last))
                                r = -EBADMSG;
                        else if (o->len > o->limit)
                                r = -EFBIG;
                }
                if (r < 0)
                        break;
        }
        ZSTD_freeDStream(ds);
        return r;
}

static int decompress_gzip(int fd, uint8_t *in, struct outbuf *o) {
        z_stream z = {};
        int r = 0, zr = Z_OK;

        if (inflateInit2(&z, 15 + 16) != Z_OK)
                return -ENOMEM;

        while (zr != Z_STREAM_END) {
                ssize_t n = loop_read(fd, in, IO_CHUNK);
                if (n < 0) {
                        r = (int) n;
                        break;
                }
                if (n == 0) {
                        r = -EBADMSG; /* ended before the stream did */
                        break;
                }
                z.next_in = in;
                z.avail_in = (uInt) n;
                while (z.avail_in > 0 && zr != Z_STREAM_END) {
                        r = outbuf_reserve(o, IO_CHUNK);
                        if (r < 0)
                                break;
                        z.next_out = o->data + o->len;
                        z.avail_out = (uInt) MIN(o->alloc - o->len, (size_t) UINT32_MAX);
                        zr = inflate(&z, Z_NO_FLUSH);
                        o->len = (size_t) (z.next_out - o->data);
                        if (zr == Z_MEM_ERROR)
                                r = -ENOMEM;
                        else if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
                                r = -EBADMSG;
                        else if (o->len > o->limit)
                                r = -EFBIG;
                        if (r < 0)
                                break;
                }
                if (r < 0)
                        break;
        }
        inflateEnd(&z);
        return r;
}

int decompress_fd(int fd, enum compression c, size_t limit, uint8_t **ret, size_t *ret_len) {
        struct outbuf o = { .limit = limit };
        uint8_t *in;
        int r;

        in = malloc(IO_CHUNK);
        if (!in)
                return -ENOMEM;

        switch (c) {
        case COMPRESSION_XZ:
                r = decompress_xz(fd, in, &o);
                break;
        case COMPRESSION_ZSTD:
                r = decompress_zstd(fd, in, &o);
                break;
        case COMPRESSION_GZIP:
                r = decompress_gzip(fd, in, &o);
                break;
        case COMPRESSION_NONE:
        default:
                r = -EINVAL;
                break;
        }
        free(in);
        if (r < 0) {
                free(o.data);
                return r;
        }
        *ret = o.data;
        *ret_len = o.len;
        return 0;
}

struct compressor {
        enum compression type;
        int fd;
        uint8_t *out;
        lzma_stream xz;
        ZSTD_CCtx *zstd;
        z_stream gz;
        bool gz_initialized;
};

static unsigned resolve_threads(unsigned threads) {
        if (threads == 0) {
                long n = sysconf(_SC_NPROCESSORS_ONLN);
                threads = n > 0 ? (unsigned) n : 1;
        }
        return threads;
}

static int xz_encoder_init(lzma_stream *s, unsigned threads) {
        lzma_options_lzma opt;
        lzma_filter filters[2];
        lzma_ret lr;

        /* The kernel's Makefile.modinst: xz --check=crc32 --lzma2=dict=1MiB (preset 6). */
        if (lzma_lzma_preset(&opt, 6))
                return -EINVAL;
        opt.dict_size = 1U << 20;
        filters[0] = (lzma_filter) { .id = LZMA_FILTER_LZMA2, .options = &opt };
        filters[1] = (lzma_filter) { .id = LZMA_VLI_UNKNOWN };

        if (threads > 1) {
                /* Independent blocks (3 x dict = 3 MiB each) let every core work; xz_dec in
                 * the kernel reads multi-block streams. */
                lzma_mt mt = {
                        .threads = threads,
                        .filters = filters,
                        .check = LZMA_CHECK_CRC32,
                };
                lr = lzma_stream_encoder_mt(s, &mt);
        } else
                lr = lzma_stream_encoder(s, filters, LZMA_CHECK_CRC32);

        return lr == LZMA_OK ? 0 : lr == LZMA_MEM_ERROR ? -ENOMEM : -EINVAL;
}

int compressor_new(enum compression c, int out_fd, unsigned threads, struct compressor **ret) {
        struct compressor *z;
        int r = 0;

        z = calloc(1, sizeof(*z));
        if (!z)
                return -ENOMEM;
        z->type = c;
        z->fd = out_fd;
        z->xz = (lzma_stream) LZMA_STREAM_INIT;
        /* Plain output goes straight to the file: no buffer (at 256 KiB it would be an
         * mmap() and a munmap(), with its TLB shoot-down, for every module). */
        if (c != COMPRESSION_NONE) {
                z->out = malloc(IO_CHUNK);
                if (!z->out) {
                        free(z);
                        return -ENOMEM;
                }
        }
        threads = resolve_threads(threads);

        switch (c) {
        case COMPRESSION_XZ:
                r = xz_encoder_init(&z->xz, threads);
                break;
        case COMPRESSION_ZSTD:
                z->zstd = ZSTD_createCCtx();
                if (!z->zstd) {
                        r = -ENOMEM;
                        break;
                }
                if (ZSTD_isError(ZSTD_CCtx_setParameter(z->zstd, ZSTD_c_compressionLevel, 3)) ||
                    ZSTD_isError(ZSTD_CCtx_setParameter(z->zstd, ZSTD_c_checksumFlag, 1)))
                        r = -EINVAL;
                /* Worker threads need a multithreaded libzstd; without one, stay single-threaded. */
                else if (threads > 1)
                        (void) ZSTD_CCtx_setParameter(z->zstd, ZSTD_c_nbWorkers, (int) threads);
                break;
        case COMPRESSION_GZIP:
                /* gzip -n -6: no name, no time; zlib's own header carries neither. */
                if (deflateInit2(&z->gz, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
                        r = -ENOMEM;
                else
                        z->gz_initialized = true;
                break;
        case COMPRESSION_NONE:
        default:
                break;
        }
        if (r < 0) {
                compressor_free(z);
                return r;
        }
        *ret = z;
        return 0;
}

static int xz_pump(struct compressor *z, const void *buf, size_t len, lzma_action action) {
        z->xz.next_in = buf;
        z->xz.avail_in = len;
        for (;;) {
                lzma_ret lr;
                int r;

                z->xz.next_out = z->out;
                z->xz.avail_out = IO_CHUNK;
                lr = lzma_code(&z->xz, action);
                if (lr != LZMA_OK && lr != LZMA_STREAM_END)
                        return lr == LZMA_MEM_ERROR ? -ENOMEM : -EIO;
                r = loop_write(z->fd, z->out, IO_CHUNK - z->xz.avail_out);
                if (r < 0)
                        return r;
                if (action == LZMA_RUN ? z->xz.avail_in == 0 : lr == LZMA_STREAM_END)
                        return 0;
        }
}

static int zstd_pump(struct compressor *z, const void *buf, size_t len, ZSTD_EndDirective mode) {
        ZSTD_inBuffer ib = { buf, len, 0 };

        for (;;) {
                ZSTD_outBuffer ob = { z->out, IO_CHUNK, 0 };
                size_t left = ZSTD_compressStream2(z->zstd, &ob, &ib, mode);
                int r;

                if (ZSTD_isError(left))
                        return -EIO;
                r = loop_write(z->fd, z->out, ob.pos);
                if (r < 0)
                        return r;
                if (mode == ZSTD_e_continue ? ib.pos == ib.size : left == 0)
                        return 0;
        }
}

static int gzip_pump(struct compressor *z, const void *buf, size_t len, int flush) {
        z->gz.next_in = (Bytef *) buf;
        z->gz.avail_in = (uInt) len;
        for (;;) {
                int zr, r;

                z->gz.next_out = z->out;
                z->gz.avail_out = IO_CHUNK;
                zr = deflate(&z->gz, flush);
                if (zr == Z_STREAM_ERROR)
                        return -EIO;
                r = loop_write(z->fd, z->out, IO_CHUNK - z->gz.avail_out);
                if (r < 0)
                        return r;
                if (flush == Z_NO_FLUSH ? z->gz.avail_in == 0 : zr == Z_STREAM_END)
                        return 0;
        }
}

int compressor_write(struct compressor *z, const void *buf, size_t len) {
        /* zlib counts in uInt: feed huge buffers in slices. */
        while (len > 0) {
                size_t n = MIN(len, (size_t) 1 << 30);
                int r;

                switch (z->type) {
                case COMPRESSION_XZ:
                        r = xz_pump(z, buf, n, LZMA_RUN);
                        break;
                case COMPRESSION_ZSTD:
                        r = zstd_pump(z, buf, n, ZSTD_e_continue);
                        break;
                case COMPRESSION_GZIP:
                        r = gzip_pump(z, buf, n, Z_NO_FLUSH);
                        break;
                case COMPRESSION_NONE:
                default:
                        r = loop_write(z->fd, buf, n);
                        break;
                }
                if (r < 0)
                        return r;
                buf = (const uint8_t *) buf + n;
                len -= n;
        }
        return 0;
}

int compressor_finish(struct compressor *z) {
        switch (z->type) {
        case COMPRESSION_XZ:
                return xz_pump(z, NULL, 0, LZMA_FINISH);
        case COMPRESSION_ZSTD:
                return zstd_pump(z, NULL, 0, ZSTD_e_end);
        case COMPRESSION_GZIP:
                return gzip_pump(z, NULL, 0, Z_FINISH);
        case COMPRESSION_NONE:
        default:
                return 0;
        }
}

struct compressor *compressor_free(struct compressor *z) {
        if (!z)
                return NULL;
        lzma_end(&z->xz);
        ZSTD_freeCCtx(z->zstd);
        if (z->gz_initialized)
                deflateEnd(&z->gz);
        free(z->out);
        free(z);
        return NULL;
}
