//! MovieLens raw formats on invented fixtures in the exact GroupLens
//! layouts, written by the tests themselves: no GroupLens line is in the
//! repository (their terms forbid redistribution).

mod common;

use std::path::PathBuf;

use causalrec_datasets::{
    detect_movielens, load_movielens, DataError, MovieLensFormat, MovieLensOptions, Role,
};
use common::{assert_parse_err, scratch};

/// The ml-100k layout: tab-separated `u.data`, pipe-separated `u.item`
/// (Latin-1: `Caf\xe9`) and `u.user`; item 40 is never rated.
const ML100K: &[(&str, &[u8])] = &[
    (
        "u.data",
        b"1\t10\t4\t1000000100\n2\t20\t3\t1000000200\n1\t30\t5\t1000000050\n\
          3\t10\t1\t1000000070\n2\t10\t2\t1000000150\n",
    ),
    (
        "u.item",
        b"10|Rust Belt Story (1995)|01-Jan-1995||http://example.org/10|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n\
          20|Caf\xe9 Noir (1996)|15-Mar-1996||http://example.org/20|0|0|0|0|0|0|1|0|1|0|1|0|0|0|0|0|0|0|0\n\
          30|unknown||||1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n\
          40|Unrated Film (1997)|01-Jan-1997||http://example.org/40|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n",
    ),
    (
        "u.user",
        b"1|31|M|technician|10001\n2|53|F|other|20002\n3|23|M|writer|30003\n4|24|M|technician|40004\n",
    ),
];

/// The ml-1m layout: `::`-separated `ratings.dat`, `movies.dat`, `users.dat`.
const ML1M: &[(&str, &[u8])] = &[
    (
        "ratings.dat",
        b"1::5001::5::1000000300\n1::5002::3::1000000400\n2::5001::4::1000000100\n3::5003::4::1000000200\n",
    ),
    (
        "movies.dat",
        b"5002::Giant Peach Tale, A (1996)::Animation|Children's|Musical\n\
          5001::Nest Flight (1975)::Drama\n\
          5003::Water Case (2000)::Drama|Thriller\n\
          5::Extra Film (1995)::Comedy\n",
    ),
    (
        "users.dat",
        b"1::F::1::10::10001\n2::M::56::16::20002\n3::M::25::15::30003\n",
    ),
];

/// A scratch folder holding fixture `name` (`ml-100k` or `ml-1m`).
fn fixture(name: &str) -> PathBuf {
    let files = if name == "ml-100k" { ML100K } else { ML1M };
    let dir = scratch(name).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for (file, bytes) in files {
        std::fs::write(dir.join(file), bytes).unwrap();
    }
    dir
}

/// Fixture `name` with `file` replaced by `text`.
fn with_file(name: &str, file: &str, text: &str) -> PathBuf {
    let dir = fixture(name);
    std::fs::write(dir.join(file), text).unwrap();
    dir
}

fn genres(ds: &causalrec_datasets::Dataset, raw_item: &str) -> Vec<String> {
    let i = ds.item_ids.iter().position(|s| s == raw_item).unwrap();
    let g = ds.items_of_role(Role::Group);
    assert_eq!(g.len(), 1);
    let (meta, col) = g[0];
    assert_eq!(meta.name, "genre");
    col.seq(i)
        .iter()
        .map(|&t| meta.token_str(t).unwrap().to_string())
        .collect()
}

fn cell(t: &causalrec_datasets::Table, field: &str, row: usize) -> String {
    t.cell_text(t.field(field).unwrap().0, row)
}

