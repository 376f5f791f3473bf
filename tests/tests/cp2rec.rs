//! The `proxy` plugin's CP2Rec on the Open Bandit sample (position and the
//! items' training statistics as confounding proxies):
//! - the analytic gradient of the training loss matches central finite
//!   differences for COS, PROJ and no purification, with and without the
//!   accuracy-bias tradeoff, over NCF-on-fields and DCN; SOLVE's
//!   stop-gradients (CLUB's alternating updates) make the check fail, as
//!   they must;
//! - PROJ's purified representation z' is orthogonal to the proxy
//!   representation c on every test row (|cos| < 1e-4), while COS only
//!   shrinks the angle's cosine; Figure 4's PCA plot is written.

use causalrec_e2e::*;

const DATA: &str = r#"dataset("obd", #{ label: "click", split: "given", valid_share: 0.2, context: ["position"],
    item_stats: ["exposure", "ctr"] })"#;
const PROXIES: &str = "inter.position,item.stat_exposure,item.stat_ctr";

fn grad_check(backbone: &str, est: &str) -> std::collections::BTreeMap<String, f64> {
    let body = format!(
        r#"
let g = train({DATA}, {backbone}, estimator("cp2rec", #{{ proxies: "{PROXIES}", propensity: "column", clip: 0.02, {est} }}),
    #{{ epochs: 0, f64: true, loss: "bce", seed: 3 }});
let c = grad_check(g, #{{ batch: 8, per_param: 3 }});
print(`CHECK checked ${{c.checked}}`);
print(`CHECK failures ${{c.failures}}`);
print(`first failure: ${{c.first_failure}}; zero grad: ${{c.zero_grad}}`);
"#
    );
    recipe_checks("cp2rec-grad", &body)
}

const NCF: &str = r#"backbone("ncf_fields", #{ dim: 4, layers: [6] })"#;
const DCN: &str = r#"backbone("dcn", #{ dim: 4, cross_layers: 2, deep_layers: [6] })"#;

#[test]
fn cp2rec_gradients_match_finite_differences() {
    if shared_data("obd").is_none() {
        return;
    }
    for bb in [NCF, DCN] {
        for op in ["cos", "proj", "none"] {
            for abt in ["true", "false"] {
                let c = grad_check(bb, &format!(r#"operator: "{op}", abt: {abt}, beta: 0.5, gamma: 0.3"#));
                assert!(c["checked"] > 20.0, "{bb} {op} {abt}: {c:?}");
                assert_eq!(c["failures"], 0.0, "{bb} {op} abt {abt}: {c:?}");
            }
        }
    }
    // SOLVE holds q's parameters fixed in the upper bound and z, c fixed
    // in q's fitting loss (CLUB's alternating updates in one step), so
    // central differences of the summed loss must disagree: the
    // stop-gradients are in force. Their algebra is checked against the
    // equations in host/tests/cp2rec_ops.rs.
    let c = grad_check(NCF, r#"operator: "solve", beta: 0.5"#);
    assert!(c["failures"] > 0.0, "{c:?}");
}

#[test]
fn proj_makes_z_orthogonal_to_c_and_figure4_is_drawn() {
    if shared_data("obd").is_none() {
        return;
    }
    let body = format!(
        r#"
let d = {DATA};
let fit = #{{ epochs: 2, batch_size: 256, lr: 0.01, optimizer: "adam", loss: "bce", seed: 5 }};
let cosines = |reps, a, b| {{
    let worst = 0.0; let mean = 0.0;
    for k in 0..reps[a].len() {{
        let x = reps[a][k]; let y = reps[b][k];
        let xy = 0.0; let xx = 0.0; let yy = 0.0;
        for j in 0..x.len() {{ xy += x[j] * y[j]; xx += x[j] * x[j]; yy += y[j] * y[j]; }}
        let c = (xy / sqrt(xx * yy + 1e-30)).abs();
        if c > worst {{ worst = c; }}
        mean += c;
    }}
    [worst, mean / reps[a].len()]
}};
for op in ["proj", "cos"] {{
    let r = train(d, backbone("ncf_fields", #{{ dim: 6, layers: [8] }}),
        estimator("cp2rec", #{{ operator: op, proxies: "{PROXIES}", propensity: "column", clip: 0.02, beta: 0.1 }}), fit);
    let reps = representations(r, #{{ part: "test", max_rows: 500 }});
    print(`CHECK rows_${{op}} ${{reps["c"].len()}}`);
    print(`CHECK keys_${{op}} ${{reps.keys().len()}}`);
    let zp = cosines.call(reps, "z'", "c");
    let z = cosines.call(reps, "z", "c");
    print(`CHECK worst_purified_${{op}} ${{zp[0]}}`);
    print(`CHECK mean_raw_${{op}} ${{z[1]}}`);
    let p = plot_pca("fig4_" + op + ".svg", #{{ title: op, series: #{{ "c": reps["c"], "z'": reps["z'"] }} }});
    print(`CHECK explained_${{op}} ${{p.explained[0] + p.explained[1]}}`);
}}
"#
    );
    let (o, out) = run_recipe("cp2rec-reps", &body, &[]);
    let (so, se) = text(&o);
    assert!(o.status.success(), "{se}\n{so}");
    let c = checks(&so);
    eprintln!("{c:?}");
    for op in ["proj", "cos"] {
        assert_eq!(c[&format!("rows_{op}")], 500.0, "{c:?}");
        // c, z, z' and c'
        assert_eq!(c[&format!("keys_{op}")], 4.0, "{c:?}");
        let e = c[&format!("explained_{op}")];
        assert!(e > 0.0 && e <= 1.0 + 1e-9, "{c:?}");
        let svg = std::fs::read_to_string(out.join(format!("fig4_{op}.svg"))).unwrap();
        // 500 points of c, 500 of z', two legend markers
        assert_eq!(svg.matches("<circle").count(), 1002, "{op}");
    }
    // PROJ: z' = z - proj_c(z) is orthogonal to c on every row.
    assert!(c["worst_purified_proj"] < 1e-4, "{c:?}");
    // COS leaves z as it is (z' = z): not orthogonal in general.
    assert!(c["worst_purified_cos"] > 1e-3, "{c:?}");
}
