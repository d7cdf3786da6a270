/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

/* SHA-256 of a buffer, as lowercase hex. */
int digest_sha256_hex(const void *buf, size_t len, char ret[65]);

/* Finishes a copy of a SHA-256 state after feeding it 'extra' (may be empty), as lowercase
 * hex; the state itself stays as it was. */
int digest_sha256_state_hex(const EVP_MD_CTX *state, const void *extra, size_t extra_len, char ret[65]);

/* SHA-256 of a whole file from its start, as lowercase hex: what the audit trail records. */
int digest_fd_sha256(int fd, char ret[65]);
