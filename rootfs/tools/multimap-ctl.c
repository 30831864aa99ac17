// SPDX-License-Identifier: GPL-2.0
/*
 * multimap-ctl: configure a /dev/multimap buffer, map it, write a distinct
 * token into the first word of every page (and its complement into the
 * last) through the mapping, check what the kernel reads back, and report
 * as JSON.  Lifecycle actions (fork, partial munmap,
 * mremap, close while mapped, mprotect) run in the order given.  With
 * --hold the mapping stays until SIGTERM/SIGINT/SIGUSR1, so the host can
 * inspect it.
 *
 * "ok" is true and the exit status 0 only when every check passed (contents,
 * page-table walk, each action, the race); 1 when one failed or a call did
 * (the JSON says which); 2 on an argument it cannot parse (said on stderr).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/io_uring.h>
#include <setjmp.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <grp.h>
#include <sys/prctl.h>

#include "multimap.h"
#include "json.h"

#define MAX_ACTIONS 16

static const char *const backings[] = { NULL, "pages", "contig", "vmalloc" };
static const char *const mappings[] = { NULL, "remap", "remap_runs", "insert",
					"fault", "vmalloc_range", "insert_one" };
static const char *const sources[] = { NULL, "pages", "buddy", "cma", "vmalloc" };

struct opts {
	struct multimap_config cfg;
	int private_map;
	int private_write;
	int writable;
	unsigned long long offset;	/* pages */
	unsigned long long length;	/* pages, 0 = rest of buffer */
	unsigned long long seed;
	int hold;
	int list_pages;
	int bench;
	int race_read;
	const char *device;
	long as_user;	/* uid to drop to before opening the device, or -1 */
	const char *actions[MAX_ACTIONS];
	int nactions;
};

static long page_size;
static uint64_t hole = UINT64_MAX;	/* page unmapped by munmap-part */
static volatile sig_atomic_t released;
static int checks_failed;	/* a check or action failed: "ok":false, exit 1 */

static int lookup(const char *const *table, int n, const char *name)
{
	int i;

	for (i = 1; i < n; i++)
		if (!strcmp(table[i], name))
			return i;
	return -1;
}

static const char *errname(int err)
{
	const char *name = strerrorname_np(err);

	return name ? name : "E?";
}

static uint64_t token(const struct opts *o, uint64_t index)
{
	return (o->seed << 32) ^ (0x6d6d0000ULL << 32) ^ (index + 1);
}

/* The standard CRC-32 (zlib), matching the kernel's crc32_le(~0) ^ ~0. */
static uint32_t crc32(const unsigned char *p, size_t len)
{
	static uint32_t table[256];
	uint32_t crc = ~0U;
	size_t i;

	if (!table[1]) {
		for (i = 0; i < 256; i++) {
			uint32_t c = i;
			int k;

			for (k = 0; k < 8; k++)
				c = c & 1 ? 0xedb88320U ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
	}
	for (i = 0; i < len; i++)
		crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void on_signal(int sig)
{
	(void)sig;
	released = 1;
}

static void fail(const char *stage, int err)
{
	json_bool("ok", 0);
	json_str("stage", stage);
	json_str("errno", errname(err));
	json_close('}');
	putchar('\n');
	exit(1);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: multimap-ctl [--backing pages|contig|vmalloc]\n"
		"  [--mapping remap|remap_runs|insert|fault|vmalloc_range|insert_one]\n"
		"  [--pages N] [--private] [--private-write] [--read-only] [--offset PAGES] [--length PAGES]\n"
		"  [--seed N] [--do fork|munmap-part|mremap-grow|mremap-move|close|mprotect-write|\n"
		"        readback|madvise-dontneed|vmsplice|longterm-pin|walk-kinds|walk-tagged]...\n"
		"  [--list-pages] [--bench] [--race-read] [--hold] [--device PATH] [--as-user UID]\n");
	exit(2);
}

/* A whole number in [0, max] (decimal, 0x hex or 0 octal), or a clear error and exit 2. */
static unsigned long long number(const char *arg, const char *name,
				 unsigned long long max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 0);
	if (errno == ERANGE || (!errno && v > max)) {
		fprintf(stderr, "multimap-ctl: --%s: out of range (at most %llu): %s\n",
			name, max, arg);
		exit(2);
	}
	if (errno || *end || !isdigit((unsigned char)arg[0])) {
		fprintf(stderr, "multimap-ctl: --%s: not a number: %s\n", name, arg);
		exit(2);
	}
	return v;
}

static int choice(const char *const *table, int n, const char *name, const char *arg)
{
	int v = lookup(table, n, arg);

	if (v < 0) {
		fprintf(stderr, "multimap-ctl: --%s: unknown value: %s\n", name, arg);
		usage();
	}
	return v;
}

