"""The bad-input catalogue (docs/bad-inputs.md): every bad input through a stage's command line.

Each case gives exit code 1 and one ``error: ...`` line naming the file, column, row or parameter, never a
traceback. Row-level problems quarantine the rows: valid + quarantined = read, every row accounted for. Most
cases run in-process (click's runner, the same ``main`` as ``python -m``); the ``subprocess`` ones run as a real
``python -m mlkeel.components.<stage>``. ``tests/e2e/test_cli_bad_input.py`` covers ``mlkeel run training``.
Serving cases are request bodies sent to one real server process (``python -m mlkeel.components.serve`` on
127.0.0.1, shared by the module): each gets its 4xx with a JSON ``error`` naming the record and field.
"""

from __future__ import annotations

import importlib
import json
import math
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from mlkeel.components.gate.logic import Blessing
from mlkeel.components.serve.logic import http_call, json_records
from mlkeel.data import TELCO_CHURN_KEY, TELCO_CHURN_POSITIVE_LABEL, TELCO_CHURN_TARGET
from tests.fixtures_mlflow import _free_port
from tests.fixtures_serve import ServeProcess, serve_process

CATALOGUE = Path(__file__).resolve().parents[2] / "docs" / "bad-inputs.md"
ROWS = 40  # rows of the small Telco slice most cases start from
SERVE_MAX_BODY_BYTES = 20_000  # the catalogue server's body limit


@dataclass
class Inputs:
    """Files and models the cases build on (one set per session)."""

    telco: pa.Table  # ROWS rows of Telco
    schema: Path  # the schema validate infers from those rows
    model_dir: Path  # an MLflow sklearn model trained on Telco
    registered: str  # a registered model name with a champion, in the store ``tracking_uri`` names
    tracking_uri: str
    features: list[str]  # the model's input columns (what a /predict record holds)


@dataclass(frozen=True)
class Case:
    """One bad input: ``build(folder, inputs)`` writes the files and returns the stage's arguments.

    Attributes:
        name: The case's name in docs/bad-inputs.md.
        stage: The stage whose command line runs.
        build: Makes the input.
        message: Text the ``error:`` line must hold (a regex).
        rows_read: For row-level problems: rows in the input; the valid and quarantine outputs must add up.
        subprocess: Run as a real ``python -m`` process.
        expect: The exit code, or for a request to the serving app (``build`` returns ``[body]``) its 4xx.
    """

    name: str
    stage: str
    build: Callable[[Path, Inputs], list[str]]
    message: str
    rows_read: int | None = None
    subprocess: bool = False
    expect: int = 1


def write(folder: Path, name: str, content: str | bytes) -> str:
    path = folder / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return str(path)


def parquet(folder: Path, name: str, table: pa.Table) -> str:
    pq.write_table(table, folder / name)
    return str(folder / name)


def replace(table: pa.Table, column: str, values: list[Any], type_: pa.DataType | None = None) -> pa.Table:
    index = table.column_names.index(column)
    return table.set_column(index, column, pa.array(values, type=type_))


def ingest(source: str, folder: Path, *extra: str) -> list[str]:
    return ["--source", source, "--output", str(folder / "out.parquet"), *extra]


def validate(dataset: str, folder: Path, *extra: str) -> list[str]:
    outputs = ("--valid-out", "valid.parquet", "--quarantine-out", "quarantine.parquet")
    outputs += ("--schema-out", "schema.json", "--report-out", "report.md")
    return [
        "--dataset", dataset,
        *[str(folder / value) if value.endswith((".parquet", ".json", ".md")) else value for value in outputs],
        *extra,
    ]  # fmt: skip


def against_schema(dataset: str, folder: Path, inputs: Inputs, *extra: str) -> list[str]:
    """validate against the Telco schema, failing on any quarantined row (so the step exits 1)."""
    return validate(dataset, folder, "--schema", str(inputs.schema), "--max-invalid-fraction", "0", *extra)


