/* A shared library, for the missing-library test. */
const char *greet(void)
{
	return "hello from libgreet";
}
