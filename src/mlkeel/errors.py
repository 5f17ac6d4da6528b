"""User-facing errors.

Every error a user can cause (bad file, bad column, bad parameter, unblessed model) is one of these, and its
message names what to fix: the file, the column, the row or the parameter. The CLI turns them into a one-line
message and a non-zero exit; a KFP step fails with the same message in its log.
"""


class MlkeelError(Exception):
    """Base class: an error whose message tells the user what to fix."""


class DataError(MlkeelError):
    """Input data cannot be read or cannot be used (missing file, empty, unparsable, one class...)."""


class SchemaMismatchError(MlkeelError):
    """A dataset does not have the columns a schema or a model expects."""


class ValidationFailedError(MlkeelError):
    """Too many rows failed validation (more than the allowed invalid fraction)."""


class ParameterError(MlkeelError):
    """A stage parameter is out of its allowed range or unknown."""


class NotBlessedError(MlkeelError):
    """A stage was asked to register or deploy a model that the gate did not bless."""


class RegistryError(MlkeelError):
    """The model registry is unreachable or does not hold what was asked for."""


class DeployError(MlkeelError):
    """A deployment failed (API refused, never Ready, canary unhealthy); the message says what was rolled back."""


class MissingExtraError(MlkeelError):
    """A stage needs a package of an optional extra (``pip install 'mlkeel[EXTRA]'``) that is not installed."""
