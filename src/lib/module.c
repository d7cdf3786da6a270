/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "module.h"

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_ELFDATA ELFDATA2LSB
#else
#define HOST_ELFDATA ELFDATA2MSB
#endif

#if __ELF_NATIVE_CLASS == 64
#define HOST_ELFCLASS ELFCLASS64
#else
#define HOST_ELFCLASS ELFCLASS32
#endif

/* Set *ret_why (when asked for) and return the error: keeps the parsers' failure paths short. */
#define FAIL(error, why)                        \
        ({                                      \
                if (ret_why)                    \
                        *ret_why = (why);       \
                (error);                        \
        })

int module_data_read(const struct module_data *d, uint64_t offset, void *buf, size_t len) {
        uint64_t end;

        if (ADD_OVERFLOW(offset, (uint64_t) len, &end) || end > d->size)
                return -EBADMSG;
        if (len == 0)
                return 0;

        if (d->mem) {
                memcpy(buf, d->mem + offset, len);
                return 0;
        }

        for (size_t done = 0; done < len;) {
                ssize_t n = pread(d->fd, (uint8_t *) buf + done, len - done, (off_t) (offset + done));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        return -EBADMSG; /* the file shrank under us */
                done += (size_t) n;
        }
        return 0;
}

void module_sig_trailer_build(uint32_t sig_len, uint8_t out[MODULE_SIG_TRAILER_LEN]) {
        /* struct module_signature: algo, hash, id_type, signer_len, key_id_len, __pad[3], be32 sig_len */
        memset(out, 0, MODULE_SIG_INFO_LEN);
        out[2] = MODULE_SIG_PKEY_ID_PKCS7;
        out[8] = (uint8_t) (sig_len >> 24);
        out[9] = (uint8_t) (sig_len >> 16);
        out[10] = (uint8_t) (sig_len >> 8);
        out[11] = (uint8_t) sig_len;
        memcpy(out + MODULE_SIG_INFO_LEN, MODULE_SIG_MAGIC, MODULE_SIG_MAGIC_LEN);
}

int module_sig_trailer_parse(const struct module_data *d, uint64_t len, struct module_sig_trailer *ret,
                             const char **ret_why) {
        uint8_t info[MODULE_SIG_INFO_LEN];
        char magic[MODULE_SIG_MAGIC_LEN];
        uint32_t sig_len;
        int r;

        if (len > d->size)
                return FAIL(-EBADMSG, "length beyond end of data");
        if (len < MODULE_SIG_MAGIC_LEN)
                return 0;

        r = module_data_read(d, len - MODULE_SIG_MAGIC_LEN, magic, sizeof(magic));
        if (r < 0)
                return FAIL(r, "cannot read signature magic");
        if (memcmp(magic, MODULE_SIG_MAGIC, MODULE_SIG_MAGIC_LEN) != 0)
                return 0;

        if (len < MODULE_SIG_TRAILER_LEN)
                return FAIL(-EBADMSG, "signature magic without signature information");

        r = module_data_read(d, len - MODULE_SIG_TRAILER_LEN, info, sizeof(info));
        if (r < 0)
                return FAIL(r, "cannot read signature information");

        /* The kernel's mod_check_sig(): PKCS#7 only, and all the legacy fields must be zero. */
        if (info[2] != MODULE_SIG_PKEY_ID_PKCS7)
                return FAIL(-ENOPKG, "signature is not PKCS#7 (id_type is not 2)");
        if (info[0] || info[1] || info[3] || info[4] || info[5] || info[6] || info[7])
                return FAIL(-EBADMSG, "non-zero reserved field in signature information");

        sig_len = (uint32_t) info[8] << 24 | (uint32_t) info[9] << 16 | (uint32_t) info[10] << 8 | info[11];
        if (sig_len == 0)
                return FAIL(-EBADMSG, "signature length is zero");
        if ((uint64_t) sig_len >= len - MODULE_SIG_TRAILER_LEN)
                return FAIL(-EBADMSG, "signature length exceeds the file");

        *ret = (struct module_sig_trailer) {
                .sig_offset = len - MODULE_SIG_TRAILER_LEN - sig_len,
                .sig_len = sig_len,
        };
        return 1;
}

