//! IV4Rec+(I) (search queries as instruments) against DIN on the
//! simulator's instruments scenario (`scripts/scenarios/instruments.rhai`):
//! a hidden per-item promotion B raises exposure and clicks in the logged
//! impression lists; each item's query vector is a noisy copy of its latent
//! content (the instrument); the test lists are fresh impressions clicked
//! without B. Over 5 seeds, paired by seed, truth-based per-impression AUC
//! of DIN and IV4Rec+(I)-DIN at confounding strength 1.5 and 0 (300 users x
//! 100 items, 16 training + 2 validation + 2 test lists of 5 per user); on
//! one seed, the distance correlation of IV4Rec+'s trained item embeddings
//! with the items' own query vectors against shuffled ones. IV4Rec+(I) is
//! asserted not worse than DIN beyond noise at both strengths, not better:
//! with ID-embedding treatments it is not, at this size nor in any of the
//! sparser, longer-trained or other-gamma settings measured on 2026-12-03
//! (scripts/scenarios/README.md has the numbers). With the paper's MIND
//! treatments (a fixed text vector of the item, mapped linearly, plus the ID
//! embedding; scenario `text = true`) it is, and that is asserted.

use causalrec_e2e::*;
use std::collections::{BTreeMap, HashMap};

const SEEDS: [u32; 5] = [1, 2, 3, 4, 5];

/// Scenario size.
const SIZE: [&str; 2] = ["n_users=300", "n_items=100"];

/// The two treatments compared: the item's ID embedding (the scenario's
/// default), or its fixed text vector mapped linearly plus the ID embedding
/// (IV4Rec+'s MIND setting, `text = true`).
#[derive(Clone, Copy, PartialEq)]
enum Treatment {
    Id,
    Text,
}

/// Scenario settings of the text treatment: a second noisy view of the
/// content (sd 1.5), noisier than the query (sd 0.5).
const TEXT: [&str; 2] = ["text=true", "text_noise=1.5"];

fn generate(strength: &str, t: Treatment) -> std::path::PathBuf {
    let mut sets = vec![format!("strength={strength}")];
    sets.extend(SIZE.map(String::from));
    if t == Treatment::Text {
        sets.extend(TEXT.map(String::from));
    }
    let tag = if t == Treatment::Text { "-text" } else { "" };
    generate_seeds(
        "scripts/scenarios/instruments.rhai",
        &format!("iv-sim{tag}-{strength}"),
        &SEEDS,
        &sets,
    )
}

/// The query vectors of `dir`'s items in the data set's dense id order
/// (first appearance in `iv.inter`), as a Rhai array literal, and the same
/// vectors with a fixed derangement of the items (shuffled pairs).
fn queries_literal(dir: &std::path::Path) -> (String, String) {
    let item = std::fs::read_to_string(dir.join("iv.item")).unwrap();
    let q: HashMap<String, String> = item
        .lines()
        .skip(1)
        .filter_map(|l| {
            // item_id, query, then (with text) the text vector
            let mut cells = l.split('\t');
            let (id, v) = (cells.next()?, cells.next()?);
            Some((
                id.to_string(),
                format!("[{}]", v.split(' ').collect::<Vec<_>>().join(", ")),
            ))
        })
        .collect();
    let inter = std::fs::read_to_string(dir.join("iv.inter")).unwrap();
    let mut order: Vec<String> = Vec::new();
    for l in inter.lines().skip(1) {
        let id = l.split('\t').nth(1).unwrap().to_string();
        if !order.contains(&id) {
            order.push(id);
        }
    }
    let real: Vec<&str> = order.iter().map(|id| q[id].as_str()).collect();
    let n = real.len();
    // i -> (37 i + 11) mod n, with n = 100: a permutation without fixed points
    let shuffled: Vec<&str> = (0..n).map(|i| real[(37 * i + 11) % n]).collect();
    (
        format!("[{}]", real.join(", ")),
        format!("[{}]", shuffled.join(", ")),
    )
}

