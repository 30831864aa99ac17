// A reproducer that says what it was given: its arguments and a -D macro (no crash).
#include <stdio.h>

#ifndef GREETING
#define GREETING "no -DGREETING"
#endif

int main(int argc, char **argv)
{
	printf("greeting: %s\n", GREETING);
	for (int i = 1; i < argc; i++)
		printf("arg %d: [%s]\n", i, argv[i]);
	return 0;
}
