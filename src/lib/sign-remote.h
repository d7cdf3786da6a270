/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Signing a module through modsignd: the synchronous path of the DKMS shim.
 *
 * The module is opened beside its directory fd without following a symlink; its fd (never
 * its path) goes to the daemon in a SIGN request; the daemon reads it, applies its policy and
 * answers with the signature trailer and how many bytes of the module to keep. The signed
 * module (those bytes, then the trailer) is written through replace.h: beside the original,
 * fsynced, renamed over it only if the original is still the file that was sent. The key
 * never comes near this process. No logging; negative errno. */

#include <stddef.h>

struct sign_remote_reply {
        int error;      /* the daemon's refusal or failure (negative errno), 0 when it signed */
        char *message;  /* the daemon's explanation of error */
        char *rule;     /* the policy rule that refused, when one did */
        char *hash;     /* the hash the daemon signed with */
        size_t sig_len; /* bytes appended: PKCS#7, module_signature and magic */
};

/* Returns 0 when the daemon answered: then reply->error says whether it signed (and the file
 * was replaced) or why not. A negative return is a local or transport failure:
 * -ENOENT/-ECONNREFUSED no daemon listens on socket_path; -ETIMEDOUT no answer within
 * timeout_ms; -ESTALE the module changed meanwhile (nothing written); -EBADMSG an answer that
 * does not fit the module. hash and kernel may be NULL (the daemon decides). */
int sign_remote(const char *socket_path, int dir_fd, const char *name, const char *hash, const char *kernel,
                int timeout_ms, struct sign_remote_reply *reply);
/* The same, saying that the DKMS shim signs during a DKMS build (ORIGIN=dkms) and where the
 * module lies in the build directory (dkms_path, absolute): the daemon's policy takes the
 * word, audits it, and believes the path only when it is the file whose fd it got. */
int sign_remote_dkms(const char *socket_path, int dir_fd, const char *name, const char *hash, const char *kernel,
                     const char *dkms_path, int timeout_ms, struct sign_remote_reply *reply);
void sign_remote_reply_done(struct sign_remote_reply *reply);
