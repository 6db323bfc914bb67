"""Golden values for crates/stats/tests/golden_gbm.rs.

scikit-learn 1.9.1, shap 0.51.0, scipy 1.17.1, pandas, numpy (python 3.11).

1. gbm_fixture.json: GradientBoostingRegressor(loss="huber", random_state=0) with defaults on 80
   rows of 4 continuous features (no split ties), its predictions, R^2, init value, every tree
   exported (children, feature, threshold, leaf values, n_node_samples) and
   shap.TreeExplainer(model).shap_values(X) / expected_value.
2. The [H24] SHAP analysis (method §7.5) on the reference CSV, as in yousuf907/Tunnel
   shap_analysis/shap_slopes_calculation.py: in-sample R^2 and SHAP slopes per metric, plus
   scipy.stats.wilcoxon p-values of the augmentation comparison.
3. The augmentation comparison's Wilcoxon test with a pair of models as the unit (each pair's
   differences averaged over its 8 OOD rows).
4. Cross-validated R^2 (cross_val_predict with PredefinedSplit, then r2_score): on the
   one-feature fixture with fold = row % 5, and on the reference CSV with each model's 8 rows in
   fold (row // 8) % 8.
Run: python3 sklearn_shap_golden.py [path/to/h24_experiments_results.csv]
"""
import json
import sys

import numpy as np
import pandas as pd
import shap
import sklearn
from scipy import stats
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.metrics import r2_score
from sklearn.model_selection import PredefinedSplit, cross_val_predict

print("# sklearn", sklearn.__version__, "shap", shap.__version__)

rng = np.random.default_rng(3)
X = rng.uniform(-2, 2, size=(80, 4)).round(4)
y = (np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2] + 0.3 * X[:, 3] ** 2 + rng.normal(0, 0.3, 80)).round(4)
y[:4] += 5.0  # a few outliers so the Huber clipping matters
m = GradientBoostingRegressor(loss="huber", random_state=0).fit(X, y)
pred = m.predict(X)
ex = shap.TreeExplainer(m)
sv = ex.shap_values(X)
trees = []
for est in m.estimators_[:, 0]:
    t = est.tree_
    trees.append(
        {
            "children_left": t.children_left.tolist(),
            "children_right": t.children_right.tolist(),
            "feature": t.feature.tolist(),
            "threshold": t.threshold.tolist(),
            "value": t.value[:, 0, 0].tolist(),
            "n_node_samples": t.n_node_samples.tolist(),
        }
    )
fixture = {
    "x": X.tolist(),
    "y": y.tolist(),
    "init": float(m.init_.constant_.ravel()[0]),
    "learning_rate": m.learning_rate,
    "predictions": pred.tolist(),
    "r2": float(r2_score(y, pred)),
    "trees": trees,
    "shap_values": sv.tolist(),
    "expected_value": float(np.ravel(ex.expected_value)[0]),
}
with open("gbm_fixture.json", "w") as f:
    json.dump(fixture, f)
print("fixture r2", fixture["r2"], "init", fixture["init"])

# One feature: no two features can induce the same partition, so no split ties and the fitted
# ensemble must equal scikit-learn's (with several features scikit-learn breaks exact ties by a
# seeded feature shuffle).
x1 = rng.uniform(-3, 3, size=(150, 1)).round(4)
y1 = (np.sin(2 * x1[:, 0]) + 0.2 * x1[:, 0] ** 2 + rng.normal(0, 0.25, 150)).round(4)
y1[:5] -= 4.0
m1 = GradientBoostingRegressor(loss="huber", random_state=0).fit(x1, y1)
p1 = m1.predict(x1)
with open("gbm_fixture_1d.json", "w") as f:
    json.dump({"x": x1.tolist(), "y": y1.tolist(), "init": float(m1.init_.constant_.ravel()[0]),
               "predictions": p1.tolist(), "r2": float(r2_score(y1, p1))}, f)
