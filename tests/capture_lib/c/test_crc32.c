/* src/crc32.c: syscap_crc32 gives zlib's crc32 for every length, alignment
 * and split of the input, whichever implementation the CPU selected. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>
#include "check.h"
#include "internal.h"

#define MAXLEN 4096
#define BLOCK (256 * 1024)

static uint8_t data[BLOCK + 64];

static void fill_random(uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)check_rand();
}

static uint32_t ref(uint32_t crc, const uint8_t *p, size_t len)
{
	return (uint32_t)crc32(crc, p, (uInt)len);
}

/* lengths 0..MAXLEN at alignments 0..15, from a non-zero start too */
static void test_lengths_alignments(void)
{
	int bad = 0;

	fill_random(data, MAXLEN + 16);
	for (size_t off = 0; off < 16; off++)
		for (size_t len = 0; len <= MAXLEN; len++) {
			bad += syscap_crc32(0, data + off, len) != ref(0, data + off, len);
			bad += syscap_crc32(0x12345678, data + off, len) !=
			       ref(0x12345678, data + off, len);
		}
	CHECK_EQ(bad, 0);
}

/* A then B equals A||B, for splits around the fast path's 64-byte chunks */
static void test_chained(void)
{
	int bad = 0;

	fill_random(data, 1024);
	for (size_t len = 0; len <= 1024; len += 7)
		for (size_t cut = 0; cut <= len; cut += 5) {
			uint32_t c = syscap_crc32(0, data, cut);

			c = syscap_crc32(c, data + cut, len - cut);
			bad += c != ref(0, data, len);
		}
	CHECK_EQ(bad, 0);
	/* 0 is also zlib's crc32(0, NULL, 0): the start value */
	CHECK_EQ(syscap_crc32(0, data, 0), 0);
	CHECK_EQ(syscap_crc32(0xdeadbeef, data, 0), 0xdeadbeef);
}

/* a whole block, at both alignments a block buffer can have, with random
 * splits, and the patterns a folding mistake is least likely to hide in */
static void test_block_and_patterns(void)
{
	static const uint8_t pat[] = { 0x00, 0xff, 0x80, 0x01 };

	fill_random(data, sizeof(data));
	CHECK_EQ(syscap_crc32(0, data, BLOCK), ref(0, data, BLOCK));
	CHECK_EQ(syscap_crc32(0, data + 3, BLOCK + 40), ref(0, data + 3, BLOCK + 40));
	for (int i = 0; i < 20; i++) {
		size_t cut = check_rand() % BLOCK;
		uint32_t c = syscap_crc32(~0u, data, cut);

		CHECK_EQ(syscap_crc32(c, data + cut, BLOCK - cut), ref(~0u, data, BLOCK));
	}
	for (size_t i = 0; i < sizeof(pat); i++) {
		int bad = 0;

		memset(data, pat[i], BLOCK);
		CHECK_EQ(syscap_crc32(0, data, BLOCK), ref(0, data, BLOCK));
		for (size_t len = 0; len <= 1024; len++)
			bad += syscap_crc32(0, data, len) != ref(0, data, len) ||
			       syscap_crc32(~0u, data, len) != ref(~0u, data, len);
		CHECK_EQ(bad, 0);
	}
	/* the standard check value */
	CHECK_EQ(syscap_crc32(0, "123456789", 9), 0xCBF43926);
	memset(data, 'a', 1000);
	CHECK_EQ(syscap_crc32(0, data, 1000), ref(0, data, 1000));
}

int main(void)
{
	const char *chosen = syscap_crc32_impl();
	const char *fast = syscap_crc32_force_fast();

	/* the faster code is what needs checking, whichever was chosen */
	printf("crc32: %s chosen, testing %s\n", chosen, fast ? fast : "zlib");
	test_lengths_alignments();
	test_chained();
	test_block_and_patterns();
	return check_report("test_crc32");
}
