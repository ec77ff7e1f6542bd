"""Experiment (issue 9): does the aflw_wild yaw convention (AFLW's labels) differ from AFLW2000-3D's?

Fits yaw as well as pitch and roll to the 21 points with the labeller's shape and compares, per |yaw| bin, the
fitted yaw with the truth on AFLW2000 half a (selection half) and with AFLW's own yaw labels on aflw_wild p13.
    python scripts/experiments/free_yaw_fit.py
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from headpose.data.landmark_pose import SHAPE, visible
from headpose.data.mat import read_mat
from headpose.geometry import ypr_to_matrix


def fit_free(points, yaw0):
    p = np.asarray(points, np.float64).reshape(-1, 2)
    v = visible(p)
    if v.sum() < 6:
        return math.nan
    m, q = SHAPE[v], p[v]

    def residual(x):
        r = ypr_to_matrix(x[0], x[1], x[2])
        return (x[3] * (m @ r.T)[:, :2] + x[4:6] - q).ravel()

    s0 = float(np.ptp(q[:, 0])) / max(float(np.ptp(m[:, 0])), 0.3)
    best = None
    for y0 in {yaw0, 0.0, 40.0 * np.sign(yaw0 or 1)}:
        x0 = [y0, 0.0, 0.0, s0, *(q.mean(0) - s0 * m.mean(0)[:2])]
        sol = least_squares(residual, x0, loss="soft_l1", f_scale=1.0)
        if best is None or sol.cost < best.cost:
            best = sol
    return float(best.x[0])


def table(name, true, fit):
    d = (fit - true) * np.sign(true)
    print(f"{name}: yaw MAE {np.nanmean(np.abs(fit - true)):.2f}")
    for lo, hi in ((0, 15), (15, 30), (30, 45), (45, 60), (60, 75), (75, 99)):
        b = (np.abs(true) >= lo) & (np.abs(true) < hi) & np.isfinite(fit)
        if b.sum():
            print(f"  |yaw| {lo}-{hi}: n={b.sum():4d}  fit minus label (outward) {np.nanmean(d[b]):+6.2f}"
                  f"  MAE {np.nanmean(np.abs(fit - true)[b]):5.2f}")


def main():
    mats = sorted(Path("../shared/data/aflw2000").glob("*.mat"))[0::2]  # half a
    true, fit = [], []
    for mat in mats:
        pose, pt2d = read_mat(str(mat))
        pts = pt2d.T if pt2d.shape[0] == 2 else pt2d
        if np.abs(pose).max() > 99 or pts.shape[0] != 21:
            continue
        true.append(pose[0])
        fit.append(fit_free(pts, 0.0))
    table("AFLW2000 half a: fitted yaw vs Pose_Para", np.array(true), np.array(fit))

    from headpose.data.aflw_wild import find, parse_label

    sel = [it for it in find(Path("../shared/data/aflw_wild")) if it.group == "p13"]  # the selection block
    true, fit = [], []
    for it in sel:
        yaw, pts = parse_label(it.label)
        true.append(yaw)
        fit.append(fit_free(pts, 0.0))
    table(f"aflw_wild block p13 ({len(sel)} faces): fitted yaw vs AFLW's yaw label", np.array(true), np.array(fit))


if __name__ == "__main__":
    main()
