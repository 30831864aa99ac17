// SPDX-License-Identifier: GPL-2.0
/* user: map /dev/vmap_drv, write and read back a pattern, hand it to the lab. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "remaplab.h"

int main(int argc, char **argv)
{
	size_t pages = argc > 1 ? strtoul(argv[1], NULL, 0) : 8;
	size_t page = 4096, len = pages * page, i;
	unsigned char *p;
	int fd = open("/dev/vmap_drv", O_RDWR);

	if (fd < 0) {
		perror("/dev/vmap_drv");
		return 1;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (i = 0; i < len; i++)
		p[i] = (unsigned char)(i * 7 + i / page);
	for (i = 0; i < len; i++) {
		if (p[i] != (unsigned char)(i * 7 + i / page)) {
			printf("byte %zu reads %u\n", i, p[i]);
			return 1;
		}
	}
	printf("ok %zu pages\n", pages);
	fflush(stdout);
	if (remaplab_hold("vm", p, len)) {
		perror("remaplab_hold");
		return 1;
	}
	munmap(p, len);
	close(fd);
	return 0;
}
