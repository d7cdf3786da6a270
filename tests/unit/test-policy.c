/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* policy.c: the signing gate's pure decision, one rule and one mode at a time; and what
 * policy-facts.c and conf.c feed it (dkms.conf, DKMS paths, certificate usages, [Policy] keys,
 * the blocklist and revocation files). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "keyring.h"
#include "macro.h"
#include "module-file.h"
#include "policy-facts.h"
#include "policy-rate.h"
#include "policy.h"
#include "unit-util.h"

#define FPR "aa00000000000000000000000000000000000000000000000000000000000001"
#define SHA "bb00000000000000000000000000000000000000000000000000000000000002"

/* Facts that pass every rule in every mode but the mode rule itself: an unsigned DKMS tree
 * module of an installed kernel, root's, in a root-only directory, a good certificate. */
static struct policy_facts good(void) {
        return (struct policy_facts) {
                .requester = POLICY_REQUESTER_WATCHER,
                .module_name = "v4l2loopback",
                .path = "/var/lib/dkms/v4l2loopback/0.12/6.1.0-1-amd64/x86_64/module/v4l2loopback.ko",
                .is_module = true,
                .release = "6.1.0-1-amd64",
                .kernel_installed = true,
                .have_owner = true,
                .file_uid = 0,
                .have_dir = true,
                .dir_uid = 0,
                .dir_mode = S_IFDIR | 0755,
                .sha256 = SHA,
                .signature = POLICY_SIG_NONE,
                .dkms_place = POLICY_DKMS_TREE,
                .dkms_package = "v4l2loopback",
                .dkms_version = "0.12",
                .dkms_registered = true,
                .cert = {
                        .known = true,
                        .not_before = 1000,
                        .not_after = 4000000000,
                        .fingerprint = FPR,
                        .serial = "1234abcd",
                        .has_eku = true,
                        .eku_code_signing = true,
                        .has_key_usage = true,
                        .key_usage_digital_signature = true,
                },
                .now = 1700000000,
                .now_usec = 1000000,
        };
}

static char *allow_star[] = { (char *) "*" };

static void expect(const struct policy *p, const struct policy_facts *f, bool allow, const char *rule) {
        struct policy_decision d;

        policy_decide(p, f, NULL, &d);
        ck_assert_msg(d.allow == allow && streq_ptr(d.rule, rule), "expected %s (%s), got %s (%s): %s",
                      allow ? "allow" : "refuse", rule, d.allow ? "allow" : "refuse", d.rule, d.reason);
        ck_assert_msg(d.reason[0], "no reason given for %s", d.rule);
}

#define REFUSED(p, f, rule) expect(p, f, false, rule)
#define ALLOWED(p, f, rule) expect(p, f, true, rule)

/* --- the rules that refuse in every mode ---------------------------------------------------- */

static const struct policy modes[] = {
        { .mode = POLICY_MODE_DKMS },
        { .mode = POLICY_MODE_ALLOWLIST, .allow = allow_star, .n_allow = 1 },
        { .mode = POLICY_MODE_APPROVE },
};

/* Each rule refuses in each mode, and for each requester (approved in approve mode, so that
 * only the rule under test can refuse). */
static void refused_everywhere(void (*mutate)(struct policy_facts *f), const char *rule) {
        for (size_t i = 0; i < ELEMENTSOF(modes); i++)
                for (int q = 0; q < _POLICY_REQUESTER_MAX; q++) {
                        struct policy_facts f = good();
                        f.approved = true;
                        f.requester = (enum policy_requester) q;
                        mutate(&f);
                        REFUSED(&modes[i], &f, rule);
                }
}

static void m_not_module(struct policy_facts *f) { f->is_module = false; }
static void m_no_release(struct policy_facts *f) { f->release = NULL; }
static void m_not_installed(struct policy_facts *f) { f->kernel_installed = false; }
static void m_owner(struct policy_facts *f) { f->file_uid = 1000; }
static void m_dir_group(struct policy_facts *f) { f->dir_mode = S_IFDIR | 0775; }
static void m_dir_world(struct policy_facts *f) { f->dir_mode = S_IFDIR | 01777; }
static void m_expired(struct policy_facts *f) { f->now = 4000000001; }
static void m_not_yet(struct policy_facts *f) { f->now = 999; }
static void m_eku(struct policy_facts *f) { f->cert.eku_code_signing = false; }
static void m_ku(struct policy_facts *f) { f->cert.key_usage_digital_signature = false; }
static void m_trusted(struct policy_facts *f) { f->signature = POLICY_SIG_TRUSTED; }
static void m_weak(struct policy_facts *f) { f->hash = "sha1"; }
static void m_bad_hash(struct policy_facts *f) { f->hash = "md5"; }

START_TEST(test_not_a_module) { refused_everywhere(m_not_module, "not-a-module"); }
END_TEST
START_TEST(test_vermagic) { refused_everywhere(m_no_release, "vermagic"); }
END_TEST
START_TEST(test_kernel_not_installed) {
        for (size_t i = 0; i < ELEMENTSOF(modes); i++)
                for (int q = 0; q < _POLICY_REQUESTER_MAX; q++) {
                        struct policy_facts f = good();
                        f.approved = true;
                        f.requester = (enum policy_requester) q;
                        m_not_installed(&f);
                        if (q == POLICY_REQUESTER_CLI) /* modsignctl sign may sign for another machine */
                                ALLOWED(&modes[i], &f, i == 1 ? "allowlist" : "cli");
                        else
                                REFUSED(&modes[i], &f, "kernel-not-installed");
                }
}
END_TEST
START_TEST(test_file_owner) {
        refused_everywhere(m_owner, "file-owner");
        /* the CLI run by that user signs that user's file (its own key) */
        struct policy_facts f = good();
        f.requester = POLICY_REQUESTER_CLI;
        f.file_uid = f.requester_uid = 1000;
        ALLOWED(&modes[1], &f, "allowlist");
        f.file_uid = 1001;
        REFUSED(&modes[1], &f, "file-owner");
}
END_TEST
START_TEST(test_dir_writable) {
        refused_everywhere(m_dir_group, "dir-writable");
        refused_everywhere(m_dir_world, "dir-writable"); /* sticky or not */
}
END_TEST
START_TEST(test_cert_dates) {
        refused_everywhere(m_expired, "cert-expired");
        refused_everywhere(m_not_yet, "cert-expired");
}
END_TEST
START_TEST(test_cert_usage) {
        refused_everywhere(m_eku, "cert-usage");
        refused_everywhere(m_ku, "cert-usage");
        /* no extensions at all: no restriction */
        struct policy_facts f = good();
        f.cert.has_eku = f.cert.has_key_usage = f.cert.eku_code_signing = f.cert.key_usage_digital_signature = false;
        ALLOWED(&modes[0], &f, "dkms");
}
END_TEST
START_TEST(test_signed_by_trusted_key) {
        refused_everywhere(m_trusted, "signed-by-trusted-key");
        /* --replace does not lift it */
        struct policy_facts f = good();
        f.signature = POLICY_SIG_TRUSTED;
        f.replace_foreign = true;
        f.requester = POLICY_REQUESTER_CLI;
        REFUSED(&modes[1], &f, "signed-by-trusted-key");
}
END_TEST
START_TEST(test_hash) {
        refused_everywhere(m_bad_hash, "hash");
        refused_everywhere(m_weak, "hash");
        struct policy_facts f = good();
        f.hash = "sha1";
        f.allow_weak_hash = true;
        ALLOWED(&modes[0], &f, "dkms");
        f.hash = "auto";
        f.allow_weak_hash = false;
        ALLOWED(&modes[0], &f, "dkms");
        f.hash = "sha384";
        ALLOWED(&modes[0], &f, "dkms");
}
END_TEST

