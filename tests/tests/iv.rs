//! The `iv` plugin (search queries as instruments) on sequential backbones,
//! with ML-100K queries built from the genres and title words (hashed bag of words;
//! the bundled data's genres when ML-100K is absent):
//! - the analytic gradient of each estimator's training loss matches
//!   central finite differences (IV4Rec+(I) over DIN, IV4Rec+(UI) over DIN,
//!   SR-GNN and NRHUB with their own f_search attention queries, IV4Rec's
//!   least squares, JSR's joint loss), with L_IV off: L_IV's stop-gradient
//!   on the treatments is deliberately not the loss's gradient;
//! - with L_IV on, the check fails on the backbone's item table only (the
//!   stop-gradient is in force) and passes on f_proj, f_weight and the rest;
//! - with alpha = 0 (without residual, the detach trick of section 6.4.4)
//!   the item table gets the outcome's gradient although the forward value
//!   is t_hat, and f_proj gets none from L_O;
//! - trained briefly, IV4Rec+(I)-DIN and IV4Rec+(UI)-DIN separate liked
//!   from disliked test interactions (AUC) far better than untrained.

use causalrec_e2e::*;

fn data_expr() -> String {
    data_with_history(20)
}

fn data_with_history(len: usize) -> String {
    if shared_data("ml-100k").is_some() {
        format!(
            r#"dataset("ml-100k", #{{ split: "chrono_user", ratios: [0.8, 0.1, 0.1],
            positive_threshold: 4.0, drop: ["zip_code", "movie_title"], history: {len},
            modalities: #{{ query: #{{ from: "class+movie_title", hash: 32 }} }} }})"#
        )
    } else {
        format!(
            r#"dataset("bundled", #{{ split: "chrono_user", ratios: [0.8, 0.1, 0.1], history: {len},
            modalities: #{{ query: #{{ from: "genre", hash: 16 }} }} }})"#
        )
    }
}

fn run(name: &str, body: &str) -> std::collections::BTreeMap<String, f64> {
    run_out(name, body).1
}

/// The recipe's stdout and its CHECK lines (it must succeed).
fn run_out(name: &str, body: &str) -> (String, std::collections::BTreeMap<String, f64>) {
    let (o, _) = run_recipe(name, body, &[]);
    let (so, se) = text(&o);
    assert!(o.status.success(), "{name}: {se}\n{so}");
    let c = checks(&so);
    (so, c)
}

const DIN: &str =
    r#"backbone("din", #{ dim: 4, attention_layers: "6", layers: "8", activation: "prelu" })"#;

const DIN_TEXT: &str = r#"backbone("din", #{ dim: 4, attention_layers: "6", layers: "8", activation: "prelu", item_text: "query", item_id: ITEM_ID })"#;

