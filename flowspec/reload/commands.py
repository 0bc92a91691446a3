"""What `flowspec plan` and `flowspec patch` do, as library functions returning exit codes:
0 done, 1 an invalid spec or a rejected change, 2 a usage or I/O problem."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from flowspec.errors import SpecInvalid
from flowspec.redact import Redactor

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def plan_files(old_path: str, new_path: str, *, fmt: str, out: TextIO, err: TextIO) -> int:
    """Print the plan for changing a running `old_path` into `new_path`."""
    from flowspec.reload.diff import diff
    from flowspec.reload.plan import build_plan
    from flowspec.spec.compile import compile_text
    from flowspec.spec.load import parse

    try:
        old_text = Path(old_path).read_text(encoding="utf-8")
        new_text = Path(new_path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"flowspec plan: cannot read: {exc}", file=err)
        return EXIT_USAGE
    old = compile_text(old_text, old_path)
    if not old.ok or old.graph is None:
        _errors(old.errors, fmt, out, f"{old_path} is not a valid spec")
        return EXIT_INVALID
    new = compile_text(new_text, new_path, version=old.graph.version + 1)
    if not new.ok or new.graph is None:
        _errors(new.errors, fmt, out, f"{new_path} is not a valid spec: nothing would change")
        return EXIT_INVALID
    old_data, new_data = parse(old_text, old_path).data, parse(new_text, new_path).data
    changes = diff(old_data, new_data)
    plan = build_plan(old.graph, new.graph, changes, served=True)
    # The payloads hold resolved values; environment values show as their ${NAME}.
    redactor = Redactor.of([old_data, new_data], os.environ)
    if fmt == "json":
        json.dump(redactor.data(plan.to_json()), out, indent=2)
        print(file=out)
    else:
        print(redactor.text(plan.render()), file=out)
    return EXIT_OK if plan.ok else EXIT_INVALID


def _errors(errors: list[Any], fmt: str, out: TextIO, summary: str) -> None:
    if fmt == "json":
        json.dump({"ok": False, "errors": [d.to_json() for d in errors]}, out, indent=2)
        print(file=out)
        return
    for error in errors:
        print(error, file=out)
    print(summary, file=out)


def _patch_argument(value: str) -> Any:
    text = Path(value[1:]).read_text(encoding="utf-8") if value.startswith("@") else value
    return json.loads(text)


def _field_types(args: argparse.Namespace) -> Callable[[str], set[str] | None]:
    """The JSON types the schema allows at a pointer, with node types read from the spec file
    when patching one (a running server's spec is not at hand: every node kind is asked)."""
    from flowspec.reload.diff import split_pointer, value_types
    from flowspec.spec.load import parse
    from flowspec.spec.schema import build_schema

    nodes: dict[str, Any] = {}
    if args.file:
        try:
            data = parse(Path(args.file).read_text(encoding="utf-8"), args.file).data
            nodes = data.get("nodes") or {} if isinstance(data, dict) else {}
        except (OSError, UnicodeDecodeError, SpecInvalid):
            nodes = {}  # the file's own problem is reported when it is patched

    def types(pointer: str) -> set[str] | None:
        tokens = split_pointer(pointer)
        node = nodes.get(tokens[1]) if len(tokens) > 1 and tokens[0] == "nodes" else None
        node_type = node.get("type") if isinstance(node, dict) else None
        return value_types(build_schema(), tokens, node_type if isinstance(node_type, str)
                           else None)

    return types


def patch_command(args: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    from flowspec.reload import fileedit

    try:
        typed = _field_types(args)
        operations = [*fileedit.assignments_patch(
            [fileedit.parse_assignment(a, typed(fileedit.split_assignment(a)[0]))
             for a in args.assignments]
            + [fileedit.parse_json_assignment(a) for a in args.json_assignments])]
        if args.json_patch:
            extra = _patch_argument(args.json_patch)
            if not isinstance(extra, list):
                raise ValueError("--json-patch takes a JSON array of operations")
            operations = [*extra, *operations]
        merge = _patch_argument(args.merge_patch) if args.merge_patch else None
    except SpecInvalid as exc:
        print(f"flowspec patch: {exc}", file=err)
        return EXIT_USAGE
    except (OSError, ValueError) as exc:
        print(f"flowspec patch: {exc}", file=err)
        return EXIT_USAGE
    if merge is not None and operations:
        print("flowspec patch: give either --merge-patch or --set/--json-patch", file=err)
        return EXIT_USAGE
    if merge is None and not operations:
        print("flowspec patch: nothing to change (use --set, --set-json, --json-patch or "
              "--merge-patch)", file=err)
        return EXIT_USAGE
    kind, patch = ("merge-patch", merge) if merge is not None else ("json-patch", operations)
    if args.server:
        if args.file:
            print("flowspec patch: give FILE or --server, not both", file=err)
            return EXIT_USAGE
        return asyncio.run(_patch_server(args, kind, patch, out, err))
    if not args.file:
        print("flowspec patch: give a FILE to edit or --server URL", file=err)
        return EXIT_USAGE
    return _patch_file(args.file, kind, patch, out, err)


def _patch_file(path: str, kind: str, patch: Any, out: TextIO, err: TextIO) -> int:
    from flowspec.reload import fileedit
    from flowspec.reload.atomic import replace_file
    from flowspec.reload.diff import diff
    from flowspec.spec.compile import compile_text
    from flowspec.spec.load import parse

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"flowspec patch: cannot read {path}: {exc}", file=err)
        return EXIT_USAGE
    try:
        data = parse(text, path).data
        new = fileedit.apply_json_patch(data, patch) if kind == "json-patch" \
            else fileedit.apply_merge_patch(data, patch)
        new_text = fileedit.rewrite(text, new, source=path)
    except SpecInvalid as exc:
        for diagnostic in exc.diagnostics:
            print(f"flowspec patch: {diagnostic}", file=err)
        return EXIT_INVALID
    report = compile_text(new_text, path)
    if not report.ok:
        for error in report.errors:
            print(error, file=err)
        print(f"{path}: the change does not validate; the file is unchanged", file=err)
        return EXIT_INVALID
    changes = diff(data, parse(new_text, path).data)
    if changes:
        try:
            replace_file(path, new_text)
        except OSError as exc:
            print(f"flowspec patch: cannot write {path}: {exc.strerror or exc}; the file is "
                  "unchanged", file=err)
            return EXIT_USAGE
    for change in changes:
        print(f"{change.op} {change.pointer} [{change.mutability.value}]", file=out)
    print(f"{path}: {len(changes)} change(s) written" if changes else f"{path}: no change",
          file=out)
    return EXIT_OK


def _token_for(args: argparse.Namespace) -> str | None:
    """The admin token: --token-file, FLOWSPEC_ADMIN_TOKEN, or the file a local server on the
    URL's port wrote."""
    from flowspec.server.guard import port_of, read_token_file, token_path

    if args.token_file:
        try:
            return read_token_file(args.token_file)
        except (OSError, ValueError):
            return None
    if os.environ.get("FLOWSPEC_ADMIN_TOKEN"):
        return os.environ["FLOWSPEC_ADMIN_TOKEN"]
    port = port_of(args.server)
    if port is None:
        return None
    try:
        return read_token_file(token_path(port))
    except (OSError, ValueError):
        return None


async def _patch_server(args: argparse.Namespace, kind: str, patch: Any, out: TextIO,
                        err: TextIO) -> int:
    import aiohttp

    url = args.server.rstrip("/") + "/admin/spec"
    headers = {"Content-Type": f"application/{kind}+json"}
    token = _token_for(args)
    if token is None:
        print(f"flowspec patch: no admin token for {args.server}: pass --token-file FILE or set "
              "FLOWSPEC_ADMIN_TOKEN (a server started without one printed its token and wrote "
              "it to a file this command reads on the same machine)", file=err)
        return EXIT_USAGE
    headers["Authorization"] = f"Bearer {token}"
    if args.if_match:
        headers["If-Match"] = f'"{args.if_match.strip(chr(34))}"'
    params = {"spec": args.spec} if args.spec else {}
    try:
        async with aiohttp.ClientSession() as http, http.patch(
                url, data=json.dumps(patch), headers=headers, params=params) as response:
            body = await response.json(content_type=None)
            status = response.status
    except (aiohttp.ClientError, ValueError) as exc:
        print(f"flowspec patch: {url}: {exc}", file=err)
        return EXIT_USAGE
    if getattr(args, "format", "text") == "json":
        json.dump(body, out, indent=2)
        print(file=out)
    else:
        print(describe_result(status, body), file=out if status == 200 else err)
    if status == 200:
        return EXIT_OK
    return EXIT_INVALID if status in (403, 409, 422) else EXIT_USAGE


def describe_result(status: int, body: Any) -> str:
    """An admin API answer for people: what changed and where it applied, or why nothing did
    (the located errors, as `flowspec validate` prints them)."""
    if not isinstance(body, dict):
        return f"flowspec patch: the server answered {status} with something that is not JSON"
    if status != 200:
        lines = [f"{_where(e)}: {e.get('message', '')} [{e.get('code', '')}]"
                 for e in body.get("errors", []) if isinstance(e, dict)]
        reason = body.get("message") or body.get("error") or f"HTTP {status}"
        return "\n".join([*lines, f"flowspec patch: {reason} (HTTP {status}, version "
                                   f"{body.get('version', '?')})"])
    plan = body.get("plan") or {}
    lines = []
    for change in plan.get("changes", []):
        note = f": {change['reason']}" if change.get("reason") else ""
        lines.append(f"{change.get('op', ''):<7} {change.get('pointer', '')}  "
                     f"[{change.get('mutability', '')}] {change.get('applies', '')}{note}")
    sessions = body.get("sessions", [])
    counts: dict[str, int] = {}
    for session in sessions:
        counts[str(session.get("status"))] = counts.get(str(session.get("status")), 0) + 1
    live = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    lines.append(f"version {body.get('version')} {body.get('outcome', 'applied')}: "
                 f"{len(plan.get('changes', []))} change(s); {len(sessions)} live session(s)"
                 + (f" ({live})" if live else ""))
    return "\n".join(lines)


def _where(error: dict[str, Any]) -> str:
    where = str(error.get("source") or "<spec>")
    if error.get("line") is not None:
        where += f":{error['line']}"
        if error.get("column") is not None:
            where += f":{error['column']}"
    return f"{where} {error.get('pointer') or '/'}"
