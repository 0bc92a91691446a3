"""Markdown of the executor benchmark: flowspec next to Pipecat, every rep of both sides.

Each measurement was made `reps` times on each side, interleaved; the tables show medians, the
headline one also the range (min–max) and the ratio of the reps measured side by side. Every
number comes from the results (figures, and the shapes the run recorded in `params`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from _stats import cell, get, median, number, paired, ratio_cell, series
from _targets import HOP_US, INTERRUPT_US, K5_P50_US, STALE_FRAMES

Reps = list[Any]
Metric = Callable[[Any], Any]


def _marginal(tp: Any) -> float | None:
    if not isinstance(tp, dict):
        return None
    if "marginal_us_per_hop_K1_to_K20" in tp:
        return float(tp["marginal_us_per_hop_K1_to_K20"])
    ks = sorted(int(k[1:]) for k in tp if k.startswith("K") and k[1:].isdigit())
    if len(ks) < 2:
        return None
    lo, hi = ks[0], ks[-1]
    return float((tp[f"K{hi}"]["us_per_frame"] - tp[f"K{lo}"]["us_per_frame"]) / (hi - lo))


def _stale_pipecat(rep: Any) -> float | None:
    values = []
    for variant in ("queued_at_sink", "burst_at_head"):
        m = get(rep, variant, "push_frame") or {}
        for key in ("data_frames_reaching_sink_after_interrupt_max",
                    "data_frames_reaching_sink_after_interrupt_median"):
            if key in m:
                values.append(float(m[key]))
    return max(values) if values else None


def _stale_flowspec(rep: Any) -> float | None:
    values = [v.get("stale_after_max") for v in (rep or {}).values() if isinstance(v, dict)]
    found = [float(v) for v in values if isinstance(v, int | float)]
    return max(found) if found else None


def top_m(ex: dict[str, Any]) -> int | None:
    ms = get(ex, "params", "ms") or []
    return max(ms) if ms else None


def metrics(ex: dict[str, Any]) -> dict[str, tuple[str, Metric, Metric]]:
    """name → (key of the measurement, flowspec's figure of a rep, Pipecat's of the same)."""
    m = top_m(ex)
    conc = f"concurrency_M{m}"
    return {
        "hop_streamed": ("throughput_streamed",
                         lambda r: get(r, "marginal_us_per_hop_K1_to_K20"), _marginal),
        "hop_burst": ("throughput_burst",
                      lambda r: get(r, "marginal_us_per_hop_K1_to_K20"), _marginal),
        "latency_p50": ("latency", lambda r: get(r, "p50_us"), lambda r: get(r, "p50_us")),
        "latency_p99": ("latency", lambda r: get(r, "p99_us"), lambda r: get(r, "p99_us")),
        "interrupt_sink": (
            "interruption", lambda r: get(r, "queued_at_sink", "observed_at_sink", "p50_us"),
            lambda r: get(r, "queued_at_sink", "push_frame", "observed_at_sink", "p50_us")),
        "interrupt_head": (
            "interruption", lambda r: get(r, "queued_at_head", "observed_at_sink", "p50_us"),
            lambda r: get(r, "burst_at_head", "push_frame", "observed_at_sink", "p50_us")),
        "stale": ("interruption", _stale_flowspec, _stale_pipecat),
        "many_cpu": (conc, lambda r: get(r, "cpu_util"), lambda r: get(r, "cpu_util")),
        "many_achieved": (conc, lambda r: get(r, "achieved_ratio"),
                          lambda r: get(r, "achieved_ratio")),
        "idle_kib": (conc, lambda r: get(r, "rss_per_idle_session_kib"),
                     lambda r: get(r, "rss_per_idle_pipeline_kib")),
        "startup_ms": ("startup", lambda r: get(r, "warm_start_ms"),
                       lambda r: get(r, "warm_start_ms")),
    }


def values(ex: dict[str, Any], name: str, side: str) -> list[float]:
    """Every rep's figure for metric `name`: side is "flowspec", "lean" or "default"."""
    key, ours, theirs = metrics(ex)[name]
    if side == "flowspec":
        reps = get(ex, "flowspec", key) or []
        return series([ours(rep) for rep in reps])
    reps = get(ex, "pipecat", side, key) or []
    return series([theirs(rep) for rep in reps])


