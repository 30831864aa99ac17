// SPDX-License-Identifier: GPL-2.0
/*
 * multimap-fuzz --seed S --ops N: a seeded, reproducible random run of
 * open/close/ioctl/mmap/munmap/mremap/fork/touch calls against /dev/multimap
 * with random, garbage, huge and overflowing arguments.  Prints a JSON
 * summary (calls per operation, errno histogram).  The host then checks the
 * kernel log and the module's stats.
 *
 * It checks what it can see itself: growing a mapping is refused
 * (VM_DONTEXPAND), an ioctl command the UAPI does not define fails, a value
 * written through a mapping reads back, every forked child exits cleanly, and
 * the run opened and mapped the device at all.  "ok" is true and the exit
 * status 0 only when all of that held; 1 otherwise (the JSON lists the
 * violations); 2 on an argument it cannot parse (said on stderr).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ctype.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "multimap.h"
#include "json.h"

#define MAX_FDS		6
#define MAX_MAPS	32
#define NOPS		13

struct map {
	unsigned char *addr;
	uint64_t pages;
	int writable;
};

static const char *const op_names[NOPS] = {
	"open", "close", "configure", "info", "get_pfns", "walk", "readback",
	"mmap", "munmap", "mremap", "fork", "touch", "bad_ioctl",
};

static uint64_t rng_state;
static long page;
static int fds[MAX_FDS];
static struct map maps[MAX_MAPS];
static int nmaps;
static unsigned long calls[NOPS], failures[NOPS];
static unsigned long errnos[200];

#define MAX_SHOWN	8
static unsigned long nviolations;
static char shown[MAX_SHOWN][160];

/* Something the module must never do: counted, the first few described. */
static void __attribute__((format(printf, 1, 2))) violation(const char *fmt, ...)
{
	va_list ap;

	if (nviolations < MAX_SHOWN) {
		va_start(ap, fmt);
		vsnprintf(shown[nviolations], sizeof(shown[0]), fmt, ap);
		va_end(ap);
	}
	nviolations++;
}

