"""A deterministic core for the restorer pane's tests and screenshot, and the screenshot itself.

    .venv/bin/python -m tests.tui.restorer_demo [--out screenshots]   (root; gcc with static glibc)

The demo program is static and non-PIE and dumps core at an int3 with ASLR off, an empty
environment and an executable path of fixed length, so code, stack and TLS addresses are
the same on every run; only the PID differs, and the picture masks it. The memory shown is
the program's own buffer, the same on every CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from restorer import ptrace
from tests.cores import cores_in_cwd, unlimited_cores

if TYPE_CHECKING:
    from textual.pilot import Pilot

    from tui.app import SyscapTop
    from tui.restorer_pane import RestorerPane

PROGRAM = r"""
/* "trap": stops at an int3 (kernel core by SIGTRAP); "wait": blocks in read(0);
 * "spin": loops until stopped. Then finishes and exits with status 7. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The pane's memory panel shows this: longer than the panel, so it never reaches the data
 * after it (glibc's, with cache sizes taken from the CPU). */
char message[512] = "syscap restorer pane";
volatile long counter;

__attribute__((noinline)) long work(long n)
{
	long s = 0;
	for (long i = 0; i < n; i++)
		s += i * 3;
	return s;
}

int main(int argc, char **argv)
{
	char buf[16];
	setvbuf(stdout, NULL, _IONBF, 0);
	counter = work(10);
	printf("before: %ld\n", counter);
	if (argc > 1 && !strcmp(argv[1], "trap"))
		__asm__ volatile("int3");
	if (argc > 1 && !strcmp(argv[1], "wait")) {
		printf("waiting\n");
		printf("read %zd\n", read(0, buf, sizeof buf));
	}
	if (argc > 1 && !strcmp(argv[1], "spin"))
		for (;;)
			counter++;
	counter += work(20);
	printf("after: %ld\n", counter);
	return 7;
}
"""
ADDR_NO_RANDOMIZE = 0x0040000
MASKED_PID = 4242


def build_program() -> Path:
    """Compile the demo into a new /tmp/syscap-pane-XXXXXXXX/pane (the caller removes it)."""
    if shutil.which("gcc") is None:
        raise RuntimeError("gcc is needed to build the demo program: apt-get install gcc")
    out = Path(tempfile.mkdtemp(prefix="syscap-pane-", dir="/tmp"))
    (out / "pane.c").write_text(PROGRAM)
    subprocess.run(
        ["gcc", "-O1", "-static", "-fno-omit-frame-pointer", "-fno-stack-protector",
         "-o", out / "pane", out / "pane.c"],
        check=True,
    )  # fmt: skip
    return out / "pane"


def _no_aslr_with_cores() -> None:
    unlimited_cores()
    ptrace.personality(ptrace.personality(0xFFFFFFFF) | ADDR_NO_RANDOMIZE)


def trap_core(program: Path) -> Path:
    """A kernel core of `program` at its int3, in <its directory>/cores.

    Needs core_pattern to write a plain file: set to "core" for the run if it pipes
    elsewhere or names a directory, and put back.
    """
    cwd = program.parent / "cores"
    cwd.mkdir(exist_ok=True)
    with cores_in_cwd() as old:
        p = subprocess.run([program, "trap"], cwd=cwd, env={}, preexec_fn=_no_aslr_with_cores,
                           capture_output=True, check=False)  # fmt: skip
    if p.returncode != -signal.SIGTRAP:
        raise RuntimeError(f"the demo ended with {p.returncode}, not by SIGTRAP")
    cores = sorted(cwd.glob("core*"))
    if not cores:
        raise RuntimeError(f"no core written in {cwd} (core_pattern {old!r})")
    return cores[0]


def symbol_address(program: Path, name: str) -> int:
    nm = subprocess.run(["nm", program], capture_output=True, text=True, check=True).stdout
    return next(int(line.split()[0], 16) for line in nm.splitlines() if line.endswith(f" {name}"))


def demo_app(
    core: Path, message_addr: int
) -> tuple[SyscapTop, Callable[[Pilot[None]], Awaitable[None]]]:
    """syscap top and the steps to the pictured pane: open `core`, a step, a checkpoint,
    memory at `message`; the PID masked."""
    from tests.tui.synthetic import TABLE, SyntheticSource, synthetic_user
    from tui.app import SyscapTop, TopOptions
    from tui.panels import HostInfo
    from tui.restorer_pane import RestorerPane

    options = TopOptions(threaded=False, host=HostInfo("demo", "6.1.0-28-cloud-amd64"),
                         syscall_table=TABLE, user_of=synthetic_user,
                         cpu_meter=lambda: 1.4)  # fmt: skip
    app = SyscapTop(SyntheticSource(n=5), options)

    async def before(pilot: Pilot[None]) -> None:
        pane = RestorerPane(core=str(core))
        await app.push_screen(pane)
        await settle(pilot, pane)
        for key in ("s", "t"):
            await press(pilot, pane, key)
        await press(pilot, pane, "m", *f"{message_addr:#x}", "enter")
        if pane.state is None or pane.error is not None:
            raise RuntimeError(f"the demo core did not restore: {pane.error}")
        pane.show(dataclasses.replace(pane.state, pid=MASKED_PID))
        await pilot.pause()

    return app, before


async def render(core: Path, message_addr: int, size: tuple[int, int] = (120, 40)) -> str:
    app, before = demo_app(core, message_addr)
    async with app.run_test(size=size) as pilot:
        await before(pilot)
        return app.export_screenshot(title="syscap top")


async def press(pilot: Pilot[None], pane: RestorerPane, *keys: str) -> None:
    """Press keys, then wait until the pane has answered them."""
    await pilot.press(*keys)
    await settle(pilot, pane)


async def settle(pilot: Pilot[None], pane: RestorerPane, timeout: float = 20.0) -> None:
    """Wait until the pane has the answer to its last request."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    await pilot.pause()
    while pane.busy is not None or (pane.state is None and pane.error is None):
        if loop.time() > end:
            raise TimeoutError(f"the restorer pane is still busy: {pane.busy}")
        await pilot.pause(0.02)
    await pilot.pause()


def main(argv: Sequence[str] | None = None) -> int:
    from tests.tui.screenshots import svg_to_png

    parser = argparse.ArgumentParser(prog="python -m tests.tui.restorer_demo", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    args = parser.parse_args(argv)
    program = build_program()
    try:
        core = trap_core(program)
        svg = asyncio.run(render(core, symbol_address(program, "message")))
    finally:
        shutil.rmtree(program.parent, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "restorer-120x40.svg"
    path.write_text(svg)
    svg_to_png(svg, path.with_suffix(".png"))
    print(f"restorer_demo: wrote {path.name}, {path.with_suffix('.png').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
