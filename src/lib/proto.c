/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "proto.h"

static void put_be16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) (v >> 8);
        p[1] = (uint8_t) v;
}

static void put_be32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t) (v >> 24);
        p[1] = (uint8_t) (v >> 16);
        p[2] = (uint8_t) (v >> 8);
        p[3] = (uint8_t) v;
}

static uint16_t get_be16(const uint8_t *p) {
        return (uint16_t) (p[0] << 8 | p[1]);
}

static uint32_t get_be32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

void proto_writer_init(struct proto_writer *w, uint8_t *buf, enum proto_type type) {
        *w = (struct proto_writer) { .buf = buf, .len = PROTO_HEADER_LEN };
        memcpy(buf, PROTO_MAGIC, 4);
        put_be16(buf + 4, PROTO_VERSION);
        put_be16(buf + 6, (uint16_t) type);
        put_be32(buf + 8, 0);
}

void proto_put_bytes(struct proto_writer *w, enum proto_tag tag, const void *data, size_t len) {
        if (w->overflow || len > UINT16_MAX || w->len + 4 + len > PROTO_MAX_PACKET) {
                w->overflow = true;
                return;
        }
        put_be16(w->buf + w->len, (uint16_t) tag);
        put_be16(w->buf + w->len + 2, (uint16_t) len);
        if (len > 0)
                memcpy(w->buf + w->len + 4, data, len);
        w->len += 4 + len;
}

void proto_put_string(struct proto_writer *w, enum proto_tag tag, const char *s) {
        if (s)
                proto_put_bytes(w, tag, s, strlen(s));
}

void proto_put_u32(struct proto_writer *w, enum proto_tag tag, uint32_t v) {
        uint8_t b[4];

        put_be32(b, v);
        proto_put_bytes(w, tag, b, sizeof(b));
}

void proto_put_u64(struct proto_writer *w, enum proto_tag tag, uint64_t v) {
        uint8_t b[8];

        put_be32(b, (uint32_t) (v >> 32));
        put_be32(b + 4, (uint32_t) v);
        proto_put_bytes(w, tag, b, sizeof(b));
}

int proto_writer_finish(struct proto_writer *w, size_t *ret_len) {
        if (w->overflow)
                return -EMSGSIZE;
        put_be32(w->buf + 8, (uint32_t) (w->len - PROTO_HEADER_LEN));
        *ret_len = w->len;
        return 0;
}

static bool type_is_known(uint16_t t) {
        switch (t) {
        case PROTO_REQ_SIGN:
        case PROTO_REQ_SCAN:
        case PROTO_REQ_STATUS:
        case PROTO_REQ_RELOAD:
        case PROTO_REPLY_OK:
        case PROTO_REPLY_ERROR:
                return true;
        default:
                return false;
        }
}

int proto_decode(const uint8_t *buf, size_t len, struct proto_message *ret) {
        struct proto_message m = {};
        uint16_t type;
        size_t pos;

        if (len < PROTO_HEADER_LEN || len > PROTO_MAX_PACKET || memcmp(buf, PROTO_MAGIC, 4) != 0)
                return -EBADMSG;
        if (get_be16(buf + 4) != PROTO_VERSION)
                return -EPROTONOSUPPORT;
        type = get_be16(buf + 6);
        if (!type_is_known(type))
                return -EOPNOTSUPP;
        if (get_be32(buf + 8) != len - PROTO_HEADER_LEN)
                return -EBADMSG;
        m.type = (enum proto_type) type;

        for (pos = PROTO_HEADER_LEN; pos < len;) {
                uint16_t tag, flen;

                if (len - pos < 4)
                        return -EBADMSG;
                tag = get_be16(buf + pos);
                flen = get_be16(buf + pos + 2);
                pos += 4;
                if (flen > len - pos)
                        return -EBADMSG;
                if (tag == 0 || tag >= _PROTO_TAG_MAX || m.fields[tag].data)
                        return -EBADMSG; /* unknown or repeated */
                m.fields[tag] = (struct proto_field) { .data = buf + pos, .len = flen };
                pos += flen;
        }

        *ret = m;
        return 0;
}

int proto_get_string(const struct proto_message *m, enum proto_tag tag, char **ret) {
        const struct proto_field *f;
        char *s;

        if ((unsigned) tag >= _PROTO_TAG_MAX || !m->fields[tag].data)
                return -ENODATA;
        f = &m->fields[tag];
        if (f->len > PROTO_MAX_STRING || memchr(f->data, 0, f->len))
                return -EBADMSG;
        s = strndup((const char *) f->data, f->len);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int proto_get_u32(const struct proto_message *m, enum proto_tag tag, uint32_t *ret) {
        if ((unsigned) tag >= _PROTO_TAG_MAX || !m->fields[tag].data)
                return -ENODATA;
        if (m->fields[tag].len != 4)
                return -EBADMSG;
        *ret = get_be32(m->fields[tag].data);
        return 0;
}

int proto_get_u64(const struct proto_message *m, enum proto_tag tag, uint64_t *ret) {
        if ((unsigned) tag >= _PROTO_TAG_MAX || !m->fields[tag].data)
                return -ENODATA;
        if (m->fields[tag].len != 8)
                return -EBADMSG;
        *ret = (uint64_t) get_be32(m->fields[tag].data) << 32 | get_be32(m->fields[tag].data + 4);
        return 0;
}