#[test]
fn ml100k_fixture_loads() {
    let dir = fixture("ml-100k");
    assert_eq!(detect_movielens(&dir).unwrap(), MovieLensFormat::Ml100k);
    let ds = load_movielens(&dir, &MovieLensOptions::default()).unwrap();
    assert_eq!(ds.name, "ml-100k");
    assert_eq!((ds.n_users, ds.n_items, ds.n_inter()), (3, 3, 5));
    assert_eq!(ds.user_ids, ["1", "2", "3"]);
    assert_eq!(ds.item_ids, ["10", "20", "30"]);
    assert_eq!(ds.user_col(), &[0, 1, 0, 2, 1]);
    assert_eq!(ds.item_col(), &[0, 1, 2, 0, 0]);
    assert_eq!(ds.rating_col().unwrap(), &[4.0, 3.0, 5.0, 1.0, 2.0]);
    assert_eq!(
        ds.timestamp_col().unwrap().as_ref(),
        &[
            1000000100.0,
            1000000200.0,
            1000000050.0,
            1000000070.0,
            1000000150.0
        ]
    );
    assert_eq!(genres(&ds, "10"), ["Animation", "Children's", "Comedy"]);
    assert_eq!(genres(&ds, "20"), ["Crime", "Drama", "Film-Noir"]);
    assert_eq!(genres(&ds, "30"), ["unknown"]);
    let items = ds.items.as_ref().unwrap();
    assert_eq!(items.n_rows(), 3, "item 40 has no rating: dropped");
    assert_eq!(cell(items, "title", 0), "Rust Belt Story");
    assert_eq!(cell(items, "title", 1), "Café Noir", "Latin-1 decoded");
    assert_eq!(cell(items, "release_year", 1), "1996");
    assert_eq!(cell(items, "release_year", 2), "", "no date, no year");
    assert_eq!(items.field("genre").unwrap().1.max_len, 3);
    let users = ds.users.as_ref().unwrap();
    assert_eq!(users.n_rows(), 3);
    assert_eq!(cell(users, "age", 1), "53");
    assert_eq!(cell(users, "gender", 1), "F");
    assert_eq!(cell(users, "occupation", 2), "writer");
    assert_eq!(cell(users, "zip_code", 0), "10001");
}

#[test]
fn ml1m_fixture_loads() {
    let dir = fixture("ml-1m");
    assert_eq!(detect_movielens(&dir).unwrap(), MovieLensFormat::Ml1m);
    let ds = load_movielens(&dir, &MovieLensOptions::default()).unwrap();
    assert_eq!(ds.name, "ml-1m");
    assert_eq!((ds.n_users, ds.n_items, ds.n_inter()), (3, 3, 4));
    assert_eq!(ds.item_ids, ["5001", "5002", "5003"]);
    assert_eq!(ds.item_col(), &[0, 1, 0, 2]);
    assert_eq!(ds.rating_col().unwrap(), &[5.0, 3.0, 4.0, 4.0]);
    assert_eq!(ds.timestamp_col().unwrap()[1], 1000000400.0);
    assert_eq!(genres(&ds, "5002"), ["Animation", "Children's", "Musical"]);
    assert_eq!(genres(&ds, "5003"), ["Drama", "Thriller"]);
    let items = ds.items.as_ref().unwrap();
    assert_eq!(cell(items, "title", 1), "Giant Peach Tale, A");
    assert_eq!(cell(items, "release_year", 0), "1975");
    // the genre vocabulary holds only genres of rated items
    let g = items.field("genre").unwrap().1;
    assert_eq!(g.vocab.len(), 1 + 5);
    let users = ds.users.as_ref().unwrap();
    assert_eq!(cell(users, "gender", 0), "F");
    assert_eq!(cell(users, "age", 1), "56");
    assert_eq!(cell(users, "occupation", 2), "15");
}

#[test]
fn features_are_optional() {
    let opts = MovieLensOptions {
        item_features: false,
        user_features: false,
        ..MovieLensOptions::default()
    };
    let ds = load_movielens(&fixture("ml-1m"), &opts).unwrap();
    assert!(ds.items.is_none() && ds.users.is_none());
    assert_eq!(ds.n_inter(), 4);
}

#[test]
fn detection_needs_exactly_one_ratings_file() {
    let dir = scratch("ml-none");
    assert!(matches!(detect_movielens(&dir), Err(DataError::Config(_))));
    std::fs::write(dir.join("u.data"), "").unwrap();
    std::fs::write(dir.join("ratings.dat"), "").unwrap();
    assert!(matches!(
        load_movielens(&dir, &MovieLensOptions::default()),
        Err(DataError::Config(_))
    ));
}

