"""TF Serving's REST URL grammar: which API a request path names.

    POST /v1/models/{name}[/versions/{n}|/labels/{label}]:(predict|classify|regress)
    GET  /v1/models/{name}[/versions/{n}|/labels/{label}][/metadata]

One small explicit parser rather than aiohttp's router, which cannot express three of
TF Serving's rules: paths match case-insensitively (`/V1/MODELS/x` is a status request);
they match on the undecoded path, so `%2F` or `%3A` in a name stays part of the name
(aiohttp routes on a decoded path, where `a%3Apredict` would become a verb); and any
other path under /v1/, with any method, is a 400 "Malformed request" rather than
aiohttp's 404 or 405. The patterns are TF Serving's own (RE2 there, `re` here), so the
edge cases (a trailing `/metadata` in another case, a name-less `/versions/1`) resolve
as they do there. aiohttp routes everything under /v1/ to one handler that calls
`parse`; the app's exact-path routes (the Prometheus path) still match first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from tensorflow_serving.apis import model_pb2

from serving.errors import invalid

# The verbs a POST names; they are also the `api` label of its request metrics.
VERBS = ("predict", "classify", "regress")

_API = re.compile(r"/v1/.*", re.IGNORECASE | re.DOTALL)
_POST = re.compile(
    r"/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?:(classify|regress|predict)",
    re.IGNORECASE,
)
_GET = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:/versions/(\d+)|/labels/([^/:]+))?(?:/(metadata))?",
    re.IGNORECASE,
)
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Route:
    """What a path asks for. `action` is a POST's verb (`VERBS`), or "status" or
    "metadata" for a GET; `name` is "" when a GET names no model (the handler refuses
    it, as TF Serving's does)."""

    name: str
    version: int | None
    label: str | None
    action: str

    @property
    def api_label(self) -> str:
        """TF Serving's `api` metric label: the verb for POSTs, "" for status/metadata."""
        return self.action if self.action in VERBS else ""

    def spec(self) -> model_pb2.ModelSpec:
        spec = model_pb2.ModelSpec(name=self.name)
        if self.version is not None:
            spec.version.value = self.version
        elif self.label is not None:
            spec.version_label = self.label
        return spec


def is_api(raw_path: str) -> bool:
    """Whether the undecoded path is under /v1/ (else: not the REST API's, a 404)."""
    return _API.fullmatch(raw_path) is not None


def parse(method: str, raw_path: str) -> Route:
    """The route of an API path (`is_api`), or TF Serving's 400 "Malformed request" for
    a method or path it does not serve; a version beyond int64 is its 400 too."""
    pattern = {"POST": _POST, "GET": _GET}.get(method)
    match = pattern.fullmatch(raw_path) if pattern else None
    if match is None:
        raise invalid(f"Malformed request: {method} {raw_path}")
    name, version_text, label, verb = match.groups()
    version = None
    if version_text:
        version = int(version_text)
        if version > _INT64_MAX:
            raise invalid(f"Failed to convert version: {version_text} to numeric.")
    if method == "POST":
        if verb not in VERBS:  # matched case-insensitively, e.g. ":PREDICT"
            raise invalid(f"Malformed request: {method} {raw_path}")
        action = verb
    else:
        action = "metadata" if verb == "metadata" else "status"
    return Route(
        unquote(name or ""), version, unquote(label) if label is not None else None, action
    )
