//! The CTAR reader: a hand-checked fixture, bad fixtures (one per error
//! kind), and the real release in `../shared/data/ctar` (skipped when
//! absent).

mod common;

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::Path;

use causalrec_datasets::{
    ctar_file_stats, ctar_table4, given, load_ctar, CtarOptions, CtarTask, Dataset, Role,
};
use common::{assert_parse_err, fixture, shared, with_bad_file};

/// `(user, tag, islike)` of the rows of `part`, as raw ids.
fn triples(ds: &Dataset, part: &str) -> Vec<(String, String, u8)> {
    let label = ds.inter.column("islike").unwrap();
    ds.parts[part]
        .iter()
        .map(|&r| {
            (
                ds.user_ids[ds.user_col()[r] as usize].clone(),
                ds.item_ids[ds.item_col()[r] as usize].clone(),
                label.float(r) as u8,
            )
        })
        .collect()
}

fn t(u: &str, tag: &str, l: u8) -> (String, String, u8) {
    (u.into(), tag.into(), l)
}

fn positives(ds: &Dataset, part: &str) -> usize {
    triples(ds, part).iter().filter(|x| x.2 == 1).count()
}

#[test]
fn fixture_extraction_matches_the_hand_computed_pairs() {
    let ds = load_ctar(&fixture("ctar/good"), &CtarOptions::default()).unwrap();
    assert_eq!(
        triples(&ds, "train_obs"),
        [
            t("0", "1", 1),
            t("0", "2", 0),
            t("0", "3", 0),
            t("0", "4", 0),
            t("1", "5", 1)
        ]
    );
    // rct: direct labels, then the unlabelled tags of movies with a tag:
    // user 0 / movie 0 adds nothing (tags 1, 2 already labelled in obs),
    // user 1 / movie 0 adds tags 1, 2; user 1 / movie 2 adds 6, 7.
    assert_eq!(
        triples(&ds, "train_rct"),
        [
            t("0", "0", 1),
            t("1", "0", 1),
            t("1", "1", 0),
            t("1", "2", 0),
            t("1", "5", 1),
            t("1", "6", 0),
            t("1", "7", 0),
            t("2", "5", 0),
            t("2", "6", 0),
            t("2", "7", 0)
        ]
    );
    // (1, 5) is in both sources: kept once in train.
    assert_eq!(ds.parts["train"].len(), 14);
    assert_eq!(positives(&ds, "train"), 4);
    assert_eq!(triples(&ds, "test_1"), [t("0", "3", 1)]);
    assert_eq!(triples(&ds, "test_2"), [t("1", "4", 0), t("2", "0", 1)]);
    assert_eq!(ds.parts["test"].len(), 4);
    assert!(!ds.parts.contains_key("valid"));
    let src = ds.inter.column("source").unwrap();
    let (_, meta) = ds.inter.field("source").unwrap();
    assert_eq!(
        meta.token_str(src.token(ds.parts["test_3"][0])),
        Some("test_3")
    );
    assert_eq!(ds.n_inter(), 5 + 10 + 1 + 2 + 1 + 4);
    assert_eq!((ds.n_users, ds.n_items), (3, 8));
    let (_, label) = ds.inter.field_by_role(Role::Label).unwrap();
    assert_eq!(label.name, "islike");
    let split = given(&ds).unwrap();
    assert_eq!(split.sizes(), [14, 0, 4]);
}

#[test]
fn fixture_valid_folder_gives_valid_parts() {
    let dir = common::scratch("ctar-valid");
    common::copy_dir(&fixture("ctar/good"), &dir);
    fs::create_dir_all(dir.join("valid")).unwrap();
    fs::write(dir.join("valid/val_1.csv"), "userid,tagid,islike\n0,5,1\n").unwrap();
    fs::write(
        dir.join("valid/validation.csv"),
        "userid,tagid,islike\n0,5,1\n3,6,0\n",
    )
    .unwrap();
    let ds = load_ctar(&dir, &CtarOptions::default()).unwrap();
    assert_eq!(ds.parts["val_1"].len(), 1);
    assert_eq!(ds.parts["valid"].len(), 2);
    assert!(!ds.parts.contains_key("val_2"));
    assert_eq!(given(&ds).unwrap().sizes(), [14, 2, 4]);
    assert_eq!(ds.n_users, 4);
}

#[test]
fn fixture_rating_task_has_movie_tags_as_groups() {
    let ds = load_ctar(
        &fixture("ctar/good"),
        &CtarOptions {
            task: CtarTask::Rating,
        },
    )
    .unwrap();
    assert_eq!((ds.n_users, ds.n_items, ds.n_inter()), (3, 3, 4));
    assert_eq!(ds.rating_col().unwrap(), &[4.0, 2.0, 5.0, 3.0]);
    assert_eq!(ds.item_ids, ["0", "2", "1"]);
    let groups = ds.items_of_role(Role::Group);
    let (meta, col) = groups[0];
    assert_eq!(meta.name, "tags");
    let tags: Vec<&str> = col
        .seq(1)
        .iter()
        .map(|&i| meta.token_str(i).unwrap())
        .collect();
    assert_eq!(tags, ["5", "6", "7"]);
    assert_eq!(ds.parts["train"], [0, 1, 2, 3]);
}

