/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdbool.h>

#include "module-file.h"
#include "proto.h"

/* Exit codes scripts can rely on; documented in modsignctl(8). */
enum {
        EXIT_OK = 0,
        EXIT_ERROR = 1,         /* I/O, key or certificate problem, anything else */
        EXIT_USAGE = 2,
        EXIT_UNSIGNED = 3,
        EXIT_BAD_SIGNATURE = 4,
        EXIT_UNTRUSTED = 5,
        EXIT_NOT_MODULE = 6,
        EXIT_DAEMON_DOWN = 7,   /* status, scan, reload: modsignd is not running */
        EXIT_AUDIT_BROKEN = 8,  /* audit verify: the hash chain is broken */
        EXIT_REPORT_THRESHOLD = 9, /* report: more debt items or escapes than --max-debt/--max-escapes */
        EXIT_NO_PROVENANCE = 10, /* provenance: no statement for the module as it is (changed after signing?) */
};

struct global_args {
        bool json;
        bool quiet;
        const char *socket_path;
        bool socket_given;      /* --socket was given: it wins over the configuration's */
        const char *config_path; /* --config, else CONFIG_DEFAULT_FILE with its drop-ins */
};
extern struct global_args arg_global;

/* With several modules the most severe result wins: 1 > 6 > 4 > 5 > 3 > 0 (2 ends at once). */
int exit_code_merge(int a, int b);
/* The exit code for an error from opening, parsing or verifying a module. */
int exit_code_from_errno(int r);

/* A module named on the command line, opened through its directory: the last component is
 * never followed if it is a symlink. */
struct module_arg {
        int dir_fd;
        struct module_file file;
};
/* Logs the error itself (naming the file) and returns the exit code to merge. */
int module_arg_open(const char *path, struct module_arg *ret);
void module_arg_close(struct module_arg *m);

/* $name when set and not empty, else fallback (the test overrides of /proc and /sys paths). */
const char *getenv_or(const char *name, const char *fallback);

/* Opens the directory holding 'path' (O_RDONLY|O_DIRECTORY) and returns the last component. */
int open_parent_dir(const char *path, int *ret_dir_fd, const char **ret_base);

/* Loads a private key from a reference (a file, credential:NAME, pkcs11:..., handle:0x...,
 * object:PATH; see key-backend.h). Key files get the ownership and mode checks; 'strict' makes
 * a loose mode an error rather than a warning. 'passphrase' (PIN) may be NULL. Logs errors. */
int load_signing_key(const char *ref, const char *passphrase, bool strict, EVP_PKEY **ret);

/* One request to modsignd (PATH and KERNEL optional); on success *ret gets the reply's JSON.
 * Logs what went wrong and returns the exit code (EXIT_DAEMON_DOWN: nothing listens). */
int daemon_request(enum proto_type type, const char *path, const char *kernel, int timeout_ms, json_object **ret);

int cmd_sign(int argc, char *argv[]);
int cmd_verify(int argc, char *argv[]);
int cmd_info(int argc, char *argv[]);
int cmd_strip(int argc, char *argv[]);
int cmd_sign_file(int argc, char *argv[]);
int cmd_status(int argc, char *argv[]);
int cmd_scan(int argc, char *argv[]);
int cmd_reload(int argc, char *argv[]);
int cmd_dkms_sign_file(int argc, char *argv[]);
int cmd_dkms_check(int argc, char *argv[]);
int cmd_doctor(int argc, char *argv[]);
int cmd_keygen(int argc, char *argv[]);
int cmd_enroll(int argc, char *argv[]);
int cmd_audit(int argc, char *argv[]);
int cmd_rotate(int argc, char *argv[]);
int cmd_report(int argc, char *argv[]);
int cmd_provenance(int argc, char *argv[]);
int cmd_approve(int argc, char *argv[]);
int cmd_pending(int argc, char *argv[]);

/* The audit log's directory: $MODSIGND_STATE_DIRECTORY, else StateDirectory= of the
 * configuration, else /var/lib/modsignd. */
int audit_state_directory(char **ret);
