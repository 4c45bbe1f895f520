"""Rebuild the memory of a restored process through injected syscalls: the live vDSO and
vvar moved to the core's vDSO address, the saved bytes written, brk moved to the core's
heap (PR_SET_MM_MAP) where the kernel allows it.
"""

from __future__ import annotations

import os
import struct

from restorer.arch import (
    PAGE_SIZE,
    SYS_MREMAP,
    SYS_PRCTL,
)
from restorer.core import Core
from restorer.inject import SyscallInjector
from restorer.launch import (
    RunAs,
    has_cap_sys_resource,
)
from restorer.layout import (
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    PR_SET_MM,
    PR_SET_MM_MAP,
    SPECIAL_NAMES,
    MapsEntry,
    Region,
    find_heap,
    free_range,
    stat_fields,
)
from restorer.tracee import Tracee

ZERO_PAGE = bytes(PAGE_SIZE)


class _FileContents:
    """The bytes a private file mapping shows before anything is written to it: the
    file's from `offset`, and zeros from its end to the end of that page (a page wholly
    past the end is not readable in a mapping: SIGBUS)."""

    def __init__(self, path: str, offset: int) -> None:
        self.offset = offset
        try:
            self.fd: int | None = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self.fd = None  # then every page is written

    def read(self, rel: int, size: int) -> bytes:
        if self.fd is None:
            return b""
        try:
            got = os.pread(self.fd, size, self.offset + rel)
        except OSError:
            return b""
        return got + bytes(-len(got) % PAGE_SIZE)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _page_spans(extents: list[tuple[int, int]], base: int, size: int) -> list[tuple[int, int]]:
    """File extents as offsets from `base`, widened to whole pages (of the mapping: `base`
    need not be page aligned in a core) and merged; within [0, size)."""
    out: list[tuple[int, int]] = []
    for lo, hi in extents:
        a = (lo - base) // PAGE_SIZE * PAGE_SIZE
        b = min(-(-(hi - base) // PAGE_SIZE) * PAGE_SIZE, size)
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _changed_runs(
    data: memoryview, base: int, rel: int, stop: int, same: _FileContents | None
) -> list[tuple[int, int]]:
    """Runs [a, b) within [rel, stop) (offsets from data[base]) of the pages that differ
    from what the fresh mapping holds: zeros, or the file's bytes (`same`).

    Compared with bytes.startswith, which is a memcmp: a memoryview's == compares byte
    by byte (7.7 us for a page of zeros here, against 0.26 us).
    """
    runs: list[tuple[int, int]] = []
    run = -1
    block = b""
    block_at = 0
    for off in range(rel, stop, PAGE_SIZE):
        page = data[base + off : base + min(off + PAGE_SIZE, stop)]
        if same is None:
            unchanged = ZERO_PAGE.startswith(page)
        else:
            if not block_at <= off < block_at + len(block):
                block_at = off  # the file is read 64 pages at a time
                block = same.read(off, min(64 * PAGE_SIZE, stop - off))
            unchanged = block.startswith(page, off - block_at)
        if not unchanged and run < 0:
            run = off
        elif unchanged and run >= 0:
            runs.append((run, off))
            run = -1
    if run >= 0:
        runs.append((run, stop))
    return runs


class MappingBuilder:
    """The memory part of a restore (a mixin of the restore's orchestration)."""

    core: Core
    set_brk: bool
    run_as: RunAs | None

    def _warn(self, msg: str) -> None:
        raise NotImplementedError

    def _place_specials(
        self,
        tracee: Tracee,
        sys: SyscallInjector,
        fresh: list[MapsEntry],
        span: tuple[int, int] | None,
        busy: list[tuple[int, int]],
    ) -> None:
        specials = [m for m in fresh if m.name in SPECIAL_NAMES]
        if span is None:
            if self.core.vdso_addr is not None:
                self._warn("this kernel has no vDSO to give the restored process")
            return
        self._compare_vdso(tracee, specials)
        lo = min(m.start for m in specials)
        delta = span[0] - lo
        if delta == 0:
            return
        size = span[1] - span[0]
        moves = [delta]
        if span[0] < lo + size and lo < span[1]:  # overlapping: go through a free spot
            tmp = free_range(size, busy)
            moves = [tmp - lo, delta]
        cur = 0
        for d in moves:
            for m in specials:
                size_m = m.end - m.start
                sys.check(
                    SYS_MREMAP, m.start + cur, size_m, size_m, MREMAP_MAYMOVE | MREMAP_FIXED,
                    m.start + d, what=f"mremap of {m.name}",
                )  # fmt: skip
            cur = d

    def _compare_vdso(self, tracee: Tracee, specials: list[MapsEntry]) -> None:
        """Warn when the core's vDSO code is not this kernel's (a core from another kernel)."""
        vdso = [m for m in specials if m.name == "[vdso]"]
        core_vdso = self.core.vdso_addr
        if not vdso or core_vdso is None:
            return
        size = vdso[0].end - vdso[0].start
        saved = self.core.read(core_vdso, size)
        if saved is None or saved == tracee.read(vdso[0].start, size):
            return
        self._warn(
            "the core's vDSO differs from this kernel's (a core from another kernel?): the "
            "live one is used, so time functions work, but a thread stopped inside the vDSO "
            "would resume in different code"
        )

    def _write_memory(self, tracee: Tracee, regions: list[Region]) -> int:
        """Write the core's bytes of every region; the number of bytes written.

        Only what differs from what the fresh mapping already holds is written: anonymous
        memory starts zeroed, so its holes in the core file (found with SEEK_DATA, never
        read) and zero pages are skipped; a file mapping already shows its file, so pages
        equal to the file's are skipped too (they stay the file's page-cache pages instead
        of private copies: a later change of the file shows through them, as it did in
        the dumped process for the pages it had not written).
        """
        data = self.core.data
        written = 0
        for r in regions:
            seg = r.dump
            if seg is None or seg.filesz == 0:
                continue
            same = _FileContents(r.path, r.offset) if r.path is not None else None
            # A hole reads as zeros: what fresh anonymous memory holds, not a file.
            extents = (
                self.core.data_extents(seg.offset, seg.filesz)
                if same is None
                else [(seg.offset, seg.offset + seg.filesz)]
            )
            try:
                for rel, stop in _page_spans(extents, seg.offset, seg.filesz):
                    for a, b in _changed_runs(data, seg.offset, rel, stop, same):
                        tracee.write(r.start + a, data[seg.offset + a : seg.offset + b])
                        written += b - a
            finally:
                if same is not None:
                    same.close()
        return written

    def _set_brk(
        self, tracee: Tracee, sys: SyscallInjector, exe: str, regions: list[Region], scratch: int
    ) -> tuple[bool, int | None]:
        """Move the kernel's brk to the core's heap with prctl(PR_SET_MM_MAP).

        kernel/sys.c checks CAP_SYS_RESOURCE for the single-field PR_SET_MM_START_BRK/_BRK
        options, but PR_SET_MM_MAP (all fields at once, made for checkpoint/restore) is
        handled before that check on kernels with CONFIG_CHECKPOINT_RESTORE, as here: root
        without CAP_SYS_RESOURCE can still use it. Without that config it fails with EPERM;
        then the heap keeps growing in a new area (see start_stopped).
        """
        heap = find_heap(self.core, exe, regions)
        if heap is None:  # the program never used brk: nothing to continue
            return False, None
        if not self.set_brk:
            return False, heap[1]
        start_brk, brk, code, data_ = heap
        stat = stat_fields(tracee.pid)
        values = [
            code[0], code[1], data_[0], data_[1], start_brk, brk,
            stat["start_stack"], stat["arg_start"], stat["arg_end"], stat["env_start"],
            stat["env_end"],
        ]  # fmt: skip
        blob = struct.pack("<11QQII", *values, 0, 0, 0xFFFFFFFF)
        tracee.write(scratch, blob)
        ret = sys(SYS_PRCTL, PR_SET_MM, PR_SET_MM_MAP, scratch, len(blob), 0)
        if ret == 0:
            return True, brk
        why = os.strerror(-ret)
        # The prctl runs in the process: with the core's uid it has no capabilities at all.
        if ret == -1 and (self.run_as is not None or not has_cap_sys_resource()):  # EPERM
            why = "EPERM: no CONFIG_CHECKPOINT_RESTORE and no CAP_SYS_RESOURCE"
        self._warn(
            f"brk not restored (prctl PR_SET_MM: {why}); the heap keeps its contents and "
            "grows in a new area (glibc handles this)"
        )
        return False, brk
