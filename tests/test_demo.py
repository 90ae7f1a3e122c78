"""The ``make demo`` evidence builder and runner (safeguard.demo)."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from safeguard import demo, demo_library

EXPECTED_FILES = [
    "ai/stable-diffusion-webui/launch.py",
    "ai/stable-diffusion-webui/models/Lora/demo-lighthouse.safetensors",
    "ai/stable-diffusion-webui/models/Stable-diffusion/demo-landscapes-v1.safetensors",
    "ai/stable-diffusion-webui/modules/shared.py",
    "ai/stable-diffusion-webui/outputs/txt2img-images/2024-05-20/00001-91.png",
    "ai/stable-diffusion-webui/outputs/txt2img-images/2024-05-20/00002-92.png",
    "ai/stable-diffusion-webui/params.txt",
    "ai/stable-diffusion-webui/styles.csv",
    "ai/stable-diffusion-webui/webui.py",
    "ai/training/img/10_lighthouse/lighthouse_01.jpg",
    "ai/training/img/10_lighthouse/lighthouse_01.txt",
    "ai/training/img/10_lighthouse/lighthouse_02.jpg",
    "ai/training/img/10_lighthouse/lighthouse_02.txt",
    "ai/training/img/10_lighthouse/lighthouse_03.jpg",
    "ai/training/img/10_lighthouse/lighthouse_03.txt",
    "cache/thumbcache_256.db",
    "camera/IMG_0001.jpg",
    "camera/IMG_0002.jpg",
    "camera/IMG_0003.jpg",
    "camera/IMG_0004.jpg",
    "camera/IMG_0005.jpg",
    "camera/IMG_0006.jpg",
    "copies/IMG_0001_half.jpg",
    "copies/IMG_0002_q40.jpg",
    "copies/IMG_0003_rot90.jpg",
    "copies/IMG_0004_mirror.jpg",
    "copies/IMG_0005.webp",
    "copies/IMG_0006.png",
    "documents/trip-report.pdf",
    "generated/render_0001.png",
    "mail/holiday.eml",
    "misc/broken.jpg",
    "misc/empty.bin",
    "misc/invoice.jpg",
    "misc/notes.txt",
    "shared/holiday.zip",
    "shared/more.tar.gz",
]

EXIF_IFD, GPS_IFD = 0x8769, 0x8825


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[str]]]:
    dest = tmp_path_factory.mktemp("demo") / "evidence"
    yield dest, demo.build_demo_evidence(dest)


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _pixels(data: bytes | Path) -> np.ndarray:
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    with Image.open(source) as img:
        return np.asarray(img.convert("RGB"))


# ----------------------------------------------------------------------- layout


def test_writes_exactly_the_listed_files(evidence: tuple[Path, list[str]]) -> None:
    dest, written = evidence
    assert written == EXPECTED_FILES
    on_disk = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert on_disk == EXPECTED_FILES
    assert {p.name for p in dest.iterdir()} == {"camera", "copies", "shared", "misc", "generated",
                                               "documents", "mail", "cache", "ai"}


def test_build_is_deterministic(evidence: tuple[Path, list[str]], tmp_path: Path) -> None:
    dest, _ = evidence
    again = tmp_path / "again"
    demo.build_demo_evidence(again)
    assert _digests(again) == _digests(dest)
    times = {p.stat().st_mtime for p in again.rglob("*")}
    assert times == {demo.FIXED_MTIME}


def test_rebuild_replaces_a_previous_demo_build(
    evidence: tuple[Path, list[str]], tmp_path: Path
) -> None:
    built, _ = evidence
    dest = tmp_path / "evidence"
    shutil.copytree(built, dest)
    (dest / "camera" / "IMG_0001.jpg").write_bytes(b"tampered")
    (dest / "copies" / "IMG_0005.webp").unlink()
    (dest / "camera" / "stale.jpg").write_bytes(b"left over")
    assert demo.build_demo_evidence(dest) == EXPECTED_FILES
    assert _digests(dest) == _digests(built)


def test_refuses_to_remove_a_folder_it_did_not_build(tmp_path: Path) -> None:
    dest = tmp_path / "evidence"
    dest.mkdir()
    keep = dest / "case-notes.txt"
    keep.write_text("not a demo")
    with pytest.raises(FileExistsError, match="not a previous demo build"):
        demo.build_demo_evidence(dest)
    assert keep.read_text() == "not a demo"

    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with pytest.raises(FileExistsError):
        demo.build_demo_evidence(a_file)
    assert a_file.read_text() == "x"


def test_builds_into_an_empty_existing_folder(tmp_path: Path) -> None:
    assert demo.build_demo_evidence(tmp_path) == EXPECTED_FILES


# ------------------------------------------------------------------ camera pictures


def test_camera_pictures_are_large_distinct_jpegs(evidence: tuple[Path, list[str]]) -> None:
    dest, _ = evidence
    means = set()
    for shot in demo.CAMERA_SHOTS:
        with Image.open(dest / "camera" / shot.name) as img:
            assert img.format == "JPEG"
            assert img.size == (1600, 1200)
            assert img.mode == "RGB"
            pixels = np.asarray(img)
        assert pixels.std() > 20  # a scene, not a flat colour
        means.add(tuple(np.round(pixels.mean(axis=(0, 1))).astype(int)))
    assert len(means) == len(demo.CAMERA_SHOTS)
    digests = _digests(dest / "camera")
    assert len(set(digests.values())) == len(demo.CAMERA_SHOTS)


def test_camera_exif_reads_back_exactly(evidence: tuple[Path, list[str]]) -> None:
    dest, _ = evidence
    with Image.open(dest / "camera" / "IMG_0001.jpg") as img:
        exif = img.getexif()
    assert exif[0x010F] == "DemoCam"
    assert exif[0x0110] == "DC-1"
    assert exif[0x0131] == "DemoCam Firmware 1.0"
    sub = exif.get_ifd(EXIF_IFD)
    assert sub[0xA431] == "DEMO0001"
    assert sub[0x9003] == "2024:05:17 09:12:03"
    gps = exif.get_ifd(GPS_IFD)
    assert gps[1] == "N"
    assert gps[3] == "E"
    assert [Fraction(v.numerator, v.denominator) for v in gps[2]] == [48, 51, Fraction("29.6")]
    assert [Fraction(v.numerator, v.denominator) for v in gps[4]] == [2, 17, Fraction("40.2")]

    with Image.open(dest / "camera" / "IMG_0004.jpg") as img:
        exif = img.getexif()
    assert (exif[0x010F], exif[0x0110]) == ("DemoCam", "DC-2")
    assert exif.get_ifd(EXIF_IFD)[0xA431] == "DEMO0002"
    gps = exif.get_ifd(GPS_IFD)
    assert (gps[1], gps[3]) == ("S", "E")
    assert [Fraction(v.numerator, v.denominator) for v in gps[2]] == [33, 51, Fraction("24.5")]
    assert [Fraction(v.numerator, v.denominator) for v in gps[4]] == [151, 12, Fraction("54.6")]


@pytest.mark.parametrize("shot", demo.CAMERA_SHOTS, ids=lambda s: s.name)
def test_every_camera_picture_carries_its_exif(
    evidence: tuple[Path, list[str]], shot: demo.CameraShot
) -> None:
    dest, _ = evidence
    with Image.open(dest / "camera" / shot.name) as img:
        exif = img.getexif()
    assert exif[0x010F] == shot.make
    assert exif[0x0110] == shot.model
    assert exif[0x0131] == shot.software
    sub = exif.get_ifd(EXIF_IFD)
    assert sub[0xA431] == shot.serial
    assert sub[0x9003] == shot.taken
    assert sub[0x9011] == shot.offset
    gps = exif.get_ifd(GPS_IFD)
    if shot.gps is None:
        assert not gps
        return

    def exact(values: Any) -> list[Fraction]:
        return [Fraction(v.numerator, v.denominator) for v in values]

    assert gps[1] == shot.gps.lat_ref
    assert gps[3] == shot.gps.lon_ref
    assert exact(gps[2]) == [Fraction(n, d) for n, d in shot.gps.lat]
    assert exact(gps[4]) == [Fraction(n, d) for n, d in shot.gps.lon]


def test_two_camera_pictures_have_gps() -> None:
    with_gps = [shot.name for shot in demo.CAMERA_SHOTS if shot.gps is not None]
    assert with_gps == ["IMG_0001.jpg", "IMG_0004.jpg"]


def test_sixth_camera_picture_is_the_demo_text_card() -> None:
    shot = demo.CAMERA_SHOTS[5]
    lines = ("SAFEGUARD DEMO 6", "generated test picture", "no real evidence")
    card = np.asarray(shot.scene(400, 300, shot.seed))
    assert np.array_equal(card, np.asarray(demo._text_card(400, 300, lines, shot.seed)))
    blank = np.asarray(demo._text_card(400, 300, ("", "", ""), shot.seed))
    assert (card != blank).any()


# ------------------------------------------------------------------------ copies


def test_copies_have_the_expected_formats_and_sizes(evidence: tuple[Path, list[str]]) -> None:
    dest, _ = evidence
    expected = {
        "IMG_0001_half.jpg": ("JPEG", (800, 600)),
        "IMG_0002_q40.jpg": ("JPEG", (1600, 1200)),
        "IMG_0003_rot90.jpg": ("JPEG", (1200, 1600)),
        "IMG_0004_mirror.jpg": ("JPEG", (1600, 1200)),
        "IMG_0005.webp": ("WEBP", (1600, 1200)),
        "IMG_0006.png": ("PNG", (1600, 1200)),
    }
    for name, (fmt, size) in expected.items():
        with Image.open(dest / "copies" / name) as img:
            assert (img.format, img.size) == (fmt, size), name
            assert not img.getexif(), f"{name} should carry no camera EXIF"


def test_recompressed_copy_is_smaller_but_close(evidence: tuple[Path, list[str]]) -> None:
    dest, _ = evidence
    original = dest / "camera" / "IMG_0002.jpg"
    copy = dest / "copies" / "IMG_0002_q40.jpg"
    assert copy.stat().st_size < original.stat().st_size
    diff = np.abs(_pixels(copy).astype(int) - _pixels(original).astype(int))
    assert diff.mean() < 12


def test_rotated_copy_is_the_original_turned_90_degrees(
    evidence: tuple[Path, list[str]],
) -> None:
    dest, _ = evidence
    with Image.open(dest / "camera" / "IMG_0003.jpg") as img:
        turned = img.convert("RGB").transpose(Image.Transpose.ROTATE_90)
    with Image.open(dest / "copies" / "IMG_0003_rot90.jpg") as copy:
        assert copy.size == (1200, 1600) == turned.size
        diff = np.abs(np.asarray(copy.convert("RGB"), int) - np.asarray(turned, int))
    assert diff.mean() < 3  # one JPEG generation away from exact
    # and it is not the mirror image: the other way round is far off
    other = np.asarray(turned.transpose(Image.Transpose.ROTATE_180), int)
    assert np.abs(np.asarray(copy.convert("RGB"), int) - other).mean() > 10


def test_rotation_is_exact_before_jpeg_encoding(evidence: tuple[Path, list[str]]) -> None:
    dest, _ = evidence
    with Image.open(dest / "camera" / "IMG_0003.jpg") as img:
        rgb = img.convert("RGB")
    turned = rgb.transpose(Image.Transpose.ROTATE_90)
    buf = io.BytesIO()
    turned.save(buf, "PNG")
    assert np.array_equal(_pixels(buf.getvalue()), np.rot90(np.asarray(rgb)))


def test_mirrored_copy_is_the_original_flipped(evidence: tuple[Path, list[str]]) -> None:
    dest, _ = evidence
    original = _pixels(dest / "camera" / "IMG_0004.jpg")
    copy = _pixels(dest / "copies" / "IMG_0004_mirror.jpg")
    assert copy.shape == original.shape
    assert np.abs(copy.astype(int) - original[:, ::-1].astype(int)).mean() < 3


def test_png_conversion_is_lossless(evidence: tuple[Path, list[str]]) -> None:
    dest, _ = evidence
    original = _pixels(dest / "camera" / "IMG_0006.jpg")
    assert np.array_equal(_pixels(dest / "copies" / "IMG_0006.png"), original)


def test_resized_and_webp_copies_stay_close(evidence: tuple[Path, list[str]]) -> None:
    dest, _ = evidence
    with Image.open(dest / "camera" / "IMG_0001.jpg") as img:
        half = np.asarray(img.convert("RGB").resize((800, 600), Image.Resampling.LANCZOS), int)
    assert np.abs(_pixels(dest / "copies" / "IMG_0001_half.jpg").astype(int) - half).mean() < 3
    webp = _pixels(dest / "copies" / "IMG_0005.webp").astype(int)
    assert np.abs(webp - _pixels(dest / "camera" / "IMG_0005.jpg").astype(int)).mean() < 12


# ---------------------------------------------------------------------- archives


def test_zip_holds_an_album_with_one_identical_camera_copy(
    evidence: tuple[Path, list[str]],
) -> None:
    dest, _ = evidence
    with zipfile.ZipFile(dest / "shared" / "holiday.zip") as archive:
        assert archive.testzip() is None
        assert archive.namelist() == [
            "album/",
            "album/sunset.jpg",
            "album/tiles.jpg",
            "album/favourite.jpg",
        ]
        assert list(demo.ZIP_MEMBERS) == archive.namelist()
        assert archive.getinfo("album/").is_dir()
        members = {n: archive.read(n) for n in archive.namelist() if not n.endswith("/")}
    assert members["album/favourite.jpg"] == (dest / "camera" / "IMG_0002.jpg").read_bytes()
    camera = set(_digests(dest / "camera").values())
    for name in ("album/sunset.jpg", "album/tiles.jpg"):
        assert hashlib.sha256(members[name]).hexdigest() not in camera
        with Image.open(io.BytesIO(members[name])) as img:
            assert img.format == "JPEG"
            img.load()


def test_tar_gz_holds_two_new_pictures(evidence: tuple[Path, list[str]]) -> None:
    dest, _ = evidence
    with tarfile.open(dest / "shared" / "more.tar.gz", "r:gz") as archive:
        infos = archive.getmembers()
        assert [i.name for i in infos] == ["more/garden.jpg", "more/fractal.png"]
        assert list(demo.TAR_MEMBERS) == [i.name for i in infos]
        assert all(i.isfile() and i.mtime == demo.FIXED_MTIME for i in infos)
        formats = []
        for info in infos:
            member = archive.extractfile(info)
            assert member is not None
            with Image.open(io.BytesIO(member.read())) as img:
                img.load()
                formats.append(img.format)
    assert formats == ["JPEG", "PNG"]


# -------------------------------------------------------------------------- misc


def test_truncated_jpeg_does_not_load_fully(evidence: tuple[Path, list[str]]) -> None:
    dest, _ = evidence
    broken = dest / "misc" / "broken.jpg"
    assert broken.read_bytes()[:2] == b"\xff\xd8"
    assert not broken.read_bytes().endswith(b"\xff\xd9")
    with Image.open(broken) as img:
        assert img.format == "JPEG"  # the header is intact...
        with pytest.raises(OSError):
            img.load()  # ...the picture data is not


def test_renamed_png_opens_as_png(evidence: tuple[Path, list[str]]) -> None:
    dest, _ = evidence
    invoice = dest / "misc" / "invoice.jpg"
    assert invoice.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(invoice) as img:
        assert img.format == "PNG"
        img.load()


def test_notes_and_empty_file(evidence: tuple[Path, list[str]]) -> None:
    dest, _ = evidence
    assert (dest / "misc" / "notes.txt").read_text(encoding="utf-8") == demo.NOTES_TEXT
    assert (dest / "misc" / "empty.bin").stat().st_size == 0


# ------------------------------------------------------------------------ runner


class _Recorder:
    def __init__(self, fail_at: int | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail_at = fail_at

    def __call__(self, cmd: list[str], check: bool = False) -> subprocess.CompletedProcess[str]:
        self.calls.append(cmd)
        code = 2 if self.fail_at == len(self.calls) - 1 else 0
        return subprocess.CompletedProcess(cmd, code)


def test_main_runs_the_cli_steps_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "demo"
    old_home = root / "home"
    old_home.mkdir(parents=True)
    (old_home / "stale").write_text("old")
    recorder = _Recorder()
    monkeypatch.setattr(demo.subprocess, "run", recorder)

    assert demo.main([str(root)]) == 0

    home, evidence = str(root / "home"), str(root / "evidence")
    base = [sys.executable, "-m", "safeguard", "--home", home]
    hashsets = root / "hashsets"
    assert recorder.calls == [
        [*base, "hashset", "import", str(hashsets / "demo-vics.json"), "--name", "demo-vics",
         "--version", "2026-11", "--supplier", "Safeguard demo (benign)"],
        [*base, "hashset", "import", str(hashsets / "demo-known-good.txt"), "--name",
         "demo-known-good", "--purpose", "known_good"],
        [*base, "case", "create", "demo"],
        [*base, "scan", evidence, "--case", "demo"],
        [*base, "case", "show", "demo"],
        [*base, "report", "demo", "--format", "html", "--out",
         str(root / "reports" / "demo-report.html")],
        [*base, "report", "demo", "--format", "pdf", "--out",
         str(root / "reports" / "demo-report.pdf")],
    ]
    assert not old_home.exists()
    assert (
        sorted(
            p.relative_to(root / "evidence").as_posix()
            for p in (root / "evidence").rglob("*")
            if p.is_file()
        )
        == EXPECTED_FILES
    )
    out = capsys.readouterr().out
    assert "Where to look" in out
    assert f"case report:      {root / 'reports' / 'demo-report.html'} (and .pdf)" in out
    assert str(root / "home" / "cases" / "demo") in out
    assert f"--home {home} items demo --json" in out
    assert f"--home {home} audit verify demo" in out
    assert evidence in out


def test_main_stops_at_the_first_failing_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    recorder = _Recorder(fail_at=1)
    monkeypatch.setattr(demo.subprocess, "run", recorder)
    monkeypatch.setattr(demo, "build_demo_evidence", lambda dest: [])
    monkeypatch.setattr(demo_library, "build_demo_hashsets",
                        lambda evidence, dest: [dest / "v.json", dest / "g.txt"])

    assert demo.main([str(tmp_path / "demo")]) == 1

    assert len(recorder.calls) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("demo: step failed (exit 2): safeguard hashset import ")


def test_main_refuses_a_folder_holding_other_things(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "important.db").write_text("keep me")
    recorder = _Recorder()
    monkeypatch.setattr(demo.subprocess, "run", recorder)

    assert demo.main([str(tmp_path)]) == 1

    assert recorder.calls == []
    assert (tmp_path / "important.db").read_text() == "keep me"
    assert "important.db" in capsys.readouterr().err


# ------------------------------------------------------------------ demo hash sets


def test_demo_hash_sets_match_exact_pdq_and_known_good(
    evidence: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """What `make demo` shows: the VICS set and the known-good list, imported and matched."""
    from safeguard.cli import main

    dest, _ = evidence
    vics, good = demo_library.build_demo_hashsets(dest, tmp_path / "hashsets")
    home = str(tmp_path / "home")
    assert main(["--home", home, "hashset", "import", str(vics), "--name", "demo-vics"]) == 0
    assert main(["--home", home, "hashset", "import", str(good), "--name", "good",
                 "--purpose", "known_good"]) == 0
    assert main(["--home", home, "case", "create", "demo"]) == 0
    assert main(["--home", home, "scan", str(dest), "--case", "demo", "--json"]) == 0
    from safeguard.config import load_settings
    from safeguard.store.cases import open_case
    from safeguard.store.summary import iter_items

    matched = {
        r["path"]: sorted({(m["set"], "pdq" if m["signal"] == "pdq" else "exact",
                            m["category_given"]) for m in r["matches"]})
        for r in iter_items(open_case(load_settings(Path(home)), "demo")) if r["matches"]
    }
    vics_exact = [("demo-vics", "exact", "1"), ("demo-vics", "pdq", "1")]
    assert matched == {
        "camera/IMG_0002.jpg": vics_exact,
        "camera/IMG_0003.jpg": [("demo-vics", "exact", "2"), ("demo-vics", "pdq", "2")],
        "camera/IMG_0004.jpg": vics_exact,
        "camera/IMG_0005.jpg": [("demo-vics", "pdq", "3")],
        "copies/IMG_0002_q40.jpg": [("demo-vics", "pdq", "1")],
        "copies/IMG_0003_rot90.jpg": [("demo-vics", "pdq", "2")],
        "copies/IMG_0004_mirror.jpg": [("demo-vics", "pdq", "1")],
        "copies/IMG_0005.webp": [("demo-vics", "pdq", "3")],
        "shared/holiday.zip!album/favourite.jpg": vics_exact,
        "misc/notes.txt": [("good", "exact", None)],
        # pictures inside other files: a thumbnail, an attachment, a picture in a PDF
        "cache/thumbcache_256.db!5afe6a4d00000001.jpg": [("demo-vics", "pdq", "1")],
        "mail/holiday.eml!1-walk.jpg": [("demo-vics", "pdq", "2")],
        "documents/trip-report.pdf!page-0001/obj-0006.jpg": vics_exact,  # stored as it is
    }
    # the report says where each picture inside another file was found
    assert main(["--home", home, "report", "demo", "--format", "html", "--out",
                 str(tmp_path / "report.html")]) == 0
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert ("found as: thumbnail in cache thumbcache_256.db: cache id 5afe6a4d00000001, "
            "size 256") in report
    assert ("found as: embedded in document trip-report.pdf: page 1, object 6") in report
    # and the AI toolchain: the installation, its models, the LoRA's training set, the chain
    assert "installation AUTOMATIC1111 at ai/stable-diffusion-webui (2 record files)" in report
    assert ("training set ai/training/img: 3 pictures, 3 captions; used by "
            "demo-lighthouse.safetensors") in report
    assert ("<td>lora demo-lighthouse</td><td class=\"path\">ai/stable-diffusion-webui/models/"
            "Lora/demo-lighthouse.safetensors</td><td>hash</td>") in report
    assert ("found as: attachment of e-mail holiday.eml: subject “Holiday pictures (demo)”, "
            "from Alex Demo &lt;alex@example.org&gt;, to Sam Demo &lt;sam@example.org&gt;, "
            "sent Mon, 20 May 2024 12:00:00 +0000") in report
    verdicts = {r["path"]: r["verdict"]
                for r in iter_items(open_case(load_settings(Path(home)), "demo"))
                if r["verdict"] not in (None, "unknown")}
    assert verdicts == {**{f"camera/IMG_000{i}.jpg": "camera_original" for i in range(1, 7)},
                        "shared/holiday.zip!album/favourite.jpg": "camera_original",
                        "documents/trip-report.pdf!page-0001/obj-0006.jpg": "camera_original",
                        "generated/render_0001.png": "ai_indicated",
                        **{f"ai/stable-diffusion-webui/outputs/txt2img-images/2024-05-20/"
                           f"0000{n}-{seed}.png": "ai_indicated"
                           for n, seed in ((1, 91), (2, 92))}}
