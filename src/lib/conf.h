/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* modsignd.conf(5) (this file is conf.h, not config.h, which autoconf owns): INI files read with libinih. The main file is read first, then every
 * *.conf in the drop-in directory in lexical order; later assignments win, and list keys
 * (Path=, Allow=, Deny=, TrustedCertificates=, RevokedCertificates=) accumulate, an empty assignment clearing the list. An unknown
 * section or key, or a bad value, is an error that names the file and the line. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_DEFAULT_FILE "/etc/modsignd/modsignd.conf"
#define CONFIG_DEFAULT_DROPIN_DIR "/etc/modsignd/modsignd.conf.d"

enum policy_mode {
        POLICY_MODE_DKMS,
        POLICY_MODE_ALLOWLIST,
        POLICY_MODE_APPROVE,
};

struct strv {
        char **items;
        size_t n;
};

struct config {
        /* [Key] */
        char *private_key;
        char *certificate;
        char *pin_file;
        /* [Signing] */
        char *hash;          /* "auto" or a hash name */
        bool key_id;
        /* [Watch] */
        struct strv watch_paths;
        /* [Policy] */
        enum policy_mode policy_mode;
        struct strv allow;
        struct strv deny;
        char *dkms_tree;                  /* DkmsTree=: where DKMS keeps its packages */
        struct strv trusted_certificates; /* TrustedCertificates=: files or directories */
        struct strv revoked_certificates; /* RevokedCertificates=: fingerprints, serials or files */
        char *blocklist;                  /* Blocklist=: a file, or NULL */
        unsigned rate_tokens;             /* RateLimit=N/interval; 0 = no limit */
        uint64_t rate_interval_usec;
        /* [Daemon] */
        char *socket_path;
        char *state_directory;
        unsigned workers;    /* 0 = one per CPU */
};

/* Fills *ret with the built-in defaults. */
int config_init_defaults(struct config *ret);

/* Loads main_path and the drop-ins of dropin_dir (NULL for none) on top of the defaults. A
 * missing main file is fine (defaults) unless main_required. On failure *ret_error (optional) gets a newly allocated
 * message such as "/etc/modsignd/modsignd.conf:7: unknown key 'Hsh' in [Signing]". */
int config_load(const char *main_path, bool main_required, const char *dropin_dir, struct config *ret,
                char **ret_error);
void config_done(struct config *c);

const char *policy_mode_to_string(enum policy_mode m);

/* RateLimit= values: "N/second", "N/minute", "N/hour", "N/day" (also s, sec, m, min, h, d),
 * or "off"/"0"/"" for no limit. */
int config_parse_rate(const char *v, unsigned *ret_tokens, uint64_t *ret_interval_usec);
/* A certificate fingerprint or serial as RevokedCertificates= takes it: hex, optionally with
 * ':' between bytes. Writes the lowercase hex without ':' (leading zeros kept) to out. */
int config_parse_hex_id(const char *v, char *out, size_t size);
