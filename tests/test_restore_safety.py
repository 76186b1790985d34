"""The restore CLI on hostile or awkward inputs: files already in the output folder, decompression bombs, an
output folder that cannot be created, and a truncated video."""
import re
import struct

import numpy as np
import pytest
from PIL import Image

from restorenet_jax.apps import restore
from tests.tiny_model import tiny_checkpoint

# imageio-ffmpeg starts ffmpeg with subprocess (fork + exec at once), which JAX's fork warning does not concern.
pytestmark = pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")

H, W = 24, 32  # the size the other restore tests use: the tiny model is compiled once per process for it


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory)


def _rgb8(seed=0, h=H, w=W):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _run(ckpt, *args):
    return restore.main(["--checkpoint", str(ckpt), "-q", *map(str, args)])


# --- files already in the output folder ---------------------------------------------------------------------------

def test_existing_output_is_not_replaced_without_overwrite(ckpt, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(_rgb8(0)).save(photos / "a.jpg", quality=90)
    Image.fromarray(_rgb8(1)).save(photos / "a.png")  # the user's own file, not an input of the run
    mine = (photos / "a.png").read_bytes()
    jpg = (photos / "a.jpg").read_bytes()

    assert _run(ckpt, photos / "a.jpg", "--output", photos) == 1
    err = capsys.readouterr().err
    assert (photos / "a.png").read_bytes() == mine
    assert "a.jpg" in err and "already exists" in err and "--overwrite" in err and "Traceback" not in err
    assert sorted(p.name for p in photos.iterdir()) == ["a.jpg", "a.png"]  # skipped, not renamed

    assert _run(ckpt, photos / "a.jpg", "--output", photos, "--overwrite") == 0
    assert (photos / "a.png").read_bytes() != mine
    assert Image.open(photos / "a.png").size == (W, H)
    assert (photos / "a.jpg").read_bytes() == jpg  # the input itself is never replaced, even with --overwrite


def test_outputs_of_the_same_run_never_clash(ckpt, tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    Image.fromarray(_rgb8(2)).save(src / "a.jpg")
    Image.fromarray(_rgb8(3)).save(src / "a.bmp")
    assert _run(ckpt, src, "--output", out) == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["a.png", "a_jpg.png"]  # sorted inputs: a.bmp first


def test_existing_video_output_is_not_replaced(ckpt, tmp_path, capsys):
    clip = _write_video(tmp_path / "clip.mp4", 4)
    out = tmp_path / "out"
    out.mkdir()
    (out / "clip.mp4").write_bytes(b"someone else's recording")
    assert _run(ckpt, clip, "--output", out) == 1
    assert (out / "clip.mp4").read_bytes() == b"someone else's recording"
    assert "already exists" in capsys.readouterr().err
    assert _run(ckpt, clip, "--output", out, "--overwrite") == 0
    assert (out / "clip.mp4").read_bytes() != b"someone else's recording"


# --- decompression bombs: tiny headers that declare huge images (never decoded here) ------------------------------

def _gif_bomb(w=30000, h=30000) -> bytes:
    """Header, logical screen, one image descriptor, an empty LZW stream and the trailer: 29 bytes."""
    return (b"GIF89a" + struct.pack("<HHBBB", w, h, 0, 0, 0) + b"\x2c" + struct.pack("<HHHHB", 0, 0, w, h, 0)
            + b"\x02\x02\x4c\x01\x00\x3b")


def _tiff_bomb(w=30000, h=30000) -> bytes:
    """A little-endian TIFF header and one IFD of an uncompressed 8-bit gray strip that is not there."""
    entries = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1), (273, 4, 1, 8),
               (277, 3, 1, 1), (278, 4, 1, h), (279, 4, 1, (w * h) & 0xFFFFFFFF)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\0" * 4
    return b"II*\x00" + struct.pack("<I", 8) + ifd


def _jpeg_bomb(w=60000, h=60000) -> bytes:
    """SOI, a baseline SOF0 frame header for one 8-bit component, EOI."""
    return b"\xff\xd8\xff\xc0" + struct.pack(">HBHHB", 11, 8, h, w, 1) + b"\x01\x11\x00\xff\xd9"


def test_bombs_are_skipped_and_the_rest_restored(ckpt, tmp_path, capsys):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    Image.fromarray(_rgb8(4)).save(folder / "a_good.png")
    (folder / "b_bomb.gif").write_bytes(_gif_bomb())
    (folder / "c_bomb.tif").write_bytes(_tiff_bomb())
    (folder / "d_bomb.jpg").write_bytes(_jpeg_bomb())
    Image.fromarray(_rgb8(5)).save(folder / "z_good.png")  # after the bombs: the run must get here
    assert _run(ckpt, folder, "--output", out) == 1
    err = capsys.readouterr().err
    assert sorted(p.name for p in out.glob("*.png")) == ["a_good.png", "z_good.png"]
    assert "Traceback" not in err and "DecompressionBomb" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 3, err  # one line per bomb
    for name, size in (("b_bomb.gif", "30000x30000"), ("c_bomb.tif", "30000x30000"), ("d_bomb.jpg", "60000x60000")):
        [line] = [line for line in lines if name in line]
        assert size in line and str(restore.DEFAULT_MAX_PIXELS) in line
    assert "restored 2 of 5" in err


def test_max_pixels_option(ckpt, tmp_path, capsys):
    src = tmp_path / "x.png"
    Image.fromarray(_rgb8(6)).save(src)
    assert _run(ckpt, src, "--output", tmp_path / "small", "--max-pixels", W * H - 1) == 1
    assert f"{W}x{H} pixels is larger than the limit of {W * H - 1}" in capsys.readouterr().err
    assert not list((tmp_path / "small").iterdir())
    assert _run(ckpt, src, "--output", tmp_path / "exact", "--max-pixels", W * H) == 0
    assert _run(ckpt, src, "--output", tmp_path / "nolimit", "--max-pixels", 0) == 0
    with pytest.raises(SystemExit) as e:
        _run(ckpt, src, "--output", tmp_path / "neg", "--max-pixels", -1)
    assert e.value.code == 2


# --- an output folder that cannot be created ----------------------------------------------------------------------

def test_output_folder_under_a_file(ckpt, tmp_path, capsys):
    src = tmp_path / "x.png"
    Image.fromarray(_rgb8(7)).save(src)
    (tmp_path / "afile").write_text("a file, not a folder")
    with pytest.raises(SystemExit) as e:
        _run(ckpt, src, "--output", tmp_path / "afile" / "out")
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "cannot create output folder" in err and "afile" in err


# --- a truncated video --------------------------------------------------------------------------------------------

def _write_video(path, n, faststart=False):
    """n noise frames of W x H at 10 fps; `faststart` puts the MP4 index first, as players and CCTV exports
    that stream do, so that a file cut short still declares its full duration."""
    import imageio_ffmpeg

    params = ["-movflags", "+faststart"] if faststart else None
    writer = imageio_ffmpeg.write_frames(str(path), (W, H), fps=10, macro_block_size=1, output_params=params,
                                         ffmpeg_log_level="error")
    writer.send(None)
    for i in range(n):
        writer.send(_rgb8(100 + i).tobytes())
    writer.close()
    return path


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_truncated_video_reports_frame_counts(ckpt, tmp_path, capsys, ext):
    import imageio_ffmpeg

    full = _write_video(tmp_path / f"full{ext}", 30, faststart=True)
    clip = tmp_path / f"clip{ext}"
    data = full.read_bytes()
    clip.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    assert _run(ckpt, clip, "--output", out, "--same-ext") == 1
    err = capsys.readouterr().err
    m = re.search(r"clip\S*: only (\d+) of 30 frames could be read \(truncated\?\)", err)
    assert m, err
    got = int(m.group(1))
    assert 0 < got < 30
    # The frames that could be restored are kept.
    assert imageio_ffmpeg.count_frames_and_secs(str(out / f"clip{ext}"))[0] == got
    assert "Traceback" not in err
