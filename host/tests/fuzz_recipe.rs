//! Fuzzing of recipe evaluation (proptest; bounded: a fixed number of
//! cases per run, so CI time is fixed). Random calls of the recipe API
//! (`dataset`, `evaluate`, `popularity`, `print_table`, `paired_t_test`,
//! `dcor`, `plot_bars`, `plot_pca`, components, `train`, ...) with random
//! arguments (numbers at the edges, NaN, strings that are paths outside
//! the sandbox, arrays, maps with the real option names and wrong values)
//! run on the real engine over the bundled data set. Every case must end
//! either in a value or in an error that names the recipe file and a
//! position; none may panic.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

use causalrec_host::recipe::{engine, format_error, Session, DATASET_OPTIONS, RANKING_OPTIONS};
use proptest::prelude::*;
use rhai::{Dynamic, Scope};

/// Option names of `dataset()`.
const DATASET_KEYS: &[&str] = DATASET_OPTIONS;

/// Option names of the all-ranking protocol (`popularity()`, `evaluate()`)
/// and of the maps inside its options.
fn ranking_keys() -> &'static [&'static str] {
    let mut keys = vec!["k", "split", "method", "lambda", "factor", "candidates"];
    keys.extend(RANKING_OPTIONS);
    keys.extend(["num", "den", "high_share", "from"]);
    Box::leak(keys.into_boxed_slice())
}

/// Option names of the plots and a few others, so maps reach every parser.
const OTHER_KEYS: &[&str] = &[
    "title",
    "y_label",
    "categories",
    "series",
    "values",
    "name",
    "by",
    "link",
    "max_rows",
    "epochs",
    "batch_size",
    "lr",
    "window",
    "like",
    "dim",
    "part",
    "factor",
];

/// Strings: sources, paths outside the sandbox, metric and part names.
const STRINGS: &[&str] = &[
    "bundled",
    "",
    "ml-100k",
    "ctar",
    "obd",
    "../../etc/passwd",
    "/etc/passwd",
    "/etc",
    "test",
    "valid",
    "train",
    "all_ranking",
    "auc",
    "pointwise",
    "impressions",
    "random",
    "chrono_user",
    "given",
    "loo",
    "x.svg",
    "figs/a.svg",
    "../a.svg",
    "/tmp/a.svg",
    "mf",
    "naive",
    "bce",
    "auto",
    "calibration",
    "fairco",
    "diversity",
    "recall@10",
    "ndcg@20",
    "class",
    "rating",
    "user_id",
    "a+b",
    "\u{1F600}",
    "%s%s%n",
];

fn leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "-1",
            "0",
            "1",
            "2",
            "3",
            "10",
            "50",
            "1000",
            "2147483648",
            "9223372036854775807",
        ])
        .prop_map(String::from),
        prop::sample::select(vec![
            "0.0",
            "0.5",
            "-0.5",
            "1.0",
            "1e300",
            "(0.0 / 0.0)",
            "(1.0 / 0.0)"
        ])
        .prop_map(String::from),
        prop::sample::select(STRINGS.to_vec()).prop_map(|s| format!("{s:?}")),
        Just("true".to_string()),
        Just("()".to_string()),
        Just("d".to_string()),
    ]
}

fn value() -> BoxedStrategy<String> {
    leaf()
        .prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(", "))),
                map_of(OTHER_KEYS, inner),
            ]
        })
        .boxed()
}

fn map_of(
    keys: &'static [&'static str],
    inner: BoxedStrategy<String>,
) -> impl Strategy<Value = String> {
    prop::sample::subsequence(keys, 0..5.min(keys.len()))
        .prop_flat_map(move |ks| {
            let n = ks.len();
            (Just(ks), prop::collection::vec(inner.clone(), n))
        })
        .prop_map(|(ks, vs)| {
            let body: Vec<String> = ks
                .iter()
                .zip(&vs)
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            format!("#{{{}}}", body.join(", "))
        })
}

fn string() -> impl Strategy<Value = String> {
    prop::sample::select(STRINGS.to_vec()).prop_map(|s| format!("{s:?}"))
}

fn array() -> impl Strategy<Value = String> {
    prop::collection::vec(value(), 0..5).prop_map(|v| format!("[{}]", v.join(", ")))
}

