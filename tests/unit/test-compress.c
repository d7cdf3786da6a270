/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* compress.c: detection by magic, streaming compression with the kernel's parameters, and
 * bounded decompression. The command-line tools (xz, zstd, gzip) are the independent judges. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compress.h"
#include "macro.h"
#include "unit-util.h"

#define NO_LIMIT ((size_t) 1 << 40) /* far above anything here; see test_limit_size_max */
#define READ_CHUNK (256U * 1024U) /* compress.c's IO_CHUNK: where reads split a stream */

static const enum compression real_types[] = { COMPRESSION_XZ, COMPRESSION_ZSTD, COMPRESSION_GZIP };

/* Feeds data to a compressor in deliberately uneven pieces and returns the file's size. */
static size_t compress_to(const char *path, enum compression c, unsigned threads, const uint8_t *data, size_t len) {
        static const size_t pieces[] = { 1, 7, 4096, 65539, 3, 1 << 20, 12345 };
        struct compressor *z = NULL;
        struct stat st;
        size_t off = 0;
        int fd, r;

        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        r = compressor_new(c, fd, threads, &z);
        ck_assert_msg(r == 0, "compressor_new(%s): %s", compression_to_string(c), strerror(-r));
        for (size_t i = 0; off < len; i++) {
                size_t n = MIN(pieces[i % ELEMENTSOF(pieces)], len - off);

                ck_assert_int_eq(compressor_write(z, data + off, n), 0);
                off += n;
        }
        ck_assert_int_eq(compressor_write(z, data, 0), 0);
        r = compressor_finish(z);
        ck_assert_msg(r == 0, "compressor_finish(%s): %s", compression_to_string(c), strerror(-r));
        ck_assert_ptr_null(compressor_free(z));
        ck_assert_int_eq(fstat(fd, &st), 0);
        close(fd);
        return (size_t) st.st_size;
}

static int decompress_path(const char *path, enum compression c, size_t limit, uint8_t **ret, size_t *ret_len) {
        int fd = open(path, O_RDONLY | O_CLOEXEC), r;

        ck_assert_int_ge(fd, 0);
        r = decompress_fd(fd, c, limit, ret, ret_len);
        close(fd);
        return r;
}

/* Decompression that must fail with 'error' and leave the outputs alone. */
static void expect_decompress_error(const char *path, enum compression c, size_t limit, int error) {
        uint8_t *out = (uint8_t *) "untouched";
        size_t out_len = 4242;
        int r = decompress_path(path, c, limit, &out, &out_len);

        ck_assert_msg(r == error, "decompress(%s) of %s: expected %s, got %d (%s)", compression_to_string(c), path,
                      strerror(-error), r, strerror(r < 0 ? -r : 0));
        ck_assert_str_eq((char *) out, "untouched");
        ck_assert_uint_eq(out_len, 4242);
}

/* --- detection --- */

START_TEST(test_detect) {
        static const uint8_t xz[] = { 0xfd, '7', 'z', 'X', 'Z', 0x00, 0x00, 0x01 };
        static const uint8_t zst[] = { 0x28, 0xb5, 0x2f, 0xfd, 0x24, 0x00 };
        static const uint8_t gz[] = { 0x1f, 0x8b, 0x08, 0x00 };
        static const uint8_t elf[] = { 0x7f, 'E', 'L', 'F', 2, 1, 1, 0 };

        ck_assert_int_eq(compression_detect(xz, sizeof(xz)), COMPRESSION_XZ);
        ck_assert_int_eq(compression_detect(xz, 6), COMPRESSION_XZ);
        ck_assert_int_eq(compression_detect(xz, 5), COMPRESSION_NONE);
        ck_assert_int_eq(compression_detect(zst, sizeof(zst)), COMPRESSION_ZSTD);
        ck_assert_int_eq(compression_detect(zst, 4), COMPRESSION_ZSTD);
        ck_assert_int_eq(compression_detect(zst, 3), COMPRESSION_NONE);
        ck_assert_int_eq(compression_detect(gz, sizeof(gz)), COMPRESSION_GZIP);
        ck_assert_int_eq(compression_detect(gz, 2), COMPRESSION_GZIP);
        ck_assert_int_eq(compression_detect(gz, 1), COMPRESSION_NONE);
        ck_assert_int_eq(compression_detect(elf, sizeof(elf)), COMPRESSION_NONE);
        ck_assert_int_eq(compression_detect("", 0), COMPRESSION_NONE);
        ck_assert_int_le(COMPRESSION_MAGIC_MAX, 8);

        ck_assert_str_eq(compression_to_string(COMPRESSION_XZ), "xz");
        ck_assert_str_eq(compression_to_string(COMPRESSION_ZSTD), "zstd");
        ck_assert_str_eq(compression_to_string(COMPRESSION_GZIP), "gzip");
        ck_assert_str_eq(compression_to_string(COMPRESSION_NONE), "none");
        ck_assert_str_eq(compression_suffix(COMPRESSION_XZ), ".xz");
        ck_assert_str_eq(compression_suffix(COMPRESSION_ZSTD), ".zst");
        ck_assert_str_eq(compression_suffix(COMPRESSION_GZIP), ".gz");
        ck_assert_str_eq(compression_suffix(COMPRESSION_NONE), "");
}
END_TEST

