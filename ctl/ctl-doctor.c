/* SPDX-License-Identifier: MIT */
/*
 * `doctor [--json]`: is this machine ready for locald? Each check has a stable id, a
 * status (pass, warn, fail, skip), one line of what was found and, when not passing, one
 * line to fix it. Exit 0 unless a critical check fails (the core needs no root: only the
 * runtime directory and the daemons' versions are critical).
 */

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"
#include "ctl-privileged.h"
#include "paths.h"
#include "shim-client.h"
#include "strutil.h"

static const char doctor_help[] = "Usage: localctl doctor [--json]\n\n"
				  "Check what locald needs from this machine; one line each, with "
				  "a fix.\n";

typedef enum {
	PASS,
	WARN,
	FAIL,
	SKIP
} Status;
static const char *const status_name[] = { "pass", "warn", "fail", "skip" };

typedef struct Doctor {
	Ctl *ctl;
	json_t *checks;
	bool critical_failed;
} Doctor;

static void report(Doctor *d, const char *id, Status st, bool critical, const char *fix,
		   const char *fmt, ...) _printf_(6, 7);
static void report(Doctor *d, const char *id, Status st, bool critical, const char *fix,
		   const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (st == FAIL && critical)
		d->critical_failed = true;
	if (d->checks) {
		json_t *o = json_pack("{s:s,s:s,s:s,s:b}", "id", id, "status", status_name[st],
				      "summary", msg, "critical", critical);
		if (o && fix && st != PASS)
			json_object_set_new(o, "fix", json_string(fix));
		if (o)
			json_array_append_new(d->checks, o);
		return;
	}
	static const char *const colors[] = { ANSI_GREEN, ANSI_YELLOW, ANSI_RED, ANSI_DIM };
	printf("%s%-4s%s %-20s %s\n", ctl_color(d->ctl, false, colors[st]), status_name[st],
	       ctl_color(d->ctl, false, ANSI_RESET), id, msg);
	if (fix && st != PASS && st != SKIP)
		printf("     %-20s fix: %s\n", "", fix);
}

static void check_shim(Doctor *d)
{
	_cleanup_free_ char *path = NULL;
	if (shim_find(&path) < 0 && geteuid() == 0) {
		report(d, "shim.installed", SKIP, false, NULL,
		       "running as root: locald binds 80/443 itself (the shim is for users)");
		report(d, "shim.version", SKIP, false, NULL, "no shim");
		return;
	}
	if (!path) {
		report(d, "shim.installed", WARN, false, "sudo localctl admin setup",
		       "locald-shim is not installed (ports 8080/8443 are used instead of 80/443)");
		report(d, "shim.version", SKIP, false, NULL, "no shim");
		return;
	}
	report(d, "shim.installed", PASS, false, NULL, "%s (setuid root)", path);
	_cleanup_free_ char *cmd = shell_quote(path);
	_cleanup_free_ char *line = cmd ? strdupf("%s version 2>/dev/null", cmd) : NULL;
	FILE *p = line ? popen(line, "re") : NULL;
	char out[128] = "";
	if (p) {
		if (!fgets(out, sizeof(out), p))
			out[0] = '\0';
		pclose(p);
	}
	strstrip(out);
	char want[64];
	snprintf(want, sizeof(want), "locald-shim %s", LOCALD_VERSION);
	if (streq(out, want))
		report(d, "shim.version", PASS, false, NULL, "%s", out);
	else
		report(d, "shim.version", WARN, false, "sudo localctl admin setup",
		       "installed shim says \"%s\", localctl is %s", out, LOCALD_VERSION);
}

static void check_ports(Doctor *d)
{
	uint32_t https = 0, http = 0;
	(void)ctl_proxy_ports(d->ctl, &https, &http);
	if (https == 0)
		report(d, "ports.proxy", SKIP, false, "localctl up",
		       "locald-proxyd is not running");
	else if (https == 443 && http == 80)
		report(d, "ports.proxy", PASS, false, NULL, "locald-proxyd holds 80 and 443");
	else
		report(d, "ports.proxy", WARN, false,
		       "sudo localctl admin setup, then localctl server restart",
		       "locald-proxyd listens on %u/%u, not 80/443", http, https);
}

