"""What ``--smooth`` (headpose.track's One-Euro defaults) does at 30 frames/s: how much it damps 2° of jitter on a
still head (ratio of standard deviations after the first second) and how far it lags a head turning at 60°/s
(largest error after the first two seconds).

    python scripts/experiments/one_euro.py
"""

import numpy as np

from headpose.track import BETA, MIN_CUTOFF, OneEuro

t = np.arange(300) / 30.0
noisy = 10 + np.random.default_rng(0).normal(0, 2, len(t))
f = OneEuro()
still = np.array([f(x, s) for x, s in zip(noisy, t)])
f = OneEuro()
ramp = 60 * t
turn = np.array([f(x, s) for x, s in zip(ramp, t)])
print(f"One-Euro min_cutoff {MIN_CUTOFF} Hz, beta {BETA}: jitter damped {noisy[30:].std() / still[30:].std():.2f}x, "
      f"lag on a 60°/s turn at most {np.abs(turn - ramp)[60:].max():.2f}°")