START_TEST(test_detect_tool_output) {
        _cleanup_free_ char *dir = tu_tmpdir();
        static const struct {
                const char *cmd, *suffix;
                enum compression c;
        } tools[] = {
                { "xz -k", ".xz", COMPRESSION_XZ },
                { "zstd -q -k", ".zst", COMPRESSION_ZSTD },
                { "gzip -k", ".gz", COMPRESSION_GZIP },
        };
        uint8_t data[5000];

        tu_fill_mixed(data, sizeof(data), 1);
        for (size_t i = 0; i < ELEMENTSOF(tools); i++) {
                _cleanup_free_ char *in = tu_path(dir, "data"), *out = NULL;
                _cleanup_free_ uint8_t *buf = NULL, *dec = NULL;
                size_t len, dec_len;

                tu_write_file(in, data, sizeof(data), 0644);
                ck_assert_int_eq(tu_system("cd '%s' && %s data", dir, tools[i].cmd), 0);
                ck_assert_int_ge(asprintf(&out, "%s%s", in, tools[i].suffix), 0);
                buf = tu_read_file(out, &len);
                ck_assert_int_eq(compression_detect(buf, MIN(len, (size_t) COMPRESSION_MAGIC_MAX)), tools[i].c);
                /* and we read what the tool wrote */
                ck_assert_int_eq(decompress_path(out, tools[i].c, NO_LIMIT, &dec, &dec_len), 0);
                ck_assert_uint_eq(dec_len, sizeof(data));
                ck_assert_mem_eq(dec, data, sizeof(data));
                unlink(in);
                unlink(out);
        }
}
END_TEST

START_TEST(test_xz_stream_check) {
        _cleanup_free_ char *dir = tu_tmpdir();
        static const struct {
                const char *check;
                int id;
        } checks[] = { { "none", 0 }, { "crc32", 1 }, { "crc64", 4 }, { "sha256", 10 } };
        static const uint8_t bad_flags[] = { 0xfd, '7', 'z', 'X', 'Z', 0x00, 0x01, 0x01 };
        static const uint8_t bad_flags2[] = { 0xfd, '7', 'z', 'X', 'Z', 0x00, 0x00, 0x11 };

        for (size_t i = 0; i < ELEMENTSOF(checks); i++) {
                _cleanup_free_ char *p = tu_path(dir, "d.xz");
                _cleanup_free_ uint8_t *buf = NULL;
                size_t len;

                ck_assert_int_eq(tu_system("printf hello | xz --check=%s > '%s'", checks[i].check, p), 0);
                buf = tu_read_file(p, &len);
                ck_assert_int_eq(xz_stream_check(buf, len), checks[i].id);
                ck_assert_int_eq(xz_stream_check(buf, 8), checks[i].id);
                ck_assert_int_lt(xz_stream_check(buf, 7), 0);
        }
        ck_assert_int_lt(xz_stream_check("\x28\xb5\x2f\xfd\0\0\0\0", 8), 0);
        ck_assert_int_lt(xz_stream_check("", 0), 0);
        ck_assert_int_lt(xz_stream_check(bad_flags, sizeof(bad_flags)), 0);
        ck_assert_int_lt(xz_stream_check(bad_flags2, sizeof(bad_flags2)), 0);
}
END_TEST

/* --- round trips --- */

static const size_t rt_sizes[] = { 0, 4099, 5U << 20 };
static const enum compression rt_types[] = { COMPRESSION_XZ, COMPRESSION_ZSTD, COMPRESSION_GZIP, COMPRESSION_NONE };
static const unsigned rt_threads[] = { 1, 2 };
#define RT_N (ELEMENTSOF(rt_types) * ELEMENTSOF(rt_sizes) * ELEMENTSOF(rt_threads))

