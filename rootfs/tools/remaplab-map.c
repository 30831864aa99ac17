// SPDX-License-Identifier: GPL-2.0
/*
 * remaplab-map: the lab's holder for a mapping of any device node or file.
 *
 * Opens PATH, mmaps LENGTH bytes at OFFSET (shared, or private), writes the
 * lab's witness tokens through the mapping (remaplab.h), runs lifecycle
 * actions in the order given (fork, munmap-part, mremap-move, close,
 * mprotect-write: read-only and writable again), checks
 * after each that every page still holds its token, and prints one JSON
 * object.  With --hold it then waits for SIGTERM/SIGINT/SIGUSR1, so the host
 * can inspect the mapping.  With --no-touch (a refusal was expected: the
 * pages may not be the driver's) it only maps, writes nothing, and takes no
 * --do or --hold.  --help prints the usage on stdout and exits 0.
 *
 * Exit status: 0 when the mapping was made and every action passed ("ok":true;
 * "tokens_read_back" says whether each page read back its own token); 1 when a
 * call or an action failed (the JSON says which, "stage" and "errno" for
 * open/mmap);
 * 2 on an argument it cannot parse (said on stderr, no JSON).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "json.h"
#include "remaplab.h"

#define MAX_ACTIONS 16

struct opts {
	const char *path;
	unsigned long long length;	/* bytes, whole pages */
	unsigned long long offset;	/* bytes, page aligned */
	unsigned long long seed;
	int private_map;
	int hold;
	int no_touch;	/* map only: a refusal was expected, the pages may not be the driver's */
	const char *actions[MAX_ACTIONS];
	int nactions;
};

static size_t page_size;
static uint64_t hole = UINT64_MAX;	/* page unmapped by munmap-part */
static int checks_failed;
static volatile sig_atomic_t released;

static void on_release(int sig)
{
	(void)sig;
	released = 1;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: remaplab-map --device PATH --length BYTES [--offset BYTES]\n"
		"  [--private] [--seed N] [--do fork|munmap-part|mremap-move|close|mprotect-write]...\n"
		"  [--hold] [--no-touch]\n");
}

static void usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "remaplab-map: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	usage(stderr);
	exit(2);
}

/* A whole number in [0, max] (decimal, 0x hex, or with a K/M/G suffix), else exit 2. */
static unsigned long long number(const char *text, const char *what, unsigned long long max)
{
	unsigned long long v, mult = 1;
	char *end;

	errno = 0;
	if (!text[0] || text[0] == '-')
		usage_error("%s: not a whole number", what);
	v = strtoull(text, &end, 0);
	if (*end == 'K' || *end == 'k')
		mult = 1ULL << 10;
	else if (*end == 'M' || *end == 'm')
		mult = 1ULL << 20;
	else if (*end == 'G' || *end == 'g')
		mult = 1ULL << 30;
	if (mult != 1)
		end++;
	if (errno || *end || v > max / mult)
		usage_error("%s: not a whole number in range", what);
	return v * mult;
}

static int known_action(const char *a)
{
	return !strcmp(a, "fork") || !strcmp(a, "munmap-part") ||
	       !strcmp(a, "mremap-move") || !strcmp(a, "close") ||
	       !strcmp(a, "mprotect-write");
}

