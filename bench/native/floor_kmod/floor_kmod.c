// SPDX-License-Identifier: GPL-2.0-only
/*
 * floor_kmod: the module's floor for the guest benchmark. Empty probes on
 * sys_enter and sys_exit, registered on load and removed on unload: the
 * least a module that times syscalls must add, as bench/native/floor.bpf.c
 * is eBPF's. The probes take and release nothing, so they cost the
 * tracepoint's call and return and the syscall slow path that any
 * raw_syscalls probe turns on.
 */
#include <linux/module.h>
#include <linux/ptrace.h>
#include <linux/string.h>
#include <linux/tracepoint.h>

static struct tracepoint *tp_enter, *tp_exit;

static void floor_enter(void *data, struct pt_regs *regs, long id)
{
}

static void floor_exit(void *data, struct pt_regs *regs, long ret)
{
}

static void find_tracepoint(struct tracepoint *tp, void *priv)
{
	if (!strcmp(tp->name, "sys_enter"))
		tp_enter = tp;
	else if (!strcmp(tp->name, "sys_exit"))
		tp_exit = tp;
}

static int __init floor_init(void)
{
	int err;

	for_each_kernel_tracepoint(find_tracepoint, NULL);
	if (!tp_enter || !tp_exit)
		return -ENXIO;
	err = tracepoint_probe_register(tp_enter, floor_enter, NULL);
	if (err)
		return err;
	err = tracepoint_probe_register(tp_exit, floor_exit, NULL);
	if (err) {
		tracepoint_probe_unregister(tp_enter, floor_enter, NULL);
		tracepoint_synchronize_unregister();
	}
	return err;
}

static void __exit floor_exit_module(void)
{
	tracepoint_probe_unregister(tp_exit, floor_exit, NULL);
	tracepoint_probe_unregister(tp_enter, floor_enter, NULL);
	/* no probe may still run in this module's text once it is gone */
	tracepoint_synchronize_unregister();
}

module_init(floor_init);
module_exit(floor_exit_module);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("syscap benchmark: empty sys_enter/sys_exit probes (the module's floor)");
