//! Per-impression evaluation (MIND's protocol, IV4Rec+ section 6.2), the
//! distance correlation and trained embedding rows from recipes, on a tiny
//! atomic data set with an `impression` column written under the target
//! folder and a small matrix factorisation trained on its labels; on the
//! same run, the training-batch pipeline against a sequential loop.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::RVec;
use candle_core::Device;
use causalrec_host::data::{Data, DataConfig};
use causalrec_host::eval::impression_metrics;
use causalrec_host::plugins::Registry;
use causalrec_host::protocols::impression_eval;
use causalrec_host::recipe::{engine, format_error, RunHandle, Session, SessionConfig};
use causalrec_host::train::{Components, Run, TrainConfig};
use causalrec_sdk::component::{
    BackboneAdapter, Backbone_TO, EstimatorAdapter, Estimator_TO, LossAdapter, Loss_TO,
};
use causalrec_sdk::{
    BackboneImpl, BackboneInfo, Backbones, Ctx, Emb, EstimatorImpl, Init, LossImpl, Result, Var,
};
use rhai::{Dynamic, Map};

/// (user, item, label, impression) per row; row `r` has timestamp `r + 1`.
/// The earliest 12 rows train (`chrono_global`, ratios 0.6 / 0 / 0.4); the
/// test part holds impressions `e` (two clicks), `f` (one click) and `g`
/// (no click: skipped).
const ROWS: [(&str, &str, u8, &str); 20] = [
    ("u1", "i1", 1, "a"),
    ("u1", "i2", 0, "a"),
    ("u1", "i3", 0, "a"),
    ("u2", "i2", 1, "b"),
    ("u2", "i4", 0, "b"),
    ("u2", "i1", 0, "b"),
    ("u3", "i3", 1, "c"),
    ("u3", "i5", 0, "c"),
    ("u3", "i6", 0, "c"),
    ("u4", "i4", 1, "d"),
    ("u4", "i6", 0, "d"),
    ("u4", "i2", 0, "d"),
    ("u1", "i4", 1, "e"),
    ("u1", "i5", 0, "e"),
    ("u1", "i6", 1, "e"),
    ("u2", "i3", 0, "f"),
    ("u2", "i5", 1, "f"),
    ("u2", "i6", 0, "f"),
    ("u3", "i1", 0, "g"),
    ("u3", "i2", 0, "g"),
];

/// Writes `ROWS` as `<dir>/imp/imp.inter` in a fresh folder under the
/// target folder and returns `<dir>/imp`.
fn fixture() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "impressions-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let folder = dir.join("imp");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&folder).unwrap();
    let mut text = String::from(
        "user_id:token\titem_id:token\tlabel:float\timpression:token\ttimestamp:float\n",
    );
    for (r, (u, i, l, imp)) in ROWS.iter().enumerate() {
        text.push_str(&format!("{u}\t{i}\t{l}\t{imp}\t{}\n", r + 1));
    }
    std::fs::write(folder.join("imp.inter"), text).unwrap();
    folder
}

fn load(folder: &Path, label: bool) -> Data {
    let cfg = DataConfig {
        source: folder.display().to_string(),
        split: "chrono_global".into(),
        ratios: [0.6, 0.0, 0.4],
        label: label.then(|| "label".to_string()),
        positive_threshold: label.then_some(0.5),
        ..DataConfig::default()
    };
    Data::load(cfg, Path::new("/")).unwrap()
}

/// `<p_u, q_i>` with 4 dimensions.
struct TinyMf;

impl BackboneImpl for TinyMf {
    fn info(&self) -> BackboneInfo {
        BackboneInfo {
            field_interaction: false,
            score_all: false,
            needs_history: false,
            dim: 4,
        }
    }
    fn embed(&self, g: &Ctx<'_, '_>) -> Result<Emb> {
        let s = g.schema();
        g.embedding("user", s.n_users as usize, 4, Init::normal(0.5));
        g.embedding("item", s.n_items as usize, 4, Init::normal(0.5));
        let mut emb = Emb::default();
        emb.set("user", g.lookup("user", g.input("user")).id);
        emb.set("item", g.lookup("item", g.input("item")).id);
        Ok(emb)
    }
    fn predict<'c>(
        &self,
        _g: &'c Ctx<'_, '_>,
        user: Var<'c>,
        item: Var<'c>,
        _emb: &Emb,
    ) -> Result<Var<'c>> {
        Ok((user * item).sum(-1))
    }
}

/// The backbone's logit.
struct Plain;

impl EstimatorImpl for Plain {
    fn score<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Var<'c>> {
        Ok(bb.main()?.forward(g)?.0)
    }
}

