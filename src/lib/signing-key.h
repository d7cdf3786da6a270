/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The daemon's key, loaded once and kept: the signer (private key and certificate), the
 * certificate's fingerprint, and how to pick the hash. Reference-counted, because a reload
 * swaps it while workers may still be signing with the old one. */

#include "conf.h"
#include "sign.h"

struct signing_key {
        int n_ref;
        struct signer *signer;
        char fingerprint[65];
        char *hash;     /* "auto" or a hash name */
};

/* Loads the key named by the configuration: PrivateKey= is any key reference (a file,
 * credential:NAME, pkcs11:URI, handle:0x81..., object:PATH; key-backend.h), PinFile= its PIN
 * or passphrase. Key and PIN files must be root-owned, mode 0600 or 0400, not symlinks. On
 * failure *ret_error gets a message that names the key or file and the fix. */
int signing_key_load(const struct config *c, struct signing_key **ret, char **ret_error);
struct signing_key *signing_key_ref(struct signing_key *k);
void signing_key_unref(struct signing_key *k);

/* The hash to sign a module of kernel 'release' with: the request's, else the configured one,
 * with "auto" looked up in the kernel's configuration (sha512 when it says nothing).
 * Returns a new string. */
int signing_key_pick_hash(const struct signing_key *k, const char *requested, const char *release, char **ret);
