//! The `proxy` plugin's CP2Rec on the Open Bandit sample (position and the
//! items' training statistics as confounding proxies):
//! - the analytic gradient of the training loss matches central finite
//!   differences for COS, PROJ and no purification, with and without the
//!   accuracy-bias tradeoff, over NCF-on-fields and DCN; SOLVE's
//!   stop-gradients (CLUB's alternating updates) make the check fail, as
//!   they must;
//! - PROJ's purified representation z' is orthogonal to the proxy
//!   representation c on every test row (|cos| < 1e-4), while COS only
//!   shrinks the angle's cosine; Figure 4's PCA plot is written;
//! - KuaiRec-format input (an invented folder in the release's layout)
//!   goes through the reader into CP2Rec with item statistics as proxies.

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
                let c = grad_check(
                    bb,
                    &format!(r#"operator: "{op}", abt: {abt}, beta: 0.5, gamma: 0.3"#),
                );
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

/// An invented KuaiRec folder (the release's file layout): a biased big
/// matrix where popular videos are watched longer, a fully observed small
/// matrix, video categories and one user feature.
fn kuairec_folder() -> std::path::PathBuf {
    let dir = scratch("cp2rec-kuairec-data");
    let header = "user_id,video_id,play_duration,video_duration,time,date,timestamp,watch_ratio\n";
    let row = |u: usize, v: usize, ratio: f64, t: usize| {
        let dur = 10_000.0;
        format!(
            "{u},{v},{:.0},{dur:.0},2020-07-05 00:{:02}:00.000,20200705,{}.0,{ratio:.4}\n",
            ratio * dur,
            t % 60,
            1_593_878_400 + t
        )
    };
    // the user's taste (u % 3) matches the video's category (v % 3);
    // low video ids are "popular" and watched longer in the biased log
    let ratio = |u: usize, v: usize, biased: bool| {
        let taste = if u % 3 == v % 3 { 1.5 } else { 0.6 };
        let pop = if biased { 1.2 - v as f64 / 40.0 } else { 0.0 };
        taste + pop + ((u * 7 + v * 13) % 10) as f64 / 10.0
    };
    let (mut big, mut small) = (header.to_string(), header.to_string());
    let mut t = 0;
    for u in 0..60 {
        for k in 0..15 {
            let v = (u * 3 + k * k) % 40;
            t += 1;
            big.push_str(&row(u, v, ratio(u, v, true), t));
        }
        for v in 0..40 {
            t += 1;
            small.push_str(&row(u, v, ratio(u, v, false), t));
        }
    }
    std::fs::write(dir.join("big_matrix.csv"), big).unwrap();
    std::fs::write(dir.join("small_matrix.csv"), small).unwrap();
    let mut cats = "video_id,feat\n".to_string();
    for v in 0..40 {
        cats.push_str(&format!("{v},[{}]\n", v % 3));
    }
    std::fs::write(dir.join("item_categories.csv"), cats).unwrap();
    let mut users = "user_id,user_active_degree\n".to_string();
    for u in 0..60 {
        users.push_str(&format!("{u},{}\n", ["high", "low"][u % 2]));
    }
    std::fs::write(dir.join("user_features.csv"), users).unwrap();
    dir
}

#[test]
fn cp2rec_reads_kuairec_format_input() {
    let dir = kuairec_folder();
    let body = format!(
        r#"
let d = dataset("{}", #{{ format: "kuairec", label: "like", split: "given", valid_share: 0.2,
    item_stats: ["exposure", "ctr"] }});
let fit = #{{ epochs: 30, batch_size: 64, lr: 0.02, optimizer: "adam", loss: "bce", seed: 2 }};
let r = train(d, backbone("dcn", #{{ dim: 4, cross_layers: 1, deep_layers: [8] }}),
    estimator("cp2rec", #{{ operator: "proj", proxies: "item.stat_exposure,item.stat_ctr", propensity: "popularity", clip: 0.05 }}), fit);
let m = evaluate(r, "pointwise", #{{ part: "test" }});
print(`CHECK n ${{m.n}}`);
print(`CHECK auc ${{m.auc}}`);
print(`CHECK valid ${{evaluate(r, "pointwise", #{{ part: "valid" }}).n}}`);
"#,
        dir.strip_prefix(root()).unwrap().display()
    );
    let c = recipe_checks("cp2rec-kuairec", &body);
    // the small matrix is the test part: 60 users x 40 videos
    assert_eq!(c["n"], 2400.0, "{c:?}");
    // 20% of the big matrix's 900 rows validate
    assert_eq!(c["valid"], 180.0, "{c:?}");
    // the category match drives the test likes: a trained model ranks them
    assert!(c["auc"] > 0.6, "{c:?}");
}
