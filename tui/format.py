"""Short, fixed-width renderings of rates, latencies, sizes and trends for table cells."""

from __future__ import annotations

import errno
from collections.abc import Sequence

_SPARK = "▁▂▃▄▅▆▇█"


def rate(value: float) -> str:
    """Events per second: '0', '2.5', '1234', '123.4k', '1.2M' (at most 7 characters)."""
    if value <= 0:
        return "0"
    if value < 10:
        return f"{value:.1f}"
    if value < 100_000:
        return f"{value:.0f}"
    if value < 10_000_000:
        return f"{value / 1e3:.1f}k"
    return f"{value / 1e6:.1f}M"


def latency(ns: float) -> str:
    """A duration in ns as '850ns', '12.3µs', '4.5ms', '1.20s'; '-' when unknown."""
    if ns <= 0:
        return "-"
    if ns < 1_000:
        return f"{ns:.0f}ns"
    if ns < 1_000_000:
        return f"{ns / 1e3:.1f}µs"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.1f}ms"
    return f"{ns / 1e9:.2f}s"


def size(nbytes: int) -> str:
    """Bytes as '512 B', '12 KiB', '3.5 MiB'."""
    if nbytes < 1024:
        return f"{nbytes} B"
    if nbytes < 1024 * 1024:
        return f"{nbytes / 1024:.0f} KiB"
    return f"{nbytes / (1024 * 1024):.1f} MiB"


def errno_name(code: int) -> str:
    """'ENOENT' for 2, '' for 0."""
    if code <= 0:
        return ""
    return errno.errorcode.get(code, f"E{code}")


def sparkline(values: Sequence[float], width: int) -> str:
    """The last `width` values as block characters scaled to their own maximum."""
    tail = list(values)[-width:]
    if not tail:
        return " " * width
    top = max(tail)
    if top <= 0:
        chars = _SPARK[0] * len(tail)
    else:
        chars = "".join(_SPARK[min(7, int(v / top * 7.999))] for v in tail)
    return chars.rjust(width)


def gauge(fraction: float, width: int) -> str:
    """A horizontal bar `width` cells wide, filled to `fraction` with eighth-cell precision."""
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    bar = "█" * full + ("▏▎▍▌▋▊▉"[part - 1] if part else "")
    return bar.ljust(width)
