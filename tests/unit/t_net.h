/* Network helpers for unit tests that start real servers on loopback. */
#ifndef CORRAL_T_NET_H
#define CORRAL_T_NET_H
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* A port on 127.0.0.1 that was free a moment ago (the kernel's pick). */
static inline unsigned t_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		a.sin_port = 0;
	if (fd >= 0)
		close(fd);
	return ntohs(a.sin_port);
}

/* What the host's sshd needs before it starts, on a machine where it never
 * ran: its privilege separation directory. */
static inline void t_sshd_prepare(void)
{
	mkdir("/run/sshd", 0755);
	chmod("/run/sshd", 0755);
}

#endif