def _med(reps: Reps | None) -> Any:
    """Element-wise median of same-shaped reps (the first rep's shape; booleans: majority)."""
    if not reps:
        return None
    first = reps[0]
    if isinstance(first, dict):
        return {k: _med([r[k] for r in reps if isinstance(r, dict) and k in r]) for k in first}
    if isinstance(first, bool):
        return sum(bool(x) for x in reps) * 2 > len(reps)
    if isinstance(first, int | float):
        return median([float(x) for x in reps])
    return first


def _f(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def _r(ours: float | None, theirs: float | None) -> str:
    if ours is None or not theirs:
        return "–"
    return ratio_cell([ours / theirs])


def render(ex: dict[str, Any]) -> str:
    p, env = ex.get("params") or {}, ex.get("env") or {}
    k, queued, m = p.get("k"), p.get("queued"), top_m(ex)
    fps = round(1e3 / p["frame_ms"]) if p.get("frame_ms") else None
    reps = ex.get("reps")
    pc = ex.get("pipecat") or {}
    version = ex.get("pipecat_version")
    peer = (f"Pipecat {version}, measured in the same run, interleaved with flowspec"
            if pc else "Pipecat: not measured in this run")
    L: list[str] = ["## Executor (`tools/bench/executor.py`): idle chains of pass-through nodes",
                    ""]
    L.append(f"Run {env.get('date')}, Python {env.get('python')}, {env.get('cpus')} CPUs "
             f"(shared; load average {_f(env.get('load_1min'), 2)} at the end). Each figure is "
             f"the median of {reps} fresh processes per side ({peer}); the headline table also "
             "gives the range over the reps, and ratios are flowspec / Pipecat over the reps "
             "measured side by side (below one: flowspec is faster or smaller). Same shapes as "
             f"`../shared/peers`: a source, K pass-through nodes and a counting sink, "
             f"{p.get('frame_bytes')}-byte audio frames; hops are the K pass-throughs and the "
             "sink. These chains do no work per frame: they measure the executor alone, not a "
             "call (the sessions section measures calls).")
    L.append("")

    def row(label: str, name: str, target: str = "", met: bool | None = None,
            fmt: str = "{:,.2f}") -> str:
        fs, lean, default = (values(ex, name, side) for side in ("flowspec", "lean", "default"))
        mark = "" if met is None else ("yes" if met else "**no**")
        return (f"| {label} | {cell(fs, fmt)} | {cell(lean, fmt)} | "
                f"{ratio_cell(paired(fs, lean))} | {cell(default, fmt)} | "
                f"{ratio_cell(paired(fs, default))} | {target} | {mark} |")

    def met(name: str, target: Any) -> bool | None:
        return target.met(median(values(ex, name, "flowspec")))

    L += ["| metric | flowspec | Pipecat lean | ratio | Pipecat default | ratio | target | met |",
          "|---|---|---|---|---|---|---|---|"]
    L.append(row("marginal cost per hop, streamed (µs)", "hop_streamed", HOP_US.text,
                 met("hop_streamed", HOP_US)))
    L.append(row("marginal cost per hop, burst (µs)", "hop_burst", HOP_US.text,
                 met("hop_burst", HOP_US)))
    L.append(row(f"K={k} latency p50 (µs)", "latency_p50", K5_P50_US.text,
                 met("latency_p50", K5_P50_US)))
    L.append(row(f"K={k} latency p99 (µs)", "latency_p99"))
    L.append(row(f"interrupt, {queued} frames queued at the sink, p50 (µs)", "interrupt_sink",
                 INTERRUPT_US.text, met("interrupt_sink", INTERRUPT_US), "{:,.1f}"))
    L.append(row(f"interrupt, {queued} frames queued at the head, p50 (µs)", "interrupt_head",
                 INTERRUPT_US.text, met("interrupt_head", INTERRUPT_US), "{:,.1f}"))
    L.append(row("stale data frames delivered after the interrupt (max)", "stale",
                 STALE_FRAMES.text, met("stale", STALE_FRAMES), "{:,.0f}"))
    L.append(row(f"M={m} × K={k} × {fps} frames/s: CPU (cores)", "many_cpu"))
    L.append(row(f"M={m}: frames delivered in time / sent (higher is better)",
                 "many_achieved"))
    L.append(row(f"RSS per idle session at M={m} (KiB)", "idle_kib", fmt="{:,.1f}"))
    L.append(row("start-up, warm (ms)", "startup_ms", fmt="{:,.3f}"))
    L.append("")

    fs = {key: _med(v) for key, v in (ex.get("flowspec") or {}).items()}
    lean = {key: _med(v) for key, v in (pc.get("lean") or {}).items()}
    default = {key: _med(v) for key, v in (pc.get("default") or {}).items()}
    conc = fs.get(f"concurrency_M{m}") or {}
    L.append(f"At M={m} the CPU figure includes {_f(conc.get('harness_only_cpu_util'), 2)} of a "
             f"core spent by the benchmark's own {m} sender tasks (measured alone, "
             "`harness-only CPU` below); the executor's share is the difference.")
    L.append("")

    L.append(f"### a. Throughput, N={p.get('n_throughput')} audio frames (µs per frame, medians)")
    L.append("")
    L.append("| mode | K | hops | flowspec µs/frame | µs/hop | CPU µs/frame | frames/s | "
             "Pipecat lean | ratio | Pipecat default | ratio |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for mode in ("burst", "streamed"):
        for kk in p.get("ks") or []:
            f = get(fs, f"throughput_{mode}", f"K{kk}") or {}
            pl = get(lean, f"throughput_{mode}", f"K{kk}", "us_per_frame")
            pd = get(default, f"throughput_{mode}", f"K{kk}", "us_per_frame")
            ours = f.get("us_per_frame")
            L.append(f"| {mode} | {kk} | {_f(get(f, 'hops'), 0)} | {_f(ours, 2)} | "
                     f"{_f(f.get('us_per_frame_per_hop'), 2)} | "
                     f"{_f(f.get('cpu_us_per_frame'), 2)} | {_f(f.get('fps'), 0)} | {_f(pl)} | "
                     f"{_r(ours, pl)} | {_f(pd)} | {_r(ours, pd)} |")
    L.append("")
    L.append(f"Building one audio frame costs "
             f"{_f(get(fs, 'throughput_burst', 'frame_construct_us'), 2)} µs in flowspec and "
             f"{_f(get(lean, 'throughput_burst', 'frame_construct_us'), 2)} µs in Pipecat (not "
             "included). Streamed rows include one `asyncio.sleep(0)` per frame, harness cost "
             "paid by both systems; the marginal per-hop figure removes it.")
    L.append("")

    L.append(f"### b. Latency, K={k}, frames {_f(p.get('latency_gap_ms'), 0)} ms apart (µs, "
             "medians)")
    L.append("")
    L.append("| system | p50 | p90 | p99 | max | mean |")
    L.append("|---|---|---|---|---|---|")
    for name, lat in (("flowspec", fs.get("latency")), ("Pipecat lean", lean.get("latency")),
                      ("Pipecat default", default.get("latency"))):
        if lat:
            L.append(f"| {name} | {_f(lat.get('p50_us'))} | {_f(lat.get('p90_us'))} | "
                     f"{_f(lat.get('p99_us'))} | {_f(lat.get('max_us'))} | "
                     f"{_f(lat.get('mean_us'))} |")
    L.append("")

    L.append(f"### c. Interruption, K={k}, {queued} data frames queued (µs from emit at source "
             "to sink, medians)")
    L.append("")
    L.append("| flowspec case | flowspec p50 | p99 | stale frames after | Pipecat case | "
             "lean p50 (push_frame) | stale | ratio | default p50 | stale | ratio |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    peer_case = {"queued_at_sink": "queued_at_sink", "queued_at_head": "burst_at_head",
                 "burst_at_head": "burst_at_head"}
    for case, f in (fs.get("interruption") or {}).items():
        ours = get(f, "observed_at_sink", "p50_us")
        cells = []
        for cfg in (lean, default):
            pm = get(cfg, "interruption", peer_case[case], "push_frame")
            pp = get(pm, "observed_at_sink", "p50_us")
            stale = None if pm is None else pm.get(
                "data_frames_reaching_sink_after_interrupt_max",
                pm.get("data_frames_reaching_sink_after_interrupt_median"))
            cells.append(f"{_f(pp)} | {_f(stale, 0)} | {_r(ours, pp)}")
        L.append(f"| {case} | {_f(ours)} | {_f(get(f, 'observed_at_sink', 'p99_us'))} | "
                 f"{_f(get(f, 'stale_after_max'), 0)} | {peer_case[case]} | {cells[0]} | "
                 f"{cells[1]} |")
    L.append("")
    L.append("flowspec's `queued_at_head` holds the first pass-through busy so that the frames "
             "really wait in front of it, where Pipecat's `burst_at_head` frames sit; it is "
             "compared with that case. flowspec's own `burst_at_head` has nothing queued (the "
             "burst was delivered inline before the interrupt was emitted), so its figure is the "
             "bare cost of an interrupt, shown against the same Pipecat case for reference.")
    L.append("")

    L.append(f"### d. Concurrency: M sessions × K={k} × {fps} audio frames/s for "
             f"{_f(p.get('conc_seconds'), 0)} s (medians)")
    L.append("")
    L.append("| system | M | delivered / sent | kept up | CPU | harness-only CPU | lag p50 / p99 "
             "ms | peak RSS MiB | RSS/idle session KiB | start all s |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for name, tree in (("flowspec", fs), ("Pipecat lean", lean), ("Pipecat default", default)):
        for mm in p.get("ms") or []:
            c = tree.get(f"concurrency_M{mm}")
            if not c:
                continue
            lag = c.get("e2e_lag_vs_schedule") or {}
            idle = c.get("rss_per_idle_session_kib", c.get("rss_per_idle_pipeline_kib"))
            L.append(f"| {name} | {mm} | {_f(c.get('achieved_ratio'), 2)} | "
                     f"{'yes' if c.get('kept_up') else 'no'} | {_f(c.get('cpu_util'), 2)} | "
                     f"{_f(c.get('harness_only_cpu_util'), 2)} | "
                     f"{_f(_ms(lag.get('p50_us')), 2)} / {_f(_ms(lag.get('p99_us')))} | "
                     f"{_f(c.get('rss_peak_mib'), 0)} | {_f(idle)} | "
                     f"{_f(c.get('start_all_s'), 2)} |")
    L.append("")

    st = fs.get("startup") or {}
    L.append(f"### e. Start-up and memory, K={k} (ms, medians)")
    L.append("")
    L.append("| system | cold start | warm start | stop | bytes per idle session |")
    L.append("|---|---|---|---|---|")
    kib = conc.get("rss_per_idle_session_kib")
    L.append(f"| flowspec | {number(st.get('cold_start_ms'), '{:,.3f}')} | "
             f"{number(st.get('warm_start_ms'), '{:,.3f}')} | "
             f"{number(st.get('warm_stop_ms'), '{:,.3f}')} | "
             f"{_f(st.get('tracemalloc_kib_per_idle_session'))} KiB (tracemalloc), "
             f"{_f(kib)} KiB (RSS, M={m}) |")
    for name, cfg in (("Pipecat lean", lean), ("Pipecat default", default)):
        s = cfg.get("startup")
        if s:
            L.append(f"| {name} | {_f(s.get('cold_start_ms'), 2)} | "
                     f"{_f(s.get('warm_start_ms'), 2)} | {_f(s.get('warm_stop_ms'), 2)} | – |")
    L.append("")
    return "\n".join(L)


def _ms(us: float | None) -> float | None:
    return None if us is None else us / 1e3


__all__ = ["metrics", "number", "render", "top_m", "values"]
