"""k8s/: what `kubectl apply -k` would create is valid and does what the README promises.

Past 400 lines on purpose: every case reads the same rendered kustomize output, built once
per overlay; split, the rendering would be repeated or moved into a shared fixture file
that says less than this one.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

import kubernetes_validate
import pytest
import yaml
from google.protobuf import text_format

from tests.deploy import manifests
from tests.deploy.manifests import SERVER_CONTAINER, container, find, server_pod

# The oldest Kubernetes the manifests promise to work on, and the newest schemas shipped.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
REQUIRED_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
)
# Kinds of CustomResourceDefinitions that kubernetes-validate has no schema for.
CUSTOM_KINDS = {"PodMonitor"}
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"

Objects = list[dict[str, Any]]


def pod_specs(objects: Objects) -> list[dict[str, Any]]:
    specs = []
    for obj in objects:
        if obj["kind"] in ("Deployment", "Job"):
            specs.append(obj["spec"]["template"]["spec"])
        elif obj["kind"] == "CronJob":
            specs.append(obj["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return specs


def all_containers(objects: Objects) -> list[dict[str, Any]]:
    return [
        c
        for pod in pod_specs(objects)
        for c in [*pod.get("initContainers", []), *pod["containers"]]
    ]


def training_pod(objects: Objects) -> dict[str, Any]:
    cron = find(objects, "CronJob", "mnist-train")
    return cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def everything(
    overlays: dict[str, Objects],
    model_stores: dict[str, Objects],
    loadtest: Objects,
    with_components: Objects,
) -> dict[str, Objects]:
    return {
        **{f"overlays/{k}": v for k, v in overlays.items()},
        **{f"model-store/{k}": v for k, v in model_stores.items()},
        "loadtest": loadtest,
        "overlays/gpu + components": with_components,
    }


@pytest.fixture(scope="module")
def rendered(
    overlays: dict[str, Objects],
    model_stores: dict[str, Objects],
    loadtest: Objects,
    with_components: Objects,
) -> dict[str, Objects]:
    return everything(overlays, model_stores, loadtest, with_components)


KUSTOMIZATIONS = [
    "overlays/gpu",
    "overlays/cpu",
    "model-store/gpu",
    "model-store/cpu",
    "loadtest",
    "overlays/gpu + components",
]


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_object_validates_against_the_kubernetes_schemas(
    kustomization: str, rendered: dict[str, Objects]
) -> None:
    """Strict: an unknown field (a typo such as `readinesProbe`) fails as well."""
    objects = rendered[kustomization]
    assert objects
    for obj in objects:
        if obj["kind"] in CUSTOM_KINDS:
            continue  # checked field by field in test_pod_monitor_scrapes_the_metrics_path
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{obj['kind']} {obj['metadata']['name']} (k8s {version}): {exc}")


def names(objects: Objects) -> set[tuple[str, str]]:
    # Generated ConfigMaps carry a content hash after their name.
    return {(o["kind"], re.sub(r"-[a-z0-9]{10}$", "", o["metadata"]["name"])) for o in objects}


def test_the_overlays_hold_the_servers_and_nothing_that_must_outlive_them(
    overlays: dict[str, Objects],
) -> None:
    """`kubectl delete -k k8s/overlays/...` must not take the models with it."""
    for objects in overlays.values():
        assert names(objects) == {
            ("ServiceAccount", "mnist-serving"),
            ("Deployment", "mnist-serving"),
            ("Service", "mnist-serving"),
            ("Service", "mnist-serving-headless"),
            ("PodDisruptionBudget", "mnist-serving"),
            ("HorizontalPodAutoscaler", "mnist-serving"),
            ("NetworkPolicy", "mnist-serving"),
            ("ConfigMap", "tfserving-models"),
            ("ConfigMap", "tfserving-runtime"),
        }
        assert all(o["metadata"].get("namespace") == "mnist" for o in objects)


def test_the_model_store_holds_the_namespace_models_and_training(
    model_stores: dict[str, Objects],
) -> None:
    for objects in model_stores.values():
        assert names(objects) == {
            ("Namespace", "mnist"),
            ("PersistentVolumeClaim", "mnist-models"),
            ("CronJob", "mnist-train"),
            ("NetworkPolicy", "mnist-train"),
        }
        assert all(
            o["metadata"].get("namespace") == "mnist" for o in objects if o["kind"] != "Namespace"
        )
        claim = find(objects, "PersistentVolumeClaim", "mnist-models")["spec"]
        assert claim["accessModes"] == ["ReadWriteMany"]


def test_training_can_be_rerun_without_touching_an_immutable_job(
    model_stores: dict[str, Objects],
) -> None:
    """The Job template is a suspended CronJob: re-applying it never conflicts, and each
    `kubectl create job --from=cronjob/mnist-train` is a new Job."""
    for objects in model_stores.values():
        assert not [o for o in objects if o["kind"] == "Job"]
        cron = find(objects, "CronJob", "mnist-train")["spec"]
        assert cron["suspend"] is True
        assert cron["concurrencyPolicy"] == "Forbid"
        job = cron["jobTemplate"]["spec"]
        assert job["ttlSecondsAfterFinished"] > 0
        assert job["template"]["spec"]["restartPolicy"] == "Never"


def test_every_object_carries_the_recommended_labels(rendered: dict[str, Objects]) -> None:
    for name, objects in rendered.items():
        for obj in objects:
            labels = obj["metadata"].get("labels", {})
            missing = [key for key in REQUIRED_LABELS if key not in labels]
            assert not missing, f"{name}: {obj['kind']} {obj['metadata']['name']} lacks {missing}"
        for pod in (
            o["spec"]["template"]["metadata"] for o in objects if o["kind"] == "Deployment"
        ):
            assert pod["labels"]["app.kubernetes.io/instance"] == "mnist", name


def test_gpu_variants_ask_for_a_gpu_and_tolerate_the_gpu_taint(
    overlays: dict[str, Objects], model_stores: dict[str, Objects]
) -> None:
    for pod, container_name in (
        (server_pod(overlays["gpu"]), SERVER_CONTAINER),
        (training_pod(model_stores["gpu"]), "train"),
    ):
        limits = container(pod, container_name)["resources"]["limits"]
        assert limits.get("nvidia.com/gpu") == "1", f"{container_name}: {limits}"
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod.get(
            "tolerations", []
        ), f"{container_name} does not tolerate the nvidia.com/gpu taint"


def test_cpu_variants_ask_for_no_gpu(
    overlays: dict[str, Objects], model_stores: dict[str, Objects]
) -> None:
    for objects in (overlays["cpu"], model_stores["cpu"]):
        assert "nvidia.com/gpu" not in yaml.safe_dump_all(objects)
        for pod in pod_specs(objects):
            assert not pod.get("tolerations")
        for spec in all_containers(objects):
            assert not spec["image"].endswith("-gpu"), spec["image"]


def test_images_are_pinned(rendered: dict[str, Objects]) -> None:
    for name, objects in rendered.items():
        for spec in all_containers(objects):
            tag = manifests.image_tag(spec["image"])
            assert re.fullmatch(r"v?\d+\.\d+\.\d+(-gpu)?", tag), f"{name}: {spec['image']}"


def test_tf_serving_image_and_version_label_come_from_the_one_version_file(
    overlays: dict[str, Objects],
) -> None:
    version = manifests.tf_serving_image().rpartition(":")[2]
    for variant, objects in overlays.items():
        deployment = find(objects, "Deployment", "mnist-serving")
        assert container(server_pod(objects), SERVER_CONTAINER)["image"] == (
            manifests.tf_serving_image(variant)
        )
        for labels in (
            deployment["metadata"]["labels"],
            deployment["spec"]["template"]["metadata"]["labels"],
        ):
            assert labels["app.kubernetes.io/version"] == version
        # serving/tfserving.env feeds kustomize but never reaches the cluster.
        assert not [o for o in objects if o["metadata"]["name"].startswith("tfserving-version")]


def test_each_variant_runs_its_own_images_and_batching_file(
    overlays: dict[str, Objects], model_stores: dict[str, Objects]
) -> None:
    for variant, objects in overlays.items():
        server = container(server_pod(objects), SERVER_CONTAINER)
        assert server["image"].startswith("tensorflow/serving:")
        assert server["image"].endswith("-gpu") == (variant == "gpu")
        flags = manifests.k8s_server_flags(objects)
        assert manifests.flag_value(flags, "batching_parameters_file") == (
            f"/etc/tfserving/batching_{variant}.config"
        )
        assert manifests.flag_value(flags, "enable_batching") == "true"
    for variant, objects in model_stores.items():
        trainer = container(training_pod(objects), "train")
        assert trainer["image"] == manifests.project_image(variant)


def test_batching_threads_and_tensorflow_pools_match_the_cpus_the_overlay_gives(
    overlays: dict[str, Objects],
) -> None:
    """The batching files say num_batch_threads = the container's cores; keep that true."""
    for variant, objects in overlays.items():
        params = manifests.proto_class("BatchingParameters")()
        text_format.Parse(manifests.k8s_config_files(objects)[f"batching_{variant}.config"], params)
        cpu_limit = container(server_pod(objects), SERVER_CONTAINER)["resources"]["limits"]["cpu"]
        assert params.num_batch_threads.value == int(cpu_limit), variant
        # TensorFlow's own pools default to the node's core count, not the container's;
        # GPU nodes have many cores, so both variants cap them.
        flags = manifests.k8s_server_flags(objects)
        for pool in ("intra", "inter"):
            threads = manifests.flag_value(flags, f"tensorflow_{pool}_op_parallelism")
            assert threads == cpu_limit, (variant, pool)


