"""`deploy/`: the Kubernetes manifests are valid objects of their kinds (every field checked
against the Kubernetes schema), and agree with what `flowspec serve` expects and the image runs."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from ruamel.yaml import YAML

from flowspec.cli import build_parser
from flowspec.spec.compile import compile_text

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KUBERNETES_VERSION = "1.30.0"


def documents() -> list[dict[str, Any]]:
    found = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        for doc in YAML(typ="safe").load_all(path.read_text()):
            if doc:
                found.append(doc)
    return found


def one(kind: str, name: str) -> dict[str, Any]:
    [doc] = [d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def entrypoint() -> list[str]:
    text = (DEPLOY / "Dockerfile").read_text()
    [line] = re.findall(r"^ENTRYPOINT (\[.*\])$", text, re.M)
    command: list[str] = json.loads(line)
    return command


@pytest.mark.parametrize("doc", documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_manifest_is_a_valid_object_of_its_kind(doc: dict[str, Any]) -> None:
    # strict: a field its kind does not have is an error, not ignored.
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_deployment_runs_what_serve_accepts_on_the_port_its_probes_read() -> None:
    deployment = one("Deployment", "flowspec")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    command = [*entrypoint(), *container["args"]]
    assert command[:2] == ["flowspec", "serve"]
    args = build_parser(["serve"]).parse_args(command[1:])
    assert args.host == "0.0.0.0"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == args.port
    for probe in ("readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert (get["path"], ports[get["port"]]) == ("/healthz", args.port)
    # Liveness outlasts a drain (during which /healthz is 503) so a draining pod is not killed.
    live = container["livenessProbe"]
    assert live["periodSeconds"] * live["failureThreshold"] > args.drain_timeout
    # The grace period covers the preStop pause and the drain.
    pause = float(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] >= pause + args.drain_timeout
    # The spec path is the ConfigMap's key, mounted read-only.
    [spec_path] = args.specs
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    [spec_mount] = [m for m in mounts.values() if spec_path.startswith(m["mountPath"] + "/")]
    assert spec_mount["readOnly"] is True
    config = one("ConfigMap", volumes[spec_mount["name"]]["configMap"]["name"])
    assert Path(spec_path).name in config["data"]
    # The state directory (version log, token file) is writable though the root is not.
    env = {e["name"]: e["value"] for e in container["env"]}
    state = env["FLOWSPEC_STATE_DIR"]
    assert any(state.startswith(m["mountPath"]) and "emptyDir" in volumes[name]
               for name, m in mounts.items())
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # Secrets come from the Secret, never from the command line.
    [source] = container["envFrom"]
    secret = one("Secret", source["secretRef"]["name"])
    assert {"OPENAI_API_KEY", "FLOWSPEC_ADMIN_TOKEN"} <= set(secret["stringData"])
    assert not any("token" in a.lower() and "file" not in a.lower() for a in command)
    # The store it names is the Redis Service.
    store = args.store.removeprefix("redis://").split("/")[0]
    host, port = store.split(":")
    redis = one("Service", host)
    assert int(port) in [p["port"] for p in redis["spec"]["ports"]]
    service = one("Service", "flowspec")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_the_configmap_holds_a_valid_spec() -> None:
    text = one("ConfigMap", "flowspec-bot")["data"]["bot.yaml"]
    report = compile_text(text, "bot.yaml", {"OPENAI_API_KEY": "sk-from-the-secret"})
    assert report.ok, [str(d) for d in report.errors]


def test_the_image_runs_as_a_user_and_checks_health() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.1[1-9]-slim$", text, re.M)
    [user] = re.findall(r"^USER (\S+)$", text, re.M)
    assert user not in ("root", "0")
    [check] = re.findall(r"^\s+CMD (\[.*\])$", text, re.M)
    assert "/healthz" in " ".join(json.loads(check))
    command = entrypoint()
    assert shlex.join(command).startswith("flowspec serve --host 0.0.0.0")
    assert "'.[redis]'" in text
