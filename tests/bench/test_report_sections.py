"""A contributed section reaches the report, the console tables and results.json through one registry line."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

import bench.__main__ as bench_main
from bench import report
from bench.machine import describe

REPO = Path(__file__).resolve().parents[2]


def demo_section(full: bool, log) -> report.Section:
    log("  demo measured")
    table = report.markdown_table(["detector", "precision"], [["demo", "1.00" if full else "0.50"]])
    return report.Section(key="demo", title="Demo detection", intro="What the demo measures.", tables=[table],
                          summary=["- Demo: precision 0.50."], notes=["demo: one note"],
                          data=[{"detector": "demo", "precision": 0.5}])


@pytest.fixture
def demo_module(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("bench_demo_section")
    module.section = demo_section  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bench_demo_section", module)
    monkeypatch.setitem(bench_main.CONTRIBUTED, "demo", "bench_demo_section")


def test_a_registered_module_runs_as_a_section_and_lands_in_every_output(demo_module, tmp_path: Path, capsys):
    # Contributed sections follow speed in CONTRIBUTED order; the demo was registered last.
    names = bench_main.section_names()
    assert names.index("demo") == names.index("speed") + len(bench_main.CONTRIBUTED)
    assert bench_main.main(["--sections", "demo", "--out", str(tmp_path)]) == 0
    assert "demo measured" in capsys.readouterr().out
    text = (tmp_path / report.REPORT_NAME).read_text()
    assert "## Demo detection\n\nWhat the demo measures.\n\n| detector | precision |" in text
    assert "| demo | 0.50 |" in text
    summary = text.split("## Summary", 1)[1].split("## Machine", 1)[0]
    assert "- Demo: precision 0.50." in summary
    assert "- demo: one note" in text.split("## Not run or replaced", 1)[1]
    saved = json.loads((tmp_path / report.RESULTS_NAME).read_text())
    assert saved["sections"]["demo"] == [{"detector": "demo", "precision": 0.5}]
    assert "demo" in saved["section_seconds"]


def test_a_failing_section_is_a_note_and_a_failed_exit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    module = types.ModuleType("bench_broken_section")

    def broken(full: bool, log) -> report.Section:
        raise RuntimeError("no clip")

    module.section = broken  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bench_broken_section", module)
    monkeypatch.setitem(bench_main.CONTRIBUTED, "broken", "bench_broken_section")
    assert bench_main.main(["--sections", "broken", "--out", str(tmp_path)]) == 1
    assert "section broken failed: RuntimeError: no clip" in (tmp_path / report.REPORT_NAME).read_text()


def test_sections_keep_their_order_in_the_console_tables():
    results = report.BenchResults(mode="quick", command="test", machine=describe(REPO))
    results.add(demo_section(False, lambda _: None))
    results.add(report.Section(key="second", title="Second", tables=["| a |\n|---|\n| b |"]))
    console = report.console_tables(results)
    assert console.index("Demo detection:") < console.index("Second:")
    assert results.notes == ["demo: one note"]


def test_the_machine_says_which_dtype_rifes_convolutions_ran_in(monkeypatch: pytest.MonkeyPatch):
    """A bfloat16 run's "% of SGEMM" is against a float32 SGEMM: the report says so, and the machine
    table names the dtype the engine's fast path picked here (or the one the environment forced)."""
    from interpolation.models import rife
    from interpolation.models.rife import PRECISION_ENV

    monkeypatch.setattr(rife, "runs_bfloat16", lambda: True)  # the report's wording, on any CPU
    monkeypatch.setenv(PRECISION_ENV, "fp32")
    machine = describe(REPO)
    assert machine.rife_convolutions == "float32"
    assert report.sgemm_qualifier(machine) == report.SGEMM_QUALIFIER
    monkeypatch.setenv(PRECISION_ENV, "bf16")
    machine = describe(REPO)
    assert machine.rife_convolutions == "bfloat16"
    assert report.sgemm_qualifier(machine) == (report.SGEMM_QUALIFIER
                                               + "; RIFE's convolutions in bfloat16, the SGEMM in float32")
