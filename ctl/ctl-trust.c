/* SPDX-License-Identifier: MIT */
/*
 * `trust` / `untrust`: the local CA (<state>/ca/ca.crt) in every store a browser or tool
 * reads. The system store goes through locald-shim; the NSS databases (Chromium's
 * ~/.pki/nssdb, Firefox profiles) are the user's own and are changed with certutil, as
 * the user, without the shim. Each store is tried on its own: one failure does not stop
 * the rest (mkcert's lesson), and each gets one line of outcome.
 */

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"
#include "ctl-privileged.h"
#include "log.h"
#include "paths.h"
#include "shim-client.h"
#include "strutil.h"

static const char trust_help[] =
    "Usage: localctl trust|untrust [--system-only|--nss-only]\n\n"
    "Add (remove) locald's development CA to (from) the system trust store, through\n"
    "locald-shim (installed by `sudo localctl admin setup`), and to the NSS databases of\n"
    "Chromium (~/.pki/nssdb) and Firefox profiles, with certutil (libnss3-tools).\n";

static int run_certutil(char *const *argv)
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execvp("certutil", argv);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return -ENOENT;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

static bool is_nssdb(const char *dir)
{
	_cleanup_free_ char *p = path_join(dir, "cert9.db");
	return p && access(p, F_OK) == 0;
}

/* ~/.pki/nssdb and every Firefox profile holding a cert9.db. */
static int nss_databases(char ***ret)
{
	const char *home = getenv("HOME");
	char **l = NULL;
	if (isempty(home))
		return *ret = NULL, 0;
	_cleanup_free_ char *pki = path_join(home, ".pki/nssdb");
	if (pki && is_nssdb(pki) && strv_extend(&l, pki) < 0)
		return -ENOMEM;
	static const char *const ff[] = { ".mozilla/firefox",
					  "snap/firefox/common/.mozilla/firefox" };
	for (size_t i = 0; i < ELEMENTSOF(ff); i++) {
		_cleanup_free_ char *base = path_join(home, ff[i]);
		DIR *d = base ? opendir(base) : NULL;
		struct dirent *de;
		while (d && (de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			_cleanup_free_ char *p = path_join(base, de->d_name);
			if (p && is_nssdb(p) && strv_extend(&l, p) < 0) {
				closedir(d);
				strv_free(l);
				return -ENOMEM;
			}
		}
		if (d)
			closedir(d);
	}
	*ret = l;
	return 0;
}

static int trust_main(Ctl *ctl, int argc, char **argv, bool install)
{
	bool system = true, nss = true;
	for (int i = 1; i < argc; i++) {
		if (streq(argv[i], "-h") || streq(argv[i], "--help"))
			return ctl_usage(ctl, true, trust_help);
		else if (streq(argv[i], "--system-only"))
			nss = false;
		else if (streq(argv[i], "--nss-only"))
			system = false;
		else
			return ctl_usage(ctl, false, trust_help);
	}
	_cleanup_free_ char *state = NULL, *ca = NULL;
	if (locald_state_dir(&state) < 0 || !(ca = path_join(state, "ca/ca.crt")))
		return ctl_fail(ctl, EXIT_FAILED, NULL, "cannot compute the state directory");
	if (install && access(ca, R_OK) < 0)
		return ctl_fail(ctl, EXIT_FAILED,
				"`localctl up` creates it on the proxy's first start",
				"no CA at %s", ca);

	int failed = 0;
	if (system) {
		char *args[] = { install ? (char *)"trust-ca" : (char *)"untrust-ca",
				 install ? ca : NULL, NULL };
		int r = shim_run(args);
		if (r == -ENOENT) {
			ctl_warn(ctl, "system store: skipped, locald-shim is not installed "
				      "(sudo localctl admin setup)");
			failed++;
		} else if (r < 0) {
			ctl_warn(ctl, "system store: failed (see the shim's message above)");
			failed++;
		} else
			printf("system store: %s\n", install ? "trusted" : "removed");
	}
	if (nss) {
		_cleanup_strv_free_ char **dbs = NULL;
		_cleanup_free_ char *nick =
		    strdupf("locald development CA (%u)", (unsigned)getuid());
		if (nss_databases(&dbs) < 0 || !nick)
			return log_oom(), EXIT_FAILED;
		STRV_FOREACH (db, dbs) {
			_cleanup_free_ char *d = strdupf("sql:%s", *db);
			if (!d)
				return EXIT_FAILED;
			char *add[] = { (char *)"certutil",
					(char *)"-A",
					(char *)"-d",
					d,
					(char *)"-t",
					(char *)"C,,",
					(char *)"-n",
					nick,
					(char *)"-i",
					ca,
					NULL };
			char *del[] = { (char *)"certutil", (char *)"-D", (char *)"-d", d,
					(char *)"-n",       nick,         NULL };
			int r = run_certutil(install ? add : del);
			if (r == -ENOENT) {
				ctl_warn(ctl,
					 "NSS %s: skipped, certutil is missing (apt install "
					 "libnss3-tools)",
					 *db);
				failed++;
				break;
			}
			if (r < 0 && install) {
				ctl_warn(ctl, "NSS %s: certutil failed", *db);
				failed++;
			} else
				printf("NSS %s: %s\n", *db, install ? "trusted" : "removed");
		}
	}
	return failed ? EXIT_FAILED : EXIT_OK;
}

int cmd_trust(Ctl *ctl, int argc, char **argv)
{
	return trust_main(ctl, argc, argv, true);
}

int cmd_untrust(Ctl *ctl, int argc, char **argv)
{
	return trust_main(ctl, argc, argv, false);
}
