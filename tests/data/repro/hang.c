/* A reproducer that never ends (it sleeps): ended by --timeout, "no crash (timed out)". */
#include <unistd.h>

int main(void)
{
	for (;;)
		pause();
}
