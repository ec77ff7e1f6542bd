"""``headpose bench --quick --json``: runs every part and writes the documented keys (no timing assertions)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from conftest import SEED_TFLITE

from headpose.cli import main
from headpose.estimator import DEFAULT_MODEL


def test_bench_quick_json(pose_model, tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(["bench", "--quick", "--json", str(out), "--model", str(pose_model), "--peer", str(SEED_TFLITE)])
    assert rc == 0
    r = json.loads(out.read_text())
    for key in ("date", "machine", "load_before", "load_after", "targets", "pose", "peer", "end_to_end", "stages_ms",
                "training", "notes"):
        assert key in r, key
    assert r["quick"] is True and r["machine"]["cpu"]
    float_b1 = [p for p in r["pose"] if p["name"] == "litert float" and p["batch"] == 1]
    assert float_b1 and float_b1[0]["threads"] == 1 and float_b1[0]["per_s"] > 0 and "vs_peer" in float_b1[0]
    assert r["peer"]["file"] == str(SEED_TFLITE) and r["peer"]["per_s"] > 0
    if pose_model == DEFAULT_MODEL:  # the bundled lite models are timed beside the default one
        lite = {p["name"] for p in r["pose"] if p["name"].startswith("lite litert") and "vs_peer" in p}
        assert lite == {"lite litert float", "lite litert int8"}, r["pose"]
    assert {(e["detector"], e["workers"]) for e in r["end_to_end"]} == {("full", 1), ("full", 2), ("short", 1),
                                                                        ("short", 2)}
    assert all(e["frames_with_one_face"] == e["frames"] and e["per_s"] > 0 for e in r["end_to_end"])
    assert set(r["stages_ms"]) == {"full", "short"}
    for stages in r["stages_ms"].values():
        assert set(stages) == {"detect_ms", "letterbox_ms", "detector_invoke_ms", "decode_and_nms_ms", "crop_ms",
                               "pose_b1_ms"} and all(v > 0 for v in stages.values()), stages
    timed = [t for t in r["training"] if "per_s" in t]
    assert timed and all(t["per_s"] > 0 for t in timed)
    printed = capsys.readouterr().out
    assert "crops/s" in printed and "frames/s" in printed and "samples/s" in printed


def test_bench_times_public_steps_only():
    """The bench times what anyone can call: no underscored name of another module (``det._letterbox``,
    ``train._batches``, ``from x import _y``); its own helpers may be private."""
    import headpose.bench as bench

    tree = ast.parse(Path(bench.__file__).read_text(encoding="utf-8"))
    own = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    private = [f"line {n.lineno}: .{n.attr}" for n in ast.walk(tree)
               if isinstance(n, ast.Attribute) and n.attr.startswith("_") and not n.attr.startswith("__")
               and not (isinstance(n.value, ast.Name) and n.value.id in ("self", *own))]
    private += [f"line {n.lineno}: import {a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                for a in n.names if a.name.startswith("_")]
    assert not private, private