#[test]
fn fixture_errors_name_file_line_and_column() {
    let opts = CtarOptions::default();
    let cases = [
        // (file replaced, bad fixture, task, file, line, column, message part)
        (
            "train/obstag.csv",
            "ctar/bad/obstag_semicolon.csv",
            CtarTask::UserTag,
            "obstag.csv",
            1,
            "userid",
            "semicolon",
        ),
        (
            "train/rcttag.csv",
            "ctar/bad/rcttag_missing_column.csv",
            CtarTask::UserTag,
            "rcttag.csv",
            1,
            "tagid",
            "missing column",
        ),
        (
            "train/rating.csv",
            "ctar/bad/rating_bad_number.csv",
            CtarTask::Rating,
            "rating.csv",
            3,
            "rating",
            "'four' is not a number",
        ),
        (
            "train/obstag.csv",
            "ctar/bad/obstag_unknown_movie.csv",
            CtarTask::UserTag,
            "obstag.csv",
            3,
            "movieid",
            "unknown movie id 99",
        ),
        (
            "train/rcttag.csv",
            "ctar/bad/rcttag_tag_not_of_movie.csv",
            CtarTask::UserTag,
            "rcttag.csv",
            3,
            "tagid",
            "tag 7 is not a tag of movie 0",
        ),
        (
            "test/test_2.csv",
            "ctar/bad/test_2_bad_label.csv",
            CtarTask::UserTag,
            "test_2.csv",
            3,
            "islike",
            "label 2 is not 0 or 1",
        ),
        (
            "train/movie.csv",
            "ctar/bad/movie_bad_taglist.csv",
            CtarTask::Rating,
            "movie.csv",
            3,
            "taglist",
            "'x'",
        ),
    ];
    for (target, bad, task, file, line, column, needle) in cases {
        let dir = with_bad_file("ctar/good", target, bad);
        let e = load_ctar(&dir, &CtarOptions { task }).unwrap_err();
        assert_parse_err(&e, file, line, column, needle);
    }
    // A test tag that no movie has.
    let dir = with_bad_file("ctar/good", "test/test_3.csv", "ctar/good/test/test_3.csv");
    fs::write(
        dir.join("test/test_3.csv"),
        "userid,tagid,islike\n2,1,0\n0,42,1\n",
    )
    .unwrap();
    let e = load_ctar(&dir, &opts).unwrap_err();
    assert_parse_err(&e, "test_3.csv", 3, "tagid", "unknown tag id 42");
    // A missing file is an I/O error naming it.
    let dir = with_bad_file(
        "ctar/good",
        "train/rcttag.csv",
        "ctar/good/train/rcttag.csv",
    );
    fs::remove_file(dir.join("train/rcttag.csv")).unwrap();
    let e = load_ctar(&dir, &opts).unwrap_err();
    assert!(e.to_string().contains("rcttag.csv"), "{e}");
}

/// The extraction as the authors' script does it, written out plainly over
/// the raw lines: returns (obs, rct, all) as sets of triples.
type Triples = BTreeSet<(i64, i64, i64)>;
fn reference_extraction(dir: &Path) -> (Triples, Triples, Triples) {
    let read = |f: &str| fs::read_to_string(dir.join(f)).unwrap();
    let mut movie: HashMap<i64, Vec<i64>> = HashMap::new();
    for l in read("train/movie.csv").lines().skip(1) {
        let (m, tags) = l.split_once(',').unwrap();
        let tags = tags
            .trim_matches('"')
            .split(',')
            .map(|x| x.parse().unwrap());
        movie.insert(m.parse().unwrap(), tags.collect());
    }
    let rows = |f: &str| -> Vec<[i64; 3]> {
        read(f)
            .lines()
            .skip(1)
            .map(|l| {
                let v: Vec<i64> = l.split(',').map(|x| x.parse().unwrap()).collect();
                [v[0], v[1], v[2]]
            })
            .collect()
    };
    let (big, choice) = (rows("train/obstag.csv"), rows("train/rcttag.csv"));
    let mut mat: HashMap<(i64, i64), i64> = HashMap::new();
    let (mut all, mut obs, mut rct) = (Vec::new(), Vec::new(), Vec::new());
    for [u, m, tg] in &big {
        if *tg != -1 {
            mat.insert((*u, *tg), 1);
            all.push((*u, *tg, 1));
            obs.push((*u, *tg, 1));
        } else {
            for x in &movie[m] {
                mat.insert((*u, *x), -1);
                all.push((*u, *x, 0));
                obs.push((*u, *x, 0));
            }
        }
    }
    for [u, m, tg] in &choice {
        if *tg != -1 {
            mat.insert((*u, *tg), 1);
            all.push((*u, *tg, 1));
            rct.push((*u, *tg, 1));
        } else {
            for x in &movie[m] {
                mat.insert((*u, *x), -1);
                all.push((*u, *x, 0));
                rct.push((*u, *x, 0));
            }
        }
    }
    for [u, m, tg] in &choice {
        if *tg != -1 {
            for x in &movie[m] {
                if mat.get(&(*u, *x)).copied().unwrap_or(0) == 0 {
                    mat.insert((*u, *x), -1);
                    all.push((*u, *x, 0));
                    rct.push((*u, *x, 0));
                }
            }
        }
    }
    let set = |v: Vec<(i64, i64, i64)>| v.into_iter().collect::<BTreeSet<_>>();
    (set(obs), set(rct), set(all))
}

