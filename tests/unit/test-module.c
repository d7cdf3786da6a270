/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* module.c: ELF sanity, .modinfo fields, signature trailers. Every image is built in memory. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "module.h"
#include "unit-util.h"

/* A meta structure full of recognisable garbage: failures must leave it alone. */
static void meta_poison(struct module_meta *m) {
        memset(m, 0xa5, sizeof(*m));
}

static bool meta_is_poisoned(const struct module_meta *m) {
        const uint8_t *p = (const uint8_t *) m;

        for (size_t i = 0; i < sizeof(*m); i++)
                if (p[i] != 0xa5)
                        return false;
        return true;
}

/* Parses a buffer that must fail with 'error', leaving ret untouched and explaining why. */
static void expect_parse_error(const uint8_t *img, size_t len, int error) {
        struct module_data d = { .fd = -1, .mem = img, .size = len };
        struct module_meta m;
        const char *why = NULL;
        int r;

        meta_poison(&m);
        r = module_parse(&d, &m, &why);
        ck_assert_msg(r == error, "module_parse: expected %d (%s), got %d (%s), why: %s", error, strerror(-error), r,
                      strerror(r < 0 ? -r : 0), why ? why : "(none)");
        ck_assert_msg(meta_is_poisoned(&m), "module_parse touched ret on failure");
        ck_assert_msg(why != NULL, "module_parse failed (%d) without an explanation", r);
}

static void expect_parse_ok(const uint8_t *img, size_t len, struct module_meta *ret) {
        struct module_data d = { .fd = -1, .mem = img, .size = len };
        const char *why = NULL;
        int r;

        r = module_parse(&d, ret, &why);
        ck_assert_msg(r == 0, "module_parse: %d (%s): %s", r, strerror(-r), why ? why : "(none)");
}

/* A trailer for sig_len with one byte of its info block overridden. */
static uint8_t *image_with_trailer(size_t body_len, uint32_t sig_len, int info_idx, uint8_t info_val,
                                   size_t *ret_len) {
        size_t len = body_len + 40;
        uint8_t *img = calloc(1, len);

        ck_assert_ptr_nonnull(img);
        tu_fill_random(img, body_len, 7);
        tu_trailer(sig_len, img + body_len);
        if (info_idx >= 0)
                img[body_len + (size_t) info_idx] = info_val;
        *ret_len = len;
        return img;
}

/* --- well-formed modules --- */

START_TEST(test_parse_ok) {
        size_t len;
        uint8_t *img = tu_module_default(&len);
        struct module_meta m;

        expect_parse_ok(img, len, &m);
        ck_assert_str_eq(m.name, "foo");
        ck_assert_str_eq(m.vermagic, "6.1.0-1-amd64 SMP mod_unload ");
        ck_assert_ptr_null(m.version);
        ck_assert_ptr_null(m.srcversion);
        ck_assert_uint_eq(m.size, len);
        ck_assert_uint_eq(m.body_len, len);
        ck_assert_uint_eq(m.n_signatures, 0);
        ck_assert_uint_eq(m.elf_machine, EM_X86_64);
        module_meta_done(&m);
        ck_assert_ptr_null(m.name);
        ck_assert_ptr_null(m.vermagic);
        module_meta_done(&m); /* twice is harmless */
        free(img);
}
END_TEST

START_TEST(test_parse_all_fields) {
        static const char info[] = "license=GPL\0version=1.2.3\0author=x\0name=bar\0srcversion=ABCDEF0123\0"
                                   "vermagic=6.12.0-rc1+ SMP preempt mod_unload modversions \0";
        size_t len;
        uint8_t *img = tu_module_new(info, sizeof(info) - 1, 1000, &len);
        struct module_meta m;

        expect_parse_ok(img, len, &m);
        ck_assert_str_eq(m.name, "bar");
        ck_assert_str_eq(m.version, "1.2.3");
        ck_assert_str_eq(m.srcversion, "ABCDEF0123");
        ck_assert_str_eq(m.vermagic, "6.12.0-rc1+ SMP preempt mod_unload modversions ");
        module_meta_done(&m);
        free(img);
}
END_TEST

