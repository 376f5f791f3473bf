//! End-to-end: build the host and the plugins as separate .so files, list them,
//! run recipes, check the run directory, and check every bad-input path gives a
//! clear error (never a panic).

use causalrec_e2e::*;
use std::process::Command;

#[test]
fn plugins_json_lists_every_builtin_component() {
    let o = host(&["plugins", "--json"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let rows = v.as_array().unwrap();
    for (kind, name) in [
        ("backbone", "mf"),
        ("backbone", "fm"),
        ("backbone", "nfm"),
        ("estimator", "naive"),
        ("loss", "bce"),
        ("loss", "bpr"),
        ("loss", "mse"),
    ] {
        let r = rows
            .iter()
            .find(|r| r["kind"] == kind && r["name"] == name)
            .unwrap_or_else(|| panic!("{kind} {name} missing"));
        assert_eq!(r["plugin"], "ctr");
        assert!(r["path"].as_str().unwrap().ends_with(".so"));
        assert!(!r["description"].as_str().unwrap().is_empty());
    }
    let fm = rows.iter().find(|r| r["name"] == "nfm").unwrap();
    let params: Vec<&str> = fm["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        params.contains(&"dim") && params.contains(&"layers") && params.contains(&"dropout"),
        "{params:?}"
    );
}

#[test]
fn bad_plugins_are_reported_and_the_rest_still_load() {
    build();
    let bad = fixtures().join("libbad_abi_fixture.so");
    let o = host(&[
        "plugins",
        "--json",
        "--plugin-dir",
        bad.to_str().unwrap(),
        "--plugin-dir",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
        "--plugin-dir",
        "/no/such/plugin.so",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("\"naive\""),
        "the good plugins must still be listed"
    );
    assert!(
        err.contains("libbad_abi_fixture.so") && err.contains("different plugin interface"),
        "{err}"
    );
    assert!(
        err.contains("libm.so.6") && err.contains("not a causalrec plugin"),
        "{err}"
    );
    assert!(
        err.contains("/no/such/plugin.so") && err.contains("no such plugin file"),
        "{err}"
    );
}

#[test]
fn tiny_recipe_writes_the_run_directory() {
    let (o, out) = run_recipe(
        "tiny",
        r#"let d = dataset("bundled");
           let r = train(d, backbone("mf", #{dim: 8}), estimator("naive"), #{epochs: 2, batch_size: 1024, lr: 0.01, loss: "bpr"});
           let m = evaluate(r, "all_ranking", #{k: [5, 10]});
           m.model = "mf";
           print_table("tiny", [m]);
           let a = evaluate(r, "auc");"#,
        &[],
    );
    let (stdout, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        stdout.contains("| run |") && stdout.contains("recall@5"),
        "{stdout}"
    );
    for f in ["config.ron", "metrics.jsonl", "report.json", "report.md"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "one line per epoch");
    assert!(
        lines[1]["loss"].as_f64().unwrap() < lines[0]["loss"].as_f64().unwrap(),
        "loss must decrease"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let eval = report
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["kind"]
                .as_str()
                .unwrap()
                .starts_with("evaluate all_ranking")
        })
        .unwrap();
    let r10 = eval["values"]["recall@10"].as_f64().unwrap();
    assert!(r10 > 0.0 && r10 <= 1.0);
    let auc = report
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"].as_str().unwrap().starts_with("evaluate auc"))
        .unwrap();
    assert!(auc["values"]["auc"].as_f64().unwrap() > 0.0);
    let cfg = std::fs::read_to_string(out.join("config.ron")).unwrap();
    assert!(
        cfg.contains("mf") && cfg.contains("naive") && cfg.contains("bundled"),
        "{cfg}"
    );
    assert!(out.join("checkpoints/mf-naive-1.safetensors").is_file());
}

#[test]
fn runs_are_deterministic_for_a_seed() {
    let body = r#"let d = dataset("bundled");
        let r = train(d, backbone("fm", #{dim: 8}), estimator("naive"), #{epochs: 1, batch_size: 2048, lr: 0.01});
        let m = evaluate(r, "all_ranking", #{k: [10]});
        print(m["ndcg@10"]);"#;
    let (a, _) = run_recipe("det_a", body, &["--seed", "7"]);
    let (b, _) = run_recipe("det_b", body, &["--seed", "7"]);
    let (c, _) = run_recipe("det_c", body, &["--seed", "8"]);
    let (sa, sb, sc) = (text(&a).0, text(&b).0, text(&c).0);
    assert!(a.status.success(), "{}", text(&a).1);
    assert_eq!(sa, sb, "same seed, same result");
    assert_ne!(sa, sc, "another seed, another result");
}

/// The numbers a recipe printed, separated by white space.
fn numbers(stdout: &str) -> Vec<f64> {
    stdout
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect()
}

#[test]
fn the_table_state_option_changes_memory_not_results() {
    // Eager and lazy optimizer state train the same model to the bit; a
    // policy that does not exist is named with the recipe's line.
    let body = r#"let d = dataset("bundled");
        let o = #{epochs: 1, batch_size: 2048, lr: 0.01};
        let m = [];
        for policy in ["eager", "lazy", "auto"] {
            o.table_state = policy;
            let r = train(d, backbone("fm", #{dim: 8}), estimator("naive"), o);
            m.push(evaluate(r, "all_ranking", #{k: [10]})["ndcg@10"]);
        }
        print(`${m[0]} ${m[1]} ${m[2]}`);
        o.table_state = "dense";
        train(d, backbone("fm", #{dim: 8}), estimator("naive"), o);"#;
    let (o, _) = run_recipe("table_state", body, &["--seed", "7"]);
    let (stdout, err) = text(&o);
    let v = numbers(&stdout);
    assert_eq!(v.len(), 3, "{stdout}\n{err}");
    assert!(v[0] > 0.0, "{v:?}");
    assert_eq!((v[0], v[0]), (v[1], v[2]), "eager, lazy and auto differ");
    assert!(!o.status.success());
    assert!(
        err.contains("table_state.rhai:11:")
            && err.contains("table_state")
            && err.contains("\"dense\""),
        "{err}"
    );
}

#[test]
fn estimators_from_another_so_use_the_hook_points() {
    // toy_rewrite (toy .so) rewrites the item embedding of mf (ctr .so);
    // toy_field (toy .so) appends a field to fm's field list.
    let (o, out) = run_recipe(
        "hooks",
        r#"let d = dataset("bundled");
           let o = #{epochs: 2, batch_size: 1024, lr: 0.01};
           let a = evaluate(train(d, backbone("mf", #{dim: 8}), estimator("toy_rewrite", #{alpha: 0.0}), o), "all_ranking");
           let b = evaluate(train(d, backbone("mf", #{dim: 8}), estimator("toy_rewrite", #{alpha: 1.0}), o), "all_ranking");
           let c = evaluate(train(d, backbone("fm", #{dim: 8}), estimator("toy_field"), o), "all_ranking");
           print(`${a["ndcg@10"]} ${b["ndcg@10"]} ${c["ndcg@10"]}`);"#,
        &[],
    );
    let (stdout, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v = numbers(&stdout);
    assert!(v.iter().all(|x| x.is_finite() && *x > 0.0), "{v:?}");
    assert_ne!(v[0], v[1], "rewriting the hook point must change the model");
    let lines = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 6);
    // toy_field's extra table lives in the estimator's namespace in the checkpoint.
    let ck = std::fs::read(out.join("checkpoints/fm-toy_field-3.safetensors")).unwrap();
    let hay = String::from_utf8_lossy(&ck[..ck.len().min(100_000)]);
    assert!(
        hay.contains("table/estimator/toy.m"),
        "appended field table missing from checkpoint"
    );
    assert!(
        hay.contains("table/main/emb.user"),
        "backbone tables are namespaced by role"
    );
}

#[test]
fn recipe_errors_name_file_line_and_column() {
    let (o, _) = run_recipe("syntax", "let d = dataset(\"bundled\";\n", &[]);
    let err = text(&o).1;
    assert!(!o.status.success());
    assert!(
        err.contains("syntax.rhai:1:") && err.contains("syntax error"),
        "{err}"
    );

    let (o, _) = run_recipe(
        "unknown_bb",
        "let d = dataset(\"bundled\");\nlet b = backbone(\"mff\");\n",
        &[],
    );
    let err = text(&o).1;
    // The list grows with the backbone zoo: check it names the valid ones, sorted.
    let listed: Vec<&str> = err
        .split("valid backbones: ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .map(|l| l.split(", ").collect())
        .unwrap_or_default();
    assert!(
        err.contains("unknown_bb.rhai:2:9")
            && err.contains("unknown backbone 'mff'")
            && ["fm", "gmf", "mf", "nfm"]
                .iter()
                .all(|b| listed.contains(b))
            && listed.windows(2).all(|w| w[0] < w[1]),
        "{err}"
    );

    let (o, _) = run_recipe(
        "unknown_param",
        "let b = backbone(\"fm\", #{dims: 3});\n",
        &[],
    );
    let err = text(&o).1;
    assert!(
        err.contains("unknown_param.rhai:1:9")
            && err.contains("unknown parameter 'dims'")
            && err.contains("dim, init_std, exclude"),
        "{err}"
    );

    let (o, _) = run_recipe(
        "bad_type",
        "let b = backbone(\"fm\", #{dim: \"big\"});\n",
        &[],
    );
    let err = text(&o).1;
    assert!(
        err.contains("bad_type.rhai:1:9") && err.contains("'dim' must be a non-negative integer"),
        "{err}"
    );

    let (o, _) = run_recipe(
        "wrong_arg",
        "let d = dataset(\"bundled\");\ntrain(d, 3, estimator(\"naive\"));\n",
        &[],
    );
    let err = text(&o).1;
    assert!(
        err.contains("wrong_arg.rhai:2:1") && err.contains("train"),
        "{err}"
    );

    let (o, _) = run_recipe("bad_opt", "let d = dataset(\"bundled\");\ntrain(d, backbone(\"mf\"), estimator(\"naive\"), #{epoch: 3});\n", &[]);
    let err = text(&o).1;
    assert!(
        err.contains("bad_opt.rhai:2:1")
            && err.contains("unknown option 'epoch'")
            && err.contains("epochs"),
        "{err}"
    );

    let (o, _) = run_recipe("sandbox", "let d = dataset(\"/etc\");\n", &[]);
    let err = text(&o).1;
    assert!(
        err.contains("sandbox.rhai:1:9") && err.contains("may only read inside"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
}

#[test]
fn bad_data_files_name_file_line_and_column() {
    // Data must sit inside the repository (the recipe sandbox), wherever the target folder is.
    let data = root().join("target").join("e2e-data").join("bad");
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("bad.inter"),
        "user_id:token\titem_id:token\trating:float\n1\t2\t5\n1\t3\tfive\n",
    )
    .unwrap();
    let rel = data
        .strip_prefix(root())
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let (o, _) = run_recipe(
        "baddata_run",
        &format!("let d = dataset(\"{rel}\");\n"),
        &[],
    );
    let err = text(&o).1;
    assert!(
        err.contains("bad.inter:3") && err.contains("rating"),
        "{err}"
    );

    std::fs::write(
        data.join("bad.inter"),
        "user_id:token\trating:float\n1\t5\n",
    )
    .unwrap();
    let (o, _) = run_recipe(
        "baddata_run2",
        &format!("let d = dataset(\"{rel}\");\n"),
        &[],
    );
    let err = text(&o).1;
    assert!(
        err.contains("bad.inter") && err.contains("item_id"),
        "{err}"
    );
}

#[test]
fn nan_loss_stops_with_epoch_step_and_keeps_the_last_checkpoint() {
    let (o, out) = run_recipe(
        "nan",
        r#"let d = dataset("bundled");
           train(d, backbone("mf", #{dim: 8}), estimator("naive"), #{epochs: 3, batch_size: 1024, lr: 0.01, loss: loss("nan_after", #{steps: 15})});"#,
        &[],
    );
    let err = text(&o).1;
    assert!(!o.status.success());
    assert!(err.contains("became NaN at epoch 2, step"), "{err}");
    assert!(err.contains("last finite checkpoint is kept at"), "{err}");
    assert!(out
        .join("checkpoints/mf-naive-1-last.safetensors")
        .is_file());
    // Nothing else is lost: the first epoch is in metrics.jsonl.
    assert_eq!(
        std::fs::read_to_string(out.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        1
    );
}

#[test]
fn third_party_example_plugin_loads_and_trains() {
    let (o, _) = run_recipe(
        "example",
        r#"let d = dataset("bundled");
           let r = train(d, backbone("gmf", #{dim: 8}), estimator("naive"), #{epochs: 1, lr: 0.01, loss: "squared_hinge"});
           print(evaluate(r, "all_ranking")["recall@10"]);"#,
        &[],
    );
    let (stdout, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(stdout.trim().parse::<f64>().unwrap() > 0.0);
}

#[test]
fn check_resolves_names_without_training() {
    let o = host(&["check", "recipes/quickstart.rhai"]);
    let (stdout, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(stdout.contains("quickstart.rhai: ok"));
}

/// Every shipped recipe resolves its components, parameters and options
/// (`host check`: nothing is trained). Recipes on ML-100K need its data.
#[test]
fn every_recipe_passes_check() {
    let dir = root().join("scripts/recipes");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".rhai"))
        .collect();
    names.sort();
    assert!(names.len() >= 7, "{names:?}");
    let have_ml100k = shared_data("ml-100k").is_some();
    let have_obd = shared_data("obd").is_some();
    for n in names {
        let src = std::fs::read_to_string(dir.join(&n)).unwrap();
        if (src.contains("\"ml-100k\"") && !have_ml100k) || (src.contains("\"obd\"") && !have_obd) {
            continue;
        }
        // A recipe over a simulator's output names the scenario in its
        // header (`host data gen <scenario> --out ..`): generate it small
        // into a scratch folder and point the recipe's `data` setting there.
        let mut args = vec!["check".to_string(), format!("recipes/{n}")];
        if let Some(scenario) = src
            .lines()
            .find_map(|l| l.split("host data gen ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
        {
            let out = scratch(&format!("check-{n}"));
            let g = host(&["data", "gen", scenario, "--out", out.to_str().unwrap()]);
            assert!(g.status.success(), "{n}: {}", text(&g).1);
            args.extend(["--set".into(), format!("data={}", out.display())]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = host(&args);
        let (stdout, err) = text(&o);
        assert!(o.status.success(), "{n}: {err}");
        assert!(stdout.contains(&format!("{n}: ok")), "{n}: {stdout}");
    }
}

#[test]
fn sdk_does_not_depend_on_a_tensor_engine() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let o = Command::new(cargo)
        .current_dir(root())
        .args([
            "tree",
            "-p",
            "causalrec-sdk",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .output()
        .unwrap();
    let tree = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && tree.contains("abi_stable"), "{tree}");
    for engine in ["candle", "tch", "burn", "dfdx", "ndarray"] {
        assert!(
            !tree.lines().any(|l| l.starts_with(engine)),
            "sdk depends on {engine}"
        );
    }
}

/// Train MF with the naive estimator and with naive-Bayes IPS on a CTAR
/// folder and print, per estimator, the mean prediction on the randomised
/// (RCT) part, the RCT positive rate, and the MSE on test set I.
fn ips_recipe(source: &str) -> String {
    let open = if source == "ctar" {
        r#"dataset("ctar", #{ split: "given", label: "islike" })"#.to_string()
    } else {
        format!(r#"dataset("{source}", #{{ format: "ctar", split: "given", label: "islike" }})"#)
    };
    format!(
        r#"
let data = {open};
for e in [["naive", estimator("naive")], ["ips", estimator("ips")]] {{
    let run = train(data, backbone("mf", #{{ dim: 16 }}), e[1],
        #{{ lr: 0.01, l2: 0.01, batch_size: 1024, epochs: 8, loss: "mse", seed: 7 }});
    let rct = evaluate(run, "pointwise", #{{ part: "train_rct" }});
    print(`CHECK ${{e[0]}}_rct_pred ${{rct.mean_prediction}}`);
    print(`CHECK rct_rate ${{rct.mean_label}}`);
    let t1 = evaluate(run, "pointwise", #{{ part: "test_1" }});
    print(`CHECK ${{e[0]}}_test1_mse ${{t1.mse}}`);
}}
"#
    )
}

/// IPS against the randomised part: the observational tags over-represent
/// liked tags (MNAR), so naive MF over-predicts the like rate of random
/// user-movie pairs; naive-Bayes IPS must move the mean prediction on the
/// RCT part towards its true rate, and (Table 3's pattern) lower the MSE on
/// test set I, the tags users liked but did not label.
fn assert_ips_removes_selection_bias(c: &std::collections::BTreeMap<String, f64>) {
    let rate = c["rct_rate"];
    let (naive, ips) = (c["naive_rct_pred"], c["ips_rct_pred"]);
    assert!(
        (ips - rate).abs() < (naive - rate).abs(),
        "IPS mean prediction {ips:.4} is not closer to the RCT rate {rate:.4} than naive {naive:.4}"
    );
    assert!(
        naive > rate + 0.02,
        "naive {naive:.4} vs rate {rate:.4}: no bias to remove?"
    );
    assert!(
        c["ips_test1_mse"] < c["naive_test1_mse"],
        "test I MSE: ips {} naive {}",
        c["ips_test1_mse"],
        c["naive_test1_mse"]
    );
}

#[test]
fn ips_removes_selection_bias_on_the_ctar_release() {
    if shared_data("ctar").is_none() {
        return;
    }
    let (o, _) = run_recipe("ips_ctar", &ips_recipe("ctar"), &[]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_ips_removes_selection_bias(&checks(&out));
}

#[test]
fn simulated_ctar_loads_and_ips_removes_its_planted_bias() {
    if shared_data("ctar").is_none() {
        return;
    }
    let d = scratch("gen_ctar");
    let gen = d.join("ctar");
    let o = host(&[
        "data",
        "gen",
        "scenarios/ctar.rhai",
        "--out",
        gen.to_str().unwrap(),
        "--seed",
        "11",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    // The m-graph's missingness classes, as in CTAR section 5.
    assert!(out.contains("R_R on rating: MAR"), "{out}");
    assert!(out.contains("R_RCT on tag_like: MCAR"), "{out}");
    assert!(out.contains("R_O on tag_like: MNAR"), "{out}");
    for f in [
        "train/obstag.csv",
        "train/rcttag.csv",
        "test/test_1.csv",
        "truth/user_tags.csv",
    ] {
        assert!(gen.join(f).is_file(), "{f} missing");
    }
    let rel = gen
        .strip_prefix(root())
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let (o, _) = run_recipe("ips_gen", &ips_recipe(&rel), &[]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_ips_removes_selection_bias(&checks(&out));
}

#[test]
fn data_gen_rejects_unknown_parameters_and_writes_truth_apart() {
    let d = scratch("gen_proxies");
    let o = host(&[
        "data",
        "gen",
        "scenarios/proxies.rhai",
        "--out",
        d.to_str().unwrap(),
        "--set",
        "n_users=40",
        "--set",
        "n_items=15",
        "--set",
        "n_log=10",
        "--set",
        "n_rand=5",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        d.join("cp2rec.inter").is_file() && d.join("truth/p_click.csv").is_file(),
        "{out}"
    );
    assert!(
        !d.join("p_click.csv").exists(),
        "truth leaked into the observed folder"
    );
    let o = host(&[
        "data",
        "gen",
        "scenarios/proxies.rhai",
        "--out",
        d.to_str().unwrap(),
        "--set",
        "n_userz=40",
    ]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("n_userz") && err.contains("n_users"), "{err}");
}

#[test]
fn data_info_shows_parts_and_label_balance() {
    if shared_data("ctar").is_none() {
        return;
    }
    let o = host(&["data", "info", "ctar", "--label", "islike"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    // The release's test sets: sizes and positives (test set I is all positive).
    assert!(
        out.contains("| test_1 | 1267 | 686 | 87 | 1267 | 1.0000 |"),
        "{out}"
    );
    assert!(out.contains("| test_2 | 4170 |"), "{out}");
    assert!(out.contains("| train_rct | 5809 | 100 |"), "{out}");
}

/// A `.npy` float32 matrix in NumPy's v1.0 format.
fn write_npy(path: &std::path::Path, rows: usize, cols: usize) {
    let header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let pad = 64 - (10 + header.len() + 1) % 64;
    let header = format!("{header}{}\n", " ".repeat(pad % 64));
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend((header.len() as u16).to_le_bytes());
    b.extend(header.as_bytes());
    for k in 0..rows * cols {
        b.extend(((k % 7) as f32 * 0.1).to_le_bytes());
    }
    std::fs::write(path, b).unwrap();
}

#[test]
fn npy_item_features_load_and_train_and_bad_shapes_name_the_file() {
    let d = scratch("npy-features");
    let npy = d.join("visual.npy");
    let recipe = |tag: &str| {
        format!(
            r#"let data = dataset("bundled", #{{ item_features: ["{}"] }});
print(data_info(data));
let run = train(data, backbone("fm", #{{ dim: 8 }}), estimator("naive"), #{{ epochs: 1 }});
print(`CHECK {tag} ${{evaluate(run, "all_ranking")["ndcg@10"]}}`);"#,
            npy.display()
        )
    };
    write_npy(&npy, 1, 4);
    let (o, _) = run_recipe("npy-bad", &recipe("bad"), &[]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("visual.npy") && err.contains("has 1 rows"),
        "{err}"
    );
    let n: usize = err
        .split("the data set has ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .expect("item count in the error");
    write_npy(&npy, n, 4);
    let (o, _) = run_recipe("npy-good", &recipe("good"), &[]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(checks(&out)["good"] > 0.0, "{out}");
}

/// The Open Bandit sample as a named source: trains pointwise on the
/// Bernoulli-TS log (`train`) and evaluates on the uniform-random log
/// (`test`), whose click rate the reader's counts fix (38 of 10,000).
#[test]
fn open_bandit_loads_as_a_named_source_and_trains_pointwise() {
    if shared_data("obd").is_none() {
        return;
    }
    let body = r#"
let data = dataset("obd", #{ split: "given", label: "click" });
let run = train(data, backbone("mf", #{ dim: 8 }), estimator("naive"), #{ epochs: 2, batch_size: 1024, lr: 0.01 });
let m = evaluate(run, "pointwise", #{ part: "test" });
print(`CHECK rate ${m.mean_label}`);
print(`CHECK n ${m.n}`);
print(`CHECK auc ${m.auc}`);
"#;
    let (o, _) = run_recipe("obd-source", body, &[]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let c = checks(&out);
    assert_eq!(c["n"], 10000.0);
    assert!((c["rate"] - 0.0038).abs() < 1e-9, "{out}");
    assert!(c["auc"] > 0.0 && c["auc"] < 1.0, "{out}");
}

/// The graph backbones' variants the zoo test leaves out (neighbour
/// sampling, MMGCN's max aggregation with concatenation on raw features):
/// gradients (f64, against central differences) on a batch, and the
/// whole-graph `score_all` against the per-pair path (the batch's K-hop
/// subgraph). The step is 1e-6: with 1e-4 some LeakyReLU or max inputs
/// cross a kink inside the difference.
#[test]
fn graph_backbone_variants_pass_gradient_and_score_all_checks() {
    if shared_data("ml-100k").is_none() {
        return;
    }
    let recipe = r#"
let data = dataset("ml-100k", #{ split: "chrono_global", ratios: [0.8, 0.1, 0.1], positive_threshold: 4.0,
    modalities: #{ genre: "class", title: #{ from: "movie_title", hash: 64 } } });
let opts = #{ lr: 0.001, epochs: 1, batch_size: 8192, negatives: 1, loss: "bpr", f64: true, seed: 7 };
for spec in [
    ["lightgcn_sampled", "lightgcn", #{ dim: 8, layers: 3, max_neighbors: 4 }],
    ["mmgcn_max", "mmgcn", #{ dim: 8, layers: 2, latent: 0, aggr: "max", concat: true }],
] {
    let run = train(data, backbone(spec[1], spec[2]), estimator("naive"), opts);
    let g = grad_check(run, #{ batch: 8, per_param: 4, h: 1e-6 });
    print(`CHECK ${spec[0]}_checked ${g.checked}`);
    print(`CHECK ${spec[0]}_failures ${g.failures}`);
    print(`CHECK ${spec[0]}_zero_grad ${g.zero_grad.len()}`);
    print(`CHECK ${spec[0]}_score_all ${score_all_check(run, #{ users: 4 })}`);
}
"#;
    let (o, _) = run_recipe("graph_checks", recipe, &[]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let c = checks(&out);
    for m in ["lightgcn_sampled", "mmgcn_max"] {
        assert!(c[&format!("{m}_checked")] > 0.0, "{out}");
        assert_eq!(c[&format!("{m}_failures")], 0.0, "{m}: {out}");
        assert_eq!(c[&format!("{m}_zero_grad")], 0.0, "{m}: {out}");
        assert!(c[&format!("{m}_score_all")] < 1e-9, "{m}: {out}");
    }
}

#[test]
fn mmgcn_without_modality_fields_says_what_is_missing() {
    let (o, _) = run_recipe(
        "mmgcn_no_modality",
        r#"let d = dataset("bundled");
           train(d, backbone("mmgcn", #{dim: 8}), estimator("naive"), #{epochs: 1, loss: "bpr"});"#,
        &[],
    );
    let err = text(&o).1;
    assert!(!o.status.success());
    assert!(
        err.contains("mmgcn needs item modality features")
            && err.contains("role 'modality'")
            && err.contains("#{modalities:"),
        "{err}"
    );
}

/// CTAR Table 3's MF, trained as the authors' released configuration does
/// (dense tables under Adam with weight decay 0.1, 100 epochs), lands on the
/// numbers the same configuration gives in PyTorch
/// (`benches/reference/ctar_mf.py`, 10 runs, 2026-12-02: I MSE 0.7098,
/// II AUC 0.7397, all AUC 0.8042).
#[test]
fn ctar_table3_mf_matches_the_pytorch_reference() {
    if shared_data("ctar").is_none() {
        return;
    }
    build();
    let out = scratch("ctar_table3_mf").join("out");
    let o = host(&[
        "run",
        "recipes/ctar_table3.rhai",
        "--set",
        "only=MF",
        "--set",
        "runs=1",
        "--out",
        out.to_str().unwrap(),
    ]);
    let (so, se) = text(&o);
    assert!(o.status.success(), "{se}\n{so}");
    let row = so
        .lines()
        .find(|l| l.starts_with("| MF (ours, 1 runs)"))
        .unwrap_or_else(|| panic!("no MF row in:\n{so}"));
    // | model | I MSE | II MSE | II AUC | III MSE | III AUC | all MSE | all AUC |
    let cells: Vec<f64> = row
        .split('|')
        .skip(2)
        .filter_map(|c| c.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(cells.len(), 7, "{row}");
    let (i_mse, ii_auc, all_auc) = (cells[0], cells[2], cells[6]);
    assert!((i_mse - 0.7098).abs() < 0.01, "I MSE {i_mse}");
    assert!((ii_auc - 0.7397).abs() < 0.005, "II AUC {ii_auc}");
    assert!((all_auc - 0.8042).abs() < 0.005, "all AUC {all_auc}");
}

/// Every built-in estimator declares its estimand; a run's report.md opens
/// with the estimand of each estimator it trained and the data provenance.
#[test]
fn estimands_are_declared_and_head_the_report() {
    build();
    let o = host(&["plugins", "--json"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let builtin = ["ctr", "debias", "frontdoor", "backdoor", "iv", "proxy"];
    let estimators: Vec<&serde_json::Value> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "estimator" && builtin.contains(&r["plugin"].as_str().unwrap()))
        .collect();
    assert!(estimators.len() >= 18, "{} estimators", estimators.len());
    for r in &estimators {
        assert!(
            r["estimand"].as_str().unwrap().len() > 40,
            "estimator {} declares no estimand",
            r["name"]
        );
    }
    let (o, out) = run_recipe(
        "estimand_report",
        r#"let d = dataset("bundled", #{ split: "chrono_user" });
let r = train(d, backbone("mf", #{ dim: 8 }), estimator("naive"), #{ epochs: 1, name: "a" });
let r2 = train(d, backbone("mf", #{ dim: 8 }), estimator("naive"), #{ epochs: 1, name: "b" });
"#,
        &[],
    );
    let (so, se) = text(&o);
    assert!(o.status.success(), "{se}\n{so}");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let head: Vec<&str> = md.lines().take(6).collect();
    assert_eq!(head[2], "## Estimands and data", "{md}");
    assert!(
        head[4].starts_with("- estimand of `naive` (plugin `ctr`): the associational"),
        "{md}"
    );
    assert!(
        head[5].starts_with("- data `synth-small`: source `bundled`, split `chrono_user`"),
        "{md}"
    );
    assert!(head[5].contains("20000 interactions"), "{md}");
    // Two runs of one estimator on one data set: each line once.
    assert_eq!(md.matches("estimand of `naive`").count(), 1, "{md}");
}

/// `host bench train` times steps and reports consistent figures.
#[test]
fn bench_train_reports_throughput_percentiles_and_memory() {
    build();
    let o = host(&[
        "bench", "train", "--model", "mf", "--rows", "1000", "--users", "100", "--inter", "2000",
        "--batch", "64", "--dim", "8", "--steps", "5", "--warmup", "1", "--json",
    ]);
    let (so, se) = text(&o);
    assert!(o.status.success(), "{se}\n{so}");
    let v: serde_json::Value = serde_json::from_str(so.trim()).expect("json");
    assert_eq!(v["examples_per_step"], 128);
    let f = |k: &str| v[k].as_f64().unwrap();
    assert!(f("examples_per_second") > 0.0);
    assert!(f("step_ms_p50") <= f("step_ms_p90") && f("step_ms_p90") <= f("step_ms_p99"));
    assert!(f("peak_rss_mb") > 1.0);
    // An unknown backbone is a clear error.
    let o = host(&[
        "bench", "train", "--model", "nope", "--rows", "100", "--steps", "1",
    ]);
    let (_, se) = text(&o);
    assert!(!o.status.success() && se.contains("nope"), "{se}");
    // MMGCN with random item modalities.
    let o = host(&[
        "bench",
        "train",
        "--model",
        "mmgcn",
        "--rows",
        "200",
        "--users",
        "50",
        "--inter",
        "1000",
        "--batch",
        "32",
        "--dim",
        "8",
        "--modalities",
        "6",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--json",
    ]);
    let (so, se) = text(&o);
    assert!(o.status.success(), "{se}\n{so}");
    let v: serde_json::Value = serde_json::from_str(so.trim()).expect("json");
    assert_eq!(v["examples_per_step"], 64);
}

#[test]
fn bench_rank_times_all_ranking_over_every_user_with_test_positives() {
    build();
    let o = host(&[
        "bench", "rank", "--data", "uniform", "--users", "60", "--items", "500", "--inter", "3000",
        "--dim", "8", "--k", "10,20", "--json",
    ]);
    let (so, se) = text(&o);
    assert!(o.status.success(), "{se}\n{so}");
    let v: serde_json::Value = serde_json::from_str(so.trim()).expect("json");
    let f = |k: &str| v[k].as_f64().unwrap();
    // 3,000 uniform rows over 60 users: nearly every user has test rows
    // (10% of the rows, at random).
    assert!(f("users") >= 55.0 && f("users") <= 60.0, "{v}");
    assert_eq!(f("items"), 500.0);
    assert!((f("scores_per_second") * f("seconds") - f("users") * 500.0).abs() < 1.0);
    // Random embeddings rank at chance: recall@20 near 20 / 500 (the
    // training items are masked, about 40 per user).
    let r20 = v["metrics"]["recall@20"].as_f64().unwrap();
    assert!(r20 > 0.0 && r20 < 0.2, "{r20}");
    assert!(v["model"].is_null() && f("peak_rss_mb") > 1.0, "{v}");
    // Through a backbone's score_all (untrained MF: at chance as well), on
    // the same log, so over the same users.
    let o = host(&[
        "bench", "rank", "--data", "uniform", "--users", "60", "--items", "500", "--inter", "3000",
        "--dim", "8", "--k", "10,20", "--model", "mf", "--json",
    ]);
    let (so, se) = text(&o);
    assert!(o.status.success(), "{se}\n{so}");
    let m: serde_json::Value = serde_json::from_str(so.trim()).expect("json");
    assert_eq!(m["model"], "mf");
    assert_eq!(m["users"], v["users"]);
    let r20 = m["metrics"]["recall@20"].as_f64().unwrap();
    assert!(r20 > 0.0 && r20 < 0.2, "{m}");
    // Two blocks of users through LightGCN: the same metrics with the
    // evaluation memo (the item side propagated once) and without it.
    let args = [
        "bench", "rank", "--data", "uniform", "--users", "700", "--items", "100000", "--inter",
        "150000", "--dim", "8", "--model", "lightgcn", "--json",
    ];
    let metrics = |memo: &str| {
        let o = host_command(&args)
            .env("CAUSALREC_EVAL_MEMO", memo)
            .output()
            .expect("run host");
        let (so, se) = text(&o);
        assert!(o.status.success(), "{se}\n{so}");
        let v: serde_json::Value = serde_json::from_str(so.trim()).expect("json");
        assert!(
            v["users"].as_f64().unwrap() > 640.0,
            "more than one block: {v}"
        );
        v["metrics"].clone()
    };
    assert_eq!(metrics("1"), metrics("0"));
    let o = host(&["bench", "rank", "--data", "uniform", "--model", "nope"]);
    let (_, se) = text(&o);
    assert!(!o.status.success() && se.contains("nope"), "{se}");
    let o = host(&["bench", "rank", "--data", "nope"]);
    let (_, se) = text(&o);
    assert!(
        !o.status.success() && se.contains("'ml-100k' or 'uniform'"),
        "{se}"
    );
}