START_TEST(test_owner_unknown) {
        /* a client's fd without a path: no directory to judge, no rule to apply */
        struct policy_facts f = good();
        f.have_dir = false;
        f.dir_mode = 0777;
        ALLOWED(&modes[0], &f, "dkms");
}
END_TEST

START_TEST(test_compressed) {
        struct policy_facts f = good();
        f.compressed = true;
        f.requester = POLICY_REQUESTER_SOCKET;
        REFUSED(&modes[1], &f, "compressed");
        f.requester = POLICY_REQUESTER_DKMS_SHIM;
        REFUSED(&modes[1], &f, "compressed");
        f.requester = POLICY_REQUESTER_WATCHER; /* signs inside */
        ALLOWED(&modes[1], &f, "allowlist");
        f.requester = POLICY_REQUESTER_CLI;
        ALLOWED(&modes[1], &f, "allowlist");
}
END_TEST

START_TEST(test_signed_by_another_key) {
        struct policy_facts f = good();
        f.signature = POLICY_SIG_OTHER;
        for (size_t i = 0; i < ELEMENTSOF(modes); i++)
                REFUSED(&modes[i], &f, "signed-by-another-key");
        f.requester = POLICY_REQUESTER_CLI;
        REFUSED(&modes[0], &f, "signed-by-another-key");
        f.replace_foreign = true;
        ALLOWED(&modes[0], &f, "cli");
}
END_TEST

START_TEST(test_ours) {
        /* ours and valid: nothing new is signed, no mode rule, no token */
        struct policy p = { .mode = POLICY_MODE_ALLOWLIST, .rate_tokens = 1, .rate_interval_usec = 60000000 };
        struct policy_rate rate = {};
        struct policy_decision d;
        struct policy_facts f = good();

        f.signature = POLICY_SIG_OURS_VALID;
        for (int i = 0; i < 5; i++) {
                policy_decide(&p, &f, &rate, &d);
                ck_assert(d.allow);
                ck_assert_str_eq(d.rule, "ours");
        }
        /* ours but stale (the module changed): judged like an unsigned one */
        f.signature = POLICY_SIG_OURS_STALE;
        REFUSED(&p, &f, "not-allowlisted");
}
END_TEST

/* --- blocklist, deny, revocation -------------------------------------------------------------- */

START_TEST(test_blocklist) {
        char *names[] = { (char *) "nvidia*", (char *) "evil-mod" }, *digests[] = { (char *) SHA };
        struct policy p = { .mode = POLICY_MODE_ALLOWLIST, .allow = allow_star, .n_allow = 1 };
        struct policy_facts f = good();

        ALLOWED(&p, &f, "allowlist");
        p.block_sha256 = digests;
        p.n_block_sha256 = 1;
        REFUSED(&p, &f, "blocklist"); /* by digest */
        f.sha256 = NULL; /* could not be read: not checked, so not signed */
        REFUSED(&p, &f, "blocklist");
        p.n_block_sha256 = 0;
        ALLOWED(&p, &f, "allowlist"); /* no digest blocklist: nothing to check it against */
        f.sha256 = SHA;
        p.block_names = names;
        p.n_block_names = 2;
        f.module_name = "nvidia_drm";
        REFUSED(&p, &f, "blocklist"); /* by glob */
        f.module_name = "evil_mod"; /* '-' and '_' are one to the kernel */
        REFUSED(&p, &f, "blocklist");
        f.module_name = "evil_mode";
        ALLOWED(&p, &f, "allowlist");
        /* Allow= does not override it, nor does approval or DKMS */
        f.module_name = "nvidia";
        f.approved = true;
        for (size_t i = 0; i < ELEMENTSOF(modes); i++) {
                struct policy q = modes[i];
                q.block_names = names;
                q.n_block_names = 2;
                REFUSED(&q, &f, "blocklist");
        }
}
END_TEST

START_TEST(test_deny) {
        char *deny[] = { (char *) "vbox*" };
        struct policy_facts f = good();
        f.approved = true;
        f.module_name = "vboxdrv";
        for (size_t i = 0; i < ELEMENTSOF(modes); i++) {
                struct policy q = modes[i];
                q.deny = deny;
                q.n_deny = 1;
                REFUSED(&q, &f, "deny");
                f.requester = POLICY_REQUESTER_CLI;
                REFUSED(&q, &f, "deny");
                f.requester = POLICY_REQUESTER_WATCHER;
        }
        f.module_name = "v4l2loopback";
        struct policy q = modes[0];
        q.deny = deny;
        q.n_deny = 1;
        ALLOWED(&q, &f, "dkms");
}
END_TEST

START_TEST(test_revoked) {
        char *by_fpr[] = { (char *) FPR }, *by_serial[] = { (char *) "001234abcd" }, *other[] = { (char *) "99" };
        struct policy p = { .mode = POLICY_MODE_DKMS };
        struct policy_facts f = good();

        p.revoked = other;
        p.n_revoked = 1;
        ALLOWED(&p, &f, "dkms");
        p.revoked = by_fpr;
        REFUSED(&p, &f, "cert-revoked");
        p.revoked = by_serial; /* leading zeros do not matter */
        REFUSED(&p, &f, "cert-revoked");
}
END_TEST

/* --- the modes --------------------------------------------------------------------------------- */

START_TEST(test_mode_dkms) {
        struct policy p = { .mode = POLICY_MODE_DKMS };
        struct policy_facts f = good();

        ALLOWED(&p, &f, "dkms");
        f.dkms_place = POLICY_DKMS_INSTALLED;
        ALLOWED(&p, &f, "dkms");
        f.dkms_registered = false;
        REFUSED(&p, &f, "dkms-unregistered");
        f.dkms_registered = true;
        f.dkms_place = POLICY_DKMS_NONE;
        f.dkms_package = f.dkms_version = NULL;
        REFUSED(&p, &f, "not-dkms");

        /* a build directory counts only with the shim's ORIGIN=dkms */
        f = good();
        f.dkms_place = POLICY_DKMS_BUILD;
        REFUSED(&p, &f, "not-dkms");
        f.requester = POLICY_REQUESTER_DKMS_SHIM;
        REFUSED(&p, &f, "not-dkms");
        f.dkms_origin = true;
        ALLOWED(&p, &f, "dkms");
        f.requester = POLICY_REQUESTER_SOCKET; /* ORIGIN=dkms from something not the shim */
        REFUSED(&p, &f, "not-dkms");
        /* the shim's word alone, a path elsewhere */
        f.requester = POLICY_REQUESTER_DKMS_SHIM;
        f.dkms_place = POLICY_DKMS_NONE;
        REFUSED(&p, &f, "not-dkms");
        /* ... and a build of a name the package does not build */
        f.dkms_place = POLICY_DKMS_BUILD;
        f.dkms_registered = false;
        REFUSED(&p, &f, "dkms-unregistered");
}
END_TEST

