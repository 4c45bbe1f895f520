// SPDX-License-Identifier: BSD-2-Clause
/*
 * tcgprof: a QEMU TCG plugin that counts, for every block of translated guest
 * code, how often it ran, its guest instructions and its memory accesses, and
 * writes the counts out each time the guest runs its marker (the block at
 * address mark=, tcgprof_mark.c's mark()). Two snapshots around a loop of N
 * syscalls give what each syscall costs the emulator, by block, for the whole
 * guest (kernel, module, BPF programs, the recorder): bench/guest_profile.py
 * runs it and reads the snapshots.
 *
 * Under TCG a block ends at every branch; its cost is roughly its
 * instructions plus its memory accesses (each a software TLB lookup), plus a
 * lookup of the next block after an indirect jump or a return.
 *
 *   qemu-system-x86_64 -plugin tcgprof.so,out=DIR,mark=0x13370000 ...
 *
 * Snapshots are DIR/snap.0, snap.1, ...: one line per block that ran,
 * "vaddr insns execs mem" (vaddr in hex). Counters are plain adds inlined in
 * the translated code, exact with one vCPU thread (-accel tcg,thread=single,
 * as the lab and the guest bench run).
 *
 * Built against QEMU's plugin API version 1 (QEMU 4.2 to 8.x, Debian 12's
 * 7.2); the few declarations it needs are below, from the API's documented
 * signatures, so no QEMU source tree is needed.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct {
	const char *target_name;
	struct {
		int min, cur;
	} version;
	bool system_emulation;
	union {
		struct {
			int smp_vcpus, max_vcpus;
		} system;
	};
} qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS };
enum qemu_plugin_mem_rw { QEMU_PLUGIN_MEM_R = 1, QEMU_PLUGIN_MEM_W, QEMU_PLUGIN_MEM_RW };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
					   qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb,
					  qemu_plugin_vcpu_udata_cb_t cb,
					  enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
					      void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_mem_inline(struct qemu_plugin_insn *insn,
					  enum qemu_plugin_mem_rw rw, enum qemu_plugin_op op,
					  void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
void qemu_plugin_outs(const char *string);

#define EXPORT __attribute__((visibility("default")))

EXPORT int qemu_plugin_version = 1;

/* One translation of a block; a block translated again gets another. */
struct block {
	uint64_t vaddr;
	uint64_t insns;
	uint64_t execs;		/* added to by the translated code */
	uint64_t mem;		/* ditto, one per memory access */
	struct block *next;
};

static struct block *blocks;
static pthread_mutex_t blocks_lock = PTHREAD_MUTEX_INITIALIZER;
static char out_dir[4096] = ".";
static uint64_t mark_vaddr;
static unsigned int snapshots;

static void snapshot(unsigned int vcpu_index, void *userdata)
{
	char path[4200], msg[4300];
	struct block *b;
	FILE *f;

	(void)vcpu_index;
	(void)userdata;
	snprintf(path, sizeof(path), "%s/snap.%u", out_dir, snapshots++);
	f = fopen(path, "w");
	if (!f) {
		snprintf(msg, sizeof(msg), "tcgprof: cannot write %s\n", path);
		qemu_plugin_outs(msg);
		return;
	}
	pthread_mutex_lock(&blocks_lock);
	for (b = blocks; b; b = b->next)
		if (b->execs)
			fprintf(f, "%" PRIx64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", b->vaddr,
				b->insns, b->execs, b->mem);
	pthread_mutex_unlock(&blocks_lock);
	if (fclose(f)) {
		snprintf(msg, sizeof(msg), "tcgprof: cannot write %s\n", path);
		qemu_plugin_outs(msg);
	}
}

static void translated(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	uint64_t vaddr = qemu_plugin_tb_vaddr(tb);
	size_t i, n = qemu_plugin_tb_n_insns(tb);
	struct block *b;

	(void)id;
	if (vaddr == mark_vaddr) {
		qemu_plugin_register_vcpu_tb_exec_cb(tb, snapshot, QEMU_PLUGIN_CB_NO_REGS, NULL);
		return;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return;		/* this block goes uncounted; the rest stay right */
	b->vaddr = vaddr;
	b->insns = n;
	pthread_mutex_lock(&blocks_lock);
	b->next = blocks;
	blocks = b;
	pthread_mutex_unlock(&blocks_lock);
	qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &b->execs, 1);
	for (i = 0; i < n; i++)
		qemu_plugin_register_vcpu_mem_inline(qemu_plugin_tb_get_insn(tb, i),
						     QEMU_PLUGIN_MEM_RW,
						     QEMU_PLUGIN_INLINE_ADD_U64, &b->mem, 1);
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
			       char **argv)
{
	int i;

	(void)info;
	for (i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "out=", 4) && strlen(argv[i] + 4) < sizeof(out_dir)) {
			strcpy(out_dir, argv[i] + 4);
		} else if (!strncmp(argv[i], "mark=", 5)) {
			mark_vaddr = strtoull(argv[i] + 5, NULL, 0);
		} else {
			fprintf(stderr, "tcgprof: unknown argument %s (out=DIR, mark=ADDRESS)\n",
				argv[i]);
			return -1;
		}
	}
	if (!mark_vaddr) {
		fprintf(stderr, "tcgprof: no mark=ADDRESS: nothing would be written\n");
		return -1;
	}
	qemu_plugin_register_vcpu_tb_trans_cb(id, translated);
	return 0;
}
