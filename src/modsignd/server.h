/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The root-only socket: AF_UNIX SOCK_SEQPACKET, from socket activation or made here at the
 * configured path with mode 0600. One request at a time per connection; a malformed request
 * gets an error reply and the connection is closed, while every other client is served on. */

struct daemon;
struct server;

int server_new(struct daemon *d, struct server **ret);
void server_free(struct server *s);
