//! The backbone zoo's acceptance, per backbone (each its own test):
//! - the analytic gradient of the training loss matches central finite
//!   differences on a tiny batch (f64 model, sampled entries of every dense
//!   parameter and touched embedding row);
//! - `score_all`, where the backbone has it, equals per-pair `predict` on
//!   every item for a sample of users;
//! - trained with the naive estimator on ML-100K (chronological per-user
//!   split, rating >= 4 positives; the bundled data when ML-100K is absent)
//!   it beats the popularity ranking on test NDCG@10 (all-ranking), seeded.
//!
//! A toy estimator with a detached term shows the gradient check can fail.

use causalrec_e2e::*;

/// The data every zoo test uses: ML-100K with its user and item fields
/// (genres, year; age, gender, occupation) and dense item features built
/// from genres and a hashed title bag of words (for MMGCN).
fn data_expr(history: usize) -> String {
    let modalities =
        r#"modalities: #{ genre: "class", title: #{ from: "movie_title", hash: 64 } }"#;
    if shared_data("ml-100k").is_some() {
        format!(
            r#"dataset("ml-100k", #{{ split: "chrono_user", ratios: [0.8, 0.1, 0.1],
                positive_threshold: 4.0, drop: ["zip_code", "movie_title"], history: {history},
                {modalities} }})"#
        )
    } else {
        format!(
            r#"dataset("bundled", #{{ split: "chrono_user", ratios: [0.8, 0.1, 0.1], history: {history} }})"#
        )
    }
}

/// Gradient check, score_all agreement, then a seeded learning run.
/// `small` are the backbone's parameters for the checks, `params` and
/// `opts` those of the learning run.
fn zoo_case(name: &str, small: &str, params: &str, opts: &str) -> Checks {
    zoo_case_with_history(name, small, params, opts, 50)
}

