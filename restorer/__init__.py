"""syscap's coredump restorer: turn an ELF core (kernel or gdb gcore) back into a process.

Library use::

    from restorer.core import Core
    from restorer.restore import restore
    from restorer.control import Controller

    with Core("core") as core:
        ctl = Controller(restore(core))      # stopped where the core was taken
        ev = ctl.cont()                      # e.g. SIGSEGV at the same PC
        ...
        ctl.close()                          # kills the process and its checkpoints

Modules, in data-flow order: core (parse the core), elf_file (files on disk), ptrace
(ctypes binding), tracee (a stopped process), inject (syscalls inside it), restore
(rebuild the process: checks, launch, layout, mapping, threads, run in order by restore),
symbols, control (stop/step/cont/breakpoints/...), checkpoint (fork-based going back),
timeline and replay (reverse execution, the syscall record), console (the --hold front
end), cli (`syscap restore`); live (cores of running processes) and sidecar (what a core
leaves out, saved beside it).
What differs between x86-64 and arm64 is in arch. Nothing here imports Textual.
"""
