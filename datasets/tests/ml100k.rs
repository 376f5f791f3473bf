//! Loads the real MovieLens-100K atomic files when they are present in
//! `../shared/data/ml-100k` (next to the workspace); skipped otherwise.

use std::path::Path;
use std::time::Instant;

use causalrec_datasets::{chrono_global, chrono_per_user, load_atomic, AtomicOptions, Role};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/ml-100k");

#[test]
fn ml100k_loads_with_paper_statistics() {
    let dir = Path::new(DIR);
    if !dir.join("ml-100k.inter").exists() {
        println!("skipping: ../shared/data/ml-100k not found");
        return;
    }
    let opts = AtomicOptions::default().with_role("class", Role::Group);
    let start = Instant::now();
    let ds = load_atomic(dir, "ml-100k", &opts).expect("ml-100k loads");
    println!("load_atomic(ml-100k): {:?}", start.elapsed());
    println!(
        "{}\n{}",
        causalrec_datasets::DatasetStats::HEADER,
        ds.stats()
    );

    assert_eq!(ds.n_users, 943);
    assert_eq!(ds.n_items, 1682);
    assert_eq!(ds.n_inter(), 100_000);
    let stats = ds.stats();
    assert!((stats.density - 0.063047).abs() < 1e-5, "{}", stats.density);
    assert_eq!(stats.rating_range, Some((1.0, 5.0)));

    // Toy Story
    let toy = ds.item_ids.iter().position(|s| s == "1").expect("item 1");
    let groups = ds.items_of_role(Role::Group);
    assert_eq!(groups.len(), 1);
    let (meta, col) = groups[0];
    assert_eq!(meta.name, "class");
    let genres: Vec<&str> = col
        .seq(toy)
        .iter()
        .map(|&g| meta.token_str(g).unwrap())
        .collect();
    assert_eq!(genres, ["Animation", "Children's", "Comedy"]);
    let items = ds.items.as_ref().unwrap();
    let (ti, _) = items.field("movie_title").unwrap();
    assert_eq!(items.cell_text(ti, toy), "Toy Story");

    // user features: user "1" is a 24-year-old technician
    let u1 = ds.user_ids.iter().position(|s| s == "1").expect("user 1");
    let users = ds.users.as_ref().unwrap();
    let (oi, _) = users.field("occupation").unwrap();
    assert_eq!(users.cell_text(oi, u1), "technician");
    assert!(users.field("user_id").is_none());

    // first interaction line: 196 242 3 881250949
    let u = ds.user_col()[0] as usize;
    let i = ds.item_col()[0] as usize;
    assert_eq!(
        (ds.user_ids[u].as_str(), ds.item_ids[i].as_str()),
        ("196", "242")
    );
    assert_eq!(ds.rating_col().unwrap()[0], 3.0);

    let s = chrono_global(&ds, [0.8, 0.1, 0.1]).unwrap();
    assert_eq!(s.sizes(), [80_000, 10_000, 10_000]);
    let s = chrono_per_user(&ds, [0.8, 0.1, 0.1]).unwrap();
    assert_eq!(s.len(), 100_000);
}

#[test]
fn ml100k_timestamps_keep_full_precision() {
    let dir = Path::new(DIR);
    if !dir.join("ml-100k.inter").exists() {
        println!("skipping: ../shared/data/ml-100k not found");
        return;
    }
    let ds = load_atomic(dir, "ml-100k", &AtomicOptions::default()).expect("ml-100k loads");
    let ts = ds.timestamp_col().expect("timestamps");
    let mut distinct: Vec<u64> = ts.iter().map(|t| t.to_bits()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    // as f32 these collapse to 27,431
    assert_eq!(distinct.len(), 49_282);
    assert_eq!(ts[0], 881_250_949.0, "first line: 196 242 3 881250949");
    let (lo, hi) = ds.stats().time_range.unwrap();
    assert_eq!((lo, hi), (874_724_710.0, 893_286_638.0));
}
