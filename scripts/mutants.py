#!/usr/bin/env python3
"""Mutation check: do the tests catch the bugs that matter?

Each named mutation below is a plausible bug (one sign, one axis order, one pixel, one comparison). For each, this
script applies it to a temporary copy of the repository (the real files are never edited), runs the tests that
are meant to catch it, and prints whether they did: ``killed`` (a test failed), ``survived`` (every test passed:
the suite misses this bug), ``error`` (the tests could not run), or ``stale`` (the code to mutate is no longer
there as written: update the mutation).

    python scripts/mutants.py                 # all mutations
    python scripts/mutants.py flip-keeps-roll crop-plus-one
    python scripts/mutants.py --list

The copy holds the files git tracks plus the untracked ones it does not ignore, as they are in the working tree;
``src`` of the copy goes first on PYTHONPATH (so the mutated package is the one imported, in subprocesses too) and
the tests read ``../shared`` in place through HEADPOSE_SHARED. First the chosen tests run once unmutated: they
must pass there, or the verdicts mean nothing (``--no-baseline`` skips this). A development tool, not part of CI.
Exit status 0 when every mutation was killed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CONV = "tests/test_conventions.py"
AUG = "tests/test_augment.py"


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str
    old: str  # must occur exactly once in the file
    new: str
    tests: tuple[str, ...]
    what: str


BIWI_TESTS = (f"{CONV}::test_biwi_bin_converted_exactly", "tests/test_data.py::test_biwi_crops_labels_are_converted")
FILTER_TESTS = (f"{CONV}::test_angle_filter_at_99_through_evaluate",
                f"{CONV}::test_angle_filter_at_99_through_training")
CROP_TESTS = (f"{CONV}::test_crop_of_non_square_box_matches_reference",)
ROTATION_TESTS = (f"{CONV}::test_roll_follows_in_plane_rotation",)
FLIP_TESTS = (AUG, "tests/test_geometry.py::test_flip_ypr_mirrors_the_drawn_axes")

MUTATIONS = [
    Mutation("biwi-roll-sign", "src/headpose/geometry.py",
             "roll = -math.atan2(r[1, 0], r[0, 0])", "roll = math.atan2(r[1, 0], r[0, 0])", BIWI_TESTS,
             "BIWI conversion: roll sign flipped"),
    Mutation("biwi-euler-order", "src/headpose/geometry.py",
             "return rot_z(r) @ rot_y(y) @ rot_x(p)", "return rot_x(p) @ rot_y(y) @ rot_z(r)", BIWI_TESTS,
             "BIWI conversion: Euler order Rx·Ry·Rz"),
    Mutation("facepose-roll-sign", "src/headpose/estimator.py",
             "float(f.score), y, p, r, f.keypoints", "float(f.score), y, p, -r, f.keypoints", ROTATION_TESTS,
             "predicted roll sign flipped in FacePose"),
    Mutation("estimator-mirrored-crops", "src/headpose/estimator.py",
             "crops = [crop_face(image, f.box, self.margin, self.size) for f in faces]",
             "crops = [crop_face(image, f.box, self.margin, self.size)[:, ::-1] for f in faces]",
             (*ROTATION_TESTS, f"{CONV}::test_yaw_sign_on_large_yaw_photos"),
             "crops mirrored inside HeadPoseEstimator"),
    Mutation("evaluate-no-filter", "src/headpose/evaluate.py",
             "keep = np.flatnonzero(angle_filter(poses))", "keep = np.arange(len(poses))", FILTER_TESTS[:1],
             "±99° filter removed from evaluate"),
    Mutation("train-no-filter", "src/headpose/train.py",
             "keep = np.flatnonzero(angle_filter(pose))", "keep = np.arange(len(pose))", FILTER_TESTS[1:],
             "±99° filter removed from the training set"),
    Mutation("limit-80", "src/headpose/data/npz.py",
             "ANGLE_LIMIT = 99.0", "ANGLE_LIMIT = 80.0", FILTER_TESTS, "angle filter at 80° instead of 99°"),
    Mutation("filter-strict", "src/headpose/data/npz.py",
             "<= limit).all(axis=1)", "< limit).all(axis=1)", FILTER_TESTS, "angle filter: <= became <"),
    Mutation("crop-not-square", "src/headpose/detect.py",
             "x0, y0, x1, y1 = square_box(box)", "x0, y0, x1, y1 = (float(v) for v in box[:4])", CROP_TESTS,
             "crop_face no longer squares the box"),
    Mutation("crop-plus-one", "src/headpose/detect.py",
             "X1, Y1 = round(x1 + margin * s), round(y1 + margin * s)",
             "X1, Y1 = round(x1 + margin * s) + 1, round(y1 + margin * s) + 1", CROP_TESTS,
             "crop_face: +1 px on the right and bottom"),
    Mutation("flip-keeps-roll", "src/headpose/geometry.py",
             "_MIRROR_SIGNS = (-1.0, 1.0, -1.0)", "_MIRROR_SIGNS = (-1.0, 1.0, 1.0)", FLIP_TESTS,
             "mirror rule (geometry.flip_ypr, used by augmentation): flip keeps roll"),
    Mutation("flip-negates-pitch", "src/headpose/geometry.py",
             "_MIRROR_SIGNS = (-1.0, 1.0, -1.0)", "_MIRROR_SIGNS = (-1.0, -1.0, -1.0)", FLIP_TESTS,
             "mirror rule (geometry.flip_ypr, used by augmentation): flip negates pitch too"),
    Mutation("flip-no-mirror", "src/headpose/augment.py",
             "img = img[:, ::-1]", "pass", (AUG,), "augmentation: flip changes labels, not pixels"),
    Mutation("rotation-label-inverted", "src/headpose/augment.py",
             "rotate_in_plane(poses[i], float(angle[i]))", "rotate_in_plane(poses[i], -float(angle[i]))", (AUG,),
             "augmentation: rotation label inverted"),
    Mutation("erase-every-crop", "src/headpose/augment.py",
             "hit = rng.random(n) < fraction", "hit = np.ones(n, bool)", (AUG,),
             "augmentation: every crop erased, whatever the fraction asked"),
    Mutation("erase-not-passed", "src/headpose/train.py", "erase=cfg.erase)", ")",
             ("tests/test_core.py::test_erase_setting_reaches_the_batches",),
             "training: the erase setting never reaches the augmentation"),
    Mutation("int8-fusion-quantised", "src/headpose/export.py",
             'FLOAT_OPS = ["DIV", "SUM", "MUL", "ADD", "SUB"]', "FLOAT_OPS = []",
             ("tests/test_core.py::test_int8_on_crops_not_used_for_calibration",),
             "int8 export with the fusion ops quantised"),
    Mutation("int8-every-layer", "src/headpose/export.py",
             "denylisted_nodes=float_nodes(names, float_layers))", "denylisted_nodes=[])",
             ("tests/test_core.py::test_int8_on_crops_not_used_for_calibration",),
             "int8 export ignores FLOAT_LAYERS (every convolution and dense layer int8)"),
    Mutation("int8-narrow-like-wide", "src/headpose/export.py",
             "return FLOAT_LAYERS_NARROW if model_width(model) < 1 else FLOAT_LAYERS", "return FLOAT_LAYERS",
             ("tests/test_core.py::test_int8_keeps_a_third_block_float_in_narrow_networks",),
             "int8 export keeps only two blocks float in the lite (half-width) network too"),
    Mutation("resume-replays-epoch-0", "src/headpose/train.py",
             "self.epoch = first_epoch - 1", "self.epoch = -1",
             ("tests/test_core.py::test_resumed_batches_continue_the_epochs",),
             "a resumed run's batches start again at epoch 0's order and augmentation"),
    Mutation("ray-unreadable-counts-as-death", "src/headpose/engine_ray.py",
             'todo = [i for i in range(n) if not (batch["kind"][i] == "image" and int(batch["n"][i]) == 0)]',
             "todo = list(range(n))", ("tests/test_ray.py::test_input_that_kills_its_worker_is_skipped",),
             "Ray engine: an unreadable image in a batch whose worker died is reported as a worker death"),
    Mutation("ray-given-up-unreported", "src/headpose/engine_ray.py",
             "if key not in done and tries_of(store, item_key(*key)) >= MAX_TRIES:",
             "if key not in done and tries_of(store, item_key(*key)) > MAX_TRIES:",
             ("tests/test_ray.py::test_input_that_kills_its_worker_is_skipped",),
             "Ray engine: an input given up after its worker died 3 times goes unreported"),
    Mutation("ray-retry-rewrites-written-batch", "src/headpose/engine_ray.py",
             "if part_path(self.store, list(items.values())).exists():", "if False:",
             ("tests/test_ray.py::test_worker_crash_after_writing_writes_no_row_twice",),
             "Ray engine: a batch retried after its worker wrote its rows and died is written again, item by item"),
    Mutation("ema-best-from-raw", "src/headpose/train.py",
             "raw = averaged_in(self.model)", "raw = None",
             ("tests/test_core.py::test_ema_saves_the_average_and_keeps_it_for_resume",),
             "--ema: validation and best.keras read the raw weights, not the moving average"),
    Mutation("ema-raw-not-restored", "src/headpose/train.py",
             "if raw is not None:  # back to the raw weights", "if False:  # back to the raw weights",
             ("tests/test_core.py::test_ema_saves_the_average_and_keeps_it_for_resume",),
             "--ema: the average stays in the model after validation, so training and last.keras go on from it"),
    Mutation("yaw-bins-drop-99", "src/headpose/evaluate.py",
             "which = np.clip(np.digitize(np.abs(yaw), edges) - 1, 0, len(edges) - 2)",
             "which = np.digitize(np.abs(yaw), edges) - 1",
             ("tests/test_core.py::test_error_by_yaw_bins_every_sample",),
             "error per bin of |yaw|: a sample at exactly ±99° falls outside the last bin"),
    Mutation("freeze-streams-bn-trains", "src/headpose/model.py",
             r'return [layer for layer in model.layers if re.fullmatch(r"[xs]_(sep|bn)\d+", layer.name)]',
             r'return [layer for layer in model.layers if re.fullmatch(r"[xs]_sep\d+", layer.name)]',
             ("tests/test_core.py::test_freeze_streams_trains_the_heads_only",),
             "--freeze-streams: the streams' batch norms keep training (their statistics and scales move)"),
    Mutation("as-bgr-passes-floats", "src/headpose/detect.py",
             "    elif image.dtype != np.uint8:", "    elif False:",
             ("tests/test_detect.py::test_image_arrays_of_other_types_convert_or_fail_clearly",),
             "a float image goes on to the detector unchecked (0..1 and 0..255 read alike)"),
    Mutation("resume-first-folder", "src/headpose/train.py",
             "        cfg.out = str(run)  #", "        pass  #",
             ("tests/test_cli_paths.py::test_train_config_flags_win_and_resume",),
             "--resume continues the folder the run was first written to, not the one named"),
    Mutation("train-over-a-run", "src/headpose/train.py",
             "    if held:", "    if False:",
             ("tests/test_cli_paths.py::test_train_config_flags_win_and_resume",),
             "a new run overwrites the checkpoints and history of the run already in its folder"),
]


def shared_dir() -> Path:
    return Path(os.environ.get("HEADPOSE_SHARED", ROOT.parent / "shared")).resolve()


def copy_repo(dst: Path) -> None:
    """The files git tracks and the untracked ones it does not ignore, as in the working tree."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, check=True).stdout.decode()
    for rel in sorted({p for p in out.split("\0") if p}):
        src = ROOT / rel
        if not src.is_file():  # deleted in the working tree, or a submodule
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst / rel)


