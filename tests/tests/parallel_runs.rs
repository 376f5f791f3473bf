//! Load: two `host run` processes at once, into different run folders, on
//! one data folder with no parse cache yet. Exactly one of them parses and
//! writes the cache (the other waits on its lock, then reads it: the runs'
//! report.md say `parse cache built` and `parse cache hit`), both finish
//! with the same metrics as each other and as a third run that reads the
//! cache, and the cache file is whole.

use causalrec_e2e::*;
use std::path::Path;

const RECIPE: &str = r#"
let d = dataset(setting("data", ""), #{ split: "random" });
let r = train(d, backbone("mf", #{ dim: 8 }), estimator("naive"), #{ epochs: 2, batch_size: 512, seed: 5 });
let m = evaluate(r, "all_ranking", #{ k: [10] });
print("CHECK ndcg " + m["ndcg@10"]);
print("CHECK recall " + m["recall@10"]);
"#;

/// The `parse cache` word of the data line in a run's report.md.
fn cache_use(out: &Path) -> String {
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    md.split("parse cache ")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_alphanumeric()).next())
        .unwrap_or_else(|| panic!("no parse cache in report.md:\n{md}"))
        .to_string()
}

#[test]
fn two_runs_in_parallel_share_one_data_cache() {
    let dir = scratch("parallel-runs");
    let data = dir.join("synth");
    std::fs::create_dir_all(&data).unwrap();
    for ext in ["inter", "item", "user"] {
        std::fs::copy(
            root().join(format!("datasets/bundled/synth-small/synth-small.{ext}")),
            data.join(format!("synth.{ext}")),
        )
        .unwrap();
    }
    let recipe = dir.join("par.rhai");
    std::fs::write(&recipe, RECIPE).unwrap();
    let set = format!("data={}", data.display());
    let start = |name: &str| {
        let out = dir.join(name);
        let child = host_command(&[
            "run",
            recipe.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--set",
            &set,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
        (child, out)
    };
    let finish = |(child, out): (std::process::Child, std::path::PathBuf)| {
        let o = child.wait_with_output().unwrap();
        let (so, se) = text(&o);
        assert!(o.status.success(), "{so}\n{se}");
        (checks(&so), cache_use(&out))
    };
    let a = start("a");
    let b = start("b");
    let (ma, ca) = finish(a);
    let (mb, cb) = finish(b);
    let mut uses = [ca.as_str(), cb.as_str()];
    uses.sort();
    assert_eq!(
        uses,
        ["built", "hit"],
        "one run builds the cache, the other reads it"
    );
    assert_eq!(ma, mb);
    assert!(ma["ndcg"] > 0.0, "{ma:?}");
    // The cache file is whole: a third run reads it and gets the same numbers.
    let (mc, cc) = finish(start("c"));
    assert_eq!(cc, "hit");
    assert_eq!(mc, ma);
    let cache = data.join(".causalrec-cache");
    let bins: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "bin"))
        .collect();
    assert_eq!(bins.len(), 1, "one cache file in {}", cache.display());
    // Without the cache (`cache: false`) the numbers are the parser's.
    let uncached = RECIPE.replace("split: \"random\"", "split: \"random\", cache: false");
    std::fs::write(&recipe, uncached).unwrap();
    let (md, cd) = finish(start("d"));
    assert_eq!(cd, "uncached");
    assert_eq!(md, ma);
}
