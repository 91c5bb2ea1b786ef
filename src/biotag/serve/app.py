"""The FastAPI application behind ``biotag serve``.

:func:`create_app` builds one app per worker process. Its lifespan loads the model
once, and every request shares it. Inference is CPU-bound, so it never runs on the
event loop: an :class:`InferenceRunner` runs parsing, annotation and rendering in a
small thread pool (``concurrency`` threads) under a per-request deadline, and the loop
stays free to answer ``/health`` and to take in other requests meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

import biotag
from biotag.document import Document
from biotag.errors import InputError
from biotag.serve.auth import KeyChecker, api_key_dependency
from biotag.serve.errors import BodyLimitMiddleware, ServiceError, install_error_handlers
from biotag.serve.formats import MEDIA_TYPES, read_body, render
from biotag.serve.schemas import (
    BatchRequest,
    DocumentList,
    DocumentModel,
    ErrorModel,
    HealthModel,
    InputFormat,
    OutputFormat,
    ReadyModel,
    TextRequest,
)
from biotag.serve.settings import ServeSettings

STATIC_DIR = Path(__file__).parent / "static"
T = TypeVar("T")
# module level: FastAPI resolves the endpoints' (string) annotations in this namespace
OutputQuery = Annotated[OutputFormat, Query(description="response format")]


class DocumentAnnotator(Protocol):
    """What the service needs of a model: :class:`biotag.api.Annotator` qualifies."""

    def __call__(self, docs: list[Document]) -> list[Document]: ...


AnnotatorFactory = Callable[[ServeSettings], DocumentAnnotator]


def load_annotator(settings: ServeSettings) -> DocumentAnnotator:
    return biotag.load(settings.model, threads=settings.threads, backend=settings.backend, batch_size=settings.batch_size)


class InferenceRunner:
    """Runs CPU-bound jobs in ``concurrency`` threads; a request waits at most
    ``timeout`` seconds for its job, time in the queue included (then 504). A job that
    overruns keeps its thread until it ends (Python cannot stop a thread), so the pool
    size stays a true bound on concurrent inference."""

    def __init__(self, concurrency: int, timeout: float) -> None:
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="biotag-inference")

    async def run(self, job: Callable[[], T]) -> T:
        future = self._pool.submit(job)
        try:
            # wrap_future passes the cancellation on: a job still queued never starts
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)
        except TimeoutError:
            raise ServiceError(
                504,
                "timeout",
                f"annotation did not finish within the limit of {self.timeout:g} s; "
                "send less text per request or raise the server's --timeout",
            ) from None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def check_limits(docs: list[Document], settings: ServeSettings) -> None:
    """413 for a request with too many documents or too much text."""
    if len(docs) > settings.max_documents:
        raise ServiceError(
            413, "too_large", f"the request holds {len(docs)} documents; the limit is {settings.max_documents}", field="documents"
        )
    chars = sum(len(d.text) for d in docs)
    if chars > settings.max_chars:
        raise ServiceError(
            413,
            "too_large",
            f"the request holds {chars} characters of text; the limit is {settings.max_chars} (--max-chars)",
            field="text",
        )


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorModel, "description": text}
    for code, text in {
        400: "the body cannot be parsed in the given format",
        401: "API key missing or not valid (only when keys are configured)",
        413: "body, text or number of documents over the limit",
        422: "a document or field is not valid, or the result cannot be written in the output format",
        503: "the model is not loaded",
        504: "annotation did not finish in time",
    }.items()
}


def _formatted_responses(json_model: type) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses: ``json_model`` for ?output=json, text for the other formats."""
    others = {MEDIA_TYPES[f].split(";")[0]: {"schema": {"type": "string"}} for f in OutputFormat if f is not OutputFormat.json}
    return {200: {"model": json_model, "content": others}, **_ERRORS}


