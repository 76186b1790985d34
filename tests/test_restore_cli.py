"""The restore CLI on a folder of mixed formats, a short video, tiling, and bad arguments."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from restorenet_jax.inference import media_io
from restorenet_jax.evaluation import metrics
from restorenet_jax.inference import png16, video
from restorenet_jax.apps import restore
from tests.tiny_model import gentle_checkpoint, gentle_restorer, tiny_checkpoint, tiny_restorer

# imageio-ffmpeg starts ffmpeg with subprocess (fork + exec at once), which JAX's fork warning does not concern.
pytestmark = pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")

H, W = 24, 32  # every test image has this upright size: one jit compilation for the folder


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory)


@pytest.fixture(scope="module")
def restorer(tmp_path_factory):
    return tiny_restorer(tmp_path_factory)


def _rgb8(seed=0, h=H, w=W):
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 1, w)[None, :, None] * np.linspace(0.2, 1, h)[:, None, None] * [1.0, 0.7, 0.4]
    return np.clip(np.round((base + 0.1 * rng.random((h, w, 3))) * 255), 0, 255).astype(np.uint8)


def _save(im: Image.Image, path, **kw):
    im.save(path, **kw)
    return path


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("mixed")
    rgb = _rgb8(0)
    _save(Image.fromarray(rgb), d / "a_rgb8.png")
    rgb16 = (rgb.astype(np.uint16) * 257 + np.random.default_rng(1).integers(0, 257, rgb.shape)).astype(np.uint16)
    (d / "b_rgb16.png").write_bytes(png16.write_png16(rgb16))
    _save(Image.fromarray(_rgb8(2)), d / "c_photo.jpg", quality=90)
    _save(Image.fromarray(_rgb8(3)[..., 1]), d / "d_gray.png")
    alpha = np.random.default_rng(4).integers(0, 256, (H, W), dtype=np.uint8)
    _save(Image.fromarray(np.dstack([_rgb8(4), alpha]), mode="RGBA"), d / "e_rgba.png")
    # Stored sideways (32 high, 24 wide) with EXIF orientation 6 (rotate 90° clockwise to view): upright is 24×32.
    sideways = Image.fromarray(np.rot90(_rgb8(5), k=1).copy())
    exif = sideways.getexif()
    exif[0x0112] = 6
    _save(sideways, d / "f_exif.jpg", exif=exif.tobytes(), quality=95)
    gray16 = (np.random.default_rng(6).random((H, W)) * 65535).astype(np.uint16)
    (d / "g_gray16.png").write_bytes(png16.write_png16(gray16))
    (d / "z_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"this is not really a png" * 10)
    (d / "notes.txt").write_text("not an image; folders only pick image/video extensions")
    return d


def _expected8(restorer, arr_uint8):
    return np.round(restorer(arr_uint8.astype(np.float32) / 255) * 255)


def test_mixed_folder(mixed_folder, ckpt, restorer, tmp_path, capsys):
    out = tmp_path / "out"
    status = restore.main(["--checkpoint", str(ckpt), str(mixed_folder), "--output", str(out), "-q"])
    err = capsys.readouterr().err
    assert status == 1
    assert "z_corrupt.png" in err and "restored 7 of 8" in err
    names = sorted(p.name for p in out.iterdir() if not p.name.endswith(".restore.json"))
    assert sorted(p.name for p in out.glob("*.restore.json")) == [f"{n}.restore.json" for n in names]
    assert names == ["a_rgb8.png", "b_rgb16.png", "c_photo.png", "d_gray.png", "e_rgba.png", "f_exif.png",
                     "g_gray16.png"]
    for name in names:
        with Image.open(out / name) as im:
            assert im.size == (W, H), name

    a = np.asarray(Image.open(out / "a_rgb8.png"))
    assert a.dtype == np.uint8 and a.shape == (H, W, 3)
    assert np.abs(a - _expected8(restorer, np.asarray(Image.open(mixed_folder / "a_rgb8.png")))).max() <= 1

    b_bytes = (out / "b_rgb16.png").read_bytes()
    assert png16.png_header(b_bytes)[2:] == (16, 2)  # 16-bit RGB in -> 16-bit RGB out
    b = png16.read_png16(b_bytes)
    src16 = png16.read_png16((mixed_folder / "b_rgb16.png").read_bytes())
    expected16 = np.round(restorer(src16.astype(np.float32) / 65535) * 65535)
    assert np.abs(b.astype(np.float64) - expected16).max() <= 2
    # Real 16-bit content: not just 8-bit values scaled up.
    assert np.any(b % 257 != 0)

    assert Image.open(out / "c_photo.png").mode == "RGB"

    d = Image.open(out / "d_gray.png")
    assert d.mode == "L"
    gray_src = np.asarray(Image.open(mixed_folder / "d_gray.png")).astype(np.float32) / 255
    expected_gray = np.round(media_io.to_gray(restorer(np.repeat(gray_src[..., None], 3, -1))) * 255)
    assert np.abs(np.asarray(d) - expected_gray).max() <= 1

    e = Image.open(out / "e_rgba.png")
    assert e.mode == "RGBA"
    src_rgba = np.asarray(Image.open(mixed_folder / "e_rgba.png"))
    np.testing.assert_array_equal(np.asarray(e)[..., 3], src_rgba[..., 3])  # alpha untouched
    assert np.abs(np.asarray(e)[..., :3] - _expected8(restorer, src_rgba[..., :3])).max() <= 1

    # EXIF-rotated: the output is upright and equals restoring the upright pixels.
    from PIL import ImageOps

    upright = np.asarray(ImageOps.exif_transpose(Image.open(mixed_folder / "f_exif.jpg")))
    assert upright.shape == (H, W, 3)
    f = np.asarray(Image.open(out / "f_exif.png"))
    assert np.abs(f - _expected8(restorer, upright)).max() <= 1

    g_bytes = (out / "g_gray16.png").read_bytes()
    assert png16.png_header(g_bytes)[2:] == (16, 0)  # 16-bit gray stays 16-bit gray


def test_gray_as_rgb_and_same_ext_never_overwrite(mixed_folder, ckpt, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    for name in ("d_gray.png", "c_photo.jpg"):
        (work / name).write_bytes((mixed_folder / name).read_bytes())
    before = {p.name: p.read_bytes() for p in work.iterdir()}
    # Output folder == input folder with --same-ext: the natural names collide with the inputs.
    status = restore.main(["--checkpoint", str(ckpt), str(work / "*.*"), "--output", str(work), "--same-ext",
                           "--gray-as-rgb", "-q"])
    assert status == 0
    for name, data in before.items():
        assert (work / name).read_bytes() == data
    assert Image.open(work / "d_gray_png.png").mode == "RGB"  # --gray-as-rgb
    assert Image.open(work / "c_photo_jpg.jpg").format == "JPEG"  # --same-ext keeps JPEG


def test_video_round_trip(tmp_path_factory, tmp_path):
    import imageio_ffmpeg

    # The near-identity tiny model: its output is image-like, so it survives H.264 and can be compared.
    ckpt, restorer = gentle_checkpoint(tmp_path_factory), gentle_restorer(tmp_path_factory)
    src = tmp_path / "clip.mp4"
    frames = [_rgb8(10 + i, 40, 56) for i in range(6)]
    with video.VideoWriter(src, (56, 40), fps=7) as w:
        for f in frames:
            w.write(f / 255.0)
    out = tmp_path / "out"
    assert restore.main(["--checkpoint", str(ckpt), str(src), "--output", str(out), "-q"]) == 0
    info, got = video.open_video(out / "clip.mp4")
    got = list(got)
    assert len(got) == 6 and info.size == (56, 40) and info.fps == pytest.approx(7.0)
    assert imageio_ffmpeg.count_frames_and_secs(str(out / "clip.mp4"))[0] == 6
    # Frames are the restored input frames, up to video compression.
    _, inp = video.open_video(src)
    first_in = next(iter(inp)).astype(np.float32) / 255
    assert metrics.psnr(restorer(first_in), got[0].astype(np.float32) / 255) > 25


def test_tiling_on_off(mixed_folder, tmp_path_factory, tmp_path, monkeypatch):
    # The near-identity model: with the saturated tiny model tiles of 16 px give unrelated noise (~5 dB).
    ckpt = gentle_checkpoint(tmp_path_factory)
    calls = []
    real = restore.tiling.tiled_apply
    monkeypatch.setattr(restore.tiling, "tiled_apply", lambda *a, **k: calls.append(k) or real(*a, **k))
    src = mixed_folder / "b_rgb16.png"  # 16-bit, so that small differences are not rounded away
    plain, tiled, whole = tmp_path / "plain", tmp_path / "tiled", tmp_path / "whole"
    assert restore.main(["--checkpoint", str(ckpt), str(src), "--output", str(plain), "-q"]) == 0
    assert not calls
    assert restore.main(["--checkpoint", str(ckpt), str(src), "--output", str(tiled), "-q", "--tile", "16",
                         "--overlap", "8"]) == 0
    assert calls[-1]["tile"] == 16 and calls[-1]["overlap"] == 8
    assert restore.main(["--checkpoint", str(ckpt), str(src), "--output", str(whole), "-q", "--tile", "64"]) == 0
    a, b, c = (png16.read_png16((d / "b_rgb16.png").read_bytes()).astype(np.float64) / 65535
               for d in (plain, tiled, whole))
    np.testing.assert_array_equal(a, c)  # one tile covering the image is the untiled run
    # Measured: ~60 dB between tiled (16 px tiles, overlap 8) and untiled output of this near-identity model.
    score = metrics.psnr(a, b)
    assert 40 < score < 100, score


def test_bf16_close_to_fp32(mixed_folder, tmp_path_factory, tmp_path):
    ckpt = gentle_checkpoint(tmp_path_factory)
    src = mixed_folder / "b_rgb16.png"
    for name, extra in (("fp32", []), ("bf16", ["--bf16"])):
        assert restore.main(["--checkpoint", str(ckpt), str(src), "--output", str(tmp_path / name), "-q"]
                            + extra) == 0
    a, b = (png16.read_png16((tmp_path / d / "b_rgb16.png").read_bytes()).astype(np.float64) / 65535
            for d in ("fp32", "bf16"))
    score = metrics.psnr(a, b)
    assert 30 < score < 120, score  # bf16 really used (not bit-identical), and close


def test_bad_arguments(ckpt, tmp_path, mixed_folder):
    src = str(mixed_folder / "a_rgb8.png")
    with pytest.raises(SystemExit) as e:
        restore.main(["--checkpoint", str(tmp_path / "nope"), src, "--output", str(tmp_path / "o")])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        restore.main(["--checkpoint", str(ckpt), src, "--output", str(tmp_path / "o"), "--tile", "16",
                      "--overlap", "9"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        restore.main(["--checkpoint", str(ckpt), str(tmp_path / "missing*.png"), "--output", str(tmp_path / "o")])
    assert e.value.code == 2


def test_cli_subprocess_bad_checkpoint(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    img = tmp_path / "x.png"
    Image.fromarray(_rgb8()).save(img)
    proc = subprocess.run([sys.executable, "-m", "restorenet_jax.restore", "--checkpoint", str(empty), str(img),
                           "--output", str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "--checkpoint" in proc.stderr
