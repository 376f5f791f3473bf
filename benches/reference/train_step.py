#!/usr/bin/env python3
"""The PyTorch counterpart of `host bench train`: the same models, batch and
loss on a uniform random log, timed per step after warm-up, printing the same
figures (examples/s, step-time percentiles, peak RSS).

    python3 benches/reference/train_step.py --model fm --rows 100000 --batch 4096 [--sparse]

Models: `mf` (<p_u, q_i> + b_u + b_i + b), `fm` (FM over the user and item id
fields: w0 + w_u + w_i + <v_u, v_i>), `nfm` (NFM as the `ctr` plugin's
defaults: bi-interaction pooling of the two fields, dropout 0.5, one hidden
ReLU layer of 64 with dropout 0.2, a linear output without bias, plus the
first-order terms), `mlp` (the Speed issue's reference
step: user and item rows concatenated into an MLP 128-256-128-1 with ReLU),
`din` (the `seq` plugin's DIN defaults: local activation unit 80-40 over
[e; e - v; e * v; v] with Dice, unnormalised masked sum pooling, MLP 200-80
with Dice over [p_u; v_U(A); v_A]; histories as the host builds them from the
same uniform log: each positive's earlier interactions of its user, the
latest `--history` of them, padded to `--history`; negatives share them),
`mmgcn` (the `graph` plugin's MMGCN defaults: L = 2 layers per modality,
mean aggregation, combination W3 h + x^ (Eq. 7), latent 64, LeakyReLU 0.01,
no biases in W1-W3, id embeddings shared by the modalities, scores u*^T i*
with the modality sums; `--modalities` random item feature matrices of that
width; the user-item graph of the uniform log, propagated over the whole
graph every step as the paper's code does, where the host propagates only
over the batch's 2-hop subgraph; positives drawn from the log; dense tables,
since every row gets a gradient).
Each batch holds `batch` positives and `negatives` uniform negatives per
positive, BPR loss, Adam (lr 1e-3). `--sparse` uses sparse embedding
gradients with SparseAdam for the tables (Adam for the dense rest), as
PyTorch's fastest CPU path; the default is dense nn.Embedding + Adam.
"""
import argparse
import json
import resource
import time

import torch


class Dice(torch.nn.Module):
    """Dice (DIN, Eq. 4) with batch statistics over the (masked) rows."""

    def __init__(self, h):
        super().__init__()
        self.alpha = torch.nn.Parameter(torch.full((h,), 0.25))

    def forward(self, s, w=None):
        if w is None:
            mean = s.mean(0, keepdim=True)
            var = (s - mean).square().mean(0, keepdim=True)
        else:
            n = w.sum().clamp(min=1.0)
            mean = (s * w).sum(0, keepdim=True) / n
            var = ((s - mean).square() * w).sum(0, keepdim=True) / n
        p = torch.sigmoid((s - mean) * (var + 1e-8).rsqrt())
        return s * (p * (1 - self.alpha) + self.alpha)


class Din(torch.nn.Module):
    def __init__(self, users, items, dim, sparse):
        super().__init__()
        self.u = torch.nn.Embedding(users, dim, sparse=sparse)
        self.i = torch.nn.Embedding(items, dim, sparse=sparse)
        torch.nn.init.normal_(self.u.weight, 0, 0.1)
        torch.nn.init.normal_(self.i.weight, 0, 0.1)
        self.att = torch.nn.ModuleList([torch.nn.Linear(4 * dim, 80), torch.nn.Linear(80, 40), torch.nn.Linear(40, 1)])
        self.att_act = torch.nn.ModuleList([Dice(80), Dice(40)])
        self.mlp = torch.nn.ModuleList([torch.nn.Linear(3 * dim, 200), torch.nn.Linear(200, 80), torch.nn.Linear(80, 1)])
        self.mlp_act = torch.nn.ModuleList([Dice(200), Dice(80)])

    def forward(self, u, i, hist, mask):
        b, l = hist.shape
        e, v = self.i(hist), self.i(i)
        x = torch.cat([e, e - v[:, None], e * v[:, None], v[:, None].expand(-1, l, -1)], -1).reshape(b * l, -1)
        w = mask.reshape(-1, 1)
        for lin, act in zip(self.att[:-1], self.att_act):
            x = act(lin(x), w)
        a = self.att[-1](x).reshape(b, l) * mask
        interest = (a[:, :, None] * e).sum(1)
        x = torch.cat([self.u(u), interest, v], -1)
        for lin, act in zip(self.mlp[:-1], self.mlp_act):
            x = act(lin(x))
        return self.mlp[-1](x)[:, 0]


