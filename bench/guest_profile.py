"""guest_profile: where a guest syscall's cost goes under TCG, block by block.

`syscap bench profile` boots the guest benchmark's guest (bench/guest_boot.py)
once with the tcgprof plugin (bench/native/tcgprof.c) and, for each key, starts
its tracer, takes a snapshot, runs getppid N times on the last vCPU, waits two
seconds (the recorder drains), takes a second snapshot and stops the tracer.
Per getppid it reports the blocks of translated code that ran, their guest
instructions and their memory accesses, by part (the kernel, syscap.ko or the
floor module, the BPF programs, the tracer's own process, other user code)
and by function.

These are counts, not times: whatever the host does meanwhile, two runs of the
same code differ only by the guest's own background work (timer ticks, the
recorder's wake-ups), about a block a getppid at most, so a change's effect
shows without rounds or medians.
Under TCG a block ends at every branch, and what it costs is about its
instructions plus its memory accesses (each a software TLB lookup), plus a
lookup after a return or an indirect jump; the guest benchmark's times are
still the evidence, the profile says where they come from.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import guest_boot
from bench.tracers import HERE, ROOT

sys.path.insert(0, str(ROOT / "kmod" / "lab"))
import images
from images import LabError, log, run

PROFILE_KEYS = ("baseline", "kmodfloor", "kmod", "kmodheld", "bpf", "bpfheld", "kmodcount",
                "bpfcount")
NAMES = {"baseline": "no tracing", "kmodfloor": "module floor: empty probes",
         "kmod": "syscap record, kmod", "kmodheld": "kmod record, consumer stopped",
         "bpf": "syscap record, eBPF", "bpfheld": "eBPF record, consumer stopped",
         "kmodcount": "syscap-agent, kmod count mode",
         "bpfcount": "syscap-agent, eBPF count mode"}  # fmt: skip
CALLS = (1_000_000, 200_000)  # full, quick
MARK = 0x13370000  # bench/native/Makefile's TCGPROF_MARK
KERNEL_SPACE = 0xFFFF800000000000
PARTS = ("kernel", "module", "bpf", "tracer", "user")
# the tracers' own binaries, by the name their mappings show
TRACER_BINARIES = ("guest_record", "syscap-agent")


class ProfileError(Exception):
    """A snapshot or console the profile cannot read; the message says which."""


@dataclasses.dataclass(frozen=True, slots=True)
class Block:
    """One block of translated code: guest instructions, runs, memory accesses."""

    insns: int
    execs: int
    mem: int


def read_snapshot(text: str, name: str = "snapshot") -> dict[int, Block]:
    """A tcgprof snapshot ("vaddr insns execs mem" lines), translations of one
    address added together."""
    out: dict[int, Block] = {}
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        try:
            if len(parts) != 4:
                raise ValueError
            vaddr = int(parts[0], 16)
            insns, execs, mem = (int(p) for p in parts[1:])
            if min(vaddr, insns, execs, mem) < 0:
                raise ValueError
        except ValueError:
            raise ProfileError(f"{name} line {n}: want 'vaddr insns execs mem', "
                               f"got {line[:80]!r}") from None
        old = out.get(vaddr)
        out[vaddr] = (Block(insns, execs, mem) if old is None else
                      Block(insns, old.execs + execs, old.mem + mem))
    return out


def ran_between(before: dict[int, Block], after: dict[int, Block]) -> dict[int, Block]:
    """What ran between two snapshots of one boot: each block's runs and
    accesses since the first (counters only grow)."""
    out = {}
    for vaddr, b in after.items():
        a = before.get(vaddr)
        execs, mem = (b.execs - a.execs, b.mem - a.mem) if a else (b.execs, b.mem)
        if execs > 0:
            out[vaddr] = Block(b.insns, execs, max(mem, 0))
    return out


class Symbols:
    """Function start addresses and names; lookup gives the one an address is in."""

    def __init__(self, pairs: Sequence[tuple[int, str]]) -> None:
        pairs = sorted(pairs)
        self._addrs = [a for a, _ in pairs]
        self._names = [n for _, n in pairs]

    def lookup(self, addr: int) -> str | None:
        i = bisect.bisect_right(self._addrs, addr) - 1
        return self._names[i] if i >= 0 else None

    def __len__(self) -> int:
        return len(self._addrs)


def kallsyms(text: str) -> list[tuple[int, str]]:
    """Text symbols of /proc/kallsyms lines ("addr type name [module]")."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] in "tTwW" and len(parts[1]) == 1:
            try:
                addr = int(parts[0], 16)
            except ValueError:
                continue
            out.append((addr, " ".join(parts[2:4])))
    return out


