"""Decoding what `syscap-agent stream` sends: a trace header, then one STREAM block per
interval (counts per process x syscall), then an END block.

The bytes come from another machine, usually through SSH, so they are untrusted: every
size is checked against the layout in capture_lib/include/syscap_trace.h before it is
used, and the first thing that is wrong ends the stream with one StreamError saying
what and where. A live stream is not resynchronised as a trace file is: a reader
that lost its place cannot tell counts from garbage.

Pure Python (struct, zlib): the engineer's machine needs nothing native to read a
stream, and the fuzz target (tests/capture_lib/fuzz_stream.py) runs this code as is.

    dec = StreamDecoder()
    for chunk in chunks:
        for item in dec.feed(chunk):   # StreamInterval or StreamEnd
            ...
    dec.close()                        # StreamError if the stream stopped midway
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from capture_lib.errors import TraceError

TRACE_MAGIC = b"SYSCAPTR"
TRACE_VERSION = 1
# (record version, record size) pairs a trace may hold (syscap_record.h):
# struct syscap_event, struct syscap_rec (with arguments), packed struct syscap_rec (ditto)
RECORD_FORMATS = ((1, 96), (2, 48), (2, 96), (3, 48), (3, 96))
BLOCK_MAGIC = 0x4B4C4253
BLOCK_EVENTS, BLOCK_STATS, BLOCK_END, BLOCK_STREAM = 1, 2, 3, 4
BLOCK_BYTES = 256 * 1024
STREAM_VERSION = 1
F_LATENCY, F_MORE, F_DEFLATE, F_SAMPLED = 0x01, 0x02, 0x04, 0x08
PROC_EXITED = 0x01
MAX_SYSCALLS = 512
HIST_BUCKETS = 64
MAX_NAMES_LEN = 64 * 1024  # the agent's table is under 8 KiB
MAX_PARTS = 256  # parts of one interval: 64 MiB

# struct syscap_trace_header
HEADER = struct.Struct("<8sIIII16s64s16s16sQQIIII")
# struct syscap_block_header
BLOCK = struct.Struct("<IIIIQII")
# struct syscap_stream_head / _proc / _row / _ring / _hist
HEAD = struct.Struct("<IIQQQQQQQQIIIIII")
PROC = struct.Struct("<IIII16s")
ROW = struct.Struct("<IIQQQ")
RING = struct.Struct("<iIQQQQQ")
HIST = struct.Struct("<HHI")
# struct syscap_trace_stats and syscap_trace_sysrow (END)
STATS = struct.Struct("<QQQQQQQQ")
SYSROW = struct.Struct("<IIQQQ")


class StreamError(TraceError):
    """The stream cannot be decoded; str() is one line saying why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        # what the same feed() decoded before the bad byte: sound, and a live
        # reader keeps it (a banner or garbage can share a read with the last blocks)
        self.decoded: list[StreamInterval | StreamEnd] = []


@dataclass(frozen=True, slots=True)
class TraceInfo:
    """The box a trace or stream was recorded on, from its trace header (trace.py reads
    the same header of a trace file through the C reader)."""

    arch: str
    kernel: str
    backend: str
    clock: str
    start_mono_ns: int
    start_real_ns: int
    ncpu: int


@dataclass(frozen=True, slots=True)
class StreamInfo(TraceInfo):
    """A stream's trace header: the box, and its syscall table, which a stream reader
    needs at once (a trace file looks names up on demand)."""

    names: tuple[str, ...]  # syscall number -> name ("" where the table has none)

    def name(self, nr: int) -> str:
        name = self.names[nr] if nr < len(self.names) else ""
        return name or f"syscall_{nr}"


@dataclass(frozen=True, slots=True)
class StreamRow:
    nr: int
    calls: int
    errors: int
    total_ns: int  # 0 unless the interval has latency


@dataclass(frozen=True, slots=True)
class StreamProc:
    tgid: int
    comm: str
    exited: bool
    rows: tuple[StreamRow, ...]


@dataclass(frozen=True, slots=True)
class StreamRing:
    cpu: int
    size: int
    used: int
    max_used: int
    events: int
    drops: int


