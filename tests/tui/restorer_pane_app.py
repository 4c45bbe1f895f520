"""syscap top with the restorer pane open on a core, for tests in a real terminal (tmux).

    python -m tests.tui.restorer_pane_app CORE

The live view behind the pane is fed by the synthetic source (no capture backend needed);
the pane, its session and the restored process are the real ones.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tests.tui.synthetic import TABLE, SyntheticSource, synthetic_user
from tui.app import SyscapTop, TopOptions
from tui.panels import HostInfo
from tui.restorer_pane import RestorerPane


class PaneTop(SyscapTop):
    def __init__(self, core: str) -> None:
        options = TopOptions(threaded=False, host=HostInfo("test", "6.1.0-28-cloud-amd64"),
                             syscall_table=TABLE, user_of=synthetic_user,
                             cpu_meter=lambda: 1.0)  # fmt: skip
        super().__init__(SyntheticSource(n=5), options)
        self.core = core

    def on_mount(self) -> None:
        super().on_mount()
        self.push_screen(RestorerPane(core=self.core))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m tests.tui.restorer_pane_app CORE", file=sys.stderr)
        return 2
    PaneTop(args[0]).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
