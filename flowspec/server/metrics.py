"""`/metrics`: the server's Prometheus metrics, fed by the bus and read from live sessions.

Every metric lives in a registry of its own per server (two servers in one process, or two tests,
never share counters). Labels are spec names, node ids and edge names, never values from a spec,
so no secret can reach a scrape.

    flowspec_sessions_total{spec}              sessions started
    flowspec_sessions_active{spec}             sessions running now
    flowspec_session_failures_total{spec,node} node failures (`NodeFailed`)
    flowspec_transport_frames_total{spec,node,direction,kind}   frames a transport took in / sent
    flowspec_edge_queue_depth{spec,edge}       frames queued on an edge now, over live sessions
    flowspec_edge_frames_dropped_total{spec,edge}  data frames a `drop_oldest` edge discarded
    flowspec_ttfb_seconds{spec,node}           model time to first byte (histogram)
    flowspec_processing_seconds{spec,node}     model response time (histogram)
    flowspec_tokens_total{spec,node,kind}      tokens reported by model nodes, by kind
    flowspec_client_messages_rejected_total{spec,node,code}
    flowspec_reloads_total{spec,outcome}       spec reloads, applied or rejected
    flowspec_sessions_refused_total{spec,reason}  connections refused: capacity, origin,
                                               signature, draining
    flowspec_source_up{spec,kind}              1 while the spec's truth (file, store) is
                                               reachable, 0 while it is not
    flowspec_webhook_events_total{spec,node,event,outcome}  webhook events delivered, dropped
                                               or failed
    flowspec_calls_refused_total{spec,code}    calls refused for their variables
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from flowspec.conversation.events import CallRefused, FlowTransition, FlowTransitionRefused
from flowspec.events.webhook import WebhookEventSettled
from flowspec.runtime.bus import (
    Bus,
    BusEvent,
    ClientMessageRejected,
    FramesDropped,
    Metrics,
    NodeFailed,
    SessionEnded,
    SessionStarted,
    SettingsRejected,
    SpecReloaded,
)

if TYPE_CHECKING:
    from flowspec.reload.source import SpecSource
    from flowspec.runtime.session import Session

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


class _QueueDepth(Collector):
    def __init__(self, sessions: Callable[[], Iterable[Session]]) -> None:
        self._sessions = sessions

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("flowspec_edge_queue_depth",
                                   "Frames queued on an edge now, summed over live sessions.",
                                   labels=["spec", "edge"])
        depth: dict[tuple[str, str], int] = {}
        for session in list(self._sessions()):
            for edge, (queued, _dropped) in session.edge_stats().items():
                key = (session.graph.name, edge)
                depth[key] = depth.get(key, 0) + queued
        for (spec, edge), queued in sorted(depth.items()):
            family.add_metric([spec, edge], queued)
        yield family


class _SourceUp(Collector):
    def __init__(self, sources: Callable[[], Mapping[str, SpecSource]]) -> None:
        self._sources = sources

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("flowspec_source_up", "1 while the spec's truth (its file "
                                   "or store) is reachable.", labels=["spec", "kind"])
        for name, source in sorted(self._sources().items()):
            health = source.health()
            family.add_metric([name, str(health.get("kind", ""))], 1 if health.get("ok") else 0)
        yield family


class ServerMetrics:
    def __init__(self, bus: Bus, sessions: Callable[[], Iterable[Session]],
                 sources: Callable[[], Mapping[str, SpecSource]] = dict) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.sessions_total = Counter("flowspec_sessions", "Sessions started.", ["spec"],
                                      registry=r)
        self.sessions_active = Gauge("flowspec_sessions_active", "Sessions running now.",
                                     ["spec"], registry=r)
        self.failures = Counter("flowspec_session_failures", "Node failures.", ["spec", "node"],
                                registry=r)
        self.frames = Counter("flowspec_transport_frames",
                              "Frames a transport received from its client (in) or sent (out).",
                              ["spec", "node", "direction", "kind"], registry=r)
        self.dropped = Counter("flowspec_edge_frames_dropped",
                               "Data frames discarded by drop_oldest edges.", ["spec", "edge"],
                               registry=r)
        self.ttfb = Histogram("flowspec_ttfb_seconds", "Model time to first byte.",
                              ["spec", "node"], buckets=_LATENCY_BUCKETS, registry=r)
        self.processing = Histogram("flowspec_processing_seconds", "Model response time.",
                                    ["spec", "node"], buckets=_LATENCY_BUCKETS, registry=r)
        self.tokens = Counter("flowspec_tokens", "Tokens reported by model nodes.",
                              ["spec", "node", "kind"], registry=r)
        self.rejected = Counter("flowspec_client_messages_rejected",
                                "Client messages a transport could not use.",
                                ["spec", "node", "code"], registry=r)
        self.reloads = Counter("flowspec_reloads", "Spec reloads.", ["spec", "outcome"],
                               registry=r)
        self.settings_rejected = Counter(
            "flowspec_settings_rejected", "Live settings changes a session refused or the "
            "provider rejected (the session kept or went back to its last good settings).",
            ["spec", "node"], registry=r)
        self.sessions_refused = Counter(
            "flowspec_sessions_refused", "Connections refused before a session started, by "
            "reason (capacity, origin, signature, draining).", ["spec", "reason"], registry=r)
        self.webhook_events = Counter(
            "flowspec_webhook_events", "Events of events.webhook nodes, by outcome (delivered, "
            "dropped: queue full or the call ended first, failed: given up after retries).",
            ["spec", "node", "event", "outcome"], registry=r)
        self.calls_refused = Counter(
            "flowspec_calls_refused", "Calls refused before the model was contacted: their "
            "variables broke the spec's declaration.", ["spec", "code"], registry=r)
        self.flow_transitions = Counter(
            "flowspec_flow_transitions", "Moves between the states of a spec's flow, by outcome "
            "(moved, refused: the provider refused the state's update and the call stayed).",
            ["spec", "source", "target", "outcome"], registry=r)
        self._sessions = sessions
        r.register(_QueueDepth(sessions))
        r.register(_SourceUp(sources))
        self._spec_of: dict[str, str] = {}
        self._subscription = bus.subscribe(self._on_event)

    def close(self) -> None:
        self._subscription.close()

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def refused(self, spec: str, reason: str) -> None:
        self.sessions_refused.labels(spec, reason).inc()

    def frame_counter(self, spec: str, node: str) -> Callable[[str, str], None]:
        """A transport's `on_frame(direction, kind)` callback counting into this server."""
        children: dict[tuple[str, str], Counter] = {}

        def count(direction: str, kind: str) -> None:
            child = children.get((direction, kind))
            if child is None:
                child = children[(direction, kind)] = self.frames.labels(spec, node, direction,
                                                                         kind)
            child.inc()

        return count

    def _on_event(self, event: BusEvent) -> None:
        spec = self._spec_of.get(event.session_id, "")
        match event:
            case SessionStarted():
                self._spec_of[event.session_id] = event.graph
                self.sessions_total.labels(event.graph).inc()
                self.sessions_active.labels(event.graph).inc()
            case SessionEnded():
                if self._spec_of.pop(event.session_id, None) is not None:
                    self.sessions_active.labels(spec).dec()
            case NodeFailed():
                self.failures.labels(spec, event.node_id).inc()
            case FramesDropped():
                self.dropped.labels(spec, event.edge).inc(event.count)
            case ClientMessageRejected():
                self.rejected.labels(spec, event.node_id, event.code).inc()
            case SettingsRejected():
                self.settings_rejected.labels(spec, event.node_id).inc()
            case SpecReloaded():
                self.reloads.labels(event.graph, "applied" if event.ok else "rejected").inc()
            case Metrics():
                self._on_metrics(spec, event)
            case WebhookEventSettled():
                self.webhook_events.labels(spec, event.node_id, event.event,
                                           event.outcome).inc()
            case FlowTransition():
                self.flow_transitions.labels(spec, event.source, event.target, "moved").inc()
            case FlowTransitionRefused():
                self.flow_transitions.labels(spec, event.source, event.target, "refused").inc()
            case CallRefused():
                # A browser call is refused while its transport starts: before SessionStarted
                # names its spec, but the server already lists the session.
                spec = spec or next((s.graph.name for s in self._sessions()
                                     if s.id == event.session_id), "")
                self.calls_refused.labels(spec, event.code).inc()

    def _on_metrics(self, spec: str, event: Metrics) -> None:
        for name, value in event.values.items():
            if name == "ttfb_ms":
                self.ttfb.labels(spec, event.node_id).observe(value / 1000)
            elif name == "processing_ms":
                self.processing.labels(spec, event.node_id).observe(value / 1000)
            elif name.endswith("_tokens") and value > 0:
                self.tokens.labels(spec, event.node_id, name.removesuffix("_tokens")).inc(value)
