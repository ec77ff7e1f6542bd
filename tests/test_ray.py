"""``headpose predict --engine ray``: the same rows as the local engine, a worker that dies once, an input that
kills its worker every time, resume.

One local Ray instance (2 CPUs, no dashboard) for the module. The input: four ../shared/data/aflw2000 photos
(symlinks, read in place), a 10-frame clip made from the BIWI frames (cut in chunks of 4 frames, so three
video items), an unreadable image, a broken video and a text file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import AFLW2000, biwi_frames, json_rows, write_video

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
pq = pytest.importorskip("pyarrow.parquet")

from headpose.cli import main  # noqa: E402
from headpose.engine_ray import (  # noqa: E402
    CRASH_AFTER_WRITE_ENV,
    CRASH_ENV,
    CRASH_ON_ENV,
    MAX_TRIES,
    WORKER_DIED,
    file_sha256,
    predict_ray,
)
from headpose.errors import HeadposeError  # noqa: E402
from headpose.predict import predict_source  # noqa: E402

PHOTOS = ("image00002", "image00006", "image00010", "image00014")
CHUNK = 4  # frames per video item: the 10-frame clip spreads over three items


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory, pose_model) -> Path:
    src = tmp_path_factory.mktemp("ray_src") / "in"
    (src / "photos").mkdir(parents=True)
    for name in PHOTOS:
        (src / "photos" / f"{name}.jpg").symlink_to(AFLW2000 / f"{name}.jpg")
    files, images, _ = biwi_frames()
    write_video(src / "clip.mp4", images, fps=10)
    (src / "photos" / "broken.png").write_bytes(files[0].read_bytes()[:2000])  # truncated PNG: unreadable
    (src / "bad.mp4").write_bytes(b"not a video")
    (src / "notes.txt").write_text("not an image")
    return src


@pytest.fixture(scope="module")
def local(folder, tmp_path_factory, pose_model):
    """The local engine's report and summary on the folder."""
    out = tmp_path_factory.mktemp("ray_local") / "local.jsonl"
    summary = predict_source(folder, model=pose_model, json_out=out, quiet=True)
    return json_rows(out), summary


def assert_same_rows(rows, expected):
    assert [(r["source"], r["frame"]) for r in rows] == [(r["source"], r["frame"]) for r in expected]
    for r, e in zip(rows, expected):
        assert set(r) == set(e)
        if e["box"] is None:
            assert r["box"] is r["yaw"] is r["pitch"] is r["roll"] is None
            continue
        np.testing.assert_allclose(r["box"], e["box"], atol=0.011)
        np.testing.assert_allclose([r["yaw"], r["pitch"], r["roll"]], [e["yaw"], e["pitch"], e["roll"]], atol=0.01)
        assert abs(r["score"] - e["score"]) < 2e-4


def same_summary(s, local_summary):
    keys = ("images", "videos", "frames", "faces", "no_face")
    assert {k: s[k] for k in keys} == {k: local_summary[k] for k in keys}
    assert sorted(s["skipped"]) == sorted(local_summary["skipped"])


def test_rows_equal_local_engine(local_ray, folder, local, pose_model, tmp_path):
    expected, local_summary = local
    assert local_summary["frames"] == 10 and local_summary["images"] == 4 and local_summary["faces"] >= 14
    out, store = tmp_path / "ray.jsonl", tmp_path / "rows"
    s = predict_ray([folder], model=pose_model, json_out=out, parquet=store, chunk_frames=CHUNK, quiet=True)
    assert_same_rows(json_rows(out), expected)
    same_summary(s, local_summary)
    assert {Path(n).name: r for n, r in s["skipped"]} == {"broken.png": "unreadable image", "bad.mp4": "broken video",
                                                          "notes.txt": "not an image or video"}
    # The Parquet rows: one per face (a face-less image or frame: one row of nulls), with the model's hash.
    table = pq.read_table(store)  # the whole folder, as pandas.read_parquet(DIR) reads it
    assert table.num_rows == len(expected)
    assert table.column_names == ["source", "frame", "face", "time_s", "box", "score", "yaw", "pitch", "roll",
                                  "model_sha256"]
    rows = table.to_pylist()
    assert {r["model_sha256"] for r in rows} == {file_sha256(pose_model)}
    clip = sorted((r for r in rows if r["source"].endswith("clip.mp4")), key=lambda r: r["frame"])
    assert [r["frame"] for r in clip] == list(range(10))
    np.testing.assert_allclose([r["time_s"] for r in clip], np.arange(10) / 10)
    assert all(r["time_s"] is None for r in rows if r["source"].endswith(".jpg"))
    assert list(store.glob("part-*.parquet")) and not list(tmp_path.rglob(".tmp-*"))


def test_worker_crash_once_loses_no_rows(local_ray, folder, local, pose_model, tmp_path, monkeypatch):
    """The first actor to get a batch exits its process (os._exit) in the middle of the batch; Ray restarts it
    and retries the batch, and every row is there."""
    flag = tmp_path / "crashed"
    monkeypatch.setenv(CRASH_ENV, str(flag))
    out = tmp_path / "ray.jsonl"
    s = predict_ray([folder], model=pose_model, json_out=out, chunk_frames=CHUNK, quiet=True)
    assert flag.exists()  # a worker did die
    assert_same_rows(json_rows(out), local[0])
    same_summary(s, local[1])


