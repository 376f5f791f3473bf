//! KuaiRec on hand-made fixtures with the exact headers of its CSV files
//! (`tests/fixtures/kuairec`).

mod common;

use causalrec_datasets::{given, load_kuairec, KuaiRecOptions, Role};
use common::{assert_parse_err, fixture, with_file};

#[test]
fn matrices_load_as_train_and_test_parts() {
    let ds = load_kuairec(&fixture("kuairec"), &KuaiRecOptions::default()).unwrap();
    assert_eq!(ds.name, "kuairec");
    assert_eq!((ds.n_users, ds.n_items, ds.n_inter()), (3, 4, 8));
    assert_eq!(ds.user_ids, ["0", "1", "2"]);
    assert_eq!(ds.item_ids, ["101", "102", "103", "104"]);
    assert_eq!(ds.parts["train"], [0, 1, 2, 3]);
    assert_eq!(ds.parts["test"], [4, 5, 6, 7]);
    let split = given(&ds).unwrap();
    assert_eq!(split.sizes(), [4, 0, 4]);

    let col = |name: &str| ds.inter.column(name).unwrap().clone();
    let (_, like) = ds.inter.field("like").unwrap();
    assert_eq!(like.role, Role::Label);
    assert_eq!(
        col("like").as_floats().unwrap(),
        &[1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    );
    assert_eq!(col("watch_ratio").as_floats().unwrap()[2], 1.3846154);
    assert_eq!(col("play_duration").as_floats().unwrap()[3], 25000.0);
    assert_eq!(col("video_duration").as_floats().unwrap()[7], 8000.0);
    assert!(ds.inter.field("time").is_none() && ds.inter.field("date").is_none());
    let ts = ds.timestamp_col().unwrap();
    assert_eq!(ts[0], 1593878903.438, "milliseconds kept");
    assert_eq!(ts[5], 1594080300.5);
    assert!(ts[6].is_nan(), "no timestamp in the file");

    let (meta, feat) = ds.items_of_role(Role::Group)[0];
    assert_eq!(meta.name, "feat");
    let names = |i: usize| -> Vec<&str> {
        feat.seq(i)
            .iter()
            .map(|&t| meta.token_str(t).unwrap())
            .collect()
    };
    assert_eq!(names(0), ["8"]);
    assert_eq!(names(1), ["27", "9"]);
    assert_eq!(names(3), ["8", "27"]);
    assert_eq!(meta.vocab.len(), 1 + 4, "video 105 has no interaction");

    let users = ds.users.as_ref().unwrap();
    assert_eq!(users.n_fields(), 30);
    assert_eq!(users.n_rows(), 3);
    let cell = |f: &str, r: usize| users.cell_text(users.field(f).unwrap().0, r);
    assert_eq!(cell("user_active_degree", 1), "full_active");
    assert_eq!(
        cell("follow_user_num_range", 0),
        "(0,10]",
        "quoted CSV cell"
    );
    assert_eq!(cell("onehot_feat2", 2), "", "empty cell: padding");
    assert_eq!(cell("onehot_feat17", 0), "-124");
}

#[test]
fn like_threshold_is_a_parameter() {
    let opts = KuaiRecOptions {
        like_threshold: 1.0,
        ..KuaiRecOptions::default()
    };
    let ds = load_kuairec(&fixture("kuairec"), &opts).unwrap();
    assert_eq!(
        ds.inter.column("like").unwrap().as_floats().unwrap(),
        &[1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0]
    );
    let bad = KuaiRecOptions {
        like_threshold: f32::NAN,
        ..KuaiRecOptions::default()
    };
    assert!(load_kuairec(&fixture("kuairec"), &bad).is_err());
}

#[test]
fn feature_files_are_optional() {
    let opts = KuaiRecOptions {
        item_features: false,
        user_features: false,
        ..KuaiRecOptions::default()
    };
    let ds = load_kuairec(&fixture("kuairec"), &opts).unwrap();
    assert!(ds.items.is_none() && ds.users.is_none());
}

const HEADER: &str =
    "user_id,video_id,play_duration,video_duration,time,date,timestamp,watch_ratio\n";

#[test]
fn wrong_delimiter_names_file_line_and_column() {
    let dir = with_file("kuairec", "big_matrix.csv", &HEADER.replace(',', "\t"));
    let err = load_kuairec(&dir, &KuaiRecOptions::default()).unwrap_err();
    assert_parse_err(&err, "big_matrix.csv", 1, "user_id", "wrong delimiter");
    let text = format!("{HEADER}0\t101\t7000\t6500\t\t\t\t1.0\n");
    let dir = with_file("kuairec", "small_matrix.csv", &text);
    let err = load_kuairec(&dir, &KuaiRecOptions::default()).unwrap_err();
    assert_parse_err(&err, "small_matrix.csv", 2, "video_id", "wrong delimiter");
}

#[test]
fn missing_column_names_file_line_and_column() {
    let text = "user_id,video_id,play_duration,video_duration,time,date,timestamp\n0,1,2,3,,,4\n";
    let dir = with_file("kuairec", "small_matrix.csv", text);
    let err = load_kuairec(&dir, &KuaiRecOptions::default()).unwrap_err();
    assert_parse_err(&err, "small_matrix.csv", 1, "watch_ratio", "missing column");
    let text = format!("{HEADER}0,101,13000,6500,2020-07-05 00:08:23.438,20200705,1593878903.438,2.0\n0,102,3000,10000\n");
    let dir = with_file("kuairec", "big_matrix.csv", &text);
    let err = load_kuairec(&dir, &KuaiRecOptions::default()).unwrap_err();
    assert_parse_err(&err, "big_matrix.csv", 3, "time", "found 4");
    let dir = with_file(
        "kuairec",
        "item_categories.csv",
        "video_id,category\n101,[8]\n",
    );
    let err = load_kuairec(&dir, &KuaiRecOptions::default()).unwrap_err();
    assert_parse_err(&err, "item_categories.csv", 1, "feat", "missing column");
}

#[test]
fn bad_number_names_file_line_and_column() {
    let text = format!("{HEADER}0,101,13000,6500,,,1593878903.438,2.0\n1,101,abc,6500,,,1,1.0\n");
    let dir = with_file("kuairec", "big_matrix.csv", &text);
    let err = load_kuairec(&dir, &KuaiRecOptions::default()).unwrap_err();
    assert_parse_err(&err, "big_matrix.csv", 3, "play_duration", "'abc'");
    let text = format!("{HEADER}0,101,1,1,,,1593878903.x,2.0\n");
    let dir = with_file("kuairec", "small_matrix.csv", &text);
    let err = load_kuairec(&dir, &KuaiRecOptions::default()).unwrap_err();
    assert_parse_err(&err, "small_matrix.csv", 2, "timestamp", "'1593878903.x'");
    let text = "video_id,feat\n101,[8]\n102,\"[27, x]\"\n103,[0]\n104,[8]\n";
    let dir = with_file("kuairec", "item_categories.csv", text);
    let err = load_kuairec(&dir, &KuaiRecOptions::default()).unwrap_err();
    assert_parse_err(&err, "item_categories.csv", 3, "feat", "'x' in '[27, x]'");
    let text = "video_id,feat\n101,8\n";
    let dir = with_file("kuairec", "item_categories.csv", text);
    let err = load_kuairec(&dir, &KuaiRecOptions::default()).unwrap_err();
    assert_parse_err(&err, "item_categories.csv", 2, "feat", "not a list");
}

#[test]
fn unknown_id_names_the_matrix_line_when_required() {
    // video 104 occurs only on small_matrix.csv line 5
    let text = "video_id,feat\n101,[8]\n102,\"[27, 9]\"\n103,[0]\n";
    let dir = with_file("kuairec", "item_categories.csv", text);
    let err = load_kuairec(&dir, &KuaiRecOptions::default()).unwrap_err();
    assert_parse_err(
        &err,
        "small_matrix.csv",
        5,
        "video_id",
        "unknown item '104'",
    );
    let lax = KuaiRecOptions {
        require_known_ids: false,
        ..KuaiRecOptions::default()
    };
    let ds = load_kuairec(&dir, &lax).unwrap();
    assert!(ds.items_of_role(Role::Group)[0].1.seq(3).is_empty());
    // user 2 occurs first on big_matrix.csv line 5
    let text = "user_id,user_active_degree\n0,high_active\n1,full_active\n";
    let dir = with_file("kuairec", "user_features.csv", text);
    let err = load_kuairec(&dir, &KuaiRecOptions::default()).unwrap_err();
    assert_parse_err(&err, "big_matrix.csv", 5, "user_id", "unknown user '2'");
}