def elf_symbols(path: Path) -> tuple[list[tuple[int, str]], bool]:
    """A binary's function symbols (nm) and whether it is position independent."""
    with path.open("rb") as f:
        head = f.read(18)
    if head[:4] != b"\x7fELF":
        raise ProfileError(f"{path}: not an ELF file")
    pie = int.from_bytes(head[16:18], "little") == 3  # ET_DYN
    text = run(["nm", "--defined-only", str(path)])
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTwW":
            out.append((int(parts[0], 16), parts[2]))
    return out, pie


@dataclasses.dataclass(frozen=True, slots=True)
class Mapping:
    """Where a tracer's binary sits in its process (first mapping, offset 0)."""

    binary: str
    start: int
    end: int  # of the binary's last mapping


def tracer_mapping(maps: str) -> Mapping | None:
    """The tracer's own binary in its /proc/PID/maps text, if it is one of ours."""
    found: dict[str, list[int]] = {}
    for line in maps.splitlines():
        parts = line.split()
        if len(parts) < 6:
            continue
        name = Path(parts[5]).name
        if name in TRACER_BINARIES:
            lo, _, hi = parts[0].partition("-")
            try:
                found.setdefault(name, []).extend((int(lo, 16), int(hi, 16)))
            except ValueError:
                continue
    for name, addrs in found.items():
        return Mapping(name, min(addrs), max(addrs))
    return None


def _section(text: str, tag: str) -> str:
    m = re.search(rf"SYSCAP-PROF {tag} BEGIN\n(.*?)SYSCAP-PROF {tag} END", text, re.S)
    return m.group(1) if m else ""


@dataclasses.dataclass(frozen=True, slots=True)
class KeyRun:
    """One key's part of the console: its symbols and the tracer's mappings."""

    key: str
    syms: str  # module and BPF symbols while its tracer ran
    maps: str  # the tracer's /proc/PID/maps, or ""
    ns_per_call: float | None  # the loop's own timing (inflated by the plugin)


def key_runs(console: str) -> tuple[str, list[KeyRun], dict[str, str]]:
    """The boot's kernel symbols, the keys that ran (in snapshot order) and
    the keys that did not, with why."""
    text = console.replace("\r", "")
    skipped = dict(re.findall(r"SYSCAP-PROF SKIP (\S+) (.*)", text))
    runs = []
    for m in re.finditer(r"SYSCAP-PROF KEY (\S+)\n(.*?)SYSCAP-PROF RAN \1 (\S+)", text, re.S):
        key, body, ns = m.group(1), m.group(2), m.group(3)
        try:
            per = float(ns)
        except ValueError:
            per = None
        runs.append(KeyRun(key, _section(body, "SYMS"), _section(body, "MAPS"), per))
    return _section(text, "KALLSYMS"), runs, skipped


def part_of(vaddr: int, name: str | None, tracer: Mapping | None) -> str:
    if vaddr >= KERNEL_SPACE:
        if name and name.endswith("[bpf]"):
            return "bpf"
        if name and (name.endswith("[syscap]") or name.endswith("[floor_kmod]")):
            return "module"
        return "kernel"
    if tracer and tracer.start <= vaddr < tracer.end:
        return "tracer"
    return "user"


