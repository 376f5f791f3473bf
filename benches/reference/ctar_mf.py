#!/usr/bin/env python3
"""CTAR Table 3's MF and MF-IPS in PyTorch, as the CTAR authors' released
configuration trains them (baselines/run.sh: dense nn.Embedding tables, Adam
with coupled weight decay, 100 epochs, no model selection here because the
release in ../shared/data/ctar has no valid/ folder). It is the side-by-side
check of `host run recipes/ctar_table3.rhai`, which trains the same models with
`table_updates: "dense"`.

    python3 benches/reference/ctar_mf.py [--runs 10] [--data ../shared/data/ctar]

Needs torch, numpy and scikit-learn. Prints the Table 3 columns (MSE on test
I, MSE and AUC on II, III and the whole test set), mean (sample std) over runs.
"""
import argparse
import csv
import os

import numpy as np
import torch
from sklearn.metrics import roc_auc_score


def read_rows(path):
    with open(path) as f:
        rows = list(csv.reader(f))[1:]
    return [tuple(int(x) for x in r) for r in rows]


def extract(data):
    """User-tag triples as the authors' extract_data.py builds them."""
    movies = {}
    with open(os.path.join(data, "train/movie.csv")) as f:
        for r in csv.DictReader(f):
            movies[int(r["movieid"])] = [int(x) for x in r["taglist"].split(",")]
    obs = read_rows(os.path.join(data, "train/obstag.csv"))
    rct = read_rows(os.path.join(data, "train/rcttag.csv"))
    label = {}
    out = {"obs": [], "rct": []}
    for name, rows in (("obs", obs), ("rct", rct)):
        for u, m, t in rows:
            if t != -1:
                label[(u, t)] = 1
                out[name].append((u, t, 1))
            else:
                for x in movies[m]:
                    label[(u, x)] = 0
                    out[name].append((u, x, 0))
    for u, m, t in rct:
        if t != -1:
            for x in movies[m]:
                if (u, x) not in label:
                    label[(u, x)] = 0
                    out["rct"].append((u, x, 0))
    obs_a = np.unique(np.array(out["obs"]), axis=0)
    rct_a = np.unique(np.array(out["rct"]), axis=0)
    return obs_a, rct_a, np.unique(np.vstack([obs_a, rct_a]), axis=0)


class MF(torch.nn.Module):
    """<p_u, q_i> + b_u + b_i, every table normal(0, 0.1) (the authors' mf.py)."""

    def __init__(self, users, items, dim):
        super().__init__()
        self.p = torch.nn.Embedding(users, dim)
        self.q = torch.nn.Embedding(items, dim)
        self.bu = torch.nn.Embedding(users, 1)
        self.bi = torch.nn.Embedding(items, 1)
        for e in (self.p, self.q, self.bu, self.bi):
            torch.nn.init.normal_(e.weight, 0.0, 0.1)

    def forward(self, u, i):
        return (self.p(u) * self.q(i)).sum(1) + self.bu(u)[:, 0] + self.bi(i)[:, 0]


def naive_bayes_inverse(obs, rct, users, items):
    """1 / P(O=1 | Y=y) = P(Y=y) / (P(Y=y | O=1) P(O=1)) for y = 0, 1."""
    p_y_obs = np.bincount(obs[:, 2], minlength=2) / len(obs)
    p_y = np.bincount(rct[:, 2], minlength=2) / len(rct)
    p_o = len(obs) / (users * items)
    return p_y / (p_y_obs * p_o)


def train_one(model_name, train, inv, users, items, seed, epochs):
    torch.manual_seed(seed)
    dim, batch, lr, wd = {"MF": (40, 2048, 1e-3, 0.1), "MF-IPS": (48, 256, 1e-3, 1.0)}[model_name]
    m = MF(users, items, dim)
    opt = torch.optim.Adam(m.parameters(), lr=lr, weight_decay=wd)
    x = torch.tensor(train)
    w_of = torch.tensor(inv, dtype=torch.float32) if inv is not None else None
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for b in range(0, len(x), batch):
            bt = x[perm[b:b + batch]]
            y = bt[:, 2].float()
            se = (m(bt[:, 0], bt[:, 1]) - y) ** 2
            loss = (se * w_of[bt[:, 2]]).mean() if w_of is not None else se.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "../../../shared/data/ctar"))
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    obs, rct, train = extract(a.data)
    tests = {k: np.array(read_rows(os.path.join(a.data, f"test/{k}.csv")))
             for k in ("test_1", "test_2", "test_3", "test")}
    users = 1 + max(int(train[:, 0].max()), *(int(t[:, 0].max()) for t in tests.values()))
    items = 1 + max(int(train[:, 1].max()), *(int(t[:, 1].max()) for t in tests.values()))
    cols = [("test_1", "mse"), ("test_2", "mse"), ("test_2", "auc"), ("test_3", "mse"),
            ("test_3", "auc"), ("test", "mse"), ("test", "auc")]
    print("| model | I MSE | II MSE | II AUC | III MSE | III AUC | all MSE | all AUC |")
    print("|---|---|---|---|---|---|---|---|")
    for name in ("MF", "MF-IPS"):
        inv = naive_bayes_inverse(obs, rct, users, items) if name == "MF-IPS" else None
        vals = [[] for _ in cols]
        for r in range(a.runs):
            m = train_one(name, train, inv, users, items, 2021 + r, a.epochs)
            with torch.no_grad():
                for k, (part, metric) in enumerate(cols):
                    t = tests[part]
                    p = m(torch.tensor(t[:, 0]), torch.tensor(t[:, 1])).numpy()
                    y = t[:, 2]
                    vals[k].append(((p - y) ** 2).mean() if metric == "mse" else roc_auc_score(y, p))
        cells = [f"{np.mean(v):.4f} ({np.std(v, ddof=1) if len(v) > 1 else 0.0:.4f})" for v in vals]
        print(f"| {name} (PyTorch, {a.runs} runs) | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
