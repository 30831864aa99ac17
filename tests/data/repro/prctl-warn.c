/* Reaches the WARN that the bisect test's kernel history injects into prctl (option
 * 0x52454d41); on any other kernel the option is unknown: EINVAL, nothing happens. */
#include <stdio.h>
#include <sys/prctl.h>

int main(void)
{
	int ret = prctl(0x52454d41, 0, 0, 0, 0);

	printf("prctl: %d\n", ret);
	return 0;
}
