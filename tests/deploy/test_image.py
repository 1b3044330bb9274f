"""The Dockerfile, checked without Docker: parsed by BuildKit's own parser (the
`dockerfile` package wraps it), every COPY and RUN held against the repository, and the
install step held against the README and pyproject.toml.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import dockerfile
import pytest

from tests.deploy import manifests

ROOT = manifests.ROOT
APP_UID = 10001  # the pods' runAsUser (tests/deploy/test_kubernetes.py)


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[dockerfile.Command] = field(default_factory=list)

    def all(self, cmd: str) -> list[dockerfile.Command]:
        return [i for i in self.instructions if i.cmd == cmd.upper()]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for instruction in self.all("env"):
            pairs = instruction.value
            values.update(zip(pairs[::2], pairs[1::2], strict=True))
        return values

    def args(self) -> dict[str, str]:
        return dict(i.value[0].split("=", 1) for i in self.all("arg") if "=" in i.value[0])


@pytest.fixture(scope="module")
def parsed() -> tuple[dict[str, str], list[Stage]]:
    """(global ARG defaults, stages)."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in dockerfile.parse_file(str(manifests.DOCKERFILE)):
        if instruction.cmd == "FROM":
            base, *rest = instruction.value
            name = rest[1] if len(rest) == 2 and rest[0].upper() == "AS" else str(len(stages))
            stages.append(Stage(name, substitute(base, global_args)))
        elif not stages and instruction.cmd == "ARG":
            key, _, value = instruction.value[0].partition("=")
            global_args[key] = value
        else:
            stages[-1].instructions.append(instruction)
    return global_args, stages


def substitute(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values[m[1] or m[2]], text)


def dockerignore_allows(path: str) -> bool:
    """.dockerignore's rule: the last pattern matching a path (or a parent) decides."""
    allowed = True
    parts = Path(path).parts
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").rstrip("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pattern) for p in prefixes):
            allowed = negate
    return allowed


def test_two_stages_from_a_pinned_base(parsed) -> None:
    _, stages = parsed
    assert len(stages) >= 2, "multi-stage: build tools stay out of the final image"
    for stage in stages:
        image, _, digest = stage.base.partition("@")
        tag = image.rpartition(":")[2]
        assert digest.startswith("sha256:") or re.fullmatch(r"\d+\.\d+\.\d+[\w.-]*", tag), (
            f"stage {stage.name}: {stage.base} is neither an exact tag nor a digest"
        )


def test_the_final_stage_runs_unprivileged_and_installs_nothing(parsed) -> None:
    _, stages = parsed
    final = stages[-1]
    (user,) = final.all("user")
    assert user.value[0].split(":")[0] == str(APP_UID)
    # The user is created before USER names it, and nothing is built in the final stage.
    assert any(f"--uid {APP_UID}" in r.value[0] for r in final.all("run"))
    for run in final.all("run"):
        assert "pip install" not in run.value[0] and "apt-get" not in run.value[0]


def test_every_copy_source_exists_and_reaches_the_build_context(parsed) -> None:
    _, stages = parsed
    earlier: dict[str, Stage] = {}
    for stage in stages:
        for copy in stage.all("copy"):
            *sources, _ = copy.value
            source_stage = next(
                (f.split("=", 1)[1] for f in copy.flags if f.startswith("--from=")), None
            )
            for source in sources:
                if source_stage:
                    assert source_stage in earlier, f"COPY --from={source_stage}: no such stage"
                    made = " ".join(r.value[0] for r in earlier[source_stage].all("run"))
                    assert source in made, f"{source} is not created in {source_stage}"
                else:
                    assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
                    assert dockerignore_allows(source), f"COPY {source}: .dockerignore drops it"
        earlier[stage.name] = stage


def test_nothing_the_image_must_not_hold_is_in_the_build_context() -> None:
    for path in (".venv", "models", "reports", ".cache", ".git", "tests", ".env"):
        assert not dockerignore_allows(path), path


def test_the_install_step_is_the_readmes_with_existing_extras(parsed) -> None:
    _, stages = parsed
    build = stages[0]
    (install,) = [r.value[0] for r in build.all("run") if "pip install" in r.value[0]]
    command = install.split("&&")[-1].strip()
    words = shlex.split(command)
    assert words[1:3] == ["install", ".[${EXTRAS}]"], command
    extras = build.args()["EXTRAS"]
    project = manifests.pyproject()["project"]
    assert set(extras.split(",")) <= set(project["optional-dependencies"])
    readme = (ROOT / "README.md").read_text()
    assert f'pip install ".[{extras}]"' in readme
    # The -gpu build adds the gpu extra: the same TensorFlow pin, with its CUDA libraries.
    (gpu_tf,) = project["optional-dependencies"]["gpu"]
    train_tf = next(
        r for r in project["optional-dependencies"]["train"] if r.startswith("tensorflow==")
    )
    assert gpu_tf == train_tf.replace("tensorflow==", "tensorflow[and-cuda]==")


def test_the_image_ships_the_compatibility_gates_environment(parsed) -> None:
    _, stages = parsed
    build, final = stages[0], stages[-1]
    assert build.env()["SERVING_COMPAT_CACHE"] == final.env()["SERVING_COMPAT_CACHE"]
    cache = final.env()["SERVING_COMPAT_CACHE"]
    assert any("training.compat --prepare" in r.value[0] for r in build.all("run"))
    assert any(c.value[0] == cache for c in final.all("copy") if c.flags == ("--from=build",))
    # The venv the gate's environment was created from sits at the same path.
    assert any(c.value[:2] == ("/opt/venv", "/opt/venv") for c in final.all("copy"))


def test_the_commands_the_deployments_run_exist_in_the_image(
    parsed, compose, model_stores, loadtest
) -> None:
    _, stages = parsed
    final = stages[-1]
    (workdir,) = final.all("workdir")
    copied = {c.value[-1].rstrip("/") for c in final.all("copy") if not c.flags}
    assert workdir.value[0] == "/app"
    assert {"training", "serving", "client", "loadtest", "data/mnist.npz"} <= copied
    # training.data reads data/mnist.npz beside the training package; so it must be here.
    assert final.env()["PYTHONPATH"] == workdir.value[0]
    assert final.env()["PATH"].startswith("/opt/venv/bin:")  # python and locust
    (cmd,) = final.all("cmd")
    assert list(cmd.value) == compose["services"]["train"]["command"]
    for objects in (*model_stores.values(), loadtest):
        for obj in objects:
            if obj["kind"] in ("CronJob", "Deployment"):
                spec = obj["spec"].get("jobTemplate", obj)["spec"]["template"]["spec"]
                (main,) = spec["containers"]
                assert main["command"][0] in ("python", "locust")
                assert not main.get("workingDir"), "the image's WORKDIR is where the code is"
