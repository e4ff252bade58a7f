/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * locald-shim's pieces (README.md is the audit guide). shim-grammar.c holds everything
 * that decides what is allowed, with no I/O, so the unit tests cover it; the other
 * files do one command group each. No lib/ code: libc only.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define SHIM_VERSION LOCALD_VERSION

#ifndef SOCK_CLOEXEC /* macOS: the shim execs nothing after creating sockets */
#define SOCK_CLOEXEC 0
#endif

/* Exit codes (README.md). */
enum {
	SHIM_EXIT_OK = 0,
	SHIM_EXIT_FAILED = 1,     /* the privileged step failed (I/O, tool exited non-zero) */
	SHIM_EXIT_USAGE = 2,      /* unknown command or argument */
	SHIM_EXIT_REFUSED = 3,    /* input outside the grammar: port, name, CA file, fd 3 */
	SHIM_EXIT_NOT_SETUID = 4, /* not installed setuid root in a root-owned directory */
	SHIM_EXIT_PRIVDROP = 5,   /* could not drop privileges (never expected) */
	SHIM_EXIT_UNSUPPORTED = 6 /* not available here (no cgroup2, systemd manages it, …) */
};

/* Bounds on every input. */
#define SHIM_MAX_NAMES 512
#define SHIM_MAX_NAME_LEN 253
#define SHIM_MAX_STDIN (SHIM_MAX_NAMES * (SHIM_MAX_NAME_LEN + 1))
#define SHIM_MAX_HOSTS_FILE (1024 * 1024)
#define SHIM_MAX_CONF 4096
#define SHIM_MAX_CONF_ITEMS 16
#define SHIM_MAX_SUFFIX_LEN 63
#define SHIM_MAX_CERT_FILE (64 * 1024)

#define SHIM_CONF_PATH "/etc/locald/shim.conf"
#define SHIM_HOSTS_BEGIN "# BEGIN locald"
#define SHIM_HOSTS_END "# END locald"

/* The allow-lists: built-in 80/443 and ".localhost", plus what shim.conf adds. */
typedef struct ShimConf {
	uint16_t ports[SHIM_MAX_CONF_ITEMS];
	size_t n_ports;
	char suffixes[SHIM_MAX_CONF_ITEMS][SHIM_MAX_SUFFIX_LEN + 2]; /* ".test" */
	size_t n_suffixes;
} ShimConf;

/*
 * shim.conf: lines "allow-port N" and "allow-suffix LABEL" (one DNS label, e.g. "test"),
 * '#' comments, blank lines. Anything else is an error (-EINVAL) and *ret_line says
 * which line (1-based). On error *conf holds nothing.
 */
int shim_conf_parse(const char *text, size_t n, ShimConf *conf, unsigned *ret_line);

/* "80" → 80; decimal digits only, 1..65535. */
int shim_parse_port(const char *s, uint16_t *ret);
bool shim_port_allowed(const ShimConf *conf, uint16_t port);

/*
 * A host name the shim will write: lower-case LDH labels of 1..63 bytes, no leading or
 * trailing '-', at most 253 bytes, no trailing dot, at least one label before an allowed
 * suffix (".localhost" or a shim.conf suffix). Returns 0 or -EINVAL.
 */
int shim_host_name_check(const ShimConf *conf, const char *name, size_t len);

/*
 * Split stdin into names (one per line, "\n" ends each, the last may lack it) and check
 * each. Returns the count, or -EINVAL (a bad name; *ret_bad = its 1-based line),
 * -E2BIG (more than SHIM_MAX_NAMES). names[] point into buf, which is modified.
 */
int shim_names_parse(const ShimConf *conf, char *buf, size_t n, char **names, size_t max,
		     size_t *ret_bad);

/*
 * The new /etc/hosts: `in` with the block between a line "# BEGIN locald" and a line
 * "# END locald" replaced by one "127.0.0.1 name" and one "::1 name" line per name (the
 * block is removed when n_names == 0; appended at the end when absent). Every other byte
 * is kept. -EBADMSG when the markers are damaged (one without the other, nested,
 * repeated): the file is then left alone. *ret is heap, *ret_len its length.
 */
int shim_hosts_rewrite(const char *in, size_t in_len, char *const *names, size_t n_names,
		       char **ret, size_t *ret_len);

/*
 * The certificate check of trust-ca: `pem` holds exactly one PEM "CERTIFICATE" block
 * (only whitespace around it) whose DER parses as an X.509 certificate with
 * basicConstraints CA:TRUE and an organizationName "locald" in its subject. On success
 * *ret_pem is a fresh PEM encoding of exactly the DER that was checked.
 * -EINVAL: not PEM/DER; -EPERM: a certificate, but not a locald CA.
 */
int shim_ca_check(const char *pem, size_t n, char **ret_pem, size_t *ret_len);

/* ---- commands (shim-*.c); each returns an exit code ---- */

typedef struct ShimCaller {
	uid_t uid;
	gid_t gid;
} ShimCaller;

/* Drop to the caller for good and verify setuid(0) fails; exits SHIM_EXIT_PRIVDROP if not. */
void shim_drop_privileges(const ShimCaller *c);
void shim_log(const ShimCaller *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "locald-shim: <message>" on stderr and syslog; returns code. */
int shim_fail(const ShimCaller *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Read at most max bytes of fd (NUL-terminated); -EFBIG beyond that. */
int shim_read_all(int fd, size_t max, char **ret, size_t *ret_len);

int shim_cmd_bind_port(const ShimCaller *c, const ShimConf *conf, int argc, char **argv);
int shim_cmd_hosts(const ShimCaller *c, const ShimConf *conf, bool clear);
int shim_cmd_trust(const ShimCaller *c, int argc, char **argv, bool install);
int shim_cmd_cgroup_setup(const ShimCaller *c, bool move_parent);