START_TEST(test_mode_allowlist_globs) {
        char *allow[] = { (char *) "zfs", (char *) "nvidia*", (char *) "v4l2[lx]oop?ack", (char *) "vbox-*" };
        struct policy p = { .mode = POLICY_MODE_ALLOWLIST, .allow = allow, .n_allow = ELEMENTSOF(allow) };
        struct policy_facts f = good();
        static const char *const yes[] = { "zfs", "nvidia", "nvidia_drm", "nvidia-uvm", "v4l2loopback", "vbox_drv",
                                           "zfs.ko", "/x/y/zfs.ko.xz" };
        static const char *const no[] = { "zfs2", "xzfs", "nvidi", "v4l2zoopback", "vboxdrv", "" };

        f.dkms_place = POLICY_DKMS_NONE; /* provenance does not matter here */
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                f.module_name = yes[i];
                ALLOWED(&p, &f, "allowlist");
        }
        for (size_t i = 0; i < ELEMENTSOF(no); i++) {
                f.module_name = no[i];
                REFUSED(&p, &f, "not-allowlisted");
        }
        /* nothing allowed: everything refused */
        p.n_allow = 0;
        f.module_name = "zfs";
        REFUSED(&p, &f, "not-allowlisted");
        /* Allow= admits in the other modes too */
        p = (struct policy) { .mode = POLICY_MODE_DKMS, .allow = allow, .n_allow = ELEMENTSOF(allow) };
        ALLOWED(&p, &f, "allowlist");
        p.mode = POLICY_MODE_APPROVE;
        ALLOWED(&p, &f, "allowlist");
}
END_TEST

START_TEST(test_mode_approve) {
        struct policy p = { .mode = POLICY_MODE_APPROVE };
        struct policy_facts f = good();
        struct policy_decision d;

        policy_decide(&p, &f, NULL, &d);
        ck_assert(!d.allow);
        ck_assert_str_eq(d.rule, "not-approved");
        ck_assert(d.pending);
        ck_assert_ptr_nonnull(strstr(d.reason, "modsignctl approve v4l2loopback"));
        f.approved = true;
        policy_decide(&p, &f, NULL, &d);
        ck_assert(d.allow);
        ck_assert_str_eq(d.rule, "approved");
        ck_assert(!d.pending);
        /* an always-refused rule is not pending */
        f.approved = false;
        f.kernel_installed = false;
        policy_decide(&p, &f, NULL, &d);
        ck_assert_str_eq(d.rule, "kernel-not-installed");
        ck_assert(!d.pending);
}
END_TEST

START_TEST(test_cli) {
        /* a module named on the command line by root: its provenance in every mode */
        struct policy_facts f = good();
        f.requester = POLICY_REQUESTER_CLI;
        f.dkms_place = POLICY_DKMS_NONE;
        for (size_t i = 0; i < ELEMENTSOF(modes); i++)
                ALLOWED(&modes[i], &f, i == 1 ? "allowlist" : "cli");
}
END_TEST

/* --- the rate limit ---------------------------------------------------------------------------- */

START_TEST(test_rate_limit) {
        struct policy p = { .mode = POLICY_MODE_ALLOWLIST, .allow = allow_star, .n_allow = 1, .rate_tokens = 3,
                            .rate_interval_usec = 60000000 };
        struct policy_rate rate = {};
        struct policy_decision d;
        struct policy_facts f = good();

        for (int i = 0; i < 3; i++) {
                policy_decide(&p, &f, &rate, &d);
                ck_assert_msg(d.allow, "request %d refused: %s", i, d.reason);
        }
        policy_decide(&p, &f, &rate, &d);
        ck_assert(!d.allow);
        ck_assert_str_eq(d.rule, "rate-limit");
        /* a refusal by another rule takes no token, and is that rule's */
        f.module_name = "x";
        f.kernel_installed = false;
        policy_decide(&p, &f, &rate, &d);
        ck_assert_str_eq(d.rule, "kernel-not-installed");
        f.kernel_installed = true;
        /* 20 s later one token (3 per 60 s) is back, and only one */
        f.now_usec += 20000000;
        policy_decide(&p, &f, &rate, &d);
        ck_assert(d.allow);
        policy_decide(&p, &f, &rate, &d);
        ck_assert_str_eq(d.rule, "rate-limit");
        /* a long pause refills to the burst, not beyond */
        f.now_usec += 3600ULL * 1000000;
        for (int i = 0; i < 3; i++) {
                policy_decide(&p, &f, &rate, &d);
                ck_assert(d.allow);
        }
        policy_decide(&p, &f, &rate, &d);
        ck_assert_str_eq(d.rule, "rate-limit");
        /* no bucket (the CLI) or no limit: never */
        policy_decide(&p, &f, NULL, &d);
        ck_assert(d.allow);
        p.rate_tokens = 0;
        policy_decide(&p, &f, &rate, &d);
        ck_assert(d.allow);
}
END_TEST

START_TEST(test_names) {
        char n[64];
        policy_normalize_name("/lib/modules/x/updates/dkms/nvidia-drm.ko.zst", n, sizeof(n));
        ck_assert_str_eq(n, "nvidia_drm");
        policy_normalize_name("a.ko", n, sizeof(n));
        ck_assert_str_eq(n, "a");
        policy_normalize_name("a.o", n, sizeof(n));
        ck_assert_str_eq(n, "a.o");
        ck_assert(policy_name_matches("nvidia-*", "nvidia_uvm"));
        ck_assert(!policy_name_matches("nvidia", "nvidia_uvm"));
}
END_TEST

/* --- configuration ----------------------------------------------------------------------------- */

static char *load_error(const char *text) {
        _cleanup_free_ char *dir = tu_tmpdir(), *path = tu_path(dir, "m.conf");
        struct config c;
        char *error = NULL;
        int r;

        tu_write_file(path, text, strlen(text), 0644);
        r = config_load(path, true, NULL, &c, &error);
        if (r >= 0)
                config_done(&c);
        tu_rm_rf(dir);
        return r < 0 ? (error ? error : strdup("?")) : NULL;
}

