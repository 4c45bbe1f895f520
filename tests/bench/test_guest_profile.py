"""The guest profile (bench/guest_profile.py): its reading of snapshots and
consoles, and the tcgprof plugin itself in a real QEMU with a real kernel."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from bench import guest_profile as gp

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "kmod" / "lab"))
import images

NATIVE = Path(__file__).resolve().parents[2] / "bench" / "native"


def test_a_snapshot_adds_up_translations_of_one_address() -> None:
    snap = gp.read_snapshot("ffffffff81000010 5 10 20\n400000 3 7 1\nffffffff81000010 5 2 4\n")
    assert snap == {0xFFFFFFFF81000010: gp.Block(5, 12, 24), 0x400000: gp.Block(3, 7, 1)}


@pytest.mark.parametrize("line", ["ffff 1 2", "zz 1 2 3", "10 1 2 3 4", "10 -1 2 3", "10 a 2 3"])
def test_a_bad_snapshot_line_is_one_error_naming_its_line(line: str) -> None:
    with pytest.raises(gp.ProfileError, match=r"snap\.3 line 2: want 'vaddr insns execs mem'"):
        gp.read_snapshot(f"10 1 1 1\n{line}\n", "snap.3")


def test_random_bytes_give_a_profile_error_or_a_snapshot_never_a_crash() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        blob = bytes(rng.choice(b"0123456789abcdefx -\n\t") for _ in range(rng.randrange(60)))
        try:
            gp.read_snapshot(blob.decode())
        except gp.ProfileError:
            pass
        gp.key_runs(blob.decode())


def test_what_ran_between_two_snapshots_is_their_difference() -> None:
    before = {1: gp.Block(4, 10, 30), 2: gp.Block(2, 5, 0)}
    after = {1: gp.Block(4, 16, 42), 2: gp.Block(2, 5, 0), 3: gp.Block(7, 1, 3)}
    assert gp.ran_between(before, after) == {1: gp.Block(4, 6, 12), 3: gp.Block(7, 1, 3)}


def test_symbols_name_the_function_an_address_falls_in() -> None:
    syms = gp.Symbols(gp.kallsyms("ffffffff81000000 T _stext\n"
                                  "ffffffff81000100 t probe_sys_exit\t[syscap]\n"
                                  "ffffffff81000200 d some_data\n"
                                  "ffffffffa0000000 t bpf_prog_1234_sys_exit\t[bpf]\n"))
    assert len(syms) == 3
    assert syms.lookup(0xFFFFFFFF81000050) == "_stext"
    assert syms.lookup(0xFFFFFFFF81000180) == "probe_sys_exit [syscap]"
    assert syms.lookup(0xFFFFFFFF80000000) is None
    assert gp.part_of(0xFFFFFFFF81000180, syms.lookup(0xFFFFFFFF81000180), None) == "module"
    assert gp.part_of(0xFFFFFFFFA0000010, syms.lookup(0xFFFFFFFFA0000010), None) == "bpf"
    assert gp.part_of(0xFFFFFFFF81000050, "_stext", None) == "kernel"


def test_the_tracer_is_found_by_its_binary_in_its_mappings() -> None:
    maps = ("55d0c0000000-55d0c0004000 r--p 00000000 fd:01 12 /bench/guest_record\n"
            "55d0c0004000-55d0c0010000 r-xp 00004000 fd:01 12 /bench/guest_record\n"
            "7f0000000000-7f0000020000 r-xp 00000000 fd:01 99 /usr/lib/libc.so.6\n")
    m = gp.tracer_mapping(maps)
    assert m == gp.Mapping("guest_record", 0x55D0C0000000, 0x55D0C0010000)
    assert gp.part_of(0x55D0C0004010, None, m) == "tracer"
    assert gp.part_of(0x7F0000000010, None, m) == "user"
    assert gp.tracer_mapping("7f0000000000-7f0000020000 r-xp 0 0:0 1 /usr/lib/libc.so.6\n") is None


def test_a_summary_is_per_call_by_part_and_by_function() -> None:
    ksyms = gp.Symbols([(0xFFFFFFFF81000000, "entry"), (0xFFFFFFFF82000000, "probe [syscap]")])
    tracer = gp.Mapping("guest_record", 0x1000, 0x9000)
    tsyms = (gp.Symbols([(0x100, "drain_all")]), True)
    ran = {0xFFFFFFFF81000004: gp.Block(10, 200, 400),  # 2 a call, 20 instructions
           0xFFFFFFFF82000000: gp.Block(5, 100, 300),
           0x1100: gp.Block(8, 100, 100),  # drain_all, in the PIE tracer at 0x1000
           0x400000: gp.Block(3, 100, 0)}  # fmt: skip
    s = gp.summarise(ran, 100, ksyms, tracer, tsyms)
    assert s["per_call"] == {"blocks": 5.0, "insns": 36.0, "mem": 8.0}
    assert s["parts"] == {"kernel": {"blocks": 2.0, "insns": 20.0, "mem": 4.0},
                          "module": {"blocks": 1.0, "insns": 5.0, "mem": 3.0},
                          "tracer": {"blocks": 1.0, "insns": 8.0, "mem": 1.0},
                          "user": {"blocks": 1.0, "insns": 3.0, "mem": 0.0}}  # fmt: skip
    assert [f["name"] for f in s["top"]] == ["entry", "guest_record:drain_all",
                                             "probe [syscap]", "(user)"]


def test_the_console_gives_the_keys_in_snapshot_order_and_the_skipped_ones() -> None:
    console = ("SYSCAP-PROF KALLSYMS BEGIN\nffffffff81000000 T _stext\nSYSCAP-PROF KALLSYMS END\n"
               "SYSCAP-PROF KEY baseline\r\nSYSCAP-PROF RAN baseline 431.5\n"
               "SYSCAP-PROF SKIP kmod insmod failed: no such device\n"
               "SYSCAP-PROF KEY bpf\nSYSCAP-PROF SYMS BEGIN\n"
               "ffffffffa0000000 t bpf_prog_1_x\t[bpf]\nSYSCAP-PROF SYMS END\n"
               "SYSCAP-PROF MAPS BEGIN\n1000-2000 r-xp 0 0:0 1 /bench/guest_record\n"
               "SYSCAP-PROF MAPS END\nSYSCAP-PROF RAN bpf 1200.0\n")
    ktext, runs, skipped = gp.key_runs(console)
    assert gp.kallsyms(ktext) == [(0xFFFFFFFF81000000, "_stext")]
    assert [(r.key, r.ns_per_call) for r in runs] == [("baseline", 431.5), ("bpf", 1200.0)]
    assert "bpf_prog_1_x" in runs[1].syms and "guest_record" in runs[1].maps
    assert skipped == {"kmod": "insmod failed: no such device"}


def test_the_profile_init_takes_a_snapshot_on_each_side_of_each_loop() -> None:
    text = gp.profile_init(["baseline", "kmod"], 1000)
    assert "insmod /bench/syscap.ko" in text
    body = text[text.index("SYSCAP-PROF KEY kmod"):]
    marks = [i for i, ln in enumerate(body.splitlines()) if "tcgprof_mark" in ln]
    loop = next(i for i, ln in enumerate(body.splitlines()) if "getppid_loop 1000" in ln)
    assert len(marks) == 2 and marks[0] < loop < marks[1]
    assert "/bench/guest_tracer.sh start kmod" in text
    assert "/bench/guest_tracer.sh stop kmod" in text
    assert text.rstrip().endswith("echo o > /proc/sysrq-trigger")


def test_the_table_names_every_row_and_why_one_did_not_run() -> None:
    row = {"key": "kmod", "name": "syscap record, kmod", "per_call": {
        "blocks": 5.0, "insns": 36.0, "mem": 8.0}, "parts": {"module": {
            "blocks": 1.0, "insns": 5.0, "mem": 3.0}},
        "top": [{"name": "probe [syscap]", "blocks": 1.0, "insns": 5.0, "mem": 3.0}]}
    md = gp.table({"method": "m", "rows": [row], "not_run": {"bpf": "no BTF"}})
    assert "| syscap record, kmod | 5.0 / 36 / 8 |  | 1.0 / 5 / 3 |" in md
    assert "| syscap record, eBPF | not run: no BTF |" in md
    assert "| probe [syscap] | 1.00 | 5.0 | 3.0 |" in md


def test_the_plugin_counts_a_guest_loop_exactly(tmp_path: Path) -> None:
    """A real kernel under QEMU with the plugin, the marker as init: between
    its two snapshots, its loop's block ran exactly N times, and so did the
    kernel's syscall entry."""
    subprocess.run(["make", "-s", "-C", str(NATIVE), "build/tcgprof.so", "build/tcgprof_mark"],
                   check=True)  # fmt: skip
    with images.lab_lock():
        tree = images.fetch(images.KERNELS["6.1-amd64"])
    initrd = tmp_path / "initrd.cpio"
    images.write_initramfs(initrd, {"init": ((NATIVE / "build" / "tcgprof_mark").read_bytes(),
                                             0o755)})
    out = tmp_path / "snaps"
    out.mkdir()
    n = 1234
    qemu = ["qemu-system-x86_64", "-plugin",
            f"{NATIVE / 'build' / 'tcgprof.so'},out={out},mark={gp.MARK:#x}",
            "-accel", "tcg,thread=single", "-cpu", "max", "-m", "512", "-smp", "1",
            "-nographic", "-no-reboot", "-kernel", str(tree.image), "-initrd", str(initrd),
            "-append", f"console=ttyS0 panic=-1 loglevel=3 -- {n}"]  # fmt: skip
    subprocess.run(qemu, stdin=subprocess.DEVNULL, capture_output=True, timeout=300, check=False)
    before = gp.read_snapshot((out / "snap.0").read_text())
    after = gp.read_snapshot((out / "snap.1").read_text())
    assert not (out / "snap.2").exists()
    ran = gp.ran_between(before, after)
    user = [v for v, b in ran.items() if v < gp.KERNEL_SPACE and b.execs == n]
    kernel = [v for v, b in ran.items() if v >= gp.KERNEL_SPACE and b.execs == n]
    assert user and kernel
    assert gp.MARK not in ran  # the marker's block is the plugin's, not counted
    assert all(b.execs < 10 * n for b in ran.values())  # nothing else ran much


def test_a_bad_plugin_argument_is_refused_with_one_line(tmp_path: Path) -> None:
    subprocess.run(["make", "-s", "-C", str(NATIVE), "build/tcgprof.so"], check=True)
    p = subprocess.run(["qemu-system-x86_64", "-plugin",
                        f"{NATIVE / 'build' / 'tcgprof.so'},mark=0x1000,colour=red",
                        "-accel", "tcg", "-nographic", "-no-reboot", "-kernel", "/nonexistent"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                       check=False)  # fmt: skip
    assert p.returncode != 0
    assert "tcgprof: unknown argument colour=red (out=DIR, mark=ADDRESS)" in p.stderr
