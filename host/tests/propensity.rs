//! `causalrec_sdk::propensity` and the debias losses run on the host
//! executor against hand-computed values: every propensity source's
//! `propensity` and `weights` on a small batch, Rel's loss on three
//! examples, CVIB's balancing and confidence terms.

mod common;

use candle_core::{Device, Tensor};
use causalrec_debias::{cvib::cvib_terms, rel::rel_loss};
use causalrec_host::exec::Batch;
use causalrec_sdk::propensity::Propensity;
use causalrec_sdk::{Ctx, DataColumn, DataPart, Params, TrainData};

fn ids(v: &[u32]) -> Tensor {
    Tensor::from_slice(v, v.len(), &Device::Cpu).unwrap()
}
fn floats(v: &[f64]) -> Tensor {
    Tensor::from_slice(v, v.len(), &Device::Cpu).unwrap()
}

/// Run `f` on a host graph over `batch` (2 users, 3 items).
fn with_ctx<R>(batch: &Batch, f: impl FnOnce(&Ctx<'_, '_>) -> R) -> R {
    common::on_graph(batch, &common::schema(2, 3), f)
}

fn model(ron: &str) -> Propensity {
    let p = Params::parse("test", &Propensity::param_specs(), ron).unwrap();
    Propensity::from_params(&p).unwrap()
}

/// `(propensity, weights)` of `m` on `batch`.
fn run(m: &Propensity, batch: &Batch) -> (Vec<f64>, Vec<f64>) {
    with_ctx(batch, |g| {
        let p = m.propensity(g).unwrap();
        let w = m.weights(g).unwrap();
        (g.values(p).unwrap(), g.values(w).unwrap())
    })
}

fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-9, "{a:?} vs {b:?}");
    }
}

/// Two users, three items; rows: (0,0,1) (0,1,0) (1,1,1) (1,2,0) (0,0,1),
/// positions 1 2 1 2 3 (tokens "1"->1, "2"->2, "3"->3), all in `train`.
fn train_data() -> TrainData {
    TrainData {
        n_users: 2,
        n_items: 3,
        user: vec![0, 0, 1, 1, 0].into(),
        item: vec![0, 1, 1, 2, 0].into(),
        label: vec![1.0, 0.0, 1.0, 0.0, 1.0].into(),
        inter: vec![DataColumn {
            name: "position".into(),
            role: "position".into(),
            vocab: vec!["".into(), "1".into(), "2".into(), "3".into()].into(),
            tokens: vec![1, 2, 1, 2, 3].into(),
            ..DataColumn::default()
        }]
        .into(),
        items: vec![DataColumn {
            name: "genre".into(),
            role: "group".into(),
            vocab: vec!["".into(), "a".into(), "b".into()].into(),
            // item 0: a; item 1: a, b; item 2: b
            tokens: vec![1, 1, 2, 2].into(),
            offsets: vec![0, 1, 3, 4].into(),
            ..DataColumn::default()
        }]
        .into(),
        parts: vec![
            DataPart {
                name: "train".into(),
                rows: vec![0, 1, 2, 3, 4].into(),
            },
            DataPart {
                name: "train_positive".into(),
                rows: vec![0, 2, 4].into(),
            },
            DataPart {
                name: "rct".into(),
                rows: vec![1, 2].into(),
            },
        ]
        .into(),
    }
}

/// A batch of three examples: (user, item, label, position token, logged p).
fn batch() -> Batch {
    let mut b = Batch::default();
    b.inputs.insert("user".into(), ids(&[0, 1, 1]));
    b.inputs.insert("item".into(), ids(&[0, 1, 2]));
    b.inputs.insert("label".into(), floats(&[1.0, 0.0, 1.0]));
    b.inputs.insert("inter.position".into(), ids(&[1, 2, 3]));
    b.inputs
        .insert("inter.propensity_score".into(), floats(&[0.5, 0.25, 1e-9]));
    b
}

