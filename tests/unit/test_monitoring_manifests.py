"""manifests/monitoring/operator/: the PrometheusRule, PodMonitor and ServiceMonitor validate strictly against
the Prometheus Operator's CRD schemas (vendored in operator/crds/), and a misspelt or mistyped field fails."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from mlkeel.k8s_schema import ManifestError, custom_resource_schemas, validate_custom_resource, yaml_files

OPERATOR = Path(__file__).resolve().parents[2] / "manifests" / "monitoring" / "operator"


def load(name: str) -> dict:
    return yaml.safe_load((OPERATOR / name).read_text())


def schemas() -> dict:
    return custom_resource_schemas(yaml.safe_load(path.read_text()) for path in yaml_files(OPERATOR / "crds"))


def test_the_operator_resources_match_their_crds() -> None:
    known = schemas()
    for name in ("prometheus-rule.yaml", "pod-monitor.yaml", "service-monitor.yaml"):
        document = load(name)
        validate_custom_resource(document, known[(document["apiVersion"], document["kind"])], name)


def test_a_misspelt_or_mistyped_field_fails_naming_it() -> None:
    known = schemas()
    monitor = load("pod-monitor.yaml")
    misspelt = copy.deepcopy(monitor)
    misspelt["spec"]["podMetricEndpoints"] = misspelt["spec"].pop("podMetricsEndpoints")
    with pytest.raises(ManifestError, match=r"PodMonitor mlkeel-serving/mlkeel-serving: at spec: .*podMetricEndpoints"):
        validate_custom_resource(misspelt, known[("monitoring.coreos.com/v1", "PodMonitor")])
    rule = load("prometheus-rule.yaml")
    mistyped = copy.deepcopy(rule)
    mistyped["spec"]["groups"][0]["rules"][0]["labels"] = {"severity": 3}
    with pytest.raises(
        ManifestError, match=r"at spec\.groups\.0\.rules\.0\.labels\.severity: 3 is not of type 'string'"
    ):
        validate_custom_resource(mistyped, known[("monitoring.coreos.com/v1", "PrometheusRule")])