START_TEST(test_config_keys) {
        _cleanup_free_ char *dir = tu_tmpdir(), *path = tu_path(dir, "m.conf");
        const char *text = "[Policy]\nMode=approve\nDkmsTree=/srv/dkms\nTrustedCertificates=/a.pem\nTrustedCertificates=/b\n"
                           "RevokedCertificates=AB:cd:01\nRevokedCertificates=/etc/revoked\nBlocklist=/etc/bl\n"
                           "RateLimit=5/hour\n";
        struct config c;
        char *error = NULL;

        ck_assert_int_eq(config_init_defaults(&c), 0);
        ck_assert_int_eq(c.rate_tokens, 100); /* RateLimit=100/minute */
        ck_assert(c.rate_interval_usec == 60000000ULL);
        ck_assert_str_eq(c.dkms_tree, "/var/lib/dkms");
        config_done(&c);

        tu_write_file(path, text, strlen(text), 0644);
        ck_assert_int_eq(config_load(path, true, NULL, &c, &error), 0);
        ck_assert_int_eq(c.policy_mode, POLICY_MODE_APPROVE);
        ck_assert_str_eq(c.dkms_tree, "/srv/dkms");
        ck_assert_int_eq(c.trusted_certificates.n, 2);
        ck_assert_int_eq(c.revoked_certificates.n, 2);
        ck_assert_str_eq(c.blocklist, "/etc/bl");
        ck_assert_int_eq(c.rate_tokens, 5);
        ck_assert(c.rate_interval_usec == 3600ULL * 1000000);
        config_done(&c);
        tu_rm_rf(dir);
}
END_TEST