START_TEST(test_parse_modinfo_edge_cases) {
        /* No name= at all; "names=" and "xname=" must not be mistaken for it; the last string is
         * not NUL-terminated inside the section (the parser must not run past it). */
        static const char info[] = "names=wrong\0xname=wrong\0name\0vermagic=6.1.0 SMP";
        size_t len;
        uint8_t *img = tu_module_new(info, sizeof(info) - 1, 16, &len);
        struct module_meta m;

        expect_parse_ok(img, len, &m);
        ck_assert_ptr_null(m.name);
        ck_assert_str_eq(m.vermagic, "6.1.0 SMP");
        module_meta_done(&m);
        free(img);

        /* An empty .modinfo is still a .modinfo. */
        img = tu_module_new("", 0, 16, &len);
        expect_parse_ok(img, len, &m);
        ck_assert_ptr_null(m.name);
        ck_assert_ptr_null(m.vermagic);
        module_meta_done(&m);
        free(img);
}
END_TEST

START_TEST(test_parse_fd) {
        _cleanup_free_ char *dir = tu_tmpdir(), *path = tu_path(dir, "foo.ko");
        size_t len;
        uint8_t *img = tu_module_default(&len), sig[300];
        struct module_data d = { .fd = -1 };
        struct module_meta m;
        const char *why = NULL;
        int fd, r;

        tu_write_file(path, img, len, 0644);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        d = (struct module_data) { .fd = fd, .size = len };
        r = module_parse(&d, &m, &why);
        ck_assert_msg(r == 0, "module_parse(fd): %d %s", r, why ? why : "");
        ck_assert_str_eq(m.name, "foo");
        ck_assert_str_eq(m.vermagic, "6.1.0-1-amd64 SMP mod_unload ");
        ck_assert_uint_eq(m.n_signatures, 0);
        module_meta_done(&m);
        close(fd);

        /* The same, signed: the trailer is read with pread() too. */
        tu_fill_random(sig, sizeof(sig), 3);
        tu_append_sig(&img, &len, sig, sizeof(sig));
        tu_write_file(path, img, len, 0644);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        d = (struct module_data) { .fd = fd, .size = len };
        r = module_parse(&d, &m, &why);
        ck_assert_msg(r == 0, "module_parse(fd): %d %s", r, why ? why : "");
        ck_assert_uint_eq(m.n_signatures, 1);
        ck_assert_uint_eq(m.body_len, len - sizeof(sig) - 40);
        ck_assert_uint_eq(m.last_sig.sig_offset, len - sizeof(sig) - 40);
        ck_assert_uint_eq(m.last_sig.sig_len, sizeof(sig));
        ck_assert_str_eq(m.name, "foo");
        module_meta_done(&m);

        /* The file is shorter than the size we were told (it shrank under us): -EBADMSG, not
         * garbage and not a crash. */
        d.size = len + 100;
        meta_poison(&m);
        r = module_parse(&d, &m, NULL);
        ck_assert_int_eq(r, -EBADMSG);
        ck_assert(meta_is_poisoned(&m));
        close(fd);
        free(img);
}
END_TEST

