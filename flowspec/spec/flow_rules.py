"""What `flowspec validate` checks in a spec's `flow:`, all findings at once, each located.

Errors: an unknown initial or target state, a transition on a name the state does not offer, a
state tool that is not a tool node linked to the flow's model, a function named like a tool,
a branch table with nothing to branch on, a flow with no model to drive or on a model that
cannot hold one, `reset_with_summary` where no summary can be made. Warnings: unreachable
states, states with no way out that are not `final`, branch tables whose cases all lead to one
state, `set:` values no template reads.

Each finding names the state and the tool and says what to do, and leads with the cause: a
misspelt name is reported once, not again through the state it leaves unreached, the transition
it leaves unoffered or the value it leaves unread.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from flowspec.conversation.template import names
from flowspec.errors import Diagnostic, Severity
from flowspec.spec.conversation_rules import CONVERSATION_MODELS, conversation_model
from flowspec.spec.load import Document, join_pointer
from flowspec.spec.models.conversation import BUILTIN_VARIABLES
from flowspec.spec.models.flow import BranchSpec, FlowSpec, StateSpec
from flowspec.spec.models.tools import ToolNodeSpec

WARNING = Severity.WARNING


def flow_rules(doc: Document, spec: Any,
               tools: Mapping[str, tuple[str, ...]]) -> Iterator[Diagnostic]:
    flow: FlowSpec | None = getattr(spec, "flow", None)
    if flow is None:
        return
    model_id = conversation_model(spec)
    conversation = spec.conversation
    if conversation is not None and conversation.model and flow.model and \
            conversation.model != flow.model:
        yield doc.diagnostic("flow.model", f"the flow drives {flow.model!r} but the "
                             f"conversation belongs to {conversation.model!r}: they must be "
                             "one model node", "/flow/model")
        return
    if model_id is None:
        models = [n for n, node in spec.nodes.items() if node.kind == "model"]
        yield doc.diagnostic("flow.model", "name the model node this flow drives with "
                             f"`model:` (this spec has {len(models)}: "
                             f"{', '.join(models) or 'none'})",
                             "/flow/model" if flow.model else "/flow", key=True)
        return
    node_type = spec.nodes[model_id].type
    if node_type not in CONVERSATION_MODELS:
        yield doc.diagnostic("flow.model", f"node {model_id!r} ({node_type}) cannot be driven "
                             f"by a flow; one of {', '.join(CONVERSATION_MODELS)} can",
                             "/flow/model" if flow.model else "/flow", key=True)
        return
    linked = set(tools.get(model_id, ()))
    yield from _initial(doc, flow)
    for name, state in flow.states.items():
        yield from _state(doc, spec, flow, name, state, linked, node_type)
    for index, tool_id in enumerate(flow.global_tools):
        yield from _tool_ref(doc, spec, tool_id, linked, model_id, "flow.global_tools",
                             join_pointer("/flow/global_tools", index))
    # A misspelt target leaves the state it meant unreached: the unknown name is the finding,
    # and reachability is judged once every target names a state.
    if all(target in flow.states for state in flow.states.values()
           for transition in state.transitions.values() for target in leads_to(transition)):
        yield from _reachability(doc, flow)
    yield from _unread(doc, spec, flow)


def _initial(doc: Document, flow: FlowSpec) -> Iterator[Diagnostic]:
    if flow.initial not in flow.states:
        yield doc.diagnostic("flow.unknown-state", f"the flow starts in {flow.initial!r}, but "
                             f"there is no such state (states: {', '.join(flow.states)})",
                             "/flow/initial", hint=_close(flow.initial, flow.states))


def _state(doc: Document, spec: Any, flow: FlowSpec, name: str, state: StateSpec,
           linked: set[str], node_type: str) -> Iterator[Diagnostic]:
    base = join_pointer("/flow/states", name)
    offered: dict[str, str] = {}  # function name -> where it comes from
    broken: list[str] = []  # tool references that name no usable tool node
    for index, tool_id in enumerate(state.tools):
        at = join_pointer(f"{base}/tools", index)
        found = list(_tool_ref(doc, spec, tool_id, linked, str(conversation_model(spec)),
                               f"state {name!r}", at))
        yield from found
        if found:
            broken.append(tool_id)
        node = spec.nodes.get(tool_id)
        if not found and isinstance(node, ToolNodeSpec):
            offered[node.function_name(tool_id)] = "tool"
    for tool_id in flow.global_tools:
        node = spec.nodes.get(tool_id)
        if isinstance(node, ToolNodeSpec):
            offered.setdefault(node.function_name(tool_id), "global")
    for function in state.functions:
        if function in offered:
            yield doc.diagnostic("flow.function-name", f"function {function!r} of state "
                                 f"{name!r} has the name of a tool the state offers, so the "
                                 "model could not tell them apart: rename the function",
                                 join_pointer(f"{base}/functions", function), key=True)
        offered[function] = "function"
    # A function whose transition is misspelt is reported through that transition.
    unoffered = [tool for tool in state.transitions if tool not in offered]
    for function in state.functions:
        if function not in state.transitions and not _close(function, unoffered):
            yield doc.diagnostic("flow.function-unused", f"function {function!r} of state "
                                 f"{name!r} leads nowhere: give it a transition", join_pointer(
                                     f"{base}/functions", function), key=True, severity=WARNING)
    for tool, transition in state.transitions.items():
        at = join_pointer(f"{base}/transitions", tool)
        # A transition on the tool a misspelt reference meant follows from that reference.
        if tool not in offered and not _close(tool, broken):
            yield _not_offered(doc, spec, name, tool, offered, at)
        yield from _targets(doc, flow, name, tool, transition, at)
    if not state.transitions and not state.final and \
            not any(action.end_call for action in state.on_enter):
        yield doc.diagnostic("flow.dead-end", f"state {name!r} has no way out: give it "
                             "transitions, end the call on entering it (`on_enter: "
                             "[{end_call: true}]`), or mark it `final: true`", base, key=True,
                             severity=WARNING)
    strategy = state.context or flow.context
    if strategy == "reset_with_summary" and node_type != "openai.responses":
        yield doc.diagnostic("flow.context", "reset_with_summary needs a summary the model "
                             "writes out of band, which a Realtime session cannot give here; "
                             "use reset or append", f"{base}/context" if state.context else
                             "/flow/context")


def _not_offered(doc: Document, spec: Any, name: str, tool: str, offered: Mapping[str, str],
                 at: str) -> Diagnostic:
    """A transition on a name the state does not offer, saying what would offer it."""
    nodes = [node_id for node_id, node in spec.nodes.items()
             if isinstance(node, ToolNodeSpec) and node.function_name(node_id) == tool]
    if nodes:
        return doc.diagnostic(
            "flow.transition-tool", f"state {name!r} has a transition on tool {tool!r} but does "
            f"not offer it: add {nodes[0]!r} to flow.states.{name}.tools (or to "
            "flow.global_tools)", at, key=True)
    return doc.diagnostic(
        "flow.transition-tool", f"state {name!r} has a transition on {tool!r}, which it does not "
        f"offer (it offers: {', '.join(offered) or 'none'}): declare it under "
        f"flow.states.{name}.functions, list a tool node in its `tools:`, or remove the "
        "transition", at, key=True, hint=_close(tool, offered))


def _tool_ref(doc: Document, spec: Any, tool_id: str, linked: set[str], model_id: str,
              owner: str, at: str) -> Iterator[Diagnostic]:
    node = spec.nodes.get(tool_id)
    if node is None:
        tool_ids = [n for n, v in spec.nodes.items() if isinstance(v, ToolNodeSpec)]
        yield doc.diagnostic("flow.unknown-tool", f"{owner} names {tool_id!r}, but there is no "
                             f"such tool node (tool nodes: {', '.join(tool_ids) or 'none'})",
                             at, hint=_close(tool_id, tool_ids))
    elif not isinstance(node, ToolNodeSpec):
        yield doc.diagnostic("flow.unknown-tool", f"{owner} names {tool_id!r}, a {node.type} "
                             "node: list tool nodes here", at)
    elif tool_id not in linked:
        yield doc.diagnostic("flow.tool-not-linked", f"{owner} offers tool {tool_id!r}, which "
                             f"is not in nodes.{model_id}.tools, so the model cannot call it",
                             at, hint=f"add it to nodes.{model_id}.tools")


def _targets(doc: Document, flow: FlowSpec, name: str, tool: str,
             transition: str | BranchSpec, at: str) -> Iterator[Diagnostic]:
    def target(state: str, where: str) -> Iterator[Diagnostic]:
        if state not in flow.states:
            yield doc.diagnostic(
                "flow.unknown-state", f"{tool!r} in state {name!r} leads to {state!r}, but "
                f"there is no such state (states: {', '.join(flow.states)})", where,
                hint=_close(state, flow.states))

    if isinstance(transition, str):
        yield from target(transition, at)
        return
    if transition.to is not None:
        yield from target(transition.to, f"{at}/to")
        if transition.on is not None or transition.cases:
            yield doc.diagnostic("flow.branch", f"{tool!r} in state {name!r}: give `to` or a "
                                 "branch table (`on`, `cases`), not both", f"{at}/to", key=True)
        return
    if transition.on is None and (transition.cases or transition.default is None):
        yield doc.diagnostic("flow.branch", f"{tool!r} in state {name!r}: a branch table needs "
                             "`on:` (result.<field> or arguments.<field>) and `cases:`; or "
                             "give `to:`", at, key=True)
    if transition.on is not None and not transition.cases:
        yield doc.diagnostic("flow.branch", f"{tool!r} in state {name!r}: `on:` without "
                             "`cases:` branches nowhere; give `cases:` or write `to:`",
                             f"{at}/on", key=True)
    for value, state in transition.cases.items():
        yield from target(state, join_pointer(f"{at}/cases", value))
    if transition.default is not None:
        yield from target(transition.default, f"{at}/default")
    leads = set(transition.cases.values()) | ({transition.default} if transition.default
                                              else set())
    if len(transition.cases) > 1 and len(leads) == 1:
        only = leads.pop()
        yield doc.diagnostic("flow.single-branch", f"every case of {tool!r} in state {name!r} "
                             f"leads to {only!r}: write `to: {only}` instead", f"{at}/cases",
                             key=True, severity=WARNING)


def leads_to(transition: str | BranchSpec) -> list[str]:
    """Every state a transition may lead to."""
    if isinstance(transition, str):
        return [transition]
    found = [transition.to] if transition.to else list(transition.cases.values())
    if transition.default:
        found.append(transition.default)
    return [state for state in found if state]


def _reachability(doc: Document, flow: FlowSpec) -> Iterator[Diagnostic]:
    if flow.initial not in flow.states:
        return
    seen, todo = {flow.initial}, [flow.initial]
    while todo:
        state = flow.states.get(todo.pop())
        if state is None:
            continue
        for transition in state.transitions.values():
            for target in leads_to(transition):
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
    for name in flow.states:
        if name not in seen:
            yield doc.diagnostic("flow.unreachable", f"state {name!r} cannot be reached from "
                                 f"{flow.initial!r}: give a transition to it, or remove it",
                                 join_pointer("/flow/states", name),
                                 key=True, severity=WARNING)


def _unread(doc: Document, spec: Any, flow: FlowSpec) -> Iterator[Diagnostic]:
    """`set:` names no template reads: flow state kept for nothing."""
    read: set[str] = set()
    for text in _texts(spec):
        read.update(names(text))
    kept = {value for state in flow.states.values() for transition in state.transitions.values()
            if isinstance(transition, BranchSpec) for value in transition.set}
    # A template naming nothing known is reported where it is written; the value it meant is
    # not also reported as unread.
    misspelt = read - kept - set(spec.variables) - set(BUILTIN_VARIABLES)
    for name, state in flow.states.items():
        for tool, transition in state.transitions.items():
            if isinstance(transition, str):
                continue
            for value in transition.set:
                if value not in read and not _close(value, misspelt):
                    yield doc.diagnostic(
                        "flow.unread-value", f"`{value}` is kept by {tool!r} in state "
                        f"{name!r} but no template reads `{{{{{value}}}}}`: use it in a "
                        "state's instructions or words, or remove it", join_pointer(join_pointer(
                            f"/flow/states/{name}/transitions", tool) + "/set", value),
                        key=True, severity=WARNING)


def _texts(spec: Any) -> Iterator[str]:
    """Every string of the spec (templates are checked where they are filled, elsewhere)."""
    def walk(value: Any) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, Mapping):
            for item in value.values():
                yield from walk(item)
        elif isinstance(value, list):
            for item in value:
                yield from walk(item)

    yield from walk(spec.model_dump(mode="json"))


def _close(word: str, options: Any) -> str | None:
    import difflib

    found = difflib.get_close_matches(word, [str(o) for o in options], n=1)
    return f"did you mean {found[0]!r}?" if found else None

