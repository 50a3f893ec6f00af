/* KVM or TCG. A /dev/kvm that answers KVM_CREATE_VM is not always one a
 * stock guest kernel can run on: hosts that are themselves nested-PVM
 * guests (module kvm_pvm, nested_pvm=1 on the kernel command line) run only
 * PVM-built guests, and a Debian kernel hangs right after "Probing EDD".
 * "auto" therefore looks at those signs before trusting /dev/kvm. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "core/base/util.h"
#include "providers/kvm/kvm.h"

#define KVM_GROUP_FIX "join the group that owns /dev/kvm (Debian: `usermod -aG kvm USER`, " \
		      "then log in again)"

/* Whether /dev/kvm makes a VM; *denied: it is there but this user may not
 * open it (not in its group), which is no error: TCG runs instead. */
static bool dev_kvm_usable(bool *denied)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	*denied = fd < 0 && (errno == EACCES || errno == EPERM);
	if (fd < 0)
		return false;
	bool ok = ioctl(fd, KVM_GET_API_VERSION, 0) == KVM_API_VERSION;
	int vm = ok ? ioctl(fd, KVM_CREATE_VM, 0) : -1;
	if (vm >= 0)
		close(vm);
	close(fd);
	return vm >= 0;
}

static bool cmdline_has(const char *cmdline, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = cmdline; (p = strstr(p, word)); p += n)
		if ((p == cmdline || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || !p[n]))
			return true;
	return false;
}

void accel_probe(struct accel_facts *f)
{
	char *cmdline = NULL;
	struct diag ignored = {0};
	f->dev_kvm = dev_kvm_usable(&f->dev_kvm_denied);
	f->pvm_module = path_exists("/sys/module/kvm_pvm");
	f->nested_pvm = read_file("/proc/cmdline", 1 << 16, &cmdline, NULL, &ignored) == 0 &&
			cmdline_has(cmdline, "nested_pvm=1");
	free(cmdline);
}

static const char *pvm_sign(const struct accel_facts *f)
{
	if (f->pvm_module && f->nested_pvm)
		return "kvm_pvm is loaded and nested_pvm=1 is on the host's command line";
	if (f->pvm_module)
		return "kvm_pvm is loaded";
	return f->nested_pvm ? "nested_pvm=1 is on the host's command line" : NULL;
}

int accel_pick(const char *want, const struct accel_facts *f, bool *kvm, char *why, size_t n,
	       struct diag *d)
{
	const char *pvm = pvm_sign(f);
	why[0] = '\0';
	if (want && strcmp(want, "tcg") == 0) {
		*kvm = false;
		return 0;
	}
	if (want && strcmp(want, "kvm") == 0) {
		if (f->dev_kvm_denied) {
			diag_fail(d, "accel kvm: you may not open /dev/kvm");
			return diag_hint(d, "%s, or set `accel: tcg` (or auto)", KVM_GROUP_FIX);
		}
		if (!f->dev_kvm) {
			diag_fail(d, "accel kvm: /dev/kvm is missing or unusable");
			return diag_hint(d, "load kvm_intel or kvm_amd, check access to /dev/kvm, "
					 "or set `accel: tcg` (or auto)");
		}
		if (pvm)
			snprintf(why, n, "accel kvm on a nested-PVM host (%s): a stock guest "
				 "kernel may hang; `accel: auto` would use TCG", pvm);
		*kvm = true;
		return 0;
	}
	*kvm = f->dev_kvm && !pvm;
	if (pvm)
		snprintf(why, n, "using TCG, not KVM: /dev/kvm is nested PVM (%s), which runs "
			 "only PVM guest kernels", pvm);
	else if (f->dev_kvm_denied)
		snprintf(why, n, "using TCG (slow): you may not open /dev/kvm; for KVM, %s",
			 KVM_GROUP_FIX);
	else if (!f->dev_kvm)
		snprintf(why, n, "using TCG (slow): /dev/kvm is missing or unusable");
	return 0;
}

#if defined(__x86_64__)
/* A TSC reading and the time it was taken, retried until the two clock
 * reads around it are close, so a preemption does not skew the rate. */
static void tsc_at(uint64_t *tsc, uint64_t *ns)
{
	for (int i = 0; i < 100; i++) {
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC_RAW, &a);
		*tsc = __rdtsc();
		clock_gettime(CLOCK_MONOTONIC_RAW, &b);
		uint64_t na = (uint64_t)a.tv_sec * 1000000000u + (uint64_t)a.tv_nsec;
		*ns = (uint64_t)b.tv_sec * 1000000000u + (uint64_t)b.tv_nsec;
		if (*ns - na < 2000)
			break;
	}
}

unsigned accel_tsc_khz(void)
{
	uint64_t t0, n0, t1, n1;
	tsc_at(&t0, &n0);
	struct timespec pause = {.tv_nsec = 5000000};
	nanosleep(&pause, NULL);
	tsc_at(&t1, &n1);
	return n1 > n0 ? (unsigned)((t1 - t0) * 1000000u / (n1 - n0)) : 0;
}
#else
unsigned accel_tsc_khz(void) { return 0; }
#endif