print("fixture_1d r2", r2_score(y1, p1))
cv1 = cross_val_predict(GradientBoostingRegressor(loss="huber", random_state=0), x1, y1,
                        cv=PredefinedSplit(np.arange(len(y1)) % 5))
print("fixture_1d cross-validated r2 (fold = row % 5)", repr(float(r2_score(y1, cv1))))

path = sys.argv[1] if len(sys.argv) > 1 else "../../../shared/reference/h24_experiments_results.csv"
df = pd.read_csv(path)
variables = ["Stem", "Spatial Reduction", "Augmentations", "Resolution", "ID Class Count", "OverParam. Level", "Depth"]
enc = pd.DataFrame({v: pd.factorize(df[v], sort=True)[0].astype(float) for v in variables})
dummies = pd.get_dummies(df["CNN vs ViT"]).astype(float)
Xr = pd.concat([enc, dummies], axis=1)
arch_code = pd.factorize(df["CNN vs ViT"], sort=True)[0].astype(float)
for metric, col, scale in [
    ("retained_pct", "Percentage OOD retained", 0.01),
    ("pearson", "Pearson Correlation", 1.0),
    ("alignment", "ID OOD Alignment", 1.0),
]:
    yr = df[col].values * scale
    mr = GradientBoostingRegressor(loss="huber", random_state=0).fit(Xr.values, yr)
    r2 = r2_score(yr, mr.predict(Xr.values))
    s = shap.TreeExplainer(mr).shap_values(Xr.values)
    sh = {v: s[:, i] for i, v in enumerate(variables)}
    sh["CNN vs ViT"] = s[:, len(variables):].sum(axis=1)
    codes = {v: enc[v].values for v in variables}
    codes["CNN vs ViT"] = arch_code
    out = {}
    for v in ["Stem", "Spatial Reduction", "CNN vs ViT", "Augmentations", "Resolution", "ID Class Count", "OverParam. Level", "Depth"]:
        xv = codes[v] / codes[v].max()
        out[v] = float(np.polyfit(xv, sh[v], 1)[0])
    cv = cross_val_predict(GradientBoostingRegressor(loss="huber", random_state=0), Xr.values, yr,
                           cv=PredefinedSplit((np.arange(len(yr)) // 8) % 8))
    print(f"{metric}: r2={r2!r} cross-validated r2={float(r2_score(yr, cv))!r}")
    print("  slopes", json.dumps(out))

blocks = np.arange(len(df)) // 8
no = df["Augmentations"] == 0
for col in ["Percentage OOD retained", "Pearson Correlation", "ID OOD Alignment"]:
    # Twin of each no-aug row: the next block (the reference file lists (no, aug) twins so that
    # an aug block is at +1 or +2 blocks; pair by matching variables and OOD slot in order).
    a_rows, b_rows = [], []
    keys = [c for c in df.columns[3:] if c != "Augmentations"]
    used = set()
    for i in np.where(no)[0]:
        slot = i % 8
        for j in np.where(~no)[0]:
            if j in used or j % 8 != slot:
                continue
            if all(df.iloc[i][k] == df.iloc[j][k] for k in keys):
                a_rows.append(i)
                b_rows.append(j)
                used.add(j)
                break
    r = stats.wilcoxon(df[col].values[a_rows], df[col].values[b_rows])
    print(f"augmentation {col}: n={len(a_rows)} T={float(r.statistic)!r} p={float(r.pvalue)!r}")
    # The same pairs with a pair of models as the unit: each (model a, model b) pair's mean
    # difference over its rows, summed in row order.
    groups = {}
    for i, j in zip(a_rows, b_rows):
        groups.setdefault((i // 8, j // 8), []).append(df[col].values[i] - df[col].values[j])
    d = [sum(v) / len(v) for v in groups.values()]
    r = stats.wilcoxon(d)
    print(f"  per model pair: n={len(d)} T={float(r.statistic)!r} p={float(r.pvalue)!r}")