START_TEST(test_roundtrip) {
        enum compression c = rt_types[(size_t) _i / (ELEMENTSOF(rt_sizes) * ELEMENTSOF(rt_threads))];
        size_t size = rt_sizes[((size_t) _i / ELEMENTSOF(rt_threads)) % ELEMENTSOF(rt_sizes)];
        unsigned threads = rt_threads[(size_t) _i % ELEMENTSOF(rt_threads)];
        _cleanup_free_ char *dir = tu_tmpdir(), *orig = tu_path(dir, "orig"), *packed = tu_path(dir, "packed");
        _cleanup_free_ uint8_t *data = malloc(size + 1), *file = NULL, *out = NULL;
        size_t file_len, out_len = 0;
        int r;

        ck_assert_ptr_nonnull(data);
        tu_fill_mixed(data, size, 1000 + (uint64_t) _i);
        tu_write_file(orig, data, size, 0644);

        file_len = compress_to(packed, c, threads, data, size);
        file = tu_read_file(packed, &file_len);

        if (c == COMPRESSION_NONE) {
                ck_assert_uint_eq(file_len, size);
                ck_assert(size == 0 || memcmp(file, data, size) == 0);
                ck_assert_int_lt(decompress_path(packed, c, NO_LIMIT, &out, &out_len), 0);
                return;
        }

        ck_assert_int_eq(compression_detect(file, file_len), c);
        r = decompress_path(packed, c, NO_LIMIT, &out, &out_len);
        ck_assert_msg(r == 0, "decompress(%s, %zu bytes, %u threads): %s", compression_to_string(c), size, threads,
                      strerror(-r));
        ck_assert_uint_eq(out_len, size);
        ck_assert(size == 0 || memcmp(out, data, size) == 0);
        if (size > 65536)
                ck_assert_uint_lt(file_len, size * 3 / 4); /* most of it compresses well */

        switch (c) {
        case COMPRESSION_XZ: {
                _cleanup_free_ char *check = NULL;

                /* The kernel's xz_dec wants CRC32 (Makefile.modinst: xz --check=crc32). */
                ck_assert_int_eq(xz_stream_check(file, file_len), 1);
                ck_assert_int_eq(tu_system("xz -t '%s'", packed), 0);
                check = tu_command_output("xz --robot --list '%s' | awk -F'\\t' '$1 == \"totals\" { print $7 }'",
                                          packed);
                ck_assert_str_eq(check, "CRC32\n");
                ck_assert_int_eq(tu_system("xz -dc '%s' | cmp -s - '%s'", packed, orig), 0);
                break;
        }
        case COMPRESSION_ZSTD:
                ck_assert_int_eq(tu_system("zstd -q -t '%s'", packed), 0);
                ck_assert_int_eq(tu_system("zstd -q -dc '%s' | cmp -s - '%s'", packed, orig), 0);
                break;
        case COMPRESSION_GZIP:
                /* gzip -n: deflate, no flags (no FNAME, no FCOMMENT...), mtime 0 */
                ck_assert_uint_ge(file_len, 18);
                ck_assert_uint_eq(file[2], 8);
                ck_assert_uint_eq(file[3] & 0x08, 0);
                ck_assert_uint_eq(file[3], 0);
                ck_assert_uint_eq(file[4] | file[5] | file[6] | file[7], 0);
                ck_assert_int_eq(tu_system("gzip -t '%s'", packed), 0);
                ck_assert_int_eq(tu_system("gzip -dc '%s' | cmp -s - '%s'", packed, orig), 0);
                break;
        case COMPRESSION_NONE:
        default:
                break;
        }
}
END_TEST

START_TEST(test_decompress_from_offset) {
        /* decompress_fd() starts at the fd's current offset */
        _cleanup_free_ char *dir = tu_tmpdir(), *p = tu_path(dir, "packed");
        _cleanup_free_ uint8_t *file = NULL, *out = NULL;
        uint8_t data[10000];
        size_t len, out_len;
        int fd;

        tu_fill_mixed(data, sizeof(data), 5);
        compress_to(p, COMPRESSION_ZSTD, 1, data, sizeof(data));
        file = tu_read_file(p, &len);
        fd = open(p, O_WRONLY | O_TRUNC | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, "JUNK", 4), 4);
        ck_assert_int_eq(write(fd, file, len), (ssize_t) len);
        close(fd);
        fd = open(p, O_RDONLY | O_CLOEXEC);
        ck_assert_int_eq(lseek(fd, 4, SEEK_SET), 4);
        ck_assert_int_eq(decompress_fd(fd, COMPRESSION_ZSTD, NO_LIMIT, &out, &out_len), 0);
        ck_assert_uint_eq(out_len, sizeof(data));
        ck_assert_mem_eq(out, data, sizeof(data));
        close(fd);
}
END_TEST

