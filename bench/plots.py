"""PNG plots of the results (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.tracers import BASELINE


def why_not() -> str | None:
    """None when plots can be drawn, else why not (one line)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "plots skipped: matplotlib is not installed (.venv/bin/pip install matplotlib)"
    return None


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _footer(fig: Any, result: dict[str, Any]) -> None:
    m = result["machine"]
    quick = " (quick run)" if result.get("quick") else ""
    noise = (f"; other work {m['other_cpus']:.2f} CPUs" if "other_cpus" in m else "")
    fig.text(0.01, 0.01, f"{m['host']}, {m['cpus']} CPUs, kernel {m['kernel']}, "
             f"{m['date']}{noise}{quick}", fontsize=7, color="0.4")


def _save(plt: Any, fig: Any, result: dict[str, Any], path: Path) -> Path:
    """The figure, with the machine's footer, as a PNG at path; the figure is closed."""
    _footer(fig, result)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def nginx_concurrency(result: dict[str, Any], path: Path) -> Path | None:
    """Loss % against concurrency, one line per tracer (with its interval)."""
    rows = [r for r in result["rows"] if r["key"] != BASELINE and r.get("concurrency")]
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10.5, 5))
    for r in rows:
        xs, ys, lo, hi = [], [], [], []
        for c in result["levels"]:
            lv = r["concurrency"].get(str(c), {}).get("loss_pct")
            if lv:
                xs.append(c)
                ys.append(lv["median"])
                lo.append(lv["median"] - lv["interval"][0])
                hi.append(lv["interval"][1] - lv["median"])
        if xs:
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=r["name"])
    ax.set_xscale("log")
    ax.set_xticks(result["levels"], [str(c) for c in result["levels"]])
    ax.axhline(0, color="0.5", linewidth=0.8)
    ax.set_xlabel("ab concurrency")
    ax.set_ylabel("requests/s lost vs. no tracing (%)")
    ax.set_title("nginx + ab on loopback: cost of each tracer by concurrency")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(True, alpha=0.3)
    return _save(plt, fig, result, path)


def throughput(result: dict[str, Any], path: Path) -> Path | None:
    """Zero-drop recorded rate and consumer CPU against ring size."""
    rows = [r for r in result["rows"] if r.get("best")]
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    xs = [r["ring_mib"] for r in rows]
    rate = [(r.get("recorded") or {}).get("median", r["best"]["recorded"]) / 1e6 for r in rows]
    lower = [r["bound"] == "generator" for r in rows]
    lo = [r - (x.get("recorded") or {}).get("interval", [r * 1e6])[0] / 1e6
          for r, x in zip(rate, rows, strict=True)]
    hi = [(x.get("recorded") or {}).get("interval", [0, r * 1e6])[1] / 1e6 - r
          for r, x in zip(rate, rows, strict=True)]
    ax.errorbar(xs, rate, yerr=[lo, hi], marker="o", capsize=3, color="tab:blue",
                label="zero-drop syscalls/s (M)")
    lb = [(x, y) for x, y, b in zip(xs, rate, lower, strict=True) if b]
    if lb:
        ax.plot([x for x, _ in lb], [y for _, y in lb], linestyle="none", marker="o",
                markersize=11, markerfacecolor="none", color="tab:blue",
                label="no drops even at the generator's full speed (lower bound)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel("ring size per CPU (MiB)")
    ax.set_ylabel("syscalls/s recorded with zero drops (millions)", color="tab:blue")
    ax.set_ylim(bottom=0)
    ax2 = ax.twinx()
    cpu = [(r.get("consumer_cpu_pct") or {}).get("median", r["best"]["consumer_cpu_pct"])
           for r in rows]
    ax2.plot(xs, cpu, marker="s", color="tab:red",
             linestyle="--", label="consumer CPU (%)")
    ax2.set_ylabel("consumer CPU (% of one CPU)", color="tab:red")
    ax2.set_ylim(bottom=0)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=8, loc="lower left")
    ax.set_title(f"syscap record -a: zero-drop rate by ring size ({result['trial_s']} s trials)")
    ax.grid(True, alpha=0.3)
    return _save(plt, fig, result, path)


def micro(result: dict[str, Any], path: Path) -> Path | None:
    """Added ns per getppid over the baseline, one bar per tracer (log scale)."""
    rows = [r for r in result["rows"] if r.get("added_ns")]
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    names = [r["name"] for r in rows]
    med = [max(r["added_ns"]["median"], 0.1) for r in rows]
    err = [[max(m - r["added_ns"]["interval"][0], 0) for m, r in zip(med, rows, strict=True)],
           [max(r["added_ns"]["interval"][1] - m, 0) for m, r in zip(med, rows, strict=True)]]
    ax.barh(names, med, xerr=err, capsize=3,
            color=["tab:green" if r["key"].startswith("syscap") else "tab:gray" for r in rows])
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("ns added per getppid() over no tracing (log scale)")
    ax.set_title("micro: cost per syscall")
    ax.grid(True, axis="x", alpha=0.3)
    return _save(plt, fig, result, path)
