/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The modsignd socket protocol: encoding and decoding only, no I/O.
 *
 * One message is one SOCK_SEQPACKET packet:
 *   header  : magic "MSGD" | u16 version | u16 type | u32 payload length   (big-endian)
 *   payload : fields, each u16 tag | u16 length | bytes                     (big-endian)
 * A SIGN request carries the module's fd alongside, as SCM_RIGHTS; the daemon reads the module
 * from that fd and never opens a path a client names. Every length is checked against the
 * packet: a decoder never reads past what it was given, and refuses unknown versions, unknown
 * types, duplicate or unknown tags, and strings with a NUL byte inside. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_MAGIC "MSGD"
#define PROTO_VERSION 1
#define PROTO_HEADER_LEN 12
#define PROTO_MAX_PACKET (64U * 1024U)
#define PROTO_MAX_STRING 4096U

enum proto_type {
        PROTO_REQ_SIGN = 1,   /* fd + HASH + KERNEL + NAME: the daemon answers with the trailer */
        PROTO_REQ_SCAN = 2,   /* PATH or KERNEL: sign stragglers, answer with counts */
        PROTO_REQ_STATUS = 3,
        PROTO_REQ_RELOAD = 4,
        PROTO_REPLY_OK = 0x80,
        PROTO_REPLY_ERROR = 0x81, /* ERRNO + MESSAGE (+ RULE when the policy refused) */
};

enum proto_tag {
        PROTO_TAG_HASH = 1,      /* string: sha256, sha384, sha512 or auto */
        PROTO_TAG_KERNEL = 2,    /* string: a kernel release */
        PROTO_TAG_NAME = 3,      /* string: the module's file name, for policy and logs */
        PROTO_TAG_PATH = 4,      /* string: a tree to scan */
        PROTO_TAG_ERRNO = 5,     /* u32: positive errno */
        PROTO_TAG_MESSAGE = 6,   /* string */
        PROTO_TAG_TRAILER = 7,   /* bytes: PKCS#7 + module_signature + magic, to append */
        PROTO_TAG_JSON = 8,      /* string: STATUS and SCAN details */
        PROTO_TAG_RULE = 9,      /* string: the policy rule that refused */
        PROTO_TAG_BODY_LEN = 10, /* u64: bytes of the module to keep (an old signature beyond is dropped) */
        PROTO_TAG_ORIGIN = 11,   /* string: "dkms" when the DKMS shim signs during a build (an assertion, audited) */
        PROTO_TAG_DKMS_PATH = 12, /* string: with ORIGIN=dkms, the module's path in the DKMS build directory */
        _PROTO_TAG_MAX,
};

struct proto_field {
        const uint8_t *data; /* points into the decoded packet; NULL when absent */
        uint16_t len;
};

struct proto_message {
        enum proto_type type;
        struct proto_field fields[_PROTO_TAG_MAX];
};

/* A message under construction, in a caller-provided buffer of PROTO_MAX_PACKET bytes. */
struct proto_writer {
        uint8_t *buf;
        size_t len;
        bool overflow;
};

void proto_writer_init(struct proto_writer *w, uint8_t *buf, enum proto_type type);
void proto_put_bytes(struct proto_writer *w, enum proto_tag tag, const void *data, size_t len);
void proto_put_string(struct proto_writer *w, enum proto_tag tag, const char *s);
void proto_put_u32(struct proto_writer *w, enum proto_tag tag, uint32_t v);
void proto_put_u64(struct proto_writer *w, enum proto_tag tag, uint64_t v);
/* Fills in the payload length; returns the packet length, or -EMSGSIZE when it did not fit. */
int proto_writer_finish(struct proto_writer *w, size_t *ret_len);

/* Decodes one packet. -EBADMSG: malformed; -EPROTONOSUPPORT: another version; -EOPNOTSUPP:
 * unknown type. *ret points into 'buf', which must outlive it. */
int proto_decode(const uint8_t *buf, size_t len, struct proto_message *ret);

/* Copies a string field into a new NUL-terminated string; -ENODATA when absent, -EBADMSG when
 * it holds a NUL byte. */
int proto_get_string(const struct proto_message *m, enum proto_tag tag, char **ret);
int proto_get_u32(const struct proto_message *m, enum proto_tag tag, uint32_t *ret);
int proto_get_u64(const struct proto_message *m, enum proto_tag tag, uint64_t *ret);