@dataclass(frozen=True, slots=True)
class StreamInterval:
    """One interval's counts (differences, not totals) as the agent sent them."""

    seq: int
    start_ns: int
    end_ns: int
    latency: bool
    # the durations are a sample's: counts exact, total_ns estimated (count x the
    # samples' mean), histograms of the sampled calls only
    sampled: bool
    events: int  # kernel totals since start: syscalls past the filter
    drops: int
    missed: int
    agent_cpu_ns: int
    agent_rss: int
    filter_gen: int  # filter commands applied before this interval began
    procs: tuple[StreamProc, ...]
    rings: tuple[StreamRing, ...]
    hist: tuple[tuple[int, int, int], ...]  # (nr, bucket, count), nonzero buckets
    parts: int  # blocks it came in (one unless it outgrew a block)
    wire_bytes: int  # what its blocks took on the wire (headers and, if deflated, deflated)

    def calls(self, tgid: int, nr: int) -> int:
        """Calls of syscall nr by process tgid in this interval."""
        return sum(r.calls for p in self.procs if p.tgid == tgid for r in p.rows if r.nr == nr)


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The agent stopped cleanly; the kernel's exact totals since it started."""

    events: int
    drops: int
    missed: int
    syscalls: tuple[tuple[int, int, int, int], ...]  # (nr, calls, errors, total_ns)


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="backslashreplace")


def _crc(head: bytes, payload: bytes | memoryview) -> int:
    return zlib.crc32(payload, zlib.crc32(head)) & 0xFFFFFFFF