/* A small file, whole (a PEM certificate); -errno. */
static int read_small_file(const char *path, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t cap = 64 * 1024, n = 0;
	_cleanup_free_ char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t k = read(fd, buf + n, cap - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			break;
		n += (size_t)k;
		if (n == cap)
			return -EFBIG;
	}
	*ret_len = n;
	*ret = TAKE_PTR(buf);
	return 0;
}

static void check_ca(Doctor *d)
{
	_cleanup_free_ char *state = NULL, *ca = NULL;
	if (locald_state_dir(&state) < 0 || !(ca = path_join(state, "ca/ca.crt")) ||
	    access(ca, R_OK) < 0) {
		report(d, "ca.trusted", SKIP, false, "localctl up", "no CA yet");
		return;
	}
	/* GnuTLS is loaded here, not linked: its dependency chain would cost every
	 * localctl command (`status` included) milliseconds of dynamic loading. */
	void *lib = dlopen("libgnutls.so.30", RTLD_NOW | RTLD_LOCAL);
	struct {
		int (*crt_init)(gnutls_x509_crt_t *);
		int (*crt_import)(gnutls_x509_crt_t, const gnutls_datum_t *, gnutls_x509_crt_fmt_t);
		void (*crt_deinit)(gnutls_x509_crt_t);
		int (*tl_init)(gnutls_x509_trust_list_t *, unsigned);
		int (*tl_add_system)(gnutls_x509_trust_list_t, unsigned, unsigned);
		int (*tl_verify)(gnutls_x509_trust_list_t, gnutls_x509_crt_t *, unsigned, unsigned,
				 unsigned *, gnutls_verify_output_function);
		void (*tl_deinit)(gnutls_x509_trust_list_t, unsigned);
	} g = { 0 };
	if (lib) {
		*(void **)&g.crt_init = dlsym(lib, "gnutls_x509_crt_init");
		*(void **)&g.crt_import = dlsym(lib, "gnutls_x509_crt_import");
		*(void **)&g.crt_deinit = dlsym(lib, "gnutls_x509_crt_deinit");
		*(void **)&g.tl_init = dlsym(lib, "gnutls_x509_trust_list_init");
		*(void **)&g.tl_add_system = dlsym(lib, "gnutls_x509_trust_list_add_system_trust");
		*(void **)&g.tl_verify = dlsym(lib, "gnutls_x509_trust_list_verify_crt");
		*(void **)&g.tl_deinit = dlsym(lib, "gnutls_x509_trust_list_deinit");
	}
	if (!g.crt_init || !g.crt_import || !g.crt_deinit || !g.tl_init || !g.tl_add_system ||
	    !g.tl_verify || !g.tl_deinit) {
		if (lib)
			dlclose(lib);
		report(d, "ca.trusted", SKIP, false, "apt-get install libgnutls30",
		       "cannot load GnuTLS to check the system trust store");
		return;
	}
	_cleanup_free_ char *pem = NULL;
	size_t pem_len = 0;
	gnutls_x509_crt_t crt = NULL;
	gnutls_x509_trust_list_t tl = NULL;
	unsigned verify = 1;
	int r = read_small_file(ca, &pem, &pem_len) < 0 ? -1 : 0;
	gnutls_datum_t data = { .data = (unsigned char *)pem, .size = (unsigned)pem_len };
	if (r >= 0)
		r = g.crt_init(&crt);
	if (r >= 0)
		r = g.crt_import(crt, &data, GNUTLS_X509_FMT_PEM);
	if (r >= 0)
		r = g.tl_init(&tl, 0);
	if (r >= 0)
		r = g.tl_add_system(tl, 0, 0);
	if (r >= 0)
		r = g.tl_verify(tl, &crt, 1, 0, &verify, NULL);
	if (tl)
		g.tl_deinit(tl, 1);
	if (crt)
		g.crt_deinit(crt);
	dlclose(lib);
	if (r >= 0 && verify == 0)
		report(d, "ca.trusted", PASS, false, NULL, "%s is trusted by the system store", ca);
	else
		report(d, "ca.trusted", WARN, false, "localctl trust",
		       "%s is not trusted by the system store (browsers will warn)", ca);
}

