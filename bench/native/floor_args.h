/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The record floors' one piece of record filling beyond ids and times: the
 * six syscall arguments, as syscall_get_arguments() sees them at exit.
 */
#ifndef FLOOR_ARGS_H
#define FLOOR_ARGS_H

static __always_inline void floor_args(__u64 *a, struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_x86)
	a[0] = regs->di;
	a[1] = regs->si;
	a[2] = regs->dx;
	a[3] = regs->r10;
	a[4] = regs->r8;
	a[5] = regs->r9;
#elif defined(__TARGET_ARCH_arm64)
	a[0] = regs->orig_x0;
	a[1] = regs->regs[1];
	a[2] = regs->regs[2];
	a[3] = regs->regs[3];
	a[4] = regs->regs[4];
	a[5] = regs->regs[5];
#endif
}

#endif /* FLOOR_ARGS_H */
