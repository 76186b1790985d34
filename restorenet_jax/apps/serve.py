"""Web service: upload a photo, get it restored.

    python -m restorenet_jax.serve --checkpoint runs/demo [--host 127.0.0.1] [--port 8000]

Endpoints: `GET /` (a page: upload, then compare original and restored at full resolution with a slider, and
download), `POST /api/restore` (multipart field `image`; answers the restored PNG), `GET /healthz`, and FastAPI's
`/docs` and `/redoc` (OpenAPI; their scripts and styles are served by the service itself, so they work offline).

Limits (command-line flags in brackets); every refusal is a one-line JSON error `{"error": "..."}`:
  * upload size: more than 20 MiB [--max-upload-mb] -> 413, refused from Content-Length before reading when given,
    otherwise as soon as the streamed body passes the limit;
  * image size: more than 4096x4096 pixels [--max-pixels] -> 413, read from the image header before anything is
    decoded, for every format (a tiny file declaring a huge image is refused); data that is not an image -> 415;
  * header time: a request's line and headers must arrive within 10 s of its connection opening (or of the previous
    answer on a kept-alive connection) [--header-timeout]; a late client is disconnected (one log line);
  * body time: the whole upload must arrive within 30 s of its headers [--body-timeout]; a slower or stalled client
    gets 408 and its connection is closed;
  * uploads per client: at most 8 uploads from one client address at once, counting those being read, waiting and
    running [--max-connections, per client]; more get 429 at once and their connection is closed. An upload whose
    body is still arriving costs a socket and its small buffer, never a place in the queue: clients that stall
    mid-upload cannot turn others away (they are dropped at the body timeout);
  * queue: at most 4 uploads admitted for restoration, one running and the rest waiting [--queue-size]; more get 503
    (only complete uploads count here);
  * every 503 and 429 carries `Retry-After: 5` [--retry-after];
  * a request without a file field `image` -> 400.
A client that disconnects mid-upload is logged in one line. One model instance runs in a single worker thread, so
the event loop keeps answering (health checks, 503s) while a restoration runs. Uploads are held in memory only, and
nothing is written to disk unless `--keep-dir` is set (then input and output are saved under server-made names; the
uploaded file name is never used); the directory is checked at start-up (exit status 2 if it cannot be written),
and a save that fails later is logged while the restored image is still returned.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from restorenet_jax.apps.restore import make_image_fn, restore_picture
from restorenet_jax.configs.cli import HelpFormatter
from restorenet_jax.inference import media_io
from restorenet_jax.inference.precision import add_precision_argument

try:  # the `serve` extra: without it --help still answers, and main() exits 2 naming the install command
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, Response

    from restorenet_jax.apps import serve_limits as limits
    from restorenet_jax.apps import serve_headers, serve_memory
    from restorenet_jax.apps.serve_docs import offline_docs_app
    MISSING_EXTRA = None
except ModuleNotFoundError as _missing:
    MISSING_EXTRA = _missing.name
    limits = None
INSTALL_HINT = "pip install 'restorenet-jax[serve]'"

STATIC_DIR = Path(__file__).parent / "static"
# One list for the page and the 415 message.
ACCEPTED_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "WebP", "GIF")
_NOT_AN_IMAGE = f"the upload is not an image this service can read ({', '.join(ACCEPTED_FORMATS)})"


@dataclass
class ServeSettings:
    """Service limits and inference options (see the module docstring for what each limit answers).

    Attributes:
      max_upload_bytes: largest accepted image file.
      max_pixels: largest accepted width × height, checked from the image header before decoding.
      queue_size: requests admitted for restoration at once (one running, the rest waiting); more get 503.
      max_connections: upload requests open at once from one client address (being read, waiting or running);
        more get 429. Stalled uploads do not count against `queue_size`.
      body_timeout: seconds within which a request body must arrive in full; slower ones get 408.
      retry_after: seconds put in the `Retry-After` header of every 503.
      keep_dir: if set, inputs and outputs are saved here (server-made names); None stores nothing.
      tile: tile size for tiled inference (0: whole image), overlap: tile overlap (see restorenet_jax.tiling).
      workers: restorations that may run at once. Two, so that a request whose size bucket still has to compile
        does not hold up requests whose program is ready (the predictor compiles outside its locks).
    """

    max_upload_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 4096 * 4096
    queue_size: int = 4
    max_connections: int = 8
    body_timeout: float = 30.0
    retry_after: int = 5
    keep_dir: Optional[Path] = None
    tile: int = 0
    overlap: int = 32
    workers: int = 2


def _precision_record(restorer) -> dict:
    """{precision, precision_reason} of the model (float32 for a bare Restorer made without load_engine)."""
    chosen = getattr(restorer, "precision", None)
    if chosen is None:
        return {"precision": "bf16" if "bfloat16" in str(getattr(restorer, "dtype", "")) else "fp32",
                "precision_reason": "asked"}
    return chosen.record()


def create_app(restorer, settings: ServeSettings | None = None) -> FastAPI:
    """Builds the FastAPI app around one loaded `Restorer` (or any object with its call signature).

    Args:
      restorer: the model; called from `settings.workers` threads (a `Predictor` is thread-safe).
      settings: limits and options; defaults if None. `keep_dir` is not checked here (`main` does it at start-up).
    """
    settings = settings or ServeSettings()
    image_fn = make_image_fn(restorer, settings.tile, settings.overlap)
    executor = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="restore")
    uploads, queue = limits.PerClient(settings.max_connections), limits.Slots(settings.queue_size)
    served = {"count": 0}
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8").replace("__ACCEPTED_FORMATS__",
                                                                            ", ".join(ACCEPTED_FORMATS))

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        executor.shutdown(wait=True, cancel_futures=True)

    app = offline_docs_app(title="RestoreNet", summary="Joint deblurring and denoising of dark CCTV images",
                           lifespan=lifespan)

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/healthz", summary="Liveness and queue state")
    def healthz() -> dict:
        return {"status": "ok", "model": getattr(getattr(restorer, "arch", None), "kind", "unknown"),
                "queue": queue.used, "queue_size": settings.queue_size, "uploads": uploads.used,
                "max_connections": settings.max_connections, "served": served["count"],
                "engine": getattr(restorer, "engine", "jax"), "rss_mb": serve_memory.rss_mb(),
                **_precision_record(restorer)}

    def work(data: bytes) -> tuple[bytes, float]:
        start = time.perf_counter()
        pic = media_io.decode_image(data)
        out = media_io.encode_image(restore_picture(image_fn, pic), fmt="PNG")
        if settings.keep_dir is not None:
            limits.keep(settings.keep_dir, data, out)
        del pic
        serve_memory.release_free_memory()  # the decoded and restored buffers are gone: hand their pages back
        return out, time.perf_counter() - start

    body_doc = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["image"],
        "properties": {"image": {"type": "string", "format": "binary", "description": "the image to restore"}}}}}},
        "responses": {"200": {"description": "the restored image", "content": {"image/png": {}}},
                      "400": {"description": "no file field `image`"},
                      "408": {"description": "the upload did not arrive in time"},
                      "413": {"description": "file or image too large"},
                      "415": {"description": "not a decodable image"},
                      "429": {"description": "too many uploads from this client; retry after `Retry-After`"},
                      "503": {"description": "queue full; retry after `Retry-After` seconds"}}}

    async def restore_upload(request: Request) -> Response:
        try:
            data, name = await limits.read_upload(request, settings.max_upload_bytes, settings.body_timeout)
        except limits.RequestFailed as e:
            return e.response()
        except limits.ClientGone:
            return Response(status_code=400)  # never delivered: the connection is gone
        try:
            media_io.check_image_size(data, settings.max_pixels)  # header only: bombs never reach the decoder
        except media_io.ImageTooLarge as e:
            return limits.error(413, str(e))
        except media_io.UnreadableImage:
            return limits.error(415, _NOT_AN_IMAGE)
        if not queue.take():
            return limits.error(503, "the service is busy, try again shortly", retry_after=settings.retry_after)
        try:
            out, seconds = await asyncio.get_running_loop().run_in_executor(executor, work, data)
        except media_io.ImageTooLarge as e:  # only reachable when max_pixels is above Pillow's own bound
            return limits.error(413, str(e))
        except media_io.UnreadableImage as e:
            return limits.error(415, str(e))
        finally:
            queue.release()
        served["count"] += 1
        stem = limits.download_stem(name)
        return Response(out, media_type="image/png", headers={
            "Content-Disposition": f'attachment; filename="{stem}.png"', "X-Restore-Seconds": f"{seconds:.3f}"})

    @app.post("/api/restore", summary="Restore one image; answers a PNG", openapi_extra=body_doc)
    async def restore_endpoint(request: Request) -> Response:
        # Counted per client from the headers on; the queue (the work limit) is taken only once the body is in.
        client = request.client.host if request.client else ""
        if not uploads.take(client):
            return limits.error(429, "too many uploads from this client at once, try again shortly",
                                retry_after=settings.retry_after, close=True)
        try:
            return await restore_upload(request)
        finally:
            uploads.release(client)

    return app


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface; `--help` lists the limits (the module docstring's)."""
    intro, _, rest = __doc__.partition("\n\n")
    limits_text = rest[rest.index("Limits"):]
    p = argparse.ArgumentParser(prog="python -m restorenet_jax.serve", description=intro, epilog=limits_text,
                                formatter_class=HelpFormatter)
    p.add_argument("--checkpoint", required=True, help="converted model directory or training workdir")
    p.add_argument("--best", action="store_true", help="from a training workdir, use the best checkpoint by "
                   "validation PSNR instead of the latest")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 exposes it to the network)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest accepted upload in MiB (default 20)")
    p.add_argument("--max-pixels", type=int, default=4096 * 4096,
                   help="largest accepted width × height (default 4096*4096)")
    p.add_argument("--queue-size", type=int, default=4, help="requests admitted at once; more get 503 (default 4)")
    p.add_argument("--max-connections", type=int, default=8,
                   help="upload requests open at once per client address (reading, waiting, running); more get "
                   "429 (default 8)")
    p.add_argument("--body-timeout", type=float, default=30.0,
                   help="seconds for a whole upload to arrive; slower ones get 408 (default 30)")
    p.add_argument("--header-timeout", type=float, default=10.0,
                   help="seconds for a request's headers to arrive; late clients are disconnected (default 10)")
    p.add_argument("--retry-after", type=int, default=5, help="Retry-After seconds on every 503 (default 5)")
    p.add_argument("--keep-dir", type=Path, default=None, help="save inputs and outputs here (default: nothing); "
                   "checked at start-up")
    p.add_argument("--tile", type=int, default=0, help="tile size for large images (0: whole image)")
    p.add_argument("--overlap", type=int, default=32, help="pixels shared by neighbouring tiles")
    p.add_argument("--max-programs", type=int, default=8, help="compiled programs kept (least recently used "
                   "dropped); image sizes are padded exactly to a fixed ladder of buckets (README), so any sequence "
                   "of sizes compiles a bounded number of programs (default 8)")
    p.add_argument("--warmup", default="", help="sizes compiled at start-up, e.g. 720x1280,1080x1920 (HxW; "
                   "default none)")
    p.add_argument("--openvino-shapes", default="dynamic", choices=("dynamic", "static"),
                   help="OpenVINO engine: one dynamic-shape program for every size, memory flat whatever sizes "
                   "arrive (--warmup sizes still get fast static programs), or a program compiled per size (~1 s "
                   "each, --max-programs kept) (default: dynamic)")
    add_precision_argument(p)
    p.add_argument("--engine", default="auto", choices=("auto", "jax", "onnxruntime", "openvino"),
                   help="what runs the model (same outputs): auto = JAX on an accelerator, else OpenVINO, else ONNX "
                   "Runtime when installed, else JAX (default: auto)")
    p.add_argument("--tlc", action=argparse.BooleanOptionalAction, default=None,
                   help="test-time local converter (default: the checkpoint's setting)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Loads the model and serves until interrupted; exit status 2 when the checkpoint or `--keep-dir` is unusable."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if MISSING_EXTRA:
        print(f"error: the web service needs {MISSING_EXTRA}, which is not installed: {INSTALL_HINT}",
              file=sys.stderr)
        return 2
    if min(args.queue_size, args.max_pixels, args.max_connections, args.retry_after) < 1 or args.max_upload_mb <= 0 \
            or args.body_timeout <= 0 or args.header_timeout <= 0:
        parser.error("--queue-size, --max-pixels, --max-connections, --retry-after, --max-upload-mb, "
                     "--body-timeout and --header-timeout must be positive")
    if args.tile < 0 or (args.tile and not 0 <= 2 * args.overlap <= args.tile):
        parser.error("--tile must be >= 0 and --overlap between 0 and tile/2")
    if args.max_programs < 1:
        parser.error("--max-programs must be >= 1")
    try:
        warmup = [tuple(int(v) for v in s.lower().split("x")) for s in args.warmup.split(",") if s.strip()]
        if any(len(s) != 2 or min(s) < 1 for s in warmup):
            raise ValueError
    except ValueError:
        parser.error(f"--warmup: expected HxW sizes separated by commas, e.g. 720x1280, not {args.warmup!r}")
    if args.keep_dir is not None:  # before the (slow) model load: a bad flag should fail at once
        try:
            limits.check_keep_dir(args.keep_dir)
        except OSError as e:
            print(f"error: --keep-dir {args.keep_dir} cannot be written: {e.__class__.__name__}: {e.strerror or e}",
                  file=sys.stderr)
            return 2
    try:  # before the (slow) model load and uvicorn, whose own failure is a log block and exit status 3
        limits.check_port(args.host, args.port)
    except OSError as e:
        print(f"error: cannot listen on {args.host}:{args.port}: {e.strerror or e}", file=sys.stderr)
        return 2
    from restorenet_jax.inference import engines
    from restorenet_jax.models.model_dir import ModelDirError

    try:
        restorer = engines.load_engine(args.checkpoint, args.engine, tlc=args.tlc, precision=args.precision,
                                       bucketing=True, max_programs=args.max_programs,
                                       dynamic_shapes=args.openvino_shapes == "dynamic",
                                       **({"which": "best"} if args.best else {}))
    except engines.EngineUnavailable as e:
        print(f"error: --engine {args.engine} --precision {args.precision}: {e}", file=sys.stderr)
        return 2
    except (ModelDirError, OSError, ValueError) as e:
        print(f"error: cannot load --checkpoint {args.checkpoint}: {e}", file=sys.stderr)
        return 2
    print(engines.describe(restorer), file=sys.stderr)
    settings = ServeSettings(max_upload_bytes=int(args.max_upload_mb * 1024 * 1024), max_pixels=args.max_pixels,
                             queue_size=args.queue_size, max_connections=args.max_connections,
                             body_timeout=args.body_timeout, retry_after=args.retry_after, keep_dir=args.keep_dir,
                             tile=args.tile, overlap=args.overlap)
    if warmup:
        print(f"compiling {len(warmup)} size(s) ahead of time ...", file=sys.stderr)
        restorer.warmup(warmup)
    import uvicorn

    limits.setup_logging()
    # The open-upload cap is the service's own (above) rather than uvicorn's limit_concurrency, whose 503 carries no
    # Retry-After and which also counts idle keep-alive connections.
    uvicorn.run(create_app(restorer, settings), host=args.host, port=args.port,
                http=serve_headers.protocol(args.header_timeout))
    return 0


if __name__ == "__main__":
    sys.exit(main())