START_TEST(test_config_errors) {
        static const struct {
                const char *text, *want;
        } cases[] = {
                { "[Policy]\nRateLimit=fast\n", ":2: RateLimit=fast" },
                { "[Policy]\nRateLimit=0/minute\n", ":2: RateLimit=0/minute" },
                { "[Policy]\nRateLimit=10/fortnight\n", ":2: RateLimit=10/fortnight" },
                { "[Policy]\n\nDkmsTree=relative\n", ":3: DkmsTree= needs an absolute path" },
                { "[Policy]\nBlocklist=bl.txt\n", ":2: Blocklist= needs an absolute path" },
                { "[Policy]\nTrustedCertificates=x.pem\n", ":2: TrustedCertificates= needs an absolute path" },
                { "[Policy]\nRevokedCertificates=xyz\n", ":2: RevokedCertificates=xyz" },
                { "[Policy]\nRevokedCertificates=ab::cd\n", ":2: RevokedCertificates=ab::cd" },
                { "[Policy]\nMode=trust\n", ":2: Mode=trust" },
                { "[Policy]\nTrusted=/x\n", ":2: unknown key 'Trusted' in [Policy]" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *e = load_error(cases[i].text);
                ck_assert_msg(e && strstr(e, cases[i].want), "'%s': error '%s', expected '%s'", cases[i].text,
                              e ?: "(none)", cases[i].want);
        }
        /* off */
        unsigned n = 1;
        uint64_t iv = 1;
        ck_assert_int_eq(config_parse_rate("off", &n, &iv), 0);
        ck_assert_int_eq(n, 0);
        ck_assert_int_eq(config_parse_rate("100/m", &n, &iv), 0);
        ck_assert_int_eq(n, 100);
}
END_TEST

START_TEST(test_policy_load_files) {
        _cleanup_free_ char *dir = tu_tmpdir(), *bl = tu_path(dir, "blocklist"), *rv = tu_path(dir, "revoked"),
                            *conf = tu_path(dir, "m.conf"), *text = NULL;
        const char *blt = "# names and digests\nbad_mod\n  nvidia* # a comment\n\n" SHA "\n";
        const char *rvt = "AA:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:01\n";
        struct config c;
        struct policy p;
        char *error = NULL;

        if (geteuid() != 0)
                return; /* the files must be root's */
        tu_write_file(bl, blt, strlen(blt), 0644);
        tu_write_file(rv, rvt, strlen(rvt), 0600);
        ck_assert_int_ge(asprintf(&text, "[Policy]\nBlocklist=%s\nRevokedCertificates=%s\nRevokedCertificates=0xff\n", bl, rv), 0);
        /* "0xff" is not hex: refused at load */
        tu_write_file(conf, text, strlen(text), 0644);
        ck_assert_int_lt(config_load(conf, true, NULL, &c, &error), 0);
        free(error);
        free(text);
        ck_assert_int_ge(asprintf(&text, "[Policy]\nBlocklist=%s\nRevokedCertificates=%s\nRevokedCertificates=00ff\n", bl, rv), 0);
        tu_write_file(conf, text, strlen(text), 0644);
        ck_assert_int_eq(config_load(conf, true, NULL, &c, &error), 0);
        ck_assert_int_eq(policy_load(&c, &p, &error), 0);
        ck_assert_int_eq(p.n_block_names, 2);
        ck_assert_str_eq(p.block_names[1], "nvidia*");
        ck_assert_int_eq(p.n_block_sha256, 1);
        ck_assert_int_eq(p.n_revoked, 2);
        ck_assert_str_eq(p.revoked[0], FPR);
        policy_done(&p);

        /* a bad line is named with its file and line */
        tu_write_file(bl, "ok\nnot a glob!\n", 15, 0644);
        ck_assert_int_lt(policy_load(&c, &p, &error), 0);
        ck_assert_msg(error && strstr(error, "blocklist:2:"), "error: %s", error);
        free(error);
        /* a blocklist others may write is refused */
        tu_write_file(bl, "ok\n", 3, 0666);
        ck_assert_int_eq(chmod(bl, 0666), 0);
        ck_assert_int_eq(policy_load(&c, &p, &error), -EPERM);
        free(error);
        config_done(&c);
        tu_rm_rf(dir);
}
END_TEST

/* --- dkms.conf and DKMS paths -------------------------------------------------------------------- */

static void write_dkms_conf(const char *tree, const char *pkg, const char *ver, const char *text) {
        _cleanup_free_ char *d = NULL, *f = NULL;
        ck_assert_int_ge(asprintf(&d, "%s/%s/%s/source", tree, pkg, ver), 0);
        ck_assert_int_eq(tu_system("mkdir -p '%s'", d), 0);
        f = tu_path(d, "dkms.conf");
        tu_write_file(f, text, strlen(text), 0644);
}

START_TEST(test_dkms_conf) {
        _cleanup_free_ char *dir = tu_tmpdir(), *conf = NULL;
        const char *text = "PACKAGE_NAME=\"pkg\"\nPACKAGE_VERSION=1.0\n"
                           "BUILT_MODULE_NAME[0]=\"alpha\"\n"
                           "  BUILT_MODULE_NAME[1]='beta-two'\n"
                           "DEST_MODULE_NAME[1]=gamma # renamed\n"
                           "BUILT_MODULE_NAME[2]=\"$(echo evil)\"\n"
                           "BUILT_MODULE_NAME[3]=${PACKAGE_NAME}_x\n"
                           "#BUILT_MODULE_NAME[4]=commented\n"
                           "XBUILT_MODULE_NAME[5]=prefixed\n"
                           "BUILT_MODULE_NAME[x]=badindex\n";

        if (geteuid() != 0)
                return;
        write_dkms_conf(dir, "pkg", "1.0", text);
        conf = tu_path(dir, "pkg/1.0/source/dkms.conf");
        ck_assert_int_eq(dkms_conf_builds(conf, "alpha"), 1);
        ck_assert_int_eq(dkms_conf_builds(conf, "beta_two"), 1);
        ck_assert_int_eq(dkms_conf_builds(conf, "gamma.ko"), 1);
        ck_assert_int_eq(dkms_conf_builds(conf, "evil"), 0);
        ck_assert_int_eq(dkms_conf_builds(conf, "pkg_x"), 0);
        ck_assert_int_eq(dkms_conf_builds(conf, "commented"), 0);
        ck_assert_int_eq(dkms_conf_builds(conf, "prefixed"), 0);
        ck_assert_int_eq(dkms_conf_builds(conf, "badindex"), 0);
        ck_assert_int_eq(dkms_conf_builds(conf, "pkg"), 0); /* there are BUILT_MODULE_NAMEs */
        /* none: PACKAGE_NAME is the module */
        write_dkms_conf(dir, "solo", "2", "PACKAGE_NAME=solo\nPACKAGE_VERSION=2\n");
        free(conf);
        conf = tu_path(dir, "solo/2/source/dkms.conf");
        ck_assert_int_eq(dkms_conf_builds(conf, "solo"), 1);
        /* a dkms.conf others may write is not believed */
        ck_assert_int_eq(chmod(conf, 0666), 0);
        ck_assert_int_eq(dkms_conf_builds(conf, "solo"), -EPERM);
        tu_rm_rf(dir);
}
END_TEST

START_TEST(test_dkms_lookup) {
        _cleanup_free_ char *dir = tu_tmpdir(), *tree = tu_path(dir, "dkms"), *p = NULL;
        struct policy_dkms_info i;

        if (geteuid() != 0)
                return;
        write_dkms_conf(tree, "pkg", "1.0", "BUILT_MODULE_NAME[0]=alpha\n");
        ck_assert_int_eq(tu_system("mkdir -p '%s/pkg/1.0/6.1.0-1-amd64/x86_64/module'", tree), 0);

        ck_assert_int_ge(asprintf(&p, "%s/pkg/1.0/6.1.0-1-amd64/x86_64/module/alpha.ko", tree), 0);
        ck_assert_int_eq(policy_dkms_lookup(tree, p, "alpha", "6.1.0-1-amd64", &i), 0);
        ck_assert_int_eq(i.place, POLICY_DKMS_TREE);
        ck_assert_str_eq(i.package, "pkg");
        ck_assert_str_eq(i.version, "1.0");
        ck_assert(i.registered);
        policy_dkms_info_done(&i);
        /* a name the package does not build */
        ck_assert_int_eq(policy_dkms_lookup(tree, p, "beta", "6.1.0-1-amd64", &i), 0);
        ck_assert_int_eq(i.place, POLICY_DKMS_TREE);
        ck_assert(!i.registered);
        policy_dkms_info_done(&i);
        /* a tree copy for another kernel than its vermagic */
        ck_assert_int_eq(policy_dkms_lookup(tree, p, "alpha", "6.1.0-2-amd64", &i), 0);
        ck_assert(!i.registered);
        policy_dkms_info_done(&i);
        free(p);

        /* the build directory */
        ck_assert_int_ge(asprintf(&p, "%s/pkg/1.0/build/sub/alpha.ko", tree), 0);
        ck_assert_int_eq(policy_dkms_lookup(tree, p, "alpha", "6.1.0-1-amd64", &i), 0);
        ck_assert_int_eq(i.place, POLICY_DKMS_BUILD);
        ck_assert(i.registered);
        policy_dkms_info_done(&i);
        free(p);

        /* an installed copy: found through the package built for that kernel */
        ck_assert_int_ge(asprintf(&p, "%s/root/lib/modules/6.1.0-1-amd64/updates/dkms/alpha.ko.xz", dir), 0);
        ck_assert_int_eq(policy_dkms_lookup(tree, p, "alpha", "6.1.0-1-amd64", &i), 0);
        ck_assert_int_eq(i.place, POLICY_DKMS_INSTALLED);
        ck_assert_str_eq(i.package, "pkg");
        ck_assert(i.registered);
        policy_dkms_info_done(&i);
        free(p);
        /* ... not for a kernel the package was not built for */
        ck_assert_int_ge(asprintf(&p, "%s/root/lib/modules/6.1.0-2-amd64/updates/dkms/alpha.ko", dir), 0);
        ck_assert_int_eq(policy_dkms_lookup(tree, p, "alpha", "6.1.0-2-amd64", &i), 0);
        ck_assert_int_eq(i.place, POLICY_DKMS_INSTALLED);
        ck_assert(!i.registered);
        policy_dkms_info_done(&i);
        free(p);

        /* elsewhere, or a DKMS-looking path outside the tree */
        static const char *const none[] = { "/tmp/alpha.ko", "/lib/modules/6.1.0-1-amd64/extra/alpha.ko",
                                            "/other/pkg/1.0/6.1.0-1-amd64/x86_64/module/alpha.ko", "alpha.ko" };
        for (size_t k = 0; k < ELEMENTSOF(none); k++) {
                ck_assert_int_eq(policy_dkms_lookup(tree, none[k], "alpha", "6.1.0-1-amd64", &i), 0);
                ck_assert_msg(i.place == POLICY_DKMS_NONE, "%s taken for a DKMS place", none[k]);
                policy_dkms_info_done(&i);
        }
        /* ".." does not climb out */
        p = NULL;
        ck_assert_int_ge(asprintf(&p, "%s/../1.0/6.1.0-1-amd64/x86_64/module/alpha.ko", tree), 0);
        ck_assert_int_eq(policy_dkms_lookup(tree, p, "alpha", "6.1.0-1-amd64", &i), 0);
        ck_assert_int_eq(i.place, POLICY_DKMS_NONE);
        tu_rm_rf(dir);
}
END_TEST

/* --- certificate facts ---------------------------------------------------------------------------- */

START_TEST(test_cert_facts) {
        EVP_PKEY *key = tu_rsa_key(2048);
        X509 *cert = tu_cert(key, "policy unit", 0x1234abcd, true);
        struct policy_cert c;
        X509_EXTENSION *ext;

        ck_assert_int_eq(policy_cert_facts(cert, &c), 0);
        ck_assert(c.known);
        ck_assert_str_eq(c.serial, "1234abcd");
        ck_assert_int_eq(strlen(c.fingerprint), 64);
        ck_assert(c.not_before < c.not_after);
        X509_free(cert);

        /* extendedKeyUsage = serverAuth only: no code signing */
        cert = tu_cert(key, "policy unit", 7, true);
        ext = X509V3_EXT_conf_nid(NULL, NULL, NID_ext_key_usage, "serverAuth");
        ck_assert_ptr_nonnull(ext);
        ck_assert(X509_add_ext(cert, ext, -1));
        X509_EXTENSION_free(ext);
        ext = X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage, "keyEncipherment");
        ck_assert(X509_add_ext(cert, ext, -1));
        X509_EXTENSION_free(ext);
        ck_assert(X509_sign(cert, key, EVP_sha256()) > 0);
        ck_assert_int_eq(policy_cert_facts(cert, &c), 0);
        ck_assert(c.has_eku && !c.eku_code_signing);
        ck_assert(c.has_key_usage && !c.key_usage_digital_signature);
        X509_free(cert);

        cert = tu_cert(key, "policy unit", 8, true);
        ext = X509V3_EXT_conf_nid(NULL, NULL, NID_ext_key_usage, "codeSigning");
        ck_assert(X509_add_ext(cert, ext, -1));
        X509_EXTENSION_free(ext);
        ck_assert(X509_sign(cert, key, EVP_sha256()) > 0);
        ck_assert_int_eq(policy_cert_facts(cert, &c), 0);
        ck_assert(c.has_eku && c.eku_code_signing);
        X509_free(cert);
        EVP_PKEY_free(key);
}
END_TEST

