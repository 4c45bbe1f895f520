"""Make a checked-in fallback vmlinux.h from a kernel's BTF.

The BPF program is built against the running kernel's BTF when it has one;
these fallbacks let it build where it has none (a build host for another
machine). They are CO-RE inputs: field offsets are relocated at load time,
so any recent kernel of the architecture serves.

    # x86-64, from the running kernel:
    python3 capture_lib/bpf/vmlinux/make_fallback.py /sys/kernel/btf/vmlinux x86_64
    # arm64, from a Debian arm64 kernel package (vmlinuz is a gzip'd Image
    # whose .BTF data this script finds by its header):
    apt-get download linux-image-6.1.0-50-cloud-arm64:arm64   (private apt config
        with [arch=arm64], see shared/design.md) && dpkg -x linux-image-*.deb img
    python3 capture_lib/bpf/vmlinux/make_fallback.py img/boot/vmlinuz-*-arm64 aarch64

It writes capture_lib/bpf/vmlinux/vmlinux_ARCH.h.xz (needs bpftool and xz).
"""

from __future__ import annotations

import gzip
import lzma
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

BTF_MAGIC = b"\x9f\xeb"  # 0xeB9F little-endian
HERE = Path(__file__).resolve().parent


def extract_btf(blob: bytes) -> bytes:
    """Raw BTF: the file itself, or the largest valid BTF blob inside an image."""
    if blob[:2] == BTF_MAGIC:
        return blob
    if blob[:2] == b"\x1f\x8b":
        blob = gzip.decompress(blob)
    best = b""
    pos = blob.find(BTF_MAGIC)
    while pos >= 0:
        if pos + 24 <= len(blob):
            _, ver, _, hdr, toff, tlen, soff, slen = struct.unpack_from("<HBBIIIII", blob, pos)
            total = hdr + max(toff + tlen, soff + slen)
            if (ver == 1 and hdr == 24 and toff == 0 and soff == tlen and slen > 1000
                    and pos + total <= len(blob) and total > len(best)):
                best = blob[pos:pos + total]
        pos = blob.find(BTF_MAGIC, pos + 2)
    if not best:
        raise SystemExit("make_fallback: no BTF found (is the kernel built with "
                         "CONFIG_DEBUG_INFO_BTF?)")
    return best


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    src, arch = Path(argv[0]), argv[1]
    btf = extract_btf(src.read_bytes())
    with tempfile.NamedTemporaryFile(suffix=".btf") as f:
        f.write(btf)
        f.flush()
        header = subprocess.run(["bpftool", "btf", "dump", "file", f.name, "format", "c"],
                                check=True, capture_output=True).stdout
    out = HERE / f"vmlinux_{arch}.h.xz"
    out.write_bytes(lzma.compress(header, preset=9))
    print(f"{out}: {len(header)} bytes of C from {len(btf)} bytes of BTF")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
