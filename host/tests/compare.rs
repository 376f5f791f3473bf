//! `host report`'s comparison (compare.rs) on hand-written run folders:
//! seeds grouped by name suffix and by folder, mean ± sample std, the
//! paired t-test by hand, the plots written, and the errors.

use std::path::{Path, PathBuf};

use causalrec_host::compare::Comparison;

fn folder(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("causalrec-compare-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn row(name: &str, kind: &str, values: &[(&str, f64)]) -> serde_json::Value {
    let v: serde_json::Map<String, serde_json::Value> = values
        .iter()
        .map(|(k, x)| (k.to_string(), serde_json::json!(x)))
        .collect();
    serde_json::json!({"name": name, "kind": kind, "values": v})
}

fn write_run(dir: &Path, rows: &[serde_json::Value], epochs: &[(&str, usize, f64, f64)]) {
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string(rows).unwrap(),
    )
    .unwrap();
    let lines: Vec<String> = epochs
        .iter()
        .map(|(run, e, loss, v)| {
            serde_json::json!({"run": run, "epoch": e, "loss": loss, "valid": {"ndcg@10": v},
                "terms": {}, "seconds": 0.1, "examples_per_second": 1.0})
            .to_string()
        })
        .collect();
    std::fs::write(dir.join("metrics.jsonl"), lines.join("\n")).unwrap();
}

const TEST: &str = "evaluate all_ranking (test)";

#[test]
fn seeds_means_paired_test_and_plots() {
    // Folder 1 holds seeds 0 and 1 of A and B; folder 2 holds A-2 and B-2.
    let d1 = folder("one");
    let d2 = folder("two");
    let a = [0.5, 0.6, 0.7];
    let b = [0.4, 0.45, 0.6];
    let rows = |k: usize| {
        vec![
            row(
                &format!("A-{k}"),
                TEST,
                &[
                    ("ndcg@10", a[k]),
                    ("recall@20|active", 0.3),
                    ("recall@20|less_active", 0.1),
                    ("n", 5.0),
                ],
            ),
            row(
                &format!("B-{k}"),
                TEST,
                &[
                    ("ndcg@10", b[k]),
                    ("recall@20|active", 0.2),
                    ("recall@20|less_active", 0.2),
                ],
            ),
        ]
    };
    let mut r1 = rows(0);
    r1.extend(rows(1));
    write_run(
        &d1,
        &r1,
        &[
            ("A-0", 1, 0.9, 0.1),
            ("A-0", 2, 0.7, 0.2),
            ("A-1", 1, 1.1, 0.3),
            ("A-1", 2, 0.9, 0.4),
            ("B-0", 1, 1.0, 0.1),
        ],
    );
    write_run(&d2, &rows(2), &[]);
    let cmp = Comparison::load(&[d1.clone(), d2.clone()]).unwrap();
    assert_eq!(cmp.models(), ["A", "B"]);
    let md = cmp.markdown(Some(("A", "B"))).unwrap();
    // A: mean 0.6, sample std 0.1; B: mean 0.4833, std 0.1041.
    assert!(md.contains("| A | 0.6000 ± 0.1000 (3) |"), "{md}");
    assert!(md.contains("| B | 0.4833 ± 0.1041 (3) |"), "{md}");
    // Row counts are not compared.
    assert!(!md.contains("| n |") && !md.contains(" n |"), "{md}");
    // d = (0.1, 0.15, 0.1): mean 0.116667, sd 0.028868, t = 7.0 with 2 df,
    // two-sided p = 1 - t / sqrt(t^2 + 2) = 0.019804.
    let line = md
        .lines()
        .find(|l| l.starts_with(&format!("| {TEST} | ndcg@10 |")))
        .unwrap_or_else(|| panic!("{md}"));
    assert_eq!(
        line,
        format!("| {TEST} | ndcg@10 | 0.1167 | 7.000 | 0.0198 | 3 |")
    );

    let out = folder("out");
    let plots = cmp.plots(&out).unwrap();
    let names: Vec<String> = plots
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.contains(&"curve_loss.svg".to_string()), "{names:?}");
    assert!(
        names.contains(&"curve_valid_ndcg_10.svg".to_string()),
        "{names:?}"
    );
    let groups = names
        .iter()
        .find(|n| n.starts_with("groups_"))
        .expect("group bars");
    let svg = std::fs::read_to_string(out.join(groups)).unwrap();
    assert!(
        svg.contains("\nless_active\n") && svg.contains("\nactive\n"),
        "{svg}"
    );
    // A's loss curve is the mean over its seeds: (0.9 + 1.1) / 2 = 1.0 at epoch 1.
    let loss = std::fs::read_to_string(out.join("curve_loss.svg")).unwrap();
    assert_eq!(loss.matches("<circle").count(), 3, "A: 2 epochs, B: 1");
    for d in [d1, d2, out] {
        std::fs::remove_dir_all(d).ok();
    }
}

#[test]
fn errors_name_the_file_and_what_was_expected() {
    let empty = folder("empty");
    let e = Comparison::load(std::slice::from_ref(&empty))
        .err()
        .unwrap();
    assert!(e.contains("report.json") && e.contains("run folder"), "{e}");
    std::fs::write(empty.join("report.json"), "[{\"name\": 3}]").unwrap();
    let e = Comparison::load(std::slice::from_ref(&empty))
        .err()
        .unwrap();
    assert!(
        e.contains("report.json:1:") && e.contains("not a causalrec report"),
        "{e}"
    );
    write_run(&empty, &[row("A-0", TEST, &[("auc", 0.5)])], &[]);
    std::fs::write(empty.join("metrics.jsonl"), "{\"run\": \"A-0\"}\n").unwrap();
    let e = Comparison::load(std::slice::from_ref(&empty))
        .err()
        .unwrap();
    assert!(e.contains("metrics.jsonl:1:"), "{e}");
    std::fs::remove_file(empty.join("metrics.jsonl")).unwrap();
    let cmp = Comparison::load(std::slice::from_ref(&empty)).unwrap();
    let e = cmp.markdown(Some(("A", "Z"))).unwrap_err();
    assert!(e.contains("no model 'Z'") && e.contains("models: A"), "{e}");
    assert!(Comparison::load(&[])
        .err()
        .unwrap()
        .contains("at least one run folder"));
    std::fs::remove_dir_all(empty).ok();
}
