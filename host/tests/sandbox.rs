//! The recipe sandbox (`host::sandbox`): every resource limit stops a
//! runaway script with an error at its position, and reads, writes and
//! imports cannot leave the allowed folders, by `..`, absolute paths or
//! symbolic links. Each test runs recipe code on the real engine over a
//! fake repository folder: `scripts/` (one good module, one link to a
//! module outside), `data/` (a small atomic data set, links to outside),
//! `out/` (the output folder).

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use causalrec_host::recipe::{engine, engine_with_limits, format_error, Session};
use causalrec_host::sandbox::Limits;
use rhai::{Dynamic, Engine, EvalAltResult};

/// The fake repository, a folder outside it, and the session over them.
struct Fixture {
    repo: PathBuf,
    outside: PathBuf,
    session: Arc<Session>,
}

impl Fixture {
    fn new(stem: &str) -> Fixture {
        let base = common::fresh_folder(stem, "");
        let repo = base.join("repo");
        let outside = base.join("outside");
        for d in ["scripts/lib", "data/tiny", "out"] {
            std::fs::create_dir_all(repo.join(d)).unwrap();
        }
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(repo.join("scripts/lib/ok.rhai"), "fn two() { 2 }\n").unwrap();
        std::fs::write(outside.join("evil.rhai"), "fn two() { 3 }\n").unwrap();
        std::fs::write(outside.join("secret.inter"), tiny_inter()).unwrap();
        symlink(outside.join("evil.rhai"), repo.join("scripts/escape.rhai")).unwrap();
        symlink(&outside, repo.join("data/link")).unwrap();
        symlink(&outside, repo.join("out/esc")).unwrap();
        symlink(outside.join("target.svg"), repo.join("out/f.svg")).unwrap();
        std::fs::write(repo.join("data/tiny/tiny.inter"), tiny_inter()).unwrap();
        let session = common::recipe_session("t.rhai", &repo, &repo.join("out"), 1);
        Fixture {
            repo,
            outside,
            session,
        }
    }

    fn engine(&self) -> Engine {
        engine(self.session.clone())
    }

    /// Run `script`; the error as the host prints it (`t.rhai:L:C: ..`).
    fn error(&self, script: &str) -> String {
        match self.engine().eval::<Dynamic>(script) {
            Ok(v) => panic!("{script}: expected an error, got {v}"),
            Err(e) => format_error(Path::new("t.rhai"), &e),
        }
    }
}

/// 20 users x 10 items, 5 interactions each, as a RecBole atomic file.
fn tiny_inter() -> String {
    let mut s = String::from("user_id:token\titem_id:token\trating:float\ttimestamp:float\n");
    for u in 0..20 {
        for k in 0..5 {
            let i = (u * 3 + k) % 10;
            s.push_str(&format!(
                "u{u}\ti{i}\t{}\t{}\n",
                1 + (u + k) % 5,
                u * 10 + k
            ));
        }
    }
    s
}

/// The error `script` stops with, as rhai's value (no host formatting).
fn raw_error(e: &Engine, script: &str) -> EvalAltResult {
    *e.eval::<Dynamic>(script).expect_err(script)
}

#[test]
fn the_default_limits_are_the_engines() {
    let f = Fixture::new("sandbox-defaults");
    let e = f.engine();
    let l = Limits::default();
    assert_eq!(e.max_operations(), l.operations);
    assert_eq!(e.max_call_levels(), l.call_levels);
    assert_eq!(
        (e.max_expr_depth(), e.max_function_expr_depth()),
        l.expr_depth
    );
    assert_eq!(e.max_string_size(), l.string_size);
    assert_eq!(e.max_array_size(), l.array_size);
    assert_eq!(e.max_map_size(), l.map_size);
    assert_eq!(e.max_modules(), l.modules);
    assert_eq!(
        (l.string_size, l.array_size, l.map_size, l.call_levels),
        (1 << 20, 1 << 20, 1 << 16, 64)
    );
}

