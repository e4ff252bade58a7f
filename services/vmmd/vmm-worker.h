/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The per-VM worker: `locald-vmmd --worker ...`, started by vmmd with its files already
 * open. It sandboxes itself (vmm-sandbox.h), builds the VM and runs it; vmmd talks to it
 * over a SOCK_SEQPACKET socket, one message per packet, first byte the type:
 *
 *   worker -> vmmd   'R' <boot protocol> '\n' <command line>    running
 *                    'O' <console bytes>                         serial output
 *                    'E' <kind:int32> <code:int32> <message>     the VM ended (then exit 0)
 *                    'F' <message>                               could not start (then exit 1)
 *                    'N' <message>                               a notice (sandbox gaps)
 *   vmmd -> worker   'I' <bytes>                                 console input
 *                    'S'                                         graceful shutdown request
 * When the socket closes the worker stops the VM and exits. vmmd kills it with SIGKILL
 * when a graceful stop times out, and reports any other death as the VM's exit reason.
 *
 * Arguments: --ctl-fd N --kernel-fd N [--initrd-fd N] [--disk-fd N[:ro]]... [--rng]
 *            --vcpus N --memory-mib N [--cmdline S] [--root DIR]
 */

#include <stdint.h>

#define WORKER_MSG_MAX 65536

enum {
	WORKER_MSG_RUNNING = 'R',
	WORKER_MSG_OUTPUT = 'O',
	WORKER_MSG_EXIT = 'E',
	WORKER_MSG_FAILED = 'F',
	WORKER_MSG_NOTICE = 'N',
	WORKER_MSG_INPUT = 'I',
	WORKER_MSG_SHUTDOWN = 'S',
};

int worker_main(int argc, char **argv);

/*
 * `locald-vmmd run`: one VM in the foreground without the daemon, console on stdio
 * (for debugging and the benchmark); exits with the guest's code.
 */
int run_main(int argc, char **argv);
