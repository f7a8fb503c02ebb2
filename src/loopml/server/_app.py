"""The FastAPI application: routes, errors, auth, the body limit, alias watching.

Routes (docs/serving.md): ``POST /predict``, ``POST /feedback``, ``GET /health``,
``GET /ready``, ``GET /version``, ``GET /metrics``, ``POST /admin/reload``; OpenAPI at
``/openapi.json`` and ``/docs``.

Errors: a body that is not JSON or not of one of the documented shapes is 400; rows that do
not match the model's input schema are 422 with every problem (row, field, kind, message);
a body over the limit is 413; a missing token 401, a wrong one 403; no champion loaded 503.
Nothing a client sends gives a 500 (schemathesis checks it).
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from fastapi import FastAPI, Request, Response

from loopml.errors import LoopmlError
from loopml.server._settings import ServeSettings

if TYPE_CHECKING:
    from loopml.server._metrics import Metrics
    from loopml.serving import FieldSchema, PredictionLog, Predictor

__all__ = ["ServeSettings", "ServerState", "create_app"]

_log = logging.getLogger("loopml.server")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _BadRequest(Exception):
    def __init__(self, message: str, hint: str, where: str | None = None) -> None:
        super().__init__(message)
        self.message, self.hint, self.where = message, hint, where


class ServerState:
    """The predictor (swapped atomically on an alias move), the log and the metrics."""

    def __init__(self, project_dir: Path, settings: ServeSettings) -> None:
        from loopml.project import open_project
        from loopml.server._metrics import Metrics
        from loopml.serving import label_schema, load_predictor

        self.settings = settings
        self.project = open_project(project_dir)
        self.dir = self.project.dir
        self.metrics: Metrics = Metrics()
        self._reload_lock = threading.Lock()
        self.predictor: Predictor | None = load_predictor(
            self.project, canary_share=settings.canary_share, shadow=settings.shadow
        )
        self.label: FieldSchema | None = label_schema(self.project, self.predictor.champion.version)
        self.load_error: str | None = None
        self.log: PredictionLog | None = None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.api_token = os.environ.get("LOOPML_API_TOKEN") or None
        self.admin_token = os.environ.get("LOOPML_ADMIN_TOKEN") or None
        if settings.require_token and not self.api_token:
            from loopml.errors import ConfigurationError

            raise ConfigurationError(
                "predict and feedback are to require a token, but LOOPML_API_TOKEN is empty",
                hint="export LOOPML_API_TOKEN=... before loopml serve --require-token",
                where="LOOPML_API_TOKEN",
            )

    def start(self) -> None:
        from loopml.serving import PredictionLog

        if self.settings.log:
            m = self.metrics
            self.log = PredictionLog(
                self.dir,
                flush_rows=self.settings.flush_rows,
                flush_seconds=self.settings.flush_seconds,
                max_queue_rows=self.settings.queue_rows,
                on_written=lambda table, n: m.log_rows.labels(table).inc(n),
                on_shadow_error=lambda n: m.shadow_errors.inc(n),
            )
            log = self.log
            m.watch_queue(lambda: float(log.queue_rows))
        if self.settings.watch_seconds > 0:
            self._watcher = threading.Thread(
                target=self._watch, name="loopml-alias-watcher", daemon=True
            )
            self._watcher.start()

    def close(self) -> None:
        """Stop watching and flush the log: every acknowledged row is written."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(10)
        if self.log is not None:
            self.log.close()
        self.project.close()

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.watch_seconds):
            try:
                self.reload(force=False)
            except Exception as exc:  # keep serving the models already loaded
                _log.warning("alias watcher: %s", exc)

    def reload(self, *, force: bool) -> dict[str, Any]:
        """Load the alias holders again when they moved (or always, with ``force``) and
        swap the predictor; a failed load keeps the old one (counted, reported)."""
        from loopml.serving import alias_key, label_schema, load_predictor

        with self._reload_lock:
            current = self.predictor
            key = alias_key(self.project)
            if not force and current is not None and key == current.key:
                return {"reloaded": False, "models": current.describe()}
            try:
                new = load_predictor(
                    self.project,
                    canary_share=self.settings.canary_share,
                    shadow=self.settings.shadow,
                )
            except LoopmlError as exc:
                self.metrics.reload_errors.inc()
                self.load_error = exc.message
                raise
            self.predictor = new  # one reference assignment: requests in flight keep theirs
            self.label = label_schema(self.project, new.champion.version)
            self.load_error = None
            self.metrics.reloads.inc()
            _log.info("serving %s", ", ".join(f"{a}={m.ref}" for a, m in new.models.items()))
            return {"reloaded": True, "models": new.describe()}


