/* Faults on a store through a NULL pointer the compiler cannot see. */
#include <stdio.h>

int *volatile target;

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	printf("before crash\n");
	*target = 42;
	printf("after crash\n");
	return 0;
}
