"""What `flowspec validate` checks in a spec's `variables:` and `conversation:`, and in the
`{{name}}` templates anywhere in it.

A template is filled for each call where flowspec fills templates: model instructions, tool
descriptions, the conversation's words and a webhook's `metadata`. There, a name no variable
declares is an error (the call would show `{{name}}` to the model); elsewhere a `{{name}}` is
left as written, which is worth a warning.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from flowspec.conversation.template import Malformed, Placeholder, scan
from flowspec.errors import Diagnostic, Severity
from flowspec.spec.load import Document
from flowspec.spec.models.conversation import (
    BUILTIN_VARIABLES,
    REALTIME_SESSION_CAP_S,
    ConversationSpec,
    VariableSpec,
)
from flowspec.spec.models.tools import ToolNodeSpec

CONVERSATION_MODELS = ("openai.realtime", "openai.realtime_beta", "openai.responses")
"""Model node types that can hold a `conversation:` (they speak the opening, idle prompts and
goodbyes, and offer `end_call`)."""

_TEMPLATED = [re.compile(pattern) for pattern in (
    r"^/nodes/[^/]+/(settings/)?(system_instruction|instructions)$",
    r"^/nodes/[^/]+/settings/session_properties/instructions$",
    r"^/conversation/(opening|idle|closing)/(say|prompt|goodbye)$",
    r"^/conversation/context/\d+/text$",
    r"^/conversation/end_call/(description|goodbye)$",
    r"^/flow/states/[^/]+/instructions$",
    r"^/flow/states/[^/]+/on_enter/\d+/(say|prompt)$",
    r"^/flow/states/[^/]+/functions/[^/]+/description$",
)]


def conversation_rules(doc: Document, spec: Any,
                       tools: Mapping[str, tuple[str, ...]]) -> Iterator[Diagnostic]:
    """Every finding about variables, templates and the conversation of a schema-valid spec;
    `tools` maps each model node to the tool nodes it calls."""
    variables: dict[str, VariableSpec] = dict(spec.variables)
    yield from _variable_rules(doc, variables)
    known = set(variables) | set(BUILTIN_VARIABLES) | flow_values(spec)
    yield from _template_rules(doc, spec, known)
    if spec.conversation is not None:
        yield from _conversation_rules(doc, spec, spec.conversation, tools)


def conversation_model(spec: Any) -> str | None:
    """The model node a spec's conversation (and flow) belongs to (None: neither is declared,
    or no model it can name; validation reports that)."""
    conversation, flow = spec.conversation, getattr(spec, "flow", None)
    if conversation is None and flow is None:
        return None
    named = (conversation.model if conversation is not None else None) or \
        (flow.model if flow is not None else None)
    if named is not None:
        return str(named) if named in spec.nodes else None
    models = [node_id for node_id, node in spec.nodes.items() if node.kind == "model"]
    return models[0] if len(models) == 1 else None


# -- variables ----------------------------------------------------------------------------------


def _variable_rules(doc: Document, variables: Mapping[str, VariableSpec]
                    ) -> Iterator[Diagnostic]:
    from flowspec.conversation.variables import VariableRefused, _checked

    for name, var in variables.items():
        at = f"/variables/{name}"
        if name in BUILTIN_VARIABLES:
            yield doc.diagnostic("variables.builtin", f"{name!r} is built in "
                                 f"({BUILTIN_VARIABLES[name].rstrip('.')}) and cannot be "
                                 "declared", at,
                                 key=True)
            continue
        if var.pattern is not None:
            try:
                re.compile(var.pattern)
            except re.error as exc:
                yield doc.diagnostic("variables.pattern", f"`pattern` is not a regular "
                                     f"expression: {exc}", f"{at}/pattern")
                continue
        if var.minLength is not None and var.minLength > var.maxLength:
            yield doc.diagnostic("variables.bounds", "`minLength` is above `maxLength`",
                                 f"{at}/minLength")
        if var.minimum is not None and var.maximum is not None and var.minimum > var.maximum:
            yield doc.diagnostic("variables.bounds", "`minimum` is above `maximum`",
                                 f"{at}/minimum")
        for index, allowed in enumerate(var.enum or []):
            try:
                _checked(name, var.model_copy(update={"enum": None}), allowed)
            except VariableRefused as exc:
                yield doc.diagnostic("variables.enum", f"this value can never be given: "
                                     f"{_reason(exc)}", f"{at}/enum/{index}")
        if var.default is not None:
            try:
                _checked(name, var, var.default)
            except VariableRefused as exc:
                yield doc.diagnostic("variables.default", f"the default breaks the "
                                     f"variable's own schema: {_reason(exc)}", f"{at}/default")


def flow_values(spec: Any) -> set[str]:
    """The flow state names transitions `set:` (templates may read them)."""
    flow = getattr(spec, "flow", None)
    if flow is None:
        return set()
    return {name for state in flow.states.values() for transition in state.transitions.values()
            if not isinstance(transition, str) for name in transition.set}


def _reason(exc: Exception) -> str:
    return str(exc).split(" is ", 1)[-1].rstrip(".")


# -- templates ----------------------------------------------------------------------------------


def _template_rules(doc: Document, spec: Any, known: set[str]) -> Iterator[Diagnostic]:
    kept = flow_values(spec) if getattr(spec, "flow", None) is not None else None
    templated_tools = {f"/nodes/{node_id}/description" for node_id, node in spec.nodes.items()
                       if isinstance(node, ToolNodeSpec)}
    webhooks = {f"/nodes/{node_id}/metadata" for node_id, node in spec.nodes.items()
                if node.type == "events.webhook"}
    for pointer, text in _strings(doc.data, ""):
        found = list(scan(text))
        if not found:
            continue
        filled = (pointer in templated_tools or any(p.match(pointer) for p in _TEMPLATED)
                  or any(pointer.startswith(w + "/") for w in webhooks))
        for token in found:
            if isinstance(token, Malformed):
                yield doc.diagnostic("template.malformed", f"`{token.text}` is not a "
                                     "`{{name}}` placeholder (write `{{{{` for a literal `{{`)",
                                     pointer, severity=Severity.WARNING)
            elif not filled:
                yield doc.diagnostic("template.not-filled", f"`{{{{{token.name}}}}}` is left "
                                     "as written here: variables fill instructions, tool "
                                     "descriptions, the conversation's words and webhook "
                                     "metadata", pointer, severity=Severity.WARNING)
                break
            elif token.name not in known:
                yield _undeclared(doc, pointer, token, known, kept)


def _undeclared(doc: Document, pointer: str, token: Placeholder, known: set[str],
                kept: set[str] | None) -> Diagnostic:
    """`kept` is the flow state transitions `set:` (None: the spec has no flow), named apart
    from the variables so that a misspelt flow value is not taken for a missing variable."""
    import difflib

    close = difflib.get_close_matches(token.name, sorted(known), n=1)
    declared = ", ".join(sorted(known - set(BUILTIN_VARIABLES) - (kept or set()))) or "none"
    builtin = ", ".join(BUILTIN_VARIABLES)
    if kept is None:
        message = f"names no variable (declared: {declared}; built in: {builtin})"
        declare = f"declare it under variables: {token.name}: {{default: ...}}"
    else:
        message = (f"names no variable and no flow state (variables: {declared}; flow state "
                   f"kept by `set:`: {', '.join(sorted(kept)) or 'none'}; built in: {builtin})")
        declare = (f"declare it under variables: {token.name}: {{default: ...}}, or keep it "
                   f"with `set: {{{token.name}: result.<field>}}` on a transition")
    return doc.diagnostic(
        "template.undeclared", f"`{{{{{token.name}}}}}` {message}", pointer,
        hint=f"did you mean {{{{{close[0]}}}}}?" if close else declare)


def _strings(value: Any, pointer: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield pointer, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{pointer}/{index}")


# -- the conversation ---------------------------------------------------------------------------


def _conversation_rules(doc: Document, spec: Any, conv: ConversationSpec,
                        tools: Mapping[str, tuple[str, ...]]) -> Iterator[Diagnostic]:
    models = [node_id for node_id, node in spec.nodes.items() if node.kind == "model"]
    model_id = conversation_model(spec)
    if conv.model is not None and conv.model not in spec.nodes:
        yield doc.diagnostic("conversation.model", f"no node {conv.model!r} (model nodes: "
                             f"{', '.join(models) or 'none'})", "/conversation/model")
        return
    if model_id is None:
        yield doc.diagnostic("conversation.model", "name the model node this conversation "
                             f"belongs to with `model:` (this spec has {len(models)}: "
                             f"{', '.join(models) or 'none'})", "/conversation", key=True)
        return
    node = spec.nodes[model_id]
    if node.type not in CONVERSATION_MODELS:
        yield doc.diagnostic("conversation.model", f"node {model_id!r} ({node.type}) cannot "
                             f"hold a conversation; one of {', '.join(CONVERSATION_MODELS)} can",
                             "/conversation/model" if conv.model else "/conversation", key=True)
        return
    for part in ("opening", "idle", "closing"):
        said = getattr(conv, part)
        if said is not None and said.say is not None and said.prompt is not None:
            yield doc.diagnostic("conversation.say-and-prompt", "give `say` (these words) or "
                                 "`prompt` (the model's words), not both",
                                 f"/conversation/{part}/prompt", key=True)
    opening = conv.opening
    if opening is not None and opening.mode == "wait_for_user" and (opening.say or
                                                                   opening.prompt):
        yield doc.diagnostic("conversation.opening", "`mode: wait_for_user` says nothing "
                             "first, so `say`/`prompt` would never be used",
                             "/conversation/opening/mode")
    if conv.idle is not None and conv.idle.then == "wait" and conv.idle.goodbye:
        yield doc.diagnostic("conversation.unused", "`goodbye` is only said with "
                             "`then: end_call`", "/conversation/idle/goodbye", key=True,
                             severity=Severity.WARNING)
    if conv.closing is not None and conv.max_duration_s is None:
        yield doc.diagnostic("conversation.unused", "`closing` is said when `max_duration_s` "
                             "is reached, and none is set", "/conversation/closing", key=True,
                             severity=Severity.WARNING)
    if conv.max_duration_s is not None and node.type != "openai.responses" and \
            conv.max_duration_s > REALTIME_SESSION_CAP_S:
        yield doc.diagnostic("conversation.max-duration", f"OpenAI ends a Realtime session "
                             f"after {REALTIME_SESSION_CAP_S // 60} minutes, before "
                             f"{conv.max_duration_s:g} s", "/conversation/max_duration_s",
                             severity=Severity.WARNING)
    end_call = conv.end_call
    if end_call is not None and end_call.enabled:
        taken = {spec.nodes[t].function_name(t): t for t in tools.get(model_id, ())
                 if isinstance(spec.nodes[t], ToolNodeSpec)}
        if end_call.name in taken:
            yield doc.diagnostic("conversation.end-call-name", f"tool node "
                                 f"{taken[end_call.name]!r} already gives {model_id!r} a "
                                 f"function named {end_call.name!r}",
                                 "/conversation/end_call/name"
                                 if "name" in end_call.model_fields_set
                                 else "/conversation/end_call", key=True)
