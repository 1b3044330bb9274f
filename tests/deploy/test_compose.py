"""docker-compose.yml: accepted by Compose v1 and v2, and the same server as on Kubernetes.

The `compose` fixture is Compose v1 (Debian's docker-compose 1.29), `compose_v2` is
Docker Compose v2.40 (`docker compose`, what the README tells users to run); both must
accept the file and read it the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.deploy import manifests

VARIANTS = {"gpu": "serving", "cpu": "serving-cpu"}
SERVICES = {"serving", "serving-cpu", "train", "locust-master", "locust-worker", "prometheus"}
PROJECT_IMAGE_SERVICES = ("train", "locust-master", "locust-worker")


def gpu_reservations(service: dict[str, Any]) -> list[dict[str, Any]]:
    return service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])


def published_ports(service: dict[str, Any]) -> set[tuple[str, int, int]]:
    """(host address, published, target) of a service, in v1's or v2's notation."""
    ports = set()
    for port in service.get("ports", []):
        if isinstance(port, dict):
            ports.add((port.get("host_ip", ""), int(port["published"]), int(port["target"])))
        else:
            *address, published, target = port.split("/")[0].split(":")
            ports.add((":".join(address), int(published), int(target)))
    return ports


def test_compose_accepts_the_file_and_defines_every_service(
    compose: dict[str, Any], compose_v2: dict[str, Any]
) -> None:
    assert set(compose["services"]) == SERVICES
    assert set(compose_v2["services"]) == SERVICES


def test_compose_v1_and_v2_read_the_file_alike(
    compose: dict[str, Any], compose_v2: dict[str, Any]
) -> None:
    """What each service runs, and how it is wired, does not depend on the Compose version."""
    for name in SERVICES:
        v1, v2 = compose["services"][name], compose_v2["services"][name]
        for key in ("image", "entrypoint", "command", "user", "read_only", "profiles"):
            assert v1.get(key) == v2.get(key), (name, key)
        assert published_ports(v1) == published_ports(v2), name
        assert {m.target for m in manifests.compose_mounts(v1)} == {
            m.target for m in manifests.compose_mounts(v2)
        }, name
        conditions = (
            {d: c["condition"] for d, c in s.get("depends_on", {}).items()} for s in (v1, v2)
        )
        assert next(conditions) == next(conditions), name
        assert v1.get("healthcheck", {}).get("test") == v2.get("healthcheck", {}).get("test")


def test_only_the_default_server_starts_without_a_profile(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert not services["serving"].get("profiles")
    assert services["serving-cpu"]["profiles"] == ["cpu"]
    assert services["train"]["profiles"] == ["train"]
    assert (
        services["locust-master"]["profiles"] == services["locust-worker"]["profiles"] == ["locust"]
    )
    assert services["prometheus"]["profiles"] == ["monitoring"]


def test_prometheus_scrapes_the_servers_metrics_path(compose: dict[str, Any]) -> None:
    import yaml
    from google.protobuf import text_format

    from serving.protos import server_configs_pb2

    scrape = yaml.safe_load((manifests.ROOT / "serving" / "prometheus.yml").read_text())
    (job,) = scrape["scrape_configs"]
    monitoring = text_format.Parse(
        (manifests.ROOT / "serving" / "monitoring.config").read_text(),
        server_configs_pb2.MonitoringConfig(),
    )
    assert job["metrics_path"] == monitoring.prometheus_config.path
    assert job["static_configs"][0]["targets"] == ["serving:8501"]
    assert "--rest_api_port=8501" in compose["services"]["serving"]["entrypoint"]
    mount = compose["services"]["prometheus"]["volumes"][0]
    assert mount.endswith(":/etc/prometheus/prometheus.yml:ro")


@pytest.mark.parametrize("service", ["serving", "train"])
def test_gpu_services_reserve_an_nvidia_gpu(compose: dict[str, Any], service: str) -> None:
    (device,) = gpu_reservations(compose["services"][service])
    assert device["driver"] == "nvidia"
    assert device["capabilities"] == ["gpu"]
    assert int(device["count"]) == 1


def test_cpu_variant_reserves_no_gpu_and_runs_the_plain_image(compose: dict[str, Any]) -> None:
    gpu, cpu = compose["services"]["serving"], compose["services"]["serving-cpu"]
    assert not gpu_reservations(cpu)
    assert cpu["image"] + "-gpu" == gpu["image"]
    # Same name on the network, so the load test reaches whichever variant runs.
    assert "serving" in cpu["networks"]["default"]["aliases"]


def test_tf_serving_comes_from_the_one_version_file_and_matches_kubernetes(
    compose: dict[str, Any], overlays: dict[str, list[dict[str, Any]]]
) -> None:
    services = compose["services"]
    for variant, service in VARIANTS.items():
        assert services[service]["image"] == manifests.tf_serving_image(variant)
        k8s = manifests.container(manifests.server_pod(overlays[variant]), "tensorflow-serving")
        assert services[service]["image"] == k8s["image"]
    # Compose reads serving/tfserving.env as .env: the link must stay a link.
    env = manifests.ROOT / ".env"
    assert env.is_symlink() and env.resolve() == manifests.ROOT / "serving" / "tfserving.env"


def test_project_services_run_the_project_image_built_here(compose: dict[str, Any]) -> None:
    extras = set(manifests.pyproject()["project"]["optional-dependencies"])
    for name in PROJECT_IMAGE_SERVICES:
        service = compose["services"][name]
        variant = "gpu" if name == "train" else "cpu"
        assert service["image"] == manifests.project_image(variant), name
        assert Path(service["build"]["context"]) == manifests.ROOT
        wanted = set(service["build"]["args"]["EXTRAS"].split(","))
        assert wanted <= extras, name
        assert ("gpu" in wanted) == (variant == "gpu"), name
    assert compose["services"]["prometheus"]["image"].split(":")[1] != "latest"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_compose_and_kubernetes_run_the_same_server_flags(
    compose: dict[str, Any], overlays: dict[str, list[dict[str, Any]]], variant: str
) -> None:
    compose_flags = manifests.compose_server_flags(compose["services"][VARIANTS[variant]])
    assert compose_flags == manifests.k8s_server_flags(overlays[variant])
    assert manifests.flag_value(compose_flags, "batching_parameters_file") == (
        f"/etc/tfserving/batching_{variant}.config"
    )


@pytest.mark.parametrize("service", sorted(VARIANTS.values()))
def test_models_are_mounted_read_only_and_config_files_where_the_flags_point(
    compose: dict[str, Any], service: str
) -> None:
    spec = compose["services"][service]
    mounts = {m.target: m for m in manifests.compose_mounts(spec)}
    assert Path(mounts["/models"].source) == manifests.ROOT / "models"
    assert mounts["/models"].read_only
    local = {target: Path(m.source) for target, m in mounts.items()}
    flags = manifests.compose_server_flags(spec)
    file_flags = [f for f in flags if f.split("=", 1)[0].endswith("_file")]
    assert len(file_flags) == 3
    for flag in file_flags:
        container_path = flag.split("=", 1)[1]
        assert manifests.resolve(container_path, local).is_file(), flag
        target = next(t for t in mounts if container_path.startswith(t + "/"))
        assert mounts[target].read_only, f"{target} is writable"


@pytest.mark.parametrize("service", sorted(VARIANTS.values()))
def test_server_ports_healthcheck_and_restart_policy(
    compose: dict[str, Any], overlays: dict[str, list[dict[str, Any]]], service: str
) -> None:
    spec = compose["services"][service]
    assert published_ports(spec) == {("127.0.0.1", 8500, 8500), ("127.0.0.1", 8501, 8501)}
    flags = manifests.compose_server_flags(spec)
    assert manifests.flag_value(flags, "port") == "8500"
    assert manifests.flag_value(flags, "rest_api_port") == "8501"
    assert spec["restart"] == "unless-stopped"
    # Healthy means the model is AVAILABLE: the very check the readiness probe runs.
    readiness = manifests.container(
        manifests.server_pod(overlays["gpu"]), manifests.SERVER_CONTAINER
    )["readinessProbe"]["exec"]["command"]
    assert spec["healthcheck"]["test"] == ["CMD", *readiness]


def test_ports_are_published_on_loopback_unless_publish_address_says_otherwise(
    compose: dict[str, Any],
) -> None:
    published = {
        name: published_ports(service)
        for name, service in compose["services"].items()
        if service.get("ports")
    }
    assert set(published) == {"serving", "serving-cpu", "locust-master", "prometheus"}
    assert {address for ports in published.values() for address, _, _ in ports} == {"127.0.0.1"}
    opened = manifests.compose_v2_config(manifests.COMPOSE_FILE, env={"PUBLISH_ADDRESS": "0.0.0.0"})
    assert {
        address for name in published for address, _, _ in published_ports(opened["services"][name])
    } == {"0.0.0.0"}


def test_every_service_rotates_its_logs(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        logging = service.get("logging", {})
        assert logging.get("driver") == "json-file", name
        assert logging["options"]["max-size"] and int(logging["options"]["max-file"]) >= 2, name


def test_services_wait_for_the_health_of_what_they_need(compose: dict[str, Any]) -> None:
    services = compose["services"]
    needs = {"locust-master": "serving", "locust-worker": "locust-master"}
    for name, dependency in needs.items():
        assert services[name]["depends_on"] == {dependency: {"condition": "service_healthy"}}
        assert services[dependency]["healthcheck"]["test"][0] == "CMD", dependency
    for name in set(services) - set(needs):
        assert not services[name].get("depends_on"), name


def test_containers_have_read_only_root_filesystems(compose: dict[str, Any]) -> None:
    for name in ("serving", "serving-cpu", *PROJECT_IMAGE_SERVICES):
        service = compose["services"][name]
        assert service["read_only"] is True, name
        assert "/tmp" in service["tmpfs"], name


def test_the_gpu_server_keeps_its_cuda_jit_cache(compose: dict[str, Any]) -> None:
    serving = compose["services"]["serving"]
    cache = serving["environment"]["CUDA_CACHE_PATH"]
    mounts = {m.target: m for m in manifests.compose_mounts(serving)}
    assert not mounts[cache].read_only
    assert mounts[cache].source in compose["volumes"]  # a named volume: survives re-creation
    assert int(serving["environment"]["CUDA_CACHE_MAXSIZE"]) >= 256 * 2**20


def test_training_exports_into_the_served_models(compose: dict[str, Any]) -> None:
    train = compose["services"]["train"]
    mounts = {m.target: m for m in manifests.compose_mounts(train)}
    assert Path(mounts["/models"].source) == manifests.ROOT / "models"
    assert not mounts["/models"].read_only
    assert train["command"] == ["python", "-m", "training", "--export-dir", "/models/mnist"]
    # The image runs as uid 10001; TRAIN_USER lets it run as the owner of ./models.
    assert train["user"] == "10001:10001"


def test_locust_aims_at_the_server_and_workers_can_scale(compose: dict[str, Any]) -> None:
    master, worker = compose["services"]["locust-master"], compose["services"]["locust-worker"]
    assert "--master" in master["command"] and "--host=serving:8500" in master["command"]
    assert "--worker" in worker["command"]
    assert "--master-host=locust-master" in worker["command"]
    # `--scale locust-worker=N` needs no fixed container name and no published port.
    assert "container_name" not in worker and not worker.get("ports")
    for service in (master, worker):
        assert service["entrypoint"] == ["locust"]
        assert service["command"][service["command"].index("-f") + 1] == "loadtest/locustfile.py"
