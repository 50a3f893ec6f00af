/* A forwarded UDP port: datagrams reaching the host port are relayed to the
 * guest port through one session per client address (a socket connected to
 * the guest), so the guest's replies go back to the client that asked, from
 * the forwarded port. Sessions idle for idle_ms expire; at most max exist,
 * the least recently used making room for a new client. */
#ifndef CORRAL_UDPFWD_H
#define CORRAL_UDPFWD_H
#include <netinet/in.h>
#include <stddef.h>

#define UDP_IDLE_MS 60000
#define UDP_MAX_SESSIONS 128

struct udp_relay;

/* fd: the bound host socket (taken over; closed by udp_relay_free). */
struct udp_relay *udp_relay_new(int fd, const struct sockaddr_in *guest, unsigned idle_ms,
				size_t max);
/* Waits up to timeout_ms (-1: until something happens) for datagrams,
 * relays them and expires idle sessions. */
void udp_relay_step(struct udp_relay *r, int timeout_ms);
size_t udp_relay_sessions(const struct udp_relay *r);
void udp_relay_free(struct udp_relay *r);
/* A thread body: serves r forever. */
void *udp_relay_main(void *r);

#endif
