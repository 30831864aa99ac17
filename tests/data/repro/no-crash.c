/* A reproducer that never crashes anything: a few harmless system calls. */
#include <stdio.h>
#include <sys/utsname.h>
#include <unistd.h>

int main(void)
{
	struct utsname u;

	if (uname(&u) != 0)
		return 1;
	printf("%s %s, pid %d\n", u.sysname, u.release, (int)getpid());
	return 0;
}
