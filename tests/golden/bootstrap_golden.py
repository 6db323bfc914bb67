"""Reference intervals for the test-set bootstrap of src/metrics/evaluation.rs (method §2.8).

scipy 1.17.1, numpy (python 3.11). The fixture: 300 ID and 200 OOD test images, 5 probed layers.
Image i of a set has the latent u_i = ((i * 7919) % n) / n, and layer l classifies it right when
u_i < p_l, so that the layers' hits are correlated as a network's are. ID accuracies
p = 0.50, 0.70, 0.80, 0.85, 0.86 (10 classes); OOD 0.40, 0.60, 0.55, 0.45, 0.35 (10 classes).
scipy.stats.bootstrap resamples the ID and the OOD images independently (two samples,
paired=False), each statistic computed from the resampled per-layer accuracies; percentile
intervals at 95% from 20,000 resamples.
Run: python3 bootstrap_golden.py
"""
import numpy as np
import scipy
from scipy import stats

P_ID = [0.50, 0.70, 0.80, 0.85, 0.86]
P_OOD = [0.40, 0.60, 0.55, 0.45, 0.35]


def hits(n, ps):
    u = np.array([((i * 7919) % n) / n for i in range(n)])
    return np.stack([(u < p).astype(float) for p in ps], axis=1)  # n x L


H_ID, H_OOD = hits(300, P_ID), hits(200, P_OOD)


def curves(i, o):
    return H_ID[i].mean(axis=0), H_OOD[o].mean(axis=0)


def r(i, o):
    _, ood = curves(i, o)
    return 100 * ood[-1] / ood.max()


def rho(i, o):
    idc, ood = curves(i, o)
    return np.corrcoef(idc, ood)[0, 1]


def align(i, o):
    idc, ood = curves(i, o)
    return (idc[-1] - 0.1) * (ood[-1] - 0.1)


print("scipy", scipy.__version__)
data = (np.arange(300), np.arange(200))
for name, f in [("r", r), ("rho", rho), ("A", align)]:
    ci = stats.bootstrap(data, f, paired=False, vectorized=False, n_resamples=20000,
                         method="percentile", random_state=0).confidence_interval
    print(name, repr(f(*data)), repr(ci.low), repr(ci.high))
