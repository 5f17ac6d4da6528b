"""The bundled datasets are the files their READMEs describe: a silent edit fails here."""

from __future__ import annotations

import hashlib

from mlkeel.data import TELCO_CHURN_CSV

TELCO_CHURN_SHA256 = "88be4b93fbe0cc83421af1c503794c97c342eca914c1576db7c276e61d61358a"


def test_telco_churn_is_the_evalml_0_84_0_file() -> None:
    assert hashlib.sha256(TELCO_CHURN_CSV.read_bytes()).hexdigest() == TELCO_CHURN_SHA256
    assert (TELCO_CHURN_CSV.parent / "LICENSE.evalml").is_file()
