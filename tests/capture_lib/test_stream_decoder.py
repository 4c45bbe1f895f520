"""capture_lib.stream against streams that are hostile, garbled or cut off, built here byte by
byte in the layout of syscap_trace.h (real agent streams are in test_agent.py)."""

from __future__ import annotations

import struct
import zlib

import pytest

from capture_lib.stream import (
    BLOCK,
    BLOCK_END,
    BLOCK_STREAM,
    F_DEFLATE,
    F_LATENCY,
    F_MORE,
    HEAD,
    HEADER,
    PROC,
    RING,
    ROW,
    STATS,
    StreamDecoder,
    StreamEnd,
    StreamError,
    StreamInterval,
)

NAMES = [b"read", b"write", b"", b"getppid"]


def header(names: list[bytes] = NAMES, version: int = 1) -> bytes:
    blob = b"".join(n + b"\0" for n in names)
    blob += b"\0" * (-(HEADER.size + len(blob)) % 8)
    fields = [b"SYSCAPTR", version, 1, 96, HEADER.size + len(blob), b"aarch64", b"4.19.1",
              b"monotonic", b"kmod", 5, 6, 4, len(names), len(blob), 0]  # fmt: skip
    raw = HEADER.pack(*fields)
    fields[-1] = zlib.crc32(blob, zlib.crc32(raw))
    return HEADER.pack(*fields) + blob


def block(btype: int, payload: bytes, count: int, seq: int = 0) -> bytes:
    raw = BLOCK.pack(0x4B4C4253, btype, len(payload), count, seq, 0, 0)
    crc = zlib.crc32(payload, zlib.crc32(raw))
    return BLOCK.pack(0x4B4C4253, btype, len(payload), count, seq, crc, 0) + payload


def interval(
    seq: int = 0,
    procs: list[tuple[int, bytes, list[tuple[int, int, int]]]] | None = None,
    flags: int = 0,
    version: int = 1,
    nrows_delta: int = 0,
    rings: int = 1,
    hist: list[tuple[int, int, int]] | None = None,
    deflate: bytes | None = None,
) -> bytes:
    """A STREAM block: procs as (tgid, comm, [(nr, calls, errors)]). deflate: the body
    deflated, as the agent sends it (b"": deflate the real body)."""
    procs = [(42, b"getppid_loop", [(3, 1000, 0), (1, 2, 1)])] if procs is None else procs
    hist = hist or []
    nrows = sum(len(r) for _, _, r in procs)
    body = b"".join(PROC.pack(t, 0, len(r), 0, c) for t, c, r in procs)
    body += b"".join(ROW.pack(nr, 0, calls, errs, 0) for _, _, r in procs for nr, calls, errs in r)
    body += b"".join(RING.pack(cpu, 0, 4096, 0, 8, 10, 0) for cpu in range(rings))
    body += b"".join(struct.pack("<HHI", *h) for h in hist)
    zlen = 0
    if deflate is not None:
        z = deflate or zlib.compress(body)
        zlen, flags = len(z), flags | F_DEFLATE
        body = z + b"\0" * (-len(z) % 8)
    head = HEAD.pack(version, flags, seq, 100, 200, 10, 0, 0, 5000, 1 << 20, 0, len(procs),
                     nrows + nrows_delta, rings, len(hist), zlen)  # fmt: skip
    return block(BLOCK_STREAM, head + body, nrows + nrows_delta, seq)


def end() -> bytes:
    return block(BLOCK_END, STATS.pack(300, 10, 0, 0, 0, 0, 0, 4096), 0)


def decode(data: bytes) -> list[StreamInterval | StreamEnd]:
    dec = StreamDecoder()
    out = dec.feed(data)
    dec.close()
    return out


def rejected(data: bytes) -> str:
    with pytest.raises(StreamError) as e:
        decode(data)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("stream: ")
    return msg


GOOD = header() + interval() + interval(seq=1) + end()


def test_a_well_formed_stream_decodes() -> None:
    dec = StreamDecoder()
    out = dec.feed(GOOD)
    dec.close()
    assert dec.info is not None
    assert (dec.info.arch, dec.info.kernel, dec.info.backend) == ("aarch64", "4.19.1", "kmod")
    assert dec.info.name(3) == "getppid" and dec.info.name(2) == "syscall_2"
    first = out[0]
    assert isinstance(first, StreamInterval)
    assert first.calls(42, 3) == 1000 and first.procs[0].comm == "getppid_loop"
    assert isinstance(out[-1], StreamEnd) and len(out) == 3


def test_byte_by_byte_gives_the_same_intervals() -> None:
    dec = StreamDecoder()
    out = []
    for i in range(len(GOOD)):
        out += dec.feed(GOOD[i : i + 1])
    dec.close()
    assert out == decode(GOOD)


