/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "macro.h"
#include "sign.h"

struct parse_ctx {
        struct config *config;
        char *error; /* the first error, without file and line (inih tells the line) */
};

static const char *const policy_mode_names[] = {
        [POLICY_MODE_DKMS] = "dkms",
        [POLICY_MODE_ALLOWLIST] = "allowlist",
        [POLICY_MODE_APPROVE] = "approve",
};

const char *policy_mode_to_string(enum policy_mode m) {
        return (size_t) m < ELEMENTSOF(policy_mode_names) ? policy_mode_names[m] : NULL;
}

static void strv_clear(struct strv *v) {
        for (size_t i = 0; i < v->n; i++)
                free(v->items[i]);
        free(v->items);
        *v = (struct strv) {};
}

static int strv_push(struct strv *v, const char *s) {
        char **items = realloc(v->items, sizeof(char *) * (v->n + 1));
        if (!items)
                return -ENOMEM;
        v->items = items;
        v->items[v->n] = strdup(s);
        if (!v->items[v->n])
                return -ENOMEM;
        v->n++;
        return 0;
}

static int set_string(char **field, const char *value) {
        char *s = strdup(value);
        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

static int parse_bool(const char *v, bool *ret) {
        static const char *const yes[] = { "1", "yes", "true", "on" }, *const no[] = { "0", "no", "false", "off" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(v, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(v, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        return -EINVAL;
}

_printf_(2, 3) static int fail(struct parse_ctx *ctx, const char *fmt, ...) {
        va_list ap;

        if (!ctx->error) {
                va_start(ap, fmt);
                if (vasprintf(&ctx->error, fmt, ap) < 0)
                        ctx->error = NULL;
                va_end(ap);
        }
        return 0; /* inih: 0 = error on this line */
}

int config_parse_rate(const char *v, unsigned *ret_tokens, uint64_t *ret_interval_usec) {
        static const struct {
                const char *name;
                uint64_t usec;
        } units[] = {
                { "s", 1000000ULL },          { "sec", 1000000ULL },        { "second", 1000000ULL },
                { "m", 60000000ULL },         { "min", 60000000ULL },       { "minute", 60000000ULL },
                { "h", 3600000000ULL },       { "hour", 3600000000ULL },    { "d", 86400000000ULL },
                { "day", 86400000000ULL },
        };
        unsigned long n;
        char *end;

        if (!*v || streq(v, "off") || streq(v, "0")) {
                *ret_tokens = 0;
                *ret_interval_usec = 0;
                return 0;
        }
        if (*v < '0' || *v > '9')
                return -EINVAL;
        errno = 0;
        n = strtoul(v, &end, 10);
        if (errno || n == 0 || n > 1000000 || *end != '/')
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (streq(end + 1, units[i].name)) {
                        *ret_tokens = (unsigned) n;
                        *ret_interval_usec = units[i].usec;
                        return 0;
                }
        return -EINVAL;
}

int config_parse_hex_id(const char *v, char *out, size_t size) {
        size_t n = 0;

        for (const char *p = v; *p; p++) {
                if (*p == ':') {
                        /* only between pairs of digits */
                        if (p == v || !p[1] || p[1] == ':')
                                return -EINVAL;
                        continue;
                }
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F')))
                        return -EINVAL;
                if (n + 1 >= size)
                        return -EINVAL;
                out[n++] = (char) (*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
        }
        if (n == 0)
                return -EINVAL;
        out[n] = '\0';
        return 0;
}

static int path_value(struct parse_ctx *ctx, const char *key, const char *value) {
        /* Key references may be URIs of the schemes we know; plain paths must be absolute,
         * so that no working directory decides what gets read. */
        static const char *const schemes[] = { "pkcs11:", "handle:", "object:", "credential:" };

        if (value[0] == '/')
                return 1;
        for (size_t i = 0; i < ELEMENTSOF(schemes); i++)
                if (strncmp(value, schemes[i], strlen(schemes[i])) == 0 && value[strlen(schemes[i])])
                        return 1;
        return fail(ctx, "%s= needs an absolute path or a pkcs11:, handle:, object: or credential: reference, not '%s'",
                    key, value);
}

static int handler(void *user, const char *section, const char *name, const char *value) {
        struct parse_ctx *ctx = user;
        struct config *c = ctx->config;
        int r = 0;

        if (!name) /* a section header alone: checked when its first key comes */
                return 1;

#define KEY(s, n) (streq(section, s) && streq(name, n))
        if (KEY("Key", "PrivateKey")) {
                if (!path_value(ctx, name, value))
                        return 0;
                r = set_string(&c->private_key, value);
        } else if (KEY("Key", "Certificate")) {
                if (value[0] != '/')
                        return fail(ctx, "%s= needs an absolute path, not '%s'", name, value);
                r = set_string(&c->certificate, value);
        } else if (KEY("Key", "PinFile")) {
                if (!*value) {
                        free(c->pin_file);
                        c->pin_file = NULL;
                        return 1;
                }
                if (!path_value(ctx, name, value))
                        return 0;
                r = set_string(&c->pin_file, value);
        } else if (KEY("Signing", "Hash")) {
                if (!streq(value, "auto") && hash_classify(value) != HASH_STRONG)
                        return fail(ctx, "%s=%s: use auto, sha256, sha384 or sha512", name, value);
                r = set_string(&c->hash, value);
        } else if (KEY("Signing", "KeyId")) {
                if (parse_bool(value, &c->key_id) < 0)
                        return fail(ctx, "%s=%s: not a boolean (yes or no)", name, value);
        } else if (KEY("Watch", "Path")) {
                if (!*value)
                        strv_clear(&c->watch_paths);
                else if (value[0] != '/')
                        return fail(ctx, "%s= needs an absolute path, not '%s'", name, value);
                else
                        r = strv_push(&c->watch_paths, value);
        } else if (KEY("Policy", "Mode")) {
                size_t i;
                for (i = 0; i < ELEMENTSOF(policy_mode_names); i++)
                        if (streq(value, policy_mode_names[i]))
                                break;
                if (i == ELEMENTSOF(policy_mode_names))
                        return fail(ctx, "%s=%s: use dkms, allowlist or approve", name, value);
                c->policy_mode = (enum policy_mode) i;
        } else if (KEY("Policy", "Allow") || KEY("Policy", "Deny")) {
                struct strv *v = streq(name, "Allow") ? &c->allow : &c->deny;
                if (!*value)
                        strv_clear(v);
                else
                        r = strv_push(v, value);
        } else if (KEY("Policy", "DkmsTree")) {
                if (value[0] != '/')
                        return fail(ctx, "%s= needs an absolute path, not '%s'", name, value);
                r = set_string(&c->dkms_tree, value);
        } else if (KEY("Policy", "TrustedCertificates")) {
                if (!*value)
                        strv_clear(&c->trusted_certificates);
                else if (value[0] != '/')
                        return fail(ctx, "%s= needs an absolute path (a certificate file or directory), not '%s'", name,
                                    value);
                else
                        r = strv_push(&c->trusted_certificates, value);
        } else if (KEY("Policy", "RevokedCertificates")) {
                char id[130];
                if (!*value)
                        strv_clear(&c->revoked_certificates);
                else if (value[0] != '/' && config_parse_hex_id(value, id, sizeof(id)) < 0)
                        return fail(ctx, "%s=%s: not a SHA-256 fingerprint or serial number (hex, ':' allowed) "
                                    "nor an absolute path to a file of them", name, value);
                else
                        r = strv_push(&c->revoked_certificates, value);
        } else if (KEY("Policy", "Blocklist")) {
                if (!*value) {
                        free(c->blocklist);
                        c->blocklist = NULL;
                        return 1;
                }
                if (value[0] != '/')
                        return fail(ctx, "%s= needs an absolute path, not '%s'", name, value);
                r = set_string(&c->blocklist, value);
        } else if (KEY("Policy", "RateLimit")) {
                if (config_parse_rate(value, &c->rate_tokens, &c->rate_interval_usec) < 0)
                        return fail(ctx, "%s=%s: use N/second, N/minute, N/hour or N/day (N from 1 to 1000000), or off",
                                    name, value);
        } else if (KEY("Daemon", "Socket")) {
                if (value[0] != '/')
                        return fail(ctx, "%s= needs an absolute path, not '%s'", name, value);
                r = set_string(&c->socket_path, value);
        } else if (KEY("Daemon", "StateDirectory")) {
                if (value[0] != '/')
                        return fail(ctx, "%s= needs an absolute path, not '%s'", name, value);
                r = set_string(&c->state_directory, value);
        } else if (KEY("Daemon", "Workers")) {
                char *end;
                unsigned long n = strtoul(value, &end, 10);
                if (!*value || *end || n > 256)
                        return fail(ctx, "%s=%s: a number from 0 (one per CPU) to 256", name, value);
                c->workers = (unsigned) n;
        } else if (!streq(section, "Key") && !streq(section, "Signing") && !streq(section, "Watch") &&
                   !streq(section, "Policy") && !streq(section, "Daemon"))
                return fail(ctx, "unknown section [%s] (key '%s')", section, name);
        else
                return fail(ctx, "unknown key '%s' in [%s]", name, section);
#undef KEY

        if (r < 0)
                return fail(ctx, "%s: out of memory", name);
        return 1;
}

int config_init_defaults(struct config *ret) {
        static const char *const default_watch[] = { "/lib/modules", "/var/lib/dkms" };
        struct config c = {
                .policy_mode = POLICY_MODE_DKMS,
                .rate_tokens = 100, /* RateLimit=100/minute */
                .rate_interval_usec = 60ULL * 1000000,
        };

        if (set_string(&c.private_key, "/etc/modsignd/signing.key") < 0 ||
            set_string(&c.certificate, "/etc/modsignd/signing.crt") < 0 || set_string(&c.hash, "auto") < 0 ||
            set_string(&c.socket_path, "/run/modsignd/io.socket") < 0 ||
            set_string(&c.state_directory, "/var/lib/modsignd") < 0 || set_string(&c.dkms_tree, "/var/lib/dkms") < 0)
                goto oom;
        for (size_t i = 0; i < ELEMENTSOF(default_watch); i++)
                if (strv_push(&c.watch_paths, default_watch[i]) < 0)
                        goto oom;
        *ret = c;
        return 0;
oom:
        config_done(&c);
        return -ENOMEM;
}

static int parse_file(FILE *f, const char *path, struct config *c, char **ret_error) {
        struct parse_ctx ctx = { .config = c };
        int line = ini_parse_file(f, handler, &ctx);

        if (line == 0)
                return 0;
        if (ret_error) {
                if (line < 0)
                        *ret_error = strdup(path); /* -1: cannot open, -2: out of memory */
                else if (asprintf(ret_error, "%s:%d: %s", path, line,
                                  ctx.error ?: "syntax error (expected [Section] or Key=Value)") < 0)
                        *ret_error = NULL;
        }
        free(ctx.error);
        return line == -2 ? -ENOMEM : -EINVAL;
}

static int parse_path(const char *path, bool may_be_missing, struct config *c, char **ret_error) {
        FILE *f = fopen(path, "re");
        int r;

        if (!f) {
                if (errno == ENOENT && may_be_missing)
                        return 0;
                r = negative_errno();
                if (ret_error && asprintf(ret_error, "%s: %s", path, strerror(-r)) < 0)
                        *ret_error = NULL;
                return r;
        }
        r = parse_file(f, path, c, ret_error);
        fclose(f);
        return r;
}

static int conf_filter(const struct dirent *de) {
        size_t n = strlen(de->d_name);
        return de->d_name[0] != '.' && n > 5 && streq(de->d_name + n - 5, ".conf");
}

int config_load(const char *main_path, bool main_required, const char *dropin_dir, struct config *ret,
                char **ret_error) {
        struct config c;
        struct dirent **entries = NULL;
        int r, n = 0;

        if (ret_error)
                *ret_error = NULL;
        r = config_init_defaults(&c);
        if (r < 0)
                return r;

        if (main_path) {
                r = parse_path(main_path, !main_required, &c, ret_error);
                if (r < 0)
                        goto fail;
        }

        if (dropin_dir) {
                n = scandir(dropin_dir, &entries, conf_filter, alphasort);
                if (n < 0) {
                        n = 0;
                        if (errno != ENOENT) {
                                r = negative_errno();
                                if (ret_error && asprintf(ret_error, "%s: %s", dropin_dir, strerror(-r)) < 0)
                                        *ret_error = NULL;
                                goto fail;
                        }
                }
                for (int i = 0; i < n; i++) {
                        _cleanup_free_ char *p = NULL;
                        if (r >= 0) {
                                if (asprintf(&p, "%s/%s", dropin_dir, entries[i]->d_name) < 0)
                                        r = -ENOMEM;
                                else
                                        r = parse_path(p, false, &c, ret_error);
                        }
                        free(entries[i]);
                }
                free(entries);
                if (r < 0)
                        goto fail;
        }

        *ret = c;
        return 0;
fail:
        config_done(&c);
        return r;
}

void config_done(struct config *c) {
        free(c->private_key);
        free(c->certificate);
        free(c->pin_file);
        free(c->hash);
        strv_clear(&c->watch_paths);
        strv_clear(&c->allow);
        strv_clear(&c->deny);
        free(c->dkms_tree);
        strv_clear(&c->trusted_certificates);
        strv_clear(&c->revoked_certificates);
        free(c->blocklist);
        free(c->socket_path);
        free(c->state_directory);
        *c = (struct config) {};
}
