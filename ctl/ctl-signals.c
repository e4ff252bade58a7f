/* SPDX-License-Identifier: MIT */
/*
 * Signals as an fd: the commands that wait (up, logs -f, status -w) poll it together
 * with the bus, so a signal is an event in their loop, never work in a handler.
 */

#include <errno.h>
#include <limits.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "ctl.h"
#include "time-util.h"

int ctl_signals_open(CtlSignals *s, bool hup)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (hup)
		sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, &s->old_mask) < 0)
		return -errno;
	s->fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s->fd < 0) {
		int r = -errno;
		(void)sigprocmask(SIG_SETMASK, &s->old_mask, NULL);
		return r;
	}
	return s->fd;
}

int ctl_signals_read(CtlSignals *s)
{
	struct signalfd_siginfo si;
	for (;;) {
		ssize_t n = read(s->fd, &si, sizeof(si));
		if (n == (ssize_t)sizeof(si))
			return (int)si.ssi_signo;
		if (n < 0 && errno == EINTR)
			continue;
		return 0;
	}
}

void ctl_signals_close(CtlSignals *s)
{
	if (s->fd < 0)
		return;
	close(s->fd);
	s->fd = -1;
	(void)sigprocmask(SIG_SETMASK, &s->old_mask, NULL);
}

int ctl_ms_until(uint64_t deadline)
{
	usec_t now = now_monotonic();
	if (deadline <= now)
		return 0;
	usec_t ms = (deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}
