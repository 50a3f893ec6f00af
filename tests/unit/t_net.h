/* Network helpers for unit tests that start real servers on loopback. */
#ifndef CORRAL_T_NET_H
#define CORRAL_T_NET_H
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
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

/* The host's sshd in the foreground on `port` with config file `conf`, its
 * log appended to `log`, after delay_ms; the caller stops it (SIGTERM). */
static inline pid_t t_sshd_start(const char *conf, unsigned port, const char *log,
				 unsigned delay_ms)
{
	char ports[16];
	snprintf(ports, sizeof(ports), "%u", port);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		dup2(fd, 2);
		usleep(delay_ms * 1000);
		execl("/usr/sbin/sshd", "/usr/sbin/sshd", "-D", "-e", "-f", conf, "-p", ports,
		      (char *)NULL);
		_exit(127);
	}
	return pid;
}

#endif
