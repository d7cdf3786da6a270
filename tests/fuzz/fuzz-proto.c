/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer harness: the socket protocol decoder, fed whatever a client might send, and the
 * encoder round trip of whatever the decoder accepted. */
#include <config.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static uint8_t out[PROTO_MAX_PACKET];
        struct proto_message m, again;
        struct proto_writer w;
        size_t len;

        if (proto_decode(data, size, &m) < 0)
                return 0;

        for (unsigned tag = 1; tag < _PROTO_TAG_MAX; tag++) {
                char *s = NULL;
                uint32_t v;
                uint64_t v64;

                if (proto_get_string(&m, (enum proto_tag) tag, &s) >= 0)
                        free(s);
                (void) proto_get_u32(&m, (enum proto_tag) tag, &v);
                (void) proto_get_u64(&m, (enum proto_tag) tag, &v64);
        }

        /* Re-encoding what was accepted must give a packet that decodes to the same fields. */
        proto_writer_init(&w, out, m.type);
        for (unsigned tag = 1; tag < _PROTO_TAG_MAX; tag++)
                if (m.fields[tag].data)
                        proto_put_bytes(&w, (enum proto_tag) tag, m.fields[tag].data, m.fields[tag].len);
        if (proto_writer_finish(&w, &len) < 0 || proto_decode(out, len, &again) < 0)
                abort();
        for (unsigned tag = 1; tag < _PROTO_TAG_MAX; tag++)
                if (again.fields[tag].len != m.fields[tag].len ||
                    (m.fields[tag].len && memcmp(again.fields[tag].data, m.fields[tag].data, m.fields[tag].len)))
                        abort();
        return 0;
}
