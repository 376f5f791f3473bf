//! The bundled synthetic data set (`datasets/bundled/synth-small`) must be
//! exactly what `generate(&SynthConfig::default())` writes, so that a
//! change to the generator cannot silently drift from the committed files.
//!
//! Regenerate with `CAUSALREC_REGEN_BUNDLED=1 cargo test -p
//! causalrec-datasets --test bundled`.

use std::fs;

use causalrec_datasets::{
    bundled_dir, generate, load_bundled, write_atomic, SynthConfig, BUNDLED_NAME,
};

const README: &str = "# synth-small

Synthetic quick-start data set for causalrec, in RecBole atomic format
(`synth-small.inter`, `synth-small.user`, `synth-small.item`).

Made by `causalrec_datasets::synthetic::generate(&SynthConfig::default())`
and `write_atomic`: 600 users, 400 items, 20000 interactions, latent
dimension 8, 6 genres, seed 7 (ChaCha8Rng). A latent-factor world: item
genres (`genre`, role group) shift item factors, user `age_group` and
`gender` correlate with user factors, item popularity is Zipf-like, ratings
1-5 follow the user-item affinity plus noise, timestamps strictly increase.
See `datasets/src/synthetic.rs`.

Regenerate: `CAUSALREC_REGEN_BUNDLED=1 cargo test -p causalrec-datasets --test bundled`.
The test `bundled` fails if these files differ from what the generator writes.

The data is synthetic (no real people) and is licensed like the project,
MIT OR Apache-2.0.
";

#[test]
fn bundled_files_match_the_generator() {
    let ds = generate(&SynthConfig::default());
    let dir = bundled_dir();
    if std::env::var("CAUSALREC_REGEN_BUNDLED").as_deref() == Ok("1") {
        write_atomic(&ds, &dir, BUNDLED_NAME).unwrap();
        fs::write(dir.join("README.md"), README).unwrap();
        println!("regenerated {}", dir.display());
    }
    let fresh = std::env::temp_dir().join(format!("causalrec-bundled-{}", std::process::id()));
    let _ = fs::remove_dir_all(&fresh);
    write_atomic(&ds, &fresh, BUNDLED_NAME).unwrap();
    let mut total = 0;
    for ext in ["inter", "user", "item"] {
        let file = format!("{BUNDLED_NAME}.{ext}");
        let want = fs::read(fresh.join(&file)).unwrap();
        let have = fs::read(dir.join(&file)).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run CAUSALREC_REGEN_BUNDLED=1 cargo test -p causalrec-datasets --test bundled",
                dir.join(&file).display()
            )
        });
        assert!(
            want == have,
            "{file} differs from generate(&SynthConfig::default()); regenerate with \
             CAUSALREC_REGEN_BUNDLED=1 cargo test -p causalrec-datasets --test bundled"
        );
        total += have.len();
    }
    assert!(total < 1 << 20, "bundled files are {total} bytes");
    assert_eq!(fs::read_to_string(dir.join("README.md")).unwrap(), README);
    let _ = fs::remove_dir_all(&fresh);

    let mut loaded = load_bundled().unwrap();
    loaded.name = ds.name.clone();
    assert_eq!(loaded, ds);
}
