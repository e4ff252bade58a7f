/* SPDX-License-Identifier: MIT */
/*
 * `init` (write a locald.toml from what the directory has) and `try` (run a command with
 * a fresh $PORT, then offer to keep it as a service). Both only ever create locald.toml
 * (O_EXCL) or append to it after the result was checked: a user's file is never
 * rewritten.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "ctl.h"
#include "paths.h"
#include "project.h"
#include "strutil.h"

static const char init_help[] =
    "Usage: localctl init\n\n"
    "Write a locald.toml in the current directory from its Procfile, package.json\n"
    "(scripts.dev or scripts.start), pyproject.toml/manage.py/app.py or Makefile\n"
    "(targets dev, run, serve, start); on a terminal, ask when nothing is detected.\n"
    "Never overwrites an existing locald.toml.\n";

static const char try_help[] =
    "Usage: localctl try COMMAND [ARG…]\n\n"
    "Run COMMAND in the foreground with PORT set to a free port. Afterwards, on a\n"
    "terminal, offer to save it as a service in ./locald.toml (appended, after asking).\n"
    "The exit code is COMMAND's.\n";

static bool file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int toml_string(Buf *b, const char *s)
{
	int r = buf_append_byte(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; r >= 0 && *p; p++) {
		if (*p == '"' || *p == '\\')
			r = buf_printf(b, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			r = buf_printf(b, "\\u%04x", *p);
		else
			r = buf_append_byte(b, *p);
	}
	return r < 0 ? r : buf_append_byte(b, '"');
}

static int append_service(Buf *b, const char *name, const char *command, bool worker)
{
	int r = buf_printf(b, "\n[services.%s]\n", name);
	if (r >= 0 && worker)
		r = buf_append_str(b, "type = \"worker\"\n");
	if (r >= 0)
		r = buf_append_str(b, "command = ");
	if (r >= 0)
		r = toml_string(b, command);
	return r < 0 ? r : buf_append_str(b, "\n");
}

/* Check text as locald.toml of dir before it is written. */
static int check_toml(Ctl *ctl, const char *dir, const char *text, size_t len)
{
	_cleanup_free_ char *path = path_join(dir, "locald.toml");
	if (!path)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
	ProjectInput in = { .source = PROJECT_SOURCE_TOML,
			    .dir = dir,
			    .config_path = path,
			    .config = text,
			    .config_len = len };
	_cleanup_diag_list_ DiagList diags = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	if (project_load_memory(&in, &p, &diags) >= 0)
		return 0;
	for (size_t i = 0; i < diags.n; i++)
		if (diags.items[i].severity == DIAG_ERROR) {
			_cleanup_free_ char *s = diag_to_string(&diags.items[i]);
			return ctl_fail(ctl, EXIT_FAILED, "nothing was written", "%s",
					s ? s : "the result would not load");
		}
	return ctl_fail(ctl, EXIT_FAILED, "nothing was written", "the result would not load");
}

static int write_new(Ctl *ctl, const char *path, const char *text, size_t len)
{
	_cleanup_close_ int fd =
	    open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return ctl_fail(ctl, EXIT_FAILED,
				errno == EEXIST ? "edit it, or remove it to start over" : NULL,
				"%s: %s", path,
				errno == EEXIST ? "already exists" : strerror(errno));
	if (write(fd, text, len) != (ssize_t)len)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "writing %s: %s", path, strerror(errno));
	return 0;
}

/* A line from the terminal, stripped; NULL at end of input. */
static char *ask(const char *prompt, const char *def)
{
	printf("%s%s%s%s: ", prompt, def ? " [" : "", def ? def : "", def ? "]" : "");
	fflush(stdout);
	char line[1024];
	if (!fgets(line, sizeof(line), stdin))
		return NULL;
	strstrip(line);
	return strdup(*line || !def ? line : def);
}

/* ---- detection ---- */

static int detect_package_json(const char *dir, Buf *b)
{
	_cleanup_free_ char *path = path_join(dir, "package.json");
	if (!path || !file_exists(path))
		return 0;
	json_error_t err;
	json_t *root = json_load_file(path, 0, &err);
	if (!root)
		return 0;
	json_t *scripts = json_object_get(root, "scripts");
	const char *cmd = json_is_string(json_object_get(scripts, "dev"))     ? "npm run dev"
			  : json_is_string(json_object_get(scripts, "start")) ? "npm start"
									      : NULL;
	int r = cmd ? append_service(b, "web", cmd, false) : 0;
	json_decref(root);
	return r < 0 ? r : cmd ? 1 : 0;
}