static void parse(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "backing", required_argument, NULL, 'b' },
		{ "mapping", required_argument, NULL, 'm' },
		{ "pages", required_argument, NULL, 'n' },
		{ "private", no_argument, NULL, 'P' },
		{ "private-write", no_argument, NULL, 'W' },
		{ "read-only", no_argument, NULL, 'r' },
		{ "offset", required_argument, NULL, 'o' },
		{ "length", required_argument, NULL, 'l' },
		{ "seed", required_argument, NULL, 's' },
		{ "do", required_argument, NULL, 'd' },
		{ "hold", no_argument, NULL, 'H' },
		{ "list-pages", no_argument, NULL, 'L' },
		{ "bench", no_argument, NULL, 'B' },
		{ "race-read", no_argument, NULL, 'R' },
		{ "device", required_argument, NULL, 'D' },
		{ "flags", required_argument, NULL, 'f' },
		{ "version", required_argument, NULL, 'V' },
		{ "as-user", required_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->cfg.version = MULTIMAP_UAPI_VERSION;
	o->cfg.backing = MULTIMAP_BACKING_PAGES;
	o->cfg.mapping = MULTIMAP_MAP_REMAP;
	o->cfg.pages = 16;
	o->writable = 1;
	o->seed = 0x5eed;
	o->device = "/dev/multimap";
	o->as_user = -1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			o->cfg.backing = choice(backings, 4, "backing", optarg);
			break;
		case 'm':
			o->cfg.mapping = choice(mappings, 7, "mapping", optarg);
			break;
		case 'n':
			o->cfg.pages = number(optarg, "pages", ULLONG_MAX);
			break;
		case 'P':
			o->private_map = 1;
			break;
		case 'W':
			o->private_map = 1;
			o->private_write = 1;
			break;
		case 'r':
			o->writable = 0;
			break;
		case 'o':
			o->offset = number(optarg, "offset", SIZE_MAX / page_size);
			break;
		case 'l':
			o->length = number(optarg, "length", SIZE_MAX / page_size);
			break;
		case 's':
			o->seed = number(optarg, "seed", ULLONG_MAX);
			break;
		case 'd':
			if (o->nactions == MAX_ACTIONS)
				usage();
			o->actions[o->nactions++] = optarg;
			break;
		case 'H':
			o->hold = 1;
			break;
		case 'L':
			o->list_pages = 1;
			break;
		case 'B':
			o->bench = 1;
			break;
		case 'R':
			o->race_read = 1;
			break;
		case 'D':
			o->device = optarg;
			break;
		case 'f':
			o->cfg.flags = number(optarg, "flags", UINT32_MAX);
			break;
		case 'V':
			o->cfg.version = number(optarg, "version", UINT32_MAX);
			break;
		case 'U':
			o->as_user = number(optarg, "as-user", INT_MAX);
			break;
		default:
			usage();
		}
	}
	if (optind != argc) {
		fprintf(stderr, "multimap-ctl: unexpected argument: %s\n", argv[optind]);
		usage();
	}
}

/* Every page of [addr, addr + n pages) holds its token, as the kernel sees it. */
static int check_contents(int fd, const struct opts *o, unsigned char *addr,
			  uint64_t first, uint64_t n, int expect_tokens)
{
	struct multimap_page_sum *sums = calloc(n, sizeof(*sums));
	struct multimap_readback rb = { first, n, (uintptr_t)sums };
	uint64_t i;
	int ok = 1;

	if (!sums || ioctl(fd, MULTIMAP_IOC_READBACK, &rb))
		return -1;
	for (i = 0; i < n && ok; i++) {
		unsigned char *page = addr + i * page_size;

		if (expect_tokens && sums[i].head != token(o, first + i))
			ok = 0;
		if (sums[i].head != *(uint64_t *)page)
			ok = 0;
		if (sums[i].crc32 != crc32(page, page_size))
			ok = 0;
	}
	free(sums);
	return ok;
}

static void action_result(const char *name, int ok, const char *detail, int err)
{
	if (!ok)
		checks_failed = 1;
	json_open(NULL, '{');
	json_str("action", name);
	json_bool("ok", ok);
	if (detail)
		json_str("detail", detail);
	if (err)
		json_str("errno", errname(err));
	json_close('}');
}

static int verify_tokens(const struct opts *o, unsigned char *addr,
			 uint64_t first, uint64_t n)
{
	uint64_t i;

	for (i = 0; i < n; i++) {
		if (first + i - o->offset == hole)
			continue;
		if (*(volatile uint64_t *)(addr + i * page_size) != token(o, first + i))
			return 0;
	}
	return 1;
}