# --------------------------------------------------------------------------- helpers


def _json(data: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(data, separators=(",", ":"), allow_nan=False, default=_default).encode(),
        status_code=status,
        media_type="application/json",
    )


def _default(value: Any) -> Any:
    from loopml.data._util import jsonable

    return jsonable(value)


def _error(status: int, error: str, message: str, hint: str = "", **extra: Any) -> Response:
    return _json({"error": error, "message": message, "hint": hint, **extra}, status)


def _parse(body: bytes) -> Any:
    if not body:
        raise _BadRequest("the request body is empty", "send a JSON object")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _BadRequest(
            f"the request body is not valid JSON: {exc}",
            'send a JSON object, e.g. {"records": [{"a": 1.0}]}',
        ) from None


def predict_columns_of(data: Any, fields: list[str], max_rows: int) -> tuple[dict[str, Any], int]:
    """The body of POST /predict as columns: one record, ``{"records": [...]}``, a list of
    records, or ``{"columns": {name: [values]}}``."""
    from loopml.serving._schema import MISSING

    if isinstance(data, dict) and "columns" in data and len(data) == 1:
        cols = data["columns"]
        if not isinstance(cols, dict) or not all(isinstance(v, list) for v in cols.values()):
            raise _BadRequest(
                '"columns" must be an object of lists (one list of values per column)',
                'send {"columns": {"a": [1.0, 2.0], "b": [3, 4]}}',
                "columns",
            )
        n = max((len(v) for v in cols.values()), default=0)
        records_n = n
        if records_n > max_rows:
            raise _BadRequest(
                f"{records_n} rows in one request; at most {max_rows} are served at once",
                "split the rows into several requests",
                "columns",
            )
        return cols, n
    if isinstance(data, dict) and "records" in data and len(data) == 1:
        records = data["records"]
        where = "records"
    elif isinstance(data, list):
        records, where = data, "body"
    elif isinstance(data, dict):
        records, where = [data], "body"
    else:
        raise _BadRequest(
            f"the body is a JSON {type(data).__name__}; expected an object",
            'send one record {"a": 1.0}, {"records": [...]} or {"columns": {...}}',
        )
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise _BadRequest(
            f'"{where}" must be a list of objects (one per row)',
            'send {"records": [{"a": 1.0}, {"a": 2.0}]}',
            where,
        )
    if len(records) > max_rows:
        raise _BadRequest(
            f"{len(records)} rows in one request; at most {max_rows} are served at once",
            "split the rows into several requests",
            where,
        )
    cols = {f: [r.get(f, MISSING) for r in records] for f in fields}
    return cols, len(records)


def _feedback_items(data: Any) -> list[Any]:
    if isinstance(data, dict) and "feedback" in data and len(data) == 1:
        items = data["feedback"]
    elif isinstance(data, list):
        items = data
    elif isinstance(data, dict):
        items = [data]
    else:
        items = None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise _BadRequest(
            "feedback must be an object or a list of objects",
            'send {"request_id": "...", "label": 1} or {"feedback": [...]}',
            "feedback",
        )
    return items