class StreamDecoder:
    """Turns the bytes of a stream into intervals, fed as they arrive."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._off = 0  # stream offset of _buf[0], for messages
        self.info: StreamInfo | None = None
        self.ended = False
        self._parts: list[tuple[int, tuple[int, ...], list[StreamProc], list[StreamRing],
                                list[tuple[int, int, int]], int]] = []  # fmt: skip

    def _fail(self, where: int, what: str) -> StreamError:
        return StreamError(
            f"stream: {what} at byte {self._off + where}: this is not (or no longer) a "
            "syscap-agent stream; check the command that runs the agent"
        )

    def feed(self, data: bytes) -> list[StreamInterval | StreamEnd]:
        """Decode what data completes; StreamError on the first bad byte."""
        if self.ended:
            if data:
                raise self._fail(0, "data after the end block")
            return []
        self._buf += data
        out: list[StreamInterval | StreamEnd] = []
        pos = 0
        if self.info is None:
            pos = self._header()
            if self.info is None:
                return out
        try:
            while not self.ended:
                n = self._block(pos, out)
                if not n:
                    break
                pos += n
        except StreamError as exc:
            exc.decoded = out
            raise
        del self._buf[:pos]
        self._off += pos
        if self.ended and self._buf:
            raise self._fail(0, "data after the end block")
        return out

    def close(self) -> None:
        """The other side is gone: StreamError unless the stream ended cleanly."""
        if self.ended:
            return
        if self.info is None:
            raise StreamError(
                f"stream: ended after {len(self._buf)} bytes, before a complete header: "
                "the agent did not start (see its message above)"
            )
        raise StreamError(
            f"stream: ended at byte {self._off + len(self._buf)} without its end block: "
            "the agent or the connection was cut off"
        )

    def _header(self) -> int:
        buf = self._buf
        if len(buf) >= 8 and bytes(buf[:8]) != TRACE_MAGIC:
            raise self._fail(0, "bad magic (not a syscap trace header)")
        if len(buf) < HEADER.size:
            return 0
        f = HEADER.unpack_from(buf)
        version, record_version, record_size = int(f[1]), int(f[2]), int(f[3])
        header_size = int(f[4])
        arch, release, clock, backend, start_mono, start_real = f[5:11]
        ncpu, nsyscalls, names_len, crc = (int(x) for x in f[11:15])
        if version != TRACE_VERSION or (record_version, record_size) not in RECORD_FORMATS:
            raise self._fail(
                8,
                f"trace format {version} with {record_size}-byte records of version "
                f"{record_version} (this syscap reads format {TRACE_VERSION} with "
                + ", ".join(f"{n}-byte records of version {v}" for v, n in RECORD_FORMATS) + ")",
            )
        if names_len > MAX_NAMES_LEN or header_size != HEADER.size + names_len or names_len % 8:
            raise self._fail(20, f"bad header size {header_size} (names {names_len} bytes)")
        if len(buf) < header_size:
            return 0
        raw = bytearray(buf[: HEADER.size])
        struct.pack_into("<I", raw, HEADER.size - 4, 0)
        names_raw = bytes(buf[HEADER.size : header_size])
        if _crc(bytes(raw), names_raw) != crc:
            raise self._fail(0, "header CRC mismatch")
        if nsyscalls > names_len or (names_len and names_raw[-1] != 0):
            raise self._fail(HEADER.size, "bad syscall name table")
        names = tuple(_text(n) for n in names_raw.split(b"\0")[:nsyscalls])
        if not 0 < ncpu <= 4096:
            raise self._fail(0, f"bad CPU count {ncpu}")
        self.info = StreamInfo(
            arch=_text(arch), kernel=_text(release), backend=_text(backend),
            clock=_text(clock), start_mono_ns=start_mono, start_real_ns=start_real, ncpu=ncpu,
            names=names,
        )  # fmt: skip
        return header_size

    def _block(self, pos: int, out: list[StreamInterval | StreamEnd]) -> int:
        """Decode the block at pos into out; its size, or 0 if it is not all here."""
        buf = self._buf
        if len(buf) - pos >= 4 and struct.unpack_from("<I", buf, pos)[0] != BLOCK_MAGIC:
            raise self._fail(pos, "bad block magic")
        if len(buf) - pos < BLOCK.size:
            return 0
        _, btype, length, count, _, crc, _ = BLOCK.unpack_from(buf, pos)
        if length > BLOCK_BYTES or length % 8:
            raise self._fail(pos, f"bad block length {length}")
        if len(buf) - pos < BLOCK.size + length:
            return 0
        head = bytearray(buf[pos : pos + BLOCK.size])
        struct.pack_into("<I", head, 24, 0)
        payload = memoryview(buf)[pos + BLOCK.size : pos + BLOCK.size + length]
        try:
            if _crc(bytes(head), payload) != crc:
                raise self._fail(pos, "block CRC mismatch")
            if btype == BLOCK_STREAM:
                self._stream(pos, bytes(payload), count, BLOCK.size + length, out)
            elif btype == BLOCK_END:
                if self._parts:
                    raise self._fail(pos, "end block inside a split interval")
                out.append(self._end(pos, bytes(payload), count))
                self.ended = True
            # EVENTS and STATS carry nothing a stream reader needs; other types
            # are left for newer readers, as in trace files
        finally:
            payload.release()
        return BLOCK.size + int(length)

    def _end(self, pos: int, p: bytes, count: int) -> StreamEnd:
        if len(p) != STATS.size + count * SYSROW.size:
            raise self._fail(pos, "bad end block length")
        _, events, drops, _, _, missed, _, _ = STATS.unpack_from(p)
        rows = []
        for i in range(count):
            nr, _, calls, errors, total_ns = SYSROW.unpack_from(p, STATS.size + i * SYSROW.size)
            rows.append((nr, calls, errors, total_ns))
        return StreamEnd(events=events, drops=drops, missed=missed, syscalls=tuple(rows))

    def _inflate(self, pos: int, p: bytes, want: int, zlen: int) -> bytes:
        """The head and the inflated rest of a deflated payload of want bytes."""
        if len(p) != HEAD.size + (zlen + 7) // 8 * 8 or any(p[HEAD.size + zlen :]):
            raise self._fail(pos, "deflated stream block sizes do not add up")
        if want > BLOCK_BYTES:  # the agent deflates parts that fit a block
            raise self._fail(pos, "stream block sizes do not add up")
        z = zlib.decompressobj()
        try:
            body = z.decompress(p[HEAD.size : HEAD.size + zlen], want - HEAD.size + 1)
        except zlib.error:
            raise self._fail(pos, "deflated stream block does not inflate") from None
        if not z.eof or z.unused_data or len(body) != want - HEAD.size:
            raise self._fail(pos, "deflated stream block does not inflate to its size")
        return p[: HEAD.size] + body

    def _stream(self, pos: int, p: bytes, count: int, wire: int,
                out: list[StreamInterval | StreamEnd]) -> None:  # fmt: skip
        if len(p) < HEAD.size:
            raise self._fail(pos, "stream block shorter than its head")
        h = HEAD.unpack_from(p)
        version, flags, seq, start_ns, end_ns = h[:5]
        nprocs, nrows, nrings, nhist, zlen = h[11:16]
        if version != STREAM_VERSION:
            raise self._fail(
                pos,
                f"stream block version {version} (this syscap reads {STREAM_VERSION}): "
                "use matching syscap and agent versions",
            )
        if flags & ~(F_LATENCY | F_MORE | F_DEFLATE | F_SAMPLED):
            raise self._fail(pos, f"unknown stream flags {flags:#x}")
        if flags & F_SAMPLED and not flags & F_LATENCY:
            raise self._fail(pos, "sampled durations without latency")
        want = (HEAD.size + nprocs * PROC.size + nrows * ROW.size + nrings * RING.size
                + nhist * HIST.size)  # fmt: skip
        if flags & F_DEFLATE:
            p = self._inflate(pos, p, want, zlen)
        elif zlen:
            raise self._fail(pos, "deflated size in a block that is not deflated")
        if len(p) != want or count != nrows:
            raise self._fail(pos, "stream block sizes do not add up")
        if end_ns < start_ns:
            raise self._fail(pos, "stream interval ends before it starts")
        if nhist and not flags & F_LATENCY:
            raise self._fail(pos, "histogram without latency")
        off = HEAD.size
        rows_off = off + nprocs * PROC.size
        procs: list[StreamProc] = []
        for _ in range(nprocs):
            tgid, pflags, prows, _, comm = PROC.unpack_from(p, off)
            off += PROC.size
            if prows > nrows - (rows_off - HEAD.size - nprocs * PROC.size) // ROW.size:
                raise self._fail(pos, "process rows do not add up")
            rows = []
            for _ in range(prows):
                nr, _, calls, errors, total_ns = ROW.unpack_from(p, rows_off)
                rows_off += ROW.size
                if nr >= MAX_SYSCALLS or errors > calls:
                    raise self._fail(pos, f"bad row (syscall {nr}, {calls} calls, "
                                          f"{errors} errors)")  # fmt: skip
                rows.append(StreamRow(nr, calls, errors, total_ns if flags & F_LATENCY else 0))
            procs.append(StreamProc(tgid, _text(comm), bool(pflags & PROC_EXITED), tuple(rows)))
        if rows_off != HEAD.size + nprocs * PROC.size + nrows * ROW.size:
            raise self._fail(pos, "process rows do not add up")
        off = rows_off
        rings = []
        for _ in range(nrings):
            cpu, _, size, used, max_used, revents, rdrops = RING.unpack_from(p, off)
            off += RING.size
            if cpu < 0:
                raise self._fail(pos, f"bad ring CPU {cpu}")
            rings.append(StreamRing(cpu, size, used, max_used, revents, rdrops))
        hist = []
        for _ in range(nhist):
            nr, bucket, hcount = HIST.unpack_from(p, off)
            off += HIST.size
            if nr >= MAX_SYSCALLS or bucket >= HIST_BUCKETS:
                raise self._fail(pos, f"bad histogram entry (syscall {nr}, bucket {bucket})")
            hist.append((nr, bucket, hcount))
        if self._parts and self._parts[0][0] != seq:
            raise self._fail(pos, f"interval {seq} starts inside interval {self._parts[0][0]}")
        if len(self._parts) >= MAX_PARTS:
            raise self._fail(pos, f"interval {seq} has more than {MAX_PARTS} parts")
        self._parts.append((seq, h, procs, rings, hist, wire))
        if flags & F_MORE:
            return
        first = self._parts[0][1]
        parts, self._parts = self._parts, []
        out.append(StreamInterval(
            seq=seq, start_ns=first[3], end_ns=first[4], latency=bool(first[1] & F_LATENCY),
            sampled=bool(first[1] & F_SAMPLED),
            events=first[5], drops=first[6], missed=first[7], agent_cpu_ns=first[8],
            agent_rss=first[9], filter_gen=first[10],
            procs=tuple(x for part in parts for x in part[2]),
            rings=tuple(x for part in parts for x in part[3]),
            hist=tuple(x for part in parts for x in part[4]),
            parts=len(parts),
            wire_bytes=sum(part[5] for part in parts),
        ))  # fmt: skip


def read_stream(f: BinaryIO, chunk: int = 65536) -> Iterator[StreamInterval | StreamEnd]:
    """Every interval of the stream f, then its end; StreamError if it is bad or cut off."""
    dec = StreamDecoder()
    read = getattr(f, "read1", f.read)  # read1: what a pipe has now, not a full chunk
    while data := read(chunk):
        yield from dec.feed(data)
    dec.close()