/// DIN and IV4Rec+(I)-DIN on each seed's data; the paired comparison (and
/// on seed 1 the dCor check) as CHECK lines. With the ID treatment both
/// train 5 epochs; with the text treatment up to 40 epochs, early-stopped on
/// the logged validation lists' AUC (patience 3).
fn compare(strength: &str, t: Treatment) -> BTreeMap<String, f64> {
    let dir = generate(strength, t);
    let (real, shuffled) = queries_literal(&dir.join("s1"));
    let (fit, din) = match t {
        Treatment::Id => ("epochs: 5", ""),
        Treatment::Text => (
            "epochs: 40, early_stop: 3, metric: \"auc\"",
            ", item_text: \"text\"",
        ),
    };
    let body = format!(
        r#"
let base = "{}";
let fit = #{{ {fit}, batch_size: 256, lr: 0.01, optimizer: "adam", loss: "bce", seed: 11 }};
let din = #{{ dim: 8, attention_layers: "8", layers: "16", activation: "prelu"{din} }};
let ivp = #{{ variant: "i", proj_layers: "16", weight_layers: "8" }};
let q_real = {real};
let q_shuffled = {shuffled};
let auc = |r| evaluate(r, "impressions", #{{ part: "test", by: "impression", k: [5, 10] }}).auc;
let a = []; let b = [];
for s in [{}] {{
    let d = dataset(base + "/s" + s + "/iv", #{{ split: "chrono_user", ratios: [0.8, 0.1, 0.1],
        label: "click", positive_threshold: 0.5, history: 10, modalities: #{{ {modalities} }} }});
    a.push(auc.call(train(d, backbone("din", din), estimator("naive"), fit)));
    let r = train(d, backbone("din", din), estimator("iv4rec_plus", ivp), fit);
    b.push(auc.call(r));
    if s == 1 {{
        let ids = []; for i in 0..q_real.len() {{ ids.push(i); }}
        let e = item_embeddings(r, "item", ids);
        print("CHECK dcor_real " + dcor(e, q_real));
        print("CHECK dcor_shuffled " + dcor(e, q_shuffled));
    }}
}}
let mean = |x| x.reduce(|s, y| s + y, 0.0) / x.len();
let p = paired_t_test(b, a);
print("CHECK diff " + p.mean_diff);
print("CHECK p " + p.p);
print("CHECK sd_diff " + (p.mean_diff / p.t * sqrt(p.n.to_float())));
print("CHECK din " + mean.call(a));
print("CHECK iv " + mean.call(b));
print("per seed: DIN " + a + " IV4Rec+(I) " + b);
"#,
        dir.display(),
        SEEDS.map(|s| s.to_string()).join(", "),
        modalities = match t {
            Treatment::Id => "query: \"query\"",
            Treatment::Text => "query: \"query\", text: \"text\"",
        },
    );
    let tag = if t == Treatment::Text { "-text" } else { "" };
    let (o, _) = run_recipe(&format!("iv-sim-cmp{tag}-{strength}"), &body, &[]);
    let (so, se) = text(&o);
    assert!(o.status.success(), "{so}\n{se}");
    eprintln!(
        "{}",
        so.lines()
            .filter(|l| l.starts_with("per seed"))
            .collect::<String>()
    );
    let c = checks(&so);
    eprintln!("strength {strength}: {c:?}");
    c
}

#[test]
fn iv4rec_plus_against_din_on_the_instruments_scenario() {
    let biased = compare("1.5", Treatment::Id);
    let neutral = compare("0", Treatment::Id);
    // IV4Rec+(I) is not worse than DIN beyond noise (mean paired
    // difference above -2 standard errors), without and with confounding.
    // That it beats DIN with confounding (the paper's claim) does NOT hold
    // here: measured 2026-11-23, diff -0.0027, p = 0.50 at strength 1.5,
    // and in no setting of the 2026-12-03 search (|diff| <= 0.008, p >= 0.2;
    // see scripts/scenarios/README.md), so it is not asserted.
    for m in [&neutral, &biased] {
        let se = m["sd_diff"] / (SEEDS.len() as f64).sqrt();
        assert!(m["diff"] > -2.0 * se - 1e-4, "{m:?}");
    }
    // Confounding costs both models truth-based AUC.
    assert!(
        biased["din"] < neutral["din"] && biased["iv"] < neutral["iv"],
        "{biased:?} {neutral:?}"
    );
    // The trained item embeddings depend on the items' own queries more
    // than on shuffled ones.
    for m in [&biased, &neutral] {
        assert!(m["dcor_real"] > m["dcor_shuffled"], "{m:?}");
    }
}

/// The paper's claim, in its MIND setting: the treatment is the item's text
/// vector (a second noisy view of the content, as MIND's BERT embedding of
/// the article) mapped linearly, plus the ID embedding. Under confounding
/// (strength 1.5) IV4Rec+(I)-DIN beats DIN on the truth-based test lists
/// over 5 seeds, paired p < 0.05. Measured 2026-12-06 (release): DIN 0.5947,
/// IV4Rec+(I) 0.6207, diff +0.026, p = 0.0002, ahead on every seed; seeds
/// 6-10 +0.029, p = 0.015. Without confounding the gain is larger (+0.041),
/// so it comes from the instrument's information about the content more
/// than from removing the promotion (README, IV4Rec+ section).
#[test]
fn iv4rec_plus_beats_din_with_text_treatments_under_confounding() {
    let m = compare("1.5", Treatment::Text);
    assert!(m["diff"] > 0.0 && m["p"] < 0.05, "{m:?}");
    assert!(m["dcor_real"] > m["dcor_shuffled"], "{m:?}");
}

/// `recipes/iv4rec_din.rhai --set mind=<folder>` runs Table 2 (DIN, JSR,
/// IV4Rec, IV4Rec+(UI), IV4Rec+(I)) on the scenario written in MIND's
/// format, read by the MIND reader, scored per impression list.
#[test]
fn the_iv4rec_din_recipe_runs_on_the_scenario_in_mind_format() {
    let sets: Vec<String> = ["n_users=40", "n_items=30", "text=true", "mind=true"]
        .map(String::from)
        .to_vec();
    let dir = generate_seeds(
        "scripts/scenarios/instruments.rhai",
        "iv-sim-mind",
        &[1],
        &sets,
    );
    let mind = dir.join("s1/mind");
    let out = scratch("iv-sim-mind-run");
    let o = host(&[
        "run",
        "recipes/iv4rec_din.rhai",
        "--out",
        out.to_str().unwrap(),
        "--set",
        &format!("mind={}", mind.display()),
        "--set",
        "epochs=1",
        "--set",
        "ablations=false",
    ]);
    let (so, se) = text(&o);
    assert!(o.status.success(), "{so}\n{se}");
    let rows: Vec<&str> = so
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains("DIN |"))
        .collect();
    let methods: Vec<&str> = rows
        .iter()
        .map(|l| l.split('|').nth(1).unwrap().trim())
        .collect();
    assert_eq!(
        methods,
        [
            "DIN",
            "JSR-DIN",
            "IV4Rec-DIN",
            "IV4Rec+(UI)-DIN",
            "IV4Rec+(I)-DIN"
        ],
        "{so}"
    );
    for l in rows {
        let cells: Vec<&str> = l.split('|').map(str::trim).collect();
        let auc: f64 = cells[2].parse().unwrap();
        // 2 test lists per user, minus the single-class lists skipped
        let (scored, skipped): (f64, f64) = (cells[6].parse().unwrap(), cells[8].parse().unwrap());
        assert!(auc > 0.0 && auc < 1.0, "{l}");
        assert_eq!(scored + skipped, 80.0, "{l}");
    }
}
