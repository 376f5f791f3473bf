//! The data side of CP2Rec's protocol through the recipe's `dataset(..)`
//! options: parts named by a token column (`parts_column`), a seeded
//! validation share of the given train part (`valid_share`), interaction
//! columns as context fields (`context`), item statistics from the training
//! rows (`item_stats`) and `roles` on every reader. Checked on a tiny atomic
//! folder against hand-computed parts and statistics, and on the Open Bandit
//! sample (../shared/data/obd; skipped when absent) against statistics
//! computed independently from its CSV files.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::Device;
use causalrec_host::data::Data;
use causalrec_host::plugins::Registry;
use causalrec_host::recipe::{engine, format_error, DataHandle, Session, SessionConfig};
use causalrec_sdk::FieldSide;

/// (user, item, click, policy, position, stage) per row. Policy `train`:
/// rows 0..6, `test`: rows 6, 7, 8, row 9 none (an empty cell). Training
/// items: i1 rows 0, 1, 3 (clicks 0, 3), i2 rows 2, 5, i3 row 4; i4 only
/// in test rows. Stage: train, valid and test parts.
const ROWS: [(&str, &str, u8, &str, &str, &str); 10] = [
    ("u1", "i1", 1, "train", "1", "train"),
    ("u2", "i1", 0, "train", "2", "train"),
    ("u1", "i2", 0, "train", "1", "valid"),
    ("u3", "i1", 1, "train", "3", "train"),
    ("u2", "i3", 0, "train", "2", "train"),
    ("u3", "i2", 0, "train", "1", "train"),
    ("u1", "i3", 1, "test", "2", "test"),
    ("u2", "i2", 0, "test", "1", "test"),
    ("u3", "i4", 1, "test", "3", "test"),
    ("u2", "i4", 0, "", "1", "test"),
];