static uint64_t rnd(void)
{
	/* xorshift64*: tiny, seeded, the same sequence on every arch */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static uint64_t below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

/* Mostly small valid numbers, sometimes the values that break arithmetic. */
static uint64_t wild(uint64_t typical)
{
	static const uint64_t edges[] = {
		0, 1, 2, 0xffffffffULL, 0x100000000ULL, (uint64_t)-1,
		(uint64_t)-2, 1ULL << 52, 1ULL << 63, (uint64_t)INT64_MAX,
	};

	switch (below(8)) {
	case 0:
		return edges[below(sizeof(edges) / sizeof(edges[0]))];
	case 1:
		return rnd();
	default:
		return below(typical + 1);
	}
}

static void *wild_ptr(void *valid)
{
	switch (below(6)) {
	case 0:
		return NULL;
	case 1:
		return (void *)1;
	case 2:
		return (void *)(uintptr_t)0xffff800000000000ULL;
	case 3:
		return (void *)(uintptr_t)rnd();
	default:
		return valid;
	}
}

/* Usually one of our open files, sometimes a closed slot or a random number. */
static int any_fd(void)
{
	int open_fds[MAX_FDS], n = 0, i;

	for (i = 0; i < MAX_FDS; i++)
		if (fds[i] >= 0)
			open_fds[n++] = fds[i];
	if (n && below(10) < 8)
		return open_fds[below(n)];
	return below(2) ? fds[below(MAX_FDS)] : (int)below(64);
}

static void note(int op, long ret)
{
	calls[op]++;
	if (ret < 0) {
		failures[op]++;
		if (errno > 0 && errno < 200)
			errnos[errno]++;
	}
}

static void forget_map(int i)
{
	maps[i] = maps[--nmaps];
}

static void do_touch(void)
{
	struct map *m;
	uint64_t p;

	if (!nmaps)
		return;
	m = &maps[below(nmaps)];
	p = below(m->pages);
	if (m->writable && below(2)) {
		volatile uint64_t *word = (volatile uint64_t *)(m->addr + p * page);
		uint64_t v = rnd();

		*word = v;
		if (*word != v)
			violation("touch: wrote %#llx, read back %#llx",
				  (unsigned long long)v, (unsigned long long)*word);
	} else {
		(void)*(volatile uint64_t *)(m->addr + p * page);
	}
	calls[11]++;
}

static void do_munmap(void)
{
	struct map *m;
	uint64_t keep, mid;
	long ret;
	int i;

	if (!nmaps)
		return;
	i = below(nmaps);
	m = &maps[i];
	switch (below(3)) {
	case 0:	/* whole */
		ret = munmap(m->addr, m->pages * page);
		note(8, ret);
		if (!ret)
			forget_map(i);
		break;
	case 1:	/* trim the tail */
		if (m->pages < 2)
			return;
		keep = 1 + below(m->pages - 1);
		ret = munmap(m->addr + keep * page, (m->pages - keep) * page);
		note(8, ret);
		if (!ret)
			m->pages = keep;
		break;
	default:	/* split: punch one page out of the middle */
		if (m->pages < 3 || nmaps == MAX_MAPS)
			return;
		mid = 1 + below(m->pages - 2);
		ret = munmap(m->addr + mid * page, page);
		note(8, ret);
		if (!ret) {
			maps[nmaps].addr = m->addr + (mid + 1) * page;
			maps[nmaps].pages = m->pages - mid - 1;
			maps[nmaps].writable = m->writable;
			nmaps++;
			m->pages = mid;
		}
	}
}

static void do_mremap(void)
{
	struct map *m;
	void *p, *dest;
	uint64_t pages;

	if (!nmaps)
		return;
	m = &maps[below(nmaps)];
	switch (below(3)) {
	case 0:	/* grow: must be refused (VM_DONTEXPAND) */
		pages = m->pages + 1 + below(4);
		p = mremap(m->addr, m->pages * page, pages * page, MREMAP_MAYMOVE);
		note(9, p == MAP_FAILED ? -1 : 0);
		if (p != MAP_FAILED) {
			violation("mremap grew a mapping from %llu to %llu pages",
				  (unsigned long long)m->pages, (unsigned long long)pages);
			/* Give the growth back: the tail is past the buffer. */
			munmap((unsigned char *)p + m->pages * page, (pages - m->pages) * page);
			m->addr = p;
		}
		break;
	case 1:	/* shrink in place */
		if (m->pages < 2)
			return;
		pages = 1 + below(m->pages - 1);
		p = mremap(m->addr, m->pages * page, pages * page, 0);
		note(9, p == MAP_FAILED ? -1 : 0);
		if (p != MAP_FAILED)
			m->pages = pages;
		break;
	default:	/* move */
		dest = mmap(NULL, m->pages * page, PROT_NONE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (dest == MAP_FAILED)
			return;
		p = mremap(m->addr, m->pages * page, m->pages * page,
			   MREMAP_MAYMOVE | MREMAP_FIXED, dest);
		note(9, p == MAP_FAILED ? -1 : 0);
		if (p == MAP_FAILED)
			munmap(dest, m->pages * page);
		else
			m->addr = p;
	}
}

static void do_mmap(void)
{
	uint64_t pages = below(8) ? 1 + below(64) : wild(64);
	uint64_t off = below(4) ? 0 : wild(64);
	int flags = below(3) ? MAP_SHARED : MAP_PRIVATE;
	int prot = below(4) ? PROT_READ | PROT_WRITE : PROT_READ;
	void *p;

	if (nmaps == MAX_MAPS || pages > (1ULL << 40) / page)
		return;
	p = mmap(NULL, pages * page, prot, flags, any_fd(), off * page);
	note(7, p == MAP_FAILED ? -1 : 0);
	if (p == MAP_FAILED)
		return;
	maps[nmaps].addr = p;
	maps[nmaps].pages = pages;
	maps[nmaps].writable = !!(prot & PROT_WRITE);
	nmaps++;
}

static void do_fork(void)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		unsigned long before = nviolations;
		int i;

		for (i = 0; i < 4; i++)
			do_touch();
		if (nmaps && below(2))
			munmap(maps[0].addr, maps[0].pages * page);
		_exit(nviolations != before);
	}
	note(10, pid < 0 ? -1 : 0);
	if (pid > 0) {
		if (waitpid(pid, &status, 0) != pid)
			violation("waitpid for a forked child failed: %s", strerror(errno));
		else if (WIFSIGNALED(status))
			violation("a forked child died of signal %d", WTERMSIG(status));
		else if (WEXITSTATUS(status))
			violation("a forked child exited %d", WEXITSTATUS(status));
	}
}