/* --- the running kernel's trusted keyrings (policy_kernel_signature()) ------------------------ */

/* A module signed by key/cert (key-id mode or issuer+serial), written to dir/name. */
static void signed_module(const char *dir, const char *name, EVP_PKEY *key, X509 *cert, bool keyid) {
        _cleanup_free_ char *path = tu_path(dir, name);
        size_t len, sig_len;
        uint8_t *img = tu_module_default(&len), *sig;

        sig = tu_sign_file_oracle(key, cert, "sha256", keyid, img, len, &sig_len);
        tu_append_sig(&img, &len, sig, sig_len);
        tu_write_file(path, img, len, 0644);
        free(sig);
        free(img);
}

/* /proc/keys with the four trusted keyrings, the distribution's key (1a2b3c4d, a member of
 * .builtin_trusted_keys), and a key loaded in the kernel but in none of them (1a2b3c4e). */
static char *kernel_fixture(const char *dir, X509 *distro, const char *distro_skid, const char *loose_skid) {
        _cleanup_free_ char *text = NULL, *members = tu_path(dir, "members"), *f = NULL, *subject = NULL;
        char *keys = tu_path(dir, "keys");

        /* the key's SUBJECT as the kernel writes it ("O: CN" for tu_cert()'s certificates) */
        ck_assert_int_eq(kernel_name_of(X509_get_subject_name(distro), &subject), 0);
        ck_assert_ptr_nonnull(subject);
        ck_assert_int_ge(asprintf(&text,
                                  "3ac2be1c I------     1 perm 1f0b0000     0     0 keyring   .builtin_trusted_keys: 1\n"
                                  "2e0e4a3b I------     1 perm 1f0f0000     0     0 keyring   .secondary_trusted_keys: 1\n"
                                  "0c8f7a2d I------     1 perm 1f0f0000     0     0 keyring   .machine: empty\n"
                                  "11aa22bb I------     1 perm 1f0b0000     0     0 keyring   .platform: empty\n"
                                  "1a2b3c4d I------     1 perm 1f030000     0     0 asymmetri %s: %s: X509.rsa 00000000 []\n"
                                  "1a2b3c4e I------     1 perm 1f030000     0     0 asymmetri Loose key: %s: X509.rsa 00000000 []\n",
                                  subject, distro_skid, loose_skid), 0);
        tu_write_file(keys, text, strlen(text), 0644);
        ck_assert_int_eq(mkdir(members, 0755), 0);
        f = tu_path(members, ".builtin_trusted_keys");
        tu_write_file(f, "1a2b3c4d\n", 9, 0644);
        free(f);
        f = tu_path(members, ".secondary_trusted_keys");
        tu_write_file(f, "3ac2be1c\n", 9, 0644);
        return keys;
}

static void open_module(int dir_fd, const char *name, struct module_file *m) {
        const char *why = NULL;
        int r = module_file_open(dir_fd, name, m, &why);

        ck_assert_msg(r == 0, "module_file_open(%s): %s (%s)", name, strerror(-r), why ?: "");
}

