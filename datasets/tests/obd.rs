//! The Open Bandit Dataset reader: a small fixture, bad fixtures, and the
//! real sample in `../shared/data/obd` (skipped when absent).

mod common;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;

use causalrec_datasets::{given, load_obd, load_obd_pair, Dataset, ObdOptions, Role};
use common::{assert_parse_err, copy_dir, fixture, scratch, shared, with_bad_file};

fn tokens(ds: &Dataset, field: &str) -> Vec<String> {
    let (i, meta) = ds.inter.field(field).unwrap();
    let col = &ds.inter.columns[i];
    (0..ds.n_inter())
        .map(|r| meta.token_str(col.token(r)).unwrap().to_string())
        .collect()
}

fn floats<'a>(ds: &'a Dataset, field: &str) -> &'a [f32] {
    ds.inter.column(field).unwrap().as_floats().unwrap()
}

#[test]
fn fixture_log_loads_with_roles_and_features() {
    let ds = load_obd(&fixture("obd/good"), &ObdOptions::default()).unwrap();
    assert_eq!(ds.name, "obd-good");
    assert_eq!((ds.n_inter(), ds.n_users, ds.n_items), (4, 3, 3));
    assert_eq!(ds.user_ids[1], "aa|bb|cc|ee");
    assert_eq!(ds.item_ids, ["2", "0", "1"]);
    assert_eq!(floats(&ds, "click"), &[0.0, 1.0, 0.0, 1.0]);
    let ts = ds.timestamp_col().unwrap();
    assert!(ts[0] > 1.5e9, "{}", ts[0]);
    assert_eq!(ts[1] - ts[0], 30.0);
    assert!((ts[2] - ts[0] - 85.237_17).abs() < 1e-6, "{}", ts[2]);
    assert_eq!(ts[3] - ts[0], 86_400.0);
    assert_eq!(tokens(&ds, "position"), ["3", "1", "2", "1"]);
    assert_eq!(tokens(&ds, "policy"), ["good"; 4]);
    assert_eq!(tokens(&ds, "user_feature_0"), ["aa", "aa", "aa", "ff"]);
    assert_eq!(floats(&ds, "user-item_affinity_2"), &[0.0, 0.0, 2.0, 0.0]);
    for (field, role) in [
        ("position", Role::Position),
        ("click", Role::Label),
        ("propensity_score", Role::Propensity),
        ("timestamp", Role::Timestamp),
        ("user_feature_3", Role::Feature),
        ("user-item_affinity_0", Role::Feature),
    ] {
        assert_eq!(ds.inter.field(field).unwrap().1.role, role, "{field}");
    }
    let items = ds.items.as_ref().unwrap();
    // Rows follow the dense item order: items 2, 0, 1.
    assert_eq!(
        items.column("item_feature_0").unwrap().as_floats().unwrap(),
        &[1.5, -0.5, 0.25]
    );
    let (f1, _) = items.field("item_feature_1").unwrap();
    assert_eq!(items.cell_text(f1, 0), "h5");
    assert!(ds.parts.is_empty());

    let named = load_obd(
        &fixture("obd/good"),
        &ObdOptions {
            policy: Some("bts".into()),
        },
    )
    .unwrap();
    assert_eq!(tokens(&named, "policy"), ["bts"; 4]);
}

#[test]
fn fixture_pair_gives_train_and_test_parts() {
    let root = scratch("obd-pair");
    copy_dir(&fixture("obd/good"), &root.join("bts"));
    copy_dir(&fixture("obd/good"), &root.join("random"));
    let ds = load_obd_pair(&root).unwrap();
    assert_eq!(ds.n_inter(), 8);
    assert_eq!(ds.n_items, 3);
    assert_eq!(ds.parts["train"], [0, 1, 2, 3]);
    assert_eq!(ds.parts["test"], [4, 5, 6, 7]);
    assert_eq!(given(&ds).unwrap().sizes(), [4, 0, 4]);
    assert_eq!(&tokens(&ds, "policy")[3..5], ["bts", "random"]);
    // Same item, same dense id in both logs.
    assert_eq!(ds.item_col()[0], ds.item_col()[4]);

    // A random log whose item_feature_0 disagrees is refused.
    let ctx = root.join("random/item_context.csv");
    let text = fs::read_to_string(&ctx).unwrap().replace("0.25", "0.5");
    fs::write(&ctx, text).unwrap();
    let e = load_obd_pair(&root).unwrap_err();
    assert!(e.to_string().contains("item_feature_0"), "{e}");
}

#[test]
fn fixture_errors_name_file_line_and_column() {
    let cases = [
        ("obd/bad/all_semicolon.csv", 1, "timestamp", "semicolon"),
        (
            "obd/bad/all_missing_click.csv",
            1,
            "click",
            "missing column",
        ),
        (
            "obd/bad/all_bad_propensity.csv",
            4,
            "propensity_score",
            "'0.33x' is not a number",
        ),
        (
            "obd/bad/all_unknown_item.csv",
            3,
            "item_id",
            "unknown item id '7'",
        ),
        (
            "obd/bad/all_bad_timestamp.csv",
            5,
            "timestamp",
            "is not a timestamp",
        ),
    ];
    for (bad, line, column, needle) in cases {
        let dir = with_bad_file("obd/good", "all.csv", bad);
        let e = load_obd(&dir, &ObdOptions::default()).unwrap_err();
        assert_parse_err(&e, "all.csv", line, column, needle);
    }
    // A data line with too few cells names the first missing column.
    let dir = with_bad_file("obd/good", "all.csv", "obd/good/all.csv");
    let text = fs::read_to_string(dir.join("all.csv")).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[2] = "1,2019-11-24 00:01:04.762830+00:00,0,1";
    fs::write(dir.join("all.csv"), lines.join("\n")).unwrap();
    let e = load_obd(&dir, &ObdOptions::default()).unwrap_err();
    assert_parse_err(&e, "all.csv", 3, "click", "found 4");
}

