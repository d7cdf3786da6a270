/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The hash-chained, append-only audit log: STATE_DIRECTORY/audit.jsonl (by default
 * /var/lib/modsignd/audit.jsonl), one record per decision modsignd (or modsignctl sign run as
 * root) made about a module or a key.
 *
 * FORMAT. The file is a sequence of lines, each one JSON object (json-c, plain, no whitespace
 * between tokens, '/' not escaped) followed by exactly one '\n'. No record contains a raw
 * newline (JSON escapes it). Members, in this order; optional ones are absent, never null:
 *
 *   seq            integer, 1 for the first record of the file, then +1 per record
 *   time           RFC 3339 UTC, second resolution: "2025-01-31T23:59:59Z"
 *   event          "signed" | "resigned" | "refused" | "failed" | "key-loaded" | "key-rotated"
 *                  | "reloaded" | "approved"   (resigned: the module carried a signature of ours
 *                  before; approved: a person approved a module name, `modsignctl approve`)
 *   path           (opt) the module's path, or the name a client gave for its descriptor
 *   module         (opt) the module's name (modinfo name=, else the file name without .ko*)
 *   version        (opt) modinfo version=
 *   kernel         (opt) the kernel release (from vermagic, or the one requested)
 *   sha256_before  (opt) SHA-256 of the file as it was found
 *   sha256_after   (opt) SHA-256 of the signed file (for a SIGN request: of the module with
 *                  the signature modsignd returned appended, as the client will write it)
 *   key            (opt) SHA-256 fingerprint of the signing certificate (DER)
 *   requester      {"pid":N,"uid":N,"comm":"..."} for a socket client (SO_PEERCRED and
 *                  /proc/PID/comm), {"pid":N,"uid":N,"comm":"...","command":"..."} for a
 *                  person's command (the approver of "approved": getuid(), the command line's
 *                  verb and name), or one of the strings "watcher", "cli", "daemon"
 *   dkms           (opt) {"package":"NAME","version":"VERSION"}, derived from a path under
 *                  .../var/lib/dkms/NAME/VERSION/...
 *   rule           (opt) the rule that decided (the policy gate's rule name)
 *   reason         (opt) free text
 *   provenance     (opt) the path of the signature's in-toto statement (provenance.h), for
 *                  "signed" and "resigned" records when one was written
 *   prev           64 lowercase hex digits: see below
 *
 * THE CHAIN. A record's "prev" is the SHA-256, as lowercase hex, of the exact bytes of the
 * previous line of the file, without its terminating '\n'. The first record's "prev" is 64
 * '0's. The record's own line hash, computed the same way, is what the next record's "prev"
 * carries.
 *
 * THE HEAD. "COUNT:HASH": the seq of the last record and the hash of its line ("0:" and 64
 * zeros for an empty log). The chain alone shows an edited, removed or reordered record in the
 * middle of the file; it cannot show that whole records were cut off at the end, or that the
 * file was rewritten from some record on with a recomputed chain (anyone who can write the
 * file can do that). Both show against a head kept somewhere else: modsignd writes it to the
 * journal (see modsignd(8)) and `modsignctl audit verify --head COUNT:HASH` checks the file
 * against it. A copy of the head next to the log would be rewritten along with it, so none
 * is kept there.
 *
 * WRITERS. Each append takes an exclusive flock() on the file, checks that the file still
 * ends where this writer left it (else it checks that what another writer, such as
 * modsignctl sign, appended meanwhile continues the chain, and continues from there), writes
 * the line with one write() on an O_APPEND descriptor and fsync()s it before returning. An
 * audit_log may be shared by threads: appends are serialised by a mutex.
 *
 * A LOG THAT IS NOT SOUND. audit_log_open() refuses (-EBADMSG) a file whose last line is not
 * a complete, well-formed record (a tail cut in the middle of a line, garbage): appending to
 * it would fork the chain and hide the damage. An append refuses (-ESTALE) when the file
 * shrank or changed under the writer in a way that does not continue the chain. Nothing is
 * repaired automatically: the caller reports, and a person decides (modsignd(8)).
 *
 * The library does not log; errors are negative errno values. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AUDIT_LOG_FILE "audit.jsonl"
/* Overrides the state directory for modsignctl (and tests), where no configuration says. */
#define AUDIT_STATE_DIR_ENV "MODSIGND_STATE_DIRECTORY"
#define AUDIT_DEFAULT_STATE_DIR "/var/lib/modsignd"
/* The longest line we write or accept (paths are at most 4096 bytes). */
#define AUDIT_LINE_MAX ((size_t) 64 << 10)
/* "COUNT:HASH" with a 20-digit count, and the NUL. */
#define AUDIT_HEAD_STRING_MAX (20 + 1 + 64 + 1)

enum audit_event {
        AUDIT_EVENT_SIGNED,
        AUDIT_EVENT_RESIGNED,
        AUDIT_EVENT_REFUSED,
        AUDIT_EVENT_FAILED,
        AUDIT_EVENT_KEY_LOADED,
        AUDIT_EVENT_KEY_ROTATED,
        AUDIT_EVENT_RELOADED,
        AUDIT_EVENT_APPROVED,
        _AUDIT_EVENT_MAX,
};

const char *audit_event_to_string(enum audit_event e);
/* Returns the event, or -EINVAL. */
int audit_event_from_string(const char *s);

enum audit_requester_kind {
        AUDIT_REQUESTER_PEER,    /* a socket client: pid, uid, comm */
        AUDIT_REQUESTER_WATCHER, /* the daemon's own tree watcher */
        AUDIT_REQUESTER_CLI,     /* modsignctl sign, in its own process */
        AUDIT_REQUESTER_DAEMON,  /* the daemon itself: start, reload */
        AUDIT_REQUESTER_COMMAND, /* a person's modsignctl command (approve): pid, uid, comm, command */
};

struct audit_requester {
        enum audit_requester_kind kind;
        pid_t pid;              /* AUDIT_REQUESTER_PEER and _COMMAND only */
        uid_t uid;
        const char *comm;       /* may be NULL */
        const char *command;    /* AUDIT_REQUESTER_COMMAND: what was run ("approve NAME") */
};

/* One record to append. Strings may be NULL (the member is left out). seq, time and prev are
 * the log's to fill in. */
struct audit_record {
        enum audit_event event;
        const char *path;
        const char *module;       /* NULL: derived from path (file name without .ko*) */
        const char *version;
        const char *kernel;
        const char *sha256_before;
        const char *sha256_after;
        const char *key_fingerprint;
        struct audit_requester requester;
        const char *dkms_package; /* NULL: derived from path when it lies under var/lib/dkms */
        const char *dkms_version;
        const char *rule;
        const char *reason;
        const char *provenance;   /* the statement's path (provenance.h), or NULL */
};

struct audit_head {
        uint64_t seq;             /* 0: empty log */
        char hash[65];            /* hex SHA-256 of the last line; 64 '0's when empty */
};

struct audit_log;

/* Opens (creating them: directory 0700, file 0600) state_dir/audit.jsonl for appending, and
 * reads the head from its last line. The directory's last component and the file are not
 * followed if they are symlinks (-ELOOP); a directory or file writable by group or others
 * is refused (-EPERM); a tail that is not one complete record gives -EBADMSG. */
int audit_log_open(const char *state_dir, struct audit_log **ret);
struct audit_log *audit_log_free(struct audit_log *log);
const char *audit_log_path(const struct audit_log *log);

/* Appends one record, durably (fsync) before returning. ret_head (optional) receives the
 * head with this record last; ret_line (optional) a copy of the line written (without '\n').
 * -ESTALE: the file was changed under us (see above); -E2BIG: the record is too long;
 * -EINVAL: a bad record (unknown event). On any error nothing was appended. */
int audit_log_append(struct audit_log *log, const struct audit_record *rec, struct audit_head *ret_head,
                     char **ret_line);
/* The head as of the last append (or the open). */
void audit_log_get_head(struct audit_log *log, struct audit_head *ret);

/* "COUNT:HASH" <-> struct audit_head. Parsing accepts upper or lower case hex. */
int audit_head_parse(const char *s, struct audit_head *ret);
void audit_head_format(const struct audit_head *h, char buf[AUDIT_HEAD_STRING_MAX]);

/* dkms package and version from a path .../var/lib/dkms/NAME/VERSION/...: 0 and two new
 * strings, or -ENOENT when the path does not lie in a dkms tree. */
int audit_dkms_from_path(const char *path, char **ret_package, char **ret_version);

/* The result of a verification. When the log is intact, bad_line is 0. Otherwise bad_line
 * (1-based; one past the last line when records are missing at the end) and bad_seq (the seq
 * that line carries, or should carry; 0 when unknown) name the first bad record, and why
 * says what is wrong with it. */
struct audit_verify_result {
        uint64_t n_records;       /* complete, well-formed records read */
        struct audit_head head;   /* of the last of them */
        uint64_t bad_line;
        uint64_t bad_seq;
        char why[320];
};

/* Walks the log open as fd (from its start) and recomputes the chain: every line a complete
 * JSON object with the members above, seq 1, 2, 3..., each prev the hash of the line before.
 * With 'anchor' (a head recorded elsewhere), the record anchor->seq must exist and its line
 * hash must equal anchor->hash. Returns 0 when intact, -EBADMSG when not (then *ret says
 * where and why), another negative errno when the file cannot be read. */
int audit_verify_fd(int fd, const struct audit_head *anchor, struct audit_verify_result *ret);

/* Calls fn for each line of the log open as fd: its 1-based number, bytes (not terminated,
 * without the '\n') and length; 'complete' is false for a last line without its '\n'. fn
 * returns < 0 to stop (that value is returned), else 0. Lines longer than AUDIT_LINE_MAX give
 * -EBADMSG. */
int audit_for_each_line(int fd, int (*fn)(uint64_t line_no, const char *line, size_t len, bool complete, void *userdata),
                        void *userdata);
