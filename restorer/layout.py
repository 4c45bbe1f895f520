"""The address-space layout of a restore: which mappings to create, where the fresh
process's vDSO and vvar go, where the heap is, and free room for the gadget page.

Pure planning from the core, the executables and /proc: no process is changed here.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable
from dataclasses import dataclass

from restorer.arch import (
    PAGE_SIZE,
    TASK_SIZE,
    VSYSCALL_ADDR,
)
from restorer.core import Core, page_align_down, page_align_up
from restorer.elf import ProgramHeader
from restorer.elf_file import read_elf
from restorer.errors import RestoreError

PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
MAP_PRIVATE = 0x02
MAP_FIXED = 0x10
MAP_ANONYMOUS = 0x20
MAP_GROWSDOWN = 0x100
MAP_FIXED_NOREPLACE = 0x100000
MREMAP_MAYMOVE, MREMAP_FIXED = 1, 2
AT_FDCWD = -100
O_RDONLY, O_CLOEXEC = 0, 0o2000000
PR_SET_MM, PR_SET_MM_MAP = 35, 14
SPECIAL_NAMES = ("[vvar]", "[vvar_vclock]", "[vdso]")

Warn = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Region:
    """One mapping to create in the restored process."""

    start: int
    end: int
    prot: int
    path: str | None  # None: anonymous
    offset: int  # file offset when path is set
    dump: ProgramHeader | None  # bytes saved in the core for [start, start+dump.filesz)
    grows_down: bool = False


@dataclass(frozen=True, slots=True)
class MapsEntry:
    start: int
    end: int
    perms: str
    name: str


def read_maps(pid: int) -> list[MapsEntry]:
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            lo, hi = parts[0].split("-")
            name = parts[5].strip() if len(parts) > 5 else ""
            out.append(MapsEntry(int(lo, 16), int(hi, 16), parts[1], name))
    return out


def specials_span(core: Core, fresh: list[MapsEntry]) -> tuple[int, int] | None:
    """Where the live [vvar]..[vdso] block will go: same offsets around the core's vDSO."""
    vdso = core.vdso_addr
    specials = [m for m in fresh if m.name in SPECIAL_NAMES]
    fresh_vdso = [m for m in specials if m.name == "[vdso]"]
    if vdso is None or not fresh_vdso:
        return None
    lo = min(m.start for m in specials)
    hi = max(m.end for m in specials)
    delta = vdso - fresh_vdso[0].start
    return lo + delta, hi + delta


def plan_regions(
    core: Core,
    path_map: dict[str, str],
    skip: tuple[int, int] | None,
    main_sp: int | None,
    warn: Warn,
) -> list[Region]:
    """Every mapping to rebuild, sorted by address."""
    regions: list[Region] = []
    missing: dict[str, int] = {}

    def usable(path: str) -> str | None:
        real = path_map.get(path, path)
        return real if os.path.isfile(real) else None

    for seg in core.segments:
        if seg.vaddr == VSYSCALL_ADDR or seg.vaddr >= TASK_SIZE:
            continue
        if skip is not None and skip[0] <= seg.vaddr < skip[1]:
            continue
        f = core.file_at(seg.vaddr)
        grows = main_sp is not None and seg.vaddr <= main_sp < seg.end and f is None
        if f is not None:
            real = usable(f.path)
            if real is None:
                if seg.filesz < seg.memsz:
                    missing.setdefault(f.path, seg.vaddr)
                    continue
                warn(f"{f.path} is missing; its mapping at {seg.vaddr:#x} comes back anonymous")
                regions.append(Region(seg.vaddr, seg.end, seg.prot, None, 0, seg))
                continue
            off = f.offset + (seg.vaddr - f.start)
            regions.append(Region(seg.vaddr, seg.end, seg.prot, real, off, seg))
        else:
            regions.append(Region(seg.vaddr, seg.end, seg.prot, None, 0, seg, grows))
    # NT_FILE ranges with no PT_LOAD (gcore leaves out untouched library text).
    starts = [s.vaddr for s in core.segments]
    for f in core.files:
        for lo, hi in _uncovered(f.start, f.end, core.segments, starts):
            real = usable(f.path)
            if real is None:
                missing.setdefault(f.path, lo)
                continue
            off = f.offset + (lo - f.start)
            info = read_elf(real)
            prot = info.prot_for_offset(off) if info is not None else None
            regions.append(Region(lo, hi, prot if prot is not None else PROT_READ, real, off, None))
    if missing:
        path, addr = next(iter(missing.items()))
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise RestoreError(
            f"{path} (mapped at {addr:#x}) is missing{more} and the core does not hold its "
            "contents; install it at that path or restore on the machine that wrote the core"
        )
    regions.sort(key=lambda r: r.start)
    return regions


def _uncovered(
    lo: int, hi: int, segs: tuple[ProgramHeader, ...], starts: list[int]
) -> list[tuple[int, int]]:
    out = []
    pos = lo
    i = max(bisect.bisect_right(starts, lo) - 1, 0)
    while pos < hi and i < len(segs):
        s = segs[i]
        if s.end <= pos:
            i += 1
            continue
        if s.vaddr >= hi:
            break
        if s.vaddr > pos:
            out.append((pos, s.vaddr))
        pos = max(pos, s.end)
        i += 1
    if pos < hi:
        out.append((pos, hi))
    return out


def free_range(size: int, busy: list[tuple[int, int]], start: int = 0x100000) -> int:
    addr = start
    for lo, hi in sorted(busy):
        if addr + size <= lo:
            return addr
        addr = max(addr, page_align_up(hi))
    return addr


# ---------------------------------------------------------------------------------------
# doing it


def stat_fields(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    fields = text[text.rindex(")") + 2 :].split()

    # fields[0] is field 3 (state); field N is fields[N - 3]
    def fld(n: int) -> int:
        return int(fields[n - 3])

    return {
        "start_stack": fld(28), "arg_start": fld(48), "arg_end": fld(49),
        "env_start": fld(50), "env_end": fld(51),
    }  # fmt: skip


def find_heap(
    core: Core, exe: str, regions: list[Region]
) -> tuple[int, int, tuple[int, int], tuple[int, int]] | None:
    """(start_brk, brk, code range, data range) from the exe's segments and the core's maps.

    The heap is the first anonymous mapping at or after the end of the exe's bss (the kernel
    puts start_brk there, up to 1 GiB further when randomized: arch_randomize_brk).
    """
    core_exe = core.exe_path
    info = read_elf(exe)
    if core_exe is None or info is None or not info.segments:
        return None
    first = [f for f in core.files if f.path == core_exe and f.offset == 0]
    if not first:
        return None
    lowest = min(info.segments, key=lambda s: s.vaddr)
    bias = first[0].start - page_align_down(lowest.vaddr)
    exec_segs = [s for s in info.segments if s.prot & PROT_EXEC]
    data_segs = [s for s in info.segments if s.prot & PROT_WRITE]
    if not exec_segs or not data_segs:
        return None
    code = (bias + exec_segs[0].vaddr, bias + exec_segs[0].vaddr + exec_segs[0].memsz)
    data = (bias + data_segs[-1].vaddr, bias + data_segs[-1].vaddr + data_segs[-1].filesz)
    bss_end = page_align_up(bias + max(s.vaddr + s.memsz for s in info.segments))
    for r in regions:
        if (
            r.path is None
            and bss_end <= r.start < bss_end + (1 << 30) + PAGE_SIZE
            and (r.prot == PROT_READ | PROT_WRITE)
        ):
            return r.start, r.end, code, data
    return None