def test_an_interval_in_parts_is_one_interval() -> None:
    a = interval(procs=[(1, b"a", [(0, 5, 0)])], flags=F_MORE, rings=0)
    b = interval(procs=[(2, b"b", [(1, 6, 0)])])
    out = decode(header() + a + b + end())
    assert len(out) == 2
    first = out[0]
    assert isinstance(first, StreamInterval)
    assert [p.tgid for p in first.procs] == [1, 2] and len(first.rings) == 1


def test_text_instead_of_a_stream_is_rejected() -> None:
    assert "bad magic" in rejected(b"Welcome to Debian GNU/Linux 10 (buster)!\n" * 8)


def test_a_banner_before_the_header_is_rejected() -> None:
    assert "bad magic" in rejected(b"motd\n" + GOOD)


def test_a_flipped_byte_is_rejected() -> None:
    bad = bytearray(GOOD)
    bad[len(header()) + BLOCK.size + HEAD.size + 3] ^= 0x40
    assert "CRC" in rejected(bytes(bad))


def test_a_stream_cut_off_midway_is_rejected_on_close() -> None:
    assert "without its end block" in rejected(GOOD[: len(GOOD) - 20])
    assert "before a complete header" in rejected(GOOD[:100])


def test_another_stream_version_is_rejected() -> None:
    assert "version 2" in rejected(header() + interval(version=2) + end())


def test_another_trace_version_is_rejected() -> None:
    assert "trace format 3" in rejected(header(version=3) + end())


def test_sizes_that_do_not_add_up_are_rejected() -> None:
    assert "do not add up" in rejected(header() + interval(nrows_delta=1) + end())


def test_more_errors_than_calls_is_rejected() -> None:
    assert "bad row" in rejected(header() + interval(procs=[(1, b"x", [(0, 1, 2)])]) + end())


def test_a_syscall_number_out_of_range_is_rejected() -> None:
    assert "bad row" in rejected(header() + interval(procs=[(1, b"x", [(512, 1, 0)])]) + end())


def test_a_histogram_without_latency_is_rejected() -> None:
    assert "histogram" in rejected(header() + interval(hist=[(0, 1, 1)]) + end())
    ok = decode(header() + interval(flags=F_LATENCY, hist=[(0, 1, 1)]) + end())
    assert isinstance(ok[0], StreamInterval) and ok[0].hist == ((0, 1, 1),)


def test_parts_of_two_intervals_are_rejected() -> None:
    a = interval(seq=0, flags=F_MORE)
    assert "inside interval" in rejected(header() + a + interval(seq=1) + end())


def test_data_after_the_end_is_rejected() -> None:
    assert "after the end" in rejected(GOOD + interval())


def test_a_huge_block_length_is_rejected_before_it_is_buffered() -> None:
    raw = bytearray(interval())
    struct.pack_into("<I", raw, 8, 1 << 30)
    dec = StreamDecoder()
    dec.feed(header())
    with pytest.raises(StreamError, match="bad block length"):
        dec.feed(bytes(raw[: BLOCK.size]))


def test_a_comm_that_is_not_utf8_is_shown_escaped() -> None:
    out = decode(header() + interval(procs=[(1, b"\xffbad\x00junk", [(0, 1, 0)])]) + end())
    first = out[0]
    assert isinstance(first, StreamInterval) and first.procs[0].comm == "\\xffbad"


def test_a_deflated_interval_decodes_as_the_plain_one() -> None:
    plain = decode(header() + interval() + end())
    deflated = decode(header() + interval(deflate=b"") + end())
    assert isinstance(plain[0], StreamInterval) and isinstance(deflated[0], StreamInterval)
    assert deflated[0].procs == plain[0].procs and deflated[0].rings == plain[0].rings
    assert deflated[0].wire_bytes < plain[0].wire_bytes + 64


def test_a_deflate_bomb_is_rejected() -> None:
    bomb = zlib.compress(b"\0" * (64 << 20))  # 64 KiB that inflate to 64 MiB
    assert "inflate" in rejected(header() + interval(deflate=bomb) + end())


def test_deflated_garbage_is_rejected() -> None:
    assert "does not inflate" in rejected(header() + interval(deflate=b"not zlib at all") + end())


def test_a_deflated_body_of_the_wrong_size_is_rejected() -> None:
    short = zlib.compress(PROC.pack(1, 0, 0, 0, b"x"))
    assert "inflate" in rejected(header() + interval(deflate=short) + end())


def test_a_deflated_size_on_a_plain_block_is_rejected() -> None:
    raw = bytearray(interval())
    struct.pack_into("<I", raw, BLOCK.size + 92, 8)  # zlen, the head's last field
    fixed = block(BLOCK_STREAM, bytes(raw[BLOCK.size :]), 2)
    assert "deflated size" in rejected(header() + fixed + end())


def test_garbage_after_sound_blocks_in_one_feed_keeps_those_blocks() -> None:
    dec = StreamDecoder()
    with pytest.raises(StreamError) as e:
        dec.feed(header() + interval() + interval(seq=1) + b"Connection closed.\n")
    assert [i.seq for i in e.value.decoded if isinstance(i, StreamInterval)] == [0, 1]
    assert "bad block magic" in str(e.value)
