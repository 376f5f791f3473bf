//! The data side of HCR (front-door adjustment): training on clicks (every
//! interaction, `train_positives: "all"`), evaluation on likes (rating >=
//! `positive_threshold`), and the `chrono_clicks` split, checked against
//! hand-computed rows on a tiny atomic data set written under the target
//! folder.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::RVec;
use candle_core::Device;
use causalrec_host::data::{Data, DataConfig, TrainPositives};
use causalrec_host::recipe::{engine, format_error};
use causalrec_host::train::{Components, Run, TrainConfig};
use causalrec_sdk::component::{
    BackboneAdapter, Backbone_TO, EstimatorAdapter, Estimator_TO, LossAdapter, Loss_TO,
};
use causalrec_sdk::{
    BackboneImpl, BackboneInfo, Backbones, Ctx, Emb, EstimatorImpl, LossImpl, Result, Var,
};

/// (user, item, rating, timestamp) per row. By time: rows 1(10) 2(20) 0(30)
/// 5(40) 6(50) 3(60) 4(60, a tie: after row 3) 10(70) 8(80) 7(90) 9(100)
/// 11(110). Liked (rating >= 4): rows 0, 3, 4, 5, 7, 8, 9, 11.
const ROWS: [(&str, &str, u32, u32); 12] = [
    ("u1", "i1", 5, 30),
    ("u2", "i2", 2, 10),
    ("u1", "i3", 3, 20),
    ("u2", "i1", 4, 60),
    ("u1", "i2", 4, 60),
    ("u2", "i4", 5, 40),
    ("u1", "i4", 2, 50),
    ("u1", "i5", 5, 90),
    ("u2", "i5", 4, 80),
    ("u1", "i6", 4, 100),
    ("u2", "i6", 1, 70),
    ("u2", "i3", 5, 110),
];

/// Writes `ROWS` as `<dir>/hcr/hcr.inter` in a fresh folder under the
/// target folder and returns `<dir>/hcr`.
fn fixture() -> PathBuf {
    let folder = common::fresh_folder("hcr-data", "hcr");
    let mut text = String::from("user_id:token\titem_id:token\trating:float\ttimestamp:float\n");
    for (u, i, r, t) in ROWS {
        text.push_str(&format!("{u}\t{i}\t{r}\t{t}\n"));
    }
    std::fs::write(folder.join("hcr.inter"), text).unwrap();
    folder
}

fn load(split: &str, ratios: [f64; 3], train_positives: TrainPositives) -> Data {
    let cfg = DataConfig {
        source: fixture().display().to_string(),
        split: split.into(),
        ratios,
        train_positives,
        ..DataConfig::default()
    };
    Data::load(cfg, std::path::Path::new("/")).unwrap()
}

/// Per user token, the item tokens of a per-user list (`valid_pos`, ...).
fn tokens(d: &Data, per_user: &[Vec<u32>]) -> BTreeMap<String, Vec<String>> {
    per_user
        .iter()
        .enumerate()
        .filter(|(_, items)| !items.is_empty())
        .map(|(u, items)| {
            let mut v: Vec<String> = items
                .iter()
                .map(|&i| d.ds.item_ids[i as usize].clone())
                .collect();
            v.sort();
            (d.ds.user_ids[u].clone(), v)
        })
        .collect()
}

fn map(entries: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    entries
        .iter()
        .map(|(u, items)| (u.to_string(), items.iter().map(|s| s.to_string()).collect()))
        .collect()
}

#[test]
fn chrono_clicks_split_rows() {
    // n = 12, train = rhd(12 * 0.5) = 6 earliest: 1 2 0 5 6 3. Later, in
    // time order: 4 10 8 7 9 11; row 10 (rating 1) is not liked. Liked per
    // user: u1: 4 7 9 (m = 3), u2: 8 11 (m = 2). Valid share 0.5:
    // u1 rhd(1.5) = 1, u2 rhd(1.0) = 1.
    let d = load("chrono_clicks", [0.5, 0.25, 0.25], TrainPositives::All);
    assert_eq!(d.split.train, vec![1, 2, 0, 5, 6, 3]);
    assert_eq!(d.split.valid, vec![4, 8]);
    assert_eq!(d.split.test, vec![7, 9, 11]);
    // Valid share 0.8: u1 rhd(2.4) = 2; u2 rhd(1.6) = 2, but one must stay in test.
    let d = load("chrono_clicks", [0.5, 0.4, 0.1], TrainPositives::All);
    assert_eq!(d.split.train, vec![1, 2, 0, 5, 6, 3]);
    assert_eq!(d.split.valid, vec![4, 7, 8]);
    assert_eq!(d.split.test, vec![9, 11]);
    // Without a threshold every later row is "liked": row 10 goes to u2's
    // valid (u2: 10 8 11, rhd(1.5) = 1 -> valid 10; u1 as above).
    let cfg = DataConfig {
        source: fixture().display().to_string(),
        split: "chrono_clicks".into(),
        ratios: [0.5, 0.25, 0.25],
        positive_threshold: None,
        ..DataConfig::default()
    };
    let d = Data::load(cfg, std::path::Path::new("/")).unwrap();
    assert_eq!(d.split.valid, vec![4, 10]);
    assert_eq!(d.split.test, vec![7, 8, 9, 11]);
}

