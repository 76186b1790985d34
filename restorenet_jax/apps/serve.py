"""Web service: upload a photo, get it restored.

    python -m restorenet_jax.serve --checkpoint runs/demo [--host 127.0.0.1] [--port 8000]

Endpoints: `GET /` (a page: upload, original and restored side by side, download), `POST /api/restore`
(multipart field `image`; answers the restored PNG), `GET /healthz`, and FastAPI's `/docs` (OpenAPI).

Limits, all JSON errors `{"error": "..."}`: uploads over `max_upload_bytes` or images over `max_pixels` -> 413;
data that is not an image -> 415; a request without a file field `image` -> 400; more than `queue_size` requests
admitted (running + waiting) -> 503. One model instance runs in a single worker thread, so the event loop keeps
answering (health checks, 503s) while a restoration runs. Uploads are held in memory only, and nothing is written
to disk unless `keep_dir` is set (then input and output are saved under server-made names; the uploaded file name
is never used).
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Optional, Sequence

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from restorenet_jax.inference import media_io
from restorenet_jax.apps.restore import make_image_fn, restore_picture

STATIC_DIR = Path(__file__).parent / "static"
# Multipart framing (boundaries, part headers) on top of the file itself.
_MULTIPART_SLACK = 64 * 1024


@dataclass
class ServeSettings:
    """Service limits and inference options.

    Attributes:
      max_upload_bytes: largest accepted image file.
      max_pixels: largest accepted width × height.
      queue_size: requests admitted at once (one running, the rest waiting); more get 503.
      keep_dir: if set, inputs and outputs are saved here (server-made names); None stores nothing.
      tile: tile size for tiled inference (0: whole image), overlap: tile overlap (see restorenet_jax.tiling).
    """

    max_upload_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 4096 * 4096
    queue_size: int = 4
    keep_dir: Optional[Path] = None
    tile: int = 0
    overlap: int = 32


class _TooLarge(Exception):
    pass


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _capped(stream: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    """Passes the request body through, failing as soon as it exceeds `limit` bytes (chunked uploads too)."""
    total = 0
    async for chunk in stream:
        total += len(chunk)
        if total > limit:
            raise _TooLarge
        yield chunk


def create_app(restorer, settings: ServeSettings | None = None) -> FastAPI:
    """Builds the FastAPI app around one loaded `Restorer` (or any object with its call signature).

    Args:
      restorer: the model; called from a single worker thread, so it is never used concurrently.
      settings: limits and options; defaults if None.
    """
    settings = settings or ServeSettings()
    image_fn = make_image_fn(restorer, settings.tile, settings.overlap)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="restore")
    state = {"admitted": 0, "served": 0}

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        executor.shutdown(wait=True, cancel_futures=True)

    app = FastAPI(title="RestoreNet", summary="Joint deblurring and denoising of dark CCTV images",
                  lifespan=lifespan)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/healthz", summary="Liveness and queue state")
    def healthz() -> dict:
        return {"status": "ok", "model": getattr(getattr(restorer, "arch", None), "kind", "unknown"),
                "queue": state["admitted"], "queue_size": settings.queue_size, "served": state["served"]}

    def work(data: bytes) -> tuple[bytes, float]:
        start = time.perf_counter()
        pic = media_io.decode_image(data)
        out = media_io.encode_image(restore_picture(image_fn, pic), fmt="PNG")
        if settings.keep_dir is not None:
            stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
            settings.keep_dir.mkdir(parents=True, exist_ok=True)
            (settings.keep_dir / f"{stem}-input.bin").write_bytes(data)
            (settings.keep_dir / f"{stem}-restored.png").write_bytes(out)
        return out, time.perf_counter() - start

    body_doc = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["image"],
        "properties": {"image": {"type": "string", "format": "binary", "description": "the image to restore"}}}}}},
        "responses": {"200": {"description": "the restored image", "content": {"image/png": {}}},
                      "400": {"description": "no file field `image`"},
                      "413": {"description": "file or image too large"},
                      "415": {"description": "not a decodable image"},
                      "503": {"description": "queue full, retry later"}}}

    @app.post("/api/restore", summary="Restore one image; answers a PNG", openapi_extra=body_doc)
    async def restore_endpoint(request: Request) -> Response:
        limit = settings.max_upload_bytes + _MULTIPART_SLACK
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return _error(413, f"upload larger than {settings.max_upload_bytes} bytes")
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return _error(400, "send the image as multipart/form-data in a field named 'image'")
        parser = MultiPartParser(request.headers, _capped(request.stream(), limit), max_files=1, max_fields=10)
        parser.spool_max_size = limit  # keep the upload in memory: nothing touches the disk
        try:
            form = await parser.parse()
        except _TooLarge:
            return _error(413, f"upload larger than {settings.max_upload_bytes} bytes")
        except MultiPartException as e:
            return _error(400, f"malformed multipart body: {e.message}")
        try:
            upload = form.get("image")
            if not isinstance(upload, UploadFile):
                return _error(400, "missing file field 'image'")
            data = await upload.read()
        finally:
            await form.close()
        if len(data) > settings.max_upload_bytes:
            return _error(413, f"upload larger than {settings.max_upload_bytes} bytes")
        try:
            width, height = media_io.image_size(data)
        except media_io.UnreadableImage:
            return _error(415, "the upload is not an image this service can read (PNG, JPEG, BMP, TIFF, WebP)")
        if width * height > settings.max_pixels:
            return _error(413, f"image of {width}x{height} pixels is larger than {settings.max_pixels} pixels")
        # Admission happens on the event loop thread, so this check-and-increment cannot race.
        if state["admitted"] >= settings.queue_size:
            return _error(503, "the service is busy, try again shortly")
        state["admitted"] += 1
        try:
            out, seconds = await asyncio.get_running_loop().run_in_executor(executor, work, data)
        except media_io.UnreadableImage as e:
            return _error(415, str(e))
        finally:
            state["admitted"] -= 1
        state["served"] += 1
        return Response(out, media_type="image/png", headers={
            "Content-Disposition": 'attachment; filename="restored.png"', "X-Restore-Seconds": f"{seconds:.3f}"})

    return app


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(prog="python -m restorenet_jax.serve", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="converted model directory or training workdir")
    p.add_argument("--best", action="store_true", help="from a training workdir, use the best checkpoint by "
                   "validation PSNR instead of the latest")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 exposes it to the network)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest accepted upload in MiB")
    p.add_argument("--max-pixels", type=int, default=4096 * 4096, help="largest accepted width × height")
    p.add_argument("--queue-size", type=int, default=4, help="requests admitted at once; more get 503")
    p.add_argument("--keep-dir", type=Path, default=None, help="save inputs and outputs here (default: nothing)")
    p.add_argument("--tile", type=int, default=0, help="tile size for large images (0: whole image)")
    p.add_argument("--overlap", type=int, default=32, help="pixels shared by neighbouring tiles")
    p.add_argument("--bf16", action="store_true", help="compute in bfloat16")
    p.add_argument("--tlc", action=argparse.BooleanOptionalAction, default=None,
                   help="test-time local converter (default: the checkpoint's setting)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Loads the model and serves until interrupted; exit status 2 when the checkpoint is unusable."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.queue_size < 1 or args.max_pixels < 1 or args.max_upload_mb <= 0:
        parser.error("--queue-size, --max-pixels and --max-upload-mb must be positive")
    if args.tile < 0 or (args.tile and not 0 <= 2 * args.overlap <= args.tile):
        parser.error("--tile must be >= 0 and --overlap between 0 and tile/2")
    from restorenet_jax.inference.restorer import Restorer
    from restorenet_jax.models.model_dir import ModelDirError

    try:
        restorer = Restorer.from_checkpoint(args.checkpoint, tlc=args.tlc, dtype="bfloat16" if args.bf16 else "float32",
                                            **({"which": "best"} if args.best else {}))
    except (ModelDirError, OSError, ValueError) as e:
        print(f"error: cannot load --checkpoint {args.checkpoint}: {e}", file=sys.stderr)
        return 2
    settings = ServeSettings(max_upload_bytes=int(args.max_upload_mb * 1024 * 1024), max_pixels=args.max_pixels,
                             queue_size=args.queue_size, keep_dir=args.keep_dir, tile=args.tile,
                             overlap=args.overlap)
    import uvicorn

    uvicorn.run(create_app(restorer, settings), host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
