/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* SHA-256 of a whole file from its start, as lowercase hex: what the audit trail records. */
int digest_fd_sha256(int fd, char ret[65]);
