/* SPDX-License-Identifier: MIT */
/*
 * Signals as an fd: the commands that wait (up, logs -f, status -w) poll it together
 * with the bus, so a signal is an event in their loop, never work in a handler; and
 * ctl_watch(), the event-or-tick loop `logs -f` and `status -w` share.
 */

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "bus-zmtp.h"
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

int ctl_watch(Ctl *ctl, const char *prefix, const char *what, int (*refresh)(void *userdata),
	      void *userdata)
{
	_cleanup_free_ char *ep = NULL;
	if (bus_endpoint(ctl->runtime_dir, "superd", BUS_SOCKET_EVENTS, &ep) < 0)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
	_cleanup_(bus_zmtp_subscriber_freep) BusZmtpSubscriber *sub = NULL;
	int r = bus_zmtp_subscriber_new(ep, &sub);
	if (r >= 0)
		r = bus_zmtp_subscriber_subscribe(sub, prefix);
	if (r < 0)
		return ctl_fail(ctl, EXIT_UNREACHABLE, NULL, "%s: %s", what, strerror(-r));
	CtlSignals sig = { .fd = -1 };
	r = ctl_signals_open(&sig, false);
	if (r < 0)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "signalfd: %s", strerror(-r));
	usec_t next = now_monotonic() + USEC_PER_SEC;
	int rc = 0;
	while (!rc) {
		struct pollfd p[2] = {
			{ .fd = sig.fd, .events = POLLIN },
			{ .fd = sub ? bus_zmtp_subscriber_fd(sub) : -1, .events = POLLIN },
		};
		if (poll(p, 2, ctl_ms_until(next)) < 0 && errno != EINTR)
			break;
		if (p[0].revents && ctl_signals_read(&sig))
			break;
		bool due = now_monotonic() >= next;
		while (sub) {
			BusEvent *ev = NULL;
			bool gap;
			r = bus_zmtp_subscriber_receive(sub, 0, &ev, &gap);
			if (r < 0) {
				/* The publisher went away: the next refresh finds out whether
				 * superd did (and says so). */
				if (r != -EAGAIN)
					sub = bus_zmtp_subscriber_free(sub);
				break;
			}
			bus_event_free(ev);
			due = true;
		}
		if (due) {
			rc = refresh(userdata);
			next = now_monotonic() + USEC_PER_SEC;
		}
	}
	ctl_signals_close(&sig);
	return rc;
}
