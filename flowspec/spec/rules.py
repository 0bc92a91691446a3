"""Per-node rules beyond the schema: provider constraints, deprecations, secrets, tool checks.

Each node family names its rules (the built-in families' are here); `node_rule_diagnostics` asks
the node's family.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import importlib.util
import json
import sys
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import urlparse

from flowspec.errors import Diagnostic, Severity
from flowspec.nodes.netpolicy import url_problem
from flowspec.spec.capabilities import reasoning_supported, transcription_prompt_supported
from flowspec.spec.load import Document
from flowspec.spec.models.base import NodeSpec
from flowspec.spec.models.events import WebhookSpec
from flowspec.spec.models.openai_common import OpenAIClientSpec
from flowspec.spec.models.realtime import RealtimeNodeSpec, ToolChoiceFunctionSpec
from flowspec.spec.models.realtime_beta import RealtimeBetaNodeSpec
from flowspec.spec.models.responses import ResponsesNodeSpec
from flowspec.spec.models.speech import (
    BETA_TRANSCRIPTION_MODELS,
    SpeechNodeSpec,
    TranscribeNodeSpec,
)
from flowspec.spec.models.tools import HttpToolSpec, PythonToolSpec, ToolNodeSpec
from flowspec.spec.models.transports import (
    TwilioTransportSpec,
    WavTransportSpec,
    WebsocketTransportSpec,
)
from flowspec.spec.validate import did_you_mean

OPENAI_HOSTS = frozenset({"api.openai.com"})


def _warn(doc: Document, code: str, message: str, pointer: str, *, key: bool = True,
          hint: str | None = None, severity: Severity = Severity.WARNING) -> Diagnostic:
    return doc.diagnostic(code, message, pointer, key=key, hint=hint, severity=severity)


def _openai_rules(doc: Document, base: str, node: OpenAIClientSpec) -> Iterator[Diagnostic]:
    if node.api_key is not None and f"{base}/api_key" not in doc.interpolated:
        value = node.api_key.get_secret_value()
        if value:
            yield _warn(doc, "secret.literal", "api_key is written into the spec; anyone who "
                        "reads the file has it", f"{base}/api_key",
                        hint="write ${OPENAI_API_KEY} or leave it out (it defaults to "
                        "OPENAI_API_KEY)")
    extra = getattr(node, "extra", None)
    if extra:
        yield _warn(doc, "extra.unchecked", f"`extra` fields are sent unchecked: "
                    f"{', '.join(sorted(extra))}", f"{base}/extra", severity=Severity.INFO)
    for name, replacement in node.deprecated_fields():
        yield _warn(doc, "deprecated", f"`{name}` is deprecated", f"{base}/{name}",
                    hint=replacement)


def _function_names(doc: Document, node: OpenAIClientSpec,
                    raw_tools: list[dict[str, Any]] | None) -> set[str]:
    """The functions the model of `node` may be told to call: its tool nodes' (and a flow's),
    its raw function tools, transition-only functions and the built-in end_call."""
    def mapping(value: object) -> dict[str, Any]:
        return value if isinstance(value, dict) else {}

    data = mapping(doc.data)
    nodes, flow = mapping(data.get("nodes")), mapping(data.get("flow"))
    tool_ids = list(getattr(node, "tools", []))
    names = {"end_call"}
    tool_ids += [t for t in flow.get("global_tools") or [] if isinstance(t, str)]
    states = mapping(flow.get("states"))
    for state in states.values():
        if isinstance(state, dict):
            tool_ids += [t for t in state.get("tools") or [] if isinstance(t, str)]
            functions = state.get("functions")
            names.update(functions if isinstance(functions, dict) else ())
    for tool_id in tool_ids:
        tool = nodes.get(tool_id)
        name = tool.get("name") if isinstance(tool, dict) else None
        names.add(name if isinstance(name, str) else tool_id)
    names.update(str(t["name"]) for t in raw_tools or () if isinstance(t, dict) and "name" in t)
    return names


def _tool_choice_rule(doc: Document, node: OpenAIClientSpec, choice: object,
                      raw_tools: list[dict[str, Any]] | None,
                      pointer: str) -> Iterator[Diagnostic]:
    if not isinstance(choice, ToolChoiceFunctionSpec):
        return
    names = _function_names(doc, node, raw_tools)
    if choice.name not in names:
        yield doc.diagnostic("tool.choice-unknown", f"`tool_choice` names function "
                             f"{choice.name!r}, which is not one of this node's tools",
                             f"{pointer}/name",
                             hint=did_you_mean(choice.name, sorted(names)) or
                             f"its tools: {', '.join(sorted(names))}")


def realtime_rules(doc: Document, base: str, node: RealtimeNodeSpec) -> Iterator[Diagnostic]:
    yield from _openai_rules(doc, base, node)
    settings = node.effective_settings()
    props = settings.session_properties
    sp = f"{base}/settings/session_properties" if node.session_properties is None \
        else f"{base}/session_properties"
    if settings.system_instruction is not None and props.instructions is not None:
        yield _warn(doc, "settings.instructions-overridden", "both `system_instruction` and "
                    "`session_properties.instructions` are given; `system_instruction` is sent",
                    f"{sp}/instructions")
    if props.reasoning is not None and not reasoning_supported(settings.model, realtime=True):
        yield _warn(doc, "provider.reasoning-unsupported", f"model {settings.model!r} does not "
                    "accept `reasoning`; it will not be sent", f"{sp}/reasoning",
                    hint="use a reasoning realtime model such as gpt-realtime-2")
    yield from _tool_choice_rule(doc, node, props.tool_choice, props.tools, f"{sp}/tool_choice")
    audio_in = props.audio.input if props.audio else None
    transcription = audio_in.transcription if audio_in else None
    if transcription and transcription.prompt and \
            not transcription_prompt_supported(transcription.model):
        yield _warn(doc, "provider.prompt-unsupported", "gpt-realtime-whisper does not take a "
                    "transcription prompt; it will not be sent",
                    f"{sp}/audio/input/transcription/prompt")


def beta_rules(doc: Document, base: str, node: RealtimeBetaNodeSpec) -> Iterator[Diagnostic]:
    yield from _openai_rules(doc, base, node)
    host = urlparse(node.base_url).hostname or ""
    if host in OPENAI_HOSTS:
        yield _warn(doc, "provider.beta-retired", "OpenAI has retired the Realtime beta dialect "
                    "on its own servers (connections get beta_api_shape_disabled)",
                    f"{base}/type", key=False, hint="use type: openai.realtime")
    settings = node.effective_settings()
    sp = f"{base}/settings/session_properties" if node.session_properties is None \
        else f"{base}/session_properties"
    props = settings.session_properties
    yield from _tool_choice_rule(doc, node, props.tool_choice, props.tools, f"{sp}/tool_choice")
    if settings.system_instruction is not None and \
            settings.session_properties.instructions is not None:
        yield _warn(doc, "settings.instructions-overridden", "both `system_instruction` and "
                    "`session_properties.instructions` are given; `system_instruction` is sent",
                    f"{base}/settings/system_instruction")


def responses_rules(doc: Document, base: str, node: ResponsesNodeSpec) -> Iterator[Diagnostic]:
    yield from _openai_rules(doc, base, node)
    settings = node.settings
    for name in ("frequency_penalty", "presence_penalty", "seed"):
        if name in settings.model_fields_set:
            yield _warn(doc, "provider.not-sent", f"`{name}` has no effect: the Responses API "
                        "has no such parameter, so it is not sent", f"{base}/settings/{name}")
    if settings.reasoning is not None and not reasoning_supported(settings.model, realtime=False):
        yield _warn(doc, "provider.reasoning-unsupported", f"model {settings.model!r} does not "
                    "accept `reasoning`; it will not be sent", f"{base}/settings/reasoning",
                    hint="use a reasoning model (o-series, gpt-5)")


def transcribe_rules(doc: Document, base: str,
                     node: TranscribeNodeSpec) -> Iterator[Diagnostic]:
    yield from _openai_rules(doc, base, node)
    settings, at = node.settings, f"{base}/settings"
    if node.dialect == "beta":
        if (urlparse(node.base_url).hostname or "") in OPENAI_HOSTS:
            yield _warn(doc, "provider.beta-retired", "OpenAI has retired the Realtime beta "
                        "dialect on its own servers (connections get beta_api_shape_disabled)",
                        f"{base}/dialect", hint="leave `dialect` out (ga)")
        if settings.model not in BETA_TRANSCRIPTION_MODELS:
            yield _warn(doc, "provider.model-unsupported", f"the beta dialect transcribes with "
                        f"{', '.join(BETA_TRANSCRIPTION_MODELS)} only, not {settings.model!r}",
                        f"{at}/model")
    if settings.model == "gpt-realtime-whisper":
        if settings.prompt and not transcription_prompt_supported(settings.model):
            yield _warn(doc, "provider.prompt-unsupported", "gpt-realtime-whisper does not "
                        "take a transcription prompt; it will not be sent", f"{at}/prompt")
        if settings.turn_detection is not False:
            yield _warn(doc, "provider.vad-unsupported", "gpt-realtime-whisper transcribes "
                        "without turn detection: set turn_detection: false and commit from "
                        "upstream", f"{at}/turn_detection" if "turn_detection" in
                        settings.model_fields_set else f"{at}/model")


def speech_rules(doc: Document, base: str, node: SpeechNodeSpec) -> Iterator[Diagnostic]:
    yield from _openai_rules(doc, base, node)
    settings, at = node.settings, f"{base}/settings"
    legacy = settings.model in ("tts-1", "tts-1-hd")
    if legacy and settings.instructions:
        yield _warn(doc, "provider.instructions-unsupported", f"{settings.model} does not take "
                    "`instructions`; they will not be sent", f"{at}/instructions",
                    hint="use gpt-4o-mini-tts")
    if legacy and node.stream_format == "sse":
        yield doc.diagnostic("provider.sse-unsupported", f"{settings.model} cannot stream "
                             "server-sent events", f"{base}/stream_format",
                             hint="use stream_format: audio, or gpt-4o-mini-tts")


@lru_cache(maxsize=256)
def _schema_problem(text: str) -> tuple[str, str] | None:
    """(path, message) of what makes the JSON Schema `text` invalid, or None. Keyed by the
    text: a live patch checks the same tools' parameters on every change."""
    from jsonschema import Draft7Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft7Validator.check_schema(json.loads(text))
    except SchemaError as exc:
        return "/".join(str(p) for p in exc.absolute_path), exc.message
    return None


