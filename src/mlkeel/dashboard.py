"""The Grafana dashboard of mlkeel, generated with Grafana's foundation SDK (``grafana-foundation-sdk``).

``python -m mlkeel.dashboard`` writes manifests/monitoring/dashboards/mlkeel.json; ``--check`` fails when the
committed file differs from what this code generates. Two rows:

- model health, from what monitoring runs push (``mlkeel_monitoring_*``, components/push_metrics): drift per
  feature over time (p-value, PSI), the drifted-feature share, live metric vs holdout, the quarantined share,
  the last run and whether it retrained;
- serving, from ``mlkeel serve``'s /metrics (``mlkeel_serve_*``): request rate and errors by status, p50/p99
  latency, the score distribution and the predicted classes.

Every query reads only metrics mlkeel exports (tests/unit/test_dashboard.py against the static lists,
tests/integration/test_prometheus.py against a live /metrics and a live push).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Final

DASHBOARD_UID: Final = "mlkeel-model-health"
DASHBOARD_FILE: Final = Path("manifests") / "monitoring" / "dashboards" / "mlkeel.json"
# The Prometheus data source is a dashboard variable, so the file imports into any Grafana.
DATASOURCE_VARIABLE: Final = "datasource"
MODEL_FILTER: Final = 'model_name=~"$model"'


def _query(expr: str, legend: str, ref_id: str = "A") -> Any:
    from grafana_foundation_sdk.builders import prometheus

    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref_id)


def _datasource() -> Any:
    from grafana_foundation_sdk.models.dashboard import DataSourceRef

    return DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE_VARIABLE}}}")


def _timeseries(title: str, description: str, unit: str, *queries: tuple[str, str]) -> Any:
    from grafana_foundation_sdk.builders import timeseries

    panel = timeseries.Panel().title(title).description(description).unit(unit).datasource(_datasource())
    for index, (expr, legend) in enumerate(queries):
        panel = panel.with_target(_query(expr, legend, chr(ord("A") + index)))
    return panel.height(8).span(12)


def _stat(title: str, description: str, unit: str, expr: str, legend: str) -> Any:
    from grafana_foundation_sdk.builders import stat

    return (
        stat.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(_datasource())
        .with_target(_query(expr, legend))
        .height(4)
        .span(6)
    )


def build_dashboard() -> dict[str, Any]:
    """The dashboard as Grafana's JSON model (a dict).

    Returns:
        The dashboard; its panels' ``targets[].expr`` are PromQL over mlkeel's exported metrics.
    """
    from grafana_foundation_sdk.builders import dashboard
    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    model = f"{{{MODEL_FILTER}}}"
    builder = (
        dashboard.Dashboard("mlkeel: model health and serving")
        .uid(DASHBOARD_UID)
        .tags(["mlkeel", "mlops"])
        .description("Monitoring runs (pushed to the Pushgateway) and the serving app's /metrics.")
        .time("now-7d", "now")
        .refresh("1m")
        .with_variable(dashboard.DatasourceVariable(DATASOURCE_VARIABLE).label("Prometheus").type("prometheus"))
        .with_variable(
            dashboard.QueryVariable("model")
            .label("Model")
            .datasource(_datasource())
            .query("label_values(mlkeel_monitoring_last_run_timestamp_seconds, model_name)")
            .multi(True)
            .include_all(True)
        )
        .with_row(dashboard.Row("Model health (monitoring runs)"))
        .with_panel(
            _stat(
                "Last monitoring run",
                "When the model's last monitoring run pushed its figures (the staleness alert fires after 1.5 "
                "schedules).",
                "dateTimeFromNow",
                f"max by (model_name) (mlkeel_monitoring_last_run_timestamp_seconds{model}) * 1000",
                "{{model_name}}",
            )
        )
        .with_panel(
            _stat(
                "Drift detected",
                "1 when the last run's drift tests called the batch drifted.",
                "none",
                f"max by (model_name) (mlkeel_monitoring_drift_detected{model})",
                "{{model_name}}",
            )
        )
        .with_panel(
            _stat(
                "Retraining triggered",
                "1 when the last run retrained (drift or degradation).",
                "none",
                f"max by (model_name) (mlkeel_monitoring_retraining_triggered{model})",
                "{{model_name}}",
            )
        )
        .with_panel(
            _stat(
                "Quarantined rows",
                "Share of the last batch's rows validation quarantined.",
                "percentunit",
                f"max by (model_name) (mlkeel_monitoring_quarantined_share{model})",
                "{{model_name}}",
            )
        )
        .with_panel(
            _timeseries(
                "Drift p-value per feature",
                "The drift test's p-value of each feature, run after run (low = drifted).",
                "none",
                (f"mlkeel_monitoring_feature_p_value{model}", "{{model_name}} {{feature}}"),
            )
        )
        .with_panel(
            _timeseries(
                "PSI per feature",
                "Population Stability Index of each feature against the run's bound.",
                "none",
                (f"mlkeel_monitoring_feature_psi{model}", "{{model_name}} {{feature}}"),
                (f"mlkeel_monitoring_psi_threshold{model}", "{{model_name}} bound"),
            )
        )
        .with_panel(
            _timeseries(
                "Live metric vs holdout",
                "The champion's degradation metric on each labelled batch and on its training holdout.",
                "none",
                (
                    f"mlkeel_monitoring_live_metric{model} and on(model_name, model_version, metric) "
                    f"mlkeel_monitoring_holdout_metric{model}",
                    "{{model_name}} v{{model_version}} live {{metric}}",
                ),
                (f"mlkeel_monitoring_holdout_metric{model}", "{{model_name}} v{{model_version}} holdout {{metric}}"),
            )
        )
        .with_panel(
            _timeseries(
                "Drifted features and metric drop",
                "Share of features called drifted, and the drop of the live metric against the tolerated drop.",
                "none",
                (f"mlkeel_monitoring_drifted_feature_share{model}", "{{model_name}} drifted share"),
                (f"mlkeel_monitoring_metric_drop{model}", "{{model_name}} {{metric}} drop"),
                (f"mlkeel_monitoring_metric_max_drop{model}", "{{model_name}} tolerated drop"),
            )
        )
        .with_row(dashboard.Row("Serving (mlkeel serve /metrics)"))
        .with_panel(
            _timeseries(
                "Requests by status",
                "Requests per second to /predict, by HTTP status (4xx: malformed requests; 5xx: server side).",
                "reqps",
                ('sum by (status) (rate(mlkeel_serve_requests_total{endpoint="/predict"}[5m]))', "{{status}}"),
            )
        )
        .with_panel(
            _timeseries(
                "Error share",
                "Share of /predict requests answered 4xx and 5xx.",
                "percentunit",
                (
                    # "or vector(0)": no 5xx series at all is a share of 0, not an empty panel.
                    '(sum(rate(mlkeel_serve_requests_total{endpoint="/predict",status=~"5.."}[5m])) or vector(0)) / '
                    'sum(rate(mlkeel_serve_requests_total{endpoint="/predict"}[5m]))',
                    "5xx",
                ),
                (
                    '(sum(rate(mlkeel_serve_requests_total{endpoint="/predict",status=~"4.."}[5m])) or vector(0)) / '
                    'sum(rate(mlkeel_serve_requests_total{endpoint="/predict"}[5m]))',
                    "4xx",
                ),
            )
        )
        .with_panel(
            _timeseries(
                "Latency",
                "p50 and p99 of /predict.",
                "s",
                (
                    "histogram_quantile(0.5, sum by (le) "
                    '(rate(mlkeel_serve_request_duration_seconds_bucket{endpoint="/predict"}[5m])))',
                    "p50",
                ),
                (
                    "histogram_quantile(0.99, sum by (le) "
                    '(rate(mlkeel_serve_request_duration_seconds_bucket{endpoint="/predict"}[5m])))',
                    "p99",
                ),
            )
        )
        .with_panel(
            _timeseries(
                "Score distribution",
                "Positive-class probability of scored records: share of records below each bucket bound.",
                "percentunit",
                (
                    f"sum by (le) (rate(mlkeel_serve_prediction_score_bucket{model}[5m])) / ignoring(le) "
                    f"group_left sum(rate(mlkeel_serve_prediction_score_count{model}[5m]))",
                    "<= {{le}}",
                ),
            )
        )
        .with_panel(
            _timeseries(
                "Predicted classes",
                "Records scored per second, by model version and predicted class (1 = positive).",
                "ops",
                (
                    f"sum by (model_version, predicted_class) (rate(mlkeel_serve_predictions_total{model}[5m]))",
                    "v{{model_version}} class {{predicted_class}}",
                ),
            )
        )
        .with_panel(
            _timeseries(
                "Prediction-log backlog",
                "Rows waiting to be written (past max_buffered_rows /predict answers 503) and failed writes.",
                "none",
                ("max by (instance) (mlkeel_serve_prediction_log_buffered_rows)", "{{instance}} buffered"),
                ("max by (instance) (mlkeel_serve_prediction_log_write_errors)", "{{instance}} write errors"),
            )
        )
    )
    document: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    return document


def render() -> str:
    """The dashboard file's text: sorted keys, two-space indent, a final newline (stable diffs)."""
    return json.dumps(build_dashboard(), indent=2, sort_keys=True) + "\n"


def queries(document: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (panel title, PromQL) of a dashboard, rows' panels included; query variables' queries too."""
    found: list[tuple[str, str]] = []
    for panel in document.get("panels", []):
        for inner in [panel, *panel.get("panels", [])]:
            found += [
                (inner.get("title", ""), target["expr"]) for target in inner.get("targets", []) if "expr" in target
            ]
    for variable in document.get("templating", {}).get("list", []):
        query = variable.get("query")
        if variable.get("type") == "query" and isinstance(query, str) and query:
            found.append((f"variable {variable.get('name')}", query))
    return found


def main(argv: list[str] | None = None) -> int:
    """``python -m mlkeel.dashboard [--check] [PATH]``: write the dashboard, or check the committed one.

    Returns:
        0 when written or current; 1 when ``--check`` finds it stale.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    paths = [arg for arg in args if arg != "--check"]
    path = Path(paths[0]) if paths else DASHBOARD_FILE
    text = render()
    if check:
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            print(f"{path} is stale: run python -m mlkeel.dashboard", file=sys.stderr)
            return 1
        print(f"{path} is current")
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