static int detect_python(const char *dir, Buf *b)
{
	static const struct {
		const char *file, *command;
	} known[] = {
		{ "manage.py", "python3 manage.py runserver 127.0.0.1:$PORT" },
		{ "app.py", "python3 app.py" },
		{ "main.py", "python3 main.py" },
	};
	_cleanup_free_ char *py = path_join(dir, "pyproject.toml");
	for (size_t i = 0; i < ELEMENTSOF(known); i++) {
		_cleanup_free_ char *p = path_join(dir, known[i].file);
		if (p && file_exists(p)) {
			int r = append_service(b, "web", known[i].command, false);
			return r < 0 ? r : 1;
		}
	}
	(void)py;
	return 0;
}

static int detect_makefile(const char *dir, Buf *b)
{
	static const char *const targets[] = { "dev", "run", "serve", "start" };
	_cleanup_free_ char *path = path_join(dir, "Makefile");
	if (!path)
		return -ENOMEM;
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	char line[1024];
	const char *found = NULL;
	while (!found && fgets(line, sizeof(line), f))
		for (size_t i = 0; i < ELEMENTSOF(targets) && !found; i++) {
			const char *rest = startswith(line, targets[i]);
			if (rest && *rest == ':' && rest[1] != '=')
				found = targets[i];
		}
	fclose(f);
	if (!found)
		return 0;
	_cleanup_free_ char *cmd = strdupf("make %s", found);
	int r = cmd ? append_service(b, "web", cmd, false) : -ENOMEM;
	return r < 0 ? r : 1;
}

static int detect_procfile(const char *dir, Buf *b)
{
	_cleanup_free_ char *path = path_join(dir, "Procfile");
	if (!path || !file_exists(path))
		return 0;
	_cleanup_diag_list_ DiagList diags = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	if (project_load(path, &p, &diags) < 0)
		return -EINVAL;
	int r = 0;
	for (size_t i = 0; r >= 0 && i < p->n_services; i++) {
		const Service *s = &p->services[i];
		r = append_service(b, s->name, strempty(s->command), s->type == SERVICE_WORKER);
	}
	return r < 0 ? r : 1;
}

static int ask_services(Buf *b)
{
	printf("Nothing to detect here: describe the services (an empty command ends).\n");
	for (int n = 0;; n++) {
		_cleanup_free_ char *cmd = ask("Command (gets $PORT)", NULL);
		if (!cmd || !*cmd)
			return n > 0;
		_cleanup_free_ char *name = ask("Service name", n == 0 ? "web" : NULL);
		if (!name || !project_name_is_valid(name)) {
			printf("a name is a DNS label: a-z, 0-9 and '-'\n");
			n--;
			continue;
		}
		if (append_service(b, name, cmd, false) < 0)
			return -ENOMEM;
	}
}

int cmd_init(Ctl *ctl, int argc, char **argv)
{
	int pr = ctl_parse_simple(ctl, argc, argv, 0, init_help);
	if (pr >= 0)
		return pr;
	if (optind < argc)
		return ctl_usage(ctl, false, init_help);
	_cleanup_free_ char *dir = getcwd(NULL, 0), *name = NULL;
	_cleanup_free_ char *path = dir ? path_join(dir, "locald.toml") : NULL;
	if (!path || project_name_from_dir(dir, &name) < 0)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
	if (file_exists(path))
		return ctl_fail(ctl, EXIT_FAILED, "edit it, or remove it to start over",
				"%s already exists", path);

	_cleanup_buf_ Buf b = BUF_INIT(1 << 20);
	int r = buf_printf(&b, "[project]\nname = \"%s\"\n", name);
	const char *from = NULL;
	static const struct {
		const char *what;
		int (*detect)(const char *dir, Buf *b);
	} detectors[] = {
		{ "Procfile", detect_procfile },
		{ "package.json", detect_package_json },
		{ "a Python app", detect_python },
		{ "Makefile", detect_makefile },
	};
	for (size_t i = 0; r >= 0 && !from && i < ELEMENTSOF(detectors); i++) {
		r = detectors[i].detect(dir, &b);
		if (r > 0)
			from = detectors[i].what;
	}
	if (r == -EINVAL)
		return ctl_fail(ctl, EXIT_FAILED, "`localctl up` shows where",
				"the Procfile has errors");
	if (r >= 0 && !from) {
		if (!isatty(STDIN_FILENO) || !ctl->tty_out)
			return ctl_fail(
			    ctl, EXIT_FAILED,
			    "run `localctl init` on a terminal to describe the services, "
			    "or write locald.toml by hand",
			    "nothing to detect in %s (no Procfile, package.json, Python "
			    "app or Makefile)",
			    dir);
		r = ask_services(&b);
		if (r == 0)
			return ctl_fail(ctl, EXIT_FAILED, NULL,
					"no service given; nothing written");
		from = "your answers";
	}
	if (r < 0)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
	r = check_toml(ctl, dir, b.data, b.len);
	if (r)
		return r;
	r = write_new(ctl, path, b.data, b.len);
	if (r)
		return r;
	printf("wrote locald.toml (from %s):\n%s\n`localctl up` starts it.\n", from, b.data);
	return EXIT_OK;
}