#[test]
fn a_runaway_loop_stops_at_the_operation_limit() {
    let f = Fixture::new("sandbox-ops");
    let limits = Limits {
        operations: 10_000,
        ..Limits::default()
    };
    let e = engine_with_limits(f.session.clone(), &limits);
    let script = "let x = 0;\nloop { x += 1; }";
    let err = raw_error(&e, script);
    assert!(
        matches!(err, EvalAltResult::ErrorTooManyOperations(_)),
        "{err:?}"
    );
    let msg = format_error(Path::new("t.rhai"), &err);
    assert!(
        msg.starts_with("t.rhai:2:")
            && msg.contains("Too many operations: a limit of the recipe sandbox"),
        "{msg}"
    );
    // Under the limit the same engine finishes: 1,000 iterations.
    let n: i64 = e.eval("let x = 0; for i in 0..1000 { x += 1; } x").unwrap();
    assert_eq!(n, 1000);
}

#[test]
fn strings_arrays_and_maps_stop_at_their_size_limits() {
    let f = Fixture::new("sandbox-sizes");
    let e = f.engine();
    // Doubling 21 times passes 2^20 bytes / elements.
    for (script, what) in [
        (
            "let s = \"x\";\nfor i in 0..30 { s += s; }\ns.len()",
            "Length of string",
        ),
        (
            "let a = [1];\nfor i in 0..30 { a += a; }\na.len()",
            "Size of array/BLOB",
        ),
        (
            "let m = #{};\nfor i in 0..70000 { m[\"k\" + i] = i; }\nm.len()",
            "Size of object map",
        ),
    ] {
        let err = raw_error(&e, script);
        match &err {
            // Rhai checks sizes when a value is stored or returned: the
            // position is the loop (line 2) or the statement after it.
            EvalAltResult::ErrorDataTooLarge(t, pos) => {
                assert_eq!(t, what);
                assert!(matches!(pos.line(), Some(2 | 3)), "{script}: {pos:?}");
            }
            other => panic!("{script}: {other:?}"),
        }
        let msg = format_error(Path::new("t.rhai"), &err);
        assert!(
            msg.starts_with("t.rhai:")
                && msg.contains(&format!("{what} too large: a limit of the recipe sandbox")),
            "{msg}"
        );
    }
    // Just under the limits is fine: 2^19 bytes and elements.
    let n: i64 = e
        .eval("let s = \"x\"; for i in 0..19 { s += s; } let a = [1]; for i in 0..19 { a += a; } s.len() + a.len()")
        .unwrap();
    assert_eq!(n, 2 << 19);
}

#[test]
fn deep_recursion_and_deep_expressions_are_refused() {
    let f = Fixture::new("sandbox-depth");
    let e = f.engine();
    let err = raw_error(&e, "fn down(n) { down(n + 1) }\ndown(0)");
    assert!(
        matches!(
            err,
            EvalAltResult::ErrorStackOverflow(_) | EvalAltResult::ErrorInFunctionCall(..)
        ),
        "{err:?}"
    );
    let msg = format_error(Path::new("t.rhai"), &err);
    assert!(
        msg.contains("Stack overflow: a limit of the recipe sandbox"),
        "{msg}"
    );
    // 63 nested calls are within the limit of 64.
    let n: i64 = e
        .eval("fn down(n) { if n == 0 { 0 } else { 1 + down(n - 1) } }\ndown(60)")
        .unwrap();
    assert_eq!(n, 60);
    // 200 nested parentheses exceed the expression depth when parsing.
    let deep = format!("{}1{}", "(".repeat(200), ")".repeat(200));
    let err = e.compile(&deep).expect_err("too deep");
    assert_eq!(*err.0, rhai::ParseErrorType::ExprTooDeep, "{err:?}");
}

