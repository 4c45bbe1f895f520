"""Damaged and hostile trace files: every reader gives a report or one error line.

A real trace is recorded on the live kernel, then mutated in a fixed, seeded
set of ways (bit flips, header/block/record fields set to extremes, names
table garbage, truncation, inserted and reordered blocks). Header and block
CRCs are fixed up after a mutation unless the mutation is about the CRC, so
the damage reaches the parser instead of stopping at the checksum.

For each mutation `syscap report`, `report --json` and `export --format
perfetto` run in this process through the CLI's own entry point (the same
code as the command) and the replay source behind `top --replay` plays the
whole file; a sample runs as real `syscap` processes to catch signals and
output encoding. Each must exit 0, or non-zero with exactly one stderr line.
"""

from __future__ import annotations

import contextlib
import io
import os
import pty
import random
import struct
import subprocess
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from capture_lib.cli import main as syscap_main
from capture_lib.errors import SyscapError
from capture_lib.replay import ReplaySource
from tests.capture_lib.conftest import SYSCAP, syscap
from tests.conftest import ROOT

pytestmark = pytest.mark.usefixtures("bpf_ready")

HEADER = struct.Struct("<8s4I16s64s16s16sQQ4I")  # struct syscap_trace_header
BLOCK = struct.Struct("<4IQ2I")  # struct syscap_block_header
EVENT_SIZE = 48  # struct syscap_rec: what syscap record writes (no --args)
BLOCK_MAGIC = 0x4B4C4253
U32 = (0, 1, 7, 8, 47, 48, 95, 96, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 27, 256 * 1024,
       256 * 1024 + 1)
U64 = (0, 1, (1 << 63) - 1, 1 << 63, (1 << 64) - 1)
# header field -> (offset, size)
HEADER_FIELDS = {
    "version": (8, 4), "record_version": (12, 4), "record_size": (16, 4),
    "header_size": (20, 4), "start_mono_ns": (136, 8), "start_real_ns": (144, 8),
    "ncpu": (152, 4), "nsyscalls": (156, 4), "names_len": (160, 4),
}
HEADER_STRINGS = ((24, 16), (40, 64), (104, 16), (120, 16))  # arch, release, clock, backend
BLOCK_FIELDS = {"magic": (0, 4), "type": (4, 4), "len": (8, 4), "count": (12, 4),
                "seq": (16, 8), "reserved": (28, 4)}
# struct syscap_rec field -> (offset, size); a process record's parent and comm
# lie where a syscall's ret, dur_ns and nr do
EVENT_FIELDS = {
    "ts_ns": (0, 8), "tgid": (8, 4), "tid": (12, 4), "kind": (16, 1), "flags": (17, 1),
    "cpu": (18, 2), "seq": (20, 4), "ret": (24, 8), "dur_ns": (32, 8), "nr": (40, 2),
    "raw_nr": (44, 4), "parent_tid": (28, 4), "comm": (32, 8),
}
MUTATIONS = 300
SUBPROCESS_SAMPLE = 12  # of them also run as real processes (3 commands each)
SEED = 20240611
WORKLOAD = "cat /nonexistent 2>/dev/null; sleep 1.1; true & wait; sleep 1.1; exit 3"


@dataclass(frozen=True)
class Block:
    offset: int
    type: int
    length: int


def blocks_of(data: bytes) -> list[Block]:
    header_size = HEADER.unpack_from(data)[4]
    out, off = [], header_size
    while off + BLOCK.size <= len(data):
        _, typ, length, *_ = BLOCK.unpack_from(data, off)
        out.append(Block(off, typ, length))
        off += BLOCK.size + length
    return out


