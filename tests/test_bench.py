"""The benchmarks' own parts: synthetic runs are valid and distinct, the growth exponent is a
log-log slope, and the plot is well-formed SVG."""

from __future__ import annotations

import importlib
import sys
import xml.etree.ElementTree as ET

import pytest

from skillforge.importers import parse_line
from tests.conftest import CORPORA, REPO_ROOT


@pytest.fixture(scope="module")
def bench(request):
    if not (CORPORA / "tau-bench-airline").exists():
        pytest.skip(f"shared corpora missing: {CORPORA}")
    sys.path.insert(0, str(REPO_ROOT / "bench"))
    request.addfinalizer(lambda: sys.path.remove(str(REPO_ROOT / "bench")))
    return {name: importlib.import_module(name) for name in ("synth", "cycle_scaling", "svgplot")}


def test_synthetic_runs_parse_are_distinct_and_keep_realistic_sizes(bench):
    synth = bench["synth"]
    produced = list(synth.lines(30, start=synth.POOL - 10))  # both sides of the pool's end
    runs = [parse_line(line.rstrip("\n").encode()) for line, _ in produced]
    assert len({r.id for r in runs}) == 30 and len({r.task for r in runs}) > 20
    assert [len(r.tool_calls) for r in runs] == [calls for _, calls in produced]
    mean = sum(len(line) for line, _ in produced) / len(produced)
    assert 2_000 < mean < 100_000  # the corpora's runs are 14-18 kB on average


def test_growth_exponent_is_the_log_log_slope(bench):
    exponent = bench["cycle_scaling"].growth_exponent
    assert exponent([(1e3, 2.0), (1e4, 200.0), (1e5, 20000.0)]) == pytest.approx(2.0)
    assert exponent([(1e3, 1.0), (1e4, 10.0)]) == pytest.approx(1.0)


def test_the_plot_is_svg_with_every_panel(bench):
    sizes = [
        {"runs": n, "seconds": n / 500, "load_seconds": n / 2000, "evolve_seconds": n / 1000,
         "peak_rss_mib": 100 + n / 100}
        for n in (500, 1000, 2000)
    ]  # fmt: skip
    results = {
        "cycle": {"sizes": sizes, "growth_exponent": 1.0},
        "intake": {
            "throughput": {"ratio_to_baseline": 0.3, "trajectories_per_s": 300,
                           "baseline_trajectories_per_s": 1000},
            "latency": {"idle": {"median_ms": 2, "p95_ms": 9},
                        "during_cycle": {"median_ms": 30, "p95_ms": 90}},
        },
    }  # fmt: skip
    root = ET.fromstring(bench["svgplot"].render(results))
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert any("exponent 1.00" in t for t in texts) and any("ratio 0.30" in t for t in texts)
    assert len(list(root.iter("{http://www.w3.org/2000/svg}polyline"))) == 4


def test_llm_path_counts_requests_per_moved_skill_and_none_when_nothing_is_new(bench, tmp_path):
    llm_path = importlib.import_module("llm_path")
    from tests.llm_server import LLMServer

    with LLMServer(llm_path.Responder()) as server:
        runs = llm_path.Bench(tmp_path, server, reviewed=False)
        try:
            runs.add(llm_path.corpus_runs())
            first = runs.cycle("corpus")
            idle = runs.cycle("nothing new")
        finally:
            runs.close()
    assert first["requests"] == len(server.requests) > 0 and first["budget_refusals"] == 0
    assert first["moved"] == first["changes"] > 0 and first["asked_unmoved"] == []
    assert first["input_tokens"] > 0 and first["tokens_per_moved"] > 0
    assert idle["status"] == "nothing-new" and idle["requests"] == idle["input_tokens"] == 0


def test_the_cycle_bench_reports_new_runs_on_a_history_beside_a_baseline(bench, monkeypatch):
    cycle_scaling = bench["cycle_scaling"]
    monkeypatch.setattr(cycle_scaling, "INCREMENT", 40)
    result = cycle_scaling.run(sizes=[80], say=lambda _: None)
    [point], inc, base = result["sizes"], result["incremental"], result["baseline"]
    assert point["runs"] == 80 and point["new"] == 80 and point["peak_rss_mib"] > 0
    assert (inc["base"], inc["added"], inc["runs"], inc["new"]) == (80, 40, 120, 40)
    assert base["runs"] == base["new"] == 40  # measured, since 40 is not one of the sizes
    assert result["incremental_ratio"] == round(inc["seconds"] / base["seconds"], 3)
    assert result["targets"] == {}  # issue 13's targets are about 100k runs
    root = ET.fromstring(bench["svgplot"].render({"cycle": result}))
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "40 new" in texts and any("new/empty" in t for t in texts)