/* --- corrupt input --- */

START_TEST(test_corrupt) {
        enum compression c = real_types[_i];
        _cleanup_free_ char *dir = tu_tmpdir(), *p = tu_path(dir, "packed"), *bad = tu_path(dir, "bad");
        _cleanup_free_ uint8_t *data = malloc(200000), *file = NULL;
        size_t len;

        ck_assert_ptr_nonnull(data);
        tu_fill_mixed(data, 200000, 77);
        compress_to(p, c, 1, data, 200000);
        file = tu_read_file(p, &len);
        ck_assert_uint_gt(len, 64);

        /* one flipped byte, at several places: the middle, near the end (the check), the header */
        {
                const size_t where[] = { len / 2, len / 3, len - 20, 12 };

                for (size_t i = 0; i < ELEMENTSOF(where); i++) {
                        file[where[i]] ^= 0x5a;
                        tu_write_file(bad, file, len, 0644);
                        expect_decompress_error(bad, c, NO_LIMIT, -EBADMSG);
                        file[where[i]] ^= 0x5a;
                }
        }

        /* truncated anywhere */
        {
                const size_t cut[] = { len - 1, len - 4, len / 2, 16, 8, (size_t) (c == COMPRESSION_GZIP ? 2 : 6) };

                for (size_t i = 0; i < ELEMENTSOF(cut); i++) {
                        tu_write_file(bad, file, cut[i], 0644);
                        expect_decompress_error(bad, c, NO_LIMIT, -EBADMSG);
                }
        }

        /* an empty file, and the magic followed by garbage */
        tu_write_file(bad, "", 0, 0644);
        expect_decompress_error(bad, c, NO_LIMIT, -EBADMSG);
        tu_fill_random(file + 8, len - 8, 3);
        tu_write_file(bad, file, len, 0644);
        expect_decompress_error(bad, c, NO_LIMIT, -EBADMSG);
}
END_TEST

/* --- the decompression limit --- */

START_TEST(test_limit) {
        enum compression c = real_types[_i];
        const size_t n = 3U << 20;
        _cleanup_free_ char *dir = tu_tmpdir(), *p = tu_path(dir, "packed");
        _cleanup_free_ uint8_t *data = calloc(1, n), *out = NULL;
        size_t out_len;

        /* mostly zeros: a small file that expands a lot, a miniature decompression bomb */
        ck_assert_ptr_nonnull(data);
        tu_fill_random(data + n / 2, 1000, 1);
        compress_to(p, c, 1, data, n);

        expect_decompress_error(p, c, 1000, -EFBIG);
        expect_decompress_error(p, c, 0, -EFBIG);
        expect_decompress_error(p, c, n / 2, -EFBIG);
        expect_decompress_error(p, c, n - 1, -EFBIG);
        ck_assert_int_eq(decompress_path(p, c, n + 1, &out, &out_len), 0);
        ck_assert_uint_eq(out_len, n);
        ck_assert_mem_eq(out, data, n);
        free(out);
        out = NULL;

        /* exactly at the limit is within it (a small stream, read in one piece) */
        compress_to(p, c, 1, data, 1000);
        ck_assert_int_eq(decompress_path(p, c, 1000, &out, &out_len), 0);
        ck_assert_uint_eq(out_len, 1000);
}
END_TEST

/* Regression test, the bug is fixed: decompress_fd() refuses a stream whose output is exactly 'limit' bytes with -EFBIG when
 * the end of the stream (gzip's CRC32/ISIZE, zstd's checksum, xz's index and footer) arrives in a
 * later read() than the last output byte. outbuf_reserve() is called before every decoder step
 * and fails as soon as o->len >= o->limit, although no further output is coming. The header
 * promises -EFBIG only for output *beyond* the limit. (MODULE_DECOMPRESSED_MAX makes this a
 * 2 GiB corner case for modules, but the contract is the contract.) */