START_TEST(test_data_read_bounds) {
        static const uint8_t buf[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
        struct module_data d = { .fd = -1, .mem = buf, .size = sizeof(buf) };
        uint8_t out[16];

        ck_assert_int_eq(module_data_read(&d, 0, out, 16), 0);
        ck_assert_mem_eq(out, buf, 16);
        ck_assert_int_eq(module_data_read(&d, 15, out, 1), 0);
        ck_assert_uint_eq(out[0], 16);
        ck_assert_int_eq(module_data_read(&d, 16, out, 0), 0);
        ck_assert_int_eq(module_data_read(&d, 15, out, 2), -EBADMSG);
        ck_assert_int_eq(module_data_read(&d, 17, out, 0), -EBADMSG);
        ck_assert_int_eq(module_data_read(&d, UINT64_MAX, out, 2), -EBADMSG);
        ck_assert_int_eq(module_data_read(&d, UINT64_MAX - 1, out, 16), -EBADMSG);
}
END_TEST

/* --- trailers --- */

START_TEST(test_empty) {
        static const uint8_t nothing[1];
        struct module_data d = { .fd = -1, .mem = nothing, .size = 0 };
        struct module_sig_trailer t = { .sig_offset = 77, .sig_len = 77 };

        ck_assert_int_eq(module_sig_trailer_parse(&d, 0, &t, NULL), 0);
        ck_assert_uint_eq(t.sig_offset, 77);
        expect_parse_error(nothing, 0, -ENOEXEC);
}
END_TEST

START_TEST(test_magic_only) {
        const char *magic = MODULE_SIG_MAGIC;
        struct module_data d = { .fd = -1, .mem = (const uint8_t *) magic, .size = MODULE_SIG_MAGIC_LEN };
        struct module_sig_trailer t = { .sig_offset = 77, .sig_len = 77 };
        const char *why = NULL;

        ck_assert_int_eq(module_sig_trailer_parse(&d, d.size, &t, &why), -EBADMSG);
        ck_assert_ptr_nonnull(why);
        ck_assert_uint_eq(t.sig_len, 77);
        expect_parse_error((const uint8_t *) magic, MODULE_SIG_MAGIC_LEN, -EBADMSG);

        /* Magic preceded by fewer than 12 bytes: still no room for the info block. */
        {
                uint8_t buf[11 + 28];

                memset(buf, 0, 11);
                memcpy(buf + 11, MODULE_SIG_MAGIC, 28);
                expect_parse_error(buf, sizeof(buf), -EBADMSG);
        }
}
END_TEST

START_TEST(test_sig_len_overflow) {
        const uint32_t body = 100;
        struct module_sig_trailer t = { .sig_offset = 77, .sig_len = 77 };
        struct module_data d;
        size_t len;
        uint8_t *img;

        /* Trailer alone (no body): any sig_len is too long. */
        img = image_with_trailer(0, 1, -1, 0, &len);
        expect_parse_error(img, len, -EBADMSG);
        free(img);

        /* sig_len == len - 40: the blob would fill everything, leaving no module. */
        img = image_with_trailer(body, body, -1, 0, &len);
        expect_parse_error(img, len, -EBADMSG);
        d = (struct module_data) { .fd = -1, .mem = img, .size = len };
        ck_assert_int_eq(module_sig_trailer_parse(&d, len, &t, NULL), -EBADMSG);
        ck_assert_uint_eq(t.sig_len, 77);
        free(img);

        img = image_with_trailer(body, body + 1, -1, 0, &len);
        expect_parse_error(img, len, -EBADMSG);
        free(img);

        img = image_with_trailer(body, 0xffffffffU, -1, 0, &len);
        expect_parse_error(img, len, -EBADMSG);
        free(img);

        img = image_with_trailer(body, 0x80000000U, -1, 0, &len);
        expect_parse_error(img, len, -EBADMSG);
        free(img);

        /* One byte less is a well-formed trailer (what is left is not an ELF, though). */
        img = image_with_trailer(body, body - 1, -1, 0, &len);
        d = (struct module_data) { .fd = -1, .mem = img, .size = len };
        ck_assert_int_eq(module_sig_trailer_parse(&d, len, &t, NULL), 1);
        ck_assert_uint_eq(t.sig_offset, 1);
        ck_assert_uint_eq(t.sig_len, body - 1);
        expect_parse_error(img, len, -ENOEXEC);

        /* A length beyond the data is refused, not read. */
        ck_assert_int_eq(module_sig_trailer_parse(&d, len + 1, &t, NULL), -EBADMSG);
        free(img);
}
END_TEST

START_TEST(test_wrong_id_type) {
        static const uint8_t ids[] = { 0, 1, 3, 0xff };
        struct module_sig_trailer t = { .sig_offset = 77, .sig_len = 77 };

        for (size_t i = 0; i < sizeof(ids); i++) {
                size_t len;
                uint8_t *img = image_with_trailer(200, 100, 2, ids[i], &len);
                struct module_data d = { .fd = -1, .mem = img, .size = len };
                const char *why = NULL;

                ck_assert_int_eq(module_sig_trailer_parse(&d, len, &t, &why), -ENOPKG);
                ck_assert_ptr_nonnull(why);
                ck_assert_uint_eq(t.sig_len, 77);
                expect_parse_error(img, len, -ENOPKG);
                free(img);
        }
}
END_TEST

/* _i indexes the reserved bytes: algo, hash, signer_len, key_id_len, pad[0..2] */
static const int reserved_idx[] = { 0, 1, 3, 4, 5, 6, 7 };

START_TEST(test_reserved_nonzero) {
        static const uint8_t vals[] = { 1, 0x80, 0xff };

        for (size_t v = 0; v < sizeof(vals); v++) {
                size_t len;
                uint8_t *img = image_with_trailer(200, 100, reserved_idx[_i], vals[v], &len);
                struct module_data d = { .fd = -1, .mem = img, .size = len };
                struct module_sig_trailer t = { .sig_offset = 77, .sig_len = 77 };

                ck_assert_int_eq(module_sig_trailer_parse(&d, len, &t, NULL), -EBADMSG);
                ck_assert_uint_eq(t.sig_len, 77);
                expect_parse_error(img, len, -EBADMSG);
                free(img);
        }
}
END_TEST

START_TEST(test_sig_len_zero) {
        size_t len;
        uint8_t *img = image_with_trailer(200, 0, -1, 0, &len);

        expect_parse_error(img, len, -EBADMSG);
        free(img);

        /* A real module with a zero-length signature appended. */
        img = tu_module_default(&len);
        tu_append_sig(&img, &len, "", 0);
        expect_parse_error(img, len, -EBADMSG);
        free(img);
}
END_TEST

START_TEST(test_truncated_sig_region) {
        /* A module whose signature blob lost bytes in transit (the trailer still claims the
         * full length): the blob now reaches into the ELF, whose section table is cut off. */
        size_t len, body_len, cut_len;
        uint8_t *img = tu_module_default(&len), *cut, sig[512];

        body_len = len;
        tu_fill_random(sig, sizeof(sig), 11);
        tu_append_sig(&img, &len, sig, sizeof(sig));
        {
                struct module_meta m;

                expect_parse_ok(img, len, &m);
                module_meta_done(&m);
        }

        for (size_t missing = 1; missing <= 64; missing *= 4) {
                cut_len = len - missing;
                cut = malloc(cut_len);
                ck_assert_ptr_nonnull(cut);
                memcpy(cut, img, body_len);
                memcpy(cut + body_len, img + body_len + missing, len - body_len - missing);
                expect_parse_error(cut, cut_len, -ENOEXEC);
                free(cut);
        }

        /* Cut so much that the claimed length no longer fits at all. */
        cut_len = 100 + 40;
        cut = malloc(cut_len);
        ck_assert_ptr_nonnull(cut);
        memcpy(cut, img + len - cut_len, cut_len);
        expect_parse_error(cut, cut_len, -EBADMSG);
        free(cut);
        free(img);
}
END_TEST

START_TEST(test_stacked_two) {
        size_t len, body_len;
        uint8_t *img = tu_module_default(&len), sig1[333], sig2[444];
        struct module_meta m;

        body_len = len;
        tu_fill_random(sig1, sizeof(sig1), 1);
        tu_fill_random(sig2, sizeof(sig2), 2);
        tu_append_sig(&img, &len, sig1, sizeof(sig1));
        tu_append_sig(&img, &len, sig2, sizeof(sig2));

        expect_parse_ok(img, len, &m);
        ck_assert_uint_eq(m.n_signatures, 2);
        ck_assert_uint_eq(m.body_len, body_len);
        ck_assert_uint_eq(m.size, len);
        /* the outermost one is what the kernel checks */
        ck_assert_uint_eq(m.last_sig.sig_len, sizeof(sig2));
        ck_assert_uint_eq(m.last_sig.sig_offset, body_len + sizeof(sig1) + 40);
        ck_assert_str_eq(m.name, "foo");
        module_meta_done(&m);
        free(img);
}
END_TEST

START_TEST(test_stacked_max) {
        size_t len, body_len;
        uint8_t *img = tu_module_default(&len), sig[64];
        struct module_meta m;

        body_len = len;
        for (unsigned i = 0; i < MODULE_SIG_MAX_STACKED; i++) {
                tu_fill_random(sig, sizeof(sig), i + 1);
                tu_append_sig(&img, &len, sig, sizeof(sig));
        }
        expect_parse_ok(img, len, &m);
        ck_assert_uint_eq(m.n_signatures, MODULE_SIG_MAX_STACKED);
        ck_assert_uint_eq(m.body_len, body_len);
        module_meta_done(&m);

        tu_append_sig(&img, &len, sig, sizeof(sig));
        expect_parse_error(img, len, -EBADMSG);
        free(img);
}
END_TEST

START_TEST(test_stacked_inner_malformed) {
        /* A valid outer trailer around a malformed inner one: the whole module is malformed. */
        size_t len;
        uint8_t *img = tu_module_default(&len), sig[64], bad[64];

        tu_fill_random(sig, sizeof(sig), 5);
        tu_append_sig(&img, &len, sig, sizeof(sig));
        img[len - 40 + 2] = 1; /* inner id_type: not PKCS#7 */
        memcpy(bad, sig, 64);
        tu_append_sig(&img, &len, bad, 64);
        expect_parse_error(img, len, -ENOPKG);
        free(img);
}
END_TEST

START_TEST(test_trailer_build_roundtrip) {
        static const uint32_t lens[] = { 1, 2, 0xff, 0x100, 0x1234, 0x01020304, 0x7fffffff };
        _cleanup_free_ char *dir = tu_tmpdir(), *path = tu_path(dir, "sparse");

        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
                uint8_t built[MODULE_SIG_TRAILER_LEN], expected[40];
                struct module_sig_trailer t = {};
                struct module_data d;
                uint64_t total = (uint64_t) lens[i] + 40 + 3; /* 3 bytes of "module" before */
                int fd;

                module_sig_trailer_build(lens[i], built);
                tu_trailer(lens[i], expected);
                ck_assert_mem_eq(built, expected, 40);

                /* A sparse file holds the (huge) blob for free; the parser only reads the end. */
                fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                ck_assert_int_ge(fd, 0);
                ck_assert_int_eq(ftruncate(fd, (off_t) total), 0);
                ck_assert_int_eq(pwrite(fd, built, 40, (off_t) (total - 40)), 40);
                d = (struct module_data) { .fd = fd, .size = total };
                ck_assert_int_eq(module_sig_trailer_parse(&d, total, &t, NULL), 1);
                ck_assert_uint_eq(t.sig_len, lens[i]);
                ck_assert_uint_eq(t.sig_offset, 3);
                close(fd);
        }
        ck_assert_uint_eq(MODULE_SIG_TRAILER_LEN, 40);
}
END_TEST