def test_worker_crash_after_writing_writes_no_row_twice(local_ray, folder, local, pose_model, tmp_path, monkeypatch):
    """The first actor to write a batch's rows exits before returning the batch: Ray retries the batch, which finds
    its rows written and does not write them again (one row per face in the store, as without the crash)."""
    flag = tmp_path / "crashed"
    monkeypatch.setenv(CRASH_AFTER_WRITE_ENV, str(flag))
    out, store = tmp_path / "ray.jsonl", tmp_path / "rows"
    s = predict_ray([folder], model=pose_model, json_out=out, parquet=store, chunk_frames=CHUNK, batch_size=4,
                    quiet=True)
    assert flag.exists()  # a worker did die, after writing
    assert_same_rows(json_rows(out), local[0])
    same_summary(s, local[1])
    assert pq.read_table(store).num_rows == len(local[0])
    items = [it for p in store.glob("part-*.parquet") for it in part_items(p)]
    assert len(items) == len(set(items))  # no item in two part files


def test_input_that_kills_its_worker_is_skipped(local_ray, folder, local, pose_model, tmp_path, monkeypatch):
    """An input whose worker dies every time (as a decoder crash would): tried MAX_TRIES times, then reported as
    skipped; the run ends, and every other row is there, including those of the same batch."""
    poison = "image00006"
    monkeypatch.setenv(CRASH_ON_ENV, poison)
    out, store = tmp_path / "ray.jsonl", tmp_path / "rows"
    s = predict_ray([folder], model=pose_model, json_out=out, parquet=store, chunk_frames=CHUNK, batch_size=4,
                    quiet=True)
    expected, local_summary = local
    assert_same_rows(json_rows(out), [r for r in expected if poison not in r["source"]])
    assert s["images"] == local_summary["images"] - 1 and s["frames"] == local_summary["frames"]
    assert sorted(s["skipped"]) == sorted(local_summary["skipped"] + [(str(folder / "photos" / f"{poison}.jpg"),
                                                                       WORKER_DIED)])
    assert (store / ".tries").exists() and MAX_TRIES == 3
    # A re-run tries it again (the counts are per run): still dead, still reported, nothing else redone.
    parts = {p: p.stat().st_mtime_ns for p in store.glob("part-*.parquet")}
    s = predict_ray([folder], model=pose_model, parquet=store, chunk_frames=CHUNK, quiet=True)
    assert [n for n, r in s["skipped"] if r == WORKER_DIED] == [str(folder / "photos" / f"{poison}.jpg")]
    assert {p: p.stat().st_mtime_ns for p in parts} == parts


def part_items(part: Path) -> list[tuple[str, int]]:
    """(source, first frame) of the items a part file of the store holds."""
    return [(s, start) for s, start, _ in json.loads(pq.read_schema(part).metadata[b"headpose_items"])]


def test_resume_skips_sources_already_written(local_ray, folder, local, pose_model, tmp_path):
    store, out = tmp_path / "rows", tmp_path / "ray.jsonl"
    photos = sorted(str(p) for p in (folder / "photos").glob("image*.jpg"))
    first = predict_ray(photos[:2], model=pose_model, parquet=store, chunk_frames=CHUNK, quiet=True)
    assert (first["images"], first["resumed"]) == (2, 0)
    parts = {p: p.stat().st_mtime_ns for p in store.glob("part-*.parquet")}
    s = predict_ray([folder], model=pose_model, parquet=store, chunk_frames=CHUNK, quiet=True)
    assert s["resumed"] == 2
    assert {p: p.stat().st_mtime_ns for p in parts} == parts  # the first run's files were not rewritten
    # As if a run had been killed before the clip's middle item was written: only that file's items are redone.
    clip = str(folder / "clip.mp4")
    middle = [p for p in store.glob("part-*.parquet") if (clip, CHUNK) in part_items(p)]
    assert len(middle) == 1
    lost = len(part_items(middle[0]))
    middle[0].unlink()
    kept = {p: p.stat().st_mtime_ns for p in store.glob("part-*.parquet")}
    s = predict_ray([folder], model=pose_model, json_out=out, parquet=store, chunk_frames=CHUNK, quiet=True)
    assert s["resumed"] == 4 + 3 - lost  # 4 photos, 3 video items (the unreadable image is tried each time)
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    assert_same_rows(json_rows(out), local[0])
    same_summary(s, local[1])
    # Other settings are refused rather than mixed into the same folder.
    with pytest.raises(HeadposeError, match="other settings"):
        predict_ray([folder], model=pose_model, parquet=store, chunk_frames=CHUNK, detector="short", quiet=True)


def test_cli_errors_one_line(folder, tmp_path, capsys):
    bad = folder / "photos" / "broken.png"
    for args, expected in (
        ([str(folder), "--engine", "ray"], "--json OUT.jsonl and/or --parquet DIR"),
        ([str(tmp_path / "missing"), "--engine", "ray", "--json", str(tmp_path / "a.jsonl")], "missing"),
        ([str(bad), "--engine", "ray", "--json", str(tmp_path / "a.jsonl")], f"{bad}: unreadable image"),
        ([str(folder), "--engine", "ray", "--json", str(tmp_path / "a.jsonl"), "--out", str(tmp_path)], "--out"),
        ([str(folder), str(folder), "--json", str(tmp_path / "a.jsonl")], "one source"),
        ([str(folder), "--engine", "ray", "--json", str(tmp_path / "a.jsonl"), "--address", "127.0.0.1:1"],
         "--address 127.0.0.1:1: no Ray cluster answers there"),
    ):
        assert main(["predict", *args]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and expected in err, err
    assert not (tmp_path / "a.jsonl").exists()