def drift(reference: str, current: str, folder: Path, *extra: str) -> list[str]:
    return [
        "--reference", reference, "--current", current,
        "--result-out", str(folder / "drift.json"), "--report-out", str(folder / "drift.html"),
        "--exclude-column", TELCO_CHURN_KEY, "--exclude-column", TELCO_CHURN_TARGET, *extra,
    ]  # fmt: skip


def predict(dataset: str, folder: Path, inputs: Inputs, *extra: str, model: str = "") -> list[str]:
    return [
        "--model", model or str(inputs.model_dir), "--dataset", dataset,
        "--output", str(folder / "predictions.parquet"), "--mlflow-uri", inputs.tracking_uri, *extra,
    ]  # fmt: skip


def gate(folder: Path, inputs: Inputs, *extra: str, metrics: str = '{"roc_auc": 0.8}') -> list[str]:
    return [
        "--model", str(inputs.model_dir), "--test-data", parquet(folder, "holdout.parquet", inputs.telco),
        "--metrics-json", metrics, "--model-name", inputs.registered, "--target-column", TELCO_CHURN_TARGET,
        "--positive-label", TELCO_CHURN_POSITIVE_LABEL, "--blessing-out", str(folder / "blessing.json"),
        "--tracking-uri", inputs.tracking_uri, *extra,
    ]  # fmt: skip


def register(folder: Path, inputs: Inputs, blessing: str) -> list[str]:
    return [
        "--model-uri", str(inputs.model_dir), "--blessing", write(folder, "blessing.json", blessing),
        "--model-name", inputs.registered, "--tracking-uri", inputs.tracking_uri,
    ]  # fmt: skip


def telco(inputs: Inputs) -> pa.Table:
    return inputs.telco


def records(inputs: Inputs, *changes: dict[str, Any], drop: str = "") -> list[dict[str, Any]]:
    """One valid /predict record per ``changes`` (Telco rows, model columns), each updated by it."""
    rows = json_records(inputs.telco.select(inputs.features).slice(0, len(changes)))
    return [{key: value for key, value in {**row, **change}.items() if key != drop} for row, change in
            zip(rows, changes, strict=True)]  # fmt: skip


def body(document: Any, raw: str = "") -> list[str]:
    """A /predict body; ``raw`` replaces the value ``"@"`` with text json.dumps would not write."""
    return [json.dumps(document, ensure_ascii=False).replace('"@"', raw or '"@"')]


def serve(folder: Path, inputs: Inputs, alias: str) -> list[str]:
    return [
        "--model", f"models:/{inputs.registered}@{alias}", "--port", str(_free_port()),
        "--prediction-log", str(folder / "log"), "--mlflow-uri", inputs.tracking_uri,
    ]  # fmt: skip


UNBLESSED = json.dumps(Blessing(False, "Not blessed: roc_auc 0.61 < 0.75", "roc_auc", 0.01, 0.61).to_dict())