/* ---- try ---- */

static int free_port(uint16_t *ret)
{
	_cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		return -errno;
	*ret = ntohs(a.sin_port);
	return 0;
}

static int save_as_service(Ctl *ctl, const char *command)
{
	_cleanup_free_ char *answer = ask("Save it as a service in locald.toml? (y/N)", NULL);
	if (!answer || (!streq(answer, "y") && !streq(answer, "Y") && !streq(answer, "yes")))
		return EXIT_OK;
	_cleanup_free_ char *name = ask("Service name", "web");
	if (!name || !project_name_is_valid(name))
		return ctl_fail(ctl, EXIT_USAGE, "a name is a DNS label: a-z, 0-9 and '-'",
				"\"%s\" is not a service name", strempty(name));
	_cleanup_free_ char *dir = getcwd(NULL, 0);
	_cleanup_free_ char *path = dir ? path_join(dir, "locald.toml") : NULL;
	if (!path)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
	/* The whole file as it would be, checked before anything is written. */
	_cleanup_buf_ Buf b = BUF_INIT(2 << 20);
	bool exists = file_exists(path);
	size_t old_len = 0;
	if (exists) {
		FILE *f = fopen(path, "re");
		char chunk[4096];
		size_t n;
		while (f && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
			if (buf_append(&b, chunk, n) < 0)
				break;
		if (f)
			fclose(f);
		old_len = b.len;
		if (old_len && b.data[old_len - 1] != '\n')
			buf_append_byte(&b, '\n');
	} else {
		_cleanup_free_ char *pname = NULL;
		if (project_name_from_dir(dir, &pname) < 0 ||
		    buf_printf(&b, "[project]\nname = \"%s\"\n", pname) < 0)
			return ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
	}
	size_t add_from = old_len;
	if (append_service(&b, name, command, false) < 0)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
	int r = check_toml(ctl, dir, b.data, b.len);
	if (r)
		return r;
	if (!exists)
		return write_new(ctl, path, b.data, b.len) ?: (printf("wrote %s\n", path), EXIT_OK);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "%s: %s", path, strerror(errno));
	size_t n = b.len - add_from;
	if (write(fd, b.data + add_from, n) != (ssize_t)n)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "writing %s: %s", path, strerror(errno));
	printf("added [services.%s] to %s\n", name, path);
	return EXIT_OK;
}

int cmd_try(Ctl *ctl, int argc, char **argv)
{
	int pr = ctl_parse_simple(ctl, argc, argv, CTL_PARSE_STOP_AT_OPERAND, try_help);
	if (pr >= 0)
		return pr;
	if (optind < argc && streq(argv[optind], "--"))
		optind++;
	if (optind >= argc)
		return ctl_usage(ctl, false, try_help);
	_cleanup_buf_ Buf cmd = BUF_INIT(64 * 1024);
	if (argc - optind == 1)
		buf_append_str(&cmd, argv[optind]);
	else
		for (int i = optind; i < argc; i++) {
			_cleanup_free_ char *q = shell_quote(argv[i]);
			if (!q || buf_printf(&cmd, "%s%s", i > optind ? " " : "", q) < 0)
				return ctl_fail(ctl, EXIT_FAILED, NULL, "command too long");
		}
	if (!cmd.data)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
	uint16_t port = 0;
	int r = free_port(&port);
	if (r < 0)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "no free port: %s", strerror(-r));
	char port_s[8];
	snprintf(port_s, sizeof(port_s), "%u", port);
	fprintf(stderr, "%stry: PORT=%u → http://127.0.0.1:%u (Ctrl-C ends it)%s\n",
		ctl_color(ctl, true, ANSI_DIM), port, port, ctl_color(ctl, true, ANSI_RESET));
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "fork: %s", strerror(errno));
	if (pid == 0) {
		setenv("PORT", port_s, 1);
		execl("/bin/sh", "sh", "-c", cmd.data, (char *)NULL);
		_exit(127);
	}
	/* Ctrl-C is for the command; we stay to report and offer to save it. */
	struct sigaction ign = { .sa_handler = SIG_IGN }, old_int, old_quit;
	sigaction(SIGINT, &ign, &old_int);
	sigaction(SIGQUIT, &ign, &old_quit);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGQUIT, &old_quit, NULL);
	int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	if (isatty(STDIN_FILENO) && ctl->tty_out) {
		r = save_as_service(ctl, cmd.data);
		if (r && !rc)
			rc = r;
	}
	return rc;
}
