//! The row-sparse embedding store and the dense parameter store, driven
//! through a `HostGraph` as a plugin would: lookups record leaves, and
//! `Model::apply_grads` updates only the touched rows, with Adam / Adagrad /
//! SGD matching hand-written formulas; a step's cost and allocations do not
//! grow with the table.

// Index loops mirror the formulas; slices of one cloned tensor read plainly.
#![allow(clippy::needless_range_loop, clippy::cloned_ref_to_slice_refs)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

use abi_stable::std_types::{RResult, RVec};
use candle_core::{DType, Device, Tensor};
use causalrec_host::exec::store::{OptimConfig, TableState};
use causalrec_host::exec::{Batch, HostGraph, Leaf, Model};
use causalrec_sdk::graph::Graph;
use causalrec_sdk::ops::{MUL, SUM_ALL};
use causalrec_sdk::{Init, OpCall, Schema, VarId};
use common::uniform_f32;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

// ------------------------------------------------------------ allocation count

/// Counts the bytes allocated by the current thread (tests run in parallel
/// threads, so a global counter would mix them up).
struct Counting;

thread_local! {
    static ALLOCATED: Cell<u64> = const { Cell::new(0) };
}

fn count(bytes: usize) {
    let _ = ALLOCATED.try_with(|c| c.set(c.get() + bytes as u64));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count(l.size());
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        count(l.size());
        System.alloc_zeroed(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        count(new.saturating_sub(l.size()));
        System.realloc(p, l, new)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocated() -> u64 {
    ALLOCATED.with(|c| c.get())
}

// ------------------------------------------------------------ helpers

fn schema() -> Schema {
    Schema {
        n_users: 0,
        n_items: 0,
        fields: RVec::new(),
        history_len: 0,
    }
}

fn sgd(lr: f64, l2: f64) -> OptimConfig {
    OptimConfig {
        kind: "sgd".into(),
        lr,
        l2,
        ..OptimConfig::default()
    }
}

fn ok<T>(r: RResult<T, abi_stable::std_types::RString>) -> T {
    match r {
        RResult::ROk(v) => v,
        RResult::RErr(e) => panic!("graph call failed: {e}"),
    }
}

fn err<T>(r: RResult<T, abi_stable::std_types::RString>) -> String {
    match r {
        RResult::ROk(_) => panic!("expected an error"),
        RResult::RErr(e) => e.to_string(),
    }
}

fn call(g: &mut HostGraph<'_>, code: u32, inputs: &[VarId]) -> VarId {
    ok(g.op(OpCall {
        code,
        inputs: inputs.iter().copied().collect(),
        ints: RVec::new(),
        floats: RVec::new(),
    }))
}

fn ids_batch(ids: &[u32], r: &[f32], dim: usize) -> Batch {
    let mut b = Batch::default();
    b.inputs.insert(
        "ids".into(),
        Tensor::from_slice(ids, ids.len(), &Device::Cpu).unwrap(),
    );
    b.inputs.insert(
        "r".into(),
        Tensor::from_slice(r, (ids.len(), dim), &Device::Cpu).unwrap(),
    );
    b
}

/// Run one training step: `loss = sum(lookup(table, ids) * r)`; update.
/// Returns the number of leaves recorded.
fn train_step(model: &mut Model, table: &str, rows: u64, dim: usize, batch: &Batch) -> usize {
    let schema = schema();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (loss, leaves): (Tensor, Vec<Leaf>) = {
        let mut g = HostGraph::new(model, batch, &schema, true, &mut rng);
        ok(g.embedding(table.into(), rows, dim as u64, Init::normal(0.1)));
        let ids = ok(g.input("ids".into()));
        let e = ok(g.lookup(table.into(), ids));
        let r = ok(g.input("r".into()));
        let p = call(&mut g, MUL, &[e, r]);
        let l = call(&mut g, SUM_ALL, &[p]);
        (g.tape[l.0 as usize].clone(), std::mem::take(&mut g.leaves))
    };
    let n = leaves.len();
    model.apply_grads(&loss, &leaves).unwrap();
    n
}

fn table_data(model: &Model, name: &str) -> Vec<f32> {
    model.tables.tables[name].data().to_vec()
}

// ------------------------------------------------------------ sparse updates

#[test]
fn sgd_updates_only_touched_rows_and_accumulates_repeats() {
    let dim = 4;
    let mut model = Model::new(7, DType::F32, Device::Cpu, sgd(0.1, 0.0));
    let r = uniform_f32(1, 3 * dim);
    let batch = ids_batch(&[3, 7, 3], &r, dim);
    // Declare first to read the initial rows.
    model
        .tables
        .declare("emb", 10, dim, Init::normal(0.1))
        .unwrap();
    let before = table_data(&model, "emb");
    assert_eq!(train_step(&mut model, "emb", 10, dim, &batch), 1);
    let after = table_data(&model, "emb");
    let lr = 0.1f64 as f32;
    for row in 0..10 {
        for j in 0..dim {
            let (b, a) = (before[row * dim + j], after[row * dim + j]);
            let want = match row {
                3 => b - lr * (r[j] + r[2 * dim + j]),
                7 => b - lr * r[dim + j],
                _ => b,
            };
            assert_eq!(
                a.to_bits(),
                want.to_bits(),
                "row {row} col {j}: {a} vs {want} (was {b})"
            );
        }
    }
}

#[test]
fn two_lookups_of_one_table_accumulate_per_row() {
    let dim = 3;
    let mut model = Model::new(7, DType::F32, Device::Cpu, sgd(0.5, 0.0));
    model
        .tables
        .declare("emb", 6, dim, Init::normal(0.1))
        .unwrap();
    let before = table_data(&model, "emb");
    let mut batch = Batch::default();
    // 2-D ids: lookup shape [2, 2, dim].
    let a = Tensor::from_slice(&[1u32, 4, 4, 0], (2, 2), &Device::Cpu).unwrap();
    let b = Tensor::from_slice(&[4u32], 1, &Device::Cpu).unwrap();
    batch.inputs.insert("a".into(), a);
    batch.inputs.insert("b".into(), b);
    let schema = schema();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (loss, leaves) = {
        let mut g = HostGraph::new(&mut model, &batch, &schema, true, &mut rng);
        let ia = ok(g.input("a".into()));
        let ib = ok(g.input("b".into()));
        let ea = ok(g.lookup("emb".into(), ia));
        assert_eq!(ok(g.shape(ea)).to_vec(), vec![2, 2, dim as u64]);
        let eb = ok(g.lookup("emb".into(), ib));
        let sa = call(&mut g, SUM_ALL, &[ea]);
        let sb = call(&mut g, SUM_ALL, &[eb]);
        let l = call(&mut g, causalrec_sdk::ops::ADD, &[sa, sb]);
        (g.tape[l.0 as usize].clone(), std::mem::take(&mut g.leaves))
    };
    assert_eq!(leaves.len(), 2);
    // The leaf holds the unique rows only.
    assert_eq!(leaves[0].rows, vec![0, 1, 4]);
    model.apply_grads(&loss, &leaves).unwrap();
    let after = table_data(&model, "emb");
    // d loss / d row = number of occurrences: row 4 three times (two + one).
    for (row, n) in [
        (0, 1.0f32),
        (1, 1.0),
        (2, 0.0),
        (3, 0.0),
        (4, 3.0),
        (5, 0.0),
    ] {
        for j in 0..dim {
            let b = before[row * dim + j];
            let want = if n == 0.0 { b } else { b - 0.5 * n };
            assert_eq!(after[row * dim + j], want, "row {row}");
        }
    }
}

/// Hand-written optimizers in f64, row-wise, with lazy per-row Adam steps.
struct HandOpt {
    cfg: OptimConfig,
    m: Vec<f64>,
    v: Vec<f64>,
    t: Vec<i32>,
    dim: usize,
}

impl HandOpt {
    fn new(cfg: &OptimConfig, rows: usize, dim: usize) -> Self {
        HandOpt {
            cfg: cfg.clone(),
            m: vec![0.0; rows * dim],
            v: vec![0.0; rows * dim],
            t: vec![0; rows],
            dim,
        }
    }

    /// One update of `w` from `loss = sum(lookup(ids) * r)`.
    fn step(&mut self, w: &mut [f64], ids: &[u32], r: &[f32]) {
        let d = self.dim;
        let mut g: std::collections::BTreeMap<usize, Vec<f64>> = Default::default();
        for (k, &id) in ids.iter().enumerate() {
            let e = g.entry(id as usize).or_insert_with(|| vec![0.0; d]);
            for j in 0..d {
                e[j] += r[k * d + j] as f64;
            }
        }
        let c = &self.cfg;
        if c.dense_tables {
            // Dense tables: every row gets a (zero) data gradient every step.
            for row in 0..self.t.len() {
                g.entry(row).or_insert_with(|| vec![0.0; d]);
            }
        }
        for (row, gr) in g {
            self.t[row] += 1;
            let t = self.t[row];
            for j in 0..d {
                let i = row * d + j;
                let gj = gr[j] + c.l2 * w[i];
                match c.kind.as_str() {
                    "sgd" => w[i] -= c.lr * gj,
                    "adagrad" => {
                        self.m[i] += gj * gj;
                        w[i] -= c.lr * gj / (self.m[i].sqrt() + c.eps);
                    }
                    _ => {
                        self.m[i] = c.beta1 * self.m[i] + (1.0 - c.beta1) * gj;
                        self.v[i] = c.beta2 * self.v[i] + (1.0 - c.beta2) * gj * gj;
                        let mh = self.m[i] / (1.0 - c.beta1.powi(t));
                        let vh = self.v[i] / (1.0 - c.beta2.powi(t));
                        w[i] -= c.lr * mh / (vh.sqrt() + c.eps);
                    }
                }
            }
        }
    }
}

/// Three steps with overlapping ids against the hand optimizer; returns the
/// worst absolute difference.
fn against_hand(cfg: OptimConfig) -> f64 {
    let (rows, dim) = (12usize, 5usize);
    let mut model = Model::new(11, DType::F32, Device::Cpu, cfg.clone());
    model
        .tables
        .declare("emb", rows, dim, Init::normal(0.5))
        .unwrap();
    let init = table_data(&model, "emb");
    let mut w: Vec<f64> = init.iter().map(|&x| x as f64).collect();
    let mut hand = HandOpt::new(&cfg, rows, dim);
    // Row 2 is touched in every step (twice in the first), row 5 only in the
    // first, row 8 only from the second: per-row Adam step counts differ.
    let steps: [&[u32]; 3] = [&[2, 5, 2], &[2, 8], &[8, 2, 11, 8]];
    let mut worst: f64 = 0.0;
    for (s, ids) in steps.iter().enumerate() {
        let r = uniform_f32(100 + s as u64, ids.len() * dim);
        let batch = ids_batch(ids, &r, dim);
        train_step(&mut model, "emb", rows as u64, dim, &batch);
        hand.step(&mut w, ids, &r);
        let got = table_data(&model, "emb");
        for (i, (&a, &b)) in got.iter().zip(&w).enumerate() {
            let diff = (a as f64 - b).abs();
            assert!(
                diff <= 2e-6 * (1.0 + b.abs()),
                "{} step {s} row {} col {}: store {a} vs hand {b}",
                cfg.kind,
                i / dim,
                i % dim
            );
            worst = worst.max(diff);
        }
        // Rows never touched so far are bit-identical to their initial values
        // (with dense tables they move: the hand optimizer above checks how).
        let touched: Vec<u32> = steps[..=s].iter().flat_map(|x| x.iter().copied()).collect();
        for row in 0..rows {
            if !touched.contains(&(row as u32)) && !cfg.dense_tables {
                assert_eq!(
                    got[row * dim..(row + 1) * dim],
                    init[row * dim..(row + 1) * dim]
                );
            }
        }
    }
    eprintln!("{cfg:?}: worst |store - hand| = {worst:e}");
    worst
}

#[test]
fn adam_rowwise_matches_hand_computation() {
    let base = OptimConfig {
        kind: "adam".into(),
        lr: 0.05,
        ..OptimConfig::default()
    };
    against_hand(base.clone());
    against_hand(OptimConfig { l2: 0.1, ..base });

    // The brief's case spelled out: one row after two steps, by hand.
    let dim = 2;
    let cfg = OptimConfig {
        kind: "adam".into(),
        lr: 0.1,
        ..OptimConfig::default()
    };
    let mut model = Model::new(3, DType::F32, Device::Cpu, cfg.clone());
    model
        .tables
        .declare("emb", 4, dim, Init::constant(1.0))
        .unwrap();
    let g1 = [0.5f32, -2.0];
    let g2 = [-1.0f32, 0.25];
    for g in [g1, g2] {
        train_step(&mut model, "emb", 4, dim, &ids_batch(&[1], &g, dim));
    }
    let (b1, b2, eps, lr) = (0.9f64, 0.999f64, 1e-8, 0.1);
    for j in 0..dim {
        let (x1, x2) = (g1[j] as f64, g2[j] as f64);
        let m1 = (1.0 - b1) * x1;
        let v1 = (1.0 - b2) * x1 * x1;
        let w1 = 1.0 - lr * (m1 / (1.0 - b1)) / ((v1 / (1.0 - b2)).sqrt() + eps);
        let m2 = b1 * m1 + (1.0 - b1) * x2;
        let v2 = b2 * v1 + (1.0 - b2) * x2 * x2;
        let w2 = w1 - lr * (m2 / (1.0 - b1 * b1)) / ((v2 / (1.0 - b2 * b2)).sqrt() + eps);
        let got = model.tables.tables["emb"].row(1)[j] as f64;
        assert!((got - w2).abs() < 1e-6, "col {j}: {got} vs {w2}");
    }
    // Untouched rows stay as they were.
    assert_eq!(model.tables.tables["emb"].row(0), &[1.0, 1.0]);
}

/// `dense_tables`: every row of the table is updated at every step, untouched
/// rows with a zero data gradient, as PyTorch's dense `nn.Embedding` under
/// `Adam(weight_decay=l2)`.
#[test]
fn dense_tables_update_every_row_as_a_dense_optimizer() {
    for kind in ["adam", "adagrad", "sgd"] {
        let cfg = OptimConfig {
            kind: kind.into(),
            lr: 0.05,
            l2: 0.3,
            dense_tables: true,
            ..OptimConfig::default()
        };
        against_hand(cfg);
    }
    // By hand: an untouched row under Adam with l2 (g = l2 * w) moves by
    // lr * m_hat / (sqrt(v_hat) + eps) = lr * sign(w) on the first step.
    let cfg = OptimConfig {
        kind: "adam".into(),
        lr: 0.01,
        l2: 0.5,
        dense_tables: true,
        ..OptimConfig::default()
    };
    let mut model = Model::new(3, DType::F32, Device::Cpu, cfg);
    model
        .tables
        .declare("emb", 3, 2, Init::constant(2.0))
        .unwrap();
    train_step(&mut model, "emb", 3, 2, &ids_batch(&[1], &[1.0, -1.0], 2));
    for row in [0, 2] {
        for &w in model.tables.tables["emb"].row(row) {
            assert!((w as f64 - (2.0 - 0.01)).abs() < 1e-6, "row {row}: {w}");
        }
    }
    // Without dense_tables the same step leaves rows 0 and 2 alone.
    let mut lazy = Model::new(
        3,
        DType::F32,
        Device::Cpu,
        OptimConfig {
            dense_tables: false,
            ..model.optim.clone()
        },
    );
    lazy.tables
        .declare("emb", 3, 2, Init::constant(2.0))
        .unwrap();
    train_step(&mut lazy, "emb", 3, 2, &ids_batch(&[1], &[1.0, -1.0], 2));
    assert_eq!(lazy.tables.tables["emb"].row(0), &[2.0, 2.0]);
}

#[test]
fn adagrad_and_sgd_with_l2_match_hand_computation() {
    for l2 in [0.0, 0.2] {
        against_hand(OptimConfig {
            kind: "adagrad".into(),
            lr: 0.1,
            l2,
            ..OptimConfig::default()
        });
        against_hand(sgd(0.1, l2));
    }
    // SGD with l2 by hand: w - lr * (g + l2 * w).
    let dim = 3;
    let mut model = Model::new(5, DType::F32, Device::Cpu, sgd(0.1, 0.5));
    model
        .tables
        .declare("emb", 3, dim, Init::constant(2.0))
        .unwrap();
    let g = [1.0f32, -1.0, 0.0];
    train_step(&mut model, "emb", 3, dim, &ids_batch(&[2], &g, dim));
    let row = model.tables.tables["emb"].row(2).to_vec();
    let want: Vec<f32> = g.iter().map(|&gj| 2.0 - 0.1 * (gj + 0.5 * 2.0)).collect();
    for j in 0..dim {
        assert!((row[j] - want[j]).abs() < 1e-6, "{row:?} vs {want:?}");
    }
    // l2 applies to touched rows only.
    assert_eq!(model.tables.tables["emb"].row(0), &[2.0, 2.0, 2.0]);
}

// ------------------------------------------------------------ errors

#[test]
fn lookup_errors_and_what_inference_graphs_hold() {
    let mut model = Model::new(1, DType::F32, Device::Cpu, sgd(0.1, 0.0));
    let mut batch = Batch::default();
    batch.inputs.insert(
        "ids".into(),
        Tensor::from_slice(&[1u32, 10], 2, &Device::Cpu).unwrap(),
    );
    let schema = schema();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    {
        let mut g = HostGraph::new(&mut model, &batch, &schema, true, &mut rng);
        ok(g.embedding("items".into(), 10, 4, Init::normal(0.1)));
        let ids = ok(g.input("ids".into()));
        let e = err(g.lookup("items".into(), ids));
        assert!(e.contains("items") && e.contains("10 rows"), "{e}");
        assert!(e.contains("id 10"), "{e}");
        let e = err(g.table_all("items".into()));
        assert!(e.contains("inference"), "{e}");
        let e = err(g.lookup("nope".into(), ids));
        assert!(e.contains("nope"), "{e}");
        let e = err(g.input("missing".into()));
        assert!(e.contains("missing") && e.contains("ids"), "{e}");
        // Redeclaring with another shape is an error; the same shape is fine.
        ok(g.embedding("items".into(), 10, 4, Init::normal(0.1)));
        let e = err(g.embedding("items".into(), 11, 4, Init::normal(0.1)));
        assert!(e.contains("items"), "{e}");
        assert!(g.leaves.is_empty());
    }
    // At inference table_all gives the whole table, lookups record no
    // leaves, and neither they nor parameters record a gradient graph
    // (which would keep every intermediate result alive).
    let first = {
        let mut g = HostGraph::new(&mut model, &batch, &schema, false, &mut rng);
        let all = ok(g.table_all("items".into()));
        assert_eq!(ok(g.shape(all)).to_vec(), vec![10, 4]);
        let ok_ids = ok(g.constant([1.0, 9.0][..].into(), [2u64][..].into()));
        let e = ok(g.lookup("items".into(), ok_ids));
        assert_eq!(ok(g.shape(e)).to_vec(), vec![2, 4]);
        assert!(g.leaves.is_empty());
        let w = ok(g.param("w".into(), [4u64][..].into(), Init::normal(0.1)));
        for v in [all, e, w] {
            assert!(!g.get(v).unwrap().track_op(), "{v:?} records a graph");
        }
        let looked: Vec<Vec<f32>> = g.get(e).unwrap().to_vec2().unwrap();
        let table: Vec<Vec<f32>> = g.get(all).unwrap().to_vec2().unwrap();
        assert_eq!(looked, vec![table[1].clone(), table[9].clone()]);
        // The whole table is made once and handed out again.
        let again = ok(g.table_all("items".into()));
        assert_eq!(g.get(again).unwrap().id(), g.get(all).unwrap().id());
        g.get(all).unwrap().clone()
    };
    // Until the table changes: then table_all gives its new values.
    let grad = [1.0f32; 4];
    let cfg = sgd(0.1, 0.0);
    model
        .tables
        .tables
        .get_mut("items")
        .unwrap()
        .update(&[9], &grad, &cfg);
    let mut g = HostGraph::new(&mut model, &batch, &schema, false, &mut rng);
    let all = ok(g.table_all("items".into()));
    let now = g.get(all).unwrap();
    assert_ne!(now.id(), first.id());
    let (old, new): (Vec<Vec<f32>>, Vec<Vec<f32>>) =
        (first.to_vec2().unwrap(), now.to_vec2().unwrap());
    assert_eq!(old[..9], new[..9]);
    for j in 0..4 {
        assert!((new[9][j] - (old[9][j] - 0.1)).abs() < 1e-6);
    }
    // A write through `data_mut` (as the gradient check makes) too.
    drop(g);
    model.tables.tables.get_mut("items").unwrap().data_mut()[0] = 5.0;
    let mut g = HostGraph::new(&mut model, &batch, &schema, false, &mut rng);
    let all = ok(g.table_all("items".into()));
    assert_eq!(g.get(all).unwrap().to_vec2::<f32>().unwrap()[0][0], 5.0);
}

// ------------------------------------------------------------ evaluation memo

/// Within one evaluation (`eval_memo` on) an inference op that reads no
/// batch input is computed once: the next block's graph gets the same
/// tensor; ops that read a batch input are computed in every graph, and
/// other constants are other results.
#[test]
fn an_evaluation_computes_ops_of_parameters_tables_and_constants_once() {
    let mut model = Model::new(1, DType::F32, Device::Cpu, sgd(0.1, 0.0));
    let schema = schema();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let block = |x: [f32; 4]| {
        let mut b = Batch::default();
        b.inputs
            .insert("x".into(), Tensor::from_slice(&x, 4, &Device::Cpu).unwrap());
        b
    };
    // One block's graph: (w * t) for a parameter w, a table t's column
    // sums and a constant c; then times the block's input x.
    let graph = |model: &mut Model, rng: &mut ChaCha8Rng, b: &Batch, c: f64| {
        let mut g = HostGraph::new(model, b, &schema, false, rng);
        ok(g.embedding("t".into(), 3, 4, Init::normal(0.5)));
        let w = ok(g.param("w".into(), [4u64][..].into(), Init::normal(0.5)));
        let t = ok(g.table_all("t".into()));
        let c = ok(g.constant([c; 4][..].into(), [4u64][..].into()));
        let wt = call(&mut g, MUL, &[w, t]);
        let wtc = call(&mut g, MUL, &[wt, c]);
        let x = ok(g.input("x".into()));
        let y = call(&mut g, MUL, &[wtc, x]);
        let get = |v: VarId| g.get(v).unwrap().clone();
        (get(wtc), get(y))
    };
    let (b1, b2) = (block([1.0, 2.0, 3.0, 4.0]), block([-1.0, 0.5, 2.0, 0.0]));
    // Without the memo: the reference values.
    let (want_wtc, want_y2) = graph(&mut model, &mut rng, &b2, 2.0);
    model.eval_memo = Some(Default::default());
    let (wtc1, _) = graph(&mut model, &mut rng, &b1, 2.0);
    let (wtc2, y2) = graph(&mut model, &mut rng, &b2, 2.0);
    assert_eq!(wtc2.id(), wtc1.id(), "computed once");
    assert_ne!(wtc2.id(), want_wtc.id());
    let v = |t: &Tensor| t.to_vec2::<f32>().unwrap();
    assert_eq!(v(&wtc2), v(&want_wtc));
    assert_eq!(v(&y2), v(&want_y2), "the block's own input is read");
    // Another constant: another result.
    let (wtc3, _) = graph(&mut model, &mut rng, &b2, 3.0);
    assert_ne!(wtc3.id(), wtc1.id());
    assert_eq!(v(&wtc3)[0][0], v(&want_wtc)[0][0] * 1.5);
    // Training graphs never use it.
    let memo_len = model.eval_memo.as_ref().unwrap().len();
    {
        let mut g = HostGraph::new(&mut model, &b2, &schema, true, &mut rng);
        let w = ok(g.param("w".into(), [4u64][..].into(), Init::normal(0.5)));
        call(&mut g, MUL, &[w, w]);
    }
    assert_eq!(model.eval_memo.as_ref().unwrap().len(), memo_len);
}

// ------------------------------------------------------------ cost

#[test]
fn step_cost_does_not_grow_with_the_table() {
    // Either way the optimizer state is allocated: for every row at the
    // first update, or as rows are touched.
    step_cost_with(TableState::Eager);
    step_cost_with(TableState::Lazy);
}

fn step_cost_with(table_state: TableState) {
    const DIM: usize = 32;
    const BATCH: usize = 256;
    const STEPS: usize = 20;
    let cfg = OptimConfig {
        kind: "adam".into(),
        lr: 0.01,
        table_state,
        ..OptimConfig::default()
    };
    let sizes = [10_000u64, 1_000_000];
    let mut models: Vec<Model> = sizes
        .iter()
        .map(|&rows| {
            let mut m = Model::new(1, DType::F32, Device::Cpu, cfg.clone());
            m.tables
                .declare("emb", rows as usize, DIM, Init::ZEROS)
                .unwrap();
            m
        })
        .collect();
    // Batches drawn over each table's whole range; built before timing.
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut batches: Vec<[Batch; 2]> = Vec::new();
    for s in 0..=STEPS {
        let r = uniform_f32(1000 + s as u64, BATCH * DIM);
        let u: Vec<f64> = (0..BATCH).map(|_| rng.random::<f64>()).collect();
        let mk = |rows: u64| {
            let ids: Vec<u32> = u.iter().map(|&x| (x * rows as f64) as u32).collect();
            ids_batch(&ids, &r, DIM)
        };
        batches.push([mk(sizes[0]), mk(sizes[1])]);
    }
    // Warm-up: one step each. Eager state is faulted in there; lazy state
    // is row-sparse (a slot per touched row, appended), so no warm-up over
    // the whole table is needed for the timed steps to be cheap either:
    // they fault in only the new slots' pages and the touched pages of the
    // row -> slot index.
    for k in 0..2 {
        train_step(&mut models[k], "emb", sizes[k], DIM, &batches[0][k]);
    }
    let mut times = [Vec::new(), Vec::new()];
    let mut bytes = [0u64; 2];
    let mut faults = [0u64; 2];
    // Interleave the two tables so that machine noise hits both alike.
    for b in &batches[1..] {
        for k in 0..2 {
            let a0 = allocated();
            let f0 = minflt();
            let t0 = Instant::now();
            train_step(&mut models[k], "emb", sizes[k], DIM, &b[k]);
            times[k].push(t0.elapsed().as_secs_f64());
            bytes[k] += allocated() - a0;
            faults[k] += minflt() - f0;
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let (small, big) = (median(&mut times[0]), median(&mut times[1]));
    let time_ratio = big / small;
    let alloc_ratio = bytes[1] as f64 / bytes[0] as f64;
    eprintln!(
        "median step: {:.3} ms (10k rows) vs {:.3} ms (1M rows), ratio {time_ratio:.2}; \
         bytes allocated over {STEPS} steps: {} vs {}, ratio {alloc_ratio:.3}",
        small * 1e3,
        big * 1e3,
        bytes[0],
        bytes[1]
    );
    eprintln!("{table_state:?} state: minor page faults during the timed steps: {faults:?}");
    assert!(time_ratio < 3.0, "step time ratio {time_ratio:.2}");
    // Page faults: the state of 20 x 256 new rows is the same for both
    // tables; the big table's row -> slot index (4 MB) adds at most one
    // fault per touched row, never one per row of each moment array.
    assert!(
        faults[1] <= faults[0] + (STEPS * BATCH) as u64,
        "minor page faults {faults:?}"
    );
    // State exists for the rows touched, not for the table.
    let state = models[1].tables.tables["emb"].state_rows();
    assert!(state <= (STEPS + 1) * BATCH, "{state} rows with state");
    assert!(alloc_ratio < 1.5, "allocation ratio {alloc_ratio:.3}");
    // A whole 1M x 32 table is 128 MB: a step must allocate far less.
    assert!(
        bytes[1] / (STEPS as u64) < 8 << 20,
        "{} bytes per step",
        bytes[1] / STEPS as u64
    );
}

/// Exporting the lazy row state and importing it into a fresh table gives
/// a table whose next updates are the original's, bit for bit (Adam and
/// Adagrad), and only the touched rows carry state.
#[test]
fn row_state_survives_export_and_import() {
    use causalrec_host::exec::store::Table;
    // Exported under one state policy, imported under either.
    let policies = [TableState::Eager, TableState::Lazy];
    for (kind, from, to) in ["adam", "adagrad"].into_iter().flat_map(|k| {
        policies
            .into_iter()
            .flat_map(move |f| policies.map(|t| (k, f, t)))
    }) {
        let cfg = OptimConfig {
            kind: kind.into(),
            lr: 0.05,
            l2: 0.1,
            table_state: from,
            ..OptimConfig::default()
        };
        let cfg_to = OptimConfig {
            table_state: to,
            ..cfg.clone()
        };
        let (rows, dim) = (50usize, 4usize);
        let mut a = Table::new(rows, dim, Init::normal(0.1), 9);
        let steps: Vec<(Vec<u32>, Vec<f32>)> = (0..6)
            .map(|s| {
                let ids: Vec<u32> = (0..5).map(|k| ((s * 7 + k * 11) % rows) as u32).collect();
                (ids, uniform_f32(s as u64, 5 * dim))
            })
            .collect();
        for (ids, g) in &steps[..3] {
            a.update(ids, g, &cfg);
        }
        let touched: std::collections::BTreeSet<u32> =
            steps[..3].iter().flat_map(|(ids, _)| ids.clone()).collect();
        assert_eq!(a.state_rows(), touched.len(), "{kind}");
        let mut b = Table::new(rows, dim, Init::normal(0.1), 9);
        b.set_data(a.data().to_vec()).unwrap();
        b.import_state(a.export_state()).unwrap();
        assert_eq!(b.state_rows(), touched.len(), "{kind}");
        for (ids, g) in &steps[3..] {
            a.update(ids, g, &cfg);
            b.update(ids, g, &cfg_to);
        }
        assert_eq!(a.data(), b.data(), "{kind} {from:?} -> {to:?}");
        assert_eq!(
            a.export_state().m,
            b.export_state().m,
            "{kind} {from:?} -> {to:?}"
        );
        assert_eq!(
            a.export_state().t,
            b.export_state().t,
            "{kind} {from:?} -> {to:?}"
        );
    }
}

// ------------------------------------------------------------ dense params

fn declare(model: &mut Model, names: &[(&str, &[u64], Init)]) -> Vec<Vec<f64>> {
    let batch = Batch::default();
    let schema = schema();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut g = HostGraph::new(model, &batch, &schema, true, &mut rng);
    names
        .iter()
        .map(|&(n, shape, init)| {
            let v = ok(g.param(n.into(), shape.into(), init));
            ok(g.values(v)).to_vec()
        })
        .collect()
}

#[test]
fn dense_params_by_name() {
    let mut model = Model::new(9, DType::F64, Device::Cpu, sgd(0.1, 0.0));
    let vals = declare(
        &mut model,
        &[
            ("w", &[20, 30], Init::XAVIER),
            ("w", &[20, 30], Init::XAVIER),
            ("b", &[30], Init::ZEROS),
        ],
    );
    assert_eq!(vals[0], vals[1], "same name, same values");
    assert_eq!(vals[0].len(), 600);
    assert_eq!(vals[2], vec![0.0; 30]);
    // Xavier bound sqrt(6 / (fan_in + fan_out)), and not degenerate.
    let bound = (6.0f64 / 50.0).sqrt();
    let max = vals[0].iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(max <= bound, "{max} > {bound}");
    assert!(max > 0.9 * bound, "{max} far below {bound}");
    let mean = vals[0].iter().sum::<f64>() / 600.0;
    assert!(mean.abs() < 0.05 * bound, "mean {mean}");
    // Another shape under the same name is an error naming it.
    let batch = Batch::default();
    let schema = schema();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    {
        let mut g = HostGraph::new(&mut model, &batch, &schema, true, &mut rng);
        let e = err(g.param("w".into(), [30u64, 20][..].into(), Init::XAVIER));
        assert!(e.contains("'w'"), "{e}");
        // A scope namespaces the name: a new parameter, any shape.
        g.enter_scope("blk".into());
        let v = ok(g.param("w".into(), [3u64][..].into(), Init::ONES));
        assert_eq!(ok(g.values(v)).to_vec(), vec![1.0; 3]);
        g.exit_scope();
    }
    assert!(model.dense.params.contains_key("blk/w"));
    // Inits: constant, normal std, uniform bound.
    let v = declare(
        &mut model,
        &[
            ("c", &[4], Init::constant(0.25)),
            ("n", &[4000], Init::normal(0.5)),
            ("u", &[1000], Init::uniform(0.3)),
        ],
    );
    assert_eq!(v[0], vec![0.25; 4]);
    let std = (v[1].iter().map(|x| x * x).sum::<f64>() / 4000.0).sqrt();
    assert!((std - 0.5).abs() < 0.03, "normal std {std}");
    assert!(v[2].iter().all(|x| x.abs() <= 0.3));
}

#[test]
fn dense_init_depends_on_seed_and_name_not_order() {
    let specs: [(&str, &[u64], Init); 3] = [
        ("a", &[5, 6], Init::XAVIER),
        ("b", &[7], Init::normal(1.0)),
        ("c", &[3, 3], Init::uniform(1.0)),
    ];
    let mut m1 = Model::new(21, DType::F64, Device::Cpu, sgd(0.1, 0.0));
    let v1 = declare(&mut m1, &specs);
    let mut rev = specs;
    rev.reverse();
    let mut m2 = Model::new(21, DType::F64, Device::Cpu, sgd(0.1, 0.0));
    let mut v2 = declare(&mut m2, &rev);
    v2.reverse();
    assert_eq!(v1, v2, "declaration order changed the init");
    let mut m3 = Model::new(22, DType::F64, Device::Cpu, sgd(0.1, 0.0));
    let v3 = declare(&mut m3, &specs);
    for k in 0..3 {
        assert_ne!(v1[k], v3[k], "another seed, same values for {}", specs[k].0);
    }
    // Two names under one seed differ.
    let mut m4 = Model::new(21, DType::F64, Device::Cpu, sgd(0.1, 0.0));
    let v4 = declare(&mut m4, &[("a2", &[5, 6], Init::XAVIER)]);
    assert_ne!(v1[0], v4[0]);
    // Tables too: same seed and name, same rows, whatever the order.
    let mut t1 = Model::new(21, DType::F32, Device::Cpu, sgd(0.1, 0.0));
    t1.tables.declare("x", 5, 3, Init::normal(0.1)).unwrap();
    t1.tables.declare("y", 5, 3, Init::normal(0.1)).unwrap();
    let mut t2 = Model::new(21, DType::F32, Device::Cpu, sgd(0.1, 0.0));
    t2.tables.declare("y", 5, 3, Init::normal(0.1)).unwrap();
    t2.tables.declare("x", 5, 3, Init::normal(0.1)).unwrap();
    assert_eq!(table_data(&t1, "x"), table_data(&t2, "x"));
    assert_ne!(table_data(&t1, "x"), table_data(&t1, "y"));
}

/// Minor page faults of the process so far (Linux; 0 elsewhere), for the report.
fn minflt() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.get(s.rfind(')')? + 2..)?;
            rest.split_whitespace().nth(7)?.parse().ok()
        })
        .unwrap_or(0)
}
