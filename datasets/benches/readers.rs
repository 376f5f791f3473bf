//! Criterion benchmarks of the data hot paths: parsing MovieLens-100K in
//! its raw GroupLens layout (`u.data`, `u.item`, `u.user`) and as RecBole
//! atomic files, loading the binary cache of the same data (the
//! cache-vs-parse ratio), the CTAR reader on the release, and the causal
//! simulator generating a scenario.
//!
//! Data: `../shared/data/ml-100k` (atomic files) when present, else the
//! bundled `synth-small`; the raw layout is written from it into the target
//! folder (never into the repository: GroupLens' terms forbid
//! redistribution). The CTAR benches and the CTAR scenario are skipped,
//! with a printed note, without `../shared/data/ctar`.
//!
//! `cargo bench -p causalrec-datasets [-- --quick]`; every bench takes 10
//! samples, so the whole run is under a minute on two cores. End-to-end: `host data
//! info <source>` prints the load time and rows/s on stderr, `host data gen`
//! the generation time and rows/s.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use causalrec_datasets::readers::movielens::ML100K_GENRES;
use causalrec_datasets::{
    bundled_dir, cache_file, cached, load_atomic, load_ctar, load_movielens, sim, AtomicOptions,
    CtarOptions, CtarTask, Dataset, MovieLensOptions, Role, Table, BUNDLED_NAME,
};
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};

/// The shared real data, next to the workspace.
const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data");

/// A fresh scratch folder under the target folder.
fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-readers-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
    d
}

/// Small, fixed measurement settings: 10 samples, short warm-up.
fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
    rows: usize,
) -> BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(rows as u64));
    g
}

/// The atomic-file options: the genre field (ml-100k's `class`,
/// synth-small's `genre`) as item groups.
fn atomic_options() -> AtomicOptions {
    AtomicOptions::default()
        .with_role("class", Role::Group)
        .with_role("genre", Role::Group)
}

/// The text of `field` of row `row` of `t`, or `""` without that field;
/// `|` (the raw files' delimiter) replaced.
fn text(t: Option<&Table>, field: &str, row: usize) -> String {
    match t.and_then(|t| Some((t, t.field(field)?.0))) {
        Some((t, f)) => t.cell_text(f, row).replace('|', "/"),
        None => String::new(),
    }
}

/// Writes `ds` in the ml-100k layout into `dir`: `u.data` (user, item,
/// rating, timestamp), `u.item` (title, release date, 19 genre flags: a
/// group named like an ml-100k genre sets that flag, any other its token
/// id modulo 19) and `u.user` (age, gender, occupation, zip; defaults where
/// `ds` has no such field or a non-numeric age).
fn write_raw_ml100k(ds: &Dataset, dir: &Path) -> std::io::Result<()> {
    let (u, i) = (ds.user_col(), ds.item_col());
    let ratings = ds.rating_col();
    let times = ds.timestamp_col();
    let mut data = String::with_capacity(ds.n_inter() * 24);
    for r in 0..ds.n_inter() {
        let rating = ratings.map_or(1.0, |x| x[r]);
        let time = times.as_ref().map_or(r as f64, |t| t[r]);
        let _ = writeln!(
            data,
            "{}\t{}\t{rating}\t{time:.0}",
            ds.user_ids[u[r] as usize], ds.item_ids[i[r] as usize]
        );
    }
    std::fs::write(dir.join("u.data"), data)?;

    let items = ds.items.as_ref();
    let groups = ds.items_of_role(Role::Group);
    let mut item = String::new();
    for (id, raw) in ds.item_ids.iter().enumerate() {
        let title = match text(items, "movie_title", id) {
            t if t.is_empty() => text(items, "title", id),
            t => t,
        };
        let year = text(items, "release_year", id);
        let (title, date) = match year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit()) {
            true => (format!("{title} ({year})"), format!("01-Jan-{year}")),
            false => (title, String::new()),
        };
        let mut flags = [0u8; 19];
        for (meta, col) in &groups {
            for &g in col.row_tokens(id) {
                let name = meta.token_str(g).unwrap_or_default();
                let k = ML100K_GENRES
                    .iter()
                    .position(|n| *n == name)
                    .unwrap_or(g as usize % 19);
                flags[k] = 1;
            }
        }
        let flags: Vec<String> = flags.iter().map(u8::to_string).collect();
        let _ = writeln!(
            item,
            "{raw}|{title}|{date}||http://example.org/{raw}|{}",
            flags.join("|")
        );
    }
    std::fs::write(dir.join("u.item"), item)?;

    let users = ds.users.as_ref();
    let mut user = String::new();
    for (id, raw) in ds.user_ids.iter().enumerate() {
        let or = |s: String, d: &str| if s.is_empty() { d.to_string() } else { s };
        let age = text(users, "age", id);
        let age = if age.parse::<u32>().is_ok() {
            age
        } else {
            "30".into()
        };
        let _ = writeln!(
            user,
            "{raw}|{age}|{}|{}|{}",
            or(text(users, "gender", id), "M"),
            or(text(users, "occupation", id), "other"),
            or(text(users, "zip_code", id), "00000"),
        );
    }
    std::fs::write(dir.join("u.user"), user)
}

