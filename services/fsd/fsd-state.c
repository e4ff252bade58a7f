/* SPDX-License-Identifier: MIT */

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsd-state.h"
#include "strutil.h"

static json_t *strv_json(char **l)
{
	json_t *a = json_array();
	for (char **p = l; a && p && *p; p++)
		if (json_array_append_new(a, json_string(*p)) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static int json_strv(json_t *a, char ***ret)
{
	char **l = NULL;
	size_t i;
	json_t *v;
	if (a && !json_is_array(a))
		return -EINVAL;
	json_array_foreach(a, i, v)
	{
		if (!json_is_string(v) || strv_extend(&l, json_string_value(v)) < 0) {
			strv_free(l);
			return json_is_string(v) ? -ENOMEM : -EINVAL;
		}
	}
	*ret = l;
	return 0;
}

int fsd_state_save(const char *path, const MountSpec *const *specs, size_t n)
{
	json_t *root = json_array();
	if (!root)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const MountSpec *s = specs[i];
		json_t *o = json_pack("{s:o, s:s, s:s, s:s, s:o, s:o, s:b, s:f, s:b, s:i}",
				      "lowers", strv_json(s->lowers), "upper", s->upper, "work",
				      s->work, "mountpoint", s->mountpoint, "ignore_files",
				      s->ignore_files ? strv_json(s->ignore_files) : json_null(),
				      "patterns", strv_json(s->patterns), "no_ignore", s->no_ignore,
				      "timeout", s->timeout, "writeback", s->writeback, "threads",
				      (int)s->max_threads);
		if (!o || json_array_append_new(root, o) < 0) {
			json_decref(root);
			return -ENOMEM;
		}
	}
	_cleanup_free_ char *tmp = strdupf("%s.tmp", path);
	if (!tmp) {
		json_decref(root);
		return -ENOMEM;
	}
	int r = json_dump_file(root, tmp, JSON_INDENT(2)) < 0 ? -EIO : 0;
	json_decref(root);
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		(void)unlink(tmp);
	return r;
}

int fsd_state_load(const char *path, MountSpec **ret_specs, size_t *ret_n)
{
	json_error_t err;
	json_t *root = json_load_file(path, 0, &err);
	*ret_specs = NULL;
	*ret_n = 0;
	if (!root)
		return access(path, F_OK) < 0 && errno == ENOENT ? 0 : -EINVAL;
	if (!json_is_array(root)) {
		json_decref(root);
		return -EINVAL;
	}
	size_t n = json_array_size(root), k = 0;
	MountSpec *specs = calloc(n ? n : 1, sizeof(MountSpec));
	if (!specs) {
		json_decref(root);
		return -ENOMEM;
	}
	int r = 0;
	for (size_t i = 0; i < n && r >= 0; i++) {
		json_t *o = json_array_get(root, i);
		MountSpec *s = &specs[k];
		const char *up = json_string_value(json_object_get(o, "upper"));
		const char *wk = json_string_value(json_object_get(o, "work"));
		const char *mp = json_string_value(json_object_get(o, "mountpoint"));
		if (!up || !wk || !mp)
			continue; /* a broken entry is dropped, the rest kept */
		json_t *ig = json_object_get(o, "ignore_files");
		if ((r = json_strv(json_object_get(o, "lowers"), &s->lowers)) < 0 ||
		    (r = json_strv(json_object_get(o, "patterns"), &s->patterns)) < 0 ||
		    (!json_is_null(ig) && ig && (r = json_strv(ig, &s->ignore_files)) < 0))
			break;
		s->upper = strdup(up);
		s->work = strdup(wk);
		s->mountpoint = strdup(mp);
		if (!s->upper || !s->work || !s->mountpoint) {
			r = -ENOMEM;
			k++;
			break;
		}
		s->no_ignore = json_is_true(json_object_get(o, "no_ignore"));
		s->writeback = json_is_true(json_object_get(o, "writeback"));
		s->timeout = json_number_value(json_object_get(o, "timeout"));
		json_int_t t = json_integer_value(json_object_get(o, "threads"));
		s->max_threads = t > 0 && t <= 256 ? (unsigned)t : 0;
		k++;
	}
	json_decref(root);
	if (r < 0) {
		for (size_t i = 0; i <= k && i < n; i++)
			mount_spec_done(&specs[i]);
		free(specs);
		return r;
	}
	*ret_specs = specs;
	*ret_n = k;
	return 0;
}