static int ours(int fd)
{
	int i;

	for (i = 0; i < MAX_FDS; i++)
		if (fds[i] >= 0 && fds[i] == fd)
			return 1;
	return 0;
}

/*
 * A command with multimap's magic: on one of our files, a number the UAPI
 * does not define (0, or 1..5 with the wrong direction or size) must fail
 * with ENOTTY.  Numbers above READBACK are left alone: a newer UAPI may
 * define them.
 */
static void bad_ioctl(uint64_t *buf)
{
	static const unsigned int known[] = {
		MULTIMAP_IOC_CONFIGURE, MULTIMAP_IOC_INFO, MULTIMAP_IOC_GET_PFNS,
		MULTIMAP_IOC_WALK, MULTIMAP_IOC_READBACK,
	};
	int fd = any_fd();
	unsigned int dir = below(4), nr = below(16), size = below(4096);
	unsigned int cmd = _IOC(dir, MULTIMAP_IOC_MAGIC, nr, size);
	long ret = ioctl(fd, cmd, wild_ptr(buf));
	int err = errno;
	size_t i;

	note(12, ret);
	if (!ours(fd) || nr > _IOC_NR(MULTIMAP_IOC_READBACK))
		return;
	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (cmd == known[i])
			return;
	if (ret >= 0 || err != ENOTTY)
		violation("ioctl %#x (not in the UAPI) returned %ld, errno %s", cmd, ret,
			  ret >= 0 ? "none" : strerrorname_np(err) ? strerrorname_np(err) : "?");
}

