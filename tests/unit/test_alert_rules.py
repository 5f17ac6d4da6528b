"""The alert rules of manifests/monitoring/: promtool's own tests pass, one per rule, and the rules read only
metrics mlkeel exports; the PrometheusRule holds exactly the plain rules file's groups."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from mlkeel.components.push_metrics.logic import PUSHED_METRICS
from mlkeel.components.serve.logic import ServingMetrics
from mlkeel.constants import ServingLabel
from tests.fixtures_prometheus import RULES_FILE, RULES_TEST_FILE, require_binary

OPERATOR_RULE = RULES_FILE.parent.parent / "operator" / "prometheus-rule.yaml"


def alerts() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES_FILE.read_text())["groups"] for rule in group["rules"]]


def serving_metric_names() -> set[str]:
    """Every sample name ``mlkeel serve`` exposes (counters as *_total, histograms as *_bucket/_sum/_count)."""
    metrics = ServingMetrics()
    metrics.requests.labels("/predict", "200").inc()
    metrics.latency.labels("/predict", "200").observe(0.01)
    metrics.predictions.labels("m", "1", "1").inc()
    metrics.scores.labels("m", "1").observe(0.5)
    return {sample.name for family in metrics.registry.collect() for sample in family.samples}


def metric_names(expr: str) -> set[str]:
    """The mlkeel metric names a PromQL expression reads."""
    return set(re.findall(r"\b(mlkeel_[a-z0-9_]+)", expr))


def test_promtool_tests_pass() -> None:
    promtool = require_binary("promtool")
    checked = subprocess.run([promtool, "check", "rules", str(RULES_FILE)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [promtool, "test", "rules", RULES_TEST_FILE.name], cwd=RULES_TEST_FILE.parent, capture_output=True, text=True
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_has_a_promtool_test_that_fires_it_beside_a_healthy_series() -> None:
    suite = yaml.safe_load(RULES_TEST_FILE.read_text())["tests"]
    for rule in alerts():
        cases = [case for test in suite for case in test["alert_rule_test"] if case["alertname"] == rule["alert"]]
        fired = [case for case in cases if case["exp_alerts"]]
        assert fired, f"{rule['alert']}: no promtool test expects it to fire"
        (test,) = [test for test in suite if any(case in test["alert_rule_test"] for case in fired)]
        series = [item["series"] for item in test["input_series"]]
        expected = {tuple(sorted(alert["exp_labels"].items())) for case in fired for alert in case["exp_alerts"]}
        # Each firing case lists one alert and the test also feeds a healthy model or server that must not fire.
        assert all(len(case["exp_alerts"]) == 1 for case in fired), rule["alert"]
        assert any('"churn"' in item or '"serve-ok"' in item for item in series), f"{rule['alert']}: no healthy series"
        assert expected


def test_every_alert_has_a_summary_and_a_runbook_naming_what_to_run() -> None:
    for rule in alerts():
        annotations = rule["annotations"]
        assert annotations.get("summary") and annotations.get("description"), rule["alert"]
        assert annotations.get("runbook"), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
    runbooks = " ".join(rule["annotations"]["runbook"] for rule in alerts())
    assert "mlkeel run monitoring" in runbooks and "mlkeel rollback" in runbooks


def test_rules_read_only_metrics_mlkeel_exports() -> None:
    exported = set(PUSHED_METRICS) | serving_metric_names()
    for rule in alerts():
        names = metric_names(rule["expr"])
        assert names, rule["alert"]
        assert names <= exported, f"{rule['alert']} reads {sorted(names - exported)}, which mlkeel does not export"


def test_the_prometheus_rule_holds_the_plain_rules_files_groups() -> None:
    operator = yaml.safe_load(OPERATOR_RULE.read_text())
    assert (operator["apiVersion"], operator["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert operator["spec"] == yaml.safe_load(RULES_FILE.read_text())


def test_the_kind_stacks_prometheus_config_is_valid_and_loads_these_rules(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    documents = yaml.safe_load_all((RULES_FILE.parent.parent / "prometheus.yaml").read_text())
    (config_map,) = [
        doc for doc in documents if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "prometheus-config"
    ]
    config = yaml.safe_load(config_map["data"]["prometheus.yml"])
    assert config["rule_files"] == ["/etc/prometheus/rules/mlkeel.rules.yml"]  # the prometheus-rules ConfigMap's key
    pushgateway = [job for job in config["scrape_configs"] if job["job_name"] == "pushgateway"]
    assert pushgateway and pushgateway[0]["honor_labels"] is True  # the pushed job and model labels survive
    # The serving job keeps the pods the deploy stage labels, on the port it names "http".
    (serving,) = [job for job in config["scrape_configs"] if job["job_name"] == "mlkeel-serve"]
    meta_label = "__meta_kubernetes_pod_label_" + re.sub(r"[^a-z0-9]", "_", ServingLabel.MANAGED_BY)
    keeps = {
        (tuple(rule["source_labels"]), rule["regex"])
        for rule in serving["relabel_configs"]
        if rule.get("action") == "keep"
    }
    assert keeps == {((meta_label,), "mlkeel"), (("__meta_kubernetes_pod_container_port_name",), "http")}
    # Debian's prometheus 2.42 is built without Kubernetes service discovery: promtool checks the rest.
    config["scrape_configs"] = [job for job in config["scrape_configs"] if "kubernetes_sd_configs" not in job]
    config["rule_files"] = [str(RULES_FILE)]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    checked = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