/// BCE with logits on the labels.
struct Bce;

impl LossImpl for Bce {
    fn compute<'c>(
        &self,
        _g: &'c Ctx<'_, '_>,
        preds: &[(String, Var<'c>)],
        labels: Var<'c>,
        weights: Option<Var<'c>>,
    ) -> Result<Var<'c>> {
        let p = preds.first().ok_or("no prediction")?.1;
        Ok(p.bce_with_logits(labels, weights))
    }
}

/// A `TinyMf` run (not trained).
fn tiny_run(cfg: TrainConfig) -> Run {
    let comps = Components {
        backbones: RVec::from(vec![Backbone_TO::from_value(
            BackboneAdapter(TinyMf),
            TD_Opaque,
        )]),
        estimator: Estimator_TO::from_value(EstimatorAdapter(Plain), TD_Opaque),
        loss: Loss_TO::from_value(LossAdapter(Bce), TD_Opaque),
        label: "tiny-mf".into(),
        shares: Vec::new(),
        scopes: Vec::new(),
    };
    Run::new("tiny-mf", comps, cfg, Device::Cpu).unwrap()
}

/// A `TinyMf` trained for 30 epochs on the labelled training rows.
fn trained(data: &Data) -> Run {
    let mut cfg = TrainConfig {
        epochs: 30,
        batch_size: 4,
        seed: 3,
        ..TrainConfig::default()
    };
    cfg.optim.lr = 0.05;
    let mut run = tiny_run(cfg);
    run.fit(data, None, |_| {}).unwrap();
    run
}

/// Training batches assembled ahead on a worker thread (`Run::steps`, as
/// `fit` trains) draw the negatives and the step seeds from the run's
/// stream exactly as a sequential loop does: two runs trained on the same
/// chunks both ways score every pair with the same bits, and their next
/// batch samples the same negatives.
#[test]
fn the_batch_pipeline_draws_like_a_sequential_loop() {
    let data = load(&fixture(), false);
    let make = || {
        let mut cfg = TrainConfig {
            negatives: 3,
            batch_size: 2,
            seed: 5,
            ..TrainConfig::default()
        };
        cfg.optim.lr = 0.1;
        let mut run = tiny_run(cfg);
        run.prepare(&data).unwrap();
        run
    };
    let order: Vec<usize> = (0..data.train_pos.len())
        .rev()
        .chain(0..data.train_pos.len())
        .collect();
    let chunks: Vec<&[usize]> = order.chunks(2).collect();
    assert!(chunks.len() >= 4, "{}", chunks.len());
    let mut piped = make();
    let mut seen = Vec::new();
    piped
        .steps(&data, &chunks, |k| {
            seen.push(k);
            Ok(())
        })
        .unwrap();
    assert_eq!(seen, (0..chunks.len()).collect::<Vec<_>>());
    let mut plain = make();
    for c in &chunks {
        let b = plain.make_batch(&data, c).unwrap();
        plain.step(&data, &b).unwrap();
    }
    let (n_users, n_items) = (data.ds.n_users as u32, data.ds.n_items as u32);
    let us: Vec<u32> = (0..n_users)
        .flat_map(|u| (0..n_items).map(move |_| u))
        .collect();
    let is: Vec<u32> = (0..n_users).flat_map(|_| 0..n_items).collect();
    let a = piped.score_pairs(&data, &us, &is).unwrap();
    let b = plain.score_pairs(&data, &us, &is).unwrap();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&a), bits(&b));
    // the untrained start differs: the steps did train
    let fresh = make().score_pairs(&data, &us, &is).unwrap();
    assert_ne!(bits(&a), bits(&fresh));
    let next = |r: &mut Run| {
        r.make_batch(&data, chunks[0]).unwrap().inputs["item"]
            .to_vec1::<u32>()
            .unwrap()
    };
    assert_eq!(next(&mut piped), next(&mut plain));
}