static void step(void)
{
	uint64_t buf[64];
	struct multimap_config cfg;
	struct multimap_info info;
	struct multimap_pfns pf;
	struct multimap_walk w;
	struct multimap_readback rb;
	int op = below(NOPS), slot = below(MAX_FDS);

	switch (op) {
	case 0:
		if (fds[slot] >= 0)
			return;
		fds[slot] = open("/dev/multimap", O_RDWR | O_CLOEXEC);
		note(op, fds[slot]);
		break;
	case 1:
		if (fds[slot] < 0)
			return;
		note(op, close(fds[slot]));
		fds[slot] = -1;
		break;
	case 2:
		memset(&cfg, 0, sizeof(cfg));
		cfg.version = below(10) ? MULTIMAP_UAPI_VERSION : wild(3);
		cfg.backing = below(10) ? 1 + below(3) : wild(4);
		cfg.mapping = below(10) ? 1 + below(6) : wild(7);
		cfg.pages = below(10) ? 1 + below(64) : wild(70000);
		cfg.flags = below(20) ? 0 : wild(4);
		if (!below(20))
			cfg.reserved[below(4)] = rnd();
		note(op, ioctl(any_fd(), MULTIMAP_IOC_CONFIGURE,
			       below(10) ? (void *)&cfg : wild_ptr(&cfg)));
		break;
	case 3:
		note(op, ioctl(any_fd(), MULTIMAP_IOC_INFO,
			       below(10) ? (void *)&info : wild_ptr(&info)));
		break;
	case 4:
		pf.start = wild(64);
		pf.count = below(4) ? wild(64) : 1 + below(64);
		pf.pfns = (uintptr_t)(pf.count <= 64 ? wild_ptr(buf) : wild_ptr(NULL));
		note(op, ioctl(any_fd(), MULTIMAP_IOC_GET_PFNS, &pf));
		break;
	case 5:
		w.addr = nmaps && below(2) ? (uintptr_t)maps[below(nmaps)].addr : wild(1ULL << 47);
		w.count = 1 + below(64);
		if (!below(5))
			w.count = wild(1 << 20);
		w.pfns = (uintptr_t)(w.count <= 64 ? wild_ptr(buf) : wild_ptr(NULL));
		note(op, ioctl(any_fd(), MULTIMAP_IOC_WALK, &w));
		break;
	case 6:
		rb.start = wild(64);
		rb.count = 1 + below(32);
		if (!below(5))
			rb.count = wild(1 << 20);
		rb.sums = (uintptr_t)(rb.count <= 32 ? wild_ptr(buf) : wild_ptr(NULL));
		note(op, ioctl(any_fd(), MULTIMAP_IOC_READBACK, &rb));
		break;
	case 7:
		do_mmap();
		break;
	case 8:
		do_munmap();
		break;
	case 9:
		do_mremap();
		break;
	case 10:
		do_fork();
		break;
	case 11:
		do_touch();
		break;
	default:
		bad_ioctl(buf);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: multimap-fuzz [--seed N] [--ops N]\n");
	exit(2);
}

/* A whole number (decimal, 0x hex or 0 octal) that fits 64 bits, or a clear error, exit 2. */
static unsigned long long number(const char *arg, const char *name)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(arg, &end, 0);
	if (errno == ERANGE) {
		fprintf(stderr, "multimap-fuzz: --%s: out of range (at most %llu): %s\n",
			name, ULLONG_MAX, arg);
		exit(2);
	}
	if (errno || *end || !isdigit((unsigned char)arg[0])) {
		fprintf(stderr, "multimap-fuzz: --%s: not a number: %s\n", name, arg);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "ops", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long ops = 10000, i, seed = 1;
	int c, ok;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 's')
			seed = number(optarg, "seed");
		else if (c == 'n')
			ops = number(optarg, "ops");
		else
			usage();
	}
	if (optind != argc) {
		fprintf(stderr, "multimap-fuzz: unexpected argument: %s\n", argv[optind]);
		usage();
	}
	page = sysconf(_SC_PAGESIZE);
	rng_state = seed * 0x9e3779b97f4a7c15ULL + 1;
	for (i = 0; i < MAX_FDS; i++)
		fds[i] = -1;
	for (i = 0; i < ops; i++)
		step();
	while (nmaps) {
		nmaps--;
		munmap(maps[nmaps].addr, maps[nmaps].pages * page);
	}
	for (i = 0; i < MAX_FDS; i++)
		if (fds[i] >= 0)
			close(fds[i]);

	json_open(NULL, '{');
	json_u64("seed", seed);
	json_u64("ops", ops);
	json_open("calls", '{');
	for (i = 0; i < NOPS; i++)
		json_u64(op_names[i], calls[i]);
	json_close('}');
	json_open("failures", '{');
	for (i = 0; i < NOPS; i++)
		json_u64(op_names[i], failures[i]);
	json_close('}');
	json_open("succeeded", '{');
	for (i = 0; i < NOPS; i++)
		json_u64(op_names[i], calls[i] - failures[i]);
	json_close('}');
	json_open("errnos", '{');
	for (i = 1; i < 200; i++)
		if (errnos[i])
			json_u64(strerrorname_np(i) ? strerrorname_np(i) : "E?", errnos[i]);
	json_close('}');
	/* A run that never opened or mapped the device checked nothing. */
	if (calls[0] == failures[0])
		violation("no open of /dev/multimap succeeded");
	else if (calls[7] == failures[7])
		violation("no mmap succeeded");
	json_u64("violations", nviolations);
	json_open("violation_list", '[');
	for (i = 0; i < nviolations && i < MAX_SHOWN; i++)
		json_str(NULL, shown[i]);
	json_close(']');
	ok = !nviolations;
	json_bool("ok", ok);
	json_close('}');
	putchar('\n');
	return !ok;
}