CASES = [
    # ingest
    Case("empty Parquet file", "ingest", lambda f, i: ingest(write(f, "e.parquet", ""), f),
         r"e\.parquet: file is empty \(0 bytes\)", subprocess=True),
    Case("ragged CSV row", "ingest", lambda f, i: ingest(write(f, "r.csv", "a,b\n1,2\n3,4,5\n"), f),
         r"r\.csv: not a readable CSV file.*Expected 2 columns, got 3"),
    Case("invalid UTF-8 in a CSV", "ingest", lambda f, i: ingest(write(f, "u.csv", b"a,b\n1,\xff\xfe\n"), f),
         r"u\.csv: column 'b', row 0 \(0-based data row\): .* is not UTF-8 text"),
    Case("corrupted Parquet", "ingest", lambda f, i: ingest(write(f, "c.parquet", b"PAR1 this is not parquet"), f),
         r"c\.parquet: not a readable PARQUET file \(corrupted or truncated", subprocess=True),
    Case("truncated Parquet", "ingest",
         lambda f, i: ingest(write(f, "t.parquet", Path(parquet(f, "full.parquet", telco(i))).read_bytes()[:-100]), f),
         r"t\.parquet: not a readable PARQUET file \(corrupted or truncated"),
    Case("wrong file format (JSON)", "ingest", lambda f, i: ingest(write(f, "d.json", '{"a": 1}'), f),
         r"d\.json.*(csv|CSV).*(parquet|Parquet)"),
    Case("CSV bytes named .parquet", "ingest", lambda f, i: ingest(write(f, "x.parquet", "a,b\n1,2\n"), f),
         r"x\.parquet: not a readable PARQUET file"),
    Case("unknown column type", "ingest",
         lambda f, i: ingest(write(f, "k.csv", "a,y\n1,0\n"), f, "--column-types", '{"a": "decimal"}'),
         r"column_types\['a'\]='decimal': unknown type"),
    # validate
    Case("target with one class", "validate",
         lambda f, i: validate(parquet(f, "one.parquet", replace(telco(i), TELCO_CHURN_TARGET, ["No"] * ROWS)), f,
                               "--target-column", TELCO_CHURN_TARGET),
         r"one\.parquet.*'Churn'.*1 class", subprocess=True),
    Case("target column missing", "validate",
         lambda f, i: validate(parquet(f, "nt.parquet", telco(i).drop_columns([TELCO_CHURN_TARGET])), f,
                               "--target-column", TELCO_CHURN_TARGET), r"'Churn'"),
    Case("positive label not among the classes", "validate",
         lambda f, i: validate(parquet(f, "pl.parquet", telco(i)), f, "--target-column", TELCO_CHURN_TARGET,
                               "--positive-label", "Maybe"), r"'Maybe'"),
    Case("missing column", "validate",
         lambda f, i: against_schema(parquet(f, "mc.parquet", telco(i).drop_columns(["tenure"])), f, i),
         r"mc\.parquet.*'tenure'"),
    Case("renamed column", "validate",
         lambda f, i: against_schema(parquet(f, "rc.parquet", telco(i).rename_columns(
             [("Tenure" if name == "tenure" else name) for name in telco(i).column_names])), f, i),
         r"rc\.parquet.*'tenure'"),
    Case("wrong dtype against the schema", "validate",
         lambda f, i: against_schema(parquet(f, "wd.parquet", replace(
             telco(i), "tenure", ["twelve"] + [str(v) for v in telco(i)["tenure"].to_pylist()[1:]])), f, i),
         r"wd\.parquet: 1 of 40 rows .*column .tenure. type", rows_read=ROWS),
    Case("NaN and inf in a numeric column", "validate",
         lambda f, i: against_schema(parquet(f, "nan.parquet", replace(
             telco(i), "MonthlyCharges", [math.nan, math.inf, *telco(i)["MonthlyCharges"].to_pylist()[2:]])), f, i),
         r"nan\.parquet.*2 of 40 rows", rows_read=ROWS),
    Case("unseen category", "validate",
         lambda f, i: against_schema(parquet(f, "uc.parquet", replace(
             telco(i), "Contract", ["Lifetime", *telco(i)["Contract"].to_pylist()[1:]])), f, i),
         r"uc\.parquet.*1 of 40 rows", rows_read=ROWS),
    Case("duplicate ids", "validate",
         lambda f, i: against_schema(parquet(f, "dup.parquet", replace(
             telco(i), TELCO_CHURN_KEY, [telco(i)[TELCO_CHURN_KEY][0].as_py()] * 3
             + telco(i)[TELCO_CHURN_KEY].to_pylist()[3:])), f, i),
         r"dup\.parquet.*of 40 rows", rows_read=ROWS),
    Case("unicode and a very long string", "validate",
         lambda f, i: against_schema(parquet(f, "ul.parquet", replace(
             telco(i), "PaymentMethod", ["支払い🙂" * 20000, *telco(i)["PaymentMethod"].to_pylist()[1:]])), f, i),
         r"ul\.parquet.*1 of 40 rows", rows_read=ROWS),
    Case("schema file not JSON", "validate",
         lambda f, i: validate(parquet(f, "ok.parquet", telco(i)), f, "--schema", write(f, "s.json", "{nope")),
         r"s\.json: not valid JSON"),
    Case("max invalid fraction out of range", "validate",
         lambda f, i: validate(parquet(f, "ok.parquet", telco(i)), f, "--max-invalid-fraction", "-0.1"),
         r"max_invalid_fraction"),
    # drift
    Case("mismatched reference and current schemas", "drift",
         lambda f, i: drift(parquet(f, "ref.parquet", telco(i)),
                            parquet(f, "cur.parquet", telco(i).drop_columns(["tenure"])), f),
         r"cur\.parquet.*'tenure'"),
    Case("empty current batch", "drift",
         lambda f, i: drift(parquet(f, "ref.parquet", telco(i)), parquet(f, "cur0.parquet", telco(i).slice(0, 0)), f),
         r"cur0\.parquet"),
    Case("zero p-value", "drift",
         lambda f, i: drift(parquet(f, "ref.parquet", telco(i)), parquet(f, "cur.parquet", telco(i)), f,
                            "--p-val", "0"), r"p_val=0"),
    Case("zero PSI threshold", "drift",
         lambda f, i: drift(parquet(f, "ref.parquet", telco(i)), parquet(f, "cur.parquet", telco(i)), f,
                            "--psi-threshold", "0"), r"psi_threshold=0\.0: expected a number > 0"),
    # batch predict
    Case("rows missing a model feature", "batch_predict",
         lambda f, i: predict(parquet(f, "mf.parquet", telco(i).drop_columns(["tenure"])), f, i),
         r"mf\.parquet: missing feature column\(s\) the model needs: tenure"),
    Case("decision threshold above 1", "batch_predict",
         lambda f, i: predict(parquet(f, "ok.parquet", telco(i)), f, i, "--threshold", "1.5"), r"threshold"),
    Case("model alias that does not exist", "batch_predict",
         lambda f, i: predict(parquet(f, "ok.parquet", telco(i)), f, i, model=f"models:/{i.registered}@nope"),
         r"'nope'|@nope", subprocess=True),
    # gate, register, champion parameters
    Case("negative margin", "gate", lambda f, i: gate(f, i, "--margin", "-0.01"), r"margin=-0\.01"),
    Case("threshold that is not a number", "gate", lambda f, i: gate(f, i, "--thresholds", '{"roc_auc": NaN}'),
         r"thresholds\['roc_auc'\]=nan: must be a finite number"),
    Case("threshold on an unknown metric", "gate", lambda f, i: gate(f, i, "--thresholds", '{"auc": 0.7}'),
         r"thresholds names unknown metric 'auc'"),
    Case("metrics without the gate metric", "gate", lambda f, i: gate(f, i, metrics='{"accuracy": 0.8}'),
         r"roc_auc"),
    Case("unblessed model", "register", lambda f, i: register(f, i, UNBLESSED),
         r"is not registered as .*the gate's decision: Not blessed"),
    Case("blessing file that is not a blessing", "register", lambda f, i: register(f, i, '{"a": 1}'),
         r"blessing\.json: not a gate blessing, missing field"),
    Case("champion alias that does not exist", "champion",
         lambda f, i: ["--model-name", i.registered, "--alias", "nope", "--reference-out", str(f / "r.parquet"),
                       "--schema-out", str(f / "s.json"), "--mlflow-uri", i.tracking_uri], r"'nope'"),
    Case("model name that is not registered", "champion",
         lambda f, i: ["--model-name", "no-such-model", "--reference-out", str(f / "r.parquet"),
                       "--schema-out", str(f / "s.json"), "--mlflow-uri", i.tracking_uri], r"'no-such-model'"),
    # serve: the server's start-up, then request bodies to the running server (HTTP status in ``expect``)
    Case("model alias that does not exist at serve start-up", "serve", lambda f, i: serve(f, i, "nope"),
         r"cannot serve models:/catalogue@nope: no version of 'catalogue' has alias 'nope'", subprocess=True),
    Case("request: wrong type in a record", "serve",
         lambda f, i: body({"records": records(i, {}, {"tenure": "twelve"})}),
         r"records\[1\]\.tenure: expected an integer, got a string 'twelve'", expect=422),
    Case("request: record missing a field", "serve",
         lambda f, i: body({"records": records(i, {}, drop="Contract")}),
         r"records\[0\]: missing field\(s\) 'Contract'", expect=422),
    Case("request: extra field in a record", "serve",
         lambda f, i: body({"records": records(i, {}, {}, {"favourite_colour": "teal"})}),
         r"records\[2\]: unknown field\(s\) 'favourite_colour'", expect=422),
    Case("request: unicode field name not in the schema", "serve",
         lambda f, i: body({"records": records(i, {"顧客の気分🙂": 1})}),
         r"records\[0\]: unknown field\(s\) '顧客の気分🙂'", expect=422),
    Case("request: null in a never-null field", "serve",
         lambda f, i: body({"records": records(i, {}, {"gender": None})}),
         r"records\[1\]\.gender: null is not allowed \(the field is not nullable\)", expect=422),
    Case("request: very long string for a number", "serve",
         lambda f, i: body({"records": records(i, {"MonthlyCharges": "9" * 10_000})}),
         r"records\[0\]\.MonthlyCharges: expected a number, got a string '9999", expect=422),
    Case("request: empty record list", "serve", lambda f, i: body({"records": []}),
         r"field 'records': the list is empty; send at least one record", expect=422),
    Case("request: records not a list", "serve", lambda f, i: body({"records": records(i, {})[0]}),
         r"field 'records': expected a list of objects, got an object", expect=422),
    Case("request: record not an object", "serve", lambda f, i: body({"records": [[1, 2]]}),
         r"records\[0\]: expected an object of field values, got a list", expect=422),
    Case("request: ids not matching the records", "serve",
         lambda f, i: body({"records": records(i, {}, {}), "ids": ["a"]}),
         r"field 'ids': 1 ids for 2 records", expect=422),
    Case("request: body not JSON", "serve", lambda f, i: ["tenure=12&Contract=Month-to-month"],
         r"body is not valid JSON \(line 1, column 1\): Expecting value", expect=400),
    Case("request: wrong top-level shape", "serve", lambda f, i: body(records(i, {})),
         r'body must be a JSON object \{"records": \[\{\.\.\.\}, \.\.\.\]\}', expect=400),
    Case("request: deeply nested JSON", "serve", lambda f, i: ['{"records": ' + "[" * 5_000 + "]" * 5_000 + "}"],
         r"body is not usable JSON: nested too deeply", expect=400),
    Case("request: a 5,000-digit number", "serve",
         lambda f, i: body({"records": records(i, {"tenure": "@"})}, raw="7" * 5_000),
         r"body is not usable JSON: Exceeds the limit \(4300 digits\)", expect=400),
    Case("request: unpaired surrogate escape in a value", "serve",
         lambda f, i: body({"records": records(i, {"gender": "@"})}, raw='"\\ud800"'),
         r"body is not usable JSON: an unpaired surrogate escape", expect=400),
    Case("request: body over the size limit", "serve",
         lambda f, i: body({"records": records(i, {}) * 100}),
         rf"body of \d+ bytes exceeds the limit of {SERVE_MAX_BODY_BYTES} bytes", expect=413),
]  # fmt: skip