START_TEST(test_kernel_keyrings) {
        _cleanup_free_ char *dir = tu_tmpdir(), *keys = NULL, *members = NULL, *skid_a = NULL, *skid_b = NULL,
                            *skid_c = NULL, *why = NULL;
        EVP_PKEY *ka = tu_rsa_key(2048), *kb = tu_rsa_key(2048), *kc = tu_rsa_key(2048);
        X509 *a = tu_cert(ka, "Distro Secure Boot Signer", 0x51, true), *b = tu_cert(kb, "Somebody else", 0x52, true),
             *c = tu_cert(kc, "Loose key", 0x53, true);
        static const struct {
                const char *name;
                enum policy_signature want;
                const char *why_has;
        } cases[] = {
                { "a-keyid.ko", POLICY_SIG_TRUSTED, "subjectKeyIdentifier" },
                { "a-issuer.ko", POLICY_SIG_TRUSTED, "failing closed" },
                { "b-keyid.ko", POLICY_SIG_OTHER, NULL },
                { "b-issuer.ko", POLICY_SIG_OTHER, NULL },
                { "c-keyid.ko", POLICY_SIG_OTHER, NULL },   /* in the kernel, in no trusted keyring */
                { "c-issuer.ko", POLICY_SIG_OTHER, NULL },
        };
        enum policy_signature sig;
        int dir_fd;

        ck_assert_int_eq(cert_kernel_key_id(a, &skid_a), 0);
        ck_assert_int_eq(cert_kernel_key_id(b, &skid_b), 0);
        ck_assert_int_eq(cert_kernel_key_id(c, &skid_c), 0);
        keys = kernel_fixture(dir, a, skid_a, skid_c);
        members = tu_path(dir, "members");
        signed_module(dir, "a-keyid.ko", ka, a, true);
        signed_module(dir, "a-issuer.ko", ka, a, false);
        signed_module(dir, "b-keyid.ko", kb, b, true);
        signed_module(dir, "b-issuer.ko", kb, b, false);
        signed_module(dir, "c-keyid.ko", kc, c, true);
        signed_module(dir, "c-issuer.ko", kc, c, false);
        dir_fd = tu_open_dir(dir);

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct module_file m;

                open_module(dir_fd, cases[i].name, &m);
                ck_assert_int_eq(policy_kernel_signature(&m, keys, members, false, &sig, &why), 0);
                ck_assert_msg(sig == cases[i].want, "%s: signature state %d, expected %d (%s)", cases[i].name, sig,
                              cases[i].want, why ?: "-");
                if (cases[i].why_has) {
                        ck_assert_ptr_nonnull(why);
                        ck_assert_msg(strstr(why, cases[i].why_has) && strstr(why, ".builtin_trusted_keys") &&
                                      strstr(why, "Distro Secure Boot Signer"), "%s: %s", cases[i].name, why);
                } else
                        ck_assert_ptr_null(why);
                free(why);
                why = NULL;

                /* The gate: signed-by-trusted-key, even for the CLI's --replace; the others are
                 * another key's (and --replace lifts that one). */
                struct policy p = { .mode = POLICY_MODE_ALLOWLIST, .allow = allow_star, .n_allow = 1 };
                struct policy_env env = { .policy = &p, .proc_keys = keys, .keyring_dir = members };
                struct policy_request req = { .requester = POLICY_REQUESTER_CLI, .m = &m, .dir_fd = -1,
                                              .file_name = cases[i].name, .release = "6.1.0-1-amd64",
                                              .replace_foreign = true };
                struct policy_gathered g;
                struct policy_decision d;

                ck_assert_int_eq(policy_gather(&env, &req, &g), 0);
                policy_decide(&p, &g.facts, NULL, &d);
                if (cases[i].want == POLICY_SIG_TRUSTED) {
                        ck_assert(!d.allow);
                        ck_assert_str_eq(d.rule, "signed-by-trusted-key");
                        ck_assert_msg(strstr(d.reason, ".builtin_trusted_keys"), "%s", d.reason);
                } else
                        ck_assert_msg(d.allow, "%s refused: %s (%s)", cases[i].name, d.rule, d.reason);
                g.facts.replace_foreign = false;
                policy_decide(&p, &g.facts, NULL, &d);
                ck_assert_str_eq(d.rule, cases[i].want == POLICY_SIG_TRUSTED ? "signed-by-trusted-key" : "signed-by-another-key");
                policy_gathered_done(&g);
                module_file_close(&m);
        }

        /* A trusted keyring whose members cannot be read (here a directory where the member
         * list should be): any key the kernel holds may be in it, so the loose key counts. */
        {
                _cleanup_free_ char *machine = tu_path(members, ".machine");
                struct module_file m;

                ck_assert_int_eq(mkdir(machine, 0755), 0);
                open_module(dir_fd, "c-keyid.ko", &m);
                ck_assert_int_eq(policy_kernel_signature(&m, keys, members, false, &sig, &why), 0);
                ck_assert_int_eq(sig, POLICY_SIG_TRUSTED);
                ck_assert_msg(strstr(why, "cannot be read") && strstr(why, "Loose key"), "%s", why);
                free(why);
                why = NULL;
                module_file_close(&m);
                open_module(dir_fd, "b-keyid.ko", &m);
                ck_assert_int_eq(policy_kernel_signature(&m, keys, members, false, &sig, &why), 0);
                ck_assert_int_eq(sig, POLICY_SIG_OTHER); /* a key the kernel does not hold at all */
                module_file_close(&m);
                ck_assert_int_eq(rmdir(machine), 0);
        }

        /* Keyrings that cannot be read: trusted when that is the closed answer, else another key's. */
        {
                _cleanup_free_ char *none = tu_path(dir, "no-such-keys");
                struct module_file m;

                open_module(dir_fd, "b-keyid.ko", &m);
                ck_assert_int_eq(policy_kernel_signature(&m, none, members, true, &sig, &why), 0);
                ck_assert_int_eq(sig, POLICY_SIG_TRUSTED);
                ck_assert_ptr_nonnull(strstr(why, "cannot be read"));
                free(why);
                why = NULL;
                ck_assert_int_eq(policy_kernel_signature(&m, none, members, false, &sig, &why), 0);
                ck_assert_int_eq(sig, POLICY_SIG_OTHER);
                module_file_close(&m);
        }
        (void) close(dir_fd);
        X509_free(a);
        X509_free(b);
        X509_free(c);
        EVP_PKEY_free(ka);
        EVP_PKEY_free(kb);
        EVP_PKEY_free(kc);
}
END_TEST

/* The kernel's names: "O: CN" unless the CN begins with the O (or its first 7 bytes). */
START_TEST(test_kernel_name_of) {
        static const struct {
                const char *o, *cn, *email, *want;
        } cases[] = {
                { NULL, "Just a CN", NULL, "Just a CN" },
                { "Example Org", "module key", NULL, "Example Org: module key" },
                { "Debian", "Debian Secure Boot Signer 2022 - linux", NULL, "Debian Secure Boot Signer 2022 - linux" },
                { "Canonical Ltd.", "Canonical Ltd. Kernel Module Signing", NULL, "Canonical Ltd. Kernel Module Signing" },
                { "Example Org Two", "Example Xyz", NULL, "Example Xyz" }, /* the first 7 bytes agree */
                { "Only O", NULL, NULL, "Only O" },
                { NULL, NULL, "root@example.org", "root@example.org" },
                { NULL, NULL, NULL, "" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                X509_NAME *n = X509_NAME_new();
                _cleanup_free_ char *got = NULL;

                ck_assert_ptr_nonnull(n);
                if (cases[i].o)
                        ck_assert(X509_NAME_add_entry_by_NID(n, NID_organizationName, MBSTRING_UTF8,
                                                             (const unsigned char *) cases[i].o, -1, -1, 0));
                if (cases[i].cn)
                        ck_assert(X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
                                                             (const unsigned char *) cases[i].cn, -1, -1, 0));
                if (cases[i].email)
                        ck_assert(X509_NAME_add_entry_by_NID(n, NID_pkcs9_emailAddress, MBSTRING_ASC,
                                                             (const unsigned char *) cases[i].email, -1, -1, 0));
                ck_assert_int_eq(kernel_name_of(n, &got), 0);
                ck_assert_str_eq(got, cases[i].want);
                X509_NAME_free(n);
        }
}
END_TEST

/* --- the shared rate limit (policy-rate.h) -------------------------------------------------- */

