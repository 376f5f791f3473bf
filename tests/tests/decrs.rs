//! DecRS (backdoor adjustment) against FM on the simulator's group-imbalance
//! scenario (`scripts/scenarios/group_imbalance.rhai`): the training history
//! is drawn with some item groups over-exposed (and the skew shrinking over
//! each user's history at the user's own drift rate); the test interactions
//! follow the users' true group preference. Over 5 seeds, paired by seed,
//! the test compares truth-based NDCG@20 (all-ranking against the test
//! interactions drawn from the true preference) and C_KL@20 of the top-20
//! lists, with bias strength 4 and 0, 600 users.
//!
//! Plus the errors a user meets first (no group field).

use causalrec_e2e::*;

const SEEDS: [u32; 5] = [1, 2, 3, 4, 5];

/// Generate the scenario for every seed under one scratch folder.
fn generate(strength: &str) -> std::path::PathBuf {
    generate_seeds(
        "scripts/scenarios/group_imbalance.rhai",
        &format!("decrs-sim-{strength}"),
        &SEEDS,
        &[format!("strength={strength}"), "n_users=600".into()],
    )
}

/// FM and DecRS on each seed's data; the paired comparison as CHECK lines.
fn compare(strength: &str) -> std::collections::BTreeMap<String, f64> {
    let dir = generate(strength);
    let body = format!(
        r#"
let base = "{}";
let opts = #{{ lr: 0.05, optimizer: "adagrad", epochs: 30, batch_size: 256, negatives: 1,
              loss: "bce", early_stop: 5, metric: "recall@10" }};
let fm = []; let de = []; let fm_ckl = []; let de_ckl = [];
for s in [{}] {{
    let data = dataset(base + "/s" + s + "/decrs_all", #{{ split: "chrono_user", ratios: [0.7, 0.1, 0.2],
        roles: #{{ group: "group" }}, positive_threshold: () }});
    let o = #{{ k: [20], groups: "auto" }};
    let a = evaluate(train(data, backbone("fm", #{{ dim: 16 }}), estimator("naive"), opts), "all_ranking", o);
    let b = evaluate(train(data, backbone("fm", #{{ dim: 16 }}), estimator("decrs", #{{ alpha: 0.2 }}), opts), "all_ranking", o);
    fm.push(a["ndcg@20"]); de.push(b["ndcg@20"]); fm_ckl.push(a["ckl@20"]); de_ckl.push(b["ckl@20"]);
}}
let t = paired_t_test(de, fm);
let c = paired_t_test(de_ckl, fm_ckl);
print("CHECK ndcg_diff " + t.mean_diff);
print("CHECK ndcg_p " + t.p);
print("CHECK ndcg_fm " + fm.reduce(|s, x| s + x, 0.0) / fm.len());
print("CHECK ckl_diff " + c.mean_diff);
print("CHECK ckl_p " + c.p);
print("CHECK ndcg_sd_diff " + (t.mean_diff / t.t * sqrt(t.n.to_float())));
"#,
        dir.display(),
        SEEDS.map(|s| s.to_string()).join(", ")
    );
    let (o, _) = run_recipe(&format!("decrs-cmp-{strength}"), &body, &[]);
    let (so, se) = text(&o);
    assert!(o.status.success(), "{so}\n{se}");
    let c = checks(&so);
    eprintln!("strength {strength}: {c:?}");
    c
}

#[test]
fn decrs_against_fm_on_group_imbalance() {
    let biased = compare("4");
    let neutral = compare("0");
    // The FM baseline learns something (popularity alone is ~0.12 at strength 2).
    assert!(biased["ndcg_fm"] > 0.15, "{biased:?}");
    // Without group imbalance DecRS is not worse than FM beyond noise:
    // the mean paired difference is above -2 standard errors.
    let se0 = neutral["ndcg_sd_diff"] / (SEEDS.len() as f64).sqrt();
    assert!(neutral["ndcg_diff"] > -2.0 * se0 - 1e-4, "{neutral:?}");
    // With imbalance, DecRS beats FM on truth-based NDCG@20 (paired over the
    // seeds, p < 0.05) and its top-20 lists are better calibrated (lower
    // mean C_KL@20).
    assert!(biased["ndcg_diff"] > 0.0, "{biased:?}");
    assert!(biased["ndcg_p"] < 0.05, "{biased:?}");
    assert!(biased["ckl_diff"] < 0.0, "{biased:?}");
}

#[test]
fn decrs_with_an_unknown_group_field_says_what_is_there() {
    let (o, _) = run_recipe(
        "decrs-no-groups",
        r#"
let data = dataset("bundled", #{ split: "chrono_user", ratios: [0.8, 0.1, 0.1] });
train(data, backbone("fm", #{ dim: 8 }), estimator("decrs", #{ groups: "nope" }), #{ epochs: 1 });
"#,
        &[],
    );
    let (so, se) = text(&o);
    assert!(!o.status.success(), "{so}");
    assert!(
        se.contains("decrs") && se.contains("item column 'nope'") && se.contains("item columns"),
        "{se}"
    );
}