@pytest.fixture(scope="session")
def inputs(
    telco_parquet: Path, tmp_path_factory: pytest.TempPathFactory, train_telco, _mlflow_session_store: Path
) -> Inputs:
    from mlkeel.components.register.logic import register as register_model
    from mlkeel.components.validate.logic import validate as validate_dataset
    from mlkeel.modeling import load_sklearn_model, model_feature_columns

    folder = tmp_path_factory.mktemp("catalogue")
    table = pq.read_table(telco_parquet).slice(0, ROWS)
    pq.write_table(table, folder / "telco.parquet")
    validate_dataset(
        str(folder / "telco.parquet"), folder / "v.parquet", folder / "q.parquet", folder / "schema.json",
        folder / "report.md", key_columns=[TELCO_CHURN_KEY], target_column=TELCO_CHURN_TARGET,
    )  # fmt: skip
    store = tmp_path_factory.mktemp("catalogue_store")
    uri = f"sqlite:///{store / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("_MLFLOW_SERVER_ARTIFACT_ROOT", (store / "artifacts").as_uri())
        trained = train_telco(uri, "catalogue")
        blessing = Blessing(True, "Blessed: catalogue", "roc_auc", 0.0, 0.8)
        register_model(trained.model_uri, blessing, "catalogue", uri)
    features = model_feature_columns(load_sklearn_model(str(trained.model_dir)))
    return Inputs(table, folder / "schema.json", trained.model_dir, "catalogue", uri, features)