def test_servers_get_guaranteed_qos(overlays: dict[str, Objects]) -> None:
    """Requests equal limits for every resource: Guaranteed QoS, so the static CPU
    manager can give whole cores, aligned with the GPU by the topology manager."""
    for variant, objects in overlays.items():
        pod = server_pod(objects)
        for spec in pod["containers"]:
            resources = spec["resources"]
            assert resources["requests"] == resources["limits"], (variant, spec["name"])
            assert re.fullmatch(r"\d+", resources["limits"]["cpu"]), "whole CPUs"


def test_gpu_model_is_chosen_by_node_affinity_on_the_product_label(
    overlays: dict[str, Objects],
) -> None:
    affinity = server_pod(overlays["gpu"])["affinity"]["nodeAffinity"]
    (term,) = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    (expression,) = term["matchExpressions"]
    assert expression["key"] == GPU_PRODUCT_LABEL and expression["operator"] == "In"
    assert expression["values"] and all(v.startswith("NVIDIA-") for v in expression["values"])
    assert "affinity" not in server_pod(overlays["cpu"])


def test_the_gpu_server_keeps_its_cuda_jit_cache_on_a_writable_volume(
    overlays: dict[str, Objects],
) -> None:
    pod = server_pod(overlays["gpu"])
    server = container(pod, SERVER_CONTAINER)
    env = {e["name"]: e["value"] for e in server["env"]}
    cache = PurePosixPath(env["CUDA_CACHE_PATH"])
    assert server["securityContext"]["readOnlyRootFilesystem"] is True
    (mount,) = [m for m in server["volumeMounts"] if PurePosixPath(m["mountPath"]) == cache]
    assert not mount.get("readOnly")
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    size_limit = volume["emptyDir"]["sizeLimit"]
    assert size_limit.endswith("Gi")
    assert int(size_limit[:-2]) * 2**30 > int(env["CUDA_CACHE_MAXSIZE"])  # never evicted