#[test]
fn impression_metrics_are_the_list_metrics_of_the_runs_scores() {
    let folder = fixture();
    let data = load(&folder, true);
    assert_eq!(data.split.train, (0..12).collect::<Vec<_>>());
    assert_eq!(data.split.test, (12..20).collect::<Vec<_>>());
    let mut run = trained(&data);
    let h = &run.history;
    assert!(h.last().unwrap().loss < h[0].loss, "the model learns");

    // The run's score of every test row, grouped by hand: e = rows 12-14,
    // f = 15-17, g = 18-19 (no click).
    let rows = data.split.test.clone();
    let (u, i) = (data.ds.user_col(), data.ds.item_col());
    let us: Vec<u32> = rows.iter().map(|&r| u[r]).collect();
    let is: Vec<u32> = rows.iter().map(|&r| i[r]).collect();
    let s: Vec<f64> = run
        .score_pairs(&data, &us, &is)
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect();
    let ks = [5, 10];
    let e = impression_metrics(&s[0..3], &[true, false, true], &ks).unwrap();
    let f = impression_metrics(&s[3..6], &[false, true, false], &ks).unwrap();
    assert!(impression_metrics(&s[6..8], &[false, false], &ks).is_none());

    let got = impression_eval(&mut run, &data, &rows, "impression", &ks).unwrap();
    for k in ["auc", "mrr", "ndcg@5", "ndcg@10"] {
        let want = (e[k] + f[k]) / 2.0;
        assert!((got[k] - want).abs() < 1e-12, "{k}: {} vs {want}", got[k]);
    }
    assert_eq!((got["impressions"], got["skipped"]), (2.0, 1.0));
    assert_eq!(got.len(), 6);
    // Lists of 3 items: nDCG@5 = nDCG@10 = nDCG over the whole list.
    assert_eq!(got["ndcg@5"], got["ndcg@10"]);

    // The same from a recipe, through the report.
    let out = folder.parent().unwrap().join("out");
    let labelled = Arc::new(data);
    let run = RunHandle {
        run: Arc::new(Mutex::new(run)),
        data: labelled.clone(),
        name: "tiny-mf".into(),
    };
    let e = engine(session(&out, false));
    let mut scope = rhai::Scope::new();
    scope.push("run", run.clone());
    let m: Map = e
        .eval_with_scope(
            &mut scope,
            r#"evaluate(run, "impressions", #{ part: "test", by: "impression" })"#,
        )
        .unwrap();
    for (k, v) in &got {
        assert_eq!(m[k.as_str()].as_float().unwrap(), *v, "{k}");
    }
    let m: Map = e
        .eval_with_scope(&mut scope, r#"evaluate(run, "impressions", #{ k: [1] })"#)
        .unwrap();
    assert!(m.contains_key("ndcg@1") && !m.contains_key("ndcg@5"));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("evaluate impressions (test, by impression)"),
        "{report}"
    );

    // Errors name the option and what was expected.
    let unlabelled = RunHandle {
        data: Arc::new(load(&folder, false)),
        ..run.clone()
    };
    scope.push("unlabelled", unlabelled);
    for (script, want) in [
        (
            r#"evaluate(run, "impressions", #{ by: "session" })"#,
            "no interaction column 'session' for option 'by' (interaction columns: user_id, item_id, label, impression, timestamp)",
        ),
        (
            r#"evaluate(run, "impressions", #{ part: "test_2" })"#,
            "no part 'test_2' in data set",
        ),
        (
            r#"evaluate(unlabelled, "impressions")"#,
            "impressions evaluation needs a label column: dataset(.., #{label: \"<column>\"})",
        ),
        (
            // Grouped by the label, every list has one class.
            r#"evaluate(run, "impressions", #{ by: "label" })"#,
            "none of the 2 impression lists has both a clicked and an unclicked item",
        ),
        (
            r#"evaluate(run, "impressions", #{ link: "identity" })"#,
            "option 'link' does not apply to evaluate(run, \"impressions\", ..); it takes part, by and k",
        ),
        (
            r#"evaluate(run, "impressions", #{ by: 3 })"#,
            "option 'by' must be a string",
        ),
        (
            r#"evaluate(run, "pointwise", #{ by: "impression" })"#,
            "option 'by' applies only to evaluate(run, \"impressions\", ..), not to 'pointwise'",
        ),
        (
            r#"evaluate(run, "ranking")"#,
            "valid protocols: all_ranking, auc, impressions, pointwise",
        ),
    ] {
        let got = error(&e, &mut scope, script);
        assert!(got.contains(want), "{script}: {got}");
    }

    // `host check`: every metric as 0, the same checks of the options.
    let e = engine(session(&out, true));
    let mut scope = rhai::Scope::new();
    scope.push("run", run);
    let m: Map = e
        .eval_with_scope(
            &mut scope,
            r#"evaluate(run, "impressions", #{ k: [5, 10] })"#,
        )
        .unwrap();
    let keys: Vec<&str> = m.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        keys,
        ["auc", "impressions", "mrr", "ndcg@10", "ndcg@5", "skipped"]
    );
    assert!(m.values().all(|v| v.as_float().unwrap() == 0.0));
    let got = error(
        &e,
        &mut scope,
        r#"evaluate(run, "impressions", #{ by: "x" })"#,
    );
    assert!(
        got.contains("no interaction column 'x' for option 'by'"),
        "{got}"
    );
}

