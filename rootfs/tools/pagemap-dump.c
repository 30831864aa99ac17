// SPDX-License-Identifier: GPL-2.0
/*
 * pagemap-dump PID START END: for any process and address range, print as
 * JSON each page's /proc/PID/pagemap entry (present, swapped, PFN, flags),
 * /proc/kpageflags and /proc/kpagecount of its PFN, and the VmFlags of the
 * VMA from /proc/PID/smaps.  PFNs read as 0 without CAP_SYS_ADMIN.
 *
 * With --walk, also the kernel's own page-table walk of the range through
 * multimap's MULTIMAP_IOC_WALK_PID (it sees VM_PFNMAP/VM_IO mappings, which
 * pagemap reports as holes): "walk" is one PFN or null (not mapped) a page,
 * or "walk_error" says why there is none (multimap not loaded: ENOENT), and
 * "walk_kpageflags" the /proc/kpageflags of each walked PFN (null: none).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "json.h"
#include "multimap.h"

#define PM_PFN_MASK	((1ULL << 55) - 1)
#define PM_SOFT_DIRTY	(1ULL << 55)
#define PM_EXCLUSIVE	(1ULL << 56)
#define PM_UFFD_WP	(1ULL << 57)
#define PM_FILE		(1ULL << 61)
#define PM_SWAP		(1ULL << 62)
#define PM_PRESENT	(1ULL << 63)

static unsigned long long parse_num(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || s[0] == '-') {
		fprintf(stderr, "pagemap-dump: %s: not a number: %s\n", what, s);
		exit(2);
	}
	return v;
}

static int read_u64(int fd, uint64_t index, uint64_t *out)
{
	return pread(fd, out, 8, index * 8) == 8 ? 0 : -1;
}

/* VmFlags and range of the smaps VMA containing addr. */
static void vma_info(const char *pid, uint64_t addr)
{
	char path[64], line[512];
	unsigned long long lo, hi;
	int inside = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%s/smaps", pid);
	f = fopen(path, "r");
	if (!f) {
		json_null("vma");
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx-%llx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			if (inside)
				break;
			inside = addr >= lo && addr < hi;
			if (inside) {
				json_open("vma", '{');
				json_u64("start", lo);
				json_u64("end", hi);
				line[strcspn(line, "\n")] = 0;
				json_str("line", line);
			}
		} else if (inside && !strncmp(line, "VmFlags:", 8)) {
			line[strcspn(line, "\n")] = 0;
			json_str("vmflags", line + 9);
		}
	}
	fclose(f);
	if (inside)
		json_close('}');
	else
		json_null("vma");
}

static const char *errno_name(int err)
{
	const char *name = strerrorname_np(err);

	return name ? name : "E?";
}

/*
 * The kpageflags of each walked PFN, kept only where a second walk after the
 * read finds the same PFN: a page that moved in between (compaction, reclaim,
 * khugepaged) is no longer the mapping's, and its flags say nothing of it.
 */
static void walk_flags(int fd, struct multimap_walk_pid *req, const uint64_t *pfns,
		       int kf)
{
	uint64_t *again = calloc(req->count, sizeof(*again));
	uint64_t *flags = calloc(req->count, sizeof(*flags));
	struct multimap_walk_pid req2 = *req;
	uint64_t i;
	int known;

	req2.pfns = (uintptr_t)again;
	known = again && flags && kf >= 0;
	for (i = 0; known && i < req->count; i++)
		if (pfns[i] != MULTIMAP_WALK_NOT_MAPPED && read_u64(kf, pfns[i], &flags[i]))
			flags[i] = UINT64_MAX;
	if (known && ioctl(fd, MULTIMAP_IOC_WALK_PID, &req2))
		known = 0;
	json_open("walk_kpageflags", '[');
	for (i = 0; i < req->count; i++) {
		if (known && pfns[i] != MULTIMAP_WALK_NOT_MAPPED &&
		    again[i] == pfns[i] && flags[i] != UINT64_MAX)
			json_u64(NULL, flags[i]);
		else
			json_null(NULL);
	}
	json_close(']');
	free(again);
	free(flags);
}