def tool_rules(doc: Document, base: str, node: ToolNodeSpec) -> Iterator[Diagnostic]:
    problem = _schema_problem(json.dumps(node.parameters, sort_keys=True, default=str))
    if problem is not None:
        path, message = problem
        yield doc.diagnostic("tool.bad-parameters", f"`parameters` is not a valid JSON Schema: "
                             f"{message}", f"{base}/parameters" + (f"/{path}" if path else ""))
    else:
        if node.parameters.get("type") != "object":
            yield doc.diagnostic("tool.bad-parameters", "`parameters` must describe an object "
                                 "(type: object): models pass arguments by name",
                                 f"{base}/parameters")
    yield from _split_text_keys(doc, f"{base}/parameters", node.parameters)
    if isinstance(node, PythonToolSpec):
        unresolved = handler_problem(node.handler)
        if unresolved:
            yield doc.diagnostic("tool.handler-unresolved", unresolved, f"{base}/handler")
    if isinstance(node, HttpToolSpec):
        yield from _url_rules(doc, f"{base}/url", node)


def _url_rules(doc: Document, pointer: str, node: HttpToolSpec | WebhookSpec,
               who: str = "a tool the model can call") -> Iterator[Diagnostic]:
    problem = url_problem(node.url, node.allow_private_network)
    if problem is None:
        return
    if problem.kind == "credentials":
        yield doc.diagnostic("tool.url-credentials", "`url` carries a user name or password: "
                             "URLs end up in logs and error messages, credentials must not",
                             pointer, hint="put credentials in `headers`, e.g. "
                             "Authorization: Bearer ${API_TOKEN}")
        return
    # A host from the environment is not repeated, as no value from it is.
    host = "its host" if pointer in doc.interpolated else repr(problem.host)
    yield doc.diagnostic("tool.private-network", f"`url` points at {host}, which "
                         f"{problem.reason}: {who} reaches only public addresses unless the "
                         "node allows more", pointer,
                         hint="set allow_private_network: true if it is meant to reach a "
                         "service on this machine or its network")


