"""The performance targets of DESIGN §11, the one place their numbers live.

The report modules (`_report.py`, `_reasons.py`, `_render.py`) hold no figures of their own:
every number they print is a measurement from the run's results, a parameter the run recorded, or
one of these targets (tests/bench checks it).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass

DESIGN = "DESIGN §11"


@dataclass(frozen=True, slots=True)
class Target:
    op: str  # "<=", ">=" or "=="
    value: float
    unit: str = ""
    shown: str | None = None  # how the value is written, when not as a plain number

    def met(self, measured: float | None) -> bool | None:
        if measured is None:
            return None
        check: Callable[[float, float], bool] = {"<=": operator.le, ">=": operator.ge,
                                                 "==": operator.eq}[self.op]
        return check(measured, self.value)

    @property
    def text(self) -> str:
        sign = {"<=": "≤", ">=": "≥", "==": "="}[self.op]
        value = self.shown or f"{self.value:g}"
        return f"{sign} {value}{' ' + self.unit if self.unit else ''}"


# Real sessions (sessions.py)
CPU_VS_FLOOR = Target("<=", 1.15, "× the floor's")
RSS_PER_SESSION_KIB = Target("<=", 100, "KiB")
PER_CORE_VS_PIPECAT = Target(">=", 3, "× Pipecat's")
CPU_VS_PIPECAT = Target("<=", 1 / 3, "of Pipecat's", shown="1/3")
DELTA_P99_MS = Target("<=", 0.2, "ms")
DELTA_AT_SESSIONS = 25
# The executor on idle chains of pass-through nodes (executor.py)
HOP_US = Target("<=", 1, "µs")
K5_P50_US = Target("<=", 10, "µs")
INTERRUPT_US = Target("<=", 100, "µs")
STALE_FRAMES = Target("==", 0)
EXECUTOR_SESSIONS = 1000
EXECUTOR_CORES = Target("<=", 1, "core")
IDLE_SESSION_KIB = Target("<=", 30, "KiB")
# Tools and footprint
VALIDATE_S = Target("<=", 0.5, "s")
RUNTIME_IMPORT_MS = Target("<=", 60, "ms")
INSTALL_MIB = Target("<=", 120, "MiB")
# Hot reload (reload.py)
RELOAD_MS = Target("<=", 5, "ms")
RELOAD_AT_SESSIONS = 100
REPLICAS_MS = Target("<=", 20, "ms")
# Flows (flow.py): what a transition adds over a plain settings change reaching the provider
FLOW_ADDED_MS = Target("<=", 1, "ms")
# The cascade (cascade.py): what flowspec adds on each hop between its stages
CASCADE_HOP_P99_MS = Target("<=", 0.5, "ms")