# --------------------------------------------------------------------------- the app


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413 (by Content-Length, or counted
    while the body streams in)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    await self._refuse(send)
                    return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {
                "error": "too_large",
                "message": f"the request body is over the limit of {self.limit} bytes",
                "hint": "send fewer rows per request",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def create_app(
    project: str | Path,
    settings: ServeSettings | None = None,
) -> FastAPI:
    """The FastAPI app serving the project's alias holders (loads them now: a project
    without a champion is a clear error, not a server that answers 503 forever)."""
    from loopml._lineage import loopml_version
    from loopml.serving import InvalidInput, LogBatch

    settings = settings or ServeSettings()
    state = ServerState(Path(project), settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.start()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(state.close)

    app = FastAPI(
        title="loopml",
        version=loopml_version(),
        description="Predictions from the models holding the project's aliases, logged.",
        lifespan=lifespan,
    )
    app.state.loopml = state
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    metrics = state.metrics

    def authorized(request: Request, token: str | None) -> Response | None:
        header = request.headers.get("authorization", "")
        if not header:
            return _error(
                401, "unauthorized", "this route needs a token", "send Authorization: Bearer TOKEN"
            )
        given = header.removeprefix("Bearer ").strip()
        if token is None or not hmac.compare_digest(given.encode(), token.encode()):
            return _error(403, "forbidden", "the token is not valid", "check the token")
        return None

    def fail(route: str, response: Response) -> Response:
        metrics.errors.labels(route, str(response.status_code)).inc()
        return response

    # ------------------------------------------------------------------ predict
    @app.post(
        "/predict",
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/json": {"schema": {}}}}
        },
        responses={
            400: {"description": "malformed body"},
            413: {"description": "body too large"},
            422: {"description": "input does not match the model's schema"},
            503: {"description": "no model loaded"},
        },
    )
    async def predict(request: Request) -> Response:
        """Predict one record, `{"records": [...]}` or `{"columns": {...}}`."""
        t0 = time.perf_counter()
        route = "/predict"
        if settings.require_token and (denied := authorized(request, state.api_token)):
            return fail(route, denied)
        predictor = state.predictor
        if predictor is None:
            return fail(route, _error(503, "not_ready", "no model is loaded", "promote a champion"))
        try:
            data = _parse(await request.body())
            fields = [*predictor.input_fields, *predictor.context_fields]
            columns, n = predict_columns_of(data, fields, settings.max_rows)
            if n == 0:
                raise _BadRequest(
                    "the request holds no rows", "send at least one record", "records"
                )
            if n > 256:
                served = await anyio.to_thread.run_sync(predictor.predict_columns, columns, n)
            else:
                served = predictor.predict_columns(columns, n)
        except _BadRequest as exc:
            return fail(route, _error(400, "bad_request", exc.message, exc.hint, where=exc.where))
        except InvalidInput as exc:
            return fail(
                route,
                _error(
                    422,
                    "invalid_input",
                    exc.message,
                    exc.hint or "",
                    where=exc.where,
                    problems=[p.to_dict() for p in exc.problems[:100]],
                    n_problems=len(exc.problems),
                ),
            )
        if state.log is not None:
            batch = LogBatch("predictions", served.log_columns, n, served.shadow)
            if not state.log.try_put(batch):  # full: wait for the writer off the event loop
                await anyio.to_thread.run_sync(state.log.put, batch)
        by_model: dict[tuple[str, str], int] = {}
        for ref, variant in zip(served.model, served.variant, strict=True):
            by_model[(ref, variant)] = by_model.get((ref, variant), 0) + 1
        for (ref, variant), count in by_model.items():
            name, _, version = ref.rpartition("@")
            metrics.count_predictions(name, version, variant, count)
        body: dict[str, Any] = {"predictions": served.outputs}
        if served.unseen:
            for p in served.unseen:
                metrics.unseen.labels(p.field).inc()
            body["unseen_categories"] = [p.to_dict() for p in served.unseen[:100]]
        response = _json(body)
        metrics.latency.labels(route).observe(time.perf_counter() - t0)
        return response

    # ------------------------------------------------------------------ feedback
    @app.post(
        "/feedback",
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/json": {"schema": {}}}}
        },
        responses={
            400: {"description": "malformed body"},
            422: {"description": "bad feedback"},
            503: {"description": "the log is off"},
        },
    )
    async def feedback(request: Request) -> Response:
        """Labels (and an optional KPI value) for request ids served earlier."""
        from loopml.serving import validate_feedback

        t0 = time.perf_counter()
        route = "/feedback"
        if settings.require_token and (denied := authorized(request, state.api_token)):
            return fail(route, denied)
        if state.log is None:
            return fail(
                route,
                _error(
                    503,
                    "log_off",
                    "the prediction log is off, so feedback has nowhere to go",
                    "start the server without --no-log",
                ),
            )
        try:
            items = _feedback_items(_parse(await request.body()))
            if not items:
                raise _BadRequest(
                    "the request holds no feedback", "send at least one item", "feedback"
                )
            if len(items) > settings.max_rows:
                raise _BadRequest(
                    f"{len(items)} items; at most {settings.max_rows} at once",
                    "split them",
                    "feedback",
                )
        except _BadRequest as exc:
            return fail(route, _error(400, "bad_request", exc.message, exc.hint, where=exc.where))
        columns, problems = validate_feedback(items, state.label)
        if problems:
            first = problems[0]
            return fail(
                route,
                _error(
                    422,
                    "invalid_feedback",
                    f"{len(problems)} problem(s) with the feedback: row {first.row} "
                    f"{first.field!r} {first.message}",
                    "send request_id (as /predict returned it) and a label and/or kpi",
                    where=f"field {first.field}",
                    problems=[p.to_dict() for p in problems[:100]],
                    n_problems=len(problems),
                ),
            )
        n = len(items)
        columns["ts"] = [time.time()] * n
        batch = LogBatch("feedback", columns, n)
        if not state.log.try_put(batch):
            await anyio.to_thread.run_sync(state.log.put, batch)
        metrics.feedback.inc(n)
        metrics.latency.labels(route).observe(time.perf_counter() - t0)
        return _json({"accepted": n})

    # ------------------------------------------------------------------ status
    @app.get("/health")
    async def health() -> Response:
        """The process is up."""
        return _json({"status": "ok"})

    @app.get("/ready", responses={503: {"description": "no model loaded"}})
    async def ready() -> Response:
        """The champion (and canary, shadow) are loaded."""
        predictor = state.predictor
        if predictor is None:
            return _error(
                503, "not_ready", state.load_error or "no model is loaded", "promote a champion"
            )
        return _json({"ready": True, "models": {a: m.ref for a, m in predictor.models.items()}})

    @app.get("/version")
    async def version() -> Response:
        """loopml's version, the served models and their input schemas."""
        predictor = state.predictor
        return _json(
            {
                "loopml": loopml_version(),
                "models": predictor.describe() if predictor else {},
                "log": settings.log,
                "pid": os.getpid(),
            }
        )

    @app.get("/metrics")
    async def prometheus() -> Response:
        """Prometheus metrics (text format)."""
        data, content_type = metrics.render()
        return Response(data, media_type=content_type)

    @app.post(
        "/admin/reload",
        responses={
            401: {"description": "no token"},
            403: {"description": "wrong token or admin disabled"},
            409: {"description": "the new models could not be loaded"},
        },
    )
    async def admin_reload(request: Request) -> Response:
        """Load the alias holders again now (needs LOOPML_ADMIN_TOKEN)."""
        route = "/admin/reload"
        if state.admin_token is None:
            return fail(
                route,
                _error(
                    403,
                    "admin_disabled",
                    "admin routes are disabled",
                    "set LOOPML_ADMIN_TOKEN when starting the server",
                ),
            )
        if denied := authorized(request, state.admin_token):
            return fail(route, denied)
        try:
            result = await anyio.to_thread.run_sync(lambda: state.reload(force=True))
        except LoopmlError as exc:
            return fail(
                route, _error(409, "reload_failed", exc.message, exc.hint or "", where=exc.where)
            )
        return _json(result)

    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        schema = default_openapi()
        predictor = state.predictor
        if predictor is not None:
            _document(schema, predictor, state.label, settings.max_rows)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        _log.exception("unexpected error on %s", request.url.path)
        metrics.errors.labels(request.url.path, "500").inc()
        return _error(
            500,
            "internal",
            f"{type(exc).__name__}: {exc}",
            "this is a bug in loopml; please report it",
        )

    return app