fn as_set(ds: &Dataset, part: &str) -> Triples {
    triples(ds, part)
        .into_iter()
        .map(|(u, tg, l)| (u.parse().unwrap(), tg.parse().unwrap(), l as i64))
        .collect()
}

#[test]
fn real_release_user_tag_counts() {
    let dir = shared("ctar");
    if !dir.join("train/obstag.csv").exists() {
        println!("skipping: ../shared/data/ctar not found");
        return;
    }
    let ds = load_ctar(&dir, &CtarOptions::default()).unwrap();
    let count = |part: &str| (ds.parts[part].len(), positives(&ds, part));
    println!(
        "obs {:?} rct {:?} train {:?} users {} tags {} rows {}",
        count("train_obs"),
        count("train_rct"),
        count("train"),
        ds.n_users,
        ds.n_items,
        ds.n_inter()
    );
    // Extracted rows (rows, positives) per source and their union.
    assert_eq!(count("train_obs"), (15_024, 4_274));
    assert_eq!(count("train_rct"), (5_809, 534));
    assert_eq!(count("train"), (20_279, 4_517));
    // Cross-check against the plain re-implementation.
    let (obs, rct, all) = reference_extraction(&dir);
    assert_eq!(as_set(&ds, "train_obs"), obs);
    assert_eq!(as_set(&ds, "train_rct"), rct);
    assert_eq!(as_set(&ds, "train"), all);
    // Within a source, rows are unique and sorted as np.unique leaves them.
    let obs_rows = triples(&ds, "train_obs");
    let nums: Vec<(i64, i64, u8)> = obs_rows
        .iter()
        .map(|(u, tg, l)| (u.parse().unwrap(), tg.parse().unwrap(), *l))
        .collect();
    assert!(nums.windows(2).all(|w| w[0] < w[1]));

    // The test sets (Table 4) and their positives; test I is all positive.
    assert_eq!(count("test_1"), (1_267, 1_267));
    assert_eq!(count("test_2"), (4_170, 1_048));
    assert_eq!(count("test_3"), (3_719, 942));
    assert_eq!(count("test"), (9_156, 3_257));
    assert_eq!(ds.n_inter(), 15_024 + 5_809 + 1_267 + 4_170 + 3_719 + 9_156);
    // 1,627 of the 1,720 tags of movie.csv occur in a training or test pair.
    assert_eq!((ds.n_users, ds.n_items), (1_000, 1_627));
    let split = given(&ds).unwrap();
    assert_eq!(split.sizes(), [20_279, 0, 9_156]);
}

#[test]
fn real_release_rating_task_and_table4() {
    let dir = shared("ctar");
    if !dir.join("train/rating.csv").exists() {
        println!("skipping: ../shared/data/ctar not found");
        return;
    }
    let ds = load_ctar(
        &dir,
        &CtarOptions {
            task: CtarTask::Rating,
        },
    )
    .unwrap();
    assert_eq!(
        (ds.n_users, ds.n_items, ds.n_inter()),
        (1_000, 1_000, 19_897)
    );
    let s = ds.stats();
    assert_eq!(s.rating_range, Some((1.0, 5.0)));
    let groups = ds.items_of_role(Role::Group);
    let (_, col) = groups[0];
    assert!((0..ds.n_items).all(|i| col.seq(i).len() == 8));

    let stats = ctar_file_stats(&dir).unwrap();
    let records: Vec<(&str, usize)> = stats.iter().map(|s| (s.file.as_str(), s.records)).collect();
    assert_eq!(
        records,
        [
            ("train/movie.csv", 1_000),
            ("train/rating.csv", 19_897),
            ("train/obstag.csv", 9_619),
            ("train/rcttag.csv", 1_489),
            ("test/test_1.csv", 1_267),
            ("test/test_2.csv", 4_170),
            ("test/test_3.csv", 3_719),
            ("test/test.csv", 9_156),
        ]
    );
    let table = ctar_table4(&stats);
    println!("{table}");
    assert!(table.contains("| train/movie.csv | 33KB | 1000 | movieid, taglist |"));
}
