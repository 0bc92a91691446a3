"""RESULTS.md for `run_all.py`: the machine, targets vs measured vs Pipecat, and why a target is
missed. Each row is (metric, target, flowspec, Pipecat, ratio, met); `met` is None when DESIGN §11
sets no number for it."""

from __future__ import annotations

import re
from typing import Any

from _render import _get

Row = tuple[str, str, str, str, str, bool | None]


def _x(cell: str) -> float | None:
    m = re.match(r"([\d,]+)×", cell)
    return float(m.group(1).replace(",", "")) if m else None


def _n(value: float | None, fmt: str = "{:,.2f}") -> str:
    return "–" if value is None else fmt.format(value)


def _r(ours: float | None, theirs: float | None) -> str:
    if ours is None or not theirs:
        return "–"
    ratio = ours / theirs
    return f"{ratio:.3f}" if ratio < 0.1 else f"{ratio:.2f}"


def audio_summary(rows: list[list[str]] | None) -> dict[str, Any]:
    """Worst (lowest) × real time over the 20 ms rows, per family, for each backend."""
    out: dict[str, Any] = {}
    for family, prefix in (("codec", ("μ-law", "A-law")), ("resample", ("resample",))):
        picked = [r for r in (rows or [])[1:] if r[0].startswith(prefix) and r[1] == "20 ms"]
        for col, name in ((2, "flowspec"), (3, "audioop"), (4, "soxr")):
            values = [v for r in picked if (v := _x(r[col])) is not None]
            out[f"{family}_{name}"] = min(values) if values else None
    return out