def put(buf: bytearray, off: int, size: int, value: int) -> None:
    if off + size <= len(buf):
        buf[off:off + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


def fix_header_crc(buf: bytearray) -> None:
    names_len = int.from_bytes(buf[160:164], "little")
    head = bytearray(buf[:HEADER.size])
    head[164:168] = bytes(4)
    put(buf, 164, 4, zlib.crc32(bytes(head) + bytes(buf[HEADER.size:HEADER.size + names_len])))


def fix_block_crc(buf: bytearray, off: int) -> None:
    if off + BLOCK.size > len(buf):
        return
    length = int.from_bytes(buf[off + 8:off + 12], "little")
    head = bytearray(buf[off:off + BLOCK.size])
    head[24:28] = bytes(4)
    end = off + BLOCK.size + length
    put(buf, off + 24, 4, zlib.crc32(bytes(head) + bytes(buf[off + BLOCK.size:end])))


def extreme(rng: random.Random, size: int, file_size: int) -> int:
    if size == 8:
        return rng.choice(U64)
    if size == 4:
        return rng.choice((*U32, file_size, file_size - 1))
    return rng.choice((0, 1, (1 << (8 * size)) - 1, 1 << (8 * size - 1), rng.getrandbits(8 * size)))


# Each mutation: (original bytes, its blocks, rng) -> mutated bytes.
Mutation = Callable[[bytes, list[Block], random.Random], bytes]


def header_field(data: bytes, blocks: list[Block], rng: random.Random) -> bytes:
    buf = bytearray(data)
    off, size = HEADER_FIELDS[rng.choice(sorted(HEADER_FIELDS))]
    put(buf, off, size, extreme(rng, size, len(data)))
    fix_header_crc(buf)
    return bytes(buf)


def header_strings(data: bytes, blocks: list[Block], rng: random.Random) -> bytes:
    buf = bytearray(data)
    off, size = rng.choice(HEADER_STRINGS)
    buf[off:off + size] = (rng.choice((b"\xff", b"\xc3", b"\x80", b"\"\\\n")) * size)[:size]
    fix_header_crc(buf)
    return bytes(buf)


def header_bit_flip(data: bytes, blocks: list[Block], rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        buf[rng.randrange(HEADER.size)] ^= 1 << rng.randrange(8)
    if rng.random() < 0.8:
        fix_header_crc(buf)
    return bytes(buf)


def names_garbage(data: bytes, blocks: list[Block], rng: random.Random) -> bytes:
    buf = bytearray(data)
    names_len = HEADER.unpack_from(data)[-2]
    start = HEADER.size + rng.randrange(names_len)
    end = min(start + rng.randint(1, 200), HEADER.size + names_len)
    if rng.random() < 0.5:  # not UTF-8, the NULs kept: names that exist but do not decode
        for i in range(start, end):
            if buf[i]:
                buf[i] = rng.choice((0xFF, 0xFE, 0xC3, 0x80, 0xED))
    else:  # anything at all, possibly the final NUL too
        buf[start:end] = rng.randbytes(end - start)
    fix_header_crc(buf)
    return bytes(buf)


def names_unterminated(data: bytes, blocks: list[Block], rng: random.Random) -> bytes:
    buf = bytearray(data)
    names_len = HEADER.unpack_from(data)[-2]
    for i in range(HEADER.size + names_len - rng.randint(1, 16), HEADER.size + names_len):
        buf[i] = ord("x")
    fix_header_crc(buf)
    return bytes(buf)


def block_field(data: bytes, blocks: list[Block], rng: random.Random) -> bytes:
    buf = bytearray(data)
    blk = rng.choice(blocks)
    off, size = BLOCK_FIELDS[rng.choice(sorted(BLOCK_FIELDS))]
    put(buf, blk.offset + off, size, extreme(rng, size, len(data)))
    fix_block_crc(buf, blk.offset)
    return bytes(buf)


def len_and_count(data: bytes, blocks: list[Block], rng: random.Random) -> bytes:
    """len and count consistent with each other but not with the file."""
    buf = bytearray(data)
    blk = rng.choice(blocks)
    count = rng.choice((1 << 28, (1 << 32) // EVENT_SIZE + 1, 5461, 5462, 0xFFFFFFFF, 1 << 31))
    put(buf, blk.offset + 12, 4, count)
    put(buf, blk.offset + 8, 4, count * EVENT_SIZE)
    fix_block_crc(buf, blk.offset)
    return bytes(buf)


def event_field(data: bytes, blocks: list[Block], rng: random.Random) -> bytes:
    buf = bytearray(data)
    events = [b for b in blocks if b.type == 1 and b.length >= EVENT_SIZE] or blocks
    for _ in range(rng.randint(1, 8)):
        blk = rng.choice(events)
        rec = blk.offset + BLOCK.size + EVENT_SIZE * rng.randrange(max(blk.length // EVENT_SIZE, 1))
        off, size = EVENT_FIELDS[rng.choice(sorted(EVENT_FIELDS))]
        put(buf, rec + off, size, extreme(rng, size, len(data)))
        fix_block_crc(buf, blk.offset)
    return bytes(buf)


def stats_rows(data: bytes, blocks: list[Block], rng: random.Random) -> bytes:
    buf = bytearray(data)
    stats = [b for b in blocks if b.type in (2, 3)] or blocks
    blk = rng.choice(stats)
    payload = blk.offset + BLOCK.size
    for _ in range(rng.randint(1, 6)):
        pos = payload + rng.randrange(max(blk.length, 1)) // 8 * 8
        put(buf, pos, 8, rng.choice(U64))
    fix_block_crc(buf, blk.offset)
    return bytes(buf)


def payload_bit_flip(data: bytes, blocks: list[Block], rng: random.Random) -> bytes:
    buf = bytearray(data)
    blk = rng.choice(blocks)
    for _ in range(rng.randint(1, 32)):
        if blk.length:
            buf[blk.offset + BLOCK.size + rng.randrange(blk.length)] ^= 1 << rng.randrange(8)
    fix_block_crc(buf, blk.offset)
    return bytes(buf)


def raw_bit_flip(data: bytes, blocks: list[Block], rng: random.Random) -> bytes:
    """No CRC fixed: the reader's resynchronisation path."""
    buf = bytearray(data)
    start = rng.choice((0, blocks[0].offset, blocks[0].offset))  # mostly past the header
    for _ in range(rng.randint(1, 64)):
        buf[rng.randrange(start, len(buf))] ^= 1 << rng.randrange(8)
    return bytes(buf)


def truncate(data: bytes, blocks: list[Block], rng: random.Random) -> bytes:
    blk = rng.choice(blocks)
    cut = rng.choice((rng.randrange(len(data)), blk.offset, blk.offset + rng.randrange(1, 40),
                      blk.offset + BLOCK.size + blk.length - 1, rng.randrange(HEADER.size)))
    return data[:cut]


def insert_garbage(data: bytes, blocks: list[Block], rng: random.Random) -> bytes:
    at = rng.choice(blocks).offset
    junk = rng.randbytes(rng.choice((1, 7, 8, 31, 32, 33, 96, 4096)))
    if rng.random() < 0.5:  # block magics every 8 bytes: candidates for resync
        junk = struct.pack("<I", BLOCK_MAGIC) * (len(junk) // 4) + junk[: len(junk) % 4]
    return data[:at] + junk + data[at:]


def reorder_blocks(data: bytes, blocks: list[Block], rng: random.Random) -> bytes:
    head = data[:blocks[0].offset]
    parts = [data[b.offset:b.offset + BLOCK.size + b.length] for b in blocks]
    choice = rng.randrange(4)
    if choice == 0:
        rng.shuffle(parts)
    elif choice == 1:
        parts.insert(rng.randrange(len(parts) + 1), rng.choice(parts))
    elif choice == 2 and len(parts) > 1:
        del parts[rng.randrange(len(parts))]
    else:
        end = [p for p in parts if int.from_bytes(p[4:8], "little") == 3]
        parts = parts + end * rng.randint(1, 3)  # data after the end marker
    return head + b"".join(parts)


MUTATORS: tuple[Mutation, ...] = (
    header_field, header_strings, header_bit_flip, names_garbage, names_unterminated,
    block_field, len_and_count, event_field, stats_rows, payload_bit_flip, raw_bit_flip,
    truncate, insert_garbage, reorder_blocks,
)


@pytest.fixture(scope="module")
def real_trace(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A small recording with several event blocks, STATS blocks and an END block."""
    path = tmp_path_factory.mktemp("hostile") / "real.trace"
    syscap("record", "-o", str(path), "--", "/bin/sh", "-c", WORKLOAD, check=False)
    data = path.read_bytes()
    types = [b.type for b in blocks_of(data)]
    assert types.count(1) >= 2 and 2 in types and types[-1] == 3, types
    return data


def mutations(data: bytes) -> Iterator[tuple[str, bytes]]:
    blocks = blocks_of(data)
    for i in range(MUTATIONS):
        mutate = MUTATORS[i % len(MUTATORS)]
        yield f"{i}-{mutate.__name__}", mutate(data, blocks, random.Random(SEED + i))


def run_cli(*argv: str) -> tuple[int, str]:
    """`syscap ARGV` through the command's own entry point: (exit status, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = syscap_main(list(argv))
    return status, err.getvalue()


def check_outcome(what: str, status: int, stderr: str) -> None:
    assert "Traceback" not in stderr, f"{what}:\n{stderr}"
    assert status >= 0, f"{what}: killed by signal {-status}"
    if status != 0:
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("syscap"), f"{what}: {stderr!r}"


def replay_all(path: Path) -> None:
    """Play the whole file as top --replay does, in steps that cover any clock value."""
    try:
        source = ReplaySource(str(path), interval_s=(1 << 64) / 1e9 / 50)
    except SyscapError:
        return
    try:
        for _ in range(60):
            source.step()
            if source.at_end:
                break
        assert source.at_end
        assert all(isinstance(w, str) for w in source.warnings)
    finally:
        source.close()


def test_recorded_trace_is_read_cleanly(real_trace: bytes, tmp_path: Path) -> None:
    path = tmp_path / "t.trace"
    path.write_bytes(real_trace)
    status, stderr = run_cli("report", str(path))
    assert (status, stderr) == (0, "")


def test_mutated_traces_give_a_report_or_one_error_line(real_trace: bytes, tmp_path: Path) -> None:
    path, out = tmp_path / "m.trace", tmp_path / "out.json"
    outcomes = {"ok": 0, "error": 0}
    for name, data in mutations(real_trace):
        path.write_bytes(data)
        for argv in (("report", str(path)), ("report", "--json", str(path)),
                     ("export", str(path), "--format", "perfetto", "-o", str(out))):
            out.unlink(missing_ok=True)  # export need not overwrite an existing file
            status, stderr = run_cli(*argv)
            check_outcome(f"{name}: syscap {' '.join(argv)}", status, stderr)
            outcomes["ok" if status == 0 else "error"] += 1
        replay_all(path)
    # both kinds happen: a set that only ever fails at the header checks nothing deeper
    assert outcomes["ok"] > MUTATIONS and outcomes["error"] > MUTATIONS // 10, outcomes


def test_mutated_traces_as_real_processes(real_trace: bytes, tmp_path: Path) -> None:
    """Signals, exit codes and output encoding as a user sees them."""
    env = dict(os.environ, PYTHONIOENCODING="utf-8:strict")  # stdout that refuses surrogates
    sample = list(mutations(real_trace))[:: MUTATIONS // SUBPROCESS_SAMPLE]
    for name, data in sample:
        path = tmp_path / f"{name}.trace"
        path.write_bytes(data)
        for argv in (("report", str(path)), ("report", "--json", str(path)),
                     ("export", str(path), "--format", "perfetto", "-o", str(path) + ".json")):
            proc = subprocess.run([*SYSCAP, *argv], capture_output=True, text=True, cwd=ROOT,
                                  env=env, timeout=60)
            check_outcome(f"{name}: syscap {' '.join(argv)}", proc.returncode, proc.stderr)


def test_the_counted_block_that_wrapped_32_bits_is_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "count.trace"
    corpus = Path(__file__).parent / "c" / "corpus" / "trace"
    path.write_bytes((corpus / "regress-event-count-overflow.trace").read_bytes())
    proc = subprocess.run([*SYSCAP, "report", str(path)], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "truncated" in proc.stderr


def test_names_that_are_not_utf8_are_shown_escaped(tmp_path: Path) -> None:
    corpus = Path(__file__).parent / "c" / "corpus" / "trace"
    path = tmp_path / "names.trace"
    path.write_bytes((corpus / "regress-names-not-utf8.trace").read_bytes())
    status, stderr = run_cli("report", "--json", str(path))
    assert status == 0 and "Traceback" not in stderr
    proc = syscap("report", "--json", str(path))
    assert '"\\\\xff\\\\xfe"' in proc.stdout


@pytest.mark.parametrize("content", [b"", b"not a trace\n" * 40, None],
                         ids=["empty", "text", "directory"])
def test_top_replay_of_a_bad_file_says_so_in_one_line(
    content: bytes | None, tmp_path: Path
) -> None:
    """top needs a terminal: it gets one, and must refuse the file before its UI starts."""
    path = tmp_path / "bad.trace"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    master, slave = pty.openpty()
    try:
        proc = subprocess.run([*SYSCAP, "top", "--replay", str(path)], stdin=slave, stdout=slave,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=60)
    finally:
        os.close(slave)
        os.close(master)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode not in (0, *range(-64, 0)), proc.returncode
    assert len(lines) == 1 and lines[0].startswith("syscap top: cannot replay"), proc.stderr
    assert str(path) in lines[0]

