"""Text of the header, ring panel, cost-of-watching line and status line.

Functions return Textual content markup that names theme variables ($error,
$warning, ...) instead of colours, so every theme (and --low-color) applies.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len
from textual.markup import escape

from capture_lib.snapshot import RingStats, Snapshot
from tui import format as fmt

GAUGE_WIDTH = 6
LONG_STATE = 24  # cells a long state keeps before host and kernel are shortened


@dataclass(frozen=True, slots=True)
class HostInfo:
    host: str
    kernel: str


def _shorten(text: str, cells: int) -> str:
    """`text` cut to `cells` terminal cells, an ellipsis marking the cut."""
    if cell_len(text) <= cells:
        return text
    cut = text
    while cut and cell_len(cut) > cells - 1:
        cut = cut[:-1]
    return cut + "…"


def header_markup(
    info: HostInfo, backend: str, interval_s: float, state: str, width: int | None = None
) -> str:
    """'syscap top  host  Linux 6.1  bpf  every 1.0s  LIVE' with the state coloured.

    Within `width` cells, a state of up to LONG_STATE cells always shows in full: the
    kernel release is shortened first (a distribution's can be 40 characters long),
    then the host name. A longer state (a lost connection's reason) gives way first.
    """
    colour = {"LIVE": "$success", "FAILED": "$error", "connection": "$error"}.get(
        state.split()[0] if state.split() else "", "$warning"
    )
    host, kernel = info.host, info.kernel
    if width is not None:
        bare = cell_len(f"syscap top    Linux   backend {backend}  every {interval_s:g}s  ")
        spare = width - bare - cell_len(host) - cell_len(kernel)
        if cell_len(state) > max(spare, LONG_STATE):  # a lost connection's reason
            state = _shorten(state, max(spare, LONG_STATE))
        fixed = bare + cell_len(state)
        room = width - fixed  # for host + kernel
        if cell_len(host) + cell_len(kernel) > room:
            kernel = _shorten(kernel, max(room - cell_len(host), 4))
        if cell_len(host) + cell_len(kernel) > room:
            host = _shorten(host, max(room - cell_len(kernel), 4))
    return (
        f"[b]syscap top[/]  {escape(host)}  Linux {escape(kernel)}  "
        f"backend [b]{escape(backend)}[/]  every {interval_s:g}s  [b {colour}]{escape(state)}[/]"
    )


def _fill_colour(fill: float) -> str:
    return "$error" if fill >= 0.95 else "$warning" if fill >= 0.8 else "$success"


def _ring_gauges(rings: tuple[RingStats, ...], width: int) -> str:
    item = 4 + GAUGE_WIDTH + 2 + 5  # 'c12▕██████▏ 42% '
    if len(rings) * item + 6 <= width:
        parts = []
        for r in rings:
            bar = fmt.gauge(r.fill, GAUGE_WIDTH)
            parts.append(f"{r.cpu:>2}▕[{_fill_colour(r.fill)}]{bar}[/]▏{r.fill * 100:3.0f}%")
        return "fill " + "  ".join(parts)
    # Many CPUs: one cell per CPU, height shows fill.
    blocks = "▁▂▃▄▅▆▇█"
    worst = max(rings, key=lambda r: r.fill)
    room = max(width - 30, 8)
    cells = "".join(
        f"[{_fill_colour(r.fill)}]{blocks[min(7, int(r.fill * 8))]}[/]" for r in rings[:room]
    )
    more = "…" if len(rings) > room else ""
    return f"fill cpu0-{rings[-1].cpu} {cells}{more}  max {worst.fill * 100:.0f}% cpu{worst.cpu}"


def rings_markup(
    snap: Snapshot | None,
    width: int,
    recorded_drops: int | None = None,
    record_size: int | None = None,
) -> tuple[str, bool]:
    """Two lines (gauges; rates and drops) and whether records are being dropped now.

    `recorded_drops`: for a replay, the records the recorder lost so far.
    `record_size`: bytes per ring record; with it the consumer lag is also given as
    time (unread records at the current event rate).
    """
    if snap is None:
        return "fill (waiting for the first snapshot)\nevents -  drops -", False
    interval = snap.interval_s
    dropping = snap.drops > 0
    total_drops = snap.total_drops if recorded_drops is None else recorded_drops
    drops = f"drops {fmt.rate(snap.drops / interval)}/s"
    if dropping:
        drops = f"[b $error]{drops}[/]"
    total = f"total drops {total_drops}"
    if total_drops:
        total = f"[{'$error' if dropping else '$warning'}]{total}[/]"
    unread = sum(r.used for r in snap.rings)
    line2 = (
        f"events {fmt.rate(snap.events / interval)}/s  {drops}  {total}  "
        f"lag {fmt.size(unread)} unread"
    )
    if record_size and snap.events:
        behind_s = unread / record_size / (snap.events / interval)
        line2 += f" ≈ {fmt.latency(behind_s * 1e9) if unread else '0'}"
    if snap.missed:
        line2 += f"  [$warning]missed {snap.missed}[/]"
    gauges = _ring_gauges(snap.rings, width) if snap.rings else "fill (not in the trace)"
    return gauges + "\n" + line2, dropping


def cost_markup(
    own_cpu: float | None,
    hook_cost_ns: float | None,
    snap: Snapshot | None,
    replay: bool = False,
    durations: tuple[str, int] | None = None,
    agent: tuple[float, int] | None = None,
) -> str:
    """The cost of watching: syscap's CPU use and the hook time it adds to traced work.

    `agent`: a box watched through syscap-agent (top --remote), the agent's CPU
    (percent of one CPU) and memory (bytes) there; the hooks' cost is not measured
    on the box.

    The added time is the per-syscall hook cost measured at start-up times the
    current rate of syscalls that reach the probe's record path. `durations`:
    the mode ("off", "sampled", "all"; the `l` key cycles) and the sample
    period, None when the source cannot switch.
    """
    own = "-" if own_cpu is None else f"{own_cpu:.1f}%"
    text = f"[b]cost of watching[/]  syscap {own} CPU"
    if durations is not None:
        mode, period = durations
        if mode == "sampled":
            text += f"  durations [b]sampled 1/{period}[/] (~, l)"
        else:
            text += f"  durations [b]{mode}[/] (l)"
    if replay:
        return text + "  hooks: n/a (replay)"
    if agent is not None:
        cpu, rss = agent
        return f"{text}  agent on the box {cpu:.1f}% CPU {rss / (1 << 20):.1f} MiB  hooks: n/a"
    if hook_cost_ns is None or snap is None:
        return text + "  hooks: n/a"
    if hook_cost_ns <= 0:
        return text + "  hooks: not measurable at start-up"
    per_s = (snap.events + snap.drops) / snap.interval_s
    added = hook_cost_ns * per_s / 1e9 * 100  # percent of one CPU
    return (
        f"{text}  hooks ≈ [b]{added:.1f}%[/] CPU "
        f"({hook_cost_ns:.0f}ns × {fmt.rate(per_s)}/s)"  # noqa: RUF001
    )
