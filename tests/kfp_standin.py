"""A STAND-IN for the KFP v2beta1 REST API: in memory, on 127.0.0.1, for tests of ``mlkeel.submit`` only.

This is not Kubeflow Pipelines. A real KFP API server needs Kubernetes, which this machine does not have, so
the tests drive the real ``kfp.Client`` (2.17) against this small HTTP server instead. It implements exactly
the endpoints that client calls for ``submit_run``, ``schedule_run`` and ``upload_version``:

    GET  /apis/v2beta1/healthz
    GET  /apis/v2beta1/experiments          (filter on display_name)
    POST /apis/v2beta1/experiments
    GET  /apis/v2beta1/experiments/{id}
    GET  /apis/v2beta1/runs                 (experiment_id, filter on display_name)
    POST /apis/v2beta1/runs                 (an inline pipeline_spec, or a pipeline_version_reference)
    GET  /apis/v2beta1/recurringruns        (experiment_id, filter on display_name)
    POST /apis/v2beta1/recurringruns
    GET  /apis/v2beta1/pipelines            (filter on display_name)
    POST /apis/v2beta1/pipelines/upload     (multipart ``uploadfile``; query name, description, namespace)
    POST /apis/v2beta1/pipelines/upload_version   (multipart ``uploadfile``; query pipelineid, name)
    GET  /apis/v2beta1/pipelines/{id}/versions    (filter on display_name)

It checks what a test can check without a cluster: the filter is a well-formed v2beta1 ``Filter`` with an
EQUALS predicate on display_name; the experiment exists; the uploaded pipeline spec is one of the compiled
YAML documents it was given, byte for byte after parsing; the run's parameters are inputs of that pipeline;
a recurring run has a 6-field cron. The upload endpoints follow the KFP API server's upload handlers
(``backend/src/apiserver/server/pipeline_upload_server.go``): the file is the multipart form field
``uploadfile``; a pipeline takes its name from the ``name`` query parameter (else the file name) and its first
version is named after it; a version needs ``pipelineid`` (400 without it or for an unknown pipeline); a
pipeline or a version name taken in its scope is 409. It records every request. It does NOT verify:
authentication, namespaces and multi-user mode, that Argo could execute the spec, server-side parameter type
checks, pagination, the size limits and archive formats (.tar.gz, .zip) of uploads, or the real server's
filter grammar beyond this one predicate.
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PREFIX = "/apis/v2beta1"


def compiled_package(yaml_text: str) -> dict[str, Any]:
    """A compiled pipeline YAML as ``kfp.Client`` 2.17 sends it: the spec, wrapped with its platform spec if any."""
    import yaml

    spec, *platform = list(yaml.safe_load_all(yaml_text))
    if not platform:
        return spec
    merged: dict[str, Any] = {}
    for document in platform:
        merged.update(document)
    return {"pipeline_spec": spec, "platform_spec": merged}


def spec_of(package: dict[str, Any]) -> dict[str, Any]:
    """The PipelineSpec inside what ``compiled_package`` returns (or a run's ``pipeline_spec``)."""
    return package.get("pipeline_spec", package)


class BadRequest(Exception):
    """A request the real server would refuse (answered with HTTP 400 or 404)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Recorded:
    """One request the stand-in received."""

    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class KfpStandIn:
    """The in-memory KFP API. Start with ``start()``, stop with ``stop()``; ``host`` is its URL.

    Attributes:
        pipeline_specs: Compiled pipelines that runs may carry, by ``pipelineInfo.name``, as the client sends
            them: the parsed YAML, or ``{"pipeline_spec": ..., "platform_spec": ...}`` when the YAML has a second
            (platform) document (``compiled_package`` builds either).
        experiments, runs, recurring_runs, pipelines, pipeline_versions: What was created, in order (a
            version holds its ``pipeline_spec`` in the shape runs carry it, see ``compiled_package``).
        requests: Every request received (an upload's body: ``{"uploadfile": {"filename", "text"}}``).
    """

    pipeline_specs: dict[str, dict[str, Any]]
    experiments: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    recurring_runs: list[dict[str, Any]] = field(default_factory=list)
    pipelines: list[dict[str, Any]] = field(default_factory=list)
    pipeline_versions: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._clock = itertools.count()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        """``http://127.0.0.1:<port>``."""
        assert self._server is not None, "start() the stand-in first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> KfpStandIn:
        """Listen on 127.0.0.1 on a free port, serving in a daemon thread."""
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                standin._handle(self, "GET")

            def do_POST(self) -> None:
                standin._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:  # quiet in test output
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def calls(self, method: str, path: str) -> list[Recorded]:
        """The recorded requests with this method and path (path below ``/apis/v2beta1``)."""
        return [item for item in self.requests if item.method == method and item.path == PREFIX + path]

    # -- HTTP plumbing -------------------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        content_type = handler.headers.get("Content-Type") or ""
        try:
            body = multipart_files(content_type, raw) if content_type.startswith("multipart/") else None
            body = body if body is not None else json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        with self._lock:
            self.requests.append(Recorded(method, parts.path, query, body))
            try:
                status, answer = 200, self._route(method, parts.path, query, body)
            except BadRequest as error:
                status, answer = error.status, {"error": str(error), "code": 3 if error.status == 400 else 5}
        payload = json.dumps(answer).encode("utf-8")
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> Any:
        if not path.startswith(PREFIX):
            raise BadRequest(f"not found: {path}", 404)
        route = (method, path[len(PREFIX) :])
        if route == ("GET", "/healthz"):
            return {"multi_user": False, "pipeline_store": "database"}
        if route == ("GET", "/experiments"):
            return {"experiments": self._filtered(self.experiments, query)}
        if route == ("POST", "/experiments"):
            return self._create_experiment(body)
        if method == "GET" and route[1].startswith("/experiments/"):
            return self._experiment(route[1].rsplit("/", 1)[1], 404)
        if route == ("GET", "/runs"):
            return {"runs": self._filtered(self._in_experiment(self.runs, query), query)}
        if route == ("POST", "/runs"):
            return self._create_run(body)
        if route == ("GET", "/recurringruns"):
            # kfp_server_api reads this one list under its camelCase name.
            return {"recurringRuns": self._filtered(self._in_experiment(self.recurring_runs, query), query)}
        if route == ("POST", "/recurringruns"):
            return self._create_recurring_run(body)
        if route == ("GET", "/pipelines"):
            return {"pipelines": self._filtered(self.pipelines, query), "total_size": len(self.pipelines)}
        if route == ("POST", "/pipelines/upload"):
            return self._upload_pipeline(body, query)
        if route == ("POST", "/pipelines/upload_version"):
            return self._upload_pipeline_version(body, query)
        if method == "GET" and route[1].startswith("/pipelines/") and route[1].endswith("/versions"):
            pipeline_id = route[1].split("/")[2]
            self._pipeline(pipeline_id, 404)
            versions = [item for item in self.pipeline_versions if item["pipeline_id"] == pipeline_id]
            return {"pipeline_versions": self._filtered(versions, query)}
        raise BadRequest(f"the stand-in does not implement {method} {path}", 404)

    # -- resources -----------------------------------------------------------------------------------------------

    def _now(self) -> str:
        # Distinct, increasing timestamps so "oldest first" is well defined.
        return datetime.fromtimestamp(1_700_000_000 + next(self._clock), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _experiment(self, experiment_id: str | None, status: int = 400) -> dict[str, Any]:
        for experiment in self.experiments:
            if experiment["experiment_id"] == experiment_id:
                return experiment
        raise BadRequest(f"experiment {experiment_id!r} not found", status)

    def _create_experiment(self, body: Any) -> dict[str, Any]:
        name = (body or {}).get("display_name")
        if not name:
            raise BadRequest("experiment display_name is required")
        if any(item["display_name"] == name for item in self.experiments):
            raise BadRequest(f"experiment {name!r} already exists")
        experiment = {
            "experiment_id": str(uuid.uuid4()),
            "display_name": name,
            "created_at": self._now(),
            "storage_state": "AVAILABLE",
        }
        self.experiments.append(experiment)
        return experiment

    def _check_job(self, body: Any) -> tuple[str, dict[str, Any]]:
        """Validate what runs and recurring runs share; return the experiment ID and the parameters."""
        if not isinstance(body, dict) or not body.get("display_name"):
            raise BadRequest("display_name is required")
        experiment_id = self._experiment(body.get("experiment_id"))["experiment_id"]
        package = body.get("pipeline_spec")
        reference = body.get("pipeline_version_reference")
        if reference and package:
            raise BadRequest("pipeline_spec and pipeline_version_reference are exclusive")
        if isinstance(reference, dict):  # a run of an uploaded version: its spec is the version's
            package = self._version(reference.get("pipeline_id"), reference.get("pipeline_version_id"))["pipeline_spec"]
        if not isinstance(package, dict):
            raise BadRequest("pipeline_spec is required (a compiled PipelineSpec)")
        # With a platform spec (kfp-kubernetes settings), the client sends {"pipeline_spec", "platform_spec"}.
        spec = spec_of(package)
        name = spec.get("pipelineInfo", {}).get("name")
        if name not in self.pipeline_specs:
            raise BadRequest(f"pipeline_spec: pipelineInfo.name {name!r} is not a compiled mlkeel pipeline")
        if package != self.pipeline_specs[name]:
            raise BadRequest(f"pipeline_spec of {name!r} differs from its compiled YAML")
        parameters = (body.get("runtime_config") or {}).get("parameters") or {}
        inputs = spec["root"].get("inputDefinitions", {}).get("parameters", {})
        unknown = sorted(set(parameters) - set(inputs))
        if unknown:
            raise BadRequest(f"runtime_config.parameters: {unknown} are not inputs of {name!r}")
        return experiment_id, parameters

    def _create_run(self, body: Any) -> dict[str, Any]:
        experiment_id, parameters = self._check_job(body)
        run = {
            "run_id": str(uuid.uuid4()),
            "experiment_id": experiment_id,
            "display_name": body["display_name"],
            "runtime_config": {"parameters": parameters},
            "pipeline_spec": body.get("pipeline_spec"),
            "pipeline_version_reference": body.get("pipeline_version_reference"),
            "storage_state": "AVAILABLE",
            "state": "PENDING",
            "created_at": self._now(),
        }
        self.runs.append(run)
        return run

    def _create_recurring_run(self, body: Any) -> dict[str, Any]:
        experiment_id, parameters = self._check_job(body)
        cron = ((body.get("trigger") or {}).get("cron_schedule") or {}).get("cron", "")
        if len(cron.split()) != 6:
            raise BadRequest(f"trigger.cron_schedule.cron {cron!r}: KFP expects 6 fields (seconds first)")
        recurring_run = {
            "recurring_run_id": str(uuid.uuid4()),
            "experiment_id": experiment_id,
            "display_name": body["display_name"],
            "runtime_config": {"parameters": parameters},
            "trigger": {"cron_schedule": {"cron": cron}},
            "mode": body.get("mode", "ENABLE"),
            "no_catchup": body.get("no_catchup"),
            "max_concurrency": body.get("max_concurrency"),
            "status": "ENABLED",
            "created_at": self._now(),
        }
        self.recurring_runs.append(recurring_run)
        return recurring_run

    def _pipeline(self, pipeline_id: str | None, status: int = 400) -> dict[str, Any]:
        for pipeline in self.pipelines:
            if pipeline["pipeline_id"] == pipeline_id:
                return pipeline
        raise BadRequest(f"pipeline {pipeline_id!r} not found", status)

    def _version(self, pipeline_id: str | None, version_id: str | None) -> dict[str, Any]:
        for version in self.pipeline_versions:
            if version["pipeline_id"] == pipeline_id and version["pipeline_version_id"] == version_id:
                return version
        raise BadRequest(f"pipeline version {version_id!r} of pipeline {pipeline_id!r} not found", 404)

    def _uploaded_package(self, body: Any) -> tuple[str, dict[str, Any]]:
        """The uploaded file's name and its compiled pipeline, which must be one the stand-in was given."""
        upload = (body or {}).get("uploadfile") if isinstance(body, dict) else None
        if not upload:
            raise BadRequest("Failed to read pipeline from file: no multipart field 'uploadfile'")
        try:
            package = compiled_package(upload["text"])
        except Exception as error:  # YAML errors of every kind
            raise BadRequest(f"Failed to read a pipeline spec file: {error}") from error
        name = spec_of(package).get("pipelineInfo", {}).get("name")
        if self.pipeline_specs.get(name) != package:
            raise BadRequest(f"uploadfile: pipeline {name!r} is not a compiled mlkeel pipeline, byte for byte")
        return upload["filename"], package

    def _new_version(self, pipeline_id: str, name: str, package: dict[str, Any], description: str) -> dict[str, Any]:
        version = {
            "pipeline_id": pipeline_id,
            "pipeline_version_id": str(uuid.uuid4()),
            "name": name,
            "display_name": name,
            "description": description,
            "created_at": self._now(),
            "pipeline_spec": package,
        }
        self.pipeline_versions.append(version)
        return version

    def _upload_pipeline(self, body: Any, query: dict[str, str]) -> dict[str, Any]:
        filename, package = self._uploaded_package(body)
        name = query.get("display_name") or query.get("name") or filename.rsplit(".", 1)[0]
        namespace = query.get("namespace", "")
        if any(item["display_name"] == name and item["namespace"] == namespace for item in self.pipelines):
            raise BadRequest("Failed to create a pipeline and a pipeline version", 409)
        pipeline = {
            "pipeline_id": str(uuid.uuid4()),
            "name": name,
            "display_name": name,
            "description": query.get("description", ""),
            "namespace": namespace,
            "created_at": self._now(),
        }
        self.pipelines.append(pipeline)
        self._new_version(pipeline["pipeline_id"], name, package, pipeline["description"])
        return pipeline

    def _upload_pipeline_version(self, body: Any, query: dict[str, str]) -> dict[str, Any]:
        filename, package = self._uploaded_package(body)
        if not query.get("pipelineid"):
            raise BadRequest("Failed to create a pipeline version")
        pipeline = self._pipeline(query["pipelineid"])
        name = query.get("display_name") or query.get("name") or filename.rsplit(".", 1)[0]
        taken = [item for item in self.pipeline_versions if item["pipeline_id"] == pipeline["pipeline_id"]]
        if any(item["display_name"] == name for item in taken):
            raise BadRequest("Failed to create a pipeline version", 409)
        return self._new_version(pipeline["pipeline_id"], name, package, query.get("description", ""))

    # -- listing -------------------------------------------------------------------------------------------------

    def _in_experiment(self, items: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]]:
        if "experiment_id" not in query:
            return items
        experiment_id = self._experiment(query["experiment_id"])["experiment_id"]
        return [item for item in items if item["experiment_id"] == experiment_id]

    @staticmethod
    def _filtered(items: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]]:
        """Apply a v2beta1 filter: only ``EQUALS`` on ``display_name`` (what mlkeel and kfp.Client send)."""
        if not query.get("filter"):
            return items
        try:
            predicates = json.loads(query["filter"])["predicates"]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise BadRequest(f"invalid filter {query['filter']!r}: {error}") from error
        kept = items
        for predicate in predicates:
            operation = predicate.get("operation")
            if operation not in ("EQUALS", 1):
                raise BadRequest(f"the stand-in filters only with EQUALS, got {operation!r}")
            if predicate.get("key") != "display_name":
                raise BadRequest(f"the stand-in filters only on display_name, got {predicate.get('key')!r}")
            value = predicate.get("stringValue", predicate.get("string_value"))
            if not isinstance(value, str):
                raise BadRequest("a display_name predicate needs stringValue")
            kept = [item for item in kept if item["display_name"] == value]
        return kept


def multipart_files(content_type: str, raw: bytes) -> dict[str, Any] | None:
    """The files of a ``multipart/form-data`` body: field name -> ``{"filename", "text"}``; None when unparsable."""
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    if not message.is_multipart():
        return None
    files: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            files[name] = {"filename": part.get_filename() or "", "text": payload.decode("utf-8", "replace")}
    return files