fn numbers() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "0.0",
            "1.0",
            "-2.5",
            "3.0",
            "(0.0 / 0.0)",
            "1e300",
            "7.0",
        ]),
        0..6,
    )
    .prop_map(|v| format!("[{}]", v.join(", ")))
}

/// A map with real option names (of `keys` and others) and random values.
fn options(keys: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![4 => map_of(keys, value()), 1 => map_of(OTHER_KEYS, value())]
}

/// One API call: mostly with arguments of the types its signature takes
/// (so the call reaches the option parsing and the work behind it), some
/// with arguments of any type.
fn call() -> impl Strategy<Value = String> {
    let any = (
        prop::sample::select(vec![
            "dataset",
            "backbone",
            "estimator",
            "loss",
            "train",
            "evaluate",
            "popularity",
            "print_table",
            "paired_t_test",
            "dcor",
            "plot_bars",
            "plot_pca",
            "setting",
            "data_info",
            "item_embeddings",
            "set_estimator",
            "representations",
        ]),
        prop::collection::vec(value(), 1..5),
    )
        .prop_map(|(f, args)| format!("{f}({})", args.join(", ")));
    prop_oneof![
        1 => any,
        3 => (string(), options(DATASET_KEYS)).prop_map(|(s, o)| format!("dataset({s}, {o})")),
        1 => string().prop_map(|s| format!("dataset({s})")),
        3 => options(ranking_keys()).prop_map(|o| format!("popularity(d, {o})")),
        1 => (prop::sample::select(vec!["backbone", "estimator", "loss"]), string(), options(OTHER_KEYS))
            .prop_map(|(f, s, o)| format!("{f}({s}, {o})")),
        1 => (string(), prop::collection::vec(options(OTHER_KEYS), 0..3), array())
            .prop_map(|(t, rows, cols)| format!("print_table({t}, [{}], {cols})", rows.join(", "))),
        1 => (numbers(), numbers()).prop_map(|(a, b)| format!("paired_t_test({a}, {b})")),
        1 => (prop::collection::vec(numbers(), 0..5), prop::collection::vec(numbers(), 0..5))
            .prop_map(|(a, b)| format!("dcor([{}], [{}])", a.join(", "), b.join(", "))),
        2 => (string(), options(OTHER_KEYS)).prop_map(|(f, o)| format!("plot_bars({f}, {o})")),
        1 => (string(), options(OTHER_KEYS)).prop_map(|(f, o)| format!("plot_pca({f}, {o})")),
        1 => (string(), value()).prop_map(|(n, v)| format!("setting({n}, {v})")),
        1 => Just("data_info(d)".to_string()),
    ]
}

/// A recipe of 1-3 statements, each a call whose result may feed the next.
fn recipe() -> impl Strategy<Value = String> {
    prop::collection::vec(call(), 1..4).prop_map(|calls| {
        calls
            .iter()
            .enumerate()
            .map(|(i, c)| format!("let v{i} = {c};"))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn session() -> Arc<Session> {
    let out = common::fresh_folder("fuzz-recipe", "out");
    common::recipe_session("fuzz.rhai", &common::repo_root(), &out, 3)
}

#[test]
fn random_api_calls_end_in_a_value_or_a_positioned_error_never_a_panic() {
    let s = session();
    let e = engine(s);
    let mut base = Scope::new();
    e.run_with_scope(&mut base, r#"let d = dataset("bundled");"#)
        .unwrap();
    let cfg = ProptestConfig {
        cases: 1000,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(cfg, |(src in recipe())| {
        let mut scope = base.clone();
        let r = catch_unwind(AssertUnwindSafe(|| e.eval_with_scope::<Dynamic>(&mut scope, &src)));
        let r = r.map_err(|_| TestCaseError::fail(format!("panicked on:\n{src}")))?;
        if let Err(err) = r {
            let msg = format_error(Path::new("fuzz.rhai"), &err);
            prop_assert!(
                msg.starts_with("fuzz.rhai:") && msg.len() > "fuzz.rhai: ".len() + 5,
                "unclear error {msg:?} for:\n{src}"
            );
            prop_assert!(!err.position().is_none(), "error without a position {msg:?} for:\n{src}");
        }
    });
}