/// The message of the error `script` stops with.
fn error(e: &rhai::Engine, scope: &mut rhai::Scope, script: &str) -> String {
    let r = e.eval_with_scope::<Dynamic>(scope, script);
    format_error(Path::new("t.rhai"), &r.unwrap_err())
}

fn session(out: &Path, check_only: bool) -> Arc<Session> {
    let cfg = SessionConfig {
        recipe: PathBuf::from("test.rhai"),
        repo_root: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."),
        out: out.to_path_buf(),
        seed: 7,
        device: "cpu".into(),
        settings: BTreeMap::new(),
        check_only,
    };
    Session::new(cfg, Arc::new(Registry::default()), Device::Cpu).unwrap()
}

#[test]
fn dcor_and_item_embeddings_from_recipes() {
    let folder = fixture();
    let data = Arc::new(load(&folder, true));
    let run = trained(&data);
    let rows: Vec<Vec<f32>> = {
        let (name, t) = run.model.tables.find("item").unwrap();
        // Unscoped test components declare their tables under `estimator/`
        // (recipe runs: `main/`); a short name finds the table either way.
        assert_eq!(name, "estimator/item");
        [0, 2, 5].iter().map(|&r| t.row(r).to_vec()).collect()
    };
    let run = RunHandle {
        run: Arc::new(Mutex::new(run)),
        data,
        name: "tiny-mf".into(),
    };
    let out = folder.parent().unwrap().join("out");
    let e = engine(session(&out, false));
    let mut scope = rhai::Scope::new();
    scope.push("run", run.clone());
    let got: rhai::Array = e
        .eval_with_scope(&mut scope, r#"item_embeddings(run, "item", [0, 2, 5])"#)
        .unwrap();
    let got: Vec<Vec<f32>> = got
        .into_iter()
        .map(|v| {
            v.into_array()
                .unwrap()
                .into_iter()
                .map(|x| x.as_float().unwrap() as f32)
                .collect()
        })
        .collect();
    assert_eq!(got, rows);
    let m: Map = e
        .eval_with_scope(
            &mut scope,
            r#"
            let ids = [0, 1, 2, 3, 4, 5];
            let items = item_embeddings(run, "estimator/item", ids);
            let users = item_embeddings(run, "user", [0, 1, 2, 3, 0, 1]);
            #{ same: dcor(items, items), cross: dcor(items, users),
               hand: dcor([0, 1, 2, 3], [[0.0], [0], [1], [1]]) }
            "#,
        )
        .unwrap();
    let f = |k: &str| m[k].as_float().unwrap();
    assert!((f("same") - 1.0).abs() < 1e-12);
    assert!((0.0..=1.0).contains(&f("cross")));
    // The 4-point case of stats.rs: sqrt(3 / sqrt(13)).
    assert!((f("hand") - (3.0 / 13f64.sqrt()).sqrt()).abs() < 1e-12);

    for (script, want) in [
        (
            r#"item_embeddings(run, "query", [0])"#,
            "item_embeddings: no embedding table 'query' (tables: estimator/item, estimator/user)",
        ),
        (
            r#"item_embeddings(run, "item", [0, 6])"#,
            "item_embeddings: ids[1] = 6 is out of range for table 'estimator/item' with 6 rows",
        ),
        (
            r#"item_embeddings(run, "item", [-1])"#,
            "ids[0] = -1 is out of range",
        ),
        (
            r#"item_embeddings(run, "item", [0, "i2"])"#,
            "item_embeddings: ids[1] must be an integer row index, got string",
        ),
        (
            r#"dcor([1, 2], [1])"#,
            "as many x vectors as y vectors, got 2 and 1",
        ),
        (
            r#"dcor([[1], ["a"]], [1, 2])"#,
            "dcor: xs[1][0] must be a number",
        ),
        (
            r#"dcor([[1], [1, 2]], [1, 2])"#,
            "xs[1] has 2 values, xs[0] has 1",
        ),
    ] {
        let got = error(&e, &mut scope, script);
        assert!(got.contains(want), "{script}: {got}");
    }

    // `host check`: zeros, one per id; dcor of them is 0.
    let e = engine(session(&out, true));
    let mut scope = rhai::Scope::new();
    scope.push("run", run);
    let d: f64 = e
        .eval_with_scope(
            &mut scope,
            r#"let x = item_embeddings(run, "item", [0, 1, 2]); dcor(x, x)"#,
        )
        .unwrap();
    assert_eq!(d, 0.0);
}
