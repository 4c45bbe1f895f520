"""arm64's exclusive load/store sequences, which a step runs over as one (arch.py).

The instruction words are glibc/libgcc's compare-and-swap as the assembler encodes it
(__aarch64_cas4_acq without LSE); the guest's reverse tests run one for real (exit()
takes a lock)."""

from __future__ import annotations

import struct

from restorer.arch import atomic_sequence_exits

LDAXR_W16_X2 = 0x885FFC50  # ldaxr w16, [x2]
CMP_W16_W0 = 0x6B00021F  # cmp w16, w0
B_NE_PLUS_12 = 0x54000061  # b.ne .+12
STXR_W17_W1_X2 = 0x88117C41  # stxr w17, w1, [x2]
CBNZ_W17_MINUS_16 = 0x35FFFF91  # cbnz w17, .-16 (back to the ldaxr)
MOV_W0_W16 = 0x2A1003E0  # mov w0, w16
RET = 0xD65F03C0


def words(*insns: int) -> bytes:
    return b"".join(struct.pack("<I", w) for w in insns)


CAS = words(LDAXR_W16_X2, CMP_W16_W0, B_NE_PLUS_12, STXR_W17_W1_X2, CBNZ_W17_MINUS_16,
            MOV_W0_W16, RET)  # fmt: skip


def test_a_compare_and_swap_leaves_after_its_store_or_by_its_branch_out() -> None:
    # After the stxr (the cbnz, which retries if the store failed), or b.ne's target.
    assert atomic_sequence_exits(0x1000, CAS) == (0x1010, 0x1014)


def test_only_a_load_exclusive_starts_a_sequence() -> None:
    assert atomic_sequence_exits(0x1004, CAS[4:]) == ()
    assert atomic_sequence_exits(0x1000, words(MOV_W0_W16, RET)) == ()


def test_a_sequence_without_its_store_in_reach_is_single_stepped() -> None:
    assert atomic_sequence_exits(0x1000, words(LDAXR_W16_X2, *[CMP_W16_W0] * 20)) == ()
