"""Reading the deployment files the way Docker Compose and Kubernetes read them.

Everything here goes through the real tools (`docker-compose config`, `kubectl kustomize`)
rather than parsing the YAML sources, so the tests see what would actually be deployed:
merged YAML anchors, kustomize patches, generated ConfigMap names, image overrides.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.deploy import compose_v2

ROOT = Path(__file__).resolve().parents[2]
SERVING_CONFIG_DIR = ROOT / "serving"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
K8S = ROOT / "k8s"
OVERLAYS = ("gpu", "cpu")  # k8s/overlays/<variant>: the servers
MODEL_STORES = ("gpu", "cpu")  # k8s/model-store/<variant>: namespace, PVC, training
COMPONENTS = ("prometheus-operator", "hpa-request-metrics")  # k8s/components/<name>
SERVER_CONTAINER = "tensorflow-serving"
PROJECT_IMAGE = "mnist-serving"  # the Dockerfile's image

# TF Serving's message types for the config files. tensorflow-serving-api ships only the
# client-side protos (ModelServerConfig among them); BatchingParameters and MonitoringConfig
# come from serving/protos/server_configs.proto, which has TF Serving's field names and
# numbers and is what the local server parses these files with.
PROTO_MODULES = {
    "ModelServerConfig": "tensorflow_serving.config.model_server_config_pb2",
    "BatchingParameters": "serving.protos.server_configs_pb2",
    "MonitoringConfig": "serving.protos.server_configs_pb2",
}


def proto_class(message: str) -> type:
    """TF Serving's message class, or a test failure that says which module is missing."""
    module_name = PROTO_MODULES[message]
    try:
        module: ModuleType = importlib.import_module(module_name)
    except ImportError as exc:
        pytest.fail(f"{module_name} is not importable ({exc}); it holds TF Serving's {message}")
    return getattr(module, message)


def run_tool(
    argv: list[str], what: str, install_hint: str, env: dict[str, str] | None = None
) -> str:
    """Run a command line tool the tests depend on; a missing tool fails, never skips."""
    if shutil.which(argv[0]) is None:
        pytest.fail(f"`{argv[0]}` is not installed; {what} needs it ({install_hint})")
    result = subprocess.run(
        argv,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    if result.returncode != 0:
        pytest.fail(f"`{' '.join(argv)}` failed ({result.returncode}):\n{result.stderr}")
    return result.stdout


def compose_config(*files: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The fully resolved compose model of `files` by Compose v1 (Debian's docker-compose)."""
    argv = ["docker-compose"]
    for file in files:
        argv += ["-f", str(file)]
    text = run_tool(
        [*argv, "config"],
        "validating docker-compose.yml",
        "Debian: apt-get install -y docker-compose",
        env=env,
    )
    return yaml.safe_load(text)


def compose_v2_config(*files: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The same by Compose v2 (`docker compose config`), every profile enabled."""
    argv = [str(compose_v2.BINARY)]
    for file in files:
        argv += ["-f", str(file)]
    text = run_tool(
        [*argv, "--profile", "*", "config", "--format", "json"],
        "validating docker-compose.yml with Compose v2",
        compose_v2.INSTALL_HINT,
        env=env,
    )
    return json.loads(text)


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """The objects `kubectl apply -k directory` would send to the cluster."""
    text = run_tool(
        ["kubectl", "kustomize", str(directory)],
        "rendering k8s/",
        "install kubectl, which bundles kustomize",
    )
    return [doc for doc in yaml.safe_load_all(text) if doc]


def kustomize_with_components(
    resource: Path, components: list[Path], workdir: Path
) -> list[dict[str, Any]]:
    """`resource` rendered with `components` added, as a user's overlay would add them.

    kustomize takes no absolute paths in a kustomization, so the throwaway one written
    in `workdir` names the checkout's directories relatively.
    """
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(resource, workdir)],
        "components": [os.path.relpath(c, workdir) for c in components],
    }
    (workdir / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return kustomize(workdir)


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def project_image(variant: str = "cpu") -> str:
    """The Dockerfile's image as the deploy files must name it: pyproject's version."""
    version = pyproject()["project"]["version"]
    return f"{PROJECT_IMAGE}:{version}{'-gpu' if variant == 'gpu' else ''}"


def tf_serving_image(variant: str = "cpu") -> str:
    """The TF Serving image pinned in serving/tfserving.env, -gpu for the GPU variant."""
    from training import compat

    return compat.pinned_image() + ("-gpu" if variant == "gpu" else "")


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def container(pod_spec: dict[str, Any], name: str) -> dict[str, Any]:
    matches = [c for c in pod_spec["containers"] if c["name"] == name]
    assert len(matches) == 1, f"expected one container {name}, found {len(matches)}"
    return matches[0]


def server_pod(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return find(objects, "Deployment", "mnist-serving")["spec"]["template"]["spec"]


def flag_value(flags: list[str], name: str) -> str | None:
    """The value of `--name=value` in a flag list (the last one wins, as in TF Serving)."""
    values = [f.split("=", 1)[1] for f in flags if f.startswith(f"--{name}=")]
    return values[-1] if values else None


@dataclass(frozen=True)
class Mount:
    source: str  # host path (compose) or volume name (Kubernetes)
    target: str
    read_only: bool


def compose_mounts(service: dict[str, Any]) -> list[Mount]:
    """Bind mounts of a resolved compose service, in either short or long syntax."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            parts = volume.split(":")
            mode = parts[2] if len(parts) > 2 else "rw"
            mounts.append(Mount(parts[0], parts[1], "ro" in mode.split(",")))
        else:
            mounts.append(Mount(volume["source"], volume["target"], bool(volume.get("read_only"))))
    return mounts


def compose_server_flags(service: dict[str, Any]) -> list[str]:
    """tensorflow_model_server's arguments: entrypoint after the binary, then command."""
    entrypoint = service["entrypoint"]
    assert entrypoint[0] == "tensorflow_model_server", entrypoint
    return [*entrypoint[1:], *service.get("command", [])]


def k8s_server_flags(objects: list[dict[str, Any]]) -> list[str]:
    spec = container(server_pod(objects), SERVER_CONTAINER)
    assert spec["command"][0] == "tensorflow_model_server", spec["command"]
    return [*spec["command"][1:], *spec.get("args", [])]


def resolve(path: str, mounts: dict[str, Path]) -> Path:
    """A container path mapped through `mounts` (container dir -> local dir)."""
    pure = PurePosixPath(path)
    for target, local in mounts.items():
        if pure == PurePosixPath(target) or PurePosixPath(target) in pure.parents:
            return local / pure.relative_to(target)
    raise AssertionError(f"{path} is on no mounted volume ({sorted(mounts)})")


def k8s_config_files(objects: list[dict[str, Any]]) -> dict[str, str]:
    """File name -> content of the server's /etc/tfserving (its projected ConfigMaps)."""
    pod = server_pod(objects)
    files: dict[str, str] = {}
    for volume in pod["volumes"]:
        for source in volume.get("projected", {}).get("sources", []):
            config_map = find(objects, "ConfigMap", source["configMap"]["name"])
            items = source["configMap"].get("items")
            if items:
                files.update({i["path"]: config_map["data"][i["key"]] for i in items})
            else:
                files.update(config_map["data"])
    return files


def image_tag(image: str) -> str:
    name, _, tag = image.rpartition(":")
    assert name and "/" not in tag, f"image {image!r} has no tag"
    return tag