class Histories:
    """The host's uniform log (`synthetic::uniform_log`: the first `users`
    rows cover every user, the rest uniform) and each row's history: the
    user's earlier items, the latest `length`, left-aligned, padded."""

    def __init__(self, users, items, inter, length, gen):
        inter = max(inter, users, items)
        us = torch.randint(0, users, (inter,), generator=gen)
        us[:users] = torch.arange(users)
        it = torch.randint(0, items, (inter,), generator=gen)
        seqs, pos = [[] for _ in range(users)], []
        for u, i in zip(us.tolist(), it.tolist()):
            pos.append(len(seqs[u]))
            seqs[u].append(i)
        self.users, self.items, self.seqs, self.pos, self.length = us, it, seqs, pos, length

    def batch(self, rows):
        ids = torch.zeros(len(rows), self.length, dtype=torch.long)
        mask = torch.zeros(len(rows), self.length)
        for r, k in enumerate(rows.tolist()):
            u, j = int(self.users[k]), self.pos[k]
            h = self.seqs[u][max(0, j - self.length):j]
            if h:
                ids[r, :len(h)] = torch.tensor(h)
                mask[r, :len(h)] = 1.0
        return self.users[rows], self.items[rows], ids, mask


class Mmgcn(torch.nn.Module):
    """MMGCN (Wei et al. 2019) over the whole user-item graph of `log_u`, `log_i`."""

    def __init__(self, users, items, dim, width, n_mod, layers, log_u, log_i, gen):
        super().__init__()
        self.users, self.layers, latent = users, layers, 64
        self.feats = [torch.randn(items, width, generator=gen) for _ in range(n_mod)]
        self.proj = torch.nn.ModuleList(torch.nn.Linear(width, latent) for _ in range(n_mod))
        self.pref = torch.nn.ModuleList(torch.nn.Embedding(users, latent) for _ in range(n_mod))
        self.uid, self.iid = torch.nn.Embedding(users, dim), torch.nn.Embedding(items, dim)
        for e in [self.uid, self.iid, *self.pref]:
            torch.nn.init.normal_(e.weight, 0, 0.1)
        lin = lambda i, o: torch.nn.Linear(i, o, bias=False)
        ins = lambda l: latent if l == 0 else dim
        self.w1 = torch.nn.ModuleList(torch.nn.ModuleList(lin(ins(l), dim) for l in range(layers)) for _ in range(n_mod))
        self.w2 = torch.nn.ModuleList(torch.nn.ModuleList(lin(ins(l), dim) for l in range(layers)) for _ in range(n_mod))
        self.w3 = torch.nn.ModuleList(torch.nn.ModuleList(lin(dim, dim) for l in range(layers)) for _ in range(n_mod))
        # Mean aggregation: A[v, j] = 1 / |N_v| over the distinct edges.
        n = users + items
        e = torch.unique(torch.stack([log_u, log_i + users]), dim=1)
        src = torch.cat([e[0], e[1]])
        dst = torch.cat([e[1], e[0]])
        deg = torch.bincount(src, minlength=n).clamp(min=1).float()
        self.adj = torch.sparse_coo_tensor(torch.stack([src, dst]), 1.0 / deg[src], (n, n), check_invariants=False).coalesce()

    def propagate(self):
        act = lambda x: torch.nn.functional.leaky_relu(x, 0.01)
        ids = torch.cat([self.uid.weight, self.iid.weight])
        out = 0
        for m, f in enumerate(self.feats):
            x = torch.cat([self.pref[m].weight, self.proj[m](f)])
            for l in range(self.layers):
                h = act(torch.sparse.mm(self.adj, self.w1[m][l](x)))
                xh = act(self.w2[m][l](x)) + ids
                x = act(self.w3[m][l](h) + xh)
            out = out + x
        return out

    def score(self, z, u, i):
        return (z[u] * z[self.users + i]).sum(1)