START_TEST(test_trailer_absent) {
        size_t len;
        uint8_t *img = tu_module_default(&len);
        struct module_data d = { .fd = -1, .mem = img, .size = len };
        struct module_sig_trailer t = { .sig_offset = 77, .sig_len = 77 };

        ck_assert_int_eq(module_sig_trailer_parse(&d, len, &t, NULL), 0);
        ck_assert_uint_eq(t.sig_offset, 77);
        /* magic almost right */
        img[len - 1] = '\n';
        memcpy(img + len - 28, "~Module signature appended~ ", 28);
        ck_assert_int_eq(module_sig_trailer_parse(&d, len, &t, NULL), 0);
        free(img);
}
END_TEST

/* --- malformed ELF --- */

START_TEST(test_not_elf) {
        static const char text[] = "this is a text file, not an ELF relocatable object at all.\n"
                                   "It is long enough to hold an ELF header, though, and then some more.\n";
        uint8_t *img;
        size_t len;

        expect_parse_error((const uint8_t *) text, sizeof(text) - 1, -ENOEXEC);
        expect_parse_error((const uint8_t *) "\177ELF", 4, -ENOEXEC);

        img = tu_module_default(&len);
        img[1] = 'X';
        expect_parse_error(img, len, -ENOEXEC);
        free(img);

        /* a truncated header */
        img = tu_module_default(&len);
        expect_parse_error(img, sizeof(Elf64_Ehdr) - 1, -ENOEXEC);
        expect_parse_error(img, EI_NIDENT - 1, -ENOEXEC);
        free(img);
}
END_TEST

