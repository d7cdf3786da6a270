/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Compressed modules: detection by magic, decompression into memory, and a streaming
 * compressor that uses the parameters the kernel's own build uses, so that the in-kernel
 * decompressor (CONFIG_MODULE_DECOMPRESS) and kmod both accept the result:
 *   xz:   --check=crc32 --lzma2=dict=1MiB (xz_dec in the kernel rejects CRC64 streams)
 *   zstd: level 3
 *   gzip: level 6, no name, no time (gzip -n) */

#include <stddef.h>
#include <stdint.h>

enum compression {
        COMPRESSION_NONE,
        COMPRESSION_XZ,
        COMPRESSION_ZSTD,
        COMPRESSION_GZIP,
};

/* How many leading bytes compression_detect() wants to see. */
#define COMPRESSION_MAGIC_MAX 6

enum compression compression_detect(const void *head, size_t len);
const char *compression_to_string(enum compression c);
/* The conventional suffix: ".xz", ".zst", ".gz", "" */
const char *compression_suffix(enum compression c);

/* The integrity check an xz stream header declares (LZMA_CHECK_* numbering: 1 = CRC32,
 * 4 = CRC64, 10 = SHA-256), or a negative errno when the header is not xz. */
int xz_stream_check(const void *head, size_t len);

/* Decompresses a whole stream read from fd (from its current offset) into a new buffer.
 * Output beyond 'limit' bytes fails with -EFBIG (a decompression bomb is not a module).
 * -EBADMSG for corrupt input. */
int decompress_fd(int fd, enum compression c, size_t limit, uint8_t **ret, size_t *ret_len);

struct compressor;

/* threads: 0 = one per online CPU. */
int compressor_new(enum compression c, int out_fd, unsigned threads, struct compressor **ret);
int compressor_write(struct compressor *z, const void *buf, size_t len);
/* Flushes the end of the stream to the fd. */
int compressor_finish(struct compressor *z);
struct compressor *compressor_free(struct compressor *z);
