/* A reproducer that crashes the kernel for sure: sysrq 'c' (a NULL dereference, then a panic). */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	int fd = open("/proc/sysrq-trigger", O_WRONLY);

	if (fd < 0) {
		perror("open /proc/sysrq-trigger");
		return 1;
	}
	if (write(fd, "c", 1) != 1)
		perror("write");
	return 0;
}
