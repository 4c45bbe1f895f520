/* Blocks in read(0); the test dumps it there. */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	char buf[64];
	ssize_t n;

	setvbuf(stdout, NULL, _IONBF, 0);
	printf("waiting\n");
	n = read(0, buf, sizeof(buf));
	printf("got %zd: %.*s", n, (int)(n > 0 ? n : 0), buf);
	return 0;
}
