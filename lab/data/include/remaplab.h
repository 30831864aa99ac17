/* SPDX-License-Identifier: GPL-2.0 */
/*
 * remaplab.h: the contract between a user program and the remaplab lab.
 *
 * One call, from a program a scenario runs with `program: {source: x.c, hold: NAME}`:
 *
 *	int remaplab_hold(const char *name, void *addr, size_t length);
 *
 * 1. writes the lab's witness tokens through the mapping [addr, addr + length): into the first
 *    8 bytes of page i the token for (seed, i), into its last 8 bytes the token's complement
 *    (so the lab finds each page in guest-physical memory from the host, even when the kernel's
 *    pagemap reports a VM_PFNMAP hole).  This OVERWRITES those 16 bytes of every page: hold a
 *    mapping whose contents you no longer need, or save and restore them around the call;
 * 2. tells the lab the process and the range (a JSON file in $REMAPLAB_HOLD_DIR);
 * 3. blocks until the lab releases the mapping (a `release: {of: NAME}` step, or the end of the
 *    scenario), then returns 0, and the program goes on or exits.
 *
 * It returns -1 with errno set when it cannot do its job: EINVAL for a NULL or unaligned addr,
 * a zero length or a name the lab cannot use; ENOENT when the program does not run under the
 * lab (no $REMAPLAB_HOLD_DIR); the errno of a failed file operation.  Run outside the lab, a
 * program can test for ENOENT and carry on.  The mapping must be writable.
 *
 * Header only, no dependency but libc: #include "remaplab.h" (the lab puts it on the include
 * path of every program it compiles; `remaplab cc` too).
 */
#ifndef REMAPLAB_H
#define REMAPLAB_H

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REMAPLAB_TOKEN_MAGIC (0x6d6d0000ULL << 32)

/* The token of page `index` of a mapping held with `seed` (as the lab computes it). */
static inline uint64_t remaplab_token(uint64_t seed, uint64_t index)
{
	return (seed << 32) ^ REMAPLAB_TOKEN_MAGIC ^ (index + 1);
}

/* Write every page's token (first word) and its complement (last word). */
static inline void remaplab_write_tokens(void *addr, size_t length, uint64_t seed)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t i;

	for (i = 0; i < length / page; i++) {
		volatile uint64_t *p = (volatile uint64_t *)((char *)addr + i * page);

		p[0] = remaplab_token(seed, i);
		p[page / 8 - 1] = ~remaplab_token(seed, i);
	}
}

static inline int remaplab__name_ok(const char *name)
{
	size_t i, n = name ? strlen(name) : 0;

	if (n == 0 || n > 80)
		return 0;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '-' || c == '.'))
			return 0;
	}
	return 1;
}

/* Write text to dir/name atomically (a temporary file renamed into place). */
static inline int remaplab__publish(const char *dir, const char *name, const char *text)
{
	char tmp[4096], path[4096];
	size_t len = strlen(text);
	int fd, ok;

	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	ok = write(fd, text, len) == (ssize_t)len;
	if (close(fd) || !ok || rename(tmp, path)) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static inline int remaplab_hold(const char *name, void *addr, size_t length)
{
	const char *dir = getenv("REMAPLAB_HOLD_DIR");
	const char *seed_text = getenv("REMAPLAB_SEED");
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	char fifo[4096], json[512], file[128], byte;
	uint64_t seed;
	int fd, saved;
	ssize_t got;

	if (!dir || !seed_text) {
		errno = ENOENT;
		return -1;
	}
	if (!addr || ((uintptr_t)addr % page) || length < page || !remaplab__name_ok(name)) {
		errno = EINVAL;
		return -1;
	}
	seed = strtoull(seed_text, NULL, 0);
	remaplab_write_tokens(addr, length - length % page, seed);
	snprintf(fifo, sizeof(fifo), "%s/%s.release", dir, name);
	if (mkfifo(fifo, 0600) && errno != EEXIST)
		return -1;
	snprintf(json, sizeof(json),
		 "{\"name\":\"%s\",\"pid\":%ld,\"addr\":%llu,\"length\":%llu,\"seed\":%llu}\n",
		 name, (long)getpid(), (unsigned long long)(uintptr_t)addr,
		 (unsigned long long)(length - length % page), (unsigned long long)seed);
	snprintf(file, sizeof(file), "%s.json", name);
	if (remaplab__publish(dir, file, json))
		return -1;
	/* Block until the lab writes the release byte (or closes its end). */
	fd = open(fifo, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	do {
		got = read(fd, &byte, 1);
	} while (got < 0 && errno == EINTR);
	saved = errno;
	close(fd);
	unlink(fifo);
	errno = saved;
	return got < 0 ? -1 : 0;
}

#endif /* REMAPLAB_H */