static void check_hosts(Doctor *d)
{
	FILE *f = fopen("/etc/hosts", "re");
	char line[512];
	int begin = 0, end = 0, names = 0;
	while (f && fgets(line, sizeof(line), f)) {
		strstrip(line);
		if (streq(line, "# BEGIN locald"))
			begin++;
		else if (streq(line, "# END locald"))
			end++;
		else if (begin > end && startswith(line, "127.0.0.1 "))
			names++;
	}
	if (f)
		fclose(f);
	if (begin == 0 && end == 0)
		report(d, "hosts.block", PASS, false, NULL,
		       "no locald block in /etc/hosts (*.localhost resolves to loopback anyway)");
	else if (begin == 1 && end == 1)
		report(d, "hosts.block", PASS, false, NULL, "/etc/hosts lists %d locald names",
		       names);
	else
		report(d, "hosts.block", WARN, false,
		       "remove the broken \"# BEGIN locald\"/\"# END locald\" lines by hand",
		       "damaged locald block in /etc/hosts");
}

/* Our cgroup v2 path ("0::/x" in /proc/self/cgroup) under mountpoint, or NULL. */
static char *own_cgroup(const char *mountpoint)
{
	_cleanup_free_ char *line = NULL;
	size_t size = 0;
	char *own = NULL;
	FILE *f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return NULL;
	while (!own && getline(&line, &size, f) > 0) {
		const char *rest = startswith(line, "0::/");
		if (rest) {
			rest = strstrip((char *)rest);
			own = *rest ? strdupf("%s/%s", mountpoint, rest) : strdup(mountpoint);
		}
	}
	fclose(f);
	return own;
}

static bool cgroup_writable(const char *dir)
{
	_cleanup_free_ char *procs = path_join(dir, "cgroup.procs");
	return procs && access(dir, W_OK) == 0 && access(procs, W_OK) == 0;
}

/* Mirrors superd's choice (services/superd/superd-cgroup.h) for a superd started from here. */
static void check_cgroup(Doctor *d)
{
	struct stat st;
	if (stat("/run/systemd/system", &st) == 0) {
		report(d, "systemd", PASS, false, NULL, "systemd is the service manager");
		report(d, "cgroup.delegation", PASS, false, NULL,
		       "systemd delegates a cgroup to user@%u.service", (unsigned)getuid());
		return;
	}
	report(d, "systemd", SKIP, false, NULL, "no systemd: locald starts its daemons itself");
	static const char *const roots[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
	const char *root = NULL;
	for (size_t i = 0; i < ELEMENTSOF(roots) && !root; i++) {
		_cleanup_free_ char *ctl_file = path_join(roots[i], "cgroup.controllers");
		if (ctl_file && access(ctl_file, F_OK) == 0)
			root = roots[i];
	}
	if (!root) {
		report(d, "cgroup.delegation", WARN, false, NULL,
		       "no cgroup v2 mounted (services are tracked by process group)");
		return;
	}

	uid_t uid = geteuid();
	_cleanup_free_ char *own = own_cgroup(root);
	_cleanup_free_ char *mine = strdupf("%s/locald/%u", root, (unsigned)uid);
	_cleanup_free_ char *leaf = mine ? path_join(mine, "superd") : NULL;
	_cleanup_free_ char *shim = NULL;
	bool delegated = mine && stat(mine, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == uid;
	bool has_shim = uid != 0 && shim_find(&shim) >= 0;
	if (!leaf)
		return;

	if (delegated && own && (streq(own, mine) || streq(own, leaf)))
		report(d, "cgroup.delegation", PASS, false, NULL,
		       "superd uses %s/services (delegated by locald-shim)", mine);
	else if (own && cgroup_writable(own))
		report(d, "cgroup.delegation", PASS, false, NULL,
		       "our cgroup %s is writable: superd uses %s/locald-superd", own, own);
	else if (uid == 0 && access(root, W_OK) == 0)
		report(d, "cgroup.delegation", PASS, false, NULL, "root: superd uses %s/locald",
		       root);
	else if (has_shim)
		report(d, "cgroup.delegation", PASS, false, NULL,
		       "%s %s: superd asks locald-shim to move it into %s/superd and uses "
		       "%s/services",
		       mine, delegated ? "is ours" : "is delegated when superd starts", mine, mine);
	else
		report(d, "cgroup.delegation", WARN, false, "sudo localctl admin setup",
		       "%s%s and locald-shim is not installed to move superd there (services are "
		       "tracked by process group)",
		       mine,
		       delegated ? " is ours but our cgroup is not writable"
				 : " is not delegated to us");
}

static void check_device(Doctor *d, const char *id, const char *dev, const char *what)
{
	if (access(dev, R_OK | W_OK) == 0)
		report(d, id, PASS, false, NULL, "%s is usable", dev);
	else if (access(dev, F_OK) == 0)
		report(d, id, WARN, false, "add yourself to the device's group (ls -l)",
		       "%s exists but is not usable by us (%s)", dev, what);
	else
		report(d, id, WARN, false, NULL, "%s is missing (%s)", dev, what);
}

static void check_runtime(Doctor *d)
{
	_cleanup_free_ char *rt = NULL;
	struct stat st;
	if (locald_runtime_dir(&rt) < 0)
		report(d, "runtime.dir", FAIL, true, "unset LOCALD_RUNTIME_DIR or make it absolute",
		       "cannot compute the runtime directory");
	else if (lstat(rt, &st) < 0)
		report(d, "runtime.dir", PASS, true, NULL, "%s will be created on first start", rt);
	else if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077))
		report(d, "runtime.dir", FAIL, true, "chmod 0700 the directory (it must be ours)",
		       "%s must be a directory owned by us with mode 0700", rt);
	else
		report(d, "runtime.dir", PASS, true, NULL, "%s (0700, ours)", rt);
}

