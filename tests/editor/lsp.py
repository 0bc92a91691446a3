"""A minimal Language Server Protocol client over stdio, to drive the real yaml-language-server.

JSON-RPC messages are framed with `Content-Length` headers. A reader thread parses the server's
output: responses go to the waiting request, diagnostics are kept per document, and the server's
own requests (configuration, capability registration) are answered so it never stalls. Every wait
is bounded; a server that does not answer fails the test with what it wrote to stderr.
"""

from __future__ import annotations

import itertools
import json
import queue
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

WAIT_S = 30.0
"""Upper bound on any single wait: generous, since it only matters when something is broken."""

CURSOR = "<|>"


class ServerError(AssertionError):
    """The server failed, answered with an error, or did not answer in time."""


def cursor(text: str) -> tuple[str, int, int]:
    """`text` without its one `<|>` marker, and the marker's (line, character), zero-based."""
    index = text.index(CURSOR)
    before = text[:index]
    line = before.count("\n")
    character = index - (before.rfind("\n") + 1)
    return before + text[index + len(CURSOR):], line, character


class LanguageServer:
    """One server process; `settings` answer its `workspace/configuration` pulls by section."""

    def __init__(self, command: Sequence[str], root: Path, settings: dict[str, Any]) -> None:
        self.root = root
        self.settings = settings
        self._ids = itertools.count(1)
        self._replies: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._diagnostics: dict[str, queue.Queue[list[dict[str, Any]]]] = {}
        self._versions: dict[str, int] = {}
        self._process = subprocess.Popen(
            list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self._stderr: list[bytes] = []
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        self._err_reader = threading.Thread(target=self._drain_stderr, daemon=True)
        self._err_reader.start()
        self.capabilities = self.request("initialize", {
            "processId": None,
            "rootUri": root.as_uri(),
            "workspaceFolders": [{"uri": root.as_uri(), "name": root.name}],
            "capabilities": {
                "workspace": {"configuration": True,
                              "didChangeConfiguration": {"dynamicRegistration": False}},
                "textDocument": {
                    "completion": {"completionItem": {
                        "snippetSupport": True,
                        "documentationFormat": ["markdown", "plaintext"],
                    }},
                    "hover": {"contentFormat": ["markdown", "plaintext"]},
                    "publishDiagnostics": {"relatedInformation": False},
                },
            },
        })["capabilities"]
        self.notify("initialized", {})
        # The server pulls its settings (answered from `self.settings`) when told they changed.
        self.notify("workspace/didChangeConfiguration", {"settings": None})

    # -- transport ---------------------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        stdin = self._process.stdin
        assert stdin is not None
        stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        stdin.flush()

    def _read_loop(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        while True:
            length = None
            while True:
                line = stdout.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("ascii").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if length is None:
                continue
            self._dispatch(json.loads(stdout.read(length)))

    def _drain_stderr(self) -> None:
        stderr = self._process.stderr
        assert stderr is not None
        for line in stderr:
            self._stderr.append(line)

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "id" in message and "method" in message:
            self._send({"id": message["id"], "result": self._answer(message)})
        elif "id" in message:
            with self._lock:
                waiting = self._replies.get(message["id"])
            if waiting is not None:
                waiting.put(message)
        elif message.get("method") == "textDocument/publishDiagnostics":
            params = message["params"]
            self._inbox(params["uri"]).put(params["diagnostics"])

    def _answer(self, request: dict[str, Any]) -> Any:
        if request["method"] == "workspace/configuration":
            return [self.settings.get(item.get("section", ""))
                    for item in request["params"]["items"]]
        return None  # registrations, progress tokens: acknowledged

    def _inbox(self, uri: str) -> queue.Queue[list[dict[str, Any]]]:
        with self._lock:
            return self._diagnostics.setdefault(uri, queue.Queue())

    def _failure(self, what: str) -> ServerError:
        tail = b"".join(self._stderr[-20:]).decode(errors="replace")
        return ServerError(f"yaml-language-server: {what}\n--- its stderr ---\n{tail}")

    # -- requests ----------------------------------------------------------------------------

    def request(self, method: str, params: dict[str, Any] | None) -> Any:
        ident = next(self._ids)
        reply: queue.Queue[dict[str, Any]] = queue.Queue()
        with self._lock:
            self._replies[ident] = reply
        message: dict[str, Any] = {"id": ident, "method": method}
        if params is not None:
            message["params"] = params
        self._send(message)
        try:
            answer = reply.get(timeout=WAIT_S)
        except queue.Empty:
            raise self._failure(f"no answer to {method} within {WAIT_S:g} s") from None
        finally:
            with self._lock:
                del self._replies[ident]
        if "error" in answer:
            raise self._failure(f"{method} failed: {answer['error']}")
        return answer.get("result")

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self._send({"method": method, "params": params})

    def open(self, path: Path, text: str) -> str:
        """Open (or replace) a document; returns its URI. The file need not exist on disk."""
        uri = path.as_uri()
        version = self._versions.get(uri, 0) + 1
        self._versions[uri] = version
        if version == 1:
            self.notify("textDocument/didOpen", {"textDocument": {
                "uri": uri, "languageId": "yaml", "version": version, "text": text}})
        else:
            self.notify("textDocument/didChange", {
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"text": text}]})
        return uri

    def completion(self, uri: str, line: int, character: int) -> list[dict[str, Any]]:
        result = self.request("textDocument/completion", {
            "textDocument": {"uri": uri}, "position": {"line": line, "character": character}})
        if result is None:
            return []
        items: list[dict[str, Any]] = result["items"] if isinstance(result, dict) else result
        return items

    def hover(self, uri: str, line: int, character: int) -> str:
        """The hover text (markdown), or '' when the server has none."""
        result = self.request("textDocument/hover", {
            "textDocument": {"uri": uri}, "position": {"line": line, "character": character}})
        if not result:
            return ""
        contents = result["contents"]
        if isinstance(contents, dict):
            return str(contents["value"])
        if isinstance(contents, list):
            return "\n".join(c if isinstance(c, str) else c["value"] for c in contents)
        return str(contents)

    def diagnostics(self, uri: str) -> list[dict[str, Any]]:
        """The next diagnostics the server publishes for `uri` (after an open or a change)."""
        try:
            return self._inbox(uri).get(timeout=WAIT_S)
        except queue.Empty:
            raise self._failure(f"no diagnostics for {uri} within {WAIT_S:g} s") from None

    def close(self) -> None:
        try:
            self.request("shutdown", None)
            self.notify("exit", {})
            self._process.wait(timeout=WAIT_S)
        except (ServerError, OSError, subprocess.TimeoutExpired):
            self._process.kill()
            self._process.wait(timeout=WAIT_S)
        # The readers end at EOF once the process is gone; close the pipes only after them.
        self._reader.join(timeout=WAIT_S)
        self._err_reader.join(timeout=WAIT_S)
        for stream in (self._process.stdin, self._process.stdout, self._process.stderr):
            if stream is not None:
                stream.close()
