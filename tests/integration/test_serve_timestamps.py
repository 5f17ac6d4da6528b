"""A model with a timestamp feature served over HTTP: the timestamp arrives as JSON text, as clients send it.

Real parts: the train stage on 5,000 real January 2013 flights (``time_hour`` is a UTC timestamp), a local
SQLite MLflow store, and ``python -m mlkeel.components.serve`` on 127.0.0.1 serving the saved model folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mlkeel.components.serve.logic import http_call
from tests.fixtures_serve import serve_process

DATA = Path(__file__).resolve().parent.parent / "data" / "flights_raw_jan.parquet"


@pytest.mark.integration
def test_a_timestamp_model_scores_iso_text_like_its_own_predict(tmp_path: Path) -> None:
    from mlkeel.components.train.logic import train
    from mlkeel.local import LocalStore
    from mlkeel.modeling import load_sklearn_model, positive_scores

    store = LocalStore.create(tmp_path / "store")
    store.ensure_experiment("timestamps")
    result = train(str(DATA), str(tmp_path / "model"), "late", "1", ["flight_id"], tracking_uri=store.tracking_uri,
                   experiment_name="timestamps")  # fmt: skip
    assert "1 timestamp" in result.features["summary"] and "time_hour" in result.feature_columns

    rows = pq.read_table(DATA).to_pandas().tail(20)[result.feature_columns]
    expected = positive_scores(load_sklearn_model(str(tmp_path / "model")), rows)
    records = json.loads(rows.to_json(orient="records", date_format="iso"))  # "2013-01-31T23:00:00.000Z"
    assert all(isinstance(record["time_hour"], str) for record in records)

    with serve_process(str(tmp_path / "model"), store.tracking_uri, tmp_path) as server:
        status, body = http_call(f"{server.base}/predict", json.dumps({"records": records}).encode())
        assert status == 200, body
        served = [item["probability"] for item in json.loads(body)["predictions"]]
        assert served == pytest.approx(list(expected), abs=1e-9)

        records[3]["time_hour"] = "31/01/2013 23h"
        status, body = http_call(f"{server.base}/predict", json.dumps({"records": records}).encode())
        assert status == 422  # well-formed JSON, a value that is not a timestamp
        assert json.loads(body)["error"].startswith("records[3].time_hour: expected an ISO 8601 timestamp")
