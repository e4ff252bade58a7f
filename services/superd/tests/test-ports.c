/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "strutil.h"
#include "superd-ports.h"
#include "test.h"

/* A listening socket on addr:port (port 0: any); returns the fd, its port in *ret_port. */
static int listen_on(int family, const char *addr, uint16_t port, uint16_t *ret_port)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	if (family == AF_INET6) {
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		inet_pton(AF_INET6, addr, &s6->sin6_addr);
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		inet_pton(AF_INET, addr, &s4->sin_addr);
		len = sizeof(*s4);
	}
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 8) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	if (ret_port) {
		ASSERT_OK(getsockname(fd, (struct sockaddr *)&ss, &len));
		*ret_port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						     : ((struct sockaddr_in *)&ss)->sin_port);
	}
	return fd;
}

TEST(parse_proc_net_lines)
{
	PortListener l;
	ASSERT_EQ(port_parse_proc_net_line("   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 "
					   "00:00000000 00000000  1000        0 12345 1 "
					   "0000000000000000 100 0 0 10 0\n",
					   AF_INET, &l),
		  1);
	ASSERT_EQ(l.port, 8080);
	ASSERT_EQ(l.family, AF_INET);
	ASSERT_STREQ(l.address, "127.0.0.1");
	ASSERT_EQ(l.uid, 1000);
	ASSERT_EQ(l.inode, 12345);

	ASSERT_EQ(
	    port_parse_proc_net_line("   1: 00000000000000000000000001000000:0050 "
				     "00000000000000000000000000000000:0000 0A 00000000:00000000 "
				     "00:00000000 00000000     0        0 777 1 0 100 0 0 10 0",
				     AF_INET6, &l),
	    1);
	ASSERT_EQ(l.port, 80);
	ASSERT_STREQ(l.address, "::1");
	ASSERT_EQ(l.inode, 777);

	/* ESTABLISHED (01) is not a listener. */
	ASSERT_EQ(port_parse_proc_net_line("   2: 0100007F:1F90 0100007F:D431 01 00000000:00000000 "
					   "00:00000000 00000000  1000 0 999 1",
					   AF_INET, &l),
		  0);
	ASSERT_ERR(
	    port_parse_proc_net_line("  sl  local_address rem_address   st tx_queue rx_queue tr "
				     "tm->when retrnsmt   uid  timeout inode",
				     AF_INET, &l),
	    EBADMSG);
	ASSERT_ERR(port_parse_proc_net_line("0: 0100007F:1F90", AF_INET, &l), EBADMSG);
	ASSERT_ERR(port_parse_proc_net_line("   0: 0100007F:1F90 00000000:0000 0A 0:0 0:0 0 x 0 1",
					    AF_INET, &l),
		   EBADMSG);
}

TEST(pick_free_port)
{
	uint16_t port = 0;
	ASSERT_OK(port_pick_free(NULL, 0, &port));
	ASSERT_TRUE(port > 0);
	ASSERT_EQ(port_is_free(port), 1);

	int fd = listen_on(AF_INET, "127.0.0.1", port, NULL);
	ASSERT_OK(fd);
	ASSERT_EQ(port_is_free(port), 0);
	uint16_t other;
	ASSERT_OK(port_pick_free(&port, 1, &other));
	ASSERT_NE(other, port);
	close(fd);
	ASSERT_EQ(port_is_free(port), 1);
	ASSERT_ERR(port_is_free(0), EINVAL);
}

TEST(in_use_on_any_address)
{
	uint16_t port;
	int fd = listen_on(AF_INET, "0.0.0.0", 0, &port);
	ASSERT_OK(fd);
	ASSERT_EQ(port_is_free(port), 0);
	close(fd);

	fd = listen_on(AF_INET6, "::1", 0, &port);
	if (fd < 0)
		SKIP("no IPv6 loopback");
	/* A server bound to ::1 only still takes the port from one that wants "localhost". */
	ASSERT_EQ(port_is_free(port), 0);
	close(fd);
	ASSERT_EQ(port_is_free(port), 1);
}

TEST(sticky_port)
{
	uint16_t prev, port;
	ASSERT_OK(port_pick_free(NULL, 0, &prev));
	ASSERT_OK(port_pick(prev, NULL, 0, &port));
	ASSERT_EQ(port, prev);

	/* Taken meanwhile: a new one. */
	int fd = listen_on(AF_INET, "127.0.0.1", prev, NULL);
	ASSERT_OK(fd);
	ASSERT_OK(port_pick(prev, NULL, 0, &port));
	ASSERT_NE(port, prev);
	close(fd);

	/* Handed to another service that does not listen yet: a new one too. */
	ASSERT_OK(port_pick(prev, &prev, 1, &port));
	ASSERT_NE(port, prev);

	/* Nothing before: a fresh pick. */
	ASSERT_OK(port_pick(0, NULL, 0, &port));
	ASSERT_TRUE(port > 0);
}