START_TEST(test_elf_ident) {
        size_t len;
        uint8_t *img;

        img = tu_module_default(&len);
        img[EI_CLASS] = ELFCLASS32;
        expect_parse_error(img, len, -ENOEXEC);
        img[EI_CLASS] = ELFCLASSNONE;
        expect_parse_error(img, len, -ENOEXEC);
        free(img);

        img = tu_module_default(&len);
        img[EI_DATA] = ELFDATA2MSB;
        expect_parse_error(img, len, -ENOEXEC);
        free(img);

        img = tu_module_default(&len);
        img[EI_VERSION] = 2;
        expect_parse_error(img, len, -ENOEXEC);
        free(img);
}
END_TEST

START_TEST(test_elf_type) {
        static const uint16_t types[] = { ET_EXEC, ET_DYN, ET_CORE, ET_NONE };

        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
                size_t len;
                uint8_t *img = tu_module_default(&len);

                tu_ehdr(img)->e_type = types[i];
                expect_parse_error(img, len, -ENOEXEC);
                free(img);
        }
}
END_TEST

START_TEST(test_shoff_beyond_end) {
        size_t len;
        uint8_t *img = tu_module_default(&len);
        uint64_t shoff = tu_ehdr(img)->e_shoff;

        tu_ehdr(img)->e_shoff = len;
        expect_parse_error(img, len, -ENOEXEC);
        tu_ehdr(img)->e_shoff = len - sizeof(Elf64_Shdr); /* room for one header, not five */
        expect_parse_error(img, len, -ENOEXEC);
        tu_ehdr(img)->e_shoff = UINT64_MAX / 2;
        expect_parse_error(img, len, -ENOEXEC);

        /* The section table cut off by the end of the data. */
        tu_ehdr(img)->e_shoff = shoff;
        expect_parse_error(img, len - 1, -ENOEXEC);
        free(img);
}
END_TEST

