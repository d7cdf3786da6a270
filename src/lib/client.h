/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Talking to modsignd over its socket: connect, send one request (optionally with an fd),
 * wait a bounded time for one reply. No logging; negative errno. */

#include <stddef.h>
#include <stdint.h>

#define CLIENT_DEFAULT_SOCKET "/run/modsignd/io.socket"

/* -ENOENT / -ECONNREFUSED: no daemon listening there. */
int client_connect(const char *path, int *ret_fd);

/* Sends 'req' (with pass_fd as SCM_RIGHTS when >= 0) and receives one reply into 'reply',
 * which has room for PROTO_MAX_PACKET bytes. -ETIMEDOUT after timeout_ms, -ECONNRESET when
 * the daemon closed the connection. */
int client_call(int fd, const uint8_t *req, size_t req_len, int pass_fd, int timeout_ms, uint8_t *reply,
                size_t *ret_reply_len);

/* The two halves of client_call(), for a caller with work of its own to do while the daemon
 * works on the request (the DKMS shim copies the module meanwhile). */
int client_send(int fd, const uint8_t *req, size_t req_len, int pass_fd);
int client_receive(int fd, int timeout_ms, uint8_t *reply, size_t *ret_reply_len);
