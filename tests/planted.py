"""Small planted study tables for the figure and findings tests: runs.csv's columns, values chosen by hand.

Contenders on two series × three seeds (baseline under SGD and SGD+BFGS, a closed-loop ``recipe`` under
L-BFGS, a ``reservoir`` under ridge), one-step ablations of ``hidden`` and ``skip`` around the baseline and of
``hidden`` around the recipe on series 0. ``LYAPUNOV`` per step; the reservoir's runs reach the horizon.
"""

import numpy as np
import pandas as pd

from rnn import study

LYAPUNOV = 0.01
HORIZON = 500
SEEDS = (0, 1, 2)
FLOORS = [{"case": "truth", "d_stsp": 0.09, "d_h": 0.01, "detail": "seed 1"},
          {"case": "truth", "d_stsp": 0.11, "d_h": 0.02, "detail": "seed 2"},
          {"case": "constant", "d_stsp": 14.0, "d_h": 1.0, "detail": "0.1"},
          {"case": "sine", "d_stsp": 13.0, "d_h": 0.28, "detail": "period 50"},
          {"case": "noise", "d_stsp": 6.0, "d_h": 0.86, "detail": "seed 3"}]


def _row(variant, optimizer, seed, data_seed, vpt, val_mse, d_stsp=0.2, d_h=0.03, base="baseline", axis="baseline",
         value="", hidden=15, status="ok", skip=False, vpt_val=None, lam=-0.05):
    vpt = float(vpt)
    return {"variant": variant, "base": base, "axis": axis, "value": value, "data_seed": data_seed,
            "optimizer": optimizer, "seed": seed, "backend": "jax", "status": status, "hidden": hidden,
            "skip": skip, "train_mse": val_mse, "val_mse": val_mse, "nrmse_84": 1.0, "vpt_steps": 5.0,
            "vpt_steps_test": vpt, "vpt_lyapunov_test": vpt * LYAPUNOV, "nrmse_first84_test": 0.5, "nrmse_at84_test": 0.7,
            "censored_test": float(vpt >= HORIZON), "n_starts": 10, "lyapunov_model": lam,
            "vpt_steps_val": vpt if vpt_val is None else vpt_val, "nrmse_val": 0.5, "d_stsp": d_stsp, "d_h": d_h,
            "train_seconds": 1.0}


def runs(reservoir_vpt=HORIZON, recipe_vpt=(240, 260, 250, 230, 196, 270), hidden30_mse=2e-3):
    rows = []
    for d in (0, 1):
        for k in SEEDS:
            i = 3 * d + k
            rows.append(_row("baseline", "sgd", k, d, 3 + k % 2, 8.6e-4 + 1e-6 * k, d_stsp=14.0, d_h=1.0))
            rows.append(_row("baseline", "sgd+bfgs", k, d, 9, 7.7e-5 + 1e-7 * k, d_stsp=14.0, d_h=1.0))
            rows.append(_row("recipe", "lbfgs", k, d, recipe_vpt[i], 4e-6 + 1e-7 * k, d_stsp=0.2 + 0.05 * k,
                             base="recipe", axis="variant", value="recipe", hidden=60, lam=0.007 + 0.0005 * i))
            rows.append(_row("reservoir", "ridge", k, d, reservoir_vpt, 1e-6, d_stsp=0.1, d_h=0.015,
                             base="reservoir", axis="variant", value="reservoir", hidden=400, lam=0.0099 + 0.0001 * k))
    for k in SEEDS:
        for opt in ("sgd", "sgd+bfgs"):
            base_mse = 8.6e-4 if opt == "sgd" else 7.7e-5
            rows.append(_row("hidden-5", opt, k, 0, 3, base_mse * 1.5 + 1e-6 * k, axis="hidden", value="5", hidden=5))
            rows.append(_row("hidden-30", opt, k, 0, 4, hidden30_mse + 1e-6 * k, axis="hidden", value="30",
                             hidden=30))
            rows.append(_row("skip-true", opt, k, 0, 3 + k % 2, base_mse + 1e-6 * (k - 1), axis="skip", value="true",
                             skip=True))
        rows.append(_row("recipe/hidden-30", "lbfgs", k, 0, 60 + 10 * k, 3e-5, d_stsp=5.0 + k, d_h=0.3,
                         base="recipe", axis="hidden", value="30", hidden=30, lam=-0.01 * k))
        rows.append(_row("recipe/skip-true", "lbfgs", k, 0, 0, np.nan, base="recipe", axis="skip", value="true",
                         hidden=60, skip=True, status="diverged" if k < 2 else "ok"))
    frame = pd.DataFrame(rows)
    frame.loc[frame["status"] == "diverged", ["val_mse", "vpt_steps_test", "vpt_lyapunov_test", "d_stsp", "d_h",
                                              "vpt_steps_val", "censored_test", "lyapunov_model"]] = np.nan
    return frame


def table(frame):
    t = study.ablation_table(frame)
    t["value"] = t["value"].fillna("").astype(str)
    return t