/// [`zoo_case`] with histories of at most `history` items (sequential
/// models train faster on shorter ones).
fn zoo_case_with_history(
    name: &str,
    small: &str,
    params: &str,
    opts: &str,
    history: usize,
) -> Checks {
    let data = data_expr(history);
    let body = format!(
        r#"
let data = {data};
let g = train(data, backbone("{name}", {small}), estimator("naive"),
    #{{ epochs: 0, f64: true, loss: "bpr", negatives: 1, seed: 3 }});
let c = grad_check(g, #{{ batch: 6, per_param: 3 }});
print(`CHECK checked ${{c.checked}}`);
print(`CHECK failures ${{c.failures}}`);
print(`first failure: ${{c.first_failure}}`);
let s = score_all_check(g, #{{ users: 3 }});
if s != () {{ print(`CHECK score_all_diff ${{s}}`); }}
let pop = popularity(data, #{{}});
print(`CHECK pop_ndcg ${{pop["ndcg@10"]}}`);
let r = train(data, backbone("{name}", {params}), estimator("naive"), {opts});
let m = evaluate(r, "all_ranking");
print(`CHECK ndcg ${{m["ndcg@10"]}}`);
"#
    );
    let (o, _) = run_recipe(&format!("zoo-{name}"), &body, &[]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{name}: {stderr}\n{stdout}");
    let c = checks(&stdout);
    assert!(
        c["checked"] >= 3.0,
        "{name}: too few entries checked\n{stdout}"
    );
    assert_eq!(
        c["failures"], 0.0,
        "{name}: gradient check failed\n{stdout}"
    );
    if let Some(d) = c.get("score_all_diff") {
        assert!(*d < 1e-4, "{name}: score_all differs from predict by {d}");
    }
    assert!(
        c["ndcg"] > c["pop_ndcg"],
        "{name}: NDCG@10 {} does not beat popularity {}",
        c["ndcg"],
        c["pop_ndcg"]
    );
    eprintln!(
        "{name}: NDCG@10 {:.4} vs popularity {:.4}; {} gradient entries checked",
        c["ndcg"], c["pop_ndcg"], c["checked"]
    );
    c
}

/// The `CHECK` figures a recipe printed.
type Checks = std::collections::BTreeMap<String, f64>;

/// Short, seeded training: enough to beat popularity, cheap in a debug build.
const FIT: &str =
    r#"#{ epochs: 6, batch_size: 1024, lr: 0.01, negatives: 1, loss: "bpr", seed: 11 }"#;

#[test]
fn zoo_mf() {
    zoo_case("mf", "#{ dim: 4 }", "#{ dim: 32 }", FIT);
}

#[test]
fn zoo_fm() {
    let c = zoo_case("fm", "#{ dim: 4 }", "#{ dim: 32 }", FIT);
    // FM scores every item at once, item features included (the catalog
    // inputs): the agreement with predict was checked, not skipped.
    if shared_data("ml-100k").is_some() {
        assert!(c.contains_key("score_all_diff"), "{c:?}");
    }
}

#[test]
fn zoo_nfm() {
    zoo_case("nfm", "#{ dim: 4 }", "#{ dim: 32 }", FIT);
}

#[test]
fn gradient_check_catches_a_wrong_gradient() {
    let body = format!(
        r#"
let data = {};
let g = train(data, backbone("mf", #{{ dim: 4 }}), estimator("toy_wrong_grad"),
    #{{ epochs: 0, f64: true, loss: "bpr", seed: 3 }});
let c = grad_check(g, #{{ batch: 6, per_param: 6 }});
print(`CHECK failures ${{c.failures}}`);
print(`CHECK rel ${{c.max_rel_err}}`);
"#,
        data_expr(50)
    );
    let (o, _) = run_recipe("zoo-wrong-grad", &body, &[]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let c = checks(&stdout);
    assert!(
        c["failures"] > 0.0,
        "a detached term went unnoticed\n{stdout}"
    );
    assert!(c["rel"] > 0.1, "{stdout}");
}

#[test]
fn zoo_ncf() {
    zoo_case(
        "ncf",
        "#{ factors: 4, layers: [8, 4] }",
        "#{ factors: 32, layers: [64, 32, 16] }",
        FIT,
    );
}

#[test]
fn zoo_dcn() {
    zoo_case("dcn", "#{ dim: 4, deep_layers: [8] }", "#{ dim: 16 }", FIT);
}

/// Sequential models: histories of 20, small networks, 3 epochs (a debug
/// build runs DIN at a few thousand examples per second).
const FIT_SEQ: &str =
    r#"#{ epochs: 3, batch_size: 1024, lr: 0.01, negatives: 1, loss: "bpr", seed: 11 }"#;

#[test]
fn zoo_din() {
    zoo_case_with_history(
        "din",
        r#"#{ dim: 4, attention_layers: "6", layers: "8" }"#,
        r#"#{ dim: 8, attention_layers: "8", layers: "16" }"#,
        FIT_SEQ,
        20,
    );
}

#[test]
fn zoo_din_prelu() {
    zoo_case_with_history(
        "din",
        r#"#{ dim: 4, attention_layers: "6", layers: "8", activation: "prelu" }"#,
        r#"#{ dim: 8, attention_layers: "8", layers: "16", activation: "prelu" }"#,
        FIT_SEQ,
        20,
    );
}

#[test]
fn zoo_nrhub() {
    zoo_case_with_history(
        "nrhub",
        "#{ dim: 4, attention_dim: 6 }",
        "#{ dim: 16, attention_dim: 16 }",
        FIT_SEQ,
        20,
    );
}

#[test]
fn zoo_srgnn() {
    zoo_case_with_history(
        "srgnn",
        "#{ dim: 4, steps: 2 }",
        "#{ dim: 16 }",
        FIT_SEQ,
        20,
    );
}

#[test]
fn zoo_lightgcn() {
    zoo_case(
        "lightgcn",
        "#{ dim: 4, layers: 2 }",
        "#{ dim: 32, layers: 2 }",
        FIT,
    );
}

#[test]
fn zoo_mmgcn() {
    zoo_case(
        "mmgcn",
        "#{ dim: 4, layers: 2, latent: 4 }",
        "#{ dim: 64, layers: 2 }",
        r#"#{ epochs: 4, batch_size: 2048, lr: 0.005, negatives: 1, loss: "bpr", seed: 11 }"#,
    );
}