@pytest.fixture(scope="module")
def server(inputs: Inputs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """The catalogue's champion served by one real process for every serving case (started on first use)."""
    folder = tmp_path_factory.mktemp("catalogue_serve")
    model = f"models:/{inputs.registered}@champion"
    with serve_process(model, inputs.tracking_uri, folder, "--max-body-bytes", str(SERVE_MAX_BODY_BYTES)) as running:
        yield running


def run_stage(case: Case, arguments: list[str], folder: Path) -> tuple[int, str]:
    if case.subprocess:
        completed = subprocess.run(
            [sys.executable, "-m", f"mlkeel.components.{case.stage}", *arguments],
            capture_output=True, text=True, timeout=300, check=False, cwd=folder,
        )  # fmt: skip
        return completed.returncode, completed.stderr
    main = importlib.import_module(f"mlkeel.components.{case.stage}.cli").main
    result = CliRunner().invoke(main, arguments, catch_exceptions=True)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), (
        f"{case.name}: {result.exception!r}"
    )
    return result.exit_code, result.stderr


def post(server: ServeProcess, arguments: list[str]) -> tuple[int, str]:
    """POST the case's body to the running server: ``(status, "error: <the answer's error>")``."""
    status, answer = http_call(f"{server.base}/predict", arguments[0].encode())
    document = json.loads(answer)
    return status, f"error: {document.get('error', document)}"


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_rejected_with_a_clear_error(
    case: Case, inputs: Inputs, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    arguments = case.build(tmp_path, inputs)
    if case.expect >= 400:
        code, stderr = post(request.getfixturevalue("server"), arguments)
    else:
        code, stderr = run_stage(case, arguments, tmp_path)
    assert code == case.expect, f"{case.name}: exit {code}\n{stderr}"
    lines = stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), stderr
    assert "Traceback" not in stderr
    assert re.search(case.message, lines[-1]), f"{case.name}: {lines[-1]!r} lacks {case.message!r}"
    if case.rows_read is not None:  # nothing lost: every row read is either valid or quarantined
        valid = pq.read_metadata(tmp_path / "valid.parquet").num_rows
        quarantined = pq.read_metadata(tmp_path / "quarantine.parquet").num_rows
        assert quarantined > 0 and valid + quarantined == case.rows_read


def test_the_catalogue_lists_every_case() -> None:
    text = CATALOGUE.read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ") and "---" not in line}
    assert len(CASES) >= 25 and len({case.name for case in CASES}) == len(CASES)
    assert {case.name for case in CASES} <= rows, {case.name for case in CASES} - rows
