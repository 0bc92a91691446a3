"""Every benchmark of DESIGN §11 in one command; regenerates tools/bench/RESULTS.md.

    .venv/bin/python tools/bench/run_all.py [--reps 3] [--only sessions,executor,...]
    .venv/bin/python tools/bench/run_all.py --smoke --out /tmp/RESULTS.md   # plumbing check
    .venv/bin/python tools/bench/run_all.py --render tools/bench/RESULTS.json  # re-render only

Parts, each in fresh processes, each measured `--reps` times (validate, imports and audio run more
repeats of their own, the same number on every side): sessions (sessions.py: `flowspec serve`,
Pipecat 1.14 and a bare relay, real calls through the emulator), executor (executor.py, idle chains
of pass-through nodes, Pipecat's own script in the same run), validate (validate_time.py),
imports (the modules a realtime `serve` loads, on both sides), install (fresh venvs, _install.py),
audio (audio.py), delta (realtime.py: the span inside the server), reload (reload.py), flow
(flow.py: a flow transition next to a plain settings change), cascade (cascade.py: what flowspec
adds between transcribe, Responses and speech, Pipecat's cascade on the same turns in the same
run).

Both sides of a comparison are measured in the same run, the same number of times, interleaved
(A B A B ...); nothing is measured again because it missed. A part that fails or cannot run is
reported as "not measured" with the reason, never with a number. Pipecat's side needs
`python3 -m venv .venv-peers/pipecat && .venv-peers/pipecat/bin/pip install pipecat-ai==1.14.0`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, ROOT, import_ms, run_child  # noqa: E402
from _reasons import method_notes, missed_paragraphs  # noqa: E402
from _render import render  # noqa: E402
from _report import rows, table  # noqa: E402

HERE = Path(__file__).resolve().parent
PY = sys.executable
PIPECAT_PY = ROOT / ".venv-peers" / "pipecat" / "bin" / "python"
PARTS = ("sessions", "executor", "validate", "imports", "install", "audio", "delta", "reload",
         "flow", "cascade")

# What a realtime `serve` loads on each side: flowspec's server, its realtime node and browser
# transport; Pipecat's pipeline, worker and runner, its WebSocket server transport, its realtime
# service and the context aggregators its realtime examples use (what _pipecat_server.py imports).
SERVE_IMPORTS = {
    "flowspec": "import flowspec.server.serving, flowspec.nodes.openai_realtime.node, "
                "flowspec.transports.websocket",
    "pipecat": "import pipecat.pipeline.pipeline, pipecat.pipeline.worker, "
               "pipecat.workers.runner, pipecat.transports.websocket.server, "
               "pipecat.services.openai.realtime.llm, "
               "pipecat.processors.aggregators.llm_response_universal",
}


def part_sessions(a: argparse.Namespace) -> dict[str, Any]:
    levels, window = ("2", "3") if a.smoke else (a.levels, str(a.window))
    systems = "flowspec,floor" if a.smoke or a.no_pipecat else a.systems
    cmd = [PY, str(HERE / "sessions.py"), "--levels", levels, "--reps", str(a.reps),
           "--window", window, "--systems", systems]
    return {"sessions": run_child(cmd, "sessions", timeout=7200)}


def part_executor(a: argparse.Namespace) -> dict[str, Any]:
    cmd = [PY, str(HERE / "executor.py"), "--reps", str(a.reps), "--no-write"]
    cmd += ["--no-pipecat"] if a.smoke or a.no_pipecat else []
    env = {**os.environ, **({"PCB_SMOKE": "1"} if a.smoke else {})}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=7200)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return {"executor": json.loads(proc.stdout.strip().splitlines()[-1])}


def part_validate(a: argparse.Namespace) -> dict[str, Any]:
    from validate_time import rows as validate_rows

    runs = 1 if a.smoke else 11
    return {"validate": {"runs": runs, "rows": validate_rows(runs)}}


def part_imports(a: argparse.Namespace) -> dict[str, Any]:
    reps = 1 if a.smoke else 7
    sides = {"flowspec": PY} | ({"pipecat": str(PIPECAT_PY)} if PIPECAT_PY.exists() else {})
    runs: dict[str, list[float]] = {side: [] for side in sides}
    for _ in range(reps):
        for side, python in sides.items():
            runs[side].append(import_ms(python, SERVE_IMPORTS[side]))
    return {"imports": {"reps": reps, "statements": {s: SERVE_IMPORTS[s] for s in sides},
                        "runs_ms": runs}}


def part_install(a: argparse.Namespace) -> dict[str, Any]:
    if a.smoke:
        return {"install": {"skipped": "not measured (--smoke)"}}
    from _install import flowspec_size, pipecat_size

    return {"install": {"flowspec": flowspec_size(),
                        "pipecat": pipecat_size(refresh=a.refresh_install)}}


def part_audio(a: argparse.Namespace) -> dict[str, Any]:
    cmd = [PY, str(HERE / "audio.py"), "--json", "--repeat", "1" if a.smoke else "5"]
    return {"audio": run_child(cmd, "audio", timeout=1200)}


def part_delta(a: argparse.Namespace) -> dict[str, Any]:
    cmd = [PY, str(HERE / "realtime.py"), "latency", "--seconds", "2" if a.smoke else "10"]
    return {"delta": {"reps": [run_child(cmd, f"delta latency rep {i + 1}")
                               for i in range(a.reps)]}}


def part_reload(a: argparse.Namespace) -> dict[str, Any]:
    cmd = [PY, str(HERE / "reload.py"), "--json", "--replicas"]
    cmd += ["--patches", "5", "--sessions", "1"] if a.smoke else ["--sessions", *a.reload_levels]
    runs = [run_child(cmd, f"reload rep {i + 1}", timeout=1800) for i in range(a.reps)]
    return {"reload": {"reps": runs}}


def part_flow(a: argparse.Namespace) -> dict[str, Any]:
    cmd = [PY, str(HERE / "flow.py"), "--json", "--reps", "5" if a.smoke else "60"]
    return {"flow": {"reps": [run_child(cmd, f"flow rep {i + 1}", timeout=600)
                              for i in range(a.reps)]}}


def part_cascade(a: argparse.Namespace) -> dict[str, Any]:
    cmd = [PY, str(HERE / "cascade.py"), "--json", "--reps", str(a.reps)]
    cmd += ["--turns", "20", "--warmup", "3"] if a.smoke else []
    # Pipecat's side takes seconds, so the smoke run checks its plumbing too.
    cmd += ["--no-pipecat"] if a.no_pipecat else []
    return {"cascade": run_child(cmd, "cascade", timeout=3600)}


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_gib = int(f.readline().split()[1]) / 1024 / 1024
    return {"cpu": cpu, "cpus": os.cpu_count(), "mem_gib": mem_gib,
            "python": platform.python_version(), "kernel": platform.release(),
            "date": time.strftime("%Y-%m-%d %H:%M")}


def compose(r: dict[str, Any]) -> str:
    from _report import header

    L = [*header(r), "", "## Targets", "", table(rows(r)), ""]
    missed = missed_paragraphs(r)
    if missed:
        L += ["## Missed targets: what the run's own figures show", "", *missed]
    L += method_notes(r)
    ex = r.get("executor")
    if ex and ex.get("flowspec"):
        L += ["", "<!-- executor:begin -->", render(ex).rstrip(), "<!-- executor:end -->"]
    return "\n".join(L) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", help=f"comma-separated parts among {','.join(PARTS)}")
    ap.add_argument("--levels", default="1,25,50", help="concurrent sessions (sessions part)")
    ap.add_argument("--window", type=float, default=10.0, help="seconds measured per trial")
    ap.add_argument("--systems", default="flowspec,floor,pipecat,pipecat-lean")
    ap.add_argument("--reload-levels", nargs="+", default=["1", "10", "100", "500"])
    ap.add_argument("--no-pipecat", action="store_true", help="flowspec (and the floor) only")
    ap.add_argument("--refresh-install", action="store_true",
                    help="install Pipecat afresh to measure its size (needs PyPI)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: checks the plumbing only")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--render", type=Path, metavar="JSON",
                    help="rewrite --out from a saved RESULTS.json without measuring")
    a = ap.parse_args()
    if a.render:
        a.out.write_text(compose(json.loads(a.render.read_text())))
        return 0
    if a.smoke:
        a.reps = 1
    parts = a.only.split(",") if a.only else list(PARTS)
    t0 = time.perf_counter()
    loads = [os.getloadavg()[0]]
    r: dict[str, Any] = {"reps": a.reps, "smoke": a.smoke, "parts": parts, "errors": {},
                         "part_s": {}, "part_load": {}}
    for part in parts:
        sys.stderr.write(f"== {part}\n")
        t = time.perf_counter()
        before = os.getloadavg()[0]
        try:
            r.update(globals()[f"part_{part}"](a))
        except Exception as exc:  # noqa: BLE001 - one failed part must not sink the report
            r["errors"][part] = f"{type(exc).__name__}: {str(exc)[-500:]}"
            sys.stderr.write(f"   {part} failed: {r['errors'][part]}\n")
        r["part_s"][part] = time.perf_counter() - t
        r["part_load"][part] = {"start": before, "end": os.getloadavg()[0]}
        sys.stderr.write(f"   {part}: {r['part_s'][part]:.0f}s\n")
        loads.append(os.getloadavg()[0])
    r["load"] = {"start": loads[0], "max": max(loads), "end": loads[-1]}
    r["runtime_s"] = time.perf_counter() - t0
    r["machine"] = machine()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(compose(r))
    json_path = a.out.with_suffix(".json")
    json_path.write_text(json.dumps(r, indent=1, ensure_ascii=False) + "\n")
    sys.stderr.write(f"wrote {a.out} and {json_path.name}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
