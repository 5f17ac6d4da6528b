"""Fixtures on real data: the bundled Telco churn file, ingested and split once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlkeel.data import TELCO_CHURN_CSV, TELCO_CHURN_KEY, TELCO_CHURN_POSITIVE_LABEL, TELCO_CHURN_TARGET


@pytest.fixture(scope="session")
def telco_csv() -> Path:
    """The bundled IBM Telco churn CSV (7,043 rows)."""
    return TELCO_CHURN_CSV


@pytest.fixture(scope="session")
def telco_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Telco data after ingest (normalised Parquet)."""
    from mlkeel.components.ingest.logic import ingest

    path = tmp_path_factory.mktemp("telco") / "telco.parquet"
    ingest(str(TELCO_CHURN_CSV), str(path))
    return path


@pytest.fixture(scope="session")
def telco_split(tmp_path_factory: pytest.TempPathFactory, telco_parquet: Path) -> tuple[Path, Path]:
    """(train, test) Parquet files: a stratified 80/20 split of the ingested Telco data, seed 42."""
    from mlkeel.components.split.logic import split

    folder = tmp_path_factory.mktemp("telco_split")
    train, test = folder / "train.parquet", folder / "test.parquet"
    split(str(telco_parquet), str(train), str(test), TELCO_CHURN_TARGET, TELCO_CHURN_POSITIVE_LABEL)
    return train, test


TELCO = {
    "target_column": TELCO_CHURN_TARGET,
    "positive_label": TELCO_CHURN_POSITIVE_LABEL,
    "key": TELCO_CHURN_KEY,
}