class Model(torch.nn.Module):
    def __init__(self, kind, users, items, dim, sparse):
        super().__init__()
        self.kind = kind
        emb = lambda n, d: torch.nn.Embedding(n, d, sparse=sparse)
        self.u, self.i = emb(users, dim), emb(items, dim)
        torch.nn.init.normal_(self.u.weight, 0, 0.1)
        torch.nn.init.normal_(self.i.weight, 0, 0.1)
        if kind in ("mf", "fm", "nfm"):
            self.bu, self.bi = emb(users, 1), emb(items, 1)
            torch.nn.init.zeros_(self.bu.weight)
            torch.nn.init.zeros_(self.bi.weight)
            self.b = torch.nn.Parameter(torch.zeros(1))
            if kind == "nfm":
                self.head = torch.nn.Sequential(
                    torch.nn.Dropout(0.5), torch.nn.Linear(dim, 64), torch.nn.ReLU(),
                    torch.nn.Dropout(0.2), torch.nn.Linear(64, 1, bias=False))
        else:
            self.mlp = torch.nn.Sequential(
                torch.nn.Linear(2 * dim, 128), torch.nn.ReLU(), torch.nn.Linear(128, 256), torch.nn.ReLU(),
                torch.nn.Linear(256, 128), torch.nn.ReLU(), torch.nn.Linear(128, 1))

    def forward(self, u, i):
        pu, qi = self.u(u), self.i(i)
        first = self.bu(u)[:, 0] + self.bi(i)[:, 0] + self.b if self.kind != "mlp" else None
        if self.kind in ("mf", "fm"):
            return (pu * qi).sum(1) + first
        if self.kind == "nfm":
            # Bi-interaction of two fields: 0.5 ((p + q)^2 - p^2 - q^2) = p * q.
            return self.head(pu * qi)[:, 0] + first
        return self.mlp(torch.cat([pu, qi], 1))[:, 0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="fm", choices=["mf", "fm", "nfm", "mlp", "din", "mmgcn"])
    ap.add_argument("--rows", type=int, default=100_000, help="item table rows")
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--negatives", type=int, default=1)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--sparse", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--inter", type=int, default=200_000, help="interactions of the log (din's histories)")
    ap.add_argument("--history", type=int, default=50, help="history length L (din)")
    ap.add_argument("--modalities", type=int, default=64, help="width of each of 3 item modalities (mmgcn)")
    a = ap.parse_args()
    torch.manual_seed(7)
    dev = torch.device(a.device)
    if a.model == "din":
        m = Din(a.users, a.rows, a.dim, a.sparse).to(dev)
        log = Histories(a.users, a.rows, a.inter, a.history, torch.Generator().manual_seed(7))
    elif a.model == "mmgcn":
        gen = torch.Generator().manual_seed(7)
        inter = max(a.inter, a.users, a.rows)
        log_u = torch.randint(0, a.users, (inter,), generator=gen)
        log_u[:a.users] = torch.arange(a.users)
        log_i = torch.randint(0, a.rows, (inter,), generator=gen)
        m = Mmgcn(a.users, a.rows, a.dim, a.modalities, 3, 2, log_u, log_i, gen).to(dev)
        m.feats = [f.to(dev) for f in m.feats]
        m.adj = m.adj.to(dev)
    else:
        m = Model(a.model, a.users, a.rows, a.dim, a.sparse).to(dev)
    tables = [p for n, p in m.named_parameters() if n.split(".")[0] in ("u", "i", "bu", "bi")]
    dense = [p for n, p in m.named_parameters() if n.split(".")[0] not in ("u", "i", "bu", "bi")]
    if a.sparse and tables:
        opts = [torch.optim.SparseAdam(tables, lr=1e-3)] + ([torch.optim.Adam(dense, lr=1e-3)] if dense else [])
    else:
        opts = [torch.optim.Adam(m.parameters(), lr=1e-3)]
    times = []
    for s in range(a.warmup + a.steps):
        t = time.perf_counter()
        # Batch assembly, as the host's: positives, then uniform negatives.
        neg = torch.randint(0, a.rows, (a.batch * a.negatives,), device=dev)
        if a.model == "din":
            rows = torch.randint(0, len(log.pos), (a.batch,))
            u, pos, hist, mask = (t.to(dev) for t in log.batch(rows))
            r = a.negatives
            sp = m(u, pos, hist, mask)
            sn = m(u.repeat(r), neg, hist.repeat(r, 1), mask.repeat(r, 1))
        elif a.model == "mmgcn":
            rows = torch.randint(0, len(log_u), (a.batch,))
            u, pos = log_u[rows].to(dev), log_i[rows].to(dev)
            z = m.propagate()
            sp = m.score(z, u, pos)
            sn = m.score(z, u.repeat(a.negatives), neg)
        else:
            u = torch.randint(0, a.users, (a.batch,), device=dev)
            pos = torch.randint(0, a.rows, (a.batch,), device=dev)
            sp = m(u, pos)
            sn = m(u.repeat(a.negatives), neg)
        loss = torch.nn.functional.softplus(sn - sp.repeat(a.negatives)).mean()
        for o in opts:
            o.zero_grad()
        loss.backward()
        for o in opts:
            o.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if s >= a.warmup:
            times.append(time.perf_counter() - t)
    times.sort()
    q = lambda p: times[min(len(times), max(1, int(-(-p * len(times) // 1)))) - 1] * 1e3
    ex = a.batch * (1 + a.negatives)
    r = {
        "model": a.model, "rows": a.rows, "batch": a.batch, "examples_per_step": ex,
        "examples_per_second": ex * len(times) / sum(times),
        "step_ms_p50": q(0.5), "step_ms_p90": q(0.9), "step_ms_p99": q(0.99),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "optimizer": "sparse embedding + SparseAdam" if a.sparse and tables else "dense nn.Embedding + Adam",
        "threads": torch.get_num_threads(),
    }
    if a.json:
        print(json.dumps(r))
    else:
        print(f"PyTorch {a.model} rows {a.rows} batch {a.batch} ({ex} examples/step, {a.device}, {r['optimizer']}, "
              f"{r['threads']} threads): {r['examples_per_second']:.0f} examples/s; step p50 {r['step_ms_p50']:.2f} ms, "
              f"p90 {r['step_ms_p90']:.2f} ms, p99 {r['step_ms_p99']:.2f} ms; peak RSS {r['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
