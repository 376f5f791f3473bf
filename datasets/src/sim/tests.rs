//! Tests of [`generate`]: script errors, sandboxing, parameters, and the
//! CTAR scenario against the release.

use super::*;
use std::collections::{HashMap, HashSet};

pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

pub(crate) fn scenario(name: &str) -> PathBuf {
    repo_root().join("scripts/scenarios").join(name)
}

/// A fresh temporary directory for one test.
pub(crate) fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("causalrec-sim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Reads a CSV written by a scenario as rows of cells.
pub(crate) fn read_rows(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let t = value::Table::from_csv(&text).expect("csv");
    (0..t.n_rows())
        .map(|r| t.cols.iter().map(|c| c.cell(r).trim_matches('"').to_string()).collect())
        .collect()
}

const TINY: &str = r#"
let n = param("n", 20);
let U = entity("user", n);
latent("q", #{ on: U, eq: |p| normal(U, 0.0, 1.0) });
partial("y", #{ parents: ["q"], eq: |p| p.q + 1.0 });
indicator("R_y", #{ of: "y", parents: ["q"], eq: |p| bernoulli(sigmoid(p.q)) });
proxy("y_obs", #{ of: "y", by: "R_y" });
outputs(|v| { write_csv("y.csv", rows(v.y_obs, ["user", "y"])); });
truth(|v| { write_csv("q.csv", rows(v.q, ["user", "q"])); });
"#;

fn run_text(name: &str, text: &str, sets: &[(&str, &str)]) -> Result<GenReport> {
    let dir = tmp(name);
    let file = dir.join(format!("{name}.rhai"));
    std::fs::write(&file, text).expect("write scenario");
    let sets: Vec<(String, String)> = sets.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    generate(&file, &dir.join("out"), Some(7), &sets)
}

#[test]
fn tiny_scenario_writes_observed_truth_and_record() {
    let r = run_text("tiny", TINY, &[("n", "50")]).unwrap();
    assert_eq!(r.rows("truth/q.csv"), Some(50));
    let observed = r.rows("y.csv").unwrap();
    assert!(observed > 5 && observed < 45, "{observed}");
    assert_eq!(r.mechanisms[0].class, Missingness::Mnar);
    let ron = std::fs::read_to_string(r.out.join("scenario.ron")).unwrap();
    assert!(ron.contains("seed: 7") && ron.contains("Int(50)"), "{ron}");
    let text = r.to_string();
    assert!(text.contains("R_y on y: MNAR") && text.contains("y.csv"), "{text}");
    // same seed, same data
    let again = run_text("tiny2", TINY, &[("n", "50")]).unwrap();
    assert_eq!(
        std::fs::read_to_string(r.out.join("y.csv")).unwrap(),
        std::fs::read_to_string(again.out.join("y.csv")).unwrap()
    );
}

#[test]
fn graph_errors_name_file_line_and_node() {
    let bad_parent = TINY.replace(r#"parents: ["q"], eq: |p| p.q + 1.0"#, r#"parents: ["qq"], eq: |p| 1.0"#);
    let e = run_text("badparent", &bad_parent, &[]).unwrap_err().to_string();
    assert!(e.contains("badparent.rhai:5:") && e.contains("unknown parent 'qq'"), "{e}");

    let cycle = TINY.replace(r#"latent("q", #{ on: U,"#, r#"latent("q", #{ on: U, parents: ["y"],"#);
    let e = run_text("cycle", &cycle, &[]).unwrap_err().to_string();
    assert!(e.contains("cycle.rhai:4:") && e.contains("cycle through node 'q'"), "{e}");

    let no_ind = TINY.replace(r#"by: "R_y""#, r#"by: "q""#);
    let e = run_text("noind", &no_ind, &[]).unwrap_err().to_string();
    assert!(e.contains("noind.rhai:7:") && e.contains("proxy 'y_obs' has no missingness indicator"), "{e}");

    let e = run_text("unknownset", TINY, &[("m", "3")]).unwrap_err().to_string();
    assert!(e.contains("unknown parameter(s) 'm'; valid: n"), "{e}");
    let e = run_text("badset", TINY, &[("n", "x")]).unwrap_err().to_string();
    assert!(e.contains("--set n=x: expected an integer"), "{e}");
}

#[test]
fn scripts_cannot_read_outside_their_data_dirs_or_write_outside_out() {
    let read = format!("{TINY}\nlet t = read_csv(\"{}\");", repo_root().join("Cargo.toml").display());
    let e = run_text("sandbox", &read, &[]).unwrap_err().to_string();
    assert!(e.contains("outside the readable directories"), "{e}");
    let esc = TINY.replace(r#"write_csv("y.csv""#, r#"write_csv("../y.csv""#);
    let e = run_text("escape", &esc, &[]).unwrap_err().to_string();
    assert!(e.contains("must be relative without '..'"), "{e}");
    let imp = format!("import \"x\" as x;\n{TINY}");
    assert!(run_text("import", &imp, &[]).is_err());
}

/// Counts of one CTAR directory.
#[derive(Debug, Default)]
struct CtarStats {
    users: usize,
    movies: usize,
    ratings: usize,
    rating_mean: f64,
    obstag: usize,
    obstag_none: usize,
    rcttag: usize,
    test: [usize; 4],
    test_pos: [usize; 4],
    /// Sum over observed pairs of (rows of the pair)^2, for the variance.
    obstag_sq: f64,
    rct_var: f64,
}

fn ctar_stats(dir: &Path) -> CtarStats {
    let mut s = CtarStats::default();
    let ratings = read_rows(&dir.join("train/rating.csv"));
    let users: HashSet<&str> = ratings.iter().map(|r| r[0].as_str()).collect();
    s.users = users.len();
    s.movies = read_rows(&dir.join("train/movie.csv")).len();
    s.ratings = ratings.len();
    s.rating_mean = ratings.iter().map(|r| r[2].parse::<f64>().unwrap()).sum::<f64>() / s.ratings as f64;
    let per_pair = |rows: &[Vec<String>]| {
        let mut m: HashMap<(String, String), f64> = HashMap::new();
        for r in rows {
            *m.entry((r[0].clone(), r[1].clone())).or_default() += 1.0;
        }
        m
    };
    let obst = read_rows(&dir.join("train/obstag.csv"));
    s.obstag = obst.len();
    s.obstag_none = obst.iter().filter(|r| r[2] == "-1").count();
    s.obstag_sq = per_pair(&obst).values().map(|x| x * x).sum();
    let rct = read_rows(&dir.join("train/rcttag.csv"));
    s.rcttag = rct.len();
    let pairs = per_pair(&rct);
    let mean = s.rcttag as f64 / pairs.len() as f64;
    s.rct_var = pairs.values().map(|x| (x - mean).powi(2)).sum();
    for (i, f) in ["test_1", "test_2", "test_3", "test"].iter().enumerate() {
        let rows = read_rows(&dir.join(format!("test/{f}.csv")));
        s.test[i] = rows.len();
        s.test_pos[i] = rows.iter().filter(|r| r[2] == "1").count();
    }
    s
}

/// Generates CTAR with the default parameters and compares its statistics
/// with the release's own files (and the paper's Table 4).
///
/// Tolerances: each count is a sum over many independent draws, and the
/// release is itself one draw, so the difference of two draws has twice the
/// variance of one; we allow 3 standard deviations of that difference.
/// Ratings are Poisson-binomial with small p (var ~ count); ObsTag rows
/// are compound: pairs arrive ~Poisson and a pair contributes X rows, so
/// var = sum of X^2 over pairs; RCT has a fixed 1000 pairs, var = sum of
/// (X - mean)^2. Test sets II/III have fixed pool sizes (exact); test I
/// is 70% of the left-out tags, ~Poisson (var ~ count); the positive share
/// of test.csv moves with test I's size. The mean rating
/// varies mostly through the 1000 movie qualities (sd 0.75 each, one draw
/// per movie), se ~ 0.75/sqrt(1000) ~ 0.024 per draw.
#[test]
fn ctar_matches_the_release_statistics() {
    let release = Path::new("/work/shared/data/ctar");
    let data = repo_root().join("../shared/data/ctar/original_data");
    if !release.join("train/rating.csv").exists() || !data.exists() {
        eprintln!("skipped: the CTAR release is not at /work/shared/data/ctar");
        return;
    }
    let out = tmp("ctar");
    let r = generate(&scenario("ctar.rhai"), &out, Some(2022), &[]).unwrap();
    eprintln!("{r}");
    let ours = ctar_stats(&out);
    let rel = ctar_stats(release);
    let tol = |v: f64| 3.0 * (2.0 * v).sqrt();
    let mut table = String::from(
        "| statistic | ours (seed 2022) | release | paper Table 4 | tolerance | within |\n|---|---:|---:|---:|---:|:---:|\n",
    );
    let mut failures = Vec::new();
    let mut row = |name: &str, a: f64, b: f64, paper: &str, t: f64| {
        let ok = (a - b).abs() <= t;
        let fmt = |x: f64| if x.fract() == 0.0 { format!("{x}") } else { format!("{x:.3}") };
        table.push_str(&format!(
            "| {name} | {} | {} | {paper} | ±{} | {} |\n",
            fmt(a),
            fmt(b),
            fmt((t * 1000.0).round() / 1000.0),
            if ok { "yes" } else { "NO" }
        ));
        if !ok {
            failures.push(name.to_string());
        }
    };
    row("users", ours.users as f64, rel.users as f64, "1,000", 0.0);
    row("movies (movie.csv)", ours.movies as f64, rel.movies as f64, "1,000", 0.0);
    row("rating.csv rows", ours.ratings as f64, rel.ratings as f64, "19,897", tol(rel.ratings as f64).round());
    row("mean rating", ours.rating_mean, rel.rating_mean, "-", 3.0 * 2f64.sqrt() * 0.75 / 1000f64.sqrt());
    row("obstag.csv rows", ours.obstag as f64, rel.obstag as f64, "9,619", tol(ours.obstag_sq).round());
    row("obstag rows with tag -1", ours.obstag_none as f64, rel.obstag_none as f64, "-", tol(rel.obstag_none as f64).round());
    row("rcttag.csv rows", ours.rcttag as f64, rel.rcttag as f64, "1,489", tol(ours.rct_var).round());
    let names = ["test_1.csv", "test_2.csv", "test_3.csv", "test.csv"];
    let paper = ["1,267", "4,170", "3,719", "9,156"];
    let t1 = tol(rel.test[0] as f64).round();
    for i in 0..4 {
        let t = if i == 1 || i == 2 { 0.0 } else { t1 };
        row(&format!("{} rows", names[i]), ours.test[i] as f64, rel.test[i] as f64, paper[i], t);
        let ratio = |s: &CtarStats| s.test_pos[i] as f64 / s.test[i] as f64;
        // test.csv's share moves with test_1's size (all positive)
        let share_tol = t1 * (1.0 - ratio(&rel)) / rel.test[3] as f64;
        let t = if i == 1 || i == 2 { 0.0005 } else if i == 0 { 0.0 } else { share_tol };
        row(&format!("{} share positive", names[i]), ratio(&ours), ratio(&rel), "-", t);
    }
    println!("{table}");
    assert!(failures.is_empty(), "outside tolerance: {failures:?}\n{table}");
    // truth and the missingness classes of Figure 4
    assert_eq!(r.rows("truth/rating_full.csv"), Some(1_000_000));
    assert_eq!(r.rows("truth/user_tags.csv"), Some(1000));
    let classes: Vec<(&str, Missingness)> =
        r.mechanisms.iter().map(|m| (m.indicator.as_str(), m.class)).collect();
    assert_eq!(
        classes,
        vec![("R_R", Missingness::Mar), ("R_RCT", Missingness::Mcar), ("R_O", Missingness::Mnar)]
    );
}