static void check_daemons(Doctor *d)
{
	if (!ctl_superd_alive(d->ctl, 1000)) {
		report(d, "daemons", SKIP, false, "localctl up", "locald-superd is not running");
		return;
	}
	BusZmtpClient *c = NULL;
	_cleanup_(bus_reply_freep) BusReply *reply = NULL;
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__GetVersion gv = LOCALD__V1__GET_VERSION__INIT;
	req.call_case = LOCALD__V1__REQUEST__CALL_GET_VERSION;
	req.get_version = &gv;
	if (ctl_superd(d->ctl, &c) != 0 || bus_zmtp_client_call(c, &req, 2000, &reply) < 0 ||
	    reply->result_case != LOCALD__V1__REPLY__RESULT_VERSION)
		report(d, "daemons", FAIL, true, "localctl server restart",
		       "locald-superd does not answer GetVersion");
	else if (!streq(strempty(reply->version->version), LOCALD_VERSION))
		report(d, "daemons", FAIL, true, "localctl server restart",
		       "locald-superd is %s, localctl is %s", reply->version->version,
		       LOCALD_VERSION);
	else
		report(d, "daemons", PASS, true, NULL, "locald-superd %s answers", LOCALD_VERSION);
}

int cmd_doctor(Ctl *ctl, int argc, char **argv)
{
	Doctor d = { .ctl = ctl };
	for (int i = 1; i < argc; i++) {
		if (streq(argv[i], "-h") || streq(argv[i], "--help"))
			return ctl_usage(ctl, true, doctor_help);
		else if (streq(argv[i], "--json"))
			d.checks = json_array();
		else
			return ctl_usage(ctl, false, doctor_help);
	}
	check_shim(&d);
	check_ports(&d);
	check_ca(&d);
	check_hosts(&d);
	check_cgroup(&d);
	check_device(&d, "dev.fuse", "/dev/fuse", "locald-fsd needs it");
	check_device(&d, "dev.kvm", "/dev/kvm", "locald-vmmd needs it");
	check_runtime(&d);
	check_daemons(&d);
	if (d.checks)
		ctl_print_json(
		    ctl, json_pack("{s:o,s:b}", "checks", d.checks, "ok", !d.critical_failed));
	return d.critical_failed ? EXIT_FAILED : EXIT_OK;
}