#[test]
fn reads_cannot_leave_the_allowed_folders() {
    let f = Fixture::new("sandbox-reads");
    let refused =
        "recipes may only read inside the repository, ../shared/data or the output folder";
    let outside = f.outside.canonicalize().unwrap();
    for (script, resolved) in [
        (
            r#"dataset("../../etc/passwd")"#.to_string(),
            causalrec_host::sandbox::lexical(&f.repo.join("../../etc/passwd")),
        ),
        (
            r#"dataset("../../../../../../../../../../etc/passwd")"#.to_string(),
            PathBuf::from("/etc/passwd"),
        ),
        (
            r#"dataset("/etc/passwd")"#.into(),
            PathBuf::from("/etc/passwd"),
        ),
        // A link inside the repository to a folder outside it.
        (
            r#"dataset("data/link/secret")"#.into(),
            outside.join("secret.inter"),
        ),
        // The same through the output folder, named absolutely.
        (
            format!(r#"dataset("{}")"#, f.repo.join("out/esc/secret").display()),
            outside.join("secret.inter"),
        ),
        (
            r#"dataset("data/tiny", #{ item_features: ["/etc/passwd"] })"#.into(),
            PathBuf::from("/etc/passwd"),
        ),
    ] {
        let msg = f.error(&script);
        assert!(
            msg.starts_with("t.rhai:1:1:")
                && msg.contains(refused)
                && msg.contains(&format!("resolves to {}", resolved.display())),
            "{script}: {msg}"
        );
    }
    // Inside the repository the same call reads the data.
    let n: i64 = f
        .engine()
        .eval(r#"let d = dataset("data/tiny", #{ split: "random" }); 1"#)
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn writes_cannot_leave_the_output_folder() {
    let f = Fixture::new("sandbox-writes");
    let plot = |file: &str| {
        format!(r#"plot_bars("{file}", #{{ categories: ["a"], series: #{{ s: [1.0] }} }})"#)
    };
    for (file, why) in [
        ("../x.svg", "no '..'"),
        ("figs/../../x.svg", "no '..'"),
        (
            "/tmp/causalrec-sandbox-x.svg",
            "may only write inside the output folder",
        ),
        // A link in the output folder to a folder outside it.
        ("esc/x.svg", "may only write inside the output folder"),
        (
            "esc/deeper/x.svg",
            "may only write inside the output folder",
        ),
        // A link in the output folder to a file outside it.
        ("f.svg", "may only write inside the output folder"),
    ] {
        let msg = f.error(&plot(file));
        assert!(
            msg.starts_with("t.rhai:1:1:") && msg.contains(why),
            "{file}: {msg}"
        );
    }
    // Nothing was written or created outside.
    let mut left: Vec<String> = std::fs::read_dir(&f.outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["evil.rhai", "secret.inter"]);
    assert!(!Path::new("/tmp/causalrec-sandbox-x.svg").exists());
    // A plain relative path is written inside the output folder.
    let written: String = f.engine().eval(&plot("figs/ok.svg")).unwrap();
    let out = f.repo.join("out").canonicalize().unwrap();
    assert_eq!(PathBuf::from(&written), out.join("figs/ok.svg"));
    assert!(out.join("figs/ok.svg").is_file());
}

#[test]
fn imports_cannot_leave_the_scripts_folder() {
    let f = Fixture::new("sandbox-imports");
    for (script, shown) in [
        ("import \"../../etc/passwd\" as p;", "../../etc/passwd"),
        ("import \"/etc/passwd\" as p;", "/etc/passwd"),
        // scripts/escape.rhai is a link to a module outside the repository.
        ("import \"escape\" as m;\nm::two()", "escape"),
    ] {
        let msg = f.error(script);
        assert!(
            msg.starts_with("t.rhai:1:")
                && msg.contains(&format!("{shown} (imports must stay under")),
            "{script}: {msg}"
        );
    }
    let n: i64 = f
        .engine()
        .eval("import \"lib/ok\" as ok;\nok::two()")
        .unwrap();
    assert_eq!(n, 2);
}