/* The kernel walk of [start, end) in process pid, as "walk" (or "walk_error"). */
static void kernel_walk(long pid, uint64_t start, uint64_t end, long page,
			int kf)
{
	uint64_t n = (end - start + page - 1) / page, i;
	uint64_t *pfns = calloc(n, sizeof(*pfns));
	struct multimap_walk_pid req = { (int32_t)pid, 0, start, n, (uintptr_t)pfns };
	int fd = open("/dev/multimap", O_RDWR | O_CLOEXEC);

	if (!pfns || fd < 0 || ioctl(fd, MULTIMAP_IOC_WALK_PID, &req)) {
		json_str("walk_error", errno_name(pfns ? errno : ENOMEM));
	} else {
		json_open("walk", '[');
		for (i = 0; i < n; i++) {
			if (pfns[i] == MULTIMAP_WALK_NOT_MAPPED)
				json_null(NULL);
			else
				json_u64(NULL, pfns[i]);
		}
		json_close(']');
		walk_flags(fd, &req, pfns, kf);
	}
	if (fd >= 0)
		close(fd);
	free(pfns);
}

int main(int argc, char **argv)
{
	uint64_t start, end, addr, entry, flags, count;
	int pm, kf, kc;
	long page = sysconf(_SC_PAGESIZE);
	int walk = argc == 5 && !strcmp(argv[4], "--walk");
	char path[64];

	if (argc != 4 && !walk) {
		fprintf(stderr, "usage: pagemap-dump PID START END [--walk]\n");
		return 2;
	}
	parse_num(argv[1], "PID");
	start = parse_num(argv[2], "START") & ~(uint64_t)(page - 1);
	end = parse_num(argv[3], "END");
	if (end <= start) {
		fprintf(stderr, "pagemap-dump: END must be above START\n");
		return 2;
	}
	snprintf(path, sizeof(path), "/proc/%s/pagemap", argv[1]);
	pm = open(path, O_RDONLY);
	if (pm < 0) {
		fprintf(stderr, "pagemap-dump: %s: %s\n", path, strerror(errno));
		return 1;
	}
	kf = open("/proc/kpageflags", O_RDONLY);
	kc = open("/proc/kpagecount", O_RDONLY);

	json_open(NULL, '{');
	json_u64("pid", parse_num(argv[1], "PID"));
	json_u64("page_size", page);
	vma_info(argv[1], start);
	json_open("pages", '[');
	for (addr = start; addr < end; addr += page) {
		uint64_t pfn;

		if (read_u64(pm, addr / page, &entry)) {
			fprintf(stderr, "pagemap-dump: read %s at 0x%llx: %s\n", path,
				(unsigned long long)addr, strerror(errno));
			return 1;
		}
		pfn = entry & PM_PFN_MASK;
		json_open(NULL, '{');
		json_u64("addr", addr);
		json_u64("entry", entry);
		json_bool("present", !!(entry & PM_PRESENT));
		json_bool("swapped", !!(entry & PM_SWAP));
		json_bool("file", !!(entry & PM_FILE));
		json_bool("exclusive", !!(entry & PM_EXCLUSIVE));
		json_bool("soft_dirty", !!(entry & PM_SOFT_DIRTY));
		json_bool("uffd_wp", !!(entry & PM_UFFD_WP));
		if ((entry & PM_PRESENT) && !(entry & PM_SWAP)) {
			json_u64("pfn", pfn);
			if (pfn && kf >= 0 && !read_u64(kf, pfn, &flags))
				json_u64("kpageflags", flags);
			else
				json_null("kpageflags");
			if (pfn && kc >= 0 && !read_u64(kc, pfn, &count))
				json_u64("kpagecount", count);
			else
				json_null("kpagecount");
		} else {
			json_null("pfn");
		}
		json_close('}');
	}
	json_close(']');
	if (walk)
		kernel_walk((long)parse_num(argv[1], "PID"), start, end, page, kf);
	json_close('}');
	putchar('\n');
	return 0;
}