def summarise(ran: dict[int, Block], calls: int, ksyms: Symbols,
              tracer: Mapping | None = None,
              tracer_syms: tuple[Symbols, bool] | None = None,
              top: int = 12) -> dict[str, Any]:
    """Per call: blocks, instructions and accesses in all, by part and by
    function (the top ones by instructions)."""
    parts = {p: [0, 0, 0] for p in PARTS}
    funcs: dict[str, list[int]] = {}
    for vaddr, b in ran.items():
        if vaddr >= KERNEL_SPACE:
            name = ksyms.lookup(vaddr)
        elif tracer and tracer_syms and tracer.start <= vaddr < tracer.end:
            syms, pie = tracer_syms
            fn = syms.lookup(vaddr - tracer.start if pie else vaddr)
            name = f"{tracer.binary}:{fn}" if fn else None
        else:
            name = None
        part = part_of(vaddr, name, tracer)
        key = name or f"({part})"
        for acc in (parts[part], funcs.setdefault(key, [0, 0, 0])):
            acc[0] += b.execs
            acc[1] += b.execs * b.insns
            acc[2] += b.mem

    def per(v: list[int]) -> dict[str, float]:
        return {"blocks": round(v[0] / calls, 2), "insns": round(v[1] / calls, 2),
                "mem": round(v[2] / calls, 2)}

    total = [sum(v[i] for v in parts.values()) for i in range(3)]
    ranked = sorted(funcs.items(), key=lambda kv: -kv[1][1])[:top]
    return {"per_call": per(total),
            "parts": {p: per(v) for p, v in parts.items() if v[0]},
            "top": [{"name": n, **per(v)} for n, v in ranked]}


def profile_init(keys: list[str], calls: int) -> str:
    """/bench/init of a profile boot: per key, its tracer, a snapshot, the
    loop, a pause, a snapshot."""
    lines = guest_boot.init_prologue(keys)
    lines += ['echo "SYSCAP-PROF KALLSYMS BEGIN"; grep " [tTwW] " /proc/kallsyms; '
              'echo "SYSCAP-PROF KALLSYMS END"']
    for k in keys:
        start = "true" if k == "baseline" else f"/bench/guest_tracer.sh start {k}"
        stop = "true" if k == "baseline" else f"/bench/guest_tracer.sh stop {k} >/dev/null"
        lines += [
            f"if out=$({start} 2>&1); then",
            f"  echo 'SYSCAP-PROF KEY {k}'",
            "  sleep 1",
            '  echo "SYSCAP-PROF SYMS BEGIN"; grep "\\[" /proc/kallsyms | grep " [tTwW] "; '
            'echo "SYSCAP-PROF SYMS END"',
            f"  if [ -f /tmp/bench-tracer-{k}.pid ]; then",
            '    echo "SYSCAP-PROF MAPS BEGIN"',
            f'    cat "/proc/$(cat /tmp/bench-tracer-{k}.pid)/maps"',
            '    echo "SYSCAP-PROF MAPS END"',
            "  fi",
            "  taskset -c 0 /bench/tcgprof_mark",
            f"  ns=$(taskset -c $last /bench/getppid_loop {calls})",
            "  sleep 2",
            "  taskset -c 0 /bench/tcgprof_mark",
            f'  echo "SYSCAP-PROF RAN {k} $ns"',
            f"  {stop}",
            "else",
            f'  echo "SYSCAP-PROF SKIP {k} $(echo "$out" | tail -n 1)"',
            "fi",
        ]
    return "\n".join([*lines, *guest_boot.INIT_EPILOGUE]) + "\n"


def build_plugin() -> tuple[Path, Path]:
    """The plugin and the guest's marker (bench/native/Makefile)."""
    out = HERE / "native" / "build"
    run(["make", "-s", "-C", str(HERE / "native"), "build/tcgprof.so", "build/tcgprof_mark"],
        timeout=300)
    return out / "tcgprof.so", out / "tcgprof_mark"


def profile_guest(quick: bool, keys: Sequence[str] = PROFILE_KEYS) -> dict[str, Any]:
    """One profile boot: per key that ran, summarise()'s figures per getppid."""
    calls = CALLS[1 if quick else 0]
    with images.lab_lock():
        plugin, mark = build_plugin()
        staged = guest_boot.stage_guest(quick, keys, lambda ks: profile_init(ks, calls),
                                        {"tcgprof_mark": mark})
        bdir = images.build_dir(staged.tree)
        snaps = bdir / "tcgprof-snapshots"
        if snaps.exists():
            for old in snaps.iterdir():
                old.unlink()
        snaps.mkdir(parents=True, exist_ok=True)
        qemu = guest_boot.bench_qemu(staged.tree, staged.root_img, staged.disk)
        qemu[1:1] = ["-plugin", f"{plugin},out={snaps},mark={MARK:#x}"]
        console = bdir / "profile-console.log"
        log(f"booting {staged.tree.release} with the TCG profiler: {', '.join(staged.keys)}")
        text = images.boot_guest(qemu, console, 300 + 120 * len(staged.keys),
                                 show="SYSCAP-PROF RAN")
    return from_boot(text, snaps, calls, staged)


