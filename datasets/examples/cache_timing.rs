//! Parse time versus cache-load time on a large generated ratings file.
//!
//! Writes `N` (default 2,000,000) Amazon-style `user,item,rating,timestamp`
//! lines to a temporary folder, then times `load_amazon` (parsing), the
//! first `cached` call (parse + write the cache) and the second (read the
//! cache), and checks that reading the cache is at least 10x faster.
//!
//! `cargo run --release -p causalrec-datasets --example cache_timing [N]`

use std::fmt::Write as _;
use std::time::Instant;

use causalrec_datasets::{cache_file, cached, load_amazon, AmazonOptions};
use rand::{Rng, SeedableRng};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    let dir = std::env::temp_dir().join(format!("causalrec-cache-timing-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let src = dir.join("ratings_Big.csv");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut text = String::with_capacity(n * 40);
    for _ in 0..n {
        let u: u32 = rng.random_range(0..200_000);
        let i: u32 = rng.random_range(0..80_000);
        let r: u32 = rng.random_range(1..=5);
        let t: u32 = rng.random_range(1_100_000_000..1_500_000_000);
        writeln!(text, "A{u:013X},B{i:09},{r}.0,{t}").expect("string write");
    }
    std::fs::write(&src, &text).expect("write ratings");
    let mb = text.len() as f64 / 1e6;
    let opts = AmazonOptions::default();

    let t0 = Instant::now();
    let parsed = load_amazon(&src, None, &opts).expect("parse");
    let parse = t0.elapsed();

    let key = format!("amazon {opts:?}");
    let t1 = Instant::now();
    let first = cached(&[&src], &key, || load_amazon(&src, None, &opts)).expect("cached");
    let build = t1.elapsed();
    let t2 = Instant::now();
    let second = cached(&[&src], &key, || panic!("must come from the cache")).expect("cached");
    let hit = t2.elapsed();
    assert_eq!(parsed, first);
    assert_eq!(parsed, second);
    let cache_mb = std::fs::metadata(cache_file(&[&src], &key).expect("cache file"))
        .expect("cache written")
        .len() as f64
        / 1e6;
    let ratio = parse.as_secs_f64() / hit.as_secs_f64();
    println!(
        "{n} lines ({mb:.1} MB CSV; {} users, {} items): parse {:.0} ms, \
         parse + write cache {:.0} ms, cache load {:.0} ms ({cache_mb:.1} MB): {ratio:.1}x faster",
        parsed.n_users,
        parsed.n_items,
        parse.as_secs_f64() * 1e3,
        build.as_secs_f64() * 1e3,
        hit.as_secs_f64() * 1e3,
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        ratio >= 10.0,
        "cache load only {ratio:.1}x faster than parsing"
    );
}
