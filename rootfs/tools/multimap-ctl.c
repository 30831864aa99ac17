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
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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
		"        readback]...\n"
		"  [--list-pages] [--bench] [--race-read] [--hold] [--device PATH]\n");
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
			action_result(a, verify_tokens(o, addr, o->offset, n),
				      "moved; tokens intact at the new address", 0);
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
