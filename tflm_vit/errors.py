"""Error types. Each names the thing that is wrong (field, tensor, op, file)."""


class TflmVitError(Exception):
    """Base class of every error this package raises on bad input."""


class ConfigError(TflmVitError, ValueError):
    """A SubnetConfig or SearchSpace is invalid; the message names the field."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


class ModelFileError(TflmVitError, ValueError):
    """A file or byte string is not a usable TFLite flatbuffer."""


class UnsupportedOpError(TflmVitError, RuntimeError):
    """The model uses an op that the tflite-micro runtime cannot resolve."""

    def __init__(self, op_name: str, operator_indices=()):
        self.op_name = op_name
        self.operator_indices = tuple(operator_indices)
        where = f" (operators {list(self.operator_indices)})" if self.operator_indices else ""
        super().__init__(f"op {op_name}{where} is not resolvable by the tflite-micro runtime")


class ExportError(TflmVitError, RuntimeError):
    """An exported model breaks an export guarantee (batch 1, <= 4-D, int8 I/O, ...)."""


class DataError(TflmVitError, ValueError):
    """A dataset folder or array is unusable."""


class CustomOpError(TflmVitError, RuntimeError):
    """One of our TFLM ops refused its inputs or options (wrong type, rank, shape,
    truncated custom options); the message is the op's own, naming op and tensor."""


class ConversionError(TflmVitError, RuntimeError):
    """The converter cannot map an op, or a rewrite changed what the model computes."""


class PlanError(TflmVitError, ValueError):
    """A memory plan is invalid (two live buffers overlap unsafely, an offset is out of
    range or misaligned, the metadata is corrupted) or cannot be made (the arena budget is
    below what the model needs)."""


class BudgetError(TflmVitError, ValueError):
    """A search budget is unparseable, or nothing in the search space can meet it; the
    message names the budget and the smallest figure the space reaches."""
