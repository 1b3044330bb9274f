"""Rendered deployment files, produced once per session by the real tools."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy import manifests


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return manifests.compose_config(manifests.COMPOSE_FILE)


@pytest.fixture(scope="session")
def compose_v2() -> dict[str, Any]:
    return manifests.compose_v2_config(manifests.COMPOSE_FILE)


@pytest.fixture(scope="session")
def overlays() -> dict[str, list[dict[str, Any]]]:
    return {
        name: manifests.kustomize(manifests.K8S / "overlays" / name) for name in manifests.OVERLAYS
    }


@pytest.fixture(scope="session")
def model_stores() -> dict[str, list[dict[str, Any]]]:
    return {
        name: manifests.kustomize(manifests.K8S / "model-store" / name)
        for name in manifests.MODEL_STORES
    }


@pytest.fixture(scope="session")
def loadtest() -> list[dict[str, Any]]:
    return manifests.kustomize(manifests.K8S / "loadtest")


@pytest.fixture(scope="session")
def with_components(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The GPU overlay with every optional component added."""
    return manifests.kustomize_with_components(
        manifests.K8S / "overlays" / "gpu",
        [manifests.K8S / "components" / name for name in manifests.COMPONENTS],
        tmp_path_factory.mktemp("components"),
    )