def rows(r: dict[str, Any]) -> list[Row]:
    ex = r.get("executor") or {}
    fs, pc = ex.get("flowspec") or {}, ex.get("pipecat") or {}
    default, lean = pc.get("default", {}), pc.get("lean", {})
    out: list[Row] = []
    if fs:
        for mode in ("streamed", "burst"):
            ours = fs["throughput"][mode]["marginal_us_per_hop_K1_to_K20"]
            theirs = _marginal(_get(default, "throughput", mode))
            out.append((f"executor: cost per hop, {mode} (µs)", "≤ 1", _n(ours),
                        f"{_n(theirs)} (lean {_n(_marginal(_get(lean, 'throughput', mode)))})",
                        _r(ours, theirs), ours <= 1.0))
        p50 = fs["latency"]["p50_us"]
        theirs = _get(default, "latency", "p50_us")
        out.append(("executor: K=5 latency p50 (µs)", "≤ 10", _n(p50), _n(theirs),
                    _r(p50, theirs), p50 <= 10))
        intr = fs["interruption"]
        head = intr["queued_at_head"]["observed_at_sink"]["p50_us"]
        sink = intr["queued_at_sink"]["observed_at_sink"]["p50_us"]
        theirs = _get(default, "interruption", "burst_at_head", "push_frame", "observed_at_sink",
                      "p50_us")
        worst = max(head, sink)
        stale = max(v["stale_after_max"] for v in intr.values())
        out.append(("executor: interrupt through 5 hops behind 500 queued frames, p50 (µs)",
                    "≤ 100", f"{_n(head)} at head, {_n(sink)} at sink", _n(theirs),
                    _r(head, theirs), worst <= 100))
        out.append(("executor: stale data frames delivered after the interrupt", "0",
                    f"{stale:g}", "500", "–", stale == 0))
        c = fs["concurrency"].get("M1000")
        pc500 = _get(default, "concurrency", "M500", "achieved_ratio")
        if c is None:
            out.append(("executor: 1,000 sessions × 5 hops × 50 frames/s on one core",
                        "keeps up", "not measured (smoke sizes)", "–", "–", None))
            c = {}
        else:
            out.append(("executor: 1,000 sessions × 5 hops × 50 frames/s on one core",
                        "keeps up", f"{'keeps up' if c.get('kept_up') else 'falls behind'} at "
                        f"{_n(c.get('cpu_util'))} core ({c.get('achieved_ratio', 0):.0%} "
                        f"delivered)", f"M=500 default: {pc500 or 0:.0%} delivered", "–",
                        bool(c.get("kept_up"))))
        kib = c.get("rss_per_idle_session_kib")
        theirs = _get(default, "concurrency", "M500", "rss_per_idle_pipeline_kib")
        out.append(("executor: memory per idle session, RSS at M=1000 (KiB)", "≤ 30",
                    _n(kib, "{:.1f}"), _n(theirs, "{:.0f}"), _r(kib, theirs),
                    None if kib is None else kib <= 30))
        ours, theirs = fs["startup"]["warm_start_ms"], _get(default, "startup", "warm_start_ms")
        out.append(("executor: session start-up, warm (ms)", "–", _n(ours, "{:.3f}"),
                    _n(theirs), _r(ours, theirs), None))
    for v in r.get("validate") or []:
        if v["command"].startswith("flowspec validate"):
            spec = v["command"].split("/")[-1]
            out.append((f"`flowspec validate {spec}`, whole process (s)", "≤ 0.5",
                        _n(v["median_s"], "{:.3f}"), "–", "–", v["median_s"] <= 0.5))
    imp = r.get("imports") or {}
    if imp:
        out.append(("`import flowspec` vs `import pipecat.pipeline.pipeline` (ms)", "–",
                    _n(imp.get("flowspec_ms"), "{:.0f}"), _n(imp.get("pipecat_ms"), "{:.0f}"),
                    _r(imp.get("flowspec_ms"), imp.get("pipecat_ms")), None))
        out.append(("`import flowspec.runtime, flowspec.frames` vs the same + Pipecat's worker, "
                    "runner, frames (ms)", "–", _n(imp.get("flowspec_runtime_ms"), "{:.0f}"),
                    _n(imp.get("pipecat_full_ms"), "{:.0f}"),
                    _r(imp.get("flowspec_runtime_ms"), imp.get("pipecat_full_ms")), None))
    inst = r.get("install") or {}
    if "flowspec" in inst:
        ours, theirs = inst["flowspec"]["mib"], _get(inst, "pipecat", "mib")
        out.append(("installed size, fresh `pip install .` (MiB)", "≤ 120", _n(ours, "{:.0f}"),
                    _n(theirs, "{:.0f}"), _r(ours, theirs), ours <= 120))
    else:
        out.append(("installed size, fresh `pip install .` (MiB)", "≤ 120",
                    inst.get("skipped", "not measured"), "455", "–", None))
    au = audio_summary(r.get("audio"))
    if au.get("codec_flowspec"):
        out.append(("μ-law/A-law, 20 ms chunks, slowest direction (× real time, one core)",
                    "measured", _n(au["codec_flowspec"], "{:,.0f}×"),
                    f"audioop {_n(au['codec_audioop'], '{:,.0f}×')}",
                    _r(au["codec_flowspec"], au["codec_audioop"]), None))
        out.append(("resampling, 20 ms chunks, slowest pair (× real time, one core)", "measured",
                    _n(au["resample_flowspec"], "{:,.0f}×"),
                    f"soxr HQ {_n(au['resample_soxr'], '{:,.0f}×')}",
                    _r(au["resample_flowspec"], au["resample_soxr"]), None))
    rel = r.get("reload") or {}
    if rel.get("rows"):
        medians = {row["sessions"]: row["received_to_sent_ms"]["median"] for row in rel["rows"]}
        cell = ", ".join(f"{ms:.2f} ({n} live session{'s' if n > 1 else ''})"
                         for n, ms in medians.items())
        out.append(("settings patch received → `session.update` at the provider, median (ms)",
                    "≤ 5", cell, "–", "–", max(medians.values()) <= 5))
    else:
        out.append(("settings patch received → `session.update` at the provider, median (ms)",
                    "≤ 5", rel.get("reason", "not measured"), "–", "–", None))
    across = (rel.get("replicas") or {}).get("patch_to_other_replica_ms")
    if across:
        out.append(("PATCH on replica A → `session.update` for a session on replica B, through "
                    "Redis, median / p90 (ms)", "median ≤ 20",
                    f"{across['median']:.2f} / {across['p90']:.2f}", "–", "–",
                    across["median"] <= 20))
    lat = r.get("delta_latency") or {}
    if "added" in lat:
        p99 = lat["added"]["p99_us"] / 1e3
        out.append(("model audio delta received → transport send, p50 / p99 (ms)", "p99 ≤ 0.2",
                    f"{lat['added']['p50_us'] / 1e3:.3f} / {p99:.3f}", "–", "–", p99 <= 0.2))
    ses = r.get("sessions") or {}
    if "levels" in ses:
        best = ses.get("best") or {}
        m, cpu = best.get("M", 0), best.get("server_cpu") or 0
        per_core = f", ≈ {m / cpu:,.0f} per core of server CPU" if cpu else ""
        out.append(("browser sessions through a realtime node that keep up (20 ms frames both "
                    "ways)", "–", f"{m} (server {cpu:.2f} core{per_core})", "–", "–", None))
    return out


def _marginal(tp: dict[str, Any] | None) -> float | None:
    if not tp or "K20" not in tp:
        return None
    return float((tp["K20"]["us_per_frame"] - tp["K1"]["us_per_frame"]) / 19)


def table(rs: list[Row]) -> str:
    lines = ["| metric | target | flowspec | Pipecat 1.14 | ratio | met |",
             "|---|---|---|---|---|---|"]
    for metric, target, ours, theirs, ratio, met in rs:
        mark = "" if met is None else ("yes" if met else "**no**")
        lines.append(f"| {metric} | {target} | {ours} | {theirs} | {ratio} | {mark} |")
    return "\n".join(lines)