/// Writes `ROWS` as `<dir>/cp/cp.inter` in a fresh folder and returns `<dir>/cp`.
fn fixture() -> PathBuf {
    let folder = common::fresh_folder("cp2rec-data", "cp");
    let mut text = String::from(
        "user_id:token\titem_id:token\tclick:float\tpolicy:token\tposition:token\tstage:token\n",
    );
    for (u, i, c, p, pos, st) in ROWS {
        text.push_str(&format!("{u}\t{i}\t{c}\t{p}\t{pos}\t{st}\n"));
    }
    std::fs::write(folder.join("cp.inter"), text).unwrap();
    folder
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rhai_engine() -> rhai::Engine {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cp2rec-data-out-{}", std::process::id()));
    let cfg = SessionConfig {
        recipe: PathBuf::from("test.rhai"),
        repo_root: repo_root(),
        out,
        seed: 7,
        device: "cpu".into(),
        settings: BTreeMap::new(),
        check_only: false,
    };
    let s = Session::new(cfg, Arc::new(Registry::default()), Device::Cpu).unwrap();
    engine(s)
}

/// `dataset(src, #{ opts })` through the recipe API.
fn load(src: &str, opts: &str) -> Result<Arc<Data>, String> {
    let e = rhai_engine();
    e.eval::<DataHandle>(&format!(r#"dataset("{src}", #{{ {opts} }})"#))
        .map(|d| d.0)
        .map_err(|err| format_error(Path::new("t.rhai"), &err))
}

/// The values of item field `field` keyed by raw item id.
fn item_values(d: &Data, field: &str) -> BTreeMap<String, f32> {
    let items = d.ds.items.as_ref().expect("an item table");
    let col = items.column(field).expect(field).as_floats().unwrap();
    d.ds.item_ids
        .iter()
        .cloned()
        .zip(col.iter().copied())
        .collect()
}

/// The schema field called `name`.
fn field<'a>(d: &'a Data, name: &str) -> &'a causalrec_sdk::FieldSchema {
    let f = d.schema.fields.iter().find(|f| f.name.as_str() == name);
    f.unwrap_or_else(|| panic!("{name} in the schema"))
}

fn close(got: f32, want: f64, what: &str) {
    assert!((got as f64 - want).abs() < 1e-6, "{what}: {got} vs {want}");
}

#[test]
fn parts_column_names_the_parts_and_feeds_the_given_split() {
    let d = load(
        &fixture().display().to_string(),
        r#"label: "click", parts_column: "policy", split: "given""#,
    )
    .unwrap();
    assert_eq!(d.ds.parts.keys().collect::<Vec<_>>(), ["test", "train"]);
    assert_eq!(d.ds.parts["train"], [0, 1, 2, 3, 4, 5]);
    assert_eq!(d.ds.parts["test"], [6, 7, 8]);
    assert_eq!(d.split.train, [0, 1, 2, 3, 4, 5]);
    assert!(d.split.valid.is_empty());
    assert_eq!(d.part_rows("test").unwrap(), [6, 7, 8]);
    // a given `valid` part
    let d = load(
        &fixture().display().to_string(),
        r#"label: "click", parts_column: "stage", split: "given""#,
    )
    .unwrap();
    assert_eq!(d.split.sizes(), [5, 1, 4]);
    assert_eq!(d.split.valid, [2]);
}

#[test]
fn item_stats_are_the_hand_computed_training_statistics() {
    let d = load(
        &fixture().display().to_string(),
        r#"label: "click", parts_column: "policy", split: "given", item_stats: ["exposure", "ctr"]"#,
    )
    .unwrap();
    // training counts n = i1 3, i2 2, i3 1, i4 0; clicks i1 2; g = 2 / 6
    let e = item_values(&d, "stat_exposure");
    let l4 = 4f64.ln();
    close(e["i1"], 1.0, "exposure i1");
    close(e["i2"], 3f64.ln() / l4, "exposure i2");
    close(e["i3"], 2f64.ln() / l4, "exposure i3");
    close(e["i4"], 0.0, "exposure i4 (test only)");
    let c = item_values(&d, "stat_ctr");
    let g = 1.0 / 3.0;
    close(c["i1"], (2.0 + 10.0 * g) / 13.0, "ctr i1");
    close(c["i2"], (10.0 * g) / 12.0, "ctr i2");
    close(c["i3"], (10.0 * g) / 11.0, "ctr i3");
    close(c["i4"], g, "ctr i4 (unseen: the global rate)");
    for name in ["item.stat_exposure", "item.stat_ctr"] {
        let f = field(&d, name);
        assert_eq!((f.side, f.role.as_str()), (FieldSide::Item, "proxy"));
    }
    // an item batch carries them
    let b = d.pair_batch(&[0, 1], &[0, 3], &Device::Cpu).unwrap();
    let v: Vec<f32> = b.inputs["item.stat_ctr"].to_vec1().unwrap();
    close(v[1], g, "batch ctr of item 3");
    // an all-ranking batch carries every item's, in item id order, made once
    let n = d.ds.n_items as u32;
    let all_items: Vec<u32> = (0..n).collect();
    let pairs = d
        .pair_batch(&vec![0; n as usize], &all_items, &Device::Cpu)
        .unwrap();
    let users = d.user_batch(&[1, 0], &Device::Cpu).unwrap();
    for name in ["stat_ctr", "stat_exposure"] {
        let all: Vec<f32> = users.inputs[&format!("catalog.item.{name}")]
            .to_vec1()
            .unwrap();
        let want: Vec<f32> = pairs.inputs[&format!("item.{name}")].to_vec1().unwrap();
        assert_eq!(all, want, "{name}");
    }
    assert!(!users.inputs.contains_key("item.stat_ctr"), "users only");
    let again = d.user_batch(&[2], &Device::Cpu).unwrap();
    assert_eq!(
        again.inputs["catalog.item.stat_ctr"].id(),
        users.inputs["catalog.item.stat_ctr"].id()
    );
}

#[test]
fn valid_share_moves_seeded_train_rows_and_stats_use_the_rest() {
    let src = fixture().display().to_string();
    let opts = r#"label: "click", parts_column: "policy", split: "given", valid_share: 0.5,
        item_stats: ["exposure", "ctr"], seed: 3"#;
    let d = load(&src, opts).unwrap();
    // 6 train rows: round_half_down(6 * 0.5) = 3 stay
    assert_eq!(d.split.sizes(), [3, 3, 3]);
    let mut both = [d.split.train.clone(), d.split.valid.clone()].concat();
    both.sort_unstable();
    assert_eq!(both, [0, 1, 2, 3, 4, 5]);
    assert_eq!(d.split.test, [6, 7, 8]);
    assert_eq!(d.part_rows("valid").unwrap(), d.split.valid.as_slice());
    assert_eq!(
        load(&src, opts).unwrap().split,
        d.split,
        "same seed, same rows"
    );
    let differs = (4..20).any(|s| {
        let o = opts.replace("seed: 3", &format!("seed: {s}"));
        load(&src, &o).unwrap().split.valid != d.split.valid
    });
    assert!(differs, "the seed picks the rows");
    // the statistics count the remaining train rows only
    let mut n: BTreeMap<&str, f64> = BTreeMap::new();
    let mut c: BTreeMap<&str, f64> = BTreeMap::new();
    for &r in &d.split.train {
        *n.entry(ROWS[r].1).or_default() += 1.0;
        *c.entry(ROWS[r].1).or_default() += ROWS[r].2 as f64;
    }
    let g = c.values().sum::<f64>() / 3.0;
    let max = n.values().cloned().fold(0.0, f64::max);
    let (e, ctr) = (
        item_values(&d, "stat_exposure"),
        item_values(&d, "stat_ctr"),
    );
    for item in ["i1", "i2", "i3", "i4"] {
        let (ni, ci) = (
            n.get(item).copied().unwrap_or(0.0),
            c.get(item).copied().unwrap_or(0.0),
        );
        close(e[item], ni.ln_1p() / max.ln_1p(), item);
        close(ctr[item], (ci + 10.0 * g) / (ni + 10.0), item);
    }
}

#[test]
fn context_columns_become_context_fields_of_row_batches() {
    let d = load(
        &fixture().display().to_string(),
        r#"label: "click", parts_column: "policy", split: "given", context: ["position"],
           roles: #{ position: "proxy" }"#,
    )
    .unwrap();
    let f = field(&d, "inter.position");
    // vocabulary: [PAD], 1, 2, 3
    assert_eq!(
        (f.side, f.ty, f.vocab, f.dim, f.role.as_str()),
        (
            FieldSide::Context,
            causalrec_sdk::FieldType::Token,
            4,
            1,
            "proxy"
        )
    );
    let ctx: Vec<&str> = d
        .schema
        .fields
        .iter()
        .filter(|f| f.side == FieldSide::Context)
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(ctx, ["inter.position"]);
    // row batches carry it (token ids: "1" -> 1, "2" -> 2, "3" -> 3) ...
    let b = d.row_batch(&[0, 1, 3], &Device::Cpu).unwrap();
    let pos: Vec<u32> = b.inputs["inter.position"].to_vec1().unwrap();
    assert_eq!(pos, [1, 2, 3]);
    // ... and so do scored rows; plain pair batches (implicit training,
    // all-ranking) do not, and the field embedders skip absent inputs
    let mut p = d.pair_batch(&[0, 1], &[0, 0], &Device::Cpu).unwrap();
    assert!(!p.inputs.contains_key("inter.position"));
    d.add_context(&mut p, &[3, 6], &Device::Cpu).unwrap();
    let pos: Vec<u32> = p.inputs["inter.position"].to_vec1().unwrap();
    assert_eq!(pos, [3, 2]);
    assert!(
        !p.inputs.contains_key("inter.policy"),
        "only context columns"
    );
}

#[test]
fn bad_options_are_errors_naming_the_option() {
    let src = fixture().display().to_string();
    let base = r#"label: "click", parts_column: "policy", split: "given""#;
    for (opts, want) in [
        (
            r#"parts_column: "arm""#.to_string(),
            "parts_column: data set 'cp' has no interaction column 'arm' (expected a token column; interaction columns: user_id, item_id, click, policy, position, stage)",
        ),
        (
            r#"parts_column: "click""#.into(),
            "parts_column: column 'click' of data set 'cp' is a float feature column; expected a token column",
        ),
        (r#"parts_column: 3"#.into(), "option 'parts_column' must be a string"),
        (
            r#"label: "click", split: "random", valid_share: 0.2"#.into(),
            "valid_share needs split: \"given\" (the split is 'random'",
        ),
        (format!("{base}, valid_share: 1.5"), "valid_share must be a number in (0, 1), got 1.5"),
        (format!("{base}, valid_share: \"a\""), "option 'valid_share' must be a number"),
        (
            r#"label: "click", parts_column: "stage", split: "given", valid_share: 0.2"#.into(),
            "valid_share: data set 'cp' gives a 'valid' part already",
        ),
        (
            format!("{base}, context: [\"pos\"]"),
            "context: data set 'cp' has no interaction column 'pos' (interaction columns: user_id, item_id, click, policy, position, stage)",
        ),
        (
            format!("{base}, context: [\"click\"]"),
            "context: column 'click' of data set 'cp' is the label column",
        ),
        (
            format!("{base}, context: [\"item_id\"]"),
            "context: column 'item_id' of data set 'cp' is the item id column",
        ),
        (format!("{base}, context: \"position\""), "option 'context' must be an array of interaction column names"),
        (format!("{base}, context: [1]"), "option 'context'[0] must be a string"),
        (
            format!("{base}, item_stats: [\"popularity\"]"),
            "item_stats: unknown statistic 'popularity' (valid: exposure, ctr)",
        ),
        (
            r#"parts_column: "policy", split: "given", positive_threshold: (), item_stats: ["ctr"]"#.into(),
            "item_stats 'ctr' needs labelled rows",
        ),
        (
            format!("{base}, roles: #{{ cost: \"proxy\" }}"),
            "roles: data set 'cp' has no field 'cost' (interaction fields: user_id, item_id, click, policy, position, stage; user fields: none; item fields: none)",
        ),
    ] {
        let got = load(&src, &opts).err().unwrap_or_else(|| panic!("{opts}: no error"));
        assert!(got.contains(want), "{opts}:\n got  {got}\n want {want}");
    }
}

/// The Open Bandit sample: train on the Bernoulli-TS log (8,000 rows after
/// the 0.2 validation share), validate on 2,000 of its rows, test on the
/// random log; position as a context field; item statistics from the 8,000
/// training rows. Expected statistics computed independently from the CSV
/// files (python over `bts/all.csv`; for the `valid_share` run over the
/// training rows this split keeps).
#[test]
fn open_bandit_with_the_cp2rec_protocol() {
    if !repo_root().join("../shared/data/obd/bts/all.csv").is_file() {
        println!("skipping: ../shared/data/obd not found");
        return;
    }
    // the whole bts log as train: n, clicks per raw item; 42 clicks in 10,000 rows,
    // item 51 the most shown (1,105 rows)
    let d = load(
        "obd",
        r#"label: "click", split: "given", item_stats: ["exposure", "ctr"]"#,
    )
    .unwrap();
    assert_eq!(d.split.sizes(), [10000, 0, 10000]);
    let (e, c) = (
        item_values(&d, "stat_exposure"),
        item_values(&d, "stat_ctr"),
    );
    close(e["51"], 1.0, "exposure 51");
    close(e["0"], 0.6900589756736945, "exposure 0 (125 rows)");
    close(e["79"], 0.8390566652407824, "exposure 79 (357 rows)");
    close(e["54"], 0.2296406823738588, "exposure 54 (4 rows)");
    close(c["0"], 0.00031111111111111107, "ctr 0 (0 of 125)");
    close(c["79"], 0.005564032697547684, "ctr 79 (2 of 357)");
    close(c["54"], 0.0029999999999999996, "ctr 54 (0 of 4)");

    let d = load(
        "obd",
        r#"label: "click", split: "given", valid_share: 0.2, context: ["position"],
           item_stats: ["exposure", "ctr"], seed: 1"#,
    )
    .unwrap();
    assert_eq!(d.split.sizes(), [8000, 2000, 10000]);
    assert!(d
        .split
        .train
        .iter()
        .chain(&d.split.valid)
        .all(|&r| r < 10000));
    assert!(d.split.test.iter().all(|&r| r >= 10000));
    let f = field(&d, "inter.position");
    assert_eq!(
        (f.side, f.vocab, f.role.as_str()),
        (FieldSide::Context, 4, "position")
    );
    let (e, c) = (
        item_values(&d, "stat_exposure"),
        item_values(&d, "stat_ctr"),
    );
    assert_eq!(e.len(), 80);
    for (item, want_e, want_c) in OBD_HELD_OUT {
        close(e[item], want_e, &format!("exposure {item}"));
        close(c[item], want_c, &format!("ctr {item}"));
    }

    // parts from the policy column: the bts rows first, then the random ones
    let d = load(
        "obd",
        r#"label: "click", parts_column: "policy", split: "random", ratios: [0.8, 0.1, 0.1]"#,
    )
    .unwrap();
    assert_eq!(d.ds.parts.keys().collect::<Vec<_>>(), ["bts", "random"]);
    assert_eq!(d.ds.parts["bts"], (0..10000).collect::<Vec<_>>());
    assert_eq!(d.ds.parts["random"], (10000..20000).collect::<Vec<_>>());
    let e = load(
        "obd",
        r#"label: "click", parts_column: "policy", split: "given""#,
    )
    .err()
    .unwrap();
    assert!(
        e.contains("gives no 'train' part (parts: bts, random)"),
        "{e}"
    );

    // roles reach the OBD reader's fields; a field it lacks is an error listing them
    let d = load(
        "obd",
        r#"label: "click", split: "given", context: ["position"],
           roles: #{ position: "proxy", item_feature_0: "proxy" }"#,
    )
    .unwrap();
    let role = |name: &str| field(&d, name).role.to_string();
    assert_eq!(
        (role("inter.position"), role("item.item_feature_0")),
        ("proxy".into(), "proxy".into())
    );
    let e = load(
        "obd",
        r#"label: "click", split: "given", roles: #{ pos: "proxy" }"#,
    )
    .err()
    .unwrap();
    assert!(
        e.contains("roles: data set 'obd' has no field 'pos' (interaction fields: user, item, timestamp, position, click, propensity_score, policy,")
            && e.contains("item fields: item_feature_0, item_feature_1, item_feature_2, item_feature_3"),
        "{e}"
    );
}

/// (item, exposure, ctr) over the 8,000 training rows of
/// `valid_share: 0.2, seed: 1` (see the test above): 34 clicks (g =
/// 0.00425), item 51 the most shown (873 rows, 4 clicks), 0 (101, 0), 79
/// (287, 1), 54 (3, 0), 61 (567, 5).
const OBD_HELD_OUT: [(&str, f64, f64); 5] = [
    ("51", 1.0, 0.004578142695356739),
    ("0", 0.6828462910181604, 0.00038288288288288293),
    ("79", 0.8360982250395713, 0.00351010101010101),
    ("54", 0.2046770869725162, 0.0032692307692307695),
    ("61", 0.9363717934776947, 0.008739168110918545),
];
