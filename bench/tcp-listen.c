/* SPDX-License-Identifier: MIT */
/*
 * The "trivial service" of bench/superd-apply.py and bench/superd-footprint.py: listen
 * on 127.0.0.1:$PORT and close every connection. Costs one exec and no interpreter, so
 * the benchmark measures the supervisor rather than python's start-up.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void)
{
	const char *p = getenv("PORT");
	char *end;
	long port = p ? strtol(p, &end, 10) : 0;
	if (!p || *end || port < 1 || port > 65535)
		return fprintf(stderr, "tcp-listen: $PORT is not a port\n"), 2;

	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 64) < 0)
		return perror("tcp-listen"), 1;
	for (;;) {
		int c = accept(s, NULL, NULL);
		if (c >= 0)
			close(c);
	}
}
