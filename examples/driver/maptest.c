// SPDX-License-Identifier: GPL-2.0
/*
 * maptest: maps /dev/exmap as a user of the driver would, checks what it
 * wrote reads back, and hands the mapping to the lab (remaplab_hold) so the
 * lab's witnesses can look at it; then unmaps and exits.
 *
 *	maptest [DEVICE [PAGES]]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "remaplab.h"

int main(int argc, char **argv)
{
	const char *dev = argc > 1 ? argv[1] : "/dev/exmap";
	size_t pages = argc > 2 ? strtoul(argv[2], NULL, 0) : 16;
	size_t page = (size_t)sysconf(_SC_PAGESIZE), len = pages * page, i;
	unsigned char *p;
	int fd = open(dev, O_RDWR);

	if (fd < 0) {
		perror(dev);
		return 1;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (i = 0; i < pages; i++)
		memset(p + i * page, (int)(i + 1), page);
	for (i = 0; i < pages; i++) {
		if (p[i * page + page / 2] != (unsigned char)(i + 1)) {
			printf("page %zu reads %u, wrote %zu\n", i, p[i * page + page / 2], i + 1);
			return 1;
		}
	}
	printf("wrote and read back %zu pages\n", pages);
	fflush(stdout);
	if (remaplab_hold("exmap", p, len)) {
		perror("remaplab_hold");
		return 1;
	}
	munmap(p, len);
	close(fd);
	printf("released\n");
	return 0;
}
