/* SPDX-License-Identifier: MIT */
/* localctl: the command line. Global options, then one table of commands. */

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl-privileged.h"
#include "ctl.h"
#include "log.h"
#include "strutil.h"

static const CtlCommand commands[] = {
	{ "up", cmd_up, "Start a project (superd too if needed), show progress, follow logs" },
	{ "down", cmd_down, "Stop every service of a project" },
	{ "start", cmd_start, "Start services" },
	{ "stop", cmd_stop, "Stop services" },
	{ "restart", cmd_restart, "Restart services" },
	{ "status", cmd_status, "Show services: state, health, port, URL, pid, uptime" },
	{ "ps", cmd_status, NULL },
	{ "logs", cmd_logs, "Show (and follow) logs, merged by time" },
	{ "env", cmd_env, "Print the environment a service runs with" },
	{ "run", cmd_run, "Run a command with a service's environment" },
	{ "exec", cmd_run, NULL },
	{ "try", cmd_try, "Run a command with a fresh $PORT in the foreground" },
	{ "init", cmd_init, "Write a locald.toml for the current directory" },
	{ "open", cmd_open, "Print (and open) a service's URL" },
	{ "dashboard", cmd_dashboard, "Print (and open) the dashboard's URL" },
	{ "server", cmd_server, "The daemons: server status|stop|restart" },
	{ "version", cmd_version, "Print the versions of localctl and the daemons" },
	{ "doctor", cmd_doctor,
	  "Check the setup: shim, ports, CA trust, /etc/hosts, cgroups, daemons" },
	{ "trust", cmd_trust, "Trust locald's CA (system store via the shim, and browsers' NSS)" },
	{ "untrust", cmd_untrust, "Remove locald's CA from the stores `trust` added it to" },
	{ "admin", cmd_admin, "Privileged setup: sudo localctl admin setup|uninstall" },
	{ "fs", cmd_fs, "Build-context overlays: fs mount|unmount|ls|stats" },
	{ "vm", cmd_vm, "Micro-VMs: vm run|create|start|stop|rm|ls|console" },
};

static int help(Ctl *ctl, FILE *f)
{
	fprintf(f, "localctl — run your project's services locally\n\n"
		   "Usage: localctl [--no-color] COMMAND [ARGS…]\n\nCommands:\n");
	for (size_t i = 0; i < ELEMENTSOF(commands); i++)
		if (commands[i].summary)
			fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nServices are named `service` (in the project found from the current\n"
		   "directory) or `project:service` from anywhere. `localctl COMMAND --help`\n"
		   "describes a command. Exit codes: 0 ok, 1 failed, 2 usage, 3 locald not\n"
		   "running or not answering, 4 no such project or service.\n");
	return f == stdout ? EXIT_OK : EXIT_USAGE;
}

static void ctl_done(Ctl *ctl)
{
	bus_zmtp_client_free(ctl->superd);
	ctl->superd = NULL;
	free(ctl->runtime_dir);
	free(ctl->state_dir);
}

int main(int argc, char **argv)
{
	Ctl ctl = { 0 };
	setlocale(LC_CTYPE, "");
	log_setup("localctl");
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (streq(a, "--no-color") || streq(a, "--no-colour"))
			ctl.no_color = true;
		else if (streq(a, "-h") || streq(a, "--help")) {
			ctl_output_init(&ctl);
			return help(&ctl, stdout);
		} else if (streq(a, "-V") || streq(a, "--version")) {
			ctl_output_init(&ctl);
			return cmd_version(&ctl, 1, (char *[]){ (char *)"version", NULL });
		} else if (streq(a, "-q") || streq(a, "--quiet"))
			ctl.quiet = true;
		else {
			ctl_output_init(&ctl);
			return ctl_fail(&ctl, EXIT_USAGE, "`localctl --help` lists the options",
					"unknown option %s", a);
		}
	}
	ctl_output_init(&ctl);
	if (i >= argc)
		return help(&ctl, stderr);

	const char *name = argv[i];
	if (streq(name, "help"))
		return help(&ctl, stdout);
	for (size_t k = 0; k < ELEMENTSOF(commands); k++)
		if (streq(commands[k].name, name)) {
			int r = commands[k].func(&ctl, argc - i, argv + i);
			fflush(stdout);
			ctl_done(&ctl);
			return r;
		}
	return ctl_fail(&ctl, EXIT_USAGE, "`localctl --help` lists the commands",
			"unknown command \"%s\"", name);
}