def webhook_rules(doc: Document, base: str, node: WebhookSpec) -> Iterator[Diagnostic]:
    yield from _url_rules(doc, f"{base}/url", node, "a webhook")
    if node.secret is not None and node.secret.get_secret_value() and \
            f"{base}/secret" not in doc.interpolated:
        yield doc.diagnostic("secret.literal", "`secret` is written in the spec: anyone who "
                             "reads the file can sign events", f"{base}/secret",
                             severity=Severity.WARNING,
                             hint="write secret: ${WEBHOOK_SECRET} and set that variable")
    if len(set(node.events)) != len(node.events):
        yield doc.diagnostic("webhook.duplicate-event", "an event is listed twice",
                             f"{base}/events", severity=Severity.WARNING)


def _split_text_keys(doc: Document, pointer: str, value: object) -> Iterator[Diagnostic]:
    # `{description: City name, e.g. Paris}` is a YAML flow mapping: the comma ends the text and
    # `e.g. Paris` becomes a key with no value. JSON Schema ignores it, so nothing else would tell.
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{pointer}/{key}"
            if item is None and " " in str(key):
                yield doc.diagnostic(
                    "yaml.split-text", f"key {key!r} has no value: an unquoted comma inside "
                    "{...} split a text in two", child, key=True, severity=Severity.WARNING,
                    hint="quote the text that holds the comma")
            else:
                yield from _split_text_keys(doc, child, item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _split_text_keys(doc, f"{pointer}/{index}", item)


def handler_problem(handler: str, *, imports: bool = False) -> str | None:
    """None when `module:function` names a callable; otherwise why it does not.

    Validating (the default) runs no code of the handler's module: a module already imported is
    looked into as it is; any other is found with `importlib.util.find_spec` (which imports its
    parent packages only) and its source read for a top-level definition of the first name.
    When the source cannot tell (a module-level `__getattr__`, a star import, an extension module,
    a namespace package), what find_spec found is accepted. With `imports` the module is
    imported, as the tool node does before it calls the handler."""
    module_name, _, attr_path = handler.partition(":")
    module = sys.modules.get(module_name)
    if module is None and not imports:
        return _static_handler_problem(module_name, attr_path)
    try:
        target: object = module if module is not None else importlib.import_module(module_name)
    except ImportError as exc:
        return f"cannot import module {module_name!r}: {exc}"
    except Exception as exc:  # noqa: BLE001 - a user module failing at import is a spec problem
        return f"importing {module_name!r} failed: {type(exc).__name__}: {exc}"
    for part in attr_path.split("."):
        if not hasattr(target, part):
            return f"module {module_name!r} has no {attr_path!r}"
        target = getattr(target, part)
    if not callable(target):
        return f"{handler!r} is not callable"
    return None


def _static_handler_problem(module_name: str, attr_path: str) -> str | None:
    try:
        found = importlib.util.find_spec(module_name)
    except ImportError as exc:
        return f"cannot import module {module_name!r}: {exc}"
    except Exception as exc:  # noqa: BLE001 - a parent package failing at import
        return f"importing {module_name!r} failed: {type(exc).__name__}: {exc}"
    if found is None:
        return f"cannot import module {module_name!r}: No module named {module_name!r}"
    origin = found.origin
    if not isinstance(found.loader, importlib.machinery.SourceFileLoader) or not origin:
        return None  # an extension or sourceless module, or a namespace package
    try:
        tree = ast.parse(importlib.util.decode_source(Path(origin).read_bytes()), origin)
    except SyntaxError as exc:
        return f"importing {module_name!r} failed: SyntaxError: {exc.msg} (line {exc.lineno})"
    except (OSError, UnicodeDecodeError, ValueError):
        return None  # unreadable here; importing it would tell
    name = attr_path.split(".")[0]
    if _defines(tree.body, name) is False:
        return f"module {module_name!r} has no {attr_path!r}"
    return None


def _defines(body: list[ast.stmt], name: str) -> bool | None:
    """Whether top-level statements bind `name`: True, False, or None when they may without
    saying so (a module `__getattr__`, a star import)."""
    unknown = False
    for statement in body:
        match statement:
            case ast.FunctionDef(name=bound) | ast.AsyncFunctionDef(name=bound) | \
                    ast.ClassDef(name=bound):
                if bound == name:
                    return True
                unknown |= bound == "__getattr__"
            case ast.Import(names=aliases) | ast.ImportFrom(names=aliases):
                for alias in aliases:
                    if alias.name == "*":
                        unknown = True
                    elif (alias.asname or alias.name.split(".")[0]) == name:
                        return True
            case ast.Assign() | ast.AnnAssign() | ast.AugAssign():
                targets = statement.targets if isinstance(statement, ast.Assign) \
                    else [statement.target]
                if any(isinstance(node, ast.Name) and node.id == name
                       for target in targets for node in ast.walk(target)):
                    return True
            case ast.If() | ast.Try() | ast.TryStar() | ast.With() | ast.For() | ast.While():
                # Definitions under `if`, `try` or `with` at top level are module names too.
                blocks = [getattr(statement, field, []) for field in
                          ("body", "orelse", "finalbody")]
                blocks += [handler.body for handler in getattr(statement, "handlers", [])]
                for block in blocks:
                    inner = _defines(block, name)
                    if inner:
                        return True
                    unknown |= inner is None
    return None if unknown else False


def audio_transport_rules(doc: Document, base: str,
                          node: WebsocketTransportSpec | WavTransportSpec) -> Iterator[Diagnostic]:
    if isinstance(node, WavTransportSpec):
        yield from _path_rules(doc, base, node, ("input", "output"))
    audio = node.audio
    if audio.encoding in ("pcmu", "pcma") and audio.sample_rate != 8000:
        yield doc.diagnostic("audio.g711-rate", f"{audio.encoding} (G.711) is 8 kHz; "
                             f"sample_rate {audio.sample_rate} cannot be used with it",
                             f"{base}/audio/sample_rate")
    if isinstance(node, WavTransportSpec) and audio.encoding != "pcm16":
        yield doc.diagnostic("audio.wav-encoding", "WAV files are read and written as PCM16",
                             f"{base}/audio/encoding")


def twilio_rules(doc: Document, base: str, node: TwilioTransportSpec) -> Iterator[Diagnostic]:
    yield from _path_rules(doc, base, node, ("unavailable_audio",))
    if not node.auth_token:
        # `${TWILIO_AUTH_TOKEN:-}` with the variable unset leaves an empty token: as unsigned.
        missing = node.auth_token is None
        what = "no auth_token" if missing else "auth_token is empty"
        yield _warn(doc, "twilio.unsigned", f"{what}: neither the TwiML webhook nor the "
                    "media-stream upgrade can be checked for Twilio's signature, so anyone who "
                    "learns the URLs can start calls",
                    base if missing else f"{base}/auth_token",
                    hint="set auth_token: ${TWILIO_AUTH_TOKEN} and give that variable the "
                    "account's auth token")


def path_rules(*fields: str) -> Callable[[Document, str, NodeSpec], Iterator[Diagnostic]]:
    """The rules of a family whose `fields` name files the server reads or writes."""

    def rules(doc: Document, base: str, node: NodeSpec) -> Iterator[Diagnostic]:
        return _path_rules(doc, base, node, fields)

    return rules


def path_problem(value: str) -> str | None:
    """Why a file path from a spec is refused: absolute, or climbing out with `..`. Files a spec
    names stay under the directory the server runs in, whoever edits the spec."""
    if PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute() \
            or PureWindowsPath(value).drive:
        return "is absolute"
    if ".." in PurePosixPath(value.replace("\\", "/")).parts:
        return "climbs out with `..`"
    return None


def _path_rules(doc: Document, base: str, node: NodeSpec,
                fields: tuple[str, ...]) -> Iterator[Diagnostic]:
    for name in fields:
        value = getattr(node, name, None)
        problem = path_problem(value) if isinstance(value, str) else None
        if problem:
            yield doc.diagnostic("spec.path-outside", f"`{name}` {problem}: files a spec names "
                                 "must stay inside the server's working directory",
                                 f"{base}/{name}", hint="write a relative path such as "
                                 "recordings/{session_id}.wav")


def node_rule_diagnostics(doc: Document, node_id: str, node: NodeSpec) -> list[Diagnostic]:
    """What the rules of the node's family find. Raises FamilyError for an undeclared type."""
    from flowspec.families.registry import default_families

    return default_families().rules_of(doc, f"/nodes/{node_id}", node)
