/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* RateLimit='s token bucket, shared by every signer of the machine: the daemon (all its
 * requesters) and each modsignctl process that signs with the gate (sign, dkms-sign-file,
 * dkms-check --sign) charge one file, STATE_DIRECTORY/ratelimit, so that a new process does
 * not start with a full bucket of its own.
 *
 * FORMAT. One line, "v1 MICROTOKENS LAST_USEC\n": the tokens left, in millionths, and when
 * they were counted (CLOCK_REALTIME, microseconds since the epoch; wall clock, because
 * processes and boots come and go). A missing or empty file is a full bucket; one that does
 * not parse is an empty one (fail closed), rewritten at the next charge. A clock set back
 * refills nothing until the next charge, from which the bucket counts again.
 *
 * LOCKING. Each decision opens the file (openat() in the state directory, O_NOFOLLOW, created
 * 0600, refused when it is not a regular file of ours or is writable by others), takes an
 * exclusive flock(), reads the bucket, decides, writes the bucket back in place and closes
 * (which unlocks). The file is never replaced (the lock is on its inode) and not fsync()ed: a
 * crash loses at most the last charges, which the audit log records anyway.
 *
 * No logging; negative errno. */

#include "policy.h"

#define POLICY_RATE_FILE "ratelimit"

/* policy_decide() with the shared bucket of state_dir. The file is touched only when a token
 * is due: not without RateLimit= (rate_tokens 0), not for a refusal by another rule, not for a
 * module already ours. When it cannot be used, the decision becomes a refusal by rule
 * "rate-limit" saying why (fail closed), and the error is returned. f->now_usec must be
 * CLOCK_REALTIME (policy_gather() does so). */
int policy_decide_shared(const struct policy *p, const struct policy_facts *f, const char *state_dir,
                         struct policy_decision *d);

/* The file's text <-> a bucket (for tests). Parsing fails with -EBADMSG. */
int policy_rate_parse(const char *text, size_t len, struct policy_rate *ret);
int policy_rate_format(const struct policy_rate *r, char *buf, size_t size);