START_TEST(test_limit_exact_across_reads) {
        enum compression c = real_types[_i];
        /* bytes of the stream that follow the last output byte, at least */
        const size_t tail = c == COMPRESSION_GZIP ? 8 : c == COMPRESSION_ZSTD ? 4 : 12;
        _cleanup_free_ char *dir = tu_tmpdir(), *p = tu_path(dir, "packed");
        _cleanup_free_ uint8_t *data = malloc(READ_CHUNK + 65536), *out = NULL;
        size_t n = READ_CHUNK - 512, packed = 0, out_len = 0;
        bool found = false;
        int r;

        /* Incompressible data, sized so that the stream's tail straddles the first read. */
        ck_assert_ptr_nonnull(data);
        tu_fill_random(data, READ_CHUNK + 65536, 99);
        for (int attempt = 0; attempt < 200 && !found; attempt++) {
                packed = compress_to(p, c, 1, data, n);
                if (packed > READ_CHUNK && packed <= READ_CHUNK + tail) {
                        found = true;
                        break;
                }
                if (packed <= READ_CHUNK)
                        n += MAX((size_t) 1, (READ_CHUNK + tail / 2 + 1 - packed) / 2);
                else
                        n -= MAX((size_t) 1, (packed - READ_CHUNK - tail / 2) / 2);
        }
        ck_assert_msg(found, "could not size a %s stream to straddle a read", compression_to_string(c));

        /* limit + 1 works: the data is fine */
        ck_assert_int_eq(decompress_path(p, c, n + 1, &out, &out_len), 0);
        ck_assert_uint_eq(out_len, n);
        free(out);
        out = NULL;

        r = decompress_path(p, c, n, &out, &out_len);
        ck_assert_msg(r == 0, "regression: %s stream of exactly 'limit' (%zu) bytes, %zu packed: %s",
                      compression_to_string(c), n, packed, strerror(-r));
        ck_assert_uint_eq(out_len, n);
}
END_TEST

/* Regression test, the bug is fixed: a limit of SIZE_MAX ("no limit") makes outbuf_reserve() compute MIN(want, limit + 1)
 * with limit + 1 == 0, so it realloc()s the buffer to 0 bytes: glibc frees it and returns NULL,
 * reserve returns -ENOMEM with o->data still pointing at the freed block, and decompress_fd()
 * frees it again: a double free (glibc aborts) for any non-empty stream. */
START_TEST(test_limit_size_max) {
        enum compression c = real_types[_i];
        _cleanup_free_ char *dir = tu_tmpdir(), *p = tu_path(dir, "packed");
        _cleanup_free_ uint8_t *out = NULL;
        uint8_t data[1000];
        size_t out_len = 0;
        int r;

        tu_fill_mixed(data, sizeof(data), 8);
        compress_to(p, c, 1, data, sizeof(data));
        r = decompress_path(p, c, SIZE_MAX, &out, &out_len); /* aborts in free() with the bug */
        ck_assert_msg(r == 0, "regression: decompress_fd(limit = SIZE_MAX) failed: %s", strerror(-r));
        ck_assert_uint_eq(out_len, sizeof(data));
        ck_assert_mem_eq(out, data, sizeof(data));
}
END_TEST

static Suite *compress_suite(void) {
        Suite *s = suite_create("compress");
        TCase *tc;

        tc = tu_tcase("detect");
        tcase_add_test(tc, test_detect);
        tcase_add_test(tc, test_detect_tool_output);
        tcase_add_test(tc, test_xz_stream_check);
        suite_add_tcase(s, tc);

        tc = tu_tcase("roundtrip");
        tcase_add_loop_test(tc, test_roundtrip, 0, (int) RT_N);
        tcase_add_test(tc, test_decompress_from_offset);
        suite_add_tcase(s, tc);

        tc = tu_tcase("corrupt");
        tcase_add_loop_test(tc, test_corrupt, 0, (int) ELEMENTSOF(real_types));
        suite_add_tcase(s, tc);

        tc = tu_tcase("limit");
        tcase_add_loop_test(tc, test_limit, 0, (int) ELEMENTSOF(real_types));
        tcase_add_loop_test(tc, test_limit_exact_across_reads, 0, (int) ELEMENTSOF(real_types));
        tcase_add_loop_test(tc, test_limit_size_max, 0, (int) ELEMENTSOF(real_types));
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tu_run_suite(compress_suite());
}
