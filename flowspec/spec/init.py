"""`flowspec init`: a starter spec with the schema modeline, ready to validate and serve."""

from __future__ import annotations

import json
import os
from pathlib import Path

TEMPLATES = {
    "voice": """\
# yaml-language-server: $schema={schema}
flowspec: 1
name: {name}
description: A browser voice assistant on the OpenAI Realtime API.
nodes:
  caller:
    type: transport.websocket
    audio: {{encoding: pcm16, sample_rate: 24000}}
  llm:
    type: openai.realtime
    settings:
      system_instruction: You are a helpful, concise assistant.
      session_properties:
        audio:
          input:
            turn_detection: {{type: semantic_vad}}
          output: {{voice: marin}}
edges:
  - caller -> llm -> caller
""",
    "text": """\
# yaml-language-server: $schema={schema}
flowspec: 1
name: {name}
description: A text chat bot on the OpenAI Responses API.
nodes:
  chat:
    type: transport.text
  llm:
    type: openai.responses
    settings:
      model: gpt-4.1
      system_instruction: You are a helpful assistant.
edges:
  - chat -> llm -> chat
""",
}


def init_spec(
    path: Path, *, name: str, template: str, schema: str | None, force: bool
) -> list[Path]:
    """Write a starter spec (and, unless `schema` names one, the schema beside it).

    Returns the files written. Raises FileExistsError rather than overwrite without `force`.
    """
    from flowspec.spec.schema import schema_text

    if path.exists() and not force:
        raise FileExistsError(f"{path} exists (use --force to overwrite it)")
    written = []
    if schema is None:
        schema_path = path.parent / "flowspec.schema.json"
        schema_path.parent.mkdir(parents=True, exist_ok=True)
        schema_path.write_text(schema_text(), encoding="utf-8")
        written.append(schema_path)
        schema = "./" + os.path.relpath(schema_path, path.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = TEMPLATES[template].format(name=name, schema=schema)
    if path.suffix.lower() == ".json":
        text = _as_json(text, schema)
    path.write_text(text, encoding="utf-8")
    written.append(path)
    return written


def _as_json(text: str, schema: str) -> str:
    """The template as JSON, its schema named by `$schema` (JSON has no modeline)."""
    from ruamel.yaml import YAML

    data = YAML(typ="safe").load(text)
    return json.dumps({"$schema": schema, **data}, indent=2, ensure_ascii=False) + "\n"
