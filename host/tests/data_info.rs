//! `host data info`: the generic table and the seed papers' data set tables
//! (HCR, DecRS, CP2Rec, IV4Rec+, CTAR Table 4), checked against numbers
//! counted by hand on tiny atomic folders written under the target folder,
//! through the `host` binary and through `info::describe`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use causalrec_datasets::{load_atomic, AtomicOptions};
use causalrec_host::info::describe;

/// Writes `files` (name, text) into a fresh folder `<target tmp>/<stem>-N/<stem>`
/// and returns that folder.
fn atomic_folder(stem: &str, files: &[(&str, &str)]) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!(
            "data-info-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ))
        .join(stem);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

/// Runs `host data info <args>` from the repository root; (stdout, stderr).
fn host_info(args: &[&str]) -> (String, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_host"))
        .current_dir(root)
        .args(["data", "info"])
        .args(args)
        .output()
        .expect("run host");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "host data info failed:\n{stderr}");
    (stdout, stderr)
}

/// Whether `line` is one of the lines of `s` (trimmed).
fn has_line(s: &str, line: &str) -> bool {
    s.lines().any(|l| l.trim() == line)
}

/// Three users, four items, six interactions. Likes: rows 1, 3, 5 (3 of 6).
/// Positions 1, 2, 3 (3 distinct). Genres: i1 Action Comedy, i2 Drama, i3
/// Action, i4 none -> 3 groups, 4 memberships over 4 items (1.00 per
/// item), one item without a group. Queries: i1 and i2 "red shoes", i3
/// "blue hat", i4 none -> 2 distinct queries; rows of i1 (2), i2 (2) and
/// i3 (1) are search interactions: 5. FM features: 3 users + 4 items + 3
/// genres + 4 query words (red, shoes, blue, hat) = 14.
const TINY_INTER: &str = "user_id:token\titem_id:token\tlike:float\tposition:float
u1\ti1\t1\t1
u1\ti2\t0\t2
u2\ti1\t1\t1
u2\ti3\t0\t3
u3\ti2\t1\t2
u3\ti4\t0\t1
";
const TINY_ITEM: &str = "item_id:token\tgenre:token_seq\tquery:token_seq
i1\tAction Comedy\tred shoes
i2\tDrama\tred shoes
i3\tAction\tblue hat
i4\t\t
";

#[test]
fn data_info_prints_each_papers_table_with_hand_counted_numbers() {
    let dir = atomic_folder(
        "tiny",
        &[("tiny.inter", TINY_INTER), ("tiny.item", TINY_ITEM)],
    );
    let (out, err) = host_info(&[dir.to_str().unwrap()]);
    println!("{out}");
    // the generic table and the load timing
    assert!(
        has_line(&out, "| tiny | 3 | 4 | 6 | 50.0000% | 2.00 | 1.50 |"),
        "{out}"
    );
    assert!(
        err.contains("loaded tiny in ") && err.contains("6 interactions") && err.contains("rows/s"),
        "{err}"
    );
    // HCR: clicks = every interaction, likes = `like` >= 0.5
    assert!(
        out.contains("HCR, Table 1 (clicks: every interaction; likes: clicks with `like` >= 0.5):")
    );
    assert!(has_line(&out, "| tiny | 3 | 4 | 6 | 3 | 0.5000 |"), "{out}");
    // DecRS: groups from the item field `genre` (found by name)
    assert!(out.contains("DecRS, Table 2 (#Group: the values of item field `genre`;"));
    assert!(
        has_line(&out, "| tiny | 3 | 4 | 6 | 14 | 3 | 1.00 | 1 |"),
        "{out}"
    );
    // CP2Rec: shown for the position field; `like` is an outcome, not context
    for row in [
        "| #User | 3 |",
        "| #Item | 4 |",
        "| #Training Instance | - |",
        "| #Validation Instance | - |",
        "| #Test Instance | - |",
        "| #User Attribute | 0 |",
        "| #Item Attribute | 2 |",
        "| #Contextual Feature | 1 |",
        "| #Confounding Proxy Feature | 0 |",
        "| #Position (`position`) | 3 |",
    ] {
        assert!(has_line(&out, row), "missing {row}:\n{out}");
    }
    // IV4Rec+: item-side token queries
    assert!(out.contains("IV4Rec+, Table 1 (queries: item field `query`;"));
    assert!(has_line(&out, "| tiny | 3 | 4 | 2 | 6 | 5 |"), "{out}");
    assert!(!out.contains("CTAR, Table 4"));
}

/// A role given with `--role` is used over names: `kind` is no group name.
#[test]
fn data_info_takes_roles_from_the_command_line() {
    let inter = "user_id:token\titem_id:token\nu1\ti1\nu1\ti2\nu2\ti2\n";
    let item = "item_id:token\tkind:token\ni1\tx\ni2\ty\n";
    let dir = atomic_folder("roles", &[("roles.inter", inter), ("roles.item", item)]);
    let (plain, _) = host_info(&[dir.to_str().unwrap()]);
    assert!(!plain.contains("DecRS"), "{plain}");
    // no likes, no ratings, no positions, no queries: only the generic table
    assert!(!plain.contains("HCR") && !plain.contains("CP2Rec") && !plain.contains("IV4Rec+"));
    let (out, _) = host_info(&[dir.to_str().unwrap(), "--role", "kind=group"]);
    assert!(out.contains("the values of item field `kind`"), "{out}");
    // 2 users + 2 items + 2 kinds = 6 features; 2 groups, one per item
    assert!(
        has_line(&out, "| roles | 2 | 2 | 3 | 6 | 2 | 1.00 | 0 |"),
        "{out}"
    );
}