def test_the_hpa_alone_owns_the_replica_count(overlays: dict[str, Objects]) -> None:
    for objects in overlays.values():
        assert "replicas" not in find(objects, "Deployment", "mnist-serving")["spec"]
        hpa = find(objects, "HorizontalPodAutoscaler", "mnist-serving")["spec"]
        assert hpa["minReplicas"] >= 2
        assert [m["resource"]["name"] for m in hpa["metrics"]] == ["cpu"]


def test_grpc_connections_are_recycled_so_new_pods_get_traffic(
    overlays: dict[str, Objects],
) -> None:
    from serving.flags import parse_channel_arguments

    for objects in overlays.values():
        value = manifests.flag_value(manifests.k8s_server_flags(objects), "grpc_channel_arguments")
        arguments = dict(parse_channel_arguments(value or ""))
        age = arguments["grpc.max_connection_age_ms"]
        grace = arguments["grpc.max_connection_age_grace_ms"]
        assert isinstance(age, int) and isinstance(grace, int)  # TF Serving passes ints
        assert 10_000 <= age <= 600_000 and 0 < grace < age


def test_probes_check_startup_model_availability_and_liveness(
    overlays: dict[str, Objects],
) -> None:
    for objects in overlays.values():
        server = container(server_pod(objects), SERVER_CONTAINER)
        ports = {p["name"]: p["containerPort"] for p in server["ports"]}
        flags = manifests.k8s_server_flags(objects)
        assert manifests.flag_value(flags, "port") == str(ports["grpc"])
        assert manifests.flag_value(flags, "rest_api_port") == str(ports["http"])
        # gRPC probes need the health service, which TF Serving serves only on request.
        assert manifests.flag_value(flags, "enable_grpc_healthcheck_service") == "true"
        for probe in ("startupProbe", "livenessProbe"):
            assert server[probe]["grpc"]["port"] == ports["grpc"], probe
        startup = server["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
        command = server["readinessProbe"]["exec"]["command"]
        assert command[:2] == ["bash", "-c"]
        assert f"/dev/tcp/127.0.0.1/{ports['http']}" in command[2]
        assert "GET /v1/models/mnist " in command[2]
        assert '"AVAILABLE"' in command[2]


def test_rollouts_never_drop_capacity_or_requests(overlays: dict[str, Objects]) -> None:
    for objects in overlays.values():
        deployment = find(objects, "Deployment", "mnist-serving")
        strategy = deployment["spec"]["strategy"]
        assert strategy["type"] == "RollingUpdate"
        assert strategy["rollingUpdate"]["maxUnavailable"] == 0
        assert strategy["rollingUpdate"]["maxSurge"] >= 1
        pod = server_pod(objects)
        pre_stop = container(pod, SERVER_CONTAINER)["lifecycle"]["preStop"]["exec"]["command"]
        assert pre_stop[0] == "sleep"
        assert 5 <= int(pre_stop[1]) < pod["terminationGracePeriodSeconds"]
        pdb = find(objects, "PodDisruptionBudget", "mnist-serving")["spec"]
        hpa = find(objects, "HorizontalPodAutoscaler", "mnist-serving")["spec"]
        assert hpa["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "mnist-serving",
        }
        assert pdb.get("maxUnavailable", 0) < hpa["minReplicas"]


def test_selectors_select_the_server_pods(
    overlays: dict[str, Objects], with_components: Objects
) -> None:
    for objects in [*overlays.values(), with_components]:
        deployment = find(objects, "Deployment", "mnist-serving")
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        selectors = [
            deployment["spec"]["selector"]["matchLabels"],
            find(objects, "PodDisruptionBudget", "mnist-serving")["spec"]["selector"][
                "matchLabels"
            ],
            find(objects, "Service", "mnist-serving")["spec"]["selector"],
            find(objects, "Service", "mnist-serving-headless")["spec"]["selector"],
            find(objects, "NetworkPolicy", "mnist-serving")["spec"]["podSelector"]["matchLabels"],
        ]
        if objects is with_components:
            selectors.append(
                find(objects, "PodMonitor", "mnist-serving")["spec"]["selector"]["matchLabels"]
            )
        for selector in selectors:
            assert selector and selector.items() <= pod_labels.items(), selector


def test_services_expose_grpc_and_rest(overlays: dict[str, Objects]) -> None:
    for objects in overlays.values():
        container_ports = {
            p["name"] for p in container(server_pod(objects), SERVER_CONTAINER)["ports"]
        }
        service = find(objects, "Service", "mnist-serving")["spec"]
        ports = {p["name"]: p for p in service["ports"]}
        assert ports["grpc"]["port"] == 8500 and ports["grpc"]["appProtocol"] == "grpc"
        assert ports["http"]["port"] == 8501
        headless = find(objects, "Service", "mnist-serving-headless")["spec"]
        assert headless["clusterIP"] == "None"
        assert not headless.get("publishNotReadyAddresses")
        assert [(p["name"], p["port"]) for p in headless["ports"]] == [("grpc", 8500)]
        for port in [*service["ports"], *headless["ports"]]:
            assert port["targetPort"] in container_ports


def ingress_ports(policy: dict[str, Any]) -> set[str]:
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    return {p["port"] for rule in policy["spec"].get("ingress", []) for p in rule["ports"]}


def test_network_policies_admit_only_the_served_ports(
    overlays: dict[str, Objects], model_stores: dict[str, Objects], loadtest: Objects
) -> None:
    for objects in overlays.values():
        served = {
            p["targetPort"] for s in objects if s["kind"] == "Service" for p in s["spec"]["ports"]
        }
        server_ports = container(server_pod(objects), SERVER_CONTAINER)["ports"]
        metrics_port = find(objects, "Deployment", "mnist-serving")["spec"]["template"]["metadata"][
            "annotations"
        ]["prometheus.io/port"]
        served |= {p["name"] for p in server_ports if str(p["containerPort"]) == metrics_port}
        assert ingress_ports(find(objects, "NetworkPolicy", "mnist-serving")) == served
    for objects in model_stores.values():
        assert ingress_ports(find(objects, "NetworkPolicy", "mnist-train")) == set()
    master = container(
        find(loadtest, "Deployment", "locust-master")["spec"]["template"]["spec"], "locust"
    )
    assert ingress_ports(find(loadtest, "NetworkPolicy", "locust-master")) == {
        p["name"] for p in master["ports"]
    }
    assert ingress_ports(find(loadtest, "NetworkPolicy", "locust-worker")) == set()


def test_pods_run_unprivileged(rendered: dict[str, Objects]) -> None:
    for name, objects in rendered.items():
        for pod in pod_specs(objects):
            assert pod["securityContext"]["runAsNonRoot"] is True, name
            assert pod["securityContext"]["runAsUser"] == 10001, name  # the image's USER
            assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            assert pod.get("automountServiceAccountToken") is False, name
        for spec in all_containers(objects):
            context = spec["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, (name, spec["name"])
            assert context["readOnlyRootFilesystem"] is True, (name, spec["name"])
            assert context["capabilities"]["drop"] == ["ALL"], (name, spec["name"])
            assert "limits" in spec["resources"] and "requests" in spec["resources"]


def test_nothing_is_installed_or_fetched_when_a_pod_starts(rendered: dict[str, Objects]) -> None:
    """The project's pods run its image as built: no pip, no git-sync, no init step."""
    for name, objects in rendered.items():
        for pod in pod_specs(objects):
            assert not pod.get("initContainers"), name
        for spec in all_containers(objects):
            command = " ".join([*spec.get("command", []), *spec.get("args", [])])
            assert "pip install" not in command and "git" not in command, (name, command)


def test_models_are_mounted_read_only_where_models_config_points(
    overlays: dict[str, Objects], model_stores: dict[str, Objects]
) -> None:
    for variant, objects in overlays.items():
        config = manifests.proto_class("ModelServerConfig")()
        text_format.Parse(manifests.k8s_config_files(objects)["models.config"], config)
        base_path = PurePosixPath(config.model_config_list.config[0].base_path)
        pod = server_pod(objects)
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = [
            m
            for m in container(pod, SERVER_CONTAINER)["volumeMounts"]
            if PurePosixPath(m["mountPath"]) in base_path.parents
        ]
        assert len(mounts) == 1, f"{base_path} is on {len(mounts)} mounts"
        assert mounts[0]["readOnly"] is True
        claim = volumes[mounts[0]["name"]]["persistentVolumeClaim"]
        assert claim["readOnly"] is True
        # The training Jobs write the same claim (of the model store), into the same path.
        job_pod = training_pod(model_stores[variant])
        job_volume = next(
            v
            for v in job_pod["volumes"]
            if v.get("persistentVolumeClaim", {}).get("claimName") == claim["claimName"]
        )
        trainer = container(job_pod, "train")
        job_mount = next(m for m in trainer["volumeMounts"] if m["name"] == job_volume["name"])
        assert not job_mount.get("readOnly")
        command = trainer["command"]
        assert command[:3] == ["python", "-m", "training"]
        assert command[command.index("--export-dir") + 1] == str(base_path)
        assert PurePosixPath(job_mount["mountPath"]) in base_path.parents
        find(model_stores[variant], "PersistentVolumeClaim", claim["claimName"])


def test_config_flags_name_files_the_pods_have(overlays: dict[str, Objects]) -> None:
    """Each *_file flag names a file of the config volume, identical to serving/'s copy."""
    for objects in overlays.values():
        pod = server_pod(objects)
        files = manifests.k8s_config_files(objects)
        mount = next(
            m for m in container(pod, SERVER_CONTAINER)["volumeMounts"] if m["name"] == "config"
        )
        assert mount["readOnly"] is True
        file_flags = [
            f for f in manifests.k8s_server_flags(objects) if f.split("=", 1)[0].endswith("_file")
        ]
        assert len(file_flags) == 3
        for flag in file_flags:
            path = PurePosixPath(flag.split("=", 1)[1])
            assert path.parent == PurePosixPath(mount["mountPath"]), flag
            assert path.name in files, f"{flag}: not in the config volume ({sorted(files)})"
            assert files[path.name] == (manifests.SERVING_CONFIG_DIR / path.name).read_text()


def test_models_config_updates_live_and_startup_files_roll_the_pods(
    overlays: dict[str, Objects],
) -> None:
    """models.config is polled, so its ConfigMap keeps its name and is updated in place;
    the others are read at startup, so a content-hashed name makes an edit roll the pods."""
    for objects in overlays.values():
        sources = [
            s["configMap"]["name"]
            for v in server_pod(objects)["volumes"]
            for s in v.get("projected", {}).get("sources", [])
        ]
        assert "tfserving-models" in sources
        (runtime,) = [s for s in sources if s.startswith("tfserving-runtime-")]
        assert re.fullmatch(r"tfserving-runtime-[a-z0-9]{10}", runtime)
        assert set(find(objects, "ConfigMap", "tfserving-models")["data"]) == {"models.config"}


def monitoring_path(objects: Objects) -> str:
    config = manifests.proto_class("MonitoringConfig")()
    text_format.Parse(manifests.k8s_config_files(objects)["monitoring.config"], config)
    return config.prometheus_config.path


def test_metrics_annotations_match_monitoring_config(overlays: dict[str, Objects]) -> None:
    for objects in overlays.values():
        deployment = find(objects, "Deployment", "mnist-serving")
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/path"] == monitoring_path(objects)
        flags = manifests.k8s_server_flags(objects)
        assert annotations["prometheus.io/port"] == manifests.flag_value(flags, "rest_api_port")


def test_pod_monitor_scrapes_the_metrics_path(with_components: Objects) -> None:
    """The Prometheus Operator component, against the fields of monitoring.coreos.com/v1."""
    monitor = find(with_components, "PodMonitor", "mnist-serving")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == "mnist"
    assert set(monitor["spec"]) == {"selector", "podMetricsEndpoints"}
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout", "scheme"}
    server = container(server_pod(with_components), SERVER_CONTAINER)
    rest_port = manifests.flag_value(manifests.k8s_server_flags(with_components), "rest_api_port")
    (named,) = [p["name"] for p in server["ports"] if str(p["containerPort"]) == rest_port]
    assert endpoint["port"] == named
    assert endpoint["path"] == monitoring_path(with_components)
    assert re.fullmatch(r"\d+s", endpoint["interval"])


def test_the_request_metric_component_scales_on_what_the_adapter_serves(
    with_components: Objects,
) -> None:
    hpa = find(with_components, "HorizontalPodAutoscaler", "mnist-serving")["spec"]
    assert hpa["metrics"][0] == {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
    }
    pods_metrics = {m["pods"]["metric"]["name"]: m["pods"]["target"] for m in hpa["metrics"][1:]}
    adapter = yaml.safe_load(
        (
            manifests.K8S / "components" / "hpa-request-metrics" / "prometheus-adapter-values.yaml"
        ).read_text()
    )
    rules = adapter["rules"]["custom"]
    assert set(pods_metrics) == {rule["name"]["as"] for rule in rules}
    for target in pods_metrics.values():
        assert target["type"] == "AverageValue" and float(target["averageValue"]) > 0
    readme = (manifests.ROOT / "README.md").read_text()
    for rule in rules:
        series = rule["seriesQuery"].split("{")[0]
        assert re.fullmatch(rule["name"]["matches"], series)
        # TF Serving's series, as the README's metrics list names them (without _bucket).
        assert series.removesuffix("_bucket") in readme, series
        assert set(rule["resources"]["overrides"]) == {"namespace", "pod"}
        assert "<<.Series>>" in rule["metricsQuery"] and "<<.GroupBy>>" in rule["metricsQuery"]


def test_load_test_targets_the_server_and_workers_find_the_master(
    overlays: dict[str, Objects], loadtest: Objects
) -> None:
    service = find(overlays["gpu"], "Service", "mnist-serving")
    grpc_port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc")
    master = find(loadtest, "Deployment", "locust-master")
    worker = find(loadtest, "Deployment", "locust-worker")
    master_args = container(master["spec"]["template"]["spec"], "locust")["args"]
    worker_args = container(worker["spec"]["template"]["spec"], "locust")["args"]
    assert "--master" in master_args
    assert f"--host={service['metadata']['name']}:{grpc_port}" in master_args
    assert "--worker" in worker_args
    master_service = find(loadtest, "Service", "locust-master")
    assert f"--master-host={master_service['metadata']['name']}" in worker_args
    assert {p["port"] for p in master_service["spec"]["ports"]} == {5557, 8089}
    assert master_service["spec"]["selector"].items() <= (
        master["spec"]["template"]["metadata"]["labels"].items()
    )
    assert master["spec"]["replicas"] == 1  # one master; workers scale
    for deployment in (master, worker):
        locust = container(deployment["spec"]["template"]["spec"], "locust")
        assert locust["image"] == manifests.project_image("cpu")
        assert locust["command"] == ["locust"]
        assert locust["args"][locust["args"].index("-f") + 1] == "loadtest/locustfile.py"