#[test]
fn popularity_propensities_by_hand() {
    // Item counts in `train`: 2, 2, 1 -> theta = (n / 2)^0.5 = 1, 1, sqrt(.5).
    let m = model(r#"{"propensity": "popularity"}"#);
    m.prepare(&train_data()).unwrap();
    let (p, w) = run(&m, &batch());
    let t2 = 0.5f64.sqrt();
    close(&p, &[1.0, 1.0, t2]);
    // positives 1/theta, the non-click 1
    close(&w, &[1.0, 1.0, 1.0 / t2]);
    // eta = 2 over the positives only: counts 2, 1, 0 -> 1, .25, 0 -> clip .1
    let m = model(
        r#"{"propensity": "popularity", "eta": 2.0, "stats_part": "train_positive", "clip": 0.1}"#,
    );
    m.prepare(&train_data()).unwrap();
    let (p, w) = run(&m, &batch());
    close(&p, &[1.0, 0.25, 0.1]);
    close(&w, &[1.0, 1.0, 10.0]);
}

#[test]
fn position_propensities_by_hand() {
    // CTR at 1: 2/2, at 2: 0/2, at 3: 1/1 -> theta = 1, 0 (-> floor 1e-6), 1 (capped).
    let m = model(r#"{"propensity": "position", "clip": 0.05}"#);
    m.prepare(&train_data()).unwrap();
    let (p, w) = run(&m, &batch());
    close(&p, &[1.0, 0.05, 1.0]);
    close(&w, &[1.0, 1.0, 1.0]);
    // Without the column in the batch (implicit pair batches), a clear error.
    let mut b = batch();
    b.inputs.remove("inter.position");
    let e = with_ctx(&b, |g| m.propensity(g).unwrap_err());
    assert!(
        e.contains("'inter.position'") && e.contains("'position_column'"),
        "{e}"
    );
}

#[test]
fn group_propensities_by_hand() {
    // Histories from `train_positive`: user 0 clicked item 0 twice -> d_0 = [1, 0];
    // user 1 clicked item 1 -> d_1 = q_1 = [.5, .5]. Batch pairs: d_0.q_0 = 1,
    // d_1.q_1 = .5, d_1.q_2 = .5.
    let m = model(r#"{"propensity": "group"}"#);
    m.prepare(&train_data()).unwrap();
    let (p, w) = run(&m, &batch());
    close(&p, &[1.0, 0.5, 0.5]);
    close(&w, &[1.0, 1.0, 2.0]);
}

#[test]
fn naive_bayes_and_column_propensities_by_hand() {
    // Biased part `train`: 3 of 5 positive; unbiased `rct`: 1 of 2;
    // P(O=1) = 5 / (2 * 3).
    let m = model(r#"{"biased_part": "train", "unbiased_part": "rct"}"#);
    m.prepare(&train_data()).unwrap();
    let po = 5.0 / 6.0;
    let (p1, p0) = (0.6 * po / 0.5, 0.4 * po / 0.5);
    let (p, w) = run(&m, &batch());
    close(&p, &[p1, p0, p1]);
    close(&w, &[1.0 / p1, 1.0 / p0, 1.0 / p1]);
    // Logged: read from the batch, clipped.
    let m = model(r#"{"propensity": "column", "clip": 0.01}"#);
    m.prepare(&train_data()).unwrap();
    let (p, w) = run(&m, &batch());
    close(&p, &[0.5, 0.25, 0.01]);
    close(&w, &[2.0, 4.0, 100.0]);
    // Not prepared: the error says so.
    let m = model(r#"{"propensity": "popularity"}"#);
    let e = with_ctx(&batch(), |g| m.propensity(g).unwrap_err());
    assert!(e.contains("prepare() was not called"), "{e}");
}

#[test]
fn rel_loss_by_hand() {
    // s = [2, -1, 0.5], y = [1, 0, 1], theta = [0.5, 0.8, 0.25]:
    // l = -[(y/t) ln sig(s) + (1 - y/t) ln(1 - sig(s))].
    let (s, y, t) = ([2.0, -1.0, 0.5], [1.0, 0.0, 1.0], [0.5, 0.8, 0.25]);
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let want: f64 = (0..3)
        .map(|k| {
            let r = y[k] / t[k];
            -(r * sig(s[k]).ln() + (1.0 - r) * (1.0 - sig(s[k])).ln())
        })
        .sum::<f64>()
        / 3.0;
    let got = with_ctx(&Batch::default(), |g| {
        let l = rel_loss(
            g.constant(&s, &[3]),
            g.constant(&y, &[3]),
            g.constant(&t, &[3]),
        );
        g.values(l).unwrap()[0]
    });
    assert!((got - want).abs() < 1e-12, "{got} vs {want}");
}

#[test]
fn cvib_terms_by_hand() {
    let (s, s_u) = ([1.0, -0.5, 2.0], [-1.0, 0.0]);
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let p: Vec<f64> = s.iter().map(|&x| sig(x)).collect();
    let po = p.iter().sum::<f64>() / 3.0;
    let q = (sig(-1.0) + sig(0.0)) / 2.0;
    let balance = -(po * q.ln() + (1.0 - po) * (1.0 - q).ln());
    let confidence = p.iter().map(|&x| x * x.ln()).sum::<f64>() / 3.0;
    let (b, c) = with_ctx(&Batch::default(), |g| {
        let (b, c) = cvib_terms(g.constant(&s, &[3]), g.constant(&s_u, &[2]));
        (g.values(b).unwrap()[0], g.values(c).unwrap()[0])
    });
    assert!((b - balance).abs() < 1e-12, "{b} vs {balance}");
    assert!((c - confidence).abs() < 1e-12, "{c} vs {confidence}");
}
