"""Datasets bundled with mlkeel (installed as ``mlkeel.data``)."""

from pathlib import Path

# IBM Telco customer churn: 7,043 rows x 21 columns; see telco_churn/README.md for provenance and licence.
TELCO_CHURN_CSV = Path(__file__).parent / "telco_churn" / "telco_churn.csv"
TELCO_CHURN_TARGET = "Churn"
TELCO_CHURN_POSITIVE_LABEL = "Yes"
TELCO_CHURN_KEY = "customerID"


def resolve_source(source_uri: str) -> str:
    """Return ``source_uri``, or the bundled Telco churn CSV when it is empty.

    Args:
        source_uri: A path or URI, or "" for the bundled default.

    Returns:
        A path or URI to read.
    """
    return source_uri.strip() or str(TELCO_CHURN_CSV)
