"""`pip install .` into a fresh virtualenv gives a working `syscap` and nothing else.

The development venv is an editable install next to bench/ and tests/, so it cannot show
what a user gets. This builds the checkout's wheel in an empty venv (no system site-packages,
dependencies from the package index), runs the installed command from outside the checkout
and reads the wheel's RECORD. It needs capture_lib's cffi extension built (./setup.sh).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.sshd import Sshd
from tests.conftest import ROOT

TRACE = ROOT / "tests" / "capture_lib" / "c" / "corpus" / "trace" / "true.trace"
# the static agents --ssh sends, as ./setup.sh builds them
AGENTS = {arch: ROOT / "capture_lib" / "agents" / f"syscap-agent-{arch}"
          for arch in ("x86_64", "aarch64")}  # fmt: skip
DEV_ONLY_TUI = ("synthetic.py", "screenshots.py", "restorer_demo.py")


@dataclass(frozen=True, slots=True)
class Installed:
    venv: Path
    site: Path
    cwd: Path  # outside the checkout, so nothing there shadows the installed packages

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv / "bin" / "syscap"), *args], cwd=self.cwd, capture_output=True,
            text=True, timeout=60, check=False,
        )  # fmt: skip


def readme_commands() -> list[str]:
    """The subcommands the README's Commands section documents, each once (a
    command may have more than one usage line there)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```", 2)[1]
    return list(dict.fromkeys(re.findall(r"^syscap (\w+)", block, flags=re.M)))


def shipped_packages() -> list[str]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        packages: list[str] = tomllib.load(f)["tool"]["setuptools"]["packages"]
    return packages


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    if not list((ROOT / "capture_lib").glob("_native*.so")):
        pytest.fail("capture_lib's cffi extension is not built: run ./setup.sh")
    missing = [str(a) for a in AGENTS.values() if not a.exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not built: run ./setup.sh")
    work = tmp_path_factory.mktemp("install")
    # A copy of what the build reads, so the build's own build/ and egg-info land there
    # and not in the checkout another test run may be using.
    src = work / "src"
    src.mkdir()
    shutil.copy2(ROOT / "pyproject.toml", src)
    for pkg in shipped_packages():
        shutil.copytree(ROOT / pkg, src / pkg,
                        ignore=shutil.ignore_patterns("build", "__pycache__"))
    venv = work / "venv"
    # no --system-site-packages: every dependency must come from the package's metadata
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
         str(src)], capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stdout + pip.stderr
    sites = list(venv.glob("lib/python3*/site-packages"))
    assert len(sites) == 1, sites
    cwd = work / "elsewhere"
    cwd.mkdir()
    yield Installed(venv, sites[0], cwd)


def test_the_venv_sees_only_its_own_packages(installed: Installed) -> None:
    p = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c",
         "import capture_lib, tui, restorer; "
         "print(capture_lib.__file__, tui.__file__, restorer.__file__, sep='\\n')"],
        cwd=installed.cwd, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    for line in p.stdout.splitlines():
        assert Path(line).is_relative_to(installed.site), line


def test_help_lists_every_command_the_readme_documents(installed: Installed) -> None:
    commands = readme_commands()
    assert {"top", "record", "report", "info", "restore", "export"} <= set(commands)
    p = installed.run("--help")
    assert p.returncode == 0, p.stderr
    listed = re.findall(r"^    (\w+)  ", p.stdout, flags=re.M)
    assert sorted(listed) == sorted(commands), p.stdout
    for name in commands:
        sub = installed.run(name, "--help")
        assert sub.returncode == 0, f"syscap {name} --help: {sub.stderr}"
        assert sub.stdout.startswith(f"usage: syscap {name}"), sub.stdout


def test_info_runs(installed: Installed) -> None:
    p = installed.run("info")
    assert p.returncode == 0, p.stderr
    assert re.search(r"^backend bpf: ", p.stdout, flags=re.M), p.stdout
    assert re.search(r"^backend kmod: ", p.stdout, flags=re.M), p.stdout


def test_the_installed_restorer_finds_its_error_root(installed: Installed) -> None:
    """The restorer imports capture_lib.errors (RestoreError's root, SyscapError): the
    wheel has it, and a bad core is still one line, status 2."""
    p = installed.run("restore", str(installed.cwd / "no.core"))
    assert p.returncode == 2 and p.stdout == "", p.stderr
    assert len(p.stderr.splitlines()) == 1, p.stderr
    assert p.stderr.startswith(f"syscap restore: cannot open core {installed.cwd}"), p.stderr


def test_report_matches_the_checkout(installed: Installed) -> None:
    for args in ((str(TRACE),), (str(TRACE), "--json")):
        p = installed.run("report", *args)
        assert p.returncode == 0, p.stderr
        here = subprocess.run(
            [sys.executable, "-m", "capture_lib.cli", "report", *args], cwd=ROOT,
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        assert p.stdout == here.stdout
        assert "execve" in p.stdout


def test_the_ui_stylesheet_is_installed_and_parses(installed: Installed) -> None:
    code = (
        "from pathlib import Path\n"
        "from textual.app import App\n"
        "from textual.css.stylesheet import Stylesheet\n"
        "from tui.app import SyscapTop\n"
        "css = Path(SyscapTop.CSS_PATH)\n"
        "sheet = Stylesheet(variables=App().get_css_variables())  # the theme's $variables\n"
        "sheet.read(css)\n"
        "sheet.parse()\n"
        "assert sheet.rules\n"
        "print(css)\n"
    )
    p = subprocess.run([str(installed.venv / "bin" / "python"), "-c", code], cwd=installed.cwd,
                       capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert Path(p.stdout.strip()).is_relative_to(installed.site / "tui")


def test_the_wheel_holds_the_program_and_no_development_tools(installed: Installed) -> None:
    records = list(installed.site.glob("syscap-*.dist-info/RECORD"))
    assert len(records) == 1, records
    files = [line.rsplit(",", 2)[0] for line in records[0].read_text().splitlines() if line]
    top = {f.split("/", 1)[0] for f in files if not f.startswith("..")}
    assert top == {"capture_lib", "tui", "restorer", records[0].parent.name}, sorted(top)
    assert not (installed.site / "bench").exists()
    assert not (installed.site / "tests").exists()
    for name in DEV_ONLY_TUI:
        assert f"tui/{name}" not in files
        assert not (installed.site / "tui" / name).exists(), name
    assert any(re.fullmatch(r"capture_lib/_native\..*\.so", f) for f in files), files
    assert "tui/top.tcss" in files
    agents = sorted(f for f in files if f.startswith("capture_lib/agents/"))
    assert agents == [f"capture_lib/agents/syscap-agent-{a}" for a in sorted(AGENTS)], agents


def test_ssh_sends_the_agents_the_install_carries(installed: Installed) -> None:
    """--ssh finds the agent for either architecture in the installed package (the same
    bytes ./setup.sh built), not in a checkout."""
    p = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c",
         "from capture_lib.ssh import agent_path\n"
         "for arch in ('x86_64', 'aarch64'): print(arch, agent_path(arch))"],
        cwd=installed.cwd, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    found = dict(line.split(" ", 1) for line in p.stdout.splitlines())
    assert sorted(found) == sorted(AGENTS), p.stdout
    for arch, path in found.items():
        assert Path(path).is_relative_to(installed.site / "capture_lib"), path
        assert Path(path).read_bytes() == AGENTS[arch].read_bytes(), arch


def test_record_over_ssh_from_the_install_sends_its_agent(installed: Installed, sshd: Sshd,
                                                          tmp_path: Path) -> None:  # fmt: skip
    """The installed syscap's `record --ssh` against a real sshd: its own agent reaches
    the box, runs there and the trace it wrote is complete."""
    trace = tmp_path / "box.trace"
    options = [w for opt in sshd.client_options for w in ("--ssh-option", opt)]
    p = installed.run("record", "--ssh", sshd.host, *options, "--duration", "0.5",
                      "-o", str(trace))  # fmt: skip
    assert p.returncode == 0, p.stderr
    arch = os.uname().machine
    copy = sshd.box_tmp / f"syscap-{os.geteuid()}" / f"syscap-agent-{arch}"
    assert copy.read_bytes() == AGENTS[arch].read_bytes()
    report = installed.run("report", str(trace), "--json")
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["complete"]