static void parse(int argc, char **argv, struct opts *o)
{
	static const struct option longs[] = {
		{ "device", required_argument, NULL, 'd' },
		{ "length", required_argument, NULL, 'l' },
		{ "offset", required_argument, NULL, 'o' },
		{ "seed", required_argument, NULL, 's' },
		{ "private", no_argument, NULL, 'p' },
		{ "hold", no_argument, NULL, 'H' },
		{ "do", required_argument, NULL, 'a' },
		{ "no-touch", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (c) {
		case 'd':
			o->path = optarg;
			break;
		case 'l':
			o->length = number(optarg, "--length", 1ULL << 40);
			break;
		case 'o':
			o->offset = number(optarg, "--offset", 1ULL << 50);
			break;
		case 's':
			o->seed = number(optarg, "--seed", UINT32_MAX);
			break;
		case 'p':
			o->private_map = 1;
			break;
		case 'H':
			o->hold = 1;
			break;
		case 'n':
			o->no_touch = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'a':
			if (!known_action(optarg))
				usage_error("--do %s: unknown action", optarg);
			if (o->nactions == MAX_ACTIONS)
				usage_error("%s: too many --do", "--do");
			o->actions[o->nactions++] = optarg;
			break;
		default:
			usage_error("%s", "bad option");
		}
	}
	if (optind < argc)
		usage_error("%s: unexpected argument", argv[optind]);
	if (!o->path)
		usage_error("%s is required", "--device");
	if (!o->length || o->length % page_size)
		usage_error("%s must be a non-zero multiple of the page size", "--length");
	if (o->offset % page_size)
		usage_error("%s must be page aligned", "--offset");
	if (o->no_touch && (o->hold || o->nactions))
		usage_error("%s maps only: no --do, no --hold", "--no-touch");
}

/*
 * A page the driver did not map (or maps to nothing) faults on access: SIGBUS
 * or SIGSEGV.  That is a finding, not a reason to die: each access below runs
 * under sigsetjmp, and a fault is reported with the page's index.
 */
static sigjmp_buf fault_jmp;
static volatile sig_atomic_t fault_sig;

static void on_fault(int sig)
{
	fault_sig = sig;
	siglongjmp(fault_jmp, 1);
}

/* Write page i's token and complement: 0, or the signal the access raised. */
static int write_page(const struct opts *o, unsigned char *addr, uint64_t i)
{
	volatile uint64_t *p = (volatile uint64_t *)(addr + i * page_size);

	if (sigsetjmp(fault_jmp, 1))
		return fault_sig;
	p[0] = remaplab_token(o->seed, i);
	p[page_size / 8 - 1] = ~remaplab_token(o->seed, i);
	return 0;
}

/* Whether page i reads back its token and complement (a fault: no). */
static int page_ok(const struct opts *o, unsigned char *addr, uint64_t i)
{
	volatile uint64_t *p = (volatile uint64_t *)(addr + i * page_size);

	if (sigsetjmp(fault_jmp, 1))
		return 0;
	return p[0] == remaplab_token(o->seed, i) &&
	       p[page_size / 8 - 1] == ~remaplab_token(o->seed, i);
}

/* The first and last words of page i as the mapping reads them now; 0 when reading faults. */
static int page_words(unsigned char *addr, uint64_t i, uint64_t *first, uint64_t *last)
{
	volatile uint64_t *p = (volatile uint64_t *)(addr + i * page_size);

	if (sigsetjmp(fault_jmp, 1))
		return 0;
	*first = p[0];
	*last = p[page_size / 8 - 1];
	return 1;
}

/* Every page but the munmap-part hole holds its token and its complement. */
static int verify(const struct opts *o, unsigned char *addr, uint64_t n)
{
	uint64_t i;

	for (i = 0; i < n; i++)
		if (i != hole && !page_ok(o, addr, i))
			return 0;
	return 1;
}

/* Write every page's tokens; list the pages that faulted, with the signal. */
static void write_all(const struct opts *o, unsigned char *addr, uint64_t n)
{
	const char *name = NULL;
	uint64_t i;

	json_open("faulted", '[');
	for (i = 0; i < n; i++) {
		int sig = i == hole ? 0 : write_page(o, addr, i);

		if (sig) {
			json_u64(NULL, i);
			name = sig == SIGBUS ? "SIGBUS" : "SIGSEGV";
		}
	}
	json_close(']');
	if (name)
		json_str("fault_signal", name);
}

static void action_result(const char *name, int ok, const char *detail, int err)
{
	json_open(NULL, '{');
	json_str("action", name);
	json_bool("ok", ok);
	json_str("detail", detail);
	if (err)
		json_str("error", strerror(err));
	json_close('}');
	checks_failed |= !ok;
}

/*
 * An action's result after it ran (ok: it did): done says what a success means; when a page
 * (but munmap-part's hole) no longer reads back its tokens, the detail says how many and which.
 */
static void verified(const char *name, const struct opts *o, unsigned char *addr, uint64_t n,
		     const char *done)
{
	uint64_t i, bad = 0, first = 0, head = 0, tail = 0;
	char detail[240], seen[96] = "faults on read";

	for (i = 0; i < n; i++) {
		if (i == hole || page_ok(o, addr, i))
			continue;
		if (!bad++)
			first = i;
	}
	if (!bad) {
		action_result(name, 1, done, 0);
		return;
	}
	if (page_words(addr, first, &head, &tail))
		snprintf(seen, sizeof(seen), "reads 0x%016llx..0x%016llx",
			 (unsigned long long)head, (unsigned long long)tail);
	snprintf(detail, sizeof(detail),
		 "%llu of %llu pages no longer read back their tokens "
		 "(first: page %llu, %s, wants 0x%016llx..0x%016llx)",
		 (unsigned long long)bad, (unsigned long long)(n - (hole < n)),
		 (unsigned long long)first, seen,
		 (unsigned long long)remaplab_token(o->seed, first),
		 (unsigned long long)~remaplab_token(o->seed, first));
	action_result(name, 0, detail, 0);
}

static void do_fork(const struct opts *o, unsigned char *addr, uint64_t n)
{
	int status = 0;
	pid_t pid = fork();

	if (pid == 0)
		_exit(verify(o, addr, n) ? 0 : 3);
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		action_result("fork", 0, "fork/wait failed", errno);
	else if (!WIFEXITED(status) || WEXITSTATUS(status))
		action_result("fork", 0, "the child did not read every token", 0);
	else
		verified("fork", o, addr, n, "child read every token; parent still sees them");
}

static void do_munmap_part(const struct opts *o, unsigned char *addr, uint64_t n)
{
	if (n < 3 || hole != UINT64_MAX) {
		action_result("munmap-part", 0, "needs 3 pages and runs once", 0);
		return;
	}
	if (munmap(addr + n / 2 * page_size, page_size)) {
		action_result("munmap-part", 0, "munmap", errno);
		return;
	}
	hole = n / 2;
	verified("munmap-part", o, addr, n,
		 "unmapped the middle page; both pieces keep their tokens");
}

static unsigned char *do_mremap_move(const struct opts *o, unsigned char *addr, uint64_t n)
{
	void *dest = mmap(NULL, n * page_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *p = MAP_FAILED;

	if (hole != UINT64_MAX) {
		action_result("mremap-move", 0, "cannot move a split mapping", 0);
		return addr;
	}
	if (dest != MAP_FAILED)
		p = mremap(addr, n * page_size, n * page_size,
			   MREMAP_MAYMOVE | MREMAP_FIXED, dest);
	if (p == MAP_FAILED) {
		action_result("mremap-move", 0, "mremap move failed", errno);
		return addr;
	}
	verified("mremap-move", o, p, n, "moved; tokens intact at the new address");
	return p;
}

/* mprotect every mapped piece (both sides of a munmap-part hole). */
static int protect(unsigned char *addr, uint64_t n, int prot)
{
	uint64_t first = hole == UINT64_MAX ? n : hole;

	if (first && mprotect(addr, first * page_size, prot))
		return -1;
	if (first + 1 < n &&
	    mprotect(addr + (first + 1) * page_size, (n - first - 1) * page_size, prot))
		return -1;
	return 0;
}

/* Read-only, then writable again: the tokens survive and a new write lands. */
static void do_mprotect_write(const struct opts *o, unsigned char *addr, uint64_t n)
{
	const char *a = "mprotect-write";
	uint64_t i;
	int ok;

	if (protect(addr, n, PROT_READ)) {
		action_result(a, 0, "mprotect read-only", errno);
		return;
	}
	ok = verify(o, addr, n);
	if (protect(addr, n, PROT_READ | PROT_WRITE)) {
		action_result(a, 0, "write permission refused after read-only", errno);
		return;
	}
	for (i = 0; i < n; i++)
		if (i != hole)
			write_page(o, addr, i);
	if (!ok)
		action_result(a, 0, "while read-only, pages did not read back their tokens", 0);
	else
		verified(a, o, addr, n,
			 "read-only then writable again; tokens intact and rewritten");
}

static unsigned char *run_actions(const struct opts *o, int *fd, unsigned char *addr, uint64_t n)
{
	int i;

	json_open("actions", '[');
	for (i = 0; i < o->nactions; i++) {
		const char *a = o->actions[i];

		if (!strcmp(a, "fork")) {
			do_fork(o, addr, n);
		} else if (!strcmp(a, "munmap-part")) {
			do_munmap_part(o, addr, n);
		} else if (!strcmp(a, "mremap-move")) {
			addr = do_mremap_move(o, addr, n);
		} else if (!strcmp(a, "mprotect-write")) {
			do_mprotect_write(o, addr, n);
		} else {	/* close */
			int err = close(*fd) ? errno : 0;

			*fd = -1;
			if (err)
				action_result(a, 0, "close", err);
			else
				verified(a, o, addr, n, "fd closed; mapping keeps its tokens");
		}
	}
	json_close(']');
	return addr;
}

static int fail(const char *stage, int err)
{
	json_bool("ok", 0);
	json_str("stage", stage);
	json_str("errno", strerrorname_np(err) ? strerrorname_np(err) : "E?");
	json_str("error", strerror(err));
	json_close('}');
	putchar('\n');
	return 1;
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	unsigned char *addr;
	sigset_t stop, old;
	uint64_t n;
	int fd;

	page_size = (size_t)sysconf(_SC_PAGESIZE);
	o.seed = 1;
	parse(argc, argv, &o);
	n = o.length / page_size;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGUSR1);
	sigprocmask(SIG_BLOCK, &stop, &old);	/* delivered only inside sigsuspend */
	signal(SIGBUS, on_fault);
	signal(SIGSEGV, on_fault);
	signal(SIGTERM, on_release);
	signal(SIGINT, on_release);
	signal(SIGUSR1, on_release);
	json_open(NULL, '{');
	json_u64("pid", (unsigned long long)getpid());
	json_str("device", o.path);
	fd = open(o.path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return fail("open", errno);
	addr = mmap(NULL, o.length, PROT_READ | PROT_WRITE,
		    o.private_map ? MAP_PRIVATE : MAP_SHARED, fd, (off_t)o.offset);
	if (addr == MAP_FAILED)
		return fail("mmap", errno);
	if (o.no_touch) {	/* it mapped: say so, touch nothing */
		json_u64("mapped_pages", n);
		json_bool("ok", 1);
		json_close('}');
		putchar('\n');
		return 0;
	}
	write_all(&o, addr, n);
	/* Not a failure of this tool: the lab's witnesses say which pages are wrong. */
	json_bool("tokens_read_back", verify(&o, addr, n));
	addr = run_actions(&o, &fd, addr, n);
	json_u64("addr", (unsigned long long)(uintptr_t)addr);
	json_u64("length", o.length);
	json_u64("mapped_pages", n);
	if (hole != UINT64_MAX)
		json_u64("hole", hole);
	else
		json_null("hole");
	json_bool("ok", !checks_failed);
	json_close('}');
	putchar('\n');
	fflush(stdout);
	while (o.hold && !released)
		sigsuspend(&old);
	return checks_failed ? 1 : 0;
}