START_TEST(test_shtable_overflow) {
        size_t len;
        uint8_t *img = tu_module_default(&len);

        /* e_shoff + e_shnum * e_shentsize wraps around 2^64 */
        tu_ehdr(img)->e_shoff = UINT64_MAX - 64;
        expect_parse_error(img, len, -ENOEXEC);
        tu_ehdr(img)->e_shoff = UINT64_MAX - 4 * sizeof(Elf64_Shdr) + 1;
        expect_parse_error(img, len, -ENOEXEC);
        free(img);

        /* the largest e_shnum, whose table cannot fit */
        img = tu_module_default(&len);
        tu_ehdr(img)->e_shnum = 0xffff;
        expect_parse_error(img, len, -ENOEXEC);
        free(img);

        /* e_shnum == 0 (extended numbering, or no table) */
        img = tu_module_default(&len);
        tu_ehdr(img)->e_shnum = 0;
        expect_parse_error(img, len, -ENOEXEC);
        free(img);

        /* a section header size that is not Elf64_Shdr's */
        img = tu_module_default(&len);
        tu_ehdr(img)->e_shentsize = 32;
        expect_parse_error(img, len, -ENOEXEC);
        tu_ehdr(img)->e_shentsize = 0xffff;
        expect_parse_error(img, len, -ENOEXEC);
        free(img);
}
END_TEST

START_TEST(test_shstrndx_out_of_range) {
        static const uint16_t idx[] = { TU_NSECS, TU_NSECS + 1, SHN_UNDEF, SHN_XINDEX, 0xffff };

        for (size_t i = 0; i < sizeof(idx) / sizeof(idx[0]); i++) {
                size_t len;
                uint8_t *img = tu_module_default(&len);

                tu_ehdr(img)->e_shstrndx = idx[i];
                expect_parse_error(img, len, -ENOEXEC);
                free(img);
        }

        /* in range, but not a string table */
        {
                size_t len;
                uint8_t *img = tu_module_default(&len);

                tu_ehdr(img)->e_shstrndx = TU_SEC_TEXT;
                expect_parse_error(img, len, -ENOEXEC);
                free(img);
        }
}
END_TEST