#[test]
fn wrong_delimiter_names_file_line_and_column() {
    let dir = with_file(
        "ml-100k",
        "u.data",
        "1\t10\t4\t1000000100\n1,20,3,1000000200\n",
    );
    let err = load_movielens(&dir, &MovieLensOptions::default()).unwrap_err();
    assert_parse_err(&err, "u.data", 2, "item_id", "wrong delimiter");
    let dir = with_file(
        "ml-1m",
        "movies.dat",
        "5002::A (1996)::Drama\n5001\tB (1975)\tDrama\n",
    );
    let err = load_movielens(&dir, &MovieLensOptions::default()).unwrap_err();
    assert_parse_err(&err, "movies.dat", 2, "title", "'::'-separated");
}

#[test]
fn missing_column_names_file_line_and_column() {
    let dir = with_file(
        "ml-100k",
        "u.user",
        "1|31|M|technician|10001\n2|53|F|other\n",
    );
    let err = load_movielens(&dir, &MovieLensOptions::default()).unwrap_err();
    assert_parse_err(&err, "u.user", 2, "zip_code", "expected 5");
    let dir = with_file(
        "ml-1m",
        "ratings.dat",
        "1::5001::5::1000000300\n\n1::5002::3\n",
    );
    let err = load_movielens(&dir, &MovieLensOptions::default()).unwrap_err();
    assert_parse_err(&err, "ratings.dat", 3, "timestamp", "found 3");
}

#[test]
fn bad_number_names_file_line_and_column() {
    let dir = with_file(
        "ml-100k",
        "u.data",
        "1\t10\t4\t1000000100\n2\t20\tfour\t1000000200\n",
    );
    let err = load_movielens(&dir, &MovieLensOptions::default()).unwrap_err();
    assert_parse_err(&err, "u.data", 2, "rating", "'four'");
    let dir = with_file("ml-1m", "ratings.dat", "1::5001::5::10000003OO\n");
    let err = load_movielens(&dir, &MovieLensOptions::default()).unwrap_err();
    assert_parse_err(&err, "ratings.dat", 1, "timestamp", "'10000003OO'");
    // a genre flag is a number too
    let flags = "0|0|0|2|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0";
    let dir = with_file(
        "ml-100k",
        "u.item",
        &format!("10|A (1995)|01-Jan-1995||u|{flags}\n"),
    );
    let err = load_movielens(&dir, &MovieLensOptions::default()).unwrap_err();
    assert_parse_err(&err, "u.item", 1, "Animation", "'2' is not 0 or 1");
}

#[test]
fn unknown_id_names_the_ratings_line_when_required() {
    // item 30 (first rated on u.data line 3) has no line in u.item
    let flags = "0|0|0|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0";
    let item = format!("10|A (1995)|01-Jan-1995||u|{flags}\n20|B (1996)|01-Jan-1996||u|{flags}\n");
    let dir = with_file("ml-100k", "u.item", &item);
    let err = load_movielens(&dir, &MovieLensOptions::default()).unwrap_err();
    assert_parse_err(&err, "u.data", 3, "item_id", "unknown item '30'");
    assert!(err.to_string().contains("u.item"), "{err}");
    let lax = MovieLensOptions {
        require_known_ids: false,
        ..MovieLensOptions::default()
    };
    let ds = load_movielens(&dir, &lax).unwrap();
    let items = ds.items.as_ref().unwrap();
    assert_eq!(
        items.cell_text(items.field("title").unwrap().0, 2),
        "",
        "padding"
    );
    // user 3 (ratings.dat line 4) is not in users.dat
    let dir = with_file(
        "ml-1m",
        "users.dat",
        "1::F::1::10::10001\n2::M::56::16::20002\n",
    );
    let err = load_movielens(&dir, &MovieLensOptions::default()).unwrap_err();
    assert_parse_err(&err, "ratings.dat", 4, "user_id", "unknown user '3'");
}

#[test]
fn duplicate_feature_line_is_an_error() {
    let dir = with_file(
        "ml-1m",
        "users.dat",
        "1::F::1::10::10001\n2::M::56::16::20002\n3::M::25::15::30003\n1::M::1::1::1\n",
    );
    let err = load_movielens(&dir, &MovieLensOptions::default()).unwrap_err();
    assert_parse_err(&err, "users.dat", 4, "user_id", "first on line 1");
}
