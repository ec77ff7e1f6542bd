"""Synthetic data: meshes from photos, renders at known angles, labels checked three ways.

1. Geometry: orthographic Procrustes of the projected vertices against the mesh recovers every label of the
   original grid within 1° (and a uv-coded texture shows the rasteriser draws each vertex where projected).
2. Appearance: the seed SSR-Net-MT (trained on 300W-LP, the label convention) reads renders within ±60° yaw
   with a positive correlation on every angle.
3. Bad input is named and skipped; the whole chain mesh → render → prepare folder → .npz runs on real photos.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import DATA, SEED_TFLITE

from headpose.errors import HeadposeError
from headpose.geometry import geodesic_deg, matrix_to_ypr, ortho_pose, ypr_to_matrix
from headpose.synth import grid
from headpose.synth.canonical import mirror, template
from headpose.synth.obj import read_obj, write_obj
from headpose.synth.render import prepare, project, read_label, render, render_dir

FACES = DATA / "faces"
PHOTOS = ["100_1_0_20170112213001988.jpg", "10_0_0_20170110220403810.jpg", "101_0_0_20170112213500903.jpg",
          "105_1_0_20170112213507183.jpg", "10_0_0_20161220222308131.jpg"]


def _link_photos(folder: Path, names=PHOTOS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        os.symlink(FACES / n, folder / n)  # read in place, never copied
    return folder


@pytest.fixture(scope="module")
def meshes(tmp_path_factory, shared_data) -> Path:
    """NAME.png + NAME.obj for a handful of real photos (synth mesh)."""
    from headpose.synth.mesh import mesh_dir

    root = tmp_path_factory.mktemp("synth")
    photos = _link_photos(root / "photos")
    out = root / "meshes"
    summary = mesh_dir(photos, out, workers=1, quiet=True)
    assert summary["meshes"] == len(PHOTOS), summary["skipped"]
    return out


# --- grid ----------------------------------------------------------------------------------------------


def test_parse_angles():
    assert grid.parse_angles("-90:90:10") == [float(v) for v in range(-90, 91, 10)]
    assert grid.parse_angles("0:1:0.5") == [0.0, 0.5, 1.0]
    assert grid.parse_angles("30:-30:-30") == [30.0, 0.0, -30.0]
    assert grid.parse_angles("-45, -30,0,30,45") == [-45.0, -30.0, 0.0, 30.0, 45.0]
    for bad in ("", "a,b", "1:2", "0:10:0", "0:10:-1", "1:2:3:4", "nan"):
        with pytest.raises(ValueError):
            grid.parse_angles(bad)
    poses = grid.grid_poses()
    assert len(poses) == 19 * 5 * 5 and (-90.0, -45.0, -45.0) in poses and (90.0, 45.0, 45.0) in poses
    r = grid.random_poses(2000, np.random.default_rng(0))
    a = np.abs(np.array(r))
    assert a.max(0).tolist() <= [90, 60, 45] and (a.max(0) > [85, 55, 40]).all()
    assert grid.format_angle(-30.0) == "-30" and grid.format_angle(12.5) == "12.5"


def test_cli_angle_flags():
    from headpose.cli import build_parser

    a = build_parser().parse_args(["synth", "render", "--image_dir", "i", "--obj_dir", "o", "--output_directory",
                                   "x", "--yaw=-30:30:30", "--roll", "5"])  # leading minus: use --yaw=
    assert a.yaw == [-30.0, 0.0, 30.0] and a.roll == [5.0] and a.pitch is None and a.out == "x"


# --- geometry ------------------------------------------------------------------------------------------


def test_matrix_to_ypr_inverts_ypr_to_matrix():
    rng = np.random.default_rng(1)
    for y, p, r in rng.uniform([-89, -80, -80], [89, 80, 80], size=(200, 3)):
        np.testing.assert_allclose(matrix_to_ypr(ypr_to_matrix(y, p, r)), [y, p, r], atol=1e-6)
    # convention: positive yaw turns the nose to the image's left, positive pitch up (y is down)
    nose = ypr_to_matrix(30, 0, 0) @ [0, 0, 1]
    assert nose[0] < 0
    assert (ypr_to_matrix(0, 30, 0) @ [0, 0, 1])[1] < 0


def test_template_is_symmetric_and_frontal():
    t, m = template(), mirror()
    assert t.shape == (468, 3) and (m[m] == np.arange(468)).all()
    np.testing.assert_allclose(t[m] * [-1, 1, 1], t, atol=1e-3)
    assert t[1, 2] > t[33, 2] and t[1, 2] > t[263, 2]  # nose tip nearer the viewer than the eye corners
    assert t[10, 1] < t[1, 1] < t[152, 1]  # forehead above nose above chin (y down)


def test_labels_recovered_over_the_whole_grid(meshes, tmp_path):
    """Render the original grid; Procrustes of the projected vertices against the mesh gives the labels."""
    name = Path(PHOTOS[0]).stem
    out = tmp_path / "grid"
    summary = render_dir(meshes, meshes, out, size=96, workers=1, quiet=True)
    assert summary["images"] == len(PHOTOS) * 475 and not summary["skipped"]
    mesh = read_obj(meshes / f"{name}.obj")
    pm = prepare(mesh, cv2.imread(str(meshes / f"{name}.png")), 96)
    worst = worst_rot = 0.0
    txts = sorted((out / name).glob("*.txt"))
    assert len(txts) == 475
    for txt in txts:
        label, box = read_label(txt)
        stem = txt.stem.split("_")[-3:]
        assert [float(v) for v in stem] == label.tolist()  # file name and label agree
        xy, _ = project(pm, *label)
        _s, r, _t = ortho_pose(pm.vertices, xy)
        worst_rot = max(worst_rot, geodesic_deg(r, ypr_to_matrix(*label)))
        if abs(label[0]) < 90:  # at ±90° yaw pitch and roll turn about one axis: compare rotations only
            worst = max(worst, float(np.abs(matrix_to_ypr(r) - label).max()))
        face = xy[: mesh.face_vertices]
        np.testing.assert_allclose(box, [*face.min(0), *face.max(0)], atol=0.06)
    assert worst < 1.0 and worst_rot < 1.0, (worst, worst_rot)


def test_raster_draws_each_vertex_where_projected(meshes):
    """A uv-coded texture: the colour drawn at a visible vertex's projection decodes to that vertex's uv."""
    name = Path(PHOTOS[1]).stem
    mesh = read_obj(meshes / f"{name}.obj")
    n = 256
    u, v = np.meshgrid(np.arange(n), np.arange(n))
    tex = np.stack([u, v, np.zeros_like(u)], -1).astype(np.uint8)  # B = column, G = row
    pm = prepare(mesh, tex, 256)
    nose, cheek_xneg, cheek_xpos = 1, 205, 425  # cheeks on the image's left / right in a frontal view
    assert template()[cheek_xneg, 0] < 0 < template()[cheek_xpos, 0]
    for (yaw, pitch, roll), idx in [((0, 0, 0), nose), ((30, 20, -10), nose), ((-40, -30, 30), nose),
                                    ((40, 0, 0), cheek_xpos), ((-40, 0, 0), cheek_xneg)]:
        img, _, xy = render(pm, yaw, pitch, roll)
        c, r = np.round(xy[idx]).astype(int)
        expect = np.array([mesh.uv[idx, 0] * (n - 1), (1 - mesh.uv[idx, 1]) * (n - 1)])  # vt i ↔ v i
        got = img[r - 1 : r + 2, c - 1 : c + 2, :2].reshape(-1, 2).astype(float)
        assert np.abs(got - expect).sum(1).min() < 4.0, (yaw, pitch, roll, idx, got, expect)


def test_zbuffer_nearer_triangle_wins(tmp_path):
    from headpose.synth.raster import rasterize

    xy = np.array([[2, 2], [30, 2], [2, 30], [2, 2], [30, 2], [2, 30]], float)
    z = np.array([0, 0, 0, 1, 1, 1], float)
    faces = np.array([[3, 4, 5], [0, 1, 2]])  # near one first, then the far one must not overwrite it
    uv = np.array([[0, 0], [0, 0], [0, 0], [1, 0], [1, 0], [1, 0]], float)
    tex = np.array([[[255, 0, 0], [0, 0, 255]]], np.uint8)
    img, mask = rasterize(xy, z, faces, faces, uv, tex, (32, 32))
    assert mask[5, 5] and not mask[31, 31]
    assert img[5, 5].tolist() == [0, 0, 255]


# --- seed model ----------------------------------------------------------------------------------------


def test_seed_model_agrees_with_labels(meshes, tmp_path):
    from headpose.detect import crop_face
    from headpose.runtime import open_model

    if not SEED_TFLITE.exists():
        pytest.fail(f"seed model not found at {SEED_TFLITE}")
    out = tmp_path / "seed"
    render_dir(meshes, meshes, out, size=192, yaw=grid.parse_angles("-60:60:20"), pitch=[-30.0, 0.0, 30.0],
               roll=[-30.0, 0.0, 30.0], background="photo", workers=1, quiet=True)
    crops, labels = [], []
    for txt in sorted(out.glob("*/*.txt")):
        label, box = read_label(txt)
        crops.append(crop_face(cv2.imread(str(txt.with_suffix(".png"))), box, 0.4, 64))
        labels.append(label)
    pred = open_model(SEED_TFLITE)(np.array(crops))
    labels = np.array(labels)
    corr = [np.corrcoef(pred[:, i], labels[:, i])[0, 1] for i in range(3)]
    mae = np.abs(pred - labels).mean(0)
    print(f"seed on {len(labels)} renders: corr yaw/pitch/roll {np.round(corr, 3)}, MAE {np.round(mae, 1)}")
    assert min(corr) > 0.7, corr
    assert mae.max() < 15, mae  # measured 11.5 / 10.5 / 7.8: photo backgrounds, 40° combined poses


# --- bad input -----------------------------------------------------------------------------------------


def _quad_mesh(path: Path, extra: str = ""):
    path.write_text("v 0 0 0\nv 1 0 0\nv 1 1 0.2\nv 0 1 0.2\nvt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\n"
                    "f 1/1 2/2 3/3 4/4\n" + extra)


def test_obj_reader(tmp_path):
    _quad_mesh(tmp_path / "q.obj")
    m = read_obj(tmp_path / "q.obj")
    assert m.faces.shape == (2, 3) and m.face_uv.tolist() == m.faces.tolist()
    write_obj(tmp_path / "w.obj", m.vertices, m.uv, m.faces, face_vertices=4, comment="x")
    m2 = read_obj(tmp_path / "w.obj")
    np.testing.assert_allclose(m2.vertices, m.vertices)
    assert m2.face_vertices == 4 and m2.faces.tolist() == m.faces.tolist()


def test_bad_input_is_named_and_skipped(tmp_path, capsys):
    imgs, objs = tmp_path / "img", tmp_path / "obj"
    imgs.mkdir()
    objs.mkdir()
    tex = np.full((32, 32, 3), 128, np.uint8)
    for name in ("good", "novt", "range", "degenerate", "notex_file"):
        cv2.imwrite(str(imgs / f"{name}.png"), tex)
    (imgs / "broken.png").write_bytes(b"not a png at all")
    _quad_mesh(objs / "good.obj")
    _quad_mesh(objs / "broken.obj")
    (objs / "novt.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    (objs / "range.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/1 7/1\n")
    (objs / "degenerate.obj").write_text("v 0 0 0\nv 1 1 1\nv 2 2 2\nvt 0 0\nvt 1 1\nf 1/1 2/2 3/2\n")
    (objs / "orphan.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/1 3/1\n")
    s = render_dir(imgs, objs, tmp_path / "out", size=32, yaw=[0.0, 30.0], pitch=[0.0], roll=[0.0], workers=2)
    assert s["images"] == 2 and (tmp_path / "out/good/good_30_0_0.png").exists()
    errs = dict(s["skipped"])
    assert set(errs) == {"broken", "novt", "range", "degenerate", "orphan"}
    assert "broken.png" in errs["broken"] and "does not load" in errs["broken"]
    assert "novt.obj" in errs["novt"] and "texture" in errs["novt"]
    assert "range.obj" in errs["range"] and "out of range" in errs["range"]
    assert "degenerate.obj" in errs["degenerate"] and "degenerate" in errs["degenerate"]
    assert "orphan.obj" in errs["orphan"] and "no texture" in errs["orphan"]
    assert "skipped 5" in capsys.readouterr().err
    for name in errs:
        assert name in (tmp_path / "out/render_skipped.txt").read_text()
    with pytest.raises(HeadposeError, match="not a folder"):
        render_dir(tmp_path / "nope", objs, tmp_path / "out2")
    # The same grid again overwrites its own renders; another grid into the same folder is told of the first one's.
    assert render_dir(imgs, objs, tmp_path / "out", size=32, yaw=[0.0, 30.0], pitch=[0.0], roll=[0.0])["earlier"] == 0
    s = render_dir(imgs, objs, tmp_path / "out", size=32, yaw=[60.0], pitch=[0.0], roll=[0.0])
    assert s["images"] == 1 and s["earlier"] == 2 and "2 renders of an earlier run" in capsys.readouterr().err


def test_synth_mesh_cli_skips_photos_without_a_face(tmp_path, shared_data, capsys):
    """`headpose synth mesh` end to end through the CLI: a mesh per face photo, the others named and skipped."""
    from headpose.cli import main

    photos = _link_photos(tmp_path / "p", PHOTOS[:1])
    cv2.imwrite(str(photos / "blank.png"), np.full((200, 200, 3), 90, np.uint8))
    (photos / "junk.jpg").write_bytes(b"\xff\xd8 truncated")
    assert main(["synth", "mesh", "--images", str(photos), "--out", str(tmp_path / "m"), "--workers", "1"]) == 0
    stem = Path(PHOTOS[0]).stem
    made = sorted(p.name for p in (tmp_path / "m").iterdir() if p.suffix in (".obj", ".png"))
    assert made == [f"{stem}.obj", f"{stem}.png"]
    report = (tmp_path / "m/mesh_report.txt").read_text()
    assert "blank.png: no face" in report and "junk.jpg" in report
    m = read_obj(tmp_path / "m" / f"{stem}.obj")
    assert m.face_vertices == 468 and len(m.vertices) > 468 and m.uv.min() >= 0 and m.uv.max() <= 1
    assert main(["synth", "mesh", "--images", str(tmp_path / "none"), "--out", str(tmp_path / "m2")]) == 2
    assert "headpose: error:" in capsys.readouterr().err


# --- end to end ----------------------------------------------------------------------------------------


def test_mesh_render_prepare_end_to_end(meshes, tmp_path):
    """synth mesh (fixture) → synth render → prepare folder (BlazeFace crops) → .npz; and the known-box packer."""
    from headpose.cli import main
    from headpose.data.npz import load_npz
    from headpose.synth.pack import pack_renders

    renders = tmp_path / "renders"
    assert main(["synth", "render", "--image_dir", str(meshes), "--obj_dir", str(meshes), "--out", str(renders),
                 "--yaw=-60:60:30", "--pitch", "0,20", "--roll", "0", "--background", "blur", "--lighting", "0.5",
                 "--size", "160",
                 "--workers", "1"]) == 0
    n = 10 * len(PHOTOS)
    assert len(list(renders.glob("*/*.png"))) == n
    npz = tmp_path / "renders.npz"
    assert main(["prepare", "folder", "--src", str(renders), "--out", str(npz), "--workers", "1"]) == 0
    image, pose = load_npz(npz)
    assert image.shape[1:] == (64, 64, 3) and len(image) >= 0.9 * n
    assert (np.abs(pose[:, 0]) <= 60).all() and set(np.unique(pose[:, 1])) <= {0.0, 20.0}
    # random poses over the full range: the known-box packer keeps every one (BlazeFace misses profiles)
    rnd = tmp_path / "random"
    render_dir(meshes, meshes, rnd, size=128, random=8, background="photo", workers=1, quiet=True)
    for txt in rnd.glob("*/*.txt"):
        label, box = read_label(txt)
        assert (np.abs(label) <= [90, 60, 45]).all() and box is not None
    s = pack_renders(rnd, tmp_path / "random.npz", quiet=True)
    image, pose = load_npz(tmp_path / "random.npz")
    assert s["packed"] == len(image) == 8 * len(PHOTOS) and image.shape[1:] == (64, 64, 3)


def test_colour_cast_is_its_own_setting(meshes, tmp_path):
    """--colour-cast defaults to --lighting; 0 keeps the light but draws no cast (how the shipped model's
    renders were made), which changes the images' overall colour, not the poses or boxes."""
    import cv2

    common = dict(size=96, random=3, background="black", workers=1, quiet=True, lighting=0.6)
    render_dir(meshes, meshes, tmp_path / "default", **common)
    render_dir(meshes, meshes, tmp_path / "same", colour_cast=0.6, **common)
    render_dir(meshes, meshes, tmp_path / "nocast", colour_cast=0.0, **common)
    pngs = sorted(p.relative_to(tmp_path / "default") for p in (tmp_path / "default").glob("*/*.png"))
    assert len(pngs) == 3 * len(PHOTOS)
    ratios = []
    for rel in pngs:
        a, b, c = (cv2.imread(str(tmp_path / d / rel)).astype(float) for d in ("default", "same", "nocast"))
        assert (a == b).all()
        assert (tmp_path / "nocast" / rel.with_suffix(".txt")).read_text() == \
            (tmp_path / "default" / rel.with_suffix(".txt")).read_text()
        face = c.sum(axis=2) > 0
        ratios.append(a[face].mean(axis=0) / np.maximum(c[face].mean(axis=0), 1))
    ratios = np.array(ratios)  # per-channel gain of the cast: 1 ± 0.15 at strength 0.6 (more where it greys)
    assert np.abs(ratios - 1).max() > 0.03 and np.abs(ratios - 1).max() < 0.6
    with pytest.raises(HeadposeError, match="--colour-cast 2"):
        render_dir(meshes, meshes, tmp_path / "bad", colour_cast=2.0, **common)


def test_synth_verbs_fail_when_they_make_nothing(tmp_path, capsys):
    """A photo with no face gives no mesh: exit 1, as `prepare` when it packs nothing; an existing file as --out
    and a non-positive --random are one-line errors."""
    from headpose.cli import main

    cv2.imwrite(str(tmp_path / "wall.png"), np.full((200, 200, 3), 90, np.uint8))
    assert main(["synth", "mesh", "--images", str(tmp_path / "wall.png"), "--out", str(tmp_path / "m")]) == 1
    (tmp_path / "a_file").write_text("x")
    assert main(["synth", "mesh", "--images", str(tmp_path / "wall.png"), "--out", str(tmp_path / "a_file")]) == 2
    assert "--out" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["synth", "render", "--image_dir", str(tmp_path), "--obj_dir", str(tmp_path), "--out",
              str(tmp_path / "r"), "--random", "0"])
    assert "--random: expected 1 or more" in capsys.readouterr().err
