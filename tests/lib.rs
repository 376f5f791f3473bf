//! Shared helpers of the end-to-end tests in `tests/`: build the host and
//! the plugins once per test process, run the host and recipes in scratch
//! folders, read `CHECK name value` lines.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;

static BUILD: Once = Once::new();

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
        .join("debug")
}

/// Build the host and every plugin crate once per test process.
pub fn build() {
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .current_dir(root())
            .args([
                "build",
                "-q",
                "-p",
                "causalrec-host",
                "-p",
                "causalrec-plugin-ctr",
                "-p",
                "causalrec-plugin-debias",
                "-p",
                "causalrec-plugin-backdoor",
                "-p",
                "causalrec-plugin-frontdoor",
                "-p",
                "causalrec-plugin-seq",
                "-p",
                "causalrec-plugin-iv",
                "-p",
                "causalrec-plugin-graph",
                "-p",
                "causalrec-plugin-proxy",
                "-p",
                "causalrec-toy-plugins",
                "-p",
                "causalrec-bad-abi-plugin",
                "-p",
                "causalrec-example-plugin",
            ])
            .status()
            .expect("run cargo build");
        assert!(st.success(), "cargo build failed");
        // Fixtures live in their own folder so normal runs never see them.
        let fx = fixtures();
        std::fs::create_dir_all(&fx).unwrap();
        for f in ["libtoy_fixture_plugin.so", "libbad_abi_fixture.so"] {
            std::fs::copy(target_dir().join(f), fx.join(f)).unwrap();
        }
    });
}

pub fn fixtures() -> PathBuf {
    target_dir().join("e2e-fixtures")
}

/// The host command with `args`, in the repository root, progress bars off
/// (to spawn it, e.g. to kill it).
pub fn host_command(args: &[&str]) -> Command {
    build();
    let mut c = Command::new(target_dir().join("host"));
    c.current_dir(root())
        .env("CAUSALREC_NO_PROGRESS", "1")
        .env_remove("CAUSALREC_PLUGIN_PATH")
        .args(args);
    c
}

pub fn host(args: &[&str]) -> Output {
    host_command(args).output().expect("run host")
}

pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A scratch folder inside the repository (recipes may only read inside it).
pub fn scratch(name: &str) -> PathBuf {
    let d = target_dir().join("e2e-scratch").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn run_recipe(name: &str, body: &str, extra: &[&str]) -> (Output, PathBuf) {
    let d = scratch(name);
    let recipe = d.join(format!("{name}.rhai"));
    std::fs::write(&recipe, body).unwrap();
    let out = d.join("out");
    let fx = fixtures();
    build();
    let mut args = vec![
        "run",
        recipe.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--plugin-dir",
        fx.to_str().unwrap(),
    ];
    args.extend(extra);
    (host(&args), out)
}

pub fn shared_data(name: &str) -> Option<PathBuf> {
    let p = root().join("../shared/data").join(name);
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("skipped: {} is absent", p.display());
        None
    }
}

/// Runs `host data gen <scenario> --seed s --set k=v..` for every seed into
/// `<scratch(name)>/s<seed>` and returns the scratch folder.
pub fn generate_seeds(scenario: &str, name: &str, seeds: &[u32], sets: &[String]) -> PathBuf {
    let dir = scratch(name);
    for s in seeds {
        let out = dir.join(format!("s{s}"));
        let seed = s.to_string();
        let mut args = vec![
            "data",
            "gen",
            scenario,
            "--out",
            out.to_str().unwrap(),
            "--seed",
            &seed,
        ];
        for kv in sets {
            args.extend(["--set", kv.as_str()]);
        }
        let o = host(&args);
        let (so, se) = text(&o);
        assert!(o.status.success(), "{scenario} seed {s}: {so}\n{se}");
    }
    dir
}

/// `CHECK <name> <value>` lines a recipe printed.
pub fn checks(stdout: &str) -> std::collections::BTreeMap<String, f64> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("CHECK "))
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Run a recipe body, require success, echo its `per seed` and `first
/// failure` lines to stderr and return its `CHECK` values.
pub fn recipe_checks(name: &str, body: &str) -> std::collections::BTreeMap<String, f64> {
    let (o, _) = run_recipe(name, body, &[]);
    let (so, se) = text(&o);
    assert!(o.status.success(), "{name}: {se}\n{so}");
    for l in so.lines() {
        if l.starts_with("per seed") || l.starts_with("first failure") {
            eprintln!("{l}");
        }
    }
    let c = checks(&so);
    eprintln!("{name}: {c:?}");
    c
}