static int read_alloc(const struct module_data *d, uint64_t offset, uint64_t len, uint64_t limit, char **ret) {
        _cleanup_free_ char *buf = NULL;
        int r;

        if (len > limit)
                return -EBADMSG;
        buf = malloc(len + 1); /* NUL-terminated, so string scans stop inside the buffer */
        if (!buf)
                return -ENOMEM;
        r = module_data_read(d, offset, buf, len);
        if (r < 0)
                return r;
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        return 0;
}

/* Finds "key=value" in a .modinfo blob (NUL-separated strings) and duplicates the value. */
static int modinfo_get(const char *info, size_t len, const char *key, char **ret) {
        size_t klen = strlen(key);

        for (size_t i = 0; i < len;) {
                const char *s = info + i;
                size_t slen = strnlen(s, len - i);

                if (slen > klen && memcmp(s, key, klen) == 0 && s[klen] == '=') {
                        char *v = strndup(s + klen + 1, slen - klen - 1);
                        if (!v)
                                return -ENOMEM;
                        *ret = v;
                        return 1;
                }
                i += slen + 1;
        }
        *ret = NULL;
        return 0;
}

static int elf_check_and_read_modinfo(const struct module_data *d, uint64_t len, struct module_meta *m,
                                      const char **ret_why) {
        _cleanup_free_ ElfW(Shdr) *shdrs = NULL;
        _cleanup_free_ char *shstrtab = NULL, *modinfo = NULL;
        uint64_t table_len, table_end, modinfo_len = 0;
        ElfW(Ehdr) eh;
        bool found = false;
        int r;

        if (len < EI_NIDENT)
                return FAIL(-ENOEXEC, "too short to be an ELF file");
        if (len < sizeof(eh))
                return FAIL(-ENOEXEC, "truncated ELF header");
        r = module_data_read(d, 0, &eh, sizeof(eh));
        if (r < 0)
                return FAIL(r, "cannot read ELF header");

        if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
                return FAIL(-ENOEXEC, "not an ELF file");
        if (eh.e_ident[EI_CLASS] != HOST_ELFCLASS)
                return FAIL(-ENOEXEC, "ELF class differs from this machine's");
        if (eh.e_ident[EI_DATA] != HOST_ELFDATA)
                return FAIL(-ENOEXEC, "ELF byte order differs from this machine's");
        if (eh.e_ident[EI_VERSION] != EV_CURRENT)
                return FAIL(-ENOEXEC, "unknown ELF version");
        if (eh.e_type != ET_REL)
                return FAIL(-ENOEXEC, "not a relocatable ELF object (a kernel module is ET_REL)");
        if (eh.e_shentsize != sizeof(ElfW(Shdr)))
                return FAIL(-ENOEXEC, "unexpected ELF section header size");
        if (eh.e_shnum == 0 || eh.e_shstrndx == SHN_UNDEF || eh.e_shstrndx >= eh.e_shnum)
                return FAIL(-ENOEXEC, "ELF file without a usable section table");

        table_len = (uint64_t) eh.e_shnum * sizeof(ElfW(Shdr));
        if (ADD_OVERFLOW((uint64_t) eh.e_shoff, table_len, &table_end) || table_end > len)
                return FAIL(-ENOEXEC, "ELF section table lies beyond the end of the file (truncated?)");

        shdrs = malloc(table_len);
        if (!shdrs)
                return -ENOMEM;
        r = module_data_read(d, eh.e_shoff, shdrs, table_len);
        if (r < 0)
                return FAIL(r, "cannot read ELF section table");

        /* Every section with file contents must lie inside the ELF image. */
        for (unsigned i = 0; i < eh.e_shnum; i++) {
                uint64_t end;

                if (shdrs[i].sh_type == SHT_NOBITS || shdrs[i].sh_type == SHT_NULL)
                        continue;
                if (ADD_OVERFLOW((uint64_t) shdrs[i].sh_offset, (uint64_t) shdrs[i].sh_size, &end) || end > len)
                        return FAIL(-ENOEXEC, "ELF section lies beyond the end of the file (truncated?)");
        }

        const ElfW(Shdr) *strsec = &shdrs[eh.e_shstrndx];
        if (strsec->sh_type != SHT_STRTAB)
                return FAIL(-ENOEXEC, "ELF section name table is not a string table");
        r = read_alloc(d, strsec->sh_offset, strsec->sh_size, MODULE_MODINFO_MAX, &shstrtab);
        if (r < 0)
                return FAIL(r == -ENOMEM ? r : -ENOEXEC, "cannot read ELF section names");

        for (unsigned i = 0; i < eh.e_shnum; i++) {
                if (shdrs[i].sh_name >= strsec->sh_size)
                        return FAIL(-ENOEXEC, "ELF section name out of range");
                if (!streq(shstrtab + shdrs[i].sh_name, ".modinfo"))
                        continue;
                if (shdrs[i].sh_type != SHT_PROGBITS)
                        return FAIL(-ENOEXEC, ".modinfo section has no contents");
                r = read_alloc(d, shdrs[i].sh_offset, shdrs[i].sh_size, MODULE_MODINFO_MAX, &modinfo);
                if (r < 0)
                        return FAIL(r == -ENOMEM ? r : -ENOEXEC, ".modinfo section too large");
                modinfo_len = shdrs[i].sh_size;
                found = true;
                break;
        }
        if (!found)
                return FAIL(-ENOEXEC, "no .modinfo section: not a kernel module");

        m->elf_machine = eh.e_machine;
        if (modinfo_get(modinfo, modinfo_len, "name", &m->name) < 0 ||
            modinfo_get(modinfo, modinfo_len, "vermagic", &m->vermagic) < 0 ||
            modinfo_get(modinfo, modinfo_len, "version", &m->version) < 0 ||
            modinfo_get(modinfo, modinfo_len, "srcversion", &m->srcversion) < 0)
                return -ENOMEM;
        return 0;
}

