"""Regenerate screenshots/*.svg and *.png of `syscap top` from a deterministic source.

    .venv/bin/python -m tests.tui.screenshots [--out screenshots]

The synthetic source advances a virtual clock one interval per snapshot, so every
run draws the same pictures. PNGs need cairosvg (pip install cairosvg); the SVGs
name the Fira Code web font, which cairosvg cannot fetch, so the PNG is drawn with
the local DejaVu Sans Mono, scaled to the same cell width.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.tui.synthetic import TABLE, SyntheticSource, synthetic_user
from tui.app import SyscapTop, TopOptions
from tui.panels import HostInfo

CELL_WIDTH_EM = 0.61  # Textual's SVG export: 12.2 px cells at 20 px
DEJAVU_MONO_EM = 0.602  # DejaVu Sans Mono advance width


@dataclass(frozen=True, slots=True)
class Shot:
    name: str
    size: tuple[int, int]
    keys: tuple[str, ...] = ()
    processes: int = 60
    ring_size: int = 8 << 20


SHOTS = (
    Shot("top-80x24", (80, 24)),
    Shot("top-120x40", (120, 40)),
    Shot("drill-process-80x24", (80, 24), ("down", "enter")),
    Shot("syscalls-120x40", (120, 40), ("v",)),
    Shot("filter-80x24", (80, 24), ("f4", "space", "down", "space")),
    Shot("help-80x24", (80, 24), ("question_mark",)),
    Shot("dropping-120x40", (120, 40), ring_size=3 << 18),
)


async def _render(shot: Shot) -> str:
    source = SyntheticSource(n=shot.processes, ring_size=shot.ring_size)
    app = SyscapTop(
        source,
        TopOptions(
            threaded=False,
            host=HostInfo("demo", "6.1.0-28-cloud-amd64"),
            syscall_table=TABLE,
            user_of=synthetic_user,
            cpu_meter=lambda: 1.4,
        ),
    )
    async with app.run_test(size=shot.size) as pilot:
        for _ in range(8):
            app.apply_snapshot(source.snapshot())
        await pilot.pause()
        for key in shot.keys:
            await pilot.press(key)
        await pilot.pause()
        return app.export_screenshot(title="syscap top")


def svg_to_png(svg: str, out: Path) -> None:
    import cairosvg  # type: ignore[import-untyped,unused-ignore]

    size = 20 * CELL_WIDTH_EM / DEJAVU_MONO_EM
    local = (
        svg.replace('"Fira Code"', '"DejaVu Sans Mono"')
        .replace("Fira Code, monospace", "DejaVu Sans Mono, monospace")
        .replace("font-size: 20px", f"font-size: {size:.2f}px")
    )
    cairosvg.svg2png(bytestring=local.encode(), write_to=str(out))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.tui.screenshots", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    parser.add_argument("--no-png", action="store_true", help="write only the SVGs")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    png = not args.no_png
    if png:
        try:
            import cairosvg  # noqa: F401  # type: ignore[import-untyped,unused-ignore]
        except ImportError as exc:  # cairosvg or its libcairo2 is missing
            print(f"screenshots: no PNGs ({exc}); pip install cairosvg", file=sys.stderr)
            png = False
    for shot in SHOTS:
        svg = asyncio.run(_render(shot))
        path = args.out / f"{shot.name}.svg"
        path.write_text(svg)
        written = [path.name]
        if png:
            svg_to_png(svg, path.with_suffix(".png"))
            written.append(path.with_suffix(".png").name)
        print(f"screenshots: wrote {', '.join(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
