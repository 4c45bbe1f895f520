/* Minimal test helpers for capture_lib's C unit tests. */
#ifndef SYSCAP_CHECK_H
#define SYSCAP_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int checks_failed;
static int checks_run;

#define CHECK(cond) do { \
	checks_run++; \
	if (!(cond)) { \
		checks_failed++; \
		fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
	} \
} while (0)

#define CHECK_EQ(a, b) do { \
	unsigned long long _a = (unsigned long long)(a), _b = (unsigned long long)(b); \
	checks_run++; \
	if (_a != _b) { \
		checks_failed++; \
		fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %llu, %s == %llu\n", \
			__FILE__, __LINE__, #a, _a, #b, _b); \
	} \
} while (0)

/* A fixed xorshift sequence: the same inputs every run. */
static uint64_t check_rand_state = 0x9e3779b97f4a7c15ULL;

static inline uint64_t check_rand(void)
{
	check_rand_state ^= check_rand_state << 13;
	check_rand_state ^= check_rand_state >> 7;
	check_rand_state ^= check_rand_state << 17;
	return check_rand_state;
}

static inline int check_report(const char *name)
{
	printf("%s: %d checks, %d failed\n", name, checks_run, checks_failed);
	return checks_failed ? 1 : 0;
}

#endif