#[test]
fn chrono_clicks_bad_ratios_are_errors() {
    for (ratios, want) in [
        ([1.0, 0.0, 0.0], "the train ratio must be in (0, 1)"),
        ([0.0, 0.5, 0.5], "the train ratio must be in (0, 1)"),
        ([0.7, 0.2, 0.2], "must sum to 1"),
    ] {
        let cfg = DataConfig {
            source: fixture().display().to_string(),
            split: "chrono_clicks".into(),
            ratios,
            ..DataConfig::default()
        };
        let err = Data::load(cfg, std::path::Path::new("/"))
            .err()
            .expect("an error");
        assert!(err.contains(want), "{ratios:?}: {err}");
    }
}

#[test]
fn click_positives_train_like_and_valid_test_likes() {
    let d = load("chrono_clicks", [0.5, 0.25, 0.25], TrainPositives::All);
    // Every training row is a positive; liked: rows 0 (5), 5 (5), 3 (4).
    assert_eq!(d.train_pos_rows, vec![1, 2, 0, 5, 6, 3]);
    assert_eq!(d.train_pos_like, Some(vec![0.0, 0.0, 1.0, 1.0, 0.0, 1.0]));
    let (u, i) = (d.ds.user_col(), d.ds.item_col());
    let pairs: Vec<(u32, u32)> = d.train_pos_rows.iter().map(|&r| (u[r], i[r])).collect();
    assert_eq!(d.train_pos, pairs);
    // Negative sampling and ranking exclude every click of the user.
    assert_eq!(
        tokens(&d, &d.train_seen),
        map(&[("u1", &["i1", "i3", "i4"]), ("u2", &["i1", "i2", "i4"])])
    );
    // Evaluation positives are likes only.
    assert_eq!(
        tokens(&d, &d.valid_pos),
        map(&[("u1", &["i2"]), ("u2", &["i5"])])
    );
    assert_eq!(
        tokens(&d, &d.test_pos),
        map(&[("u1", &["i5", "i6"]), ("u2", &["i3"])])
    );
    // What components see in `prepare`.
    let td = d.train_data();
    assert_eq!(td.part("train_positive").unwrap(), &[1, 2, 0, 5, 6, 3]);
    assert_eq!(td.part("train_like").unwrap(), &[0, 5, 3]);
    assert_eq!(td.part("train").unwrap(), &[1, 2, 0, 5, 6, 3]);

    // The default keeps today's behaviour: liked training rows only.
    let d = load(
        "chrono_clicks",
        [0.5, 0.25, 0.25],
        TrainPositives::Threshold,
    );
    assert_eq!(d.train_pos_rows, vec![0, 5, 3]);
    assert_eq!(d.train_pos_like, None);
    assert_eq!(
        tokens(&d, &d.train_seen),
        map(&[("u1", &["i1", "i3", "i4"]), ("u2", &["i1", "i2", "i4"])])
    );
    let td = d.train_data();
    assert_eq!(td.part("train_positive").unwrap(), &[0, 5, 3]);
    assert_eq!(td.part("train_like").unwrap(), &[0, 5, 3]);
    assert_eq!(d.batch_like(&[0, 1], 2), None);
}

/// Components that are never called: `make_batch` only assembles inputs.
struct Stub;

impl BackboneImpl for Stub {
    fn info(&self) -> BackboneInfo {
        BackboneInfo {
            field_interaction: false,
            score_all: false,
            needs_history: false,
            dim: 1,
        }
    }
    fn embed(&self, _g: &Ctx<'_, '_>) -> Result<Emb> {
        Err("stub".into())
    }
    fn predict<'c>(
        &self,
        _g: &'c Ctx<'_, '_>,
        _user: Var<'c>,
        _item: Var<'c>,
        _emb: &Emb,
    ) -> Result<Var<'c>> {
        Err("stub".into())
    }
}

