"""The prose of RESULTS.md: for each missed target what the run's own figures show about it, how
each row is measured, and the detail tables behind the targets table.

Every sentence that states a figure computes it from the run's results (or the parameters the
run recorded); where the results hold nothing that explains a miss, the paragraph says so.
"""

from __future__ import annotations

from typing import Any

import _targets as T
from _cascade_common import HOPS
from _report import (
    NAMES,
    PIPECAT_SYSTEMS,
    _levels,
    _measured,
    _sv,
    best_pipecat,
    cascade_runs,
    import_above_start_ms,
    level_of,
    per_core,
    plural,
    reload_levels,
    rows,
    runtime_import_ms,
)
from _stats import cell, get, median, number, series


def _m(values: list[float], fmt: str = "{:,.2f}") -> str:
    return number(median(values), fmt)


def missed_paragraphs(r: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for metric, target, ours, _theirs, _ratio, met, _reps in rows(r):
        if met is not False:
            continue
        head = f"**{metric}: {ours}, target {target}.**"
        out.append(f"{head} {cause(r, metric)}")
        out.append("")
    for part, error in (r.get("errors") or {}).items():
        out.append(f"**{part}: not measured, the part failed:** `{error}`")
        out.append("")
    for failure in get(r, "sessions", "failures") or []:
        out.append(f"**sessions: a trial failed and is left out:** {failure}")
        out.append("")
    for side, errors in (get(r, "cascade", "errors") or {}).items():
        name = "Pipecat" if side == "pipecat" else side
        for error in errors:
            out.append(f"**cascade: a {name} run failed and is left out (nothing was run "
                       f"again):** {error}")
            out.append("")
    return out


def cause(r: dict[str, Any], metric: str) -> str:
    if metric.startswith("sessions:"):
        return session_cause(r, metric)
    if metric.startswith("executor"):
        return executor_cause(r)
    if metric.startswith("`flowspec validate"):
        return validate_cause(r, metric)
    if metric.startswith("`import flowspec.runtime"):
        return runtime_import_cause(r)
    if metric.startswith("installed size"):
        big = ", ".join(f"{name} {mib:.0f} MiB"
                        for name, mib in get(r, "install", "flowspec", "largest") or [])
        return f"The largest installed packages are {big}."
    if metric.startswith("settings patch") or metric.startswith("PATCH on replica"):
        return reload_cause(r)
    if metric.startswith("cascade"):
        return cascade_cause(r, metric)
    return "The run's results hold nothing that explains this miss."


def session_cause(r: dict[str, Any], metric: str) -> str:
    levels = _levels(r)
    top = level_of(metric) or max(levels)
    cpu_f = _sv(r, "flowspec", top, "cpu_us_per_message")
    cpu_floor = _sv(r, "floor", top, "cpu_us_per_message")
    load = (f" The one-minute load average during the sessions part went "
            f"{number(get(r, 'part_load', 'sessions', 'start'))}→"
            f"{number(get(r, 'part_load', 'sessions', 'end'))}.")
    if "against the floor" in metric:
        a, b = median(cpu_f), median(cpu_floor)
        if a is None or b is None:
            return "The floor was not measured." + load
        share = (a - b) / a * 100 if a else 0.0
        return (f"In the same trials at {plural(top)} flowspec's server used {a:,.0f} µs of CPU "
                f"per relayed message and the floor {b:,.0f} µs (medians): {a - b:,.0f} µs per "
                f"message ({share:.0f} % of flowspec's cost) is work flowspec does beyond "
                "receiving, re-encoding and writing each message, which the floor also does; "
                "the sessions table below has every level. "
                f"As a share of a core: flowspec "
                f"{_m(_sv(r, 'flowspec', top, 'server_cpu'))}, the floor "
                f"{_m(_sv(r, 'floor', top, 'server_cpu'))}." + load)
    if "against Pipecat" in metric:
        pc = best_pipecat(r, top, "cpu_us_per_message") or ""
        theirs = _sv(r, pc, top, "cpu_us_per_message")
        kept = _m(_sv(r, pc, top, "kept_up"), "{:,.0f}")
        return (f"At {plural(top)} flowspec used {_m(cpu_f, '{:,.0f}')} µs per message and "
                f"{NAMES.get(pc, 'Pipecat')} {_m(theirs, '{:,.0f}')} µs (medians), with {kept} of "
                f"its {plural(top)} at pace. As a share of a core: flowspec "
                f"{_m(_sv(r, 'flowspec', top, 'server_cpu'))}, {NAMES.get(pc, 'Pipecat')} "
                f"{_m(_sv(r, pc, top, 'server_cpu'))}; the floor used "
                f"{_m(_sv(r, 'floor', top, 'cpu_us_per_message'), '{:,.0f}')} µs per message at "
                "this level, which is what any relay pays here." + load)
    if "RSS per live session" in metric:
        idle = _sv(r, "flowspec", top, "rss_idle_kib")
        live = _sv(r, "flowspec", top, "rss_live_kib")
        return (f"With {plural(top)} live flowspec's server went from "
                f"{_m([v / 1024 for v in idle], '{:,.1f}')} MiB (after the warm-up call ended) "
                f"to {_m([v / 1024 for v in live], '{:,.1f}')} MiB (medians); the floor held "
                f"{_m(_sv(r, 'floor', top, 'rss_per_session_kib'), '{:,.0f}')} KiB per session "
                "in the same trials, the part any relay pays for its two sockets and buffers.")
    if "kept up per core" in metric:
        ours, _at = per_core(r, "flowspec")
        parts = [f"{NAMES[s]} {_m(per_core(r, s)[0], '{:,.0f}')}"
                 for s in ("floor", *PIPECAT_SYSTEMS) if _measured(r, s)]
        return (f"Sessions kept up per core (medians): flowspec {_m(ours, '{:,.0f}')}, "
                + ", ".join(parts) + "." + load)
    if "delta" in metric:
        n = T.DELTA_AT_SESSIONS if T.DELTA_AT_SESSIONS in levels else top
        ours = [v / 1e3 for v in _sv(r, "flowspec", n, "delta_to_caller_us", "p99_us")]
        floor = [v / 1e3 for v in _sv(r, "floor", n, "delta_to_caller_us", "p99_us")]
        a, b = median(ours), median(floor)
        text = f"At {plural(n)} flowspec's p99 was {number(a, '{:.3f}')} ms"
        if b is not None and a is not None:
            text += (f" and the floor's, in the same trials, {b:.3f} ms, "
                     f"{b / T.DELTA_P99_MS.value:,.1f} times the target with no framework in the "
                     "path (the emulator's write, two loopback sockets, the caller's read and the "
                     "machine's scheduling); flowspec's p99 is "
                     + (f"{a - b:.3f} ms above" if a >= b else f"{b - a:.3f} ms below")
                     + " the floor's")
        inside = get(r, "delta", "reps") or []
        if inside:
            to_t = _m(series(inside, "to_transport", "p99_us"), "{:,.0f}")
            added = _m(series(inside, "added", "p99_us"), "{:,.0f}")
            text += (f". Inside the server with one session (realtime.py), p99 {added} µs from "
                     f"the model socket to `send_bytes`, {to_t} µs of it before the transport's "
                     "`handle`")
        return text + "." + load
    return "The run's results hold nothing that explains this miss." + load


def executor_cause(r: dict[str, Any]) -> str:
    load = get(r, "part_load", "executor") or {}
    return (f"Measured {get(r, 'executor', 'reps')} times in fresh processes, interleaved with "
            "Pipecat; the cell shows the median and the range. The one-minute load average went "
            f"{number(load.get('start'))}→{number(load.get('end'))} during the executor part. "
            "The run's results hold no profile of this case: `executor.py --child` runs it "
            "alone.")


def cascade_cause(r: dict[str, Any], metric: str) -> str:
    """A judged hop's miss against the framework's own part of it (to the handover, before the
    socket's write) and its worst turn."""
    runs = cascade_runs(r, "flowspec")
    load = get(r, "part_load", "cascade") or {}
    text = ""
    for key, own in (("transcript_to_request", "transcript_to_request_handed"),
                     ("boundary_to_speech_request", "boundary_to_speech_request_start")):
        label, own_label = dict(HOPS)[key], dict(HOPS)[own]
        if not metric.startswith(f"cascade: {label},"):
            continue
        p99 = _m(series(runs, "hops", key, "p99_ms"), "{:,.3f}")
        own99 = _m(series(runs, "hops", own, "p99_ms"), "{:,.3f}")
        worst = _m(series(runs, "hops", key, "max_ms"), "{:,.3f}")
        text = (f"Medians over the reps: p99 {p99} ms, worst turn {worst} ms; up to the "
                f"handover ({own_label}) p99 {own99} ms, the rest is the write itself.")
    return ((text or "The run's results hold nothing that explains this miss.")
            + f" The one-minute load average went {number(load.get('start'))}→"
              f"{number(load.get('end'))} during the cascade part.")


def validate_cause(r: dict[str, Any], metric: str) -> str:
    found = {v["command"]: series(v.get("runs_s") or [])
             for v in get(r, "validate", "rows") or []}
    spec = metric.split("`")[1]
    whole = median(found.get(spec, []))
    start = median(next((v for k, v in found.items() if k.startswith("python -c")), []))
    cli = median(found.get("import flowspec.cli", []))
    if whole is None or start is None or cli is None:
        return "The run's results hold nothing that explains this miss."
    return (f"Of {whole:.3f} s (median), starting the interpreter took {start:.3f} s and "
            f"importing the CLI {cli - start:.3f} s more; the remaining {whole - cli:.3f} s are "
            "validate's own imports and the check itself.")


def runtime_import_cause(r: dict[str, Any]) -> str:
    whole = median(runtime_import_ms(r))
    parts = {name: median(import_above_start_ms(r, f"import {name}"))
             for name in ("asyncio", "pydantic")}
    if whole is None or any(v is None for v in parts.values()):
        return "The run's results hold nothing that explains this miss."
    shown = " and ".join(f"`import {name}` alone {ms:.0f} ms" for name, ms in parts.items())
    return (f"Of {whole:.0f} ms (median), {shown}: the runtime runs on asyncio, and a compiled "
            "graph is made of the spec's pydantic models, which the runtime's modules import; "
            "the rest is flowspec's frames, the spec models and the runtime itself.")


def reload_cause(r: dict[str, Any]) -> str:
    levels = reload_levels(r)
    medians = {n: median(series(rows_, "received_to_sent_ms", "median"))
               for n, rows_ in levels.items()}
    known = sorted((n, m) for n, m in medians.items() if m is not None)
    if len(known) < 2:
        return "Only one number of live sessions was measured."
    (n0, m0), (n1, m1) = known[0], known[-1]
    per = (m1 - m0) / (n1 - n0)
    text = ", ".join(f"{m:.2f} ms at {n}" for n, m in known)
    written = {n: median(series(rows_, "received_to_written_ms", "median"))
               for n, rows_ in levels.items()}
    own = written.get(n1)
    part = "" if own is None else (
        f" At {n1} sessions flowspec had written the last session's update {own:.2f} ms after "
        f"the patch arrived; the other {m1 - own:.2f} ms are the kernel and the emulator, one "
        f"process reading what {n1} providers would each read on their own.")
    return (f"Medians by live sessions: {text}. From {n0} to {n1} sessions each additional "
            f"live session adds about {per * 1e3:.0f} µs, against {m0:.2f} ms for the whole path "
            f"with {plural(n0)}: the miss grows with the number of sessions reached.{part}")


# -- how each row is measured, and the details ---------------------------------------------------


def method_notes(r: dict[str, Any]) -> list[str]:
    sp = get(r, "sessions", "params") or {}
    ex = get(r, "executor", "params") or {}
    L = ["## How each row is measured", ""]
    L.append(
        "- **sessions** (`sessions.py`): real calls. The server under test runs alone in its "
        "process; one emulator process (the GA Realtime protocol, audio paced at real time in "
        f"{sp.get('frame_ms')} ms deltas) serves every trial; the callers run in the measuring "
        "process. flowspec is `flowspec serve` on `transport.websocket` → `openai.realtime` → "
        "back; the floor is `_floor_relay.py`; Pipecat is `_pipecat_server.py` in its own venv: "
        "`OpenAIRealtimeLLMService` behind its WebSocket server transport with a raw-PCM "
        "serializer and the context aggregator pair of its realtime examples, with its default "
        "worker (RTVI on) or the lean one (RTVI, turn tracking and the idle timeout off). That "
        "transport serves one client at a time, so Pipecat gets one listening port per session, "
        "all sessions on one event loop. All use the same session settings (server VAD). Each "
        f"caller streams {sp.get('frame_ms')} ms PCM16 frames at {sp.get('sample_rate')} Hz in "
        f"real time: an utterance of speech-like audio, then silence, every {sp.get('cycle_s')} s, "
        "so the emulator's VAD commits a turn, the model answers with a long spoken reply, and "
        "the next utterance barges in on it. Every trial uses a fresh server process and a "
        f"warm-up call; the window lasts {sp.get('window_s')} s and starts {sp.get('settle_s')} s "
        "after the last caller connected. Trials run system after system at one level, then the "
        "next level; the order of systems rotates each rep.")
    L.append(
        "  - *CPU per message*: the server's utime + stime (/proc) over the window, divided by "
        f"the audio relayed both ways in {sp.get('message_bytes')}-byte units: what the emulator "
        "received plus the stamped reply audio that reached a caller. Audio a server makes up "
        "itself (Pipecat's output transport sends silence when it has nothing to play) is not "
        "counted as relayed, but its CPU is.")
    L.append(
        "  - *RSS per live session*: the server's RSS with every caller live at the end of the "
        "window minus its RSS after the warm-up call ended, over the number of sessions.")
    L.append(
        "  - *kept pace* (per session, not pooled): at least "
        f"{number((sp.get('delivered_min') or 0) * 100, '{:.0f}')} % of the audio it sent "
        "reached the model, at least as much of the reply audio sent to it arrived (deltas sent "
        f"in the last {sp.get('barge_ms')} ms before a barge-in are not counted: a server drops "
        "those rightly), and its p99 delta → caller lag stayed under "
        f"{sp.get('lag_limit_ms')} ms. Sessions kept up per core: sessions that kept pace over "
        "the server's CPU (cores); the row takes each side's best level.")
    chunk = sorted({t["server"]["audio_out_chunk_ms"]
                    for levels in (get(r, "sessions", "trials") or {}).values()
                    for trials in levels.values() for t in trials
                    if (t.get("server") or {}).get("audio_out_chunk_ms")})
    L.append(
        "  - *delta → caller*: the emulator writes its send time (`perf_counter_ns`, "
        "CLOCK_MONOTONIC, one clock for every process) into the last bytes of each audio delta "
        "just before writing it to the socket; the caller finds the stamp in the audio it "
        "receives and takes its own time as the message arrives. It includes the emulator's "
        "write, both loopback hops, the server and the caller's read."
        + (f" Pipecat's output transport writes audio in chunks of "
           f"{', '.join(f'{c} ms' for c in chunk)} (its `audio_out_10ms_chunks` default), "
           "so a delta shorter than a chunk waits for the next one before it leaves."
           if chunk else ""))
    L.append(
        "- **executor** (`executor.py`): idle chains of pass-through nodes, the executor's own "
        f"cost with no work per frame (K={ex.get('k')} unless a row says otherwise); "
        "Pipecat's own `../shared/peers/pipecat_baseline.py` measures the same shapes, each "
        "shape's Pipecat children right after flowspec's in every rep. Ratios are against the "
        "lean worker.")
    L.append(
        "- **validate**: wall time of a fresh `python -m flowspec.cli validate SPEC`, interpreter "
        "start included, the commands interleaved run by run. **imports**: a fresh interpreter "
        "timing the import statement alone, flowspec and Pipecat alternating.")
    L.append(
        "- **install**: a new venv in a temporary directory, `pip install --no-cache-dir` of the "
        "checkout; `du -sb` of site-packages minus an empty venv's. Pipecat's figure is a "
        "citation from `tools/bench/pipecat_install.json` (dated) unless `--refresh-install` "
        "measured it in the run.")
    L.append(
        "- **audio**: `audio.py`, ten seconds of audio streamed in chunks on one core, the "
        "backends interleaved run by run; the full table is below.")
    L.append(
        "- **inside the server**: `realtime.py latency`, one session in the measuring process "
        "with two bench-only seams (public constructor arguments): the model socket stamps each "
        "message as it comes off the wire, the browser socket stamps each `send_bytes`.")
    L.append(
        "- **settings patch → `session.update`**: `reload.py`: `flowspec serve`'s server with the "
        "admin API in the measuring process, the emulator in its own; N live browser sessions; "
        "merge patches that change `system_instruction`, each timed from the reload pipeline "
        "having the patch to the emulator receiving the last session's `session.update` (one "
        "clock for both processes). Replicas: two `flowspec serve` processes sharing a Redis "
        "store, PATCH to one, the update for a session on the other.")
    cp = get(r, "cascade", "params") or {}
    L.append(
        "- **cascade** (`cascade.py`): one cascaded session per run, in a fresh process against "
        "a fresh `flowspec emulate --pace 0` in its own; each rep runs flowspec's side, then "
        "Pipecat's, the same turns against the same script. flowspec: `openai.transcribe` → "
        "`openai.responses` over its WebSocket → `openai.speech` with an in-process caller. "
        "Pipecat (`_pipecat_cascade.py`, its own venv): `OpenAIRealtimeSTTService` → the user "
        "aggregator → `OpenAIResponsesLLMService` → `OpenAITTSService` → a sink in place of the "
        f"output transport, {cp.get('worker')} worker. Each of "
        f"{get(r, 'cascade', 'warmup')} warm-up and {get(r, 'cascade', 'turns')} measured turns "
        f"appends {cp.get('turn_ms')} ms of audio in {cp.get('frame_ms')} ms frames and commits "
        "(manual turns on both sides; Pipecat's turn closes on the final transcript, its "
        "turn-stop timers set to zero through public arguments). Stamps at the network seams: "
        "the final transcript handed over by the transcription socket, `response.create` handed "
        "to and written by the Responses socket, the text delta completing the first sentence "
        "off that socket, the speech request handed to the HTTP client and its headers written, "
        "the commit written and the last speech audio reaching the caller. The time added per "
        "turn is the two judged hops together, turn by turn; CPU is `process_time` of the "
        "side's process over the measured turns. Ratios are flowspec / Pipecat within a rep.")
    L.append("")
    _details(r, L)
    return L


def _details(r: dict[str, Any], L: list[str]) -> None:
    _sessions_table(r, L)
    val = get(r, "validate", "rows") or []
    if val:
        L += ["### validate (seconds, whole process)", "",
              "| command | median (min–max) |", "|---|---|"]
        L += [f"| `{v['command']}` | {cell(series(v.get('runs_s') or []), '{:.3f}')} |"
              for v in val]
        L.append("")
    imp = r.get("imports") or {}
    if imp:
        L += ["### Imports of a realtime serve (ms)", "", "| side | statement | median (min–max) |",
              "|---|---|---|"]
        for side, statement in (imp.get("statements") or {}).items():
            L.append(f"| {side} | `{statement}` | "
                     f"{cell(series(get(imp, 'runs_ms', side) or []), '{:,.0f}')} |")
        L.append("")
    inst = r.get("install") or {}
    if "flowspec" in inst:
        L += ["### Installed size", "", "| package | MiB | distributions | largest (MiB) |",
              "|---|---|---|---|"]
        for key in ("flowspec", "pipecat"):
            m = inst.get(key)
            if m:
                big = ", ".join(f"{n} {s:.0f}" for n, s in m.get("largest", []))
                note = (f" (citation: measured {m.get('date')}, not in this run)"
                        if m.get("cached") else "")
                name = "flowspec (`pip install .`)" if key == "flowspec" else \
                    f"`{m['requirement']}`"
                L.append(f"| {name}{note} | {m['mib']:.0f} | {m['distributions']} | {big} |")
        L.append("")
    audio = get(r, "audio", "rows") or []
    if audio:
        from audio import HEADER, cells

        L += [f"### Audio throughput (× real time, one core, median of "
              f"{get(r, 'audio', 'repeat')} runs each)", "",
              "| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
        L += ["| " + " | ".join(cells(row)) + " |" for row in audio]
        L.append("")
    inside = get(r, "delta", "reps") or []
    if inside:
        L += ["### Inside the server, one session (µs, median (min–max) over reps)", "",
              "| span | p50 | p90 | p99 | max |", "|---|---|---|---|---|"]
        for name, key in (("delta off the model socket → transport `handle`", "to_transport"),
                          ("delta off the model socket → `send_bytes`", "added")):
            L.append(f"| {name} | " + " | ".join(
                cell(series(inside, key, q), "{:,.0f}")
                for q in ("p50_us", "p90_us", "p99_us", "max_us")) + " |")
        L += ["", f"Per rep (median) {_m(series(inside, 'deltas_received'), '{:,.0f}')} deltas "
              f"received, {_m(series(inside, 'audio_sends'), '{:,.0f}')} audio sends, "
              f"{_m(series(inside, 'paired'), '{:,.0f}')} paired.", ""]
    levels = reload_levels(r)
    if levels:
        L += ["### Settings patch → `session.update` (ms, median (min–max) over reps)", "",
              "| live sessions | patches per rep | received → at the provider, median | p90 | "
              "received → every update written by flowspec, median | "
              "PATCH round trip with provider confirmation, median |",
              "|---|---|---|---|---|---|"]
        for n, rows_ in sorted(levels.items()):
            L.append(f"| {n} | {rows_[0]['patches']} | "
                     f"{cell(series(rows_, 'received_to_sent_ms', 'median'))} | "
                     f"{cell(series(rows_, 'received_to_sent_ms', 'p90'))} | "
                     f"{cell(series(rows_, 'received_to_written_ms', 'median'))} | "
                     f"{cell(series(rows_, 'round_trip_ms', 'median'))} |")
        L.append("")


def _sessions_table(r: dict[str, Any], L: list[str]) -> None:
    systems = get(r, "sessions", "systems") or []
    levels = _levels(r)
    if not systems or not levels:
        return
    L += ["### Real sessions, by level (median (min–max) over reps)", "",
          "| system | sessions | kept pace | server CPU (cores) | µs per message | RSS per session "
          "KiB | delta → caller p50 / p99 ms | emulator CPU | callers CPU |",
          "|---|---|---|---|---|---|---|---|---|"]
    for n in levels:
        for s in systems:
            def c(*path: str, fmt: str = "{:,.2f}", s: str = s, n: int = n) -> str:
                return cell(_sv(r, s, n, *path), fmt)

            p50 = [v / 1e3 for v in _sv(r, s, n, "delta_to_caller_us", "p50_us")]
            p99 = [v / 1e3 for v in _sv(r, s, n, "delta_to_caller_us", "p99_us")]
            L.append(f"| {NAMES.get(s, s)} | {n} | {c('kept_up', fmt='{:,.0f}')} | "
                     f"{c('server_cpu')} | {c('cpu_us_per_message', fmt='{:,.0f}')} | "
                     f"{c('rss_per_session_kib', fmt='{:,.0f}')} | {cell(p50, '{:.3f}')} / "
                     f"{cell(p99, '{:.3f}')} | {c('emulator_cpu')} | {c('callers_cpu')} |")
    L.append("")
    worst = []
    for s in systems:
        for n in levels:
            for i, t in enumerate(get(r, "sessions", "trials", s, str(n)) or []):
                w = t.get("worst_session") or {}
                if not w.get("kept"):
                    inbound = number((w.get("inbound") or 0) * 100, "{:.1f}")
                    delivered = number((w.get("delivered") or 0) * 100, "{:.1f}")
                    worst.append(
                        f"{NAMES.get(s, s)} at {n} (rep {i + 1}): {t.get('kept_up')} of {n} kept "
                        f"pace; the worst session had {inbound} % of its audio reach the model, "
                        f"{delivered} % of its reply audio arrive, p99 lag "
                        f"{number(w.get('lag_p99_ms'), '{:,.1f}')} ms"
                        + (f", error {w.get('error')}" if w.get("error") else ""))
    if worst:
        L += ["Trials where a session did not keep pace:", ""]
        L += [f"- {line}" for line in worst]
        L.append("")