/// MovieLens-100K: raw parse, atomic parse and cache load of the same data.
fn movielens(c: &mut Criterion) {
    let shared = Path::new(SHARED).join("ml-100k");
    let (src, stem) = if shared.join("ml-100k.inter").is_file() {
        (shared, "ml-100k")
    } else {
        println!("note: ../shared/data/ml-100k not found; benchmarking the bundled synth-small");
        (bundled_dir(), BUNDLED_NAME)
    };
    // A writable copy: the cache lives next to its sources.
    let atomic = scratch("atomic");
    for ext in ["inter", "item", "user"] {
        let f = format!("{stem}.{ext}");
        if src.join(&f).is_file() {
            std::fs::copy(src.join(&f), atomic.join(&f))
                .unwrap_or_else(|e| panic!("{}: {e}", src.join(&f).display()));
        }
    }
    let opts = atomic_options();
    let ds = load_atomic(&atomic, stem, &opts).unwrap_or_else(|e| panic!("{e}"));
    let raw = scratch("raw");
    write_raw_ml100k(&ds, &raw).unwrap_or_else(|e| panic!("{}: {e}", raw.display()));
    let ml_opts = MovieLensOptions::default();
    let parsed = load_movielens(&raw, &ml_opts).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.n_inter(), ds.n_inter(), "raw files round trip");

    let files: Vec<PathBuf> = ["inter", "item", "user"]
        .iter()
        .map(|e| atomic.join(format!("{stem}.{e}")))
        .filter(|p| p.is_file())
        .collect();
    let sources: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let key = format!("atomic {stem} {opts:?}");
    let load = || load_atomic(&atomic, stem, &opts);
    cached(&sources, &key, load).unwrap_or_else(|e| panic!("{e}"));
    let hit = cache_file(&sources, &key).is_some_and(|f| f.is_file());
    if !hit {
        println!("note: the cache could not be written; the cache bench parses");
    }

    let mut g = group(c, stem, ds.n_inter());
    g.bench_function("parse_raw_u.data", |b| {
        b.iter(|| load_movielens(&raw, &ml_opts).expect("raw ml-100k"))
    });
    g.bench_function("parse_atomic", |b| {
        b.iter(|| load().expect("atomic ml-100k"))
    });
    g.bench_function("cache_load", |b| {
        b.iter(|| cached(&sources, &key, load).expect("cached ml-100k"))
    });
    g.finish();
}

/// The CTAR reader on the release, both tasks.
fn ctar(c: &mut Criterion) {
    let dir = Path::new(SHARED).join("ctar");
    if !dir.join("train/rating.csv").is_file() {
        println!("note: ../shared/data/ctar not found; skipping the CTAR reader benches");
        return;
    }
    for (name, task) in [
        ("user_tag", CtarTask::UserTag),
        ("rating", CtarTask::Rating),
    ] {
        let opts = CtarOptions { task };
        let rows = load_ctar(&dir, &opts)
            .unwrap_or_else(|e| panic!("{e}"))
            .n_inter();
        let mut g = group(c, "ctar", rows);
        g.bench_function(name, |b| b.iter(|| load_ctar(&dir, &opts).expect("ctar")));
        g.finish();
    }
}

/// The causal simulator: the DecRS scenario at its default size (300
/// users x 200 items) and CTAR's generator at 200 users x 200 movies (its
/// test sets II and III scaled down with the 25x fewer user-movie pairs).
fn simulator(c: &mut Criterion) {
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/scenarios");
    let small = [
        ("n_users", "200"),
        ("n_movies", "200"),
        ("test2_pos", "60"),
        ("test2_neg", "178"),
        ("test3_pos", "54"),
        ("test3_neg", "159"),
    ];
    let mut runs: Vec<(&str, &[(&str, &str)])> = vec![("group_imbalance", &[])];
    if Path::new(SHARED).join("ctar/original_data").is_dir() {
        runs.push(("ctar", &small));
    } else {
        println!("note: ../shared/data/ctar not found; skipping the CTAR scenario bench");
    }
    for (name, sets) in runs {
        let file = scenarios.join(format!("{name}.rhai"));
        let out = scratch(&format!("sim-{name}"));
        let sets: Vec<(String, String)> = sets
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let report = sim::generate(&file, &out, Some(7), &sets).unwrap_or_else(|e| panic!("{e}"));
        let rows = report.tables.iter().map(|(_, n)| n).sum();
        let mut g = group(c, "sim", rows);
        g.bench_function(name, |b| {
            b.iter(|| sim::generate(&file, &out, Some(7), &sets).expect("scenario"))
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    // no HTML plots: they cost more than the measurements here
    config = Criterion::default().without_plots();
    targets = movielens, ctar, simulator
}
criterion_main!(benches);
