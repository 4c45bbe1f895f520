"""What can be checked about a core before any process exists: the thread to restore, the
executable and libraries (paths, build-ids, layout), and a first plan of the mappings.
"""

from __future__ import annotations

import os
import struct

from restorer.arch import (
    ARCH_NAME,
    EM_HOST,
    PAGE_SIZE,
)
from restorer.core import Core, ThreadState
from restorer.elf_file import read_elf
from restorer.errors import RestoreError
from restorer.layout import (
    Warn,
    plan_regions,
)


def choose_thread(core: Core, tid: int | None) -> ThreadState:
    """The thread `tid`; without one, the thread-group leader (the one whose TID is the
    process's PID), or the thread that took the signal if the core has no leader."""
    if tid is None:
        return core.thread(core.pid) or core.signal_thread
    t = core.thread(tid)
    if t is None:
        tids = ", ".join(str(x.tid) for x in core.threads)
        raise RestoreError(f"thread {tid} is not in the core; it has threads {tids} (use --tid)")
    return t


def resolve_exe(core: Core, exe: str | None) -> tuple[str, dict[str, str]]:
    """The executable to start and a map core path -> path to use."""
    core_exe = core.exe_path
    path_map: dict[str, str] = {}
    if exe is None:
        if core_exe is None:
            raise RestoreError(
                f"{core.path} names no executable (no NT_FILE note); pass it with --exe PATH"
            )
        exe = core_exe
    elif core_exe is not None:
        path_map[core_exe] = exe
    if not os.path.isfile(exe):
        raise RestoreError(
            f"executable {exe} not found; pass the program that produced the core with --exe PATH"
        )
    info = read_elf(exe)
    if info is None:
        raise RestoreError(f"{exe} is not a 64-bit ELF executable; pass the right one with --exe")
    if info.machine != EM_HOST:
        raise RestoreError(f"{exe} is not an {ARCH_NAME} executable; pass the right one with --exe")
    if core_exe is not None:
        want = core.build_id_in_memory(core_exe)
        if want is not None and info.build_id is not None and want != info.build_id:
            raise RestoreError(
                f"{exe} is not the program that wrote this core (build-id {info.build_id.hex()}, "
                f"core has {want.hex()}); pass the right one with --exe PATH"
            )
        if want is None:
            _check_layout(core, core_exe, exe)
    return exe, path_map


def _check_layout(core: Core, core_exe: str, exe: str) -> None:
    """Without a build-id: the core's copy of the program's ELF and program headers (the
    kernel and gcore dump the first page of a mapped ELF file) must be the file's, and its
    file mappings must fall inside the file's load segments."""
    info = read_elf(exe)
    assert info is not None
    first = [f for f in core.files if f.path == core_exe and f.offset == 0]
    saved = core.read(first[0].start, 64) if first else None
    if saved is not None:
        phoff, phnum = (
            struct.unpack_from("<Q", saved, 32)[0],
            struct.unpack_from("<H", saved, 56)[0],
        )
        # Headers beyond the first page may not be in the core; they are not compared.
        saved_ph = core.read(first[0].start + phoff, phnum * 56) if phoff < PAGE_SIZE else None
        with open(exe, "rb") as fh:
            head = fh.read(64)
            fh.seek(phoff if saved_ph is not None else 0)
            file_ph = fh.read(len(saved_ph)) if saved_ph is not None else None
        if saved != head or saved_ph != file_ph:
            raise RestoreError(
                f"{exe} does not match the core's executable {core_exe} (its ELF headers "
                "differ from the ones in the core); pass the right one with --exe PATH"
            )
    size = os.path.getsize(exe)
    for f in core.files:
        if f.path != core_exe:
            continue
        if f.offset >= size or info.prot_for_offset(f.offset) is None:
            raise RestoreError(
                f"{exe} does not match the core's executable {core_exe} (its mapping at "
                f"{f.start:#x} is not a load segment of {exe}); pass the right one with --exe"
            )


def check_build_ids(core: Core, path_map: dict[str, str], warn: Warn) -> None:
    for path in core.mapped_paths():
        real = path_map.get(path, path)
        want = core.build_id_in_memory(path)
        if want is None or not os.path.isfile(real):
            continue
        info = read_elf(real)
        if info is not None and info.build_id is not None and info.build_id != want:
            warn(
                f"{real} differs from the file the core was made with (build-id "
                f"{info.build_id.hex()}, core has {want.hex()}); code from it may not match"
            )


def check_restorable(
    core: Core, exe: str | None, tid: int | None, warn: Warn
) -> tuple[ThreadState, str, dict[str, str], int | None]:
    """Everything about `core` that can be checked before a process exists.

    Returns (thread to restore, executable, core path -> path to use, main thread's stack
    pointer); raises RestoreError for bad input. Nothing here touches a process.
    """
    thread = choose_thread(core, tid)
    exe_path, path_map = resolve_exe(core, exe)
    check_build_ids(core, path_map, warn)
    main = core.thread(core.pid)
    main_sp = main.regs.sp if main is not None else None
    # Plan once without knowing the fresh specials, to fail early on bad input.
    plan_regions(core, path_map, None, main_sp, lambda _m: None)
    return thread, exe_path, path_map, main_sp