START_TEST(test_section_past_end) {
        static const unsigned secs[] = { TU_SEC_TEXT, TU_SEC_MODINFO, TU_SEC_SHSTRTAB };

        for (size_t i = 0; i < sizeof(secs) / sizeof(secs[0]); i++) {
                size_t len;
                uint8_t *img = tu_module_default(&len);
                Elf64_Shdr *sh = tu_shdr(img, secs[i]);

                sh->sh_offset = len - 2;
                sh->sh_size = 10;
                expect_parse_error(img, len, -ENOEXEC);

                sh->sh_offset = 100;
                sh->sh_size = len; /* 100 + len > len */
                expect_parse_error(img, len, -ENOEXEC);

                /* offset + size wraps around */
                sh->sh_offset = UINT64_MAX - 1;
                sh->sh_size = 10;
                expect_parse_error(img, len, -ENOEXEC);
                sh->sh_offset = 10;
                sh->sh_size = UINT64_MAX - 1;
                expect_parse_error(img, len, -ENOEXEC);
                free(img);
        }

        /* The ELF is checked against its own length, not the signed file's: a section may not
         * reach into the signature. */
        {
                size_t len, body_len;
                uint8_t *img = tu_module_default(&len), sig[128];

                body_len = len;
                tu_fill_random(sig, sizeof(sig), 9);
                tu_append_sig(&img, &len, sig, sizeof(sig));
                tu_shdr(img, TU_SEC_TEXT)->sh_size = body_len; /* ends inside the signature */
                expect_parse_error(img, len, -ENOEXEC);
                free(img);
        }
}
END_TEST

START_TEST(test_nobits_not_bounds_checked) {
        /* .bss (SHT_NOBITS) and SHT_NULL sections have no file contents: anything goes. */
        size_t len;
        uint8_t *img = tu_module_default(&len);
        struct module_meta m;

        tu_shdr(img, TU_SEC_BSS)->sh_offset = UINT64_MAX - 1;
        tu_shdr(img, TU_SEC_BSS)->sh_size = UINT64_MAX - 1;
        expect_parse_ok(img, len, &m);
        module_meta_done(&m);
        free(img);
}
END_TEST

START_TEST(test_sh_name_out_of_range) {
        static const uint32_t names[] = { 0xffffffffU, 0x80000000U };
        size_t len;
        uint8_t *img = tu_module_default(&len);
        uint64_t strsz = tu_shdr(img, TU_SEC_SHSTRTAB)->sh_size;

        tu_shdr(img, TU_SEC_TEXT)->sh_name = (uint32_t) strsz;
        expect_parse_error(img, len, -ENOEXEC);
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                tu_shdr(img, TU_SEC_TEXT)->sh_name = names[i];
                expect_parse_error(img, len, -ENOEXEC);
        }
        free(img);

        /* .modinfo's own name out of range */
        img = tu_module_default(&len);
        tu_shdr(img, TU_SEC_MODINFO)->sh_name = 0xffffffffU;
        expect_parse_error(img, len, -ENOEXEC);
        free(img);

        /* the last byte of the table is in range (an empty name) */
        img = tu_module_default(&len);
        tu_shdr(img, TU_SEC_TEXT)->sh_name = (uint32_t) strsz - 1;
        {
                struct module_meta m;

                expect_parse_ok(img, len, &m);
                module_meta_done(&m);
        }
        free(img);
}
END_TEST

START_TEST(test_missing_modinfo) {
        size_t len;
        uint8_t *img = tu_module_default(&len);
        Elf64_Shdr *str = tu_shdr(img, TU_SEC_SHSTRTAB);
        char *names = (char *) img + str->sh_offset;

        /* rename ".modinfo" to ".modinfX" */
        ck_assert_str_eq(names + 7, ".modinfo");
        names[7 + 7] = 'X';
        expect_parse_error(img, len, -ENOEXEC);
        free(img);

        /* a string table without a terminating NUL: the name lookup must not run past it */
        img = tu_module_default(&len);
        str = tu_shdr(img, TU_SEC_SHSTRTAB);
        tu_shdr(img, TU_SEC_MODINFO)->sh_name = 7;
        str->sh_size = 7 + 5; /* ".modi" */
        str->sh_name = 0;
        tu_shdr(img, TU_SEC_BSS)->sh_name = 0;
        expect_parse_error(img, len, -ENOEXEC);
        free(img);

        /* .modinfo that is SHT_NOBITS */
        img = tu_module_default(&len);
        tu_shdr(img, TU_SEC_MODINFO)->sh_type = SHT_NOBITS;
        expect_parse_error(img, len, -ENOEXEC);
        free(img);

        /* a .modinfo larger than the cap */
        {
                size_t big = MODULE_MODINFO_MAX + 1;
                uint8_t *info = calloc(1, big);

                ck_assert_ptr_nonnull(info);
                img = tu_module_new(info, big, 16, &len);
                expect_parse_error(img, len, -ENOEXEC);
                free(img);
                free(info);
        }
}
END_TEST