fn grad_check_body(backbone: &str, estimator: &str) -> String {
    format!(
        r#"
let data = {};
let g = train(data, {backbone}, {estimator},
    #{{ epochs: 0, f64: true, loss: "bce", negatives: 1, seed: 3 }});
let c = grad_check(g, #{{ batch: 6, per_param: 3 }});
print(`CHECK checked ${{c.checked}}`);
print(`CHECK failures ${{c.failures}}`);
print(`first failure: ${{c.first_failure}}`);
print(`zero grad: ${{c.zero_grad}}`);
"#,
        data_expr()
    )
}

#[test]
fn iv_estimators_pass_the_gradient_check() {
    let small = r#"proj_layers: "5", weight_layers: "3", heads: 2, head_dim: 3, iv_loss: false"#;
    let cases = [
        (
            DIN.to_string(),
            format!(r#"estimator("iv4rec_plus", #{{ {small} }})"#),
        ),
        (
            DIN.to_string(),
            format!(r#"estimator("iv4rec_plus", #{{ variant: "ui", {small} }})"#),
        ),
        (
            r#"backbone("srgnn", #{ dim: 4, steps: 2 })"#.to_string(),
            format!(
                r#"estimator("iv4rec_plus", #{{ variant: "ui", search_query: "last", {small} }})"#
            ),
        ),
        (
            r#"backbone("nrhub", #{ dim: 4, attention_dim: 6 })"#.to_string(),
            format!(
                r#"estimator("iv4rec_plus", #{{ variant: "ui", search_query: "self", {small} }})"#
            ),
        ),
        (
            DIN.to_string(),
            format!(
                r#"estimator("iv4rec_plus", #{{ variant: "ui", search: "mean", alpha: 0.5, {small} }})"#
            ),
        ),
        (
            DIN.to_string(),
            r#"estimator("iv4rec", #{ weight_layers: "3", ridge: 0.5 })"#.to_string(),
        ),
        (
            DIN.to_string(),
            r#"estimator("jsr", #{ layers: "5", search_weight: 2.0 })"#.to_string(),
        ),
        // Text treatments (IV4Rec+'s MIND setting): the item is a learned
        // linear map of a fixed item vector (here the query field stands in
        // for the text), with and without the ID embedding.
        (
            DIN_TEXT.replace("ITEM_ID", "true"),
            format!(r#"estimator("iv4rec_plus", #{{ {small} }})"#),
        ),
        (
            DIN_TEXT.replace("ITEM_ID", "false"),
            r#"estimator("naive")"#.to_string(),
        ),
    ];
    for (bb, est) in cases {
        let c = run("iv-grad", &grad_check_body(&bb, &est));
        assert!(c["checked"] >= 3.0, "{bb} {est}: {c:?}");
        assert_eq!(c["failures"], 0.0, "{bb} {est}: {c:?}");
    }
}

#[test]
fn a_missing_text_field_is_named() {
    let body = format!(
        r#"let data = {};
train(data, backbone("din", #{{ dim: 4, item_text: "abstract" }}), estimator("naive"), #{{ epochs: 1 }});"#,
        data_expr()
    );
    let (o, _) = run_recipe("iv-text-missing", &body, &[]);
    let (so, se) = text(&o);
    assert!(!o.status.success(), "{so}");
    assert!(
        se.contains("din: parameter 'item_text' names item field 'abstract'")
            && se.contains("query"),
        "{se}"
    );
}

#[test]
fn recall_needs_vectors_in_the_queries_space() {
    // `recall` (section 6.2.1's cosine recall of a query for items without
    // one) must name vectors of the queries' width.
    let body = r#"let data = dataset("bundled", #{ split: "chrono_user", ratios: [0.8, 0.1, 0.1], history: 5,
    modalities: #{ query: #{ from: "genre", hash: 16 }, other: #{ from: "genre", hash: 8 } } });
train(data, backbone("din", #{ dim: 4 }), estimator("iv4rec_plus", #{ recall: "other" }), #{ epochs: 1 });"#;
    let (o, _) = run_recipe("iv-recall-dims", body, &[]);
    let (so, se) = text(&o);
    assert!(!o.status.success(), "{so}");
    assert!(
        se.contains(
            "iv4rec_plus: recall field 'other' has 8 dimensions and query field 'query' 16"
        ),
        "{se}"
    );
}

#[test]
fn the_iv_loss_does_not_reach_the_treatments() {
    // With L_IV on (a large gamma), central differences of the item table
    // see d L_IV / d t, which the stop-gradient removes from the analytic
    // gradient: the check must fail there.
    let est = r#"estimator("iv4rec_plus", #{ proj_layers: "5", weight_layers: "3", gamma: 50.0 })"#;
    let (so, c) = run_out("iv-stopgrad", &grad_check_body(DIN, est));
    // per_param 3: exactly the three checked entries of DIN's item table
    // (the treatments' only source) fail; f_proj, f_weight and the rest of
    // DIN pass.
    assert_eq!(c["failures"], 3.0, "{so}");
    assert!(
        so.contains("first failure: main/item["),
        "the failures should be in the item table\n{so}"
    );
}

#[test]
fn without_residual_the_treatments_learn_through_the_detach_trick() {
    // alpha = 0 (section 6.4.4's "w/o non-causal"): t_re = t_hat + t_tilde -
    // stopgrad(t_tilde). Its value is t_hat, so central differences see no
    // dependence on DIN's item table and the full one on f_proj; the
    // analytic gradient is the other way round: the item table gets the
    // outcome's gradient (the detach trick) and f_proj none from L_O (its
    // two paths cancel; L_IV is off here). Both disagreements must show.
    let est = r#"estimator("iv4rec_plus", #{ proj_layers: "5", weight_layers: "3", iv_loss: false, alpha: 0.0 })"#;
    let (so, c) = run_out("iv-detach", &grad_check_body(DIN, est));
    let zero = so
        .lines()
        .find_map(|l| l.strip_prefix("zero grad: "))
        .unwrap_or_default();
    assert!(
        zero.contains("estimator/iv.proj.0.weight") && zero.contains("estimator/iv.proj.1.bias"),
        "f_proj should get no gradient from L_O\n{so}"
    );
    assert!(
        !zero.contains("main/item"),
        "the item table should get the outcome's gradient\n{so}"
    );
    // At least the three checked item-table entries (analytic != 0,
    // numeric 0) and some of f_proj's (analytic 0, numeric != 0).
    assert!(c["failures"] >= 4.0, "{so}");
}

#[test]
fn iv4rec_plus_din_learns() {
    // Cheap to evaluate in a debug build: AUC of the test interactions,
    // liked (rating >= 4) against rated but not liked, from models trained
    // on the liked ones with sampled negatives (all-ranking would score
    // every (user, item) pair through DIN); one epoch, histories of 10.
    let body = format!(
        r#"
let data = {};
let fit = #{{ epochs: 1, batch_size: 1024, lr: 0.01, negatives: 1, loss: "bce", seed: 11 }};
let din = #{{ dim: 8, attention_layers: "8", layers: "16", activation: "prelu" }};
for v in ["i", "ui"] {{
    let est = estimator("iv4rec_plus", #{{ variant: v, proj_layers: "16", weight_layers: "8" }});
    let r0 = train(data, backbone("din", din), est, fit + #{{ epochs: 0 }});
    print(`CHECK ${{v}}_untrained ${{evaluate(r0, "auc")["auc"]}}`);
    let r = train(data, backbone("din", din), est, fit);
    print(`CHECK ${{v}} ${{evaluate(r, "auc")["auc"]}}`);
}}
"#,
        data_with_history(10)
    );
    let c = run("iv-learns", &body);
    for v in ["i", "ui"] {
        assert!(c[v] > c[&format!("{v}_untrained")] + 0.05, "{v}: {c:?}");
    }
}