def create_app(settings: ServeSettings | None = None, *, annotator_factory: AnnotatorFactory = load_annotator) -> FastAPI:
    """The service app. ``annotator_factory(settings)`` is called once, at startup, to
    load the model (tests inject a fake here)."""
    settings = settings or ServeSettings()
    key_checker = KeyChecker(settings.resolve_api_keys())
    auth = [Depends(api_key_dependency(key_checker))] if key_checker else []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.annotator = annotator_factory(settings)
        app.state.runner = InferenceRunner(settings.concurrency, settings.timeout)
        try:
            yield
        finally:
            app.state.annotator = None
            app.state.runner.close()

    app = FastAPI(
        title="biotag",
        version=biotag.__version__,
        description="Biomedical named-entity recognition and linking. Offsets are 0-based character "
        "offsets into the document text, end exclusive.",
        lifespan=lifespan,
        # Swagger UI and ReDoc load their scripts from a CDN, which offline and locked-down
        # sites cannot reach; the schema itself stays at /openapi.json
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(BodyLimitMiddleware, limit=settings.body_limit)
    app.state.settings = settings
    app.state.annotator = None
    install_error_handlers(app)

    async def respond(load_docs: Callable[[], list[Document]], output: OutputFormat, *, single: bool) -> Response:
        annotator = app.state.annotator
        if annotator is None:
            raise ServiceError(503, "not_ready", "the model is not loaded (the service is starting or stopping)")

        def job() -> bytes:
            docs = load_docs()
            check_limits(docs, settings)
            annotated = annotator(docs)
            try:
                return render(annotated, output, single=single)
            except InputError as error:  # the request was fine; the format cannot hold the result
                raise ServiceError(
                    422, "unwritable_output", f"the result cannot be written as {output.value}: {error}",
                    document=error.document, field=error.field,
                ) from None

        content = await app.state.runner.run(job)
        return Response(content, media_type=MEDIA_TYPES[output])

    @app.post("/annotate", response_model=DocumentModel, responses=_formatted_responses(DocumentModel), dependencies=auth, tags=["annotate"])
    async def annotate(request: TextRequest, output: OutputQuery = OutputFormat.json) -> Response:
        """Annotate one text; returns one document."""
        document = Document(id=request.id, text=request.text)
        return await respond(lambda: [document], output, single=True)

    @app.post("/annotate/batch", response_model=DocumentList, responses=_formatted_responses(DocumentList), dependencies=auth, tags=["annotate"])
    async def annotate_batch(request: BatchRequest, output: OutputQuery = OutputFormat.json) -> Response:
        """Annotate a list of texts or of documents (annotations they hold are kept)."""
        if request.texts is not None:
            texts = request.texts
            return await respond(lambda: [Document(id=str(i), text=t) for i, t in enumerate(texts, 1)], output, single=False)
        raw = [d.model_dump(exclude_unset=True) for d in request.documents or ()]
        return await respond(lambda: [Document.from_dict(d) for d in raw], output, single=False)

    @app.post(
        "/annotate/file",
        response_model=DocumentList,
        responses=_formatted_responses(DocumentList),
        dependencies=auth,
        tags=["annotate"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "the documents, raw, in the format given by ?format=",
                "content": {t: {"schema": {"type": "string"}} for t in ("text/plain", "application/xml", "application/json", "application/octet-stream")},
            }
        },
    )
    async def annotate_file(
        request: Request,
        input_format: Annotated[InputFormat, Query(alias="format", description="format of the request body")],
        output: OutputQuery = OutputFormat.json,
        doc_id: Annotated[
            str, Query(alias="id", min_length=1, max_length=256, description="document id for formats without ids (text, conll)")
        ] = "document",
    ) -> Response:
        """Annotate the documents of a raw body in any supported input format."""
        body = await request.body()
        return await respond(lambda: read_body(body, input_format, doc_id), output, single=False)

    @app.get("/health", response_model=HealthModel, tags=["service"])
    async def health() -> HealthModel:
        """Liveness: the process answers."""
        return HealthModel(status="ok")

    @app.get("/ready", response_model=ReadyModel, responses={503: _ERRORS[503]}, tags=["service"])
    async def ready() -> ReadyModel:
        """Readiness: the model is loaded and requests can be annotated."""
        annotator = app.state.annotator
        if annotator is None:
            raise ServiceError(503, "not_ready", "the model is not loaded (the service is starting or stopping)")
        return ReadyModel(
            status="ready",
            model=str(settings.model) if settings.model else None,
            types=list(getattr(annotator, "types", ())),
            auth=bool(key_checker),
        )

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