def environment(copy: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(copy / "src"), *filter(None, [env.get("PYTHONPATH")])])
    env["HEADPOSE_SHARED"] = str(shared_dir())
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a restored file must never meet the mutant's cached bytecode
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("CUDA_VISIBLE_DEVICES", "")
    return env


def run_tests(copy: Path, env: dict, tests, timeout: int) -> tuple[int, str]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests]
    try:
        r = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, "timed out"
    lines = [line for line in (r.stdout + r.stderr).splitlines() if line.strip()]
    return r.returncode, lines[-1] if lines else ""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="mutations to run (default: all)")
    ap.add_argument("--list", action="store_true", help="list the mutations and exit")
    ap.add_argument("--no-baseline", action="store_true", help="skip the unmutated run of the tests")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per pytest run (default 900)")
    a = ap.parse_args(argv)
    if a.list:
        for m in MUTATIONS:
            print(f"{m.name:26} {m.what}  [{m.file}; {', '.join(m.tests)}]")
        return 0
    by_name = {m.name: m for m in MUTATIONS}
    unknown = [n for n in a.names if n not in by_name]
    if unknown:
        ap.error(f"unknown mutation(s) {', '.join(unknown)}; see --list")
    chosen = [by_name[n] for n in a.names] if a.names else MUTATIONS

    with tempfile.TemporaryDirectory(prefix="headpose-mutants-") as tmp:
        copy = Path(tmp) / "repo"
        copy_repo(copy)
        env = environment(copy)
        where = subprocess.run([sys.executable, "-c", "import headpose; print(headpose.__file__)"], env=env,
                               capture_output=True, text=True, cwd=copy).stdout.strip()
        if not where.startswith(str(copy)):
            print(f"the copy's package is not the one imported ({where}); cannot run", file=sys.stderr)
            return 2
        if not a.no_baseline:
            tests = list(dict.fromkeys(t for m in chosen for t in m.tests))
            t0 = time.perf_counter()
            rc, last = run_tests(copy, env, tests, a.timeout)
            print(f"baseline (unmutated copy, {len(tests)} test targets): {last} [{time.perf_counter() - t0:.0f} s]")
            if rc != 0:
                print("the tests fail without any mutation: fix that first", file=sys.stderr)
                return 2
        rows = []
        for m in chosen:
            path = copy / m.file
            text = path.read_text()
            t0 = time.perf_counter()
            if text.count(m.old) != 1:
                rows.append((m, "stale", f"{m.old!r} occurs {text.count(m.old)} times in {m.file}", 0.0))
                continue
            path.write_text(text.replace(m.old, m.new))
            try:
                rc, last = run_tests(copy, env, m.tests, a.timeout)
            finally:
                path.write_text(text)
            verdict = {0: "survived", 1: "killed"}.get(rc, "error")
            rows.append((m, verdict, last, time.perf_counter() - t0))
            print(f"  {m.name}: {verdict} ({last}) [{rows[-1][3]:.0f} s]", flush=True)

    w = max(len(m.name) for m, *_ in rows)
    print(f"\n{'mutation':<{w}}  {'result':<8}  {'s':>4}  {'what':<46}  tests")
    for m, verdict, last, secs in rows:
        print(f"{m.name:<{w}}  {verdict:<8}  {secs:>4.0f}  {m.what:<46}  {last.split(' in ')[0]}")
    killed = sum(v == "killed" for _, v, *_ in rows)
    print(f"\n{killed} of {len(rows)} killed")
    return 0 if killed == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