/// With a `click` column, clicks are its rows at 1 and likes are counted
/// among them; without a like column, likes are ratings >= the threshold.
#[test]
fn clicks_and_likes_from_columns_or_ratings() {
    // clicks: rows 1, 2, 4 (3); likes among them: row 1 only (row 3 is
    // liked but not clicked)
    let inter = "user_id:token\titem_id:token\tclick:float\tlike:float
u1\ti1\t1\t1
u1\ti2\t1\t0
u2\ti1\t0\t1
u2\ti2\t1\t0
";
    let dir = atomic_folder("clicks", &[("clicks.inter", inter)]);
    let ds = load_atomic(&dir, "clicks", &AtomicOptions::default()).unwrap();
    let s = describe(&ds, None, Some(4.0)).unwrap();
    assert!(
        s.contains("(clicks: `click` >= 0.5, of 4 rows; likes: clicks with `like` >= 0.5)"),
        "{s}"
    );
    assert!(has_line(&s, "| clicks | 2 | 2 | 3 | 1 | 0.3333 |"), "{s}");

    // ratings 5, 3, 4, 1: likes at >= 4 are rows 1 and 3 (2 of 4)
    let inter = "user_id:token\titem_id:token\trating:float
u1\ti1\t5
u1\ti2\t3
u2\ti1\t4
u2\ti3\t1
";
    let dir = atomic_folder("rated", &[("rated.inter", inter)]);
    let ds = load_atomic(&dir, "rated", &AtomicOptions::default()).unwrap();
    let s = describe(&ds, None, Some(4.0)).unwrap();
    assert!(s.contains("likes: clicks with rating >= 4)"), "{s}");
    assert!(has_line(&s, "| rated | 2 | 3 | 4 | 2 | 0.5000 |"), "{s}");
    // without a threshold there are no likes to count
    assert!(!describe(&ds, None, None).unwrap().contains("HCR"));
    // an explicit label that is not a click column is the like column
    let s = describe(&ds, Some("rating"), Some(4.0)).unwrap();
    assert!(s.contains("likes: clicks with `rating` >= 0.5)"), "{s}");
    assert!(has_line(&s, "| rated | 2 | 3 | 4 | 4 | 1.0000 |"), "{s}");
}

/// CP2Rec's table: instances of the given parts, a proxy that is both an
/// item attribute and an interaction column counted once as a proxy.
#[test]
fn cp2rec_counts_parts_and_proxies_once() {
    let inter = "user_id:token\titem_id:token\tclick:float\tposition:float\tproxy_pop:float
u1\ti1\t1\t1\t5
u1\ti2\t0\t2\t3
u2\ti1\t1\t1\t5
u2\ti2\t1\t3\t3
u3\ti1\t0\t2\t5
u3\ti3\t0\t1\t1
";
    let item = "item_id:token\tproxy_pop:float\tprice:float\ni1\t5\t9.5\ni2\t3\t1\ni3\t1\t2\n";
    let dir = atomic_folder("logged", &[("logged.inter", inter), ("logged.item", item)]);
    let mut ds = load_atomic(&dir, "logged", &AtomicOptions::default()).unwrap();
    ds.parts.insert("train".into(), vec![0, 1, 2, 3]);
    ds.parts.insert("test".into(), vec![4, 5]);
    let s = describe(&ds, None, Some(4.0)).unwrap();
    println!("{s}");
    for row in [
        "| Statistic | logged |",
        "| #User | 3 |",
        "| #Item | 3 |",
        "| #Training Instance | 4 |",
        "| #Validation Instance | - |",
        "| #Test Instance | 2 |",
        "| #User Attribute | 0 |",
        "| #Item Attribute | 2 |",
        // position and proxy_pop; click is the outcome
        "| #Contextual Feature | 2 |",
        "| #Confounding Proxy Feature | 1 |",
        "| #Position (`position`) | 3 |",
    ] {
        assert!(has_line(&s, row), "missing {row}:\n{s}");
    }
    // clicks without likes or ratings: no HCR table; no groups, no queries
    assert!(!s.contains("HCR") && !s.contains("DecRS") && !s.contains("IV4Rec+"));
}

/// The CTAR release: Table 4 after the generic table (skipped without
/// ../shared/data/ctar).
#[test]
fn ctar_prints_table_4() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    if !root.join("../shared/data/ctar/train/rcttag.csv").is_file() {
        println!("skipping: ../shared/data/ctar not found");
        return;
    }
    let (out, _) = host_info(&["ctar"]);
    println!("{out}");
    assert!(out.contains("CTAR, Table 4 (the files of "), "{out}");
    assert!(has_line(
        &out,
        "| train/movie.csv | 33KB | 1000 | movieid, taglist |"
    ));
    assert!(out.contains("| train/rcttag.csv |") && out.contains("| 1489 |"));
}
