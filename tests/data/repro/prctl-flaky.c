/* The flaky twin of prctl-warn.c: option 0x52454d42 WARNs in one call of two. */
#include <stdio.h>
#include <sys/prctl.h>

int main(void)
{
	int ret = prctl(0x52454d42, 0, 0, 0, 0);

	printf("prctl: %d\n", ret);
	return 0;
}