def from_boot(text: str, snaps: Path, calls: int, staged: guest_boot.Staged) -> dict[str, Any]:
    ktext, runs, skipped = key_runs(text)
    base = kallsyms(ktext)
    if not base:
        raise ProfileError("the guest printed no kernel symbols (see its console)")
    tree, why = staged.tree, staged.why
    binaries = {n: staged.built[n] for n in TRACER_BINARIES if n in staged.built}
    elf: dict[str, tuple[Symbols, bool]] = {}
    rows = []
    for i, kr in enumerate(runs):
        try:
            before = read_snapshot((snaps / f"snap.{2 * i}").read_text(), f"snap.{2 * i}")
            after = read_snapshot((snaps / f"snap.{2 * i + 1}").read_text(),
                                  f"snap.{2 * i + 1}")
        except FileNotFoundError as e:
            raise ProfileError(f"no snapshot {e.filename}: did the plugin load?") from None
        tracer = tracer_mapping(kr.maps)
        tsyms = None
        if tracer and tracer.binary in binaries and binaries[tracer.binary].exists():
            if tracer.binary not in elf:
                pairs, pie = elf_symbols(binaries[tracer.binary])
                elf[tracer.binary] = (Symbols(pairs), pie)
            tsyms = elf[tracer.binary]
        ksyms = Symbols(base + kallsyms(kr.syms))
        row = summarise(ran_between(before, after), calls, ksyms, tracer, tsyms)
        rows.append({"key": kr.key, "name": NAMES.get(kr.key, kr.key),
                     "loop_ns_with_plugin": kr.ns_per_call, **row})
    not_run = {**why, **skipped}
    return {"method": (f"one QEMU TCG guest ({tree.release}, 2 vCPUs on one host thread), the "
                       f"tcgprof plugin counting every translated block; per key: its tracer, "
                       f"a snapshot, getppid x {calls} on the last vCPU, 2 s, a snapshot; "
                       f"figures per getppid, the whole guest"),
            "calls": calls, "rows": rows, "not_run": not_run}


def table(res: dict[str, Any]) -> str:
    """Markdown: per key, the whole guest's and each part's blocks / instructions
    / memory accesses per getppid, then each key's top functions."""
    lines = [f"Per getppid ({res['method']}): blocks / instructions / memory accesses.", "",
             "| configuration | all | " + " | ".join(PARTS) + " |",
             "|---|" + "---:|" * (len(PARTS) + 1)]

    def cell(v: dict[str, float] | None) -> str:
        return "" if not v else f"{v['blocks']:.1f} / {v['insns']:.0f} / {v['mem']:.0f}"

    for r in res["rows"]:
        lines.append(f"| {r['name']} | {cell(r['per_call'])} | "
                     + " | ".join(cell(r["parts"].get(p)) for p in PARTS) + " |")
    for key, why in res.get("not_run", {}).items():
        lines.append(f"| {NAMES.get(key, key)} | not run: {why} |" + " |" * len(PARTS))
    for r in res["rows"]:
        if r["key"] == "baseline":
            continue
        lines += ["", f"{r['name']}: top functions, per getppid", "",
                  "| function | blocks | instructions | accesses |", "|---|---:|---:|---:|"]
        lines += [f"| {f['name']} | {f['blocks']:.2f} | {f['insns']:.1f} | {f['mem']:.1f} |"
                  for f in r["top"]]
    return "\n".join(lines)


def main(quick: bool, results: Path) -> int:
    t0 = time.monotonic()
    try:
        res = profile_guest(quick)
    except (LabError, ProfileError, OSError) as e:
        print(f"syscap bench profile: {str(e).strip().splitlines()[0]}", file=sys.stderr)
        return 1
    res["seconds"] = round(time.monotonic() - t0, 1)
    stem = "guest_profile.quick" if quick else "guest_profile"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{stem}.json").write_text(json.dumps(res, indent=1) + "\n")
    md = table(res)
    (results / f"{stem}.md").write_text(md + "\n")
    print(md)
    print(f"\n  ({res['seconds']:.0f} s; {results / stem}.json, {results / stem}.md)")
    return 0