static uint64_t realtime_usec(void) {
        struct timespec ts;

        ck_assert_int_eq(clock_gettime(CLOCK_REALTIME, &ts), 0);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

struct rate_child {
        const struct policy *p;
        const char *state;
};

/* In another process: the rule that decides one more request (0 allowed, 1 rate-limit, 2 other). */
static int rate_child_decide(void *userdata) {
        struct rate_child *c = userdata;
        struct policy_facts f = good();
        struct policy_decision d;

        f.now_usec = realtime_usec();
        (void) policy_decide_shared(c->p, &f, c->state, &d);
        return d.allow ? 0 : streq(d.rule, "rate-limit") ? 1 : 2;
}

START_TEST(test_rate_shared) {
        _cleanup_free_ char *state = tu_tmpdir(), *file = tu_path(state, POLICY_RATE_FILE), *text = NULL;
        struct policy p = { .mode = POLICY_MODE_ALLOWLIST, .allow = allow_star, .n_allow = 1, .rate_tokens = 3,
                            .rate_interval_usec = 60000000 };
        struct rate_child child = { .p = &p, .state = state };
        struct policy_decision d;
        struct policy_facts f = good();
        struct policy_rate r;
        struct stat st;
        char buf[128];
        size_t len;

        /* three in three processes, the fourth refused here: one bucket */
        for (int i = 0; i < 3; i++)
                ck_assert_int_eq(tu_run_child(rate_child_decide, &child, 10000), 0);
        f.now_usec = realtime_usec();
        ck_assert_int_eq(policy_decide_shared(&p, &f, state, &d), 0);
        ck_assert_msg(!d.allow && streq(d.rule, "rate-limit"), "%s: %s", d.rule, d.reason);
        ck_assert_int_eq(stat(file, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0600);
        text = (char *) tu_read_file(file, &len);
        ck_assert_int_eq(policy_rate_parse(text, len, &r), 0);
        ck_assert(r.started && r.tokens < 1.0);
        /* another rule's refusal stays that rule's and takes no token */
        f.kernel_installed = false;
        ck_assert_int_eq(policy_decide_shared(&p, &f, state, &d), 0);
        ck_assert_str_eq(d.rule, "kernel-not-installed");
        f.kernel_installed = true;
        /* 20 s later (a token back) another process may sign once */
        ck_assert_int_eq(policy_rate_format(&(struct policy_rate) { .started = true, .tokens = 0.0,
                                                                    .last_usec = realtime_usec() - 20000000 },
                                            buf, sizeof(buf)), (int) strlen(buf));
        tu_write_file(file, buf, strlen(buf), 0600);
        ck_assert_int_eq(tu_run_child(rate_child_decide, &child, 10000), 0);
        ck_assert_int_eq(tu_run_child(rate_child_decide, &child, 10000), 1);
        /* a clock set back refills nothing and does not stick: the bucket counts from now */
        ck_assert_int_eq(policy_rate_format(&(struct policy_rate) { .started = true, .tokens = 0.0,
                                                                    .last_usec = realtime_usec() + 3600000000ULL },
                                            buf, sizeof(buf)), (int) strlen(buf));
        tu_write_file(file, buf, strlen(buf), 0600);
        ck_assert_int_eq(tu_run_child(rate_child_decide, &child, 10000), 1);
        free(text);
        text = (char *) tu_read_file(file, &len);
        ck_assert_int_eq(policy_rate_parse(text, len, &r), 0);
        ck_assert(r.last_usec <= realtime_usec());
        /* garbage is an empty bucket (fail closed); an empty file a full one */
        tu_write_file(file, "tokens: lots\n", 13, 0600);
        ck_assert_int_eq(tu_run_child(rate_child_decide, &child, 10000), 1);
        tu_write_file(file, "", 0, 0600);
        ck_assert_int_eq(tu_run_child(rate_child_decide, &child, 10000), 0);
        /* a symlink, or a file others may write, is not used: refused, with why */
        ck_assert_int_eq(unlink(file), 0);
        ck_assert_int_eq(symlink("/dev/null", file), 0);
        f.now_usec = realtime_usec();
        ck_assert_int_eq(policy_decide_shared(&p, &f, state, &d), -ELOOP);
        ck_assert_msg(!d.allow && streq(d.rule, "rate-limit") && strstr(d.reason, POLICY_RATE_FILE), "%s", d.reason);
        /* ... but what takes no token does not need it: another rule's refusal, a module of ours */
        f.kernel_installed = false;
        ck_assert_int_eq(policy_decide_shared(&p, &f, state, &d), 0);
        ck_assert_str_eq(d.rule, "kernel-not-installed");
        f.kernel_installed = true;
        f.signature = POLICY_SIG_OURS_VALID;
        ck_assert_int_eq(policy_decide_shared(&p, &f, state, &d), 0);
        ck_assert(d.allow);
        ck_assert_str_eq(d.rule, "ours");
        f.signature = POLICY_SIG_NONE;
        ck_assert_int_eq(unlink(file), 0);
        tu_write_file(file, "", 0, 0600);
        ck_assert_int_eq(chmod(file, 0622), 0);
        ck_assert_int_eq(policy_decide_shared(&p, &f, state, &d), -EPERM);
        ck_assert_str_eq(d.rule, "rate-limit");
        /* no RateLimit=: no file needed */
        p.rate_tokens = 0;
        ck_assert_int_eq(policy_decide_shared(&p, &f, "/nonexistent", &d), 0);
        ck_assert(d.allow);
        /* the text */
        ck_assert_int_eq(policy_rate_parse("v1 1500000 42\n", 14, &r), 0);
        ck_assert(r.started && r.tokens > 1.49 && r.tokens < 1.51 && r.last_usec == 42);
        ck_assert_int_eq(policy_rate_parse("v1 -1 42\n", 9, &r), -EBADMSG);
        ck_assert_int_eq(policy_rate_parse("v1 1 42", 7, &r), -EBADMSG);
        ck_assert_int_eq(policy_rate_parse("v1 1 42\nx", 9, &r), -EBADMSG);
}
END_TEST

static Suite *policy_suite(void) {
        Suite *s = suite_create("policy");
        TCase *tc;

        tc = tu_tcase("always-refused");
        tcase_add_test(tc, test_not_a_module);
        tcase_add_test(tc, test_vermagic);
        tcase_add_test(tc, test_kernel_not_installed);
        tcase_add_test(tc, test_file_owner);
        tcase_add_test(tc, test_dir_writable);
        tcase_add_test(tc, test_cert_dates);
        tcase_add_test(tc, test_cert_usage);
        tcase_add_test(tc, test_signed_by_trusted_key);
        tcase_add_test(tc, test_hash);
        tcase_add_test(tc, test_owner_unknown);
        tcase_add_test(tc, test_compressed);
        tcase_add_test(tc, test_signed_by_another_key);
        tcase_add_test(tc, test_ours);
        tcase_add_test(tc, test_blocklist);
        tcase_add_test(tc, test_deny);
        tcase_add_test(tc, test_revoked);
        tcase_add_test(tc, test_kernel_keyrings);
        tcase_add_test(tc, test_kernel_name_of);
        suite_add_tcase(s, tc);

        tc = tu_tcase("modes");
        tcase_add_test(tc, test_mode_dkms);
        tcase_add_test(tc, test_mode_allowlist_globs);
        tcase_add_test(tc, test_mode_approve);
        tcase_add_test(tc, test_cli);
        tcase_add_test(tc, test_rate_limit);
        tcase_add_test(tc, test_rate_shared);
        tcase_add_test(tc, test_names);
        suite_add_tcase(s, tc);

        tc = tu_tcase("inputs");
        tcase_add_test(tc, test_config_keys);
        tcase_add_test(tc, test_config_errors);
        tcase_add_test(tc, test_policy_load_files);
        tcase_add_test(tc, test_dkms_conf);
        tcase_add_test(tc, test_dkms_lookup);
        tcase_add_test(tc, test_cert_facts);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tu_run_suite(policy_suite());
}