/* --- vermagic --- */

START_TEST(test_vermagic_release) {
        static const char *const bad[] = { "", " 6.1.0", "../x", "a/b", "/", ".", "..", "../../etc SMP" };
        char *r = NULL;

        ck_assert_int_eq(module_vermagic_release("6.1.0-1-amd64 SMP mod_unload ", &r), 0);
        ck_assert_str_eq(r, "6.1.0-1-amd64");
        free(r);
        r = NULL;
        ck_assert_int_eq(module_vermagic_release("6.12.0-rc1+", &r), 0);
        ck_assert_str_eq(r, "6.12.0-rc1+");
        free(r);
        r = NULL;
        ck_assert_int_eq(module_vermagic_release("6.1.0\tSMP", &r), 0);
        ck_assert_str_eq(r, "6.1.0");
        free(r);

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char *untouched = (char *) "untouched";

                r = untouched;
                ck_assert_msg(module_vermagic_release(bad[i], &r) < 0, "'%s' accepted as a release", bad[i]);
                ck_assert_ptr_eq(r, untouched);
        }
        r = (char *) "untouched";
        ck_assert_int_lt(module_vermagic_release(NULL, &r), 0);
        ck_assert_str_eq(r, "untouched");
}
END_TEST

static Suite *module_suite(void) {
        Suite *s = suite_create("module");
        TCase *tc;

        tc = tu_tcase("parse");
        tcase_add_test(tc, test_parse_ok);
        tcase_add_test(tc, test_parse_all_fields);
        tcase_add_test(tc, test_parse_modinfo_edge_cases);
        tcase_add_test(tc, test_parse_fd);
        tcase_add_test(tc, test_data_read_bounds);
        suite_add_tcase(s, tc);

        tc = tu_tcase("trailer");
        tcase_add_test(tc, test_empty);
        tcase_add_test(tc, test_magic_only);
        tcase_add_test(tc, test_sig_len_overflow);
        tcase_add_test(tc, test_wrong_id_type);
        tcase_add_loop_test(tc, test_reserved_nonzero, 0, (int) (sizeof(reserved_idx) / sizeof(reserved_idx[0])));
        tcase_add_test(tc, test_sig_len_zero);
        tcase_add_test(tc, test_truncated_sig_region);
        tcase_add_test(tc, test_stacked_two);
        tcase_add_test(tc, test_stacked_max);
        tcase_add_test(tc, test_stacked_inner_malformed);
        tcase_add_test(tc, test_trailer_build_roundtrip);
        tcase_add_test(tc, test_trailer_absent);
        suite_add_tcase(s, tc);

        tc = tu_tcase("elf");
        tcase_add_test(tc, test_not_elf);
        tcase_add_test(tc, test_elf_ident);
        tcase_add_test(tc, test_elf_type);
        tcase_add_test(tc, test_shoff_beyond_end);
        tcase_add_test(tc, test_shtable_overflow);
        tcase_add_test(tc, test_shstrndx_out_of_range);
        tcase_add_test(tc, test_section_past_end);
        tcase_add_test(tc, test_nobits_not_bounds_checked);
        tcase_add_test(tc, test_sh_name_out_of_range);
        tcase_add_test(tc, test_missing_modinfo);
        suite_add_tcase(s, tc);

        tc = tu_tcase("vermagic");
        tcase_add_test(tc, test_vermagic_release);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tu_run_suite(module_suite());
}
