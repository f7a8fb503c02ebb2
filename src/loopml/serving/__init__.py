"""Serving: the models holding the aliases, input validation, the prediction log.

The workflow layer under ``loopml serve`` (the FastAPI server in :mod:`loopml.server`) and
``loopml predict``: no web framework here. See docs/serving.md.

- :func:`load_predictor` -> :class:`Predictor` (champion, optional canary and shadow);
  :meth:`Predictor.predict_columns` validates and predicts a request's rows;
- :func:`input_schema`, :func:`validate_records`, :func:`validate_columns`: the input schema
  of a model version from its training dataset version and the per-row, per-field checks;
- :func:`predict_file`: batch prediction of a file through the same validation and loading;
- :class:`PredictionLog` (append-only Parquet segments, bounded queue, one writer thread)
  and its readers :func:`read_log`, :func:`read_feedback`, :func:`read_joined`,
  :func:`log_views` (DuckDB views).
"""

from __future__ import annotations

from loopml.serving._log import (
    FLUSH_ROWS,
    FLUSH_SECONDS,
    MAX_QUEUE_ROWS,
    LogBatch,
    LogStats,
    PredictionLog,
    index_segments,
    log_dir,
    log_views,
    read_feedback,
    read_joined,
    read_log,
    remove_stale_temporaries,
    segment_files,
)
from loopml.serving._predict import (
    DEFAULT_CANARY_SHARE,
    InvalidInput,
    LoadedModel,
    Outputs,
    PredictFileResult,
    Predictor,
    Served,
    alias_key,
    canary_bucket,
    input_column,
    load_model_version,
    load_predictor,
    predict_file,
)
from loopml.serving._schema import (
    FieldSchema,
    InputSchema,
    Problem,
    Validation,
    input_schema,
    label_schema,
    validate_columns,
    validate_feedback,
    validate_records,
)

__all__ = [
    "DEFAULT_CANARY_SHARE",
    "FLUSH_ROWS",
    "FLUSH_SECONDS",
    "MAX_QUEUE_ROWS",
    "FieldSchema",
    "InputSchema",
    "InvalidInput",
    "LoadedModel",
    "LogBatch",
    "LogStats",
    "Outputs",
    "PredictFileResult",
    "PredictionLog",
    "Predictor",
    "Problem",
    "Served",
    "Validation",
    "alias_key",
    "canary_bucket",
    "index_segments",
    "input_column",
    "input_schema",
    "label_schema",
    "load_model_version",
    "load_predictor",
    "log_dir",
    "log_views",
    "predict_file",
    "read_feedback",
    "read_joined",
    "read_log",
    "remove_stale_temporaries",
    "segment_files",
    "validate_columns",
    "validate_feedback",
    "validate_records",
]