/*
 * Actions for the fixes of the maintainer's review: MADV_DONTNEED then
 * re-access, vmsplice of a page that outlives the buffer, a long-term pin
 * (io_uring fixed buffers, FOLL_LONGTERM), the page-table walk over every
 * kind of VMA, and a tagged pointer handed to the walk (arm64).
 */
static sigjmp_buf bus_jmp;
static volatile sig_atomic_t bus_armed;

static void on_sigbus(int sig)
{
	(void)sig;
	if (bus_armed)
		siglongjmp(bus_jmp, 1);
	_exit(128 + SIGBUS);
}

/* verify_tokens(), but a SIGBUS is an answer (0, *sigbus set) instead of death. */
static int verify_tokens_guarded(const struct opts *o, unsigned char *addr,
				 uint64_t n, int *sigbus)
{
	struct sigaction sa = { .sa_handler = on_sigbus }, old;
	int ok = 0;

	*sigbus = 0;
	sigaction(SIGBUS, &sa, &old);
	if (sigsetjmp(bus_jmp, 1)) {
		*sigbus = 1;
	} else {
		bus_armed = 1;
		ok = verify_tokens(o, addr, o->offset, n);
	}
	bus_armed = 0;
	sigaction(SIGBUS, &old, NULL);
	return ok;
}

static void action_madvise_dontneed(const struct opts *o, unsigned char *addr,
				    uint64_t n)
{
	const char *a = "madvise-dontneed";
	int sigbus, ok;

	if (madvise(addr, n * page_size, MADV_DONTNEED)) {
		int err = errno;

		/* VM_PFNMAP: madvise refuses; the mapping must be untouched. */
		ok = err == EINVAL && verify_tokens_guarded(o, addr, n, &sigbus);
		action_result(a, ok, ok ? "refused (VM_PFNMAP); tokens intact" :
			      "refused and the tokens changed", err);
		return;
	}
	ok = verify_tokens_guarded(o, addr, n, &sigbus);
	action_result(a, ok, ok ? "zapped; every page faulted back with its token" :
		      sigbus ? "zapped; re-access got SIGBUS" :
		      "zapped; the pages came back with other data", 0);
}

/*
 * vmsplice one page of the mapping into a pipe, then unmap and close
 * everything: the buffer is freed while the pipe still holds the page.  The
 * page must stay valid (a reference the allocator honours) or vmsplice must
 * have been refused (VM_PFNMAP: EFAULT).  Ends the mapping: the last action.
 */
static void action_vmsplice(int *fdp, const struct opts *o,
			    unsigned char *addr, uint64_t *np)
{
	const char *a = "vmsplice";
	struct iovec iov = { addr, page_size };
	uint64_t head = 0, want = token(o, o->offset);
	int pipefd[2];
	ssize_t len;

	if (pipe(pipefd)) {
		action_result(a, 0, "pipe", errno);
		return;
	}
	len = vmsplice(pipefd[1], &iov, 1, 0);
	if (len < 0) {
		int err = errno;

		action_result(a, err == EFAULT, err == EFAULT ?
			      "refused: no struct page to pin (VM_PFNMAP)" :
			      "vmsplice failed", err);
		close(pipefd[0]);
		close(pipefd[1]);
		return;
	}
	munmap(addr, *np * page_size);
	*np = 0;
	if (*fdp >= 0)
		close(*fdp);
	*fdp = -1;
	if (read(pipefd[0], &head, sizeof(head)) != sizeof(head))
		head = ~want;
	close(pipefd[0]);
	close(pipefd[1]);
	action_result(a, len == page_size && head == want, head == want ?
		      "the pipe still read the page's token after the buffer was freed" :
		      "the pipe's page changed after the buffer was freed", 0);
}

#define LONGTERM_PIN_TIMEOUT_S	10

/* The child: pin the mapping FOLL_LONGTERM through io_uring fixed buffers. */
static int longterm_pin_child(unsigned char *addr, uint64_t n)
{
	struct io_uring_params p = { 0 };
	struct iovec iov = { addr, n * page_size };
	int ring;

	alarm(LONGTERM_PIN_TIMEOUT_S);	/* default action: fatal, ends GUP */
	ring = syscall(__NR_io_uring_setup, 1, &p);
	if (ring < 0)
		return errno;
	if (syscall(__NR_io_uring_register, ring, IORING_REGISTER_BUFFERS, &iov, 1))
		return errno;
	return 0;
}

