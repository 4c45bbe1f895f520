"""Named filters: saved by top's filter dialog, loaded by --filter in record,
top and exporter."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from capture_lib import filter_spec
from capture_lib.errors import UsageError
from capture_lib.filter_spec import FilterSpec

from .conftest import report_json, syscap

SPEC = FilterSpec(groups=frozenset({"network"}), syscalls=frozenset({"getppid"}),
                  pids=frozenset({42}), exclude_comms=frozenset({"sshd"}), failed_only=True)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    return tmp_path / "syscap" / "filters"


def test_a_spec_survives_its_json() -> None:
    assert FilterSpec.from_json(SPEC.to_json()) == SPEC


def test_saved_by_name_under_xdg_config_home_and_loaded_back(config: Path) -> None:
    path = filter_spec.save("web-1", SPEC)
    assert path == config / "web-1.json"
    assert filter_spec.load("web-1") == SPEC
    assert filter_spec.load(str(path)) == SPEC
    assert filter_spec.saved_names() == ["web-1"]


@pytest.mark.parametrize(("text", "says"), [
    ("{", "not JSON"),
    ("[]", "not a JSON object"),
    ('{"version": 2}', "version 2"),
    ('{"version": 1, "colour": "red"}', "unknown field 'colour'"),
    ('{"version": 1, "pids": [0]}', "'pids' must be a list of process ids"),
    ('{"version": 1, "pids": [true]}', "'pids' must be a list of process ids"),
    ('{"version": 1, "comms": ["a-name-longer-than-15"]}', "longer than the kernel's 15 bytes"),
    ('{"version": 1, "groups": ["disk"]}', "unknown syscall group 'disk'"),
    ('{"version": 1, "failed_only": "yes"}', "'failed_only' must be true or false"),
])
def test_a_bad_filter_file_is_one_clear_error(config: Path, text: str, says: str) -> None:
    config.mkdir(parents=True)
    (config / "bad.json").write_text(text)
    with pytest.raises(UsageError, match="is not a syscap filter: ") as e:
        filter_spec.load("bad")
    assert says in str(e.value) and "\n" not in str(e.value)


def test_unknown_names_list_the_saved_ones(config: Path) -> None:
    filter_spec.save("one", FilterSpec())
    with pytest.raises(UsageError, match=r"no saved filter of that name \(saved: one\)"):
        filter_spec.load("two")
    with pytest.raises(UsageError, match=r"filter name '\.\./x'"):
        filter_spec.save("../x", FilterSpec())


def test_command_line_options_say_the_same_filter() -> None:
    spec = FilterSpec(groups=frozenset({"file"}), syscalls=frozenset({"getppid"}),
                      pids=frozenset({7}), comms=frozenset({"nginx"}), failed_only=True)
    assert spec.options() == ["-e", "%file,getppid", "-p", "7", "--comm", "nginx", "--failed"]
    assert FilterSpec(exclude_pids=frozenset({1})).options() is None  # no option for it


def test_record_refuses_filter_with_other_filter_options(config: Path, tmp_path: Path) -> None:
    filter_spec.save("f", FilterSpec())
    p = syscap("record", "--filter", "f", "-e", "read", "-a", "-o", str(tmp_path / "t"),
               check=False, env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path)})
    assert p.returncode == 2 and p.stderr.count("\n") == 1
    assert "cannot be combined" in p.stderr


@pytest.mark.usefixtures("bpf_ready")
def test_record_with_a_saved_filter_records_exactly_that_filter(
        config: Path, tmp_path: Path, workload: Path) -> None:
    filter_spec.save("tuned", FilterSpec(syscalls=frozenset({"getppid"}),
                                         comms=frozenset({workload.name})))
    trace = tmp_path / "t.trace"
    args = ("1000", "50", "20", "30", "200", "300")
    syscap("record", "--filter", "tuned", "-o", str(trace), "--", str(workload), *args,
           env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path)})
    rep = report_json(trace)
    assert {name: s["count"] for name, s in rep["syscalls"].items()} == {"getppid": 1500}
    assert json.loads((config / "tuned.json").read_text())["comms"] == [workload.name]


def test_the_host_table_turns_only_unknown_names_into_value_errors() -> None:
    """An unknown syscall (capture_lib's UsageError) is the ValueError to_filter
    reports; a bug in the lookup keeps its own type and traceback."""
    with pytest.raises(ValueError, match=r"unknown syscall 'opneat'.*openat"):
        filter_spec.host_table().number("opneat")

    def bug(name: str) -> int:
        raise TypeError(name)

    with pytest.raises(TypeError):
        filter_spec.ModuleTable(filter_spec.host_table().groups, bug).number("openat")