/* A child named `name` listening on each port given (0: any); reports them on a pipe. */
static pid_t listener_child(const char *name, int n, const int *families, uint16_t *ret_ports)
{
	int p[2];
	ASSERT_OK(pipe2(p, O_CLOEXEC));
	pid_t pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_NAME, name);
		close(p[0]);
		for (int i = 0; i < n; i++) {
			uint16_t port;
			int fd = listen_on(families[i],
					   families[i] == AF_INET6 ? "::1" : "127.0.0.1", 0, &port);
			if (fd < 0)
				_exit(3);
			if (write(p[1], &port, sizeof(port)) != sizeof(port))
				_exit(4);
		}
		close(p[1]);
		pause();
		_exit(0);
	}
	close(p[1]);
	for (int i = 0; i < n; i++)
		ASSERT_EQ(read(p[0], &ret_ports[i], sizeof(uint16_t)), (ssize_t)sizeof(uint16_t));
	close(p[0]);
	return pid;
}

static void kill_child(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

TEST(who_holds_a_port)
{
	uint16_t port;
	int fam = AF_INET;
	pid_t pid = listener_child("locald-holder", 1, &fam, &port);

	PortListener l;
	ASSERT_OK(port_find_listener(port, &l));
	ASSERT_EQ(l.pid, pid);
	ASSERT_STREQ(l.comm, "locald-holder");
	ASSERT_STREQ(l.address, "127.0.0.1");
	ASSERT_EQ(l.uid, geteuid());

	char *s = NULL;
	ASSERT_OK(port_describe_holder(port, &s));
	char want[96];
	strfmt(want, sizeof(want), "port %u is in use by locald-holder (pid %d)", (unsigned)port,
	       (int)pid);
	ASSERT_STREQ(s, want);
	free(s);

	kill_child(pid);
	ASSERT_ERR(port_find_listener(port, &l), ENOENT);
	ASSERT_OK(port_describe_holder(port, &s));
	strfmt(want, sizeof(want), "port %u is in use", (unsigned)port);
	ASSERT_STREQ(s, want);
	free(s);
}

TEST(listening_ports_of_processes)
{
	int fams_a[2] = { AF_INET, AF_INET };
	uint16_t ports_a[2], port_b, port_c;
	pid_t a = listener_child("svc-a", 2, fams_a, ports_a);
	int fam6 = AF_INET6;
	int lo6 = listen_on(AF_INET6, "::1", 0, NULL);
	bool have6 = lo6 >= 0;
	if (have6)
		close(lo6);
	else
		fam6 = AF_INET;
	pid_t b = listener_child("svc-b", 1, &fam6, &port_b);
	int fam = AF_INET;
	pid_t c = listener_child("not-ours", 1, &fam, &port_c);

	pid_t pids[] = { a, b, getpid() };
	PortListener *l = NULL;
	size_t n = 0;
	ASSERT_OK(ports_listening_for_pids(pids, ELEMENTSOF(pids), &l, &n));
	ASSERT_EQ(n, 3);
	uint16_t want[3] = { ports_a[0], ports_a[1], port_b };
	/* ascending */
	for (int i = 0; i < 3; i++)
		for (int j = i + 1; j < 3; j++)
			if (want[j] < want[i]) {
				uint16_t x = want[i];
				want[i] = want[j];
				want[j] = x;
			}
	for (size_t i = 0; i < n; i++) {
		ASSERT_EQ(l[i].port, want[i]);
		ASSERT_NE(l[i].port, port_c);
		if (l[i].port == port_b) {
			ASSERT_EQ(l[i].pid, b);
			ASSERT_STREQ(l[i].comm, "svc-b");
			ASSERT_STREQ(l[i].address, have6 ? "::1" : "127.0.0.1");
		} else {
			ASSERT_EQ(l[i].pid, a);
			ASSERT_STREQ(l[i].comm, "svc-a");
		}
	}
	free(l);

	/* A process with no listener, or one that is gone, gives nothing. */
	pid_t none[] = { getpid(), 999999 };
	ASSERT_OK(ports_listening_for_pids(none, ELEMENTSOF(none), &l, &n));
	ASSERT_EQ(n, 0);
	ASSERT_NULL(l);

	kill_child(a);
	kill_child(b);
	kill_child(c);
}

TEST_MAIN();