static void action_longterm_pin(unsigned char *addr, uint64_t n)
{
	const char *a = "longterm-pin";
	struct timespec limit = { LONGTERM_PIN_TIMEOUT_S + 5, 0 };
	sigset_t chld, old;
	int status = 0, code;
	pid_t pid;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old);
	pid = fork();
	if (pid == 0)
		_exit(longterm_pin_child(addr, n) & 0xff);
	if (pid < 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		action_result(a, 0, "fork", errno);
		return;
	}
	/* Bounded: the child's alarm ends it; this is the backstop. */
	if (sigtimedwait(&chld, NULL, &limit) < 0)
		kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (WIFSIGNALED(status)) {
		action_result(a, 0, WTERMSIG(status) == SIGALRM ?
			      "the pin did not return in 10 s (GUP retrying)" :
			      "the pinning child was killed", 0);
		return;
	}
	code = WEXITSTATUS(status);
	if (!code)
		action_result(a, 1, "pinned FOLL_LONGTERM and released", 0);
	else if (code == EOPNOTSUPP)	/* io_uring checks the file after pinning */
		action_result(a, 1, "pinned FOLL_LONGTERM; io_uring then refused file memory",
			      code);
	else if (code == EFAULT)
		action_result(a, 1, "refused: no struct page to pin (VM_PFNMAP)", code);
	else
		action_result(a, 0, "io_uring buffer registration failed", code);
}

/* /proc/self/pagemap's PFN for a page (root sees PFNs), -1 when not present. */
static int64_t pagemap_pfn(int pm, const void *p)
{
	uint64_t e;

	if (pread(pm, &e, sizeof(e), (uintptr_t)p / page_size * sizeof(e)) != sizeof(e))
		return -2;
	return e >> 63 ? (int64_t)(e & ((1ULL << 55) - 1)) : -1;
}

/* Bit 22 of /proc/kpageflags: THP. */
static int page_is_thp(int pm, const void *p)
{
	int64_t pfn = pagemap_pfn(pm, p);
	int kf = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	uint64_t flags = 0;

	if (kf < 0 || pfn < 0 ||
	    pread(kf, &flags, sizeof(flags), pfn * sizeof(flags)) != sizeof(flags))
		flags = 0;
	if (kf >= 0)
		close(kf);
	return !!(flags & (1ULL << 22));
}

/*
 * WALK of [p, p + n pages) against pagemap (a hole or an untouched range
 * must read not mapped); appends "kind=ok", "kind=ok(huge)" (a THP or
 * hugetlb page backs it), "kind=N-mismatches" or "kind=ERRNO" to detail.
 */
static void walk_kind(int fd, int pm, const char *kind, unsigned char *p,
		      uint64_t n, int touched, int *all_ok, char *detail, size_t size)
{
	uint64_t *w = calloc(n, sizeof(*w)), i, mismatches = 0;
	struct multimap_walk req = { (uintptr_t)p, n, (uintptr_t)w };
	size_t used = strlen(detail);
	int err = 0;

	if (!w || ioctl(fd, MULTIMAP_IOC_WALK, &req))
		err = w ? errno : ENOMEM;
	for (i = 0; !err && i < n; i++) {
		int64_t pm_pfn = touched ? pagemap_pfn(pm, p + i * page_size) : -1;
		uint64_t want = pm_pfn < 0 ? MULTIMAP_WALK_NOT_MAPPED : (uint64_t)pm_pfn;

		mismatches += w[i] != want;
	}
	*all_ok &= !err && !mismatches;
	if (err)
		snprintf(detail + used, size - used, "%s=%s ", kind, errname(err));
	else if (mismatches)
		snprintf(detail + used, size - used, "%s=%llu-mismatches ", kind,
			 (unsigned long long)mismatches);
	else
		snprintf(detail + used, size - used, "%s=ok%s ", kind,
			 touched && page_is_thp(pm, p) ? "(huge)" : "");
	free(w);
}