def _document(
    schema: dict[str, Any], predictor: Predictor, label: FieldSchema | None, max_rows: int
) -> None:
    """Put the request schemas of /predict and /feedback into the OpenAPI document."""
    record = predictor.champion.schema.json_schema()
    body = {
        "oneOf": [
            {
                "type": "object",
                "properties": {
                    "records": {
                        "type": "array",
                        "items": record,
                        "minItems": 1,
                        "maxItems": max_rows,
                    }
                },
                "required": ["records"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": {
                    "columns": {
                        "type": "object",
                        "properties": {
                            k: {"type": "array", "items": v, "minItems": 1, "maxItems": 1}
                            for k, v in record["properties"].items()
                        },
                        "required": record["required"],
                    }
                },
                "required": ["columns"],
                "additionalProperties": False,
            },
        ]
    }
    label_json = label.json_schema() if label is not None else {}
    item = {
        "type": "object",
        "properties": {
            "request_id": {"type": "string", "minLength": 1, "maxLength": 200},
            "label": label_json,
            "kpi": {"type": "number"},
        },
        "required": ["request_id", "label"],
    }
    fb = {
        "oneOf": [
            item,
            {
                "type": "object",
                "properties": {
                    "feedback": {
                        "type": "array",
                        "items": item,
                        "minItems": 1,
                        "maxItems": max_rows,
                    }
                },
                "required": ["feedback"],
                "additionalProperties": False,
            },
        ]
    }
    paths = schema.get("paths", {})
    for path, body_schema in (("/predict", body), ("/feedback", fb)):
        op = paths.get(path, {}).get("post")
        if op is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": body_schema}},
            }
