"""Fuzz target for capture_lib.stream: what the engineer's machine does with the bytes an agent
(or anything at the other end of an SSH connection) sends.

    python tests/capture_lib/fuzz_stream.py [libFuzzer flags] CORPUS_DIR

CORPUS_DIR is seeded with real streams of syscap-agent (tests/capture_lib/test_fuzz_stream.py
records them). Each input is fed to a StreamDecoder in pieces of several sizes, as a pipe
delivers it, then the stream is closed. The only exception allowed is StreamError, and its
message must be one line; anything else is a crash for libFuzzer. Decoding the same bytes
in other pieces must give the same intervals.

The mutator knows the format: after a mutation it sets the CRCs of the header and of every
block whose framing still holds, and it often sets a field of a STREAM head, process, row or
END block to a boundary value, so inputs get past the CRC checks that random bit flips would
keep hitting and reach the size and range checks behind them.
"""

from __future__ import annotations

import random
import struct
import sys
import zlib

import atheris

with atheris.instrument_imports(include=["capture_lib"]):
    from capture_lib.stream import (
        BLOCK,
        BLOCK_BYTES,
        BLOCK_MAGIC,
        HEAD,
        HEADER,
        PROC,
        ROW,
        StreamDecoder,
        StreamEnd,
        StreamError,
        StreamInterval,
    )

PIECES = (1, 7, 64, 4096, 1 << 20)
BOUNDARY32 = (0, 1, 2, 7, 8, 0x7F, 0x80, 0xFF, 0x1FF, 0x200, 0xFFFF, 0x10000, 0x7FFFFFFF,
              0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)  # fmt: skip


def decode(data: bytes, piece: int) -> list[StreamInterval | StreamEnd] | str:
    """Everything data decodes to, fed piece bytes at a time, or the error message."""
    dec = StreamDecoder()
    out: list[StreamInterval | StreamEnd] = []
    try:
        for i in range(0, len(data), piece):
            out += dec.feed(data[i : i + piece])
        dec.close()
    except StreamError as e:
        msg = str(e)
        assert msg and "\n" not in msg, f"a stream error must be one line: {msg!r}"
        return msg.split(" at byte ")[0]
    return out


def test_one_input(data: bytes) -> None:
    whole = decode(data, len(data) or 1)
    piece = PIECES[zlib.crc32(data) % len(PIECES)]
    in_pieces = decode(data, piece)
    # where the stream fails may be found earlier in pieces (a bad magic shows
    # before its block is complete), so only the outcome is compared for errors
    assert isinstance(whole, str) == isinstance(in_pieces, str), (whole, in_pieces)
    if not isinstance(whole, str):
        assert whole == in_pieces


# ---------------------------------------------------------------------------------------
# structure-aware mutations


def fix_crcs(buf: bytearray) -> None:
    """Set the header's and every well-framed block's CRC to match their bytes."""
    if len(buf) < HEADER.size or buf[:8] != b"SYSCAPTR":
        return
    header_size = struct.unpack_from("<I", buf, 20)[0]
    if header_size < HEADER.size or header_size > len(buf):
        return
    struct.pack_into("<I", buf, HEADER.size - 4, 0)
    crc = zlib.crc32(bytes(buf[HEADER.size : header_size]), zlib.crc32(bytes(buf[: HEADER.size])))
    struct.pack_into("<I", buf, HEADER.size - 4, crc)
    pos = header_size
    while len(buf) - pos >= BLOCK.size:
        magic, _, length, _, _, _, _ = BLOCK.unpack_from(buf, pos)
        if magic != BLOCK_MAGIC or length > BLOCK_BYTES or len(buf) - pos - BLOCK.size < length:
            return
        struct.pack_into("<I", buf, pos + 24, 0)
        end = pos + BLOCK.size + length
        crc = zlib.crc32(
            bytes(buf[pos + BLOCK.size : end]), zlib.crc32(bytes(buf[pos : pos + BLOCK.size]))
        )
        struct.pack_into("<I", buf, pos + 24, crc)
        pos = end


def blocks(buf: bytes) -> list[tuple[int, int, int]]:
    """(offset, type, payload length) of each well-framed block."""
    out: list[tuple[int, int, int]] = []
    if len(buf) < HEADER.size or buf[:8] != b"SYSCAPTR":
        return out
    pos = struct.unpack_from("<I", buf, 20)[0]
    while pos >= HEADER.size and len(buf) - pos >= BLOCK.size:
        magic, btype, length, _, _, _, _ = BLOCK.unpack_from(buf, pos)
        if magic != BLOCK_MAGIC or len(buf) - pos - BLOCK.size < length:
            break
        out.append((pos, btype, length))
        pos += BLOCK.size + length
    return out


def set_field(buf: bytearray, rng: random.Random) -> None:
    """A u32 of a block header or payload (head, a process, a row) to a boundary value."""
    found = blocks(bytes(buf))
    if not found:
        return
    pos, btype, length = rng.choice(found)
    payload = pos + BLOCK.size
    choices = [pos + 8, pos + 12]  # len, count
    if btype == 4 and length >= HEAD.size:
        choices += [payload + o for o in range(0, HEAD.size, 4)]
        nprocs = struct.unpack_from("<I", buf, payload + 76)[0]
        if nprocs and length >= HEAD.size + PROC.size:
            p = payload + HEAD.size + PROC.size * rng.randrange(min(nprocs, 64))
            if p + PROC.size <= payload + length:
                choices += [p, p + 4, p + 8]
            r = payload + HEAD.size + nprocs * PROC.size
            if r + ROW.size <= payload + length:
                choices += [r + o for o in range(0, ROW.size, 4)]
    elif length >= 4:
        choices += [payload + 4 * rng.randrange(length // 4)]
    off = rng.choice(choices)
    if off + 4 <= len(buf):
        struct.pack_into("<I", buf, off, rng.choice(BOUNDARY32))


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    buf = bytearray(data)
    if rng.random() < 0.5 and blocks(data):
        set_field(buf, rng)
    else:
        buf = bytearray(atheris.Mutate(bytes(buf), max_size))
    if rng.random() < 0.9:
        fix_crcs(buf)
    return bytes(buf[:max_size])


def main() -> None:
    atheris.Setup(sys.argv, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
