// SPDX-License-Identifier: BSD-2-Clause
/*
 * CRC-32 of trace headers and blocks: zlib's (polynomial 0x04C11DB7, bits
 * reflected, register inverted on entry and exit), so the format is the same
 * whichever implementation wrote or reads a trace. zlib's table code is the
 * reference and the fallback; where the CPU can, it is done faster:
 *
 *  x86-64   carry-less multiplication (PCLMULQDQ): four 128-bit lanes folded
 *           forward over each 64-byte chunk, then folded into one and reduced
 *           to 32 bits (Barrett), after Intel's "Fast CRC Computation for
 *           Generic Polynomials Using PCLMULQDQ Instruction".
 *  arm64    the ARMv8 CRC32 instructions, which compute this very CRC.
 *
 * The choice is made once, before main(), from what the CPU reports and, as
 * an emulator may run those instructions slower than the table (QEMU's TCG
 * runs PCLMULQDQ through a helper: 6x slower than zlib there), from timing
 * both on a short block: either gives the same CRC.
 */
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#include "internal.h"

static uint32_t crc32_zlib(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	/* zlib's length is an unsigned int: feed it in pieces that fit */
	while (len > 0x40000000) {
		crc = (uint32_t)crc32(crc, p, 0x40000000);
		p += 0x40000000;
		len -= 0x40000000;
	}
	return (uint32_t)crc32(crc, p, (uInt)len);
}

static uint32_t (*crc32_impl)(uint32_t, const void *, size_t) = crc32_zlib;
static const char *crc32_name = "zlib";
/* the CPU's faster code, where it has one, chosen or not */
static uint32_t (*crc32_fast)(uint32_t, const void *, size_t);
static const char *crc32_fast_name;

static uint64_t nsec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * fn takes less time than zlib on 4 KiB, the best of five interleaved tries
 * each (a few microseconds on a CPU, a few hundred under emulation).
 */
static int faster_than_zlib(uint32_t (*fn)(uint32_t, const void *, size_t))
{
	static uint8_t buf[4096];
	uint64_t best_fn = UINT64_MAX, best_zlib = UINT64_MAX, t;
	volatile uint32_t sink = 0;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	for (int i = 0; i < 5; i++) {
		t = nsec();
		sink += fn(0, buf, sizeof(buf));
		t = nsec() - t;
		best_fn = t < best_fn ? t : best_fn;
		t = nsec();
		sink += crc32_zlib(0, buf, sizeof(buf));
		t = nsec() - t;
		best_zlib = t < best_zlib ? t : best_zlib;
	}
	(void)sink;
	return best_fn < best_zlib;
}

#if defined(__x86_64__)
#include <immintrin.h>

/*
 * A 128-bit register loaded from 16 message bytes holds the polynomial whose
 * bit i (bit 0 = low bit of the first byte) is the coefficient of x^(127-i):
 * the message's first bit is its highest term. Split it as A = H x^64 + L,
 * H the low quadword. Carrying it D bits further down the message (onto the
 * register of the bytes D bits later) means A x^D = H x^(64+D) + L x^D, and
 * modulo P each term is a 64-bit part times a 32-bit constant:
 *
 * clmul of quadwords h (bit i = x^(63-i)) and k (bit j = x^(63-j)) puts the
 * term x^(126-i-j) at bit i+j, which the register reads as x^(127-i-j): the
 * product times x. So the constant for a shift by x^n is x^(n-1) mod P, 32
 * bits, reflected into the high half of its quadword (bit 63-m = x^m), and
 * the product (degree < 96) always fits the 128-bit register.
 */
static uint64_t fold_4x128[2];	/* x^(512+63), x^(512-1): 64 bytes on */
static uint64_t fold_1x128[2];	/* x^(128+63), x^(128-1): 16 bytes on */
static uint64_t fold_tail[2];	/* x^95, x^63: the 128 -> 96 -> 64 bit folds */
static uint64_t barrett[2];	/* mu = x^64 / P and P, 33 bits reflected */

/* x^n mod P, coefficient m at bit m */
static uint32_t xpow_mod(unsigned int n)
{
	uint32_t r = 1;

	while (n--)
		r = (r << 1) ^ (r & 0x80000000u ? 0x04C11DB7u : 0);
	return r;
}

static uint64_t reflect(uint64_t v, unsigned int bits)
{
	uint64_t r = 0;

	for (unsigned int i = 0; i < bits; i++)
		r |= ((v >> i) & 1) << (bits - 1 - i);
	return r;
}

/* the constant that carries a 64-bit part on by x^n (see above) */
static uint64_t fold_const(unsigned int n)
{
	return reflect(xpow_mod(n - 1), 32) << 32;
}

static void clmul_init(void)
{
	uint64_t mu = 0, rem = 0;

	fold_4x128[0] = fold_const(512 + 64);
	fold_4x128[1] = fold_const(512);
	fold_1x128[0] = fold_const(128 + 64);
	fold_1x128[1] = fold_const(128);
	fold_tail[0] = fold_const(96);
	fold_tail[1] = fold_const(64);
	/* mu = floor(x^64 / P) by long division, one quotient bit at a time */
	for (int i = 64; i >= 0; i--) {
		rem = (rem << 1) | (i == 64);
		if (rem & (1ull << 32)) {
			rem ^= 0x104C11DB7ull;
			mu |= 1ull << i;
		}
	}
	barrett[0] = reflect(mu, 33);
	barrett[1] = reflect(0x104C11DB7ull, 33);
}

#define CLMUL_TARGET __attribute__((target("pclmul,sse4.1")))

