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


# The share of positives in the rare-positive table: what the user of issue 15 saw (a batch with 1.7 % positives).
RARE_POSITIVE_SHARE = 0.017


@pytest.fixture(scope="session")
def telco_rare_split(tmp_path_factory: pytest.TempPathFactory, telco_parquet: Path) -> tuple[Path, Path]:
    """(train, test) of a rare-positive Telco table: every non-churner and a seeded sample of churners, 1.7 %.

    5,263 rows, 89 churners; the stratified 80/20 split leaves 18 of them in the 1,053 holdout rows.
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlkeel.components.split.logic import split

    frame = pq.read_table(telco_parquet).to_pandas()
    positive = frame[TELCO_CHURN_TARGET] == TELCO_CHURN_POSITIVE_LABEL
    negatives = frame[~positive]
    wanted = round(len(negatives) * RARE_POSITIVE_SHARE / (1 - RARE_POSITIVE_SHARE))
    rare = pd.concat([negatives, frame[positive].sample(n=wanted, random_state=42)]).sort_index()
    folder = tmp_path_factory.mktemp("telco_rare")
    table_path, train, test = folder / "rare.parquet", folder / "train.parquet", folder / "test.parquet"
    pq.write_table(pa.Table.from_pandas(rare, preserve_index=False), table_path)
    split(str(table_path), str(train), str(test), TELCO_CHURN_TARGET, TELCO_CHURN_POSITIVE_LABEL)
    return train, test