static unsigned char *map_aligned(size_t len, size_t align, int flags)
{
	unsigned char *p = mmap(NULL, len + align, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
	uintptr_t a;

	if (p == MAP_FAILED)
		return NULL;
	a = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
	if (a > (uintptr_t)p)
		munmap(p, a - (uintptr_t)p);
	munmap((unsigned char *)a + len, (uintptr_t)p + align - a);
	return (unsigned char *)a;
}

static void touch(unsigned char *p, uint64_t n)
{
	uint64_t i;

	for (i = 0; i < n; i++)
		p[i * page_size] = 1;
}

#define HUGE_2M (2UL << 20)
#define HUGE_1G (1UL << 30)

/*
 * The page-table walk over every kind of VMA it can meet, compared with
 * /proc/self/pagemap: anonymous 4K pages, an anonymous THP (2 MiB aligned,
 * MADV_HUGEPAGE), a hole, an untouched mapping, hugetlb (when the pool has
 * pages: vm.nr_hugepages) and, through the caller, multimap's own mapping.
 */
static void action_walk_kinds(int fd)
{
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC), all_ok = 1;
	uint64_t huge = HUGE_2M / page_size;
	char detail[256] = "";
	unsigned char *p;

	if (pm < 0) {
		action_result("walk-kinds", 0, "/proc/self/pagemap", errno);
		return;
	}
	p = map_aligned(16 * page_size, page_size, 0);
	if (p) {
		madvise(p, 16 * page_size, MADV_NOHUGEPAGE);
		touch(p, 16);
		walk_kind(fd, pm, "anon", p, 16, 1, &all_ok, detail, sizeof(detail));
		munmap(p + 12 * page_size, 4 * page_size);
		walk_kind(fd, pm, "hole", p + 12 * page_size, 4, 0, &all_ok,
			  detail, sizeof(detail));
		munmap(p, 12 * page_size);
	}
	p = map_aligned(2 * HUGE_2M, HUGE_2M, 0);
	if (p) {
		madvise(p, 2 * HUGE_2M, MADV_HUGEPAGE);
		touch(p, huge);	/* the second 2 MiB stays untouched */
		walk_kind(fd, pm, "thp", p, huge, 1, &all_ok, detail, sizeof(detail));
		walk_kind(fd, pm, "untouched", p + HUGE_2M, 8, 0, &all_ok,
			  detail, sizeof(detail));
		munmap(p, 2 * HUGE_2M);
	}
	p = mmap(NULL, HUGE_2M, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (p != MAP_FAILED) {
		touch(p, 1);
		walk_kind(fd, pm, "hugetlb", p, huge, 1, &all_ok, detail, sizeof(detail));
		munmap(p, HUGE_2M);
	} else {
		strncat(detail, "hugetlb=none-reserved ", sizeof(detail) - strlen(detail) - 1);
	}
	/* A PUD leaf: a 1 GiB hugetlb page, when booted with hugepagesz=1G hugepages=1. */
	p = mmap(NULL, HUGE_1G, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
		 MAP_HUGETLB | (30 << MAP_HUGE_SHIFT), -1, 0);
	if (p != MAP_FAILED) {
		touch(p, 1);
		/* Its first and last 4096 pages (one WALK takes at most max_pages). */
		walk_kind(fd, pm, "hugetlb1g", p, 4096, 1, &all_ok, detail, sizeof(detail));
		walk_kind(fd, pm, "hugetlb1g-end", p + HUGE_1G - 4096 * page_size, 4096, 1,
			  &all_ok, detail, sizeof(detail));
		munmap(p, HUGE_1G);
	} else {
		strncat(detail, "hugetlb1g=none-reserved", sizeof(detail) - strlen(detail) - 1);
	}
	close(pm);
	action_result("walk-kinds", all_ok, detail, 0);
}

/* arm64's tagged address ABI: the same walk through a pointer with a tag. */
static void action_walk_tagged(int fd, unsigned char *addr, uint64_t n)
{
	const char *a = "walk-tagged";
	uint64_t *plain = calloc(n, sizeof(*plain)), *tagged = calloc(n, sizeof(*tagged));
	struct multimap_walk w = { (uintptr_t)addr, n, (uintptr_t)plain };
	int err = 0;

#if defined(__aarch64__)
	struct multimap_walk t = { (uintptr_t)addr | 0x2aULL << 56, n, (uintptr_t)tagged };

	if (!plain || !tagged)
		err = ENOMEM;
	else if (ioctl(fd, MULTIMAP_IOC_WALK, &w) || ioctl(fd, MULTIMAP_IOC_WALK, &t))
		err = errno;
	action_result(a, !err && !memcmp(plain, tagged, n * sizeof(*plain)),
		      err ? "a walk failed" : "tagged and untagged walks agree", err);
#else
	(void)fd;
	(void)w;
	action_result(a, 1, "no tagged addresses on this arch", err);
#endif
	free(plain);
	free(tagged);
}

static unsigned char *run_actions(int *fdp, const struct opts *o,
				  unsigned char *addr, uint64_t *np)
{
	uint64_t n = *np;
	int i;

	json_open("actions", '[');
	for (i = 0; i < o->nactions; i++) {
		const char *a = o->actions[i];

		if (!strcmp(a, "fork")) {
			pid_t pid = fork();
			int status = 0;

			if (pid == 0) {
				int ok = verify_tokens(o, addr, o->offset, n);

				if (ok && o->writable)
					*(volatile uint64_t *)addr = token(o, o->offset);
				_exit(ok ? 0 : 3);
			}
			if (pid < 0 || waitpid(pid, &status, 0) < 0) {
				action_result(a, 0, "fork/wait failed", errno);
				continue;
			}
			if (!WIFEXITED(status) || WEXITSTATUS(status))
				action_result(a, 0, "the child did not read every token", 0);
			else if (!verify_tokens(o, addr, o->offset, n))
				action_result(a, 0, "after the child, the parent lost its tokens", 0);
			else
				action_result(a, 1, "child read every token; parent still sees them", 0);
		} else if (!strcmp(a, "munmap-part")) {
			uint64_t mid = n / 2;

			if (n < 3 || hole != UINT64_MAX) {
				action_result(a, 0, "needs 3 pages and runs once", 0);
				continue;
			}
			if (munmap(addr + mid * page_size, page_size)) {
				action_result(a, 0, "munmap", errno);
				continue;
			}
			hole = mid;
			if (verify_tokens(o, addr, o->offset, n))
				action_result(a, 1, "unmapped the middle page; both pieces intact", 0);
			else if (*(volatile uint64_t *)addr == 0xaaaaaaaaaaaaaaaaULL)
				action_result(a, 0, "the remaining pieces read freed (poisoned) memory", 0);
			else
				action_result(a, 0, "the remaining pieces lost their tokens", 0);
		} else if (!strcmp(a, "mremap-grow")) {
			/* May move: a neighbour must not be what refuses it. */
			void *p = mremap(addr, n * page_size, (n + 1) * page_size,
					 MREMAP_MAYMOVE);

			if (p == MAP_FAILED) {
				action_result(a, 1, "growing refused", errno);
			} else {
				addr = p;
				action_result(a, 0, "growing was allowed", 0);
			}
		} else if (!strcmp(a, "mremap-move")) {
			void *dest = mmap(NULL, n * page_size, PROT_NONE,
					  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			void *p = MAP_FAILED;
			int moved;

			if (hole != UINT64_MAX) {
				action_result(a, 0, "cannot move a split mapping", 0);
				continue;
			}
			if (dest != MAP_FAILED)
				p = mremap(addr, n * page_size, n * page_size,
					   MREMAP_MAYMOVE | MREMAP_FIXED, dest);
			if (p == MAP_FAILED) {
				action_result(a, 0, "mremap move failed", errno);
				continue;
			}
			addr = p;
			moved = verify_tokens(o, addr, o->offset, n);
			action_result(a, moved, moved ? "moved; tokens intact at the new address" :
				      "moved; the tokens no longer read back at the new address", 0);
		} else if (!strcmp(a, "close")) {
			int ok = !close(*fdp);

			*fdp = -1;
			ok = ok && verify_tokens(o, addr, o->offset, n);
			action_result(a, ok, ok ? "fd closed; mapping still valid" :
				      *(volatile uint64_t *)addr == 0xaaaaaaaaaaaaaaaaULL ?
				      "fd closed; mapping now reads freed (poisoned) memory" :
				      "fd closed; tokens changed", 0);
		} else if (!strcmp(a, "mprotect-write")) {
			if (mprotect(addr, n * page_size, PROT_READ | PROT_WRITE))
				action_result(a, 1, "write permission refused", errno);
			else
				action_result(a, 0, "write permission granted", 0);
		} else if (!strcmp(a, "madvise-dontneed")) {
			action_madvise_dontneed(o, addr, n);
		} else if (!strcmp(a, "vmsplice")) {
			action_vmsplice(fdp, o, addr, &n);
		} else if (!strcmp(a, "longterm-pin")) {
			action_longterm_pin(addr, n);
		} else if (!strcmp(a, "walk-kinds")) {
			action_walk_kinds(*fdp);
		} else if (!strcmp(a, "walk-tagged")) {
			action_walk_tagged(*fdp, addr, n);
		} else if (!strcmp(a, "readback")) {
			/* The kernel reads every buffer page (a KASAN witness). */
			uint64_t all = o->cfg.pages;
			struct multimap_page_sum *sums = calloc(all, sizeof(*sums));
			struct multimap_readback rb = { 0, all, (uintptr_t)sums };
			int err = 0;

			if (!sums)
				err = ENOMEM;
			else if (*fdp < 0)
				err = EBADF;
			else if (ioctl(*fdp, MULTIMAP_IOC_READBACK, &rb))
				err = errno;
			action_result(a, !err, err ? "readback failed" :
				      "the kernel read every page back", err);
			free(sums);
		} else {
			fprintf(stderr, "multimap-ctl: --do %s: unknown action\n", a);
			action_result(a, 0, "unknown action", EINVAL);
		}
	}
	json_close(']');
	*np = n;
	return addr;
}

/*
 * --race-read: reproduce the window of CVE-2024-53148.  While mmap() fails
 * (fail_at set), a second thread watches multimap's map_errors counter in
 * debugfs (no mmap_lock needed); when the failing loop has cleaned up, it
 * reads the target address once through write() to a pipe.  A correct driver
 * zapped its PTEs first: the copy faults (EFAULT).  A driver that freed the
 * pages without zapping leaves PTEs to freed memory: the copy succeeds, and
 * with page_poison=1 it returns 0xaa bytes.
 */
static void *volatile race_addr;
static volatile int race_done;
static volatile unsigned long race_reads, race_faults, race_poison, race_other;
static int race_pipe[2];
static volatile long race_before, race_after;
static volatile int race_errno;
static volatile int race_ready;
static volatile int race_in_window;

static long map_errors(int stats_fd)
{
	char buf[1024], *p;
	ssize_t len = pread(stats_fd, buf, sizeof(buf) - 1, 0);

	if (len <= 0)
		return -1;
	buf[len] = 0;
	p = strstr(buf, "map_errors ");
	return p ? strtol(p + 11, NULL, 10) : -1;
}

static void *race_reader(void *arg)
{
	int stats_fd = open("/sys/kernel/debug/multimap/stats", O_RDONLY);
	long before = map_errors(stats_fd);
	uint64_t v;

	(void)arg;
	race_ready = 1;
	while (!race_addr)
		sched_yield();
	while (!race_done && map_errors(stats_fd) == before)
		sched_yield();
	race_before = before;
	race_after = map_errors(stats_fd);
	/* The read starts after the loop failed and before mmap() returned. */
	race_in_window = race_after != before && !race_done;
	if (write(race_pipe[1], race_addr, sizeof(v)) != sizeof(v)) {
		race_errno = errno;
		race_faults++;
	} else if (read(race_pipe[0], &v, sizeof(v)) == sizeof(v)) {
		race_reads++;
		if (v == 0xaaaaaaaaaaaaaaaaULL)
			race_poison++;
		else
			race_other++;
	}
	close(stats_fd);
	return NULL;
}

static int race_read(int fd, const struct opts *o, uint64_t n)
{
	pthread_t reader;
	void *hole, *addr;
	int err, ok;

	/* The reader's stack is mapped first, so it cannot land in the hole. */
	if (pipe(race_pipe) || pthread_create(&reader, NULL, race_reader, NULL))
		fail("race-setup", errno);
	hole = mmap(NULL, n * page_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (hole == MAP_FAILED)
		fail("race-reserve", errno);
	munmap(hole, n * page_size);
	while (!race_ready)	/* the reader has its baseline of map_errors */
		sched_yield();
	race_addr = hole;
	addr = mmap(hole, n * page_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
		    o->offset * page_size);
	err = addr == MAP_FAILED ? errno : 0;
	race_done = 1;
	pthread_join(reader, NULL);
	/* The check: mmap failed in the loop, and the racing read faulted (nothing readable). */
	ok = err && race_after > race_before && race_faults == 1 && !race_reads;
	json_open("race", '{');
	json_str("mmap", err ? errname(err) : "ok");
	json_u64("reads", race_reads);
	json_u64("faults", race_faults);
	json_u64("poison_reads", race_poison);
	json_u64("other_reads", race_other);
	json_bool("saw_freed_page", race_poison > 0);
	json_i64("map_errors_before", race_before);
	json_i64("map_errors_after", race_after);
	json_str("read_errno", race_errno ? errname(race_errno) : "none");
	json_bool("in_window", race_in_window);
	json_close('}');
	json_bool("ok", ok);
	json_close('}');
	putchar('\n');
	return !ok;
}

int main(int argc, char **argv)
{
	struct multimap_info info;
	struct opts o;
	unsigned char *addr;
	uint64_t n, i, t0, t_map, t_touch;
	uint64_t *pfns, *walk;
	int fd, prot, flags, contents;

	page_size = sysconf(_SC_PAGESIZE);
	parse(argc, argv, &o);
	if (o.private_map && !o.private_write)
		o.writable = 0;	/* read-only MAP_PRIVATE unless asked */
	json_open(NULL, '{');
	json_open("request", '{');
	json_str("backing", o.cfg.backing < 4 ? backings[o.cfg.backing] : "?");
	json_str("mapping", o.cfg.mapping < 7 ? mappings[o.cfg.mapping] : "?");
	json_u64("pages", o.cfg.pages);
	json_bool("private", o.private_map);
	json_bool("writable", o.writable);
	json_u64("offset", o.offset);
	json_close('}');

	/* An unprivileged opener: the module decides at open, as pagemap does. */
	if (o.as_user >= 0 && (setgroups(0, NULL) || setgid(o.as_user) || setuid(o.as_user)))
		fail("as-user", errno);
	if (o.as_user >= 0)	/* setuid cleared it: /proc/self/pagemap needs it */
		prctl(PR_SET_DUMPABLE, 1);
	fd = open(o.device, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		fail("open", errno);
	if (ioctl(fd, MULTIMAP_IOC_CONFIGURE, &o.cfg))
		fail("configure", errno);
	if (ioctl(fd, MULTIMAP_IOC_INFO, &info))
		fail("info", errno);
	json_open("info", '{');
	json_str("source", info.source < 5 ? sources[info.source] : "?");
	json_u64("pages", info.pages);
	json_u64("runs", info.runs);
	json_bool("pfns_hidden", !!(info.flags & MULTIMAP_INFO_PFNS_HIDDEN));
	json_close('}');

	if (o.offset > info.pages)
		n = 0;
	else
		n = o.length ? o.length : info.pages - o.offset;
	if (o.race_read)
		return race_read(fd, &o, n);
	prot = o.writable ? PROT_READ | PROT_WRITE : PROT_READ;
	flags = o.private_map ? MAP_PRIVATE : MAP_SHARED;
	t0 = now_ns();
	addr = mmap(NULL, n * page_size, prot, flags, fd, o.offset * page_size);
	t_map = now_ns() - t0;
	if (addr == MAP_FAILED)
		fail("mmap", errno);
	json_u64("addr", (uintptr_t)addr);
	json_u64("mapped_pages", n);

	t0 = now_ns();
	if (o.writable) {
		for (i = 0; i < n; i++) {
			unsigned char *page = addr + i * page_size;
			uint64_t t = token(&o, o.offset + i);

			/* The complement closes the page: a stray copy of a token has none. */
			*(volatile uint64_t *)page = t;
			*(volatile uint64_t *)(page + page_size - 8) = ~t;
		}
	} else {
		for (i = 0; i < n; i++)
			(void)*(volatile uint64_t *)(addr + i * page_size);
	}
	t_touch = now_ns() - t0;
	json_open("timing_ns", '{');
	json_u64("mmap", t_map);
	json_u64("touch", t_touch);
	json_u64("per_page", n ? (t_map + t_touch) / n : 0);
	json_u64("mmap_per_page", n ? t_map / n : 0);
	json_u64("touch_per_page", n ? t_touch / n : 0);
	json_close('}');

	if (o.bench) {	/* timing only: skip the checks, which cost more than the mapping */
		munmap(addr, n * page_size);
		close(fd);
		json_bool("ok", 1);
		json_close('}');
		putchar('\n');
		return 0;
	}
	contents = check_contents(fd, &o, addr, o.offset, n, o.writable);
	if (contents < 0)
		fail("readback", errno);
	json_bool("contents_match", contents);
	checks_failed |= !contents;

	pfns = calloc(n, sizeof(*pfns));
	walk = calloc(n, sizeof(*walk));
	if (!pfns || !walk)
		fail("alloc", ENOMEM);
	{
		struct multimap_pfns req = { o.offset, n, (uintptr_t)pfns };
		struct multimap_walk w = { (uintptr_t)addr, n, (uintptr_t)walk };

		if (ioctl(fd, MULTIMAP_IOC_GET_PFNS, &req))
			fail("get_pfns", errno);
		if (ioctl(fd, MULTIMAP_IOC_WALK, &w))
			fail("walk", errno);
	}
	{
		int same = 1;

		for (i = 0; i < n; i++)
			same &= pfns[i] == walk[i];
		json_bool("walk_matches_pfns", same);
		checks_failed |= !same;
	}
	json_open("pfns", '[');
	for (i = 0; i < n; i++)
		json_u64(NULL, pfns[i]);
	json_close(']');
	if (o.list_pages) {
		json_open("walk", '[');
		for (i = 0; i < n; i++)
			json_i64(NULL, walk[i] == MULTIMAP_WALK_NOT_MAPPED ? -1 : (long long)walk[i]);
		json_close(']');
		json_open("tokens", '[');
		for (i = 0; i < n; i++)
			json_u64(NULL, token(&o, o.offset + i));
		json_close(']');
	}

	addr = run_actions(&fd, &o, addr, &n);
	json_u64("pid", getpid());
	json_bool("ok", !checks_failed);
	json_close('}');
	putchar('\n');
	fflush(stdout);

	/* --hold keeps a mapping whose checks passed; a failed one ends here, exit 1. */
	if (o.hold && !checks_failed) {
		sigset_t set;

		signal(SIGTERM, on_signal);
		signal(SIGINT, on_signal);
		signal(SIGUSR1, on_signal);
		sigemptyset(&set);
		while (!released)
			sigsuspend(&set);
	}
	munmap(addr, n * page_size);
	if (fd >= 0)
		close(fd);
	return checks_failed;
}