impl EstimatorImpl for Stub {
    fn score<'c>(&self, _g: &'c Ctx<'_, '_>, _bb: &Backbones<'_>) -> Result<Var<'c>> {
        Err("stub".into())
    }
}

impl LossImpl for Stub {
    fn compute<'c>(
        &self,
        _g: &'c Ctx<'_, '_>,
        _preds: &[(String, Var<'c>)],
        _labels: Var<'c>,
        _weights: Option<Var<'c>>,
    ) -> Result<Var<'c>> {
        Err("stub".into())
    }
}

fn stub_run(negatives: usize) -> Run {
    let comps = Components {
        backbones: RVec::from(vec![Backbone_TO::from_value(
            BackboneAdapter(Stub),
            TD_Opaque,
        )]),
        estimator: Estimator_TO::from_value(EstimatorAdapter(Stub), TD_Opaque),
        loss: Loss_TO::from_value(LossAdapter(Stub), TD_Opaque),
        label: "stub".into(),
        shares: Vec::new(),
        scopes: Vec::new(),
    };
    let cfg = TrainConfig {
        negatives,
        ..TrainConfig::default()
    };
    Run::new("stub", comps, cfg, Device::Cpu).unwrap()
}

fn values(b: &causalrec_host::exec::Batch, name: &str) -> Vec<f32> {
    b.inputs[name].to_vec1::<f32>().unwrap()
}

#[test]
fn implicit_batch_carries_like_flags() {
    let d = load("chrono_clicks", [0.5, 0.25, 0.25], TrainPositives::All);
    let mut run = stub_run(2);
    // Positives 2 (row 0, liked), 1 (row 2, not), 5 (row 3, liked); 2 negatives each.
    let idx = [2, 1, 5];
    assert_eq!(
        d.batch_like(&idx, 6),
        Some(vec![1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    );
    let b = run.make_batch(&d, &idx).unwrap();
    assert_eq!(
        values(&b, "label"),
        vec![1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    );
    assert_eq!(
        values(&b, "like"),
        vec![1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    );
    // Negatives avoid every training click of their user.
    let users = b.inputs["user"].to_vec1::<u32>().unwrap();
    let items = b.inputs["item"].to_vec1::<u32>().unwrap();
    for k in 3..9 {
        let seen = &d.train_seen[users[k] as usize];
        assert!(seen.binary_search(&items[k]).is_err(), "negative {k}");
    }
    // The sampler's check (a Bloom filter of the pairs, then the user's
    // list) answers as the user's list does, for every user and item, and
    // the filter alone answers for some.
    let mut filtered = 0;
    for (u, seen) in d.train_seen.iter().enumerate() {
        for i in 0..d.ds.n_items as u32 {
            let want = seen.binary_search(&i).is_ok();
            assert_eq!(d.seen_in_training(u as u32, i), want, "user {u} item {i}");
            filtered += !d.train_filter.may_contain(u as u32, i) as usize;
        }
    }
    assert!(filtered > 0, "the filter rejects no pair");
    // Without click positives there is no `like` input.
    let d = load(
        "chrono_clicks",
        [0.5, 0.25, 0.25],
        TrainPositives::Threshold,
    );
    let b = run.make_batch(&d, &[0, 1]).unwrap();
    assert!(!b.inputs.contains_key("like"));
}

#[test]
fn recipe_options_and_errors() {
    let folder = fixture();
    let out = folder.parent().unwrap().join("out");
    let s = common::recipe_session("test.rhai", &common::repo_root(), &out, 7);
    let e = engine(s);
    let src = folder.display().to_string();
    let n: i64 = e
        .eval(&format!(
            r#"let d = dataset("{src}", #{{ split: "chrono_clicks", train_positives: "all",
                ratios: [0.5, 0.25, 0.25] }}); 0"#
        ))
        .unwrap();
    assert_eq!(n, 0);
    for (opts, want) in [
        (
            r#"train_positives: "clicks""#,
            "unknown train_positives 'clicks' (valid: all, threshold)",
        ),
        (
            r#"train_positives: 1"#,
            "option 'train_positives' must be a string",
        ),
        (
            r#"split: "chrono_click""#,
            "unknown split 'chrono_click' (valid: chrono_global, chrono_user, chrono_clicks,",
        ),
        (
            r#"split: "chrono_clicks", ratios: [1, 0, 0]"#,
            "the train ratio must be in (0, 1)",
        ),
    ] {
        let r = e.eval::<rhai::Dynamic>(&format!(r#"dataset("{src}", #{{ {opts} }})"#));
        let got = format_error(std::path::Path::new("t.rhai"), &r.unwrap_err());
        assert!(got.contains(want), "{opts}: {got}");
    }
}