/// (rows, clicks) of an `all.csv`, counted from the raw text.
fn raw_clicks(path: &Path) -> (usize, usize) {
    let text = fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let c = header.iter().position(|h| *h == "click").unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let clicks = rows.iter().filter(|r| r[c] == "1").count();
    (rows.len(), clicks)
}

#[test]
fn real_sample_pair() {
    let root = shared("obd");
    if !root.join("random/all.csv").exists() || !root.join("bts/all.csv").exists() {
        println!("skipping: ../shared/data/obd not found");
        return;
    }
    let ds = load_obd_pair(&root).unwrap();
    assert_eq!(ds.n_inter(), 20_000);
    assert_eq!(ds.n_items, 80);
    let (train, test) = (&ds.parts["train"], &ds.parts["test"]);
    assert_eq!((train.len(), test.len()), (10_000, 10_000));
    let pos = tokens(&ds, "position");
    let positions: HashSet<&str> = pos.iter().map(String::as_str).collect();
    assert_eq!(positions, HashSet::from(["1", "2", "3"]));

    let click = floats(&ds, "click");
    let clicks = |rows: &[usize]| rows.iter().filter(|&&r| click[r] == 1.0).count();
    let (bts_clicks, random_clicks) = (clicks(train), clicks(test));
    println!(
        "bts clicks {bts_clicks} rate {}, random clicks {random_clicks} rate {}, users {}",
        bts_clicks as f64 / 1e4,
        random_clicks as f64 / 1e4,
        ds.n_users
    );
    assert_eq!(bts_clicks, 42); // click rate 0.0042
    assert_eq!(random_clicks, 38); // click rate 0.0038
    assert_eq!(raw_clicks(&root.join("bts/all.csv")), (10_000, 42));
    assert_eq!(raw_clicks(&root.join("random/all.csv")), (10_000, 38));

    // The uniform-random policy logs propensity 1/80 everywhere.
    let prop = floats(&ds, "propensity_score");
    assert!(test.iter().all(|&r| prop[r] == 0.0125));
    assert!(train.iter().any(|&r| prop[r] != 0.0125));

    // Items: the same 80 in both logs, one numbering.
    let items = ds.item_col();
    let seen = |rows: &[usize]| rows.iter().map(|&r| items[r]).collect::<HashSet<_>>();
    assert_eq!(seen(train).len(), 80);
    assert_eq!(seen(test).len(), 80);
    let it = ds.items.as_ref().unwrap();
    assert_eq!(it.n_rows(), 80);
    assert_eq!(it.n_fields(), 4);
    let affinity = ds
        .inter
        .fields
        .iter()
        .filter(|f| f.name.starts_with("user-item_affinity_"))
        .count();
    assert_eq!(affinity, 80);

    // Users: contexts built from the four user features.
    let users_in = |rows: &[usize]| {
        rows.iter()
            .map(|&r| ds.user_col()[r])
            .collect::<HashSet<_>>()
            .len()
    };
    assert_eq!((users_in(train), users_in(test)), (253, 240));

    // Exact unix seconds; the first bts row is 2019-11-24 00:00:17.004101 UTC.
    let ts = ds.timestamp_col().unwrap();
    assert_eq!(
        Some(ts[0]),
        causalrec_datasets::parse_obd_timestamp("2019-11-24 00:00:17.004101+00:00")
    );
    assert!(
        (ts[test[0]] - ts[0] - 17.758_729).abs() < 1e-5,
        "{}",
        ts[test[0]]
    );
    // 2019-11-30 23:59:47.022892 is 6 days 23:59:30.018791 after the first row.
    let last = ts[test[test.len() - 1]] - ts[0];
    assert!((last - 604_770.018_791).abs() < 1e-5, "{last}");
}

#[test]
fn real_sample_item_contexts_are_the_same_partition() {
    // The hashed item categories are spelt differently per folder; check
    // that they partition the items identically (so either folder's
    // spelling serves the pair).
    let root = shared("obd");
    if !root.join("random/item_context.csv").exists() {
        println!("skipping: ../shared/data/obd not found");
        return;
    }
    let read = |p: &str| -> Vec<Vec<String>> {
        fs::read_to_string(root.join(p))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect()
    };
    let (a, b) = (
        read("bts/item_context.csv"),
        read("random/item_context.csv"),
    );
    assert_eq!(a.len(), 80);
    for col in 3..6 {
        let mut map: HashMap<&str, &str> = HashMap::new();
        let mut back: HashMap<&str, &str> = HashMap::new();
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x[1], y[1]);
            assert_eq!(*map.entry(&x[col]).or_insert(&y[col]), y[col].as_str());
            assert_eq!(*back.entry(&y[col]).or_insert(&x[col]), x[col].as_str());
        }
    }
    let single = load_obd(&root.join("random"), &ObdOptions::default()).unwrap();
    assert_eq!(
        (single.n_inter(), single.n_items, single.n_users),
        (10_000, 80, 240)
    );
}
