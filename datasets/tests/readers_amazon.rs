//! Amazon ratings CSV + JSON-lines metadata on hand-made fixtures
//! (`tests/fixtures/amazon`).

mod common;

use std::fs;

use causalrec_datasets::{load_amazon, AmazonOptions, Dataset, Role};
use common::{assert_parse_err, fixture, with_file};

fn ratings() -> std::path::PathBuf {
    fixture("amazon").join("ratings_Toys.csv")
}

fn meta() -> std::path::PathBuf {
    fixture("amazon").join("meta_Toys.json")
}

fn cats(ds: &Dataset, item: &str) -> Vec<String> {
    let i = ds.item_ids.iter().position(|s| s == item).unwrap();
    let (meta, col) = ds.items_of_role(Role::Group)[0];
    col.seq(i)
        .iter()
        .map(|&t| meta.token_str(t).unwrap().to_string())
        .collect()
}

#[test]
fn ratings_and_metadata_load() {
    let ds = load_amazon(&ratings(), Some(&meta()), &AmazonOptions::default()).unwrap();
    assert_eq!(ds.name, "ratings_Toys");
    assert_eq!((ds.n_users, ds.n_items, ds.n_inter()), (4, 3, 7));
    assert_eq!(ds.user_ids, ["AUSER1", "AUSER2", "AUSER3", "AUSER4"]);
    assert_eq!(ds.item_ids, ["B00ITEM001", "B00ITEM002", "B00ITEM003"]);
    assert_eq!(ds.item_col(), &[0, 1, 0, 1, 0, 2, 2]);
    assert_eq!(
        ds.rating_col().unwrap(),
        &[5.0, 4.0, 3.0, 5.0, 2.0, 1.0, 4.0]
    );
    assert_eq!(ds.timestamp_col().unwrap()[6], 1_400_000_600.0);
    // 2014 category paths flattened, each category once; the repeated
    // asin line is ignored; B00ITEM003 has no metadata: padding
    assert_eq!(
        cats(&ds, "B00ITEM001"),
        ["Books", "Fiction", "Kindle Store"]
    );
    assert_eq!(cats(&ds, "B00ITEM002"), ["Books", "History"]);
    assert!(cats(&ds, "B00ITEM003").is_empty());
    let (meta, _) = ds.items_of_role(Role::Group)[0];
    assert_eq!(meta.name, "category");
    assert_eq!(meta.vocab.len(), 1 + 4, "no 'Ignored' or 'Unrated'");
    assert_eq!(meta.max_len, 3);
    assert!(ds.users.is_none());
}

#[test]
fn without_metadata() {
    let ds = load_amazon(&ratings(), None, &AmazonOptions::default()).unwrap();
    assert!(ds.items.is_none());
    assert_eq!(ds.n_inter(), 7);
}

#[test]
fn k_core_option_by_hand() {
    // 2-core: AUSER4 (1 rating) goes; then B00ITEM003 has 1 and goes; then
    // AUSER3 has 1 and goes. Left: AUSER1/2 x B00ITEM001/2.
    let opts = AmazonOptions {
        k_core: Some((2, 2)),
        ..AmazonOptions::default()
    };
    let ds = load_amazon(&ratings(), Some(&meta()), &opts).unwrap();
    assert_eq!((ds.n_users, ds.n_items, ds.n_inter()), (2, 2, 4));
    assert_eq!(ds.user_ids, ["AUSER1", "AUSER2"]);
    assert_eq!(ds.rating_col().unwrap(), &[5.0, 4.0, 3.0, 5.0]);
    assert_eq!(cats(&ds, "B00ITEM002"), ["Books", "History"]);
    assert_eq!(ds.items.as_ref().unwrap().n_rows(), 2);
}