void module_meta_done(struct module_meta *m) {
        free(m->name);
        free(m->vermagic);
        free(m->version);
        free(m->srcversion);
        *m = (struct module_meta) {};
}

int module_parse(const struct module_data *d, struct module_meta *ret, const char **ret_why) {
        struct module_meta m = { .size = d->size };
        uint64_t len = d->size;
        int r;

        /* Peel signatures from the outside in: the kernel checks only the outermost one, and
         * anything stacked below it is part of what that one signed. */
        for (;;) {
                struct module_sig_trailer t;

                r = module_sig_trailer_parse(d, len, &t, ret_why);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                if (m.n_signatures == 0)
                        m.last_sig = t;
                if (++m.n_signatures > MODULE_SIG_MAX_STACKED)
                        return FAIL(-EBADMSG, "too many stacked signatures");
                len = t.sig_offset;
        }
        m.body_len = len;

        r = elf_check_and_read_modinfo(d, len, &m, ret_why);
        if (r < 0) {
                module_meta_done(&m);
                return r;
        }

        *ret = m;
        return 0;
}

int module_vermagic_release(const char *vermagic, char **ret) {
        size_t n;
        char *s;

        if (!vermagic)
                return -ENODATA;
        n = strcspn(vermagic, " \t");
        if (n == 0)
                return -EINVAL;
        /* A release is a path component under /lib/modules: refuse anything that could escape. */
        if (memchr(vermagic, '/', n) || (n <= 2 && vermagic[0] == '.'))
                return -EINVAL;
        s = strndup(vermagic, n);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}
