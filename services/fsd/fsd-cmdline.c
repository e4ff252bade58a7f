/* SPDX-License-Identifier: MIT */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fsd-cmdline.h"
#include "parse-util.h"
#include "strutil.h"

/* Split s at unescaped `sep`. "\<sep>" becomes <sep>; other escapes are dropped too
 * unless keep_other (the outer split keeps "\:" for the lowerdir split). */
static int split_escaped(const char *s, char sep, bool keep_other, char ***ret)
{
	char **l = NULL;
	size_t n = strlen(s);
	_cleanup_free_ char *cur = malloc(n + 1);
	if (!cur)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == sep) {
			cur[k] = 0;
			if (k > 0 && strv_extend(&l, cur) < 0) {
				strv_free(l);
				return -ENOMEM;
			}
			k = 0;
		} else if (s[i] == '\\' && i + 1 < n) {
			if (keep_other && s[i + 1] != sep)
				cur[k++] = s[i];
			cur[k++] = s[++i];
		} else
			cur[k++] = s[i];
	}
	*ret = l;
	return 0;
}

int mount_spec_parse_options(MountSpec *spec, const char *opts, char **ret_error)
{
	_cleanup_(strv_freep) char **items = NULL;
	*ret_error = NULL;
	int r = split_escaped(opts, ',', true, &items);
	if (r < 0)
		return r;
	for (char **it = items; it && *it; it++) {
		char *o = *it, *eq = strchr(o, '=');
		const char *v = eq ? eq + 1 : NULL;
		if (eq)
			*eq = 0;
		if (streq(o, "lowerdir") && v) {
			char **l;
			if ((r = split_escaped(v, ':', false, &l)) < 0)
				return r;
			for (char **x = l; x && *x; x++)
				if (strv_extend(&spec->lowers, *x) < 0) {
					strv_free(l);
					return -ENOMEM;
				}
			strv_free(l);
		} else if (streq(o, "upperdir") && v) {
			free(spec->upper);
			if (!(spec->upper = strdup(v)))
				return -ENOMEM;
		} else if (streq(o, "workdir") && v) {
			free(spec->work);
			if (!(spec->work = strdup(v)))
				return -ENOMEM;
		} else if (streq(o, "timeout") && v) {
			char *end;
			double t = strtod(v, &end);
			if (*v == 0 || *end || t < 0 || t > 86400) {
				*ret_error =
				    strdupf("timeout=%s: not a number of seconds (0-86400)", v);
				return -EINVAL;
			}
			spec->timeout = t == 0 ? 1e-9 : t;
		} else if (streq(o, "threads") && v) {
			uint32_t t;
			if (safe_atou32(v, &t) < 0 || t == 0 || t > 256) {
				*ret_error = strdupf("threads=%s: not a number from 1 to 256", v);
				return -EINVAL;
			}
			spec->max_threads = t;
		} else if (streq(o, "writeback") && !v)
			spec->writeback = true;
		else if (streq(o, "noignore") && !v)
			spec->no_ignore = true;
		else if (streq(o, "ignore") && v) {
			if (strv_extend(&spec->ignore_files, v) < 0)
				return -ENOMEM;
		} else {
			*ret_error = strdupf("unknown mount option \"%s%s%s\"", o, v ? "=" : "",
					     strempty(v));
			return -EINVAL;
		}
	}
	return 0;
}