/* x carried on by the constants k, onto next */
static inline CLMUL_TARGET __m128i fold(__m128i x, __m128i k, __m128i next)
{
	__m128i hi = _mm_clmulepi64_si128(x, k, 0x00);	/* H * k[0] */
	__m128i lo = _mm_clmulepi64_si128(x, k, 0x11);	/* L * k[1] */

	return _mm_xor_si128(_mm_xor_si128(hi, lo), next);
}

/* len >= 16 */
static CLMUL_TARGET uint32_t crc32_clmul(uint32_t crc, const void *buf, size_t len)
{
	const __m128i *p = buf;
	__m128i k1 = _mm_loadu_si128((const __m128i *)fold_1x128);
	__m128i k, x0, x1, x2, x3, t;
	uint32_t rem;

	/* the entering register state is the message's first 32 terms flipped */
	x0 = _mm_xor_si128(_mm_loadu_si128(p), _mm_cvtsi32_si128((int)~crc));
	p++;
	len -= 16;
	if (len >= 48) {
		k = _mm_loadu_si128((const __m128i *)fold_4x128);
		x1 = _mm_loadu_si128(p);
		x2 = _mm_loadu_si128(p + 1);
		x3 = _mm_loadu_si128(p + 2);
		p += 3;
		len -= 48;
		for (; len >= 64; len -= 64, p += 4) {
			x0 = fold(x0, k, _mm_loadu_si128(p));
			x1 = fold(x1, k, _mm_loadu_si128(p + 1));
			x2 = fold(x2, k, _mm_loadu_si128(p + 2));
			x3 = fold(x3, k, _mm_loadu_si128(p + 3));
		}
		x0 = fold(x0, k1, x1);
		x0 = fold(x0, k1, x2);
		x0 = fold(x0, k1, x3);
	}
	for (; len >= 16; len -= 16, p++)
		x0 = fold(x0, k1, _mm_loadu_si128(p));

	/*
	 * The register state is x0 * x^32 mod P. 128 -> 96 bits: H x^96 + L x^32,
	 * L moved to bits 32..95. 96 -> 64: its top 32 terms (now bits 32..63)
	 * by x^64, onto the rest (bits 64..127).
	 */
	k = _mm_loadu_si128((const __m128i *)fold_tail);
	t = _mm_clmulepi64_si128(x0, k, 0x00);
	x0 = _mm_xor_si128(t, _mm_slli_si128(_mm_srli_si128(x0, 8), 4));
	t = _mm_clmulepi64_si128(x0, k, 0x10);
	x0 = _mm_xor_si128(_mm_srli_si128(x0, 8), _mm_srli_si128(t, 8));

	/*
	 * Barrett: R, 64 bits with x^63 at bit 0, is R1 x^32 + R0. The quotient
	 * q = floor(R1 mu / x^32) lands in bits 0..31 of R1 * mu, and R - q P's
	 * low 32 terms (bits 32..63) are the remainder, in zlib's bit order.
	 */
	k = _mm_loadu_si128((const __m128i *)barrett);
	t = _mm_clmulepi64_si128(_mm_and_si128(x0, _mm_cvtsi32_si128(-1)), k, 0x00);
	t = _mm_clmulepi64_si128(_mm_and_si128(t, _mm_cvtsi32_si128(-1)), k, 0x10);
	rem = (uint32_t)_mm_extract_epi32(_mm_xor_si128(x0, t), 1);

	/* under 16 bytes left */
	return len ? crc32_zlib(~rem, p, len) : ~rem;
}

static uint32_t crc32_x86(uint32_t crc, const void *buf, size_t len)
{
	/* the table, a byte at a time, only for what is less than one fold */
	return len < 16 ? crc32_zlib(crc, buf, len) : crc32_clmul(crc, buf, len);
}

__attribute__((constructor)) static void crc32_select(void)
{
	__builtin_cpu_init();	/* constructors may run before libgcc's */
	if (__builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1")) {
		clmul_init();
		crc32_fast = crc32_x86;
		crc32_fast_name = "pclmul";
		if (!faster_than_zlib(crc32_x86))
			return;
		crc32_impl = crc32_x86;
		crc32_name = "pclmul";
	}
}

#elif defined(__aarch64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#include <arm_acle.h>
#include <sys/auxv.h>

/* the instructions take and give the register state as is: no inversion */
__attribute__((target("+crc")))
static uint32_t crc32_arm(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t v;

	crc = ~crc;
	for (; len && ((uintptr_t)p & 7); len--)
		crc = __crc32b(crc, *p++);
	for (; len >= 8; len -= 8, p += 8) {
		memcpy(&v, p, 8);
		crc = __crc32d(crc, v);
	}
	while (len--)
		crc = __crc32b(crc, *p++);
	return ~crc;
}

__attribute__((constructor)) static void crc32_select(void)
{
	if (!(getauxval(AT_HWCAP) & HWCAP_CRC32))
		return;
	crc32_fast = crc32_arm;
	crc32_fast_name = "armv8-crc";
	if (faster_than_zlib(crc32_arm)) {
		crc32_impl = crc32_arm;
		crc32_name = "armv8-crc";
	}
}
#endif

uint32_t syscap_crc32(uint32_t crc, const void *buf, size_t len)
{
	return crc32_impl(crc, buf, len);
}

const char *syscap_crc32_impl(void)
{
	return crc32_name;
}

const char *syscap_crc32_force_fast(void)
{
	if (crc32_fast) {
		crc32_impl = crc32_fast;
		crc32_name = crc32_fast_name;
	}
	return crc32_fast_name;
}