#[test]
fn item_first_files() {
    let text = fs::read_to_string(ratings()).unwrap();
    let swapped: String = text
        .lines()
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            format!("{},{},{},{}\n", c[1], c[0], c[2], c[3])
        })
        .collect();
    let dir = with_file("amazon", "ratings_Toys.csv", &swapped);
    let opts = AmazonOptions {
        item_first: true,
        ..AmazonOptions::default()
    };
    let a = load_amazon(&dir.join("ratings_Toys.csv"), None, &opts).unwrap();
    let b = load_amazon(&ratings(), None, &AmazonOptions::default()).unwrap();
    assert_eq!(a.user_ids, b.user_ids);
    assert_eq!(a.item_col(), b.item_col());
    assert_eq!(a.inter.fields[0].name, "user_id");
}

fn load_err(file: &str, text: &str, opts: &AmazonOptions) -> causalrec_datasets::DataError {
    let dir = with_file("amazon", file, text);
    load_amazon(
        &dir.join("ratings_Toys.csv"),
        Some(&dir.join("meta_Toys.json")),
        opts,
    )
    .unwrap_err()
}

#[test]
fn wrong_delimiter_missing_column_and_bad_number() {
    let d = AmazonOptions::default();
    let err = load_err(
        "ratings_Toys.csv",
        "AUSER1,B1,5.0,1400000000\nAUSER1;B2;4.0;1400000100\n",
        &d,
    );
    assert_parse_err(&err, "ratings_Toys.csv", 2, "item_id", "wrong delimiter");
    let err = load_err("ratings_Toys.csv", "AUSER1,B1,5.0\n", &d);
    assert_parse_err(
        &err,
        "ratings_Toys.csv",
        1,
        "timestamp",
        "expected 4 ','-separated",
    );
    let err = load_err(
        "ratings_Toys.csv",
        "AUSER1,B1,5.0,1\nAUSER2,B1,five,2\n",
        &d,
    );
    assert_parse_err(&err, "ratings_Toys.csv", 2, "rating", "'five'");
    let err = load_err("ratings_Toys.csv", "AUSER1,B1,5.0,1\n,B1,4.0,2\n", &d);
    assert_parse_err(&err, "ratings_Toys.csv", 2, "user_id", "empty id");
}

#[test]
fn unknown_item_is_an_error_when_required() {
    let strict = AmazonOptions {
        require_known_ids: true,
        ..AmazonOptions::default()
    };
    let dir = fixture("amazon");
    let err = load_amazon(&ratings(), Some(&dir.join("meta_Toys.json")), &strict).unwrap_err();
    // B00ITEM003 first occurs on line 6
    assert_parse_err(
        &err,
        "ratings_Toys.csv",
        6,
        "item_id",
        "unknown item 'B00ITEM003'",
    );
    assert!(err.to_string().contains("meta_Toys.json"), "{err}");
}

#[test]
fn bad_metadata_lines() {
    let d = AmazonOptions::default();
    let err = load_err(
        "meta_Toys.json",
        "{\"asin\": \"B00ITEM001\"}\n{'asin': 'B00ITEM002', 'categories': [['Books']]}\n",
        &d,
    );
    assert_parse_err(&err, "meta_Toys.json", 2, "json", "Python literal");
    let err = load_err("meta_Toys.json", "\n{\"title\": \"x\"}\n", &d);
    assert_parse_err(&err, "meta_Toys.json", 2, "asin", "missing");
    let err = load_err("meta_Toys.json", "{\"asin\": 12}\n", &d);
    assert_parse_err(&err, "meta_Toys.json", 1, "asin", "not an id");
    let err = load_err(
        "meta_Toys.json",
        "{\"asin\": \"B00ITEM001\", \"category\": \"Books\"}\n",
        &d,
    );
    assert_parse_err(&err, "meta_Toys.json", 1, "category", "not a list");
    let err = load_err(
        "meta_Toys.json",
        "{\"asin\": \"B00ITEM001\", \"categories\": [[\"A\", 3]]}\n",
        &d,
    );
    assert_parse_err(&err, "meta_Toys.json", 1, "categories", "not a list");
}
