"""Core parsing on real kernel and gcore cores of the same program."""

from __future__ import annotations

from pathlib import Path

from restore_helpers import (
    Programs,
    build_libgreet,
    build_uses_lib,
    gcore_core,
    kernel_core,
    restore_cli,
)

from restorer.arch import ARM64, FPREGS_SIZE
from restorer.core import Core
from restorer.elf_file import read_elf


def libc_offsets(core: Core) -> tuple[str, list[int]]:
    libc = next(p for p in core.mapped_paths() if "/libc.so" in p)
    return libc, [f.offset for f in core.files if f.path == libc]


def test_nt_file_offsets_are_bytes_for_kernel_pages_and_gcore_bytes_alike(
    programs: Programs, tmp_path: Path
) -> None:
    (tmp_path / "k").mkdir()
    (tmp_path / "g").mkdir()
    kcore, _ = kernel_core(programs["resume"], tmp_path / "k", "kernel")
    gcore, _ = gcore_core(programs["resume"], tmp_path / "g", "stop")
    with Core(kcore) as k, Core(gcore) as g:
        libc, k_offsets = libc_offsets(k)
        _, g_offsets = libc_offsets(g)

        assert k_offsets == g_offsets
        assert max(k_offsets) > 0x1000  # not page numbers
        info = read_elf(libc)
        assert info is not None
        assert all(info.prot_for_offset(o) is not None for o in k_offsets)
        assert k.exe_path == g.exe_path == str(programs["resume"])


def test_thread_state_has_tls_base_fp_and_xstate(programs: Programs, tmp_path: Path) -> None:
    core, _ = kernel_core(programs["threads"], tmp_path, "kernel")
    with Core(core) as c:
        assert len(c.threads) == 3
        for t in c.threads:
            assert t.regs.tls != 0  # each thread's TLS block
            assert t.fpregs is not None and len(t.fpregs) == FPREGS_SIZE
            if not ARM64:  # x86-64's XSAVE area follows the FXSAVE one
                assert t.xstate is not None and len(t.xstate) > 512
        assert len({t.regs.tls for t in c.threads}) == 3
        assert c.siginfo is not None and c.siginfo.signo == 3  # SIGQUIT
        elf = read_elf(str(programs["threads"]))
        assert elf is not None
        assert c.build_id_in_memory(str(programs["threads"])) == elf.build_id


def test_changed_library_gives_a_warning_and_still_restores(tmp_path: Path) -> None:
    libdir = tmp_path / "lib"
    build_libgreet(libdir, "1111")
    exe = build_uses_lib(libdir, tmp_path)
    core, _ = kernel_core(exe, tmp_path)
    build_libgreet(libdir, "2222")

    result = restore_cli(core, "--run")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello from libgreet\n"
    warning = next(x for x in result.stderr.splitlines() if "warning" in x)
    assert "libgreet.so differs from the file the core was made with" in warning
    assert "2222" in warning and "1111" in warning


def test_a_vdso_from_another_kernel_is_replaced_with_a_warning(
    programs: Programs, tmp_path: Path
) -> None:
    core, _ = kernel_core(programs["resume"], tmp_path, "kernel")
    with Core(core) as c:
        assert c.vdso_addr is not None
        seg = c.segment_at(c.vdso_addr)
        assert seg is not None and seg.filesz > 0x200
        where = seg.offset + 0x100  # inside the vDSO text, away from the ELF header
    data = bytearray(core.read_bytes())
    data[where] ^= 0xFF
    other = tmp_path / "other-kernel.core"
    other.write_bytes(bytes(data))

    result = restore_cli(other, "--run")

    assert "the core's vDSO differs from this kernel's" in result.stderr
    assert "monotonic advanced: yes" in result.stdout  # the live vDSO does the work
    assert result.returncode == 3
    assert "differs" not in restore_cli(core, "--run").stderr
