//! The `host` command: run and check recipes, list plugins, show data set statistics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use causalrec_host::checkpoint::Manifest;
use causalrec_host::data::DataConfig;
use causalrec_host::plugins::Registry;
use causalrec_host::recipe::{self, Session, SessionConfig};
use causalrec_host::report::timestamp;
use clap::{Parser, Subcommand};

/// The system allocator, with freed large blocks reused inside evaluations
/// (`causalrec_host::alloc_cache`).
#[global_allocator]
static ALLOCATOR: causalrec_host::alloc_cache::HostAllocator =
    causalrec_host::alloc_cache::HostAllocator;

#[derive(Parser)]
#[command(
    name = "host",
    version,
    about = "causalrec: causal recommendation with plugins and Rhai recipes"
)]
struct Cli {
    /// Extra plugin folders or files (repeatable).
    #[arg(long = "plugin-dir", global = true)]
    plugin_dirs: Vec<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a recipe, or resume a killed run (`--resume RUN_DIR`).
    Run {
        /// The recipe (with --resume: optional, the run's own by default).
        #[arg(required_unless_present = "resume")]
        recipe: Option<PathBuf>,
        /// Output folder (default runs/<recipe>-<timestamp>).
        #[arg(long, conflicts_with = "resume")]
        out: Option<PathBuf>,
        /// cpu or cuda (default cpu).
        #[arg(long)]
        device: Option<String>,
        /// Seed (default 2024).
        #[arg(long)]
        seed: Option<u64>,
        /// key=value settings read by the recipe's setting(name, default).
        #[arg(long = "set")]
        set: Vec<String>,
        /// Continue the run in RUN_DIR from its checkpoints: finished
        /// trainings are loaded, the interrupted one continues from its last
        /// checkpoint; the recipe, seed, device, settings and every
        /// training's configuration must be unchanged.
        #[arg(long, value_name = "RUN_DIR")]
        resume: Option<PathBuf>,
    },
    /// Parse a recipe and resolve its names without training.
    Check {
        recipe: PathBuf,
        #[arg(long = "set")]
        set: Vec<String>,
    },
    /// List discovered plugins and their components.
    Plugins {
        #[arg(long)]
        json: bool,
    },
    /// Data set statistics.
    Data {
        #[command(subcommand)]
        cmd: DataCmd,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        cmd: BenchCmd,
    },
    /// Compare run folders side by side: a Markdown table per evaluation
    /// (mean ± std over seeds; run names `<model>-<n>` are seeds of one
    /// model, and so is the same run name in several folders), a paired
    /// t-test between two models, and SVG plots (training loss and
    /// validation metrics per epoch, per-group metrics, C_KL).
    Report {
        /// Run folders written by `host run`.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Folder for comparison.md and the plots (default runs/report-<timestamp>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Two models to test against each other, paired by seed: A,B.
        #[arg(long)]
        pair: Option<String>,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Training throughput of one backbone (naive estimator, BPR, Adam) on a
    /// uniform random log: examples/s, step-time percentiles, peak memory.
    Train {
        /// Backbone (mf, fm, nfm, din, mmgcn, ...).
        #[arg(long, default_value = "fm")]
        model: String,
        /// Item table rows.
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
        #[arg(long, default_value_t = 10_000)]
        users: usize,
        /// Interactions in the log.
        #[arg(long, default_value_t = 200_000)]
        inter: usize,
        /// Positives per batch.
        #[arg(long, default_value_t = 4096)]
        batch: usize,
        #[arg(long, default_value_t = 1)]
        negatives: usize,
        #[arg(long, default_value_t = 64)]
        dim: usize,
        /// Width of three random dense item modalities (visual, acoustic,
        /// textual) for multi-modal backbones such as mmgcn; 0: none.
        #[arg(long, default_value_t = 0)]
        modalities: usize,
        #[arg(long, default_value_t = 50)]
        steps: usize,
        #[arg(long, default_value_t = 5)]
        warmup: usize,
        /// cpu or cuda.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Also time each phase of the step (forward, each lookup,
        /// backward, the dense update, each table's row update): medians.
        #[arg(long)]
        phases: bool,
        /// Print the figures as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// All-ranking evaluation time (blocked scores, masking, top-K,
    /// Recall/NDCG) on ML-100K or a uniform random log, scored by random
    /// MF embeddings or an untrained backbone (`--model`).
    Rank {
        /// ml-100k or uniform.
        #[arg(long, default_value = "ml-100k")]
        data: String,
        /// Users of the uniform log.
        #[arg(long, default_value_t = 10_000)]
        users: usize,
        /// Items of the uniform log.
        #[arg(long, default_value_t = 100_000)]
        items: usize,
        /// Interactions of the uniform log.
        #[arg(long, default_value_t = 200_000)]
        inter: usize,
        #[arg(long, default_value_t = 64)]
        dim: usize,
        /// Cut-offs, comma-separated.
        #[arg(long, default_value = "10,20")]
        k: String,
        /// Score with this backbone's `score_all` (untrained; the plugin's
        /// graph as a training run evaluates) instead of random MF embeddings.
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum DataCmd {
    /// Statistics of a data set (bundled, ml-100k, ctar, obd, or a folder
    /// of atomic files): sizes, density, each part with its label balance,
    /// then the seed papers' data set tables the data supports (HCR clicks
    /// and likes, DecRS groups, CP2Rec attributes / proxies / positions,
    /// IV4Rec+ queries, CTAR Table 4). The load time and rows/s go to stderr.
    Info {
        source: String,
        /// The interaction column holding labels (e.g. islike, click).
        #[arg(long)]
        label: Option<String>,
        /// Reader options key=value (e.g. task=rating for ctar).
        #[arg(long = "set")]
        set: Vec<String>,
        /// Field roles field=role (e.g. class=group), repeatable; fields
        /// are also recognised by name (genre, class, like, query, ...).
        #[arg(long = "role")]
        role: Vec<String>,
    },
    /// Generate data from a causal scenario (scripts/scenarios/*.rhai):
    /// observed data in OUT, ground truth in OUT/truth.
    Gen {
        scenario: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Seed of the scenario's random generator (default 42).
        #[arg(long)]
        seed: Option<u64>,
        /// Scenario parameters key=value (repeatable).
        #[arg(long = "set")]
        set: Vec<String>,
    },
}

/// The repository root: the nearest ancestor of the current folder with `scripts/recipes`.
fn repo_root() -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let mut d: Option<&Path> = Some(&cwd);
    while let Some(p) = d {
        if p.join("scripts/recipes").is_dir() && p.join("Cargo.toml").is_file() {
            return p.to_path_buf();
        }
        d = p.parent();
    }
    cwd
}

/// Find a script: as given, or under `scripts/<kind>/` (`recipes/x.rhai`
/// and `x.rhai` both resolve there).
fn resolve_script(p: &Path, root: &Path, kind: &str) -> PathBuf {
    if p.exists() {
        return p.to_path_buf();
    }
    if let Ok(rest) = p.strip_prefix(kind) {
        let q = root.join("scripts").join(kind).join(rest);
        if q.exists() {
            return q;
        }
    }
    let q = root.join("scripts").join(kind).join(p);
    if q.exists() {
        return q;
    }
    p.to_path_buf()
}

/// `key=value` arguments of option `flag` (`--set`, `--role`).
fn parse_pairs(flag: &str, sets: &[String]) -> Result<BTreeMap<String, String>, String> {
    sets.iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| format!("{flag} {s}: expected key=value"))
        })
        .collect()
}

fn parse_sets(sets: &[String]) -> Result<BTreeMap<String, String>, String> {
    parse_pairs("--set", sets)
}

fn device(name: &str) -> Result<candle_core::Device, String> {
    match name {
        "cpu" => Ok(candle_core::Device::Cpu),
        "cuda" => candle_core::Device::new_cuda(0).map_err(|e| {
            format!("--device cuda: {e} (build the host with `--features cuda` and run on a machine with an NVIDIA GPU)")
        }),
        other => Err(format!("--device {other}: expected cpu or cuda")),
    }
}

/// What `host run` was given.
struct RunArgs<'a> {
    recipe: Option<&'a Path>,
    out: Option<PathBuf>,
    device: Option<&'a str>,
    seed: Option<u64>,
    sets: &'a [String],
    resume: Option<&'a Path>,
    check: bool,
}

/// With `--resume`: the run's manifest, with the command line checked
/// against it (what was given must match what the run was started with).
fn resume_manifest(
    args: &RunArgs<'_>,
    plugin_dirs: &[PathBuf],
) -> Result<Option<Manifest>, String> {
    let Some(dir) = args.resume else {
        return Ok(None);
    };
    let m = Manifest::load(dir)?;
    let mismatch = |what: &str, given: String, was: String| {
        Err(format!(
            "--resume {}: {what} {given} differs from the run's {was}",
            dir.display()
        ))
    };
    if let Some(s) = args.seed.filter(|s| *s != m.seed) {
        return mismatch("--seed", s.to_string(), m.seed.to_string());
    }
    if let Some(d) = args.device.filter(|d| *d != m.device) {
        return mismatch("--device", d.into(), m.device.clone());
    }
    let sets = parse_sets(args.sets)?;
    if !args.sets.is_empty() && sets != m.settings {
        return mismatch("--set", format!("{sets:?}"), format!("{:?}", m.settings));
    }
    if !plugin_dirs.is_empty() && plugin_dirs != m.plugin_dirs.as_slice() {
        return mismatch(
            "--plugin-dir",
            format!("{plugin_dirs:?}"),
            format!("{:?}", m.plugin_dirs),
        );
    }
    Ok(Some(m))
}

fn run_recipe(cli: &Cli, args: RunArgs<'_>) -> Result<(), String> {
    let root = repo_root();
    let resumed = resume_manifest(&args, &cli.plugin_dirs)?;
    let path = match (args.recipe, &resumed) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(m)) => m.recipe.clone(),
        (None, None) => return Err("host run: a recipe is needed".into()),
    };
    let (seed, dev, sets, plugin_dirs, out) = match &resumed {
        Some(m) => (
            m.seed,
            m.device.clone(),
            m.settings.clone(),
            m.plugin_dirs.clone(),
            args.resume.map(Path::to_path_buf),
        ),
        None => (
            args.seed.unwrap_or(2024),
            args.device.unwrap_or("cpu").to_string(),
            parse_sets(args.sets)?,
            cli.plugin_dirs.clone(),
            args.out,
        ),
    };
    let check = args.check;
    let file = resolve_script(&path, &root, "recipes");
    if !file.is_file() {
        return Err(format!(
            "{}: recipe not found (also looked in {})",
            path.display(),
            root.join("scripts/recipes").display()
        ));
    }
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("recipe")
        .to_string();
    let out = out.unwrap_or_else(|| root.join("runs").join(format!("{stem}-{}", timestamp())));
    let file = file.canonicalize().unwrap_or(file);
    let recipe_hash = Manifest::hash_recipe(&file)?;
    if let Some(m) = &resumed {
        if m.recipe_hash != recipe_hash {
            return Err(format!(
                "--resume {}: the recipe {} changed since the run started; resuming would mix two runs: start a new run instead",
                out.display(),
                file.display()
            ));
        }
    }
    let registry = Arc::new(Registry::discover(&plugin_dirs));
    for f in &registry.failures {
        tracing::warn!("plugin {}: {}", f.path.display(), f.reason);
    }
    let cfg = SessionConfig {
        recipe: file.clone(),
        repo_root: root,
        out: out.clone(),
        seed,
        device: dev.clone(),
        settings: sets.clone(),
        check_only: check,
    };
    let session = Session::new(cfg, registry, device(&dev)?)?;
    if !check {
        let trainings = match &resumed {
            Some(m) => m.trainings.clone(),
            None => Vec::new(),
        };
        let manifest = Manifest {
            recipe: file.clone(),
            recipe_hash,
            seed,
            device: dev.clone(),
            settings: sets,
            plugin_dirs: plugin_dirs
                .iter()
                .map(|p| p.canonicalize().unwrap_or(p.clone()))
                .collect(),
            trainings,
        };
        session.start_manifest(manifest, resumed)?;
    }
    let engine = recipe::engine(session.clone());
    let ast = recipe::compile(&engine, &file)?;
    let result = engine
        .run_ast(&ast)
        .map_err(|e| recipe::format_error(&file, &e));
    if let Some(o) = &session.out {
        let o = o.lock().unwrap_or_else(|e| e.into_inner());
        #[derive(serde::Serialize)]
        struct Resolved<'a> {
            session: &'a SessionConfig,
            runs: Vec<causalrec_host::recipe::ResolvedCall>,
        }
        let runs = session
            .resolved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        o.write_config(&Resolved {
            session: &session.cfg,
            runs,
        })?;
        o.write_report()?;
        eprintln!("run directory: {}", o.path.display());
    }
    result?;
    if check {
        println!("{}: ok", file.display());
    }
    Ok(())
}

/// `host report`: write comparison.md and the plots, print the Markdown.
fn compare_runs(runs: &[PathBuf], out: Option<PathBuf>, pair: Option<&str>) -> Result<(), String> {
    let cmp = causalrec_host::compare::Comparison::load(runs)?;
    let pair = match pair {
        None => None,
        Some(p) => Some(
            p.split_once(',')
                .ok_or_else(|| format!("--pair: expected two model names as A,B, got '{p}'"))?,
        ),
    };
    let md = cmp.markdown(pair)?;
    let out = out.unwrap_or_else(|| {
        repo_root()
            .join("runs")
            .join(format!("report-{}", causalrec_host::report::timestamp()))
    });
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let plots = cmp.plots(&out)?;
    let path = out.join("comparison.md");
    let mut text = md.clone();
    for p in &plots {
        if let Some(name) = p.file_name().and_then(|n| n.to_str()) {
            text.push_str(&format!("![{name}]({name})\n\n"));
        }
    }
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    print!("{md}");
    eprintln!("wrote {} and {} plots", path.display(), plots.len());
    Ok(())
}

/// glibc's malloc backs its large allocations with transparent huge pages
/// only under the `glibc.malloc.hugetlb=1` tunable, which is read when a
/// process starts: the host re-executes itself once with it set (the same
/// process id, arguments and environment otherwise). A training step
/// allocates fresh tensor buffers for every op, and with 4 KiB pages their
/// page faults dominated it: measured 2026-12-03, `bench train --model fm`
/// at 10^5 rows p50 56.2 ms -> 26.3 ms. The same re-execution raises
/// malloc's mmap threshold to its maximum (32 MiB) and its trim threshold,
/// so that freed op buffers stay in the heap for the next step instead of
/// being unmapped and faulted in (and zeroed) again: measured 2026-12-06,
/// fm p50 25.1 -> 21.8 ms, din p90 378 -> 241 ms. `CAUSALREC_HUGEPAGES=0`
/// keeps the process as started; a GLIBC_TUNABLES that names the huge-page
/// tunable is kept as it is.
fn with_huge_page_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        const TUNABLE: &str = "glibc.malloc.hugetlb";
        if causalrec_host::switched_off("CAUSALREC_HUGEPAGES") {
            return;
        }
        let current = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
        if current.contains(TUNABLE) {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let ours = format!(
            "{TUNABLE}=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296"
        );
        let tunables = if current.is_empty() {
            ours
        } else {
            format!("{current}:{ours}")
        };
        let err = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env("GLIBC_TUNABLES", tunables)
            .exec();
        // `exec` returns only when it failed: go on with 4 KiB pages.
        eprintln!("note: could not re-execute with {TUNABLE}=1 ({err}); continuing without");
    }
}

fn main() -> ExitCode {
    with_huge_page_malloc();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let r = match &cli.cmd {
        Cmd::Run {
            recipe,
            out,
            device,
            seed,
            set,
            resume,
        } => run_recipe(
            &cli,
            RunArgs {
                recipe: recipe.as_deref(),
                out: out.clone(),
                device: device.as_deref(),
                seed: *seed,
                sets: set,
                resume: resume.as_deref(),
                check: false,
            },
        ),
        Cmd::Check { recipe, set } => run_recipe(
            &cli,
            RunArgs {
                recipe: Some(recipe),
                out: None,
                device: None,
                seed: None,
                sets: set,
                resume: None,
                check: true,
            },
        ),
        Cmd::Plugins { json } => {
            let reg = Registry::discover(&cli.plugin_dirs);
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&reg.rows()).unwrap_or_default()
                );
            } else {
                for p in &reg.plugins {
                    println!("{} ({})", p.name, p.path.display());
                    for c in &p.components {
                        println!("  {:<9} {:<12} {}", c.kind.as_str(), c.name, c.description);
                        if !c.estimand.is_empty() {
                            println!("              estimand: {}", c.estimand);
                        }
                        for q in c.params.iter() {
                            println!("              {} = {}  — {}", q.name, q.default_ron, q.help);
                        }
                    }
                }
            }
            for f in &reg.failures {
                eprintln!("error: {}: {}", f.path.display(), f.reason);
            }
            Ok(())
        }
        Cmd::Data {
            cmd:
                DataCmd::Info {
                    source,
                    label,
                    set,
                    role,
                },
        } => parse_sets(set).and_then(|reader| {
            let cfg = DataConfig {
                source: source.clone(),
                label: label.clone(),
                reader: reader.into_iter().collect(),
                roles: parse_pairs("--role", role)?.into_iter().collect(),
                ..DataConfig::default()
            };
            let root = repo_root();
            let start = Instant::now();
            let (ds, cache) = causalrec_host::data::load_dataset_cached(&cfg, &root)?;
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "loaded {} in {secs:.3} s (parse cache {}): {} interactions, {:.0} rows/s",
                ds.name,
                cache.as_str(),
                ds.n_inter(),
                ds.n_inter() as f64 / secs.max(1e-9)
            );
            print!("{}", causalrec_host::info::data_info(&ds, &cfg, &root)?);
            Ok(())
        }),
        Cmd::Bench {
            cmd:
                BenchCmd::Train {
                    model,
                    rows,
                    users,
                    inter,
                    batch,
                    negatives,
                    dim,
                    modalities,
                    steps,
                    warmup,
                    device: dev,
                    phases,
                    json,
                },
        } => device(dev).and_then(|d| {
            let reg = Registry::discover(&cli.plugin_dirs);
            let b = causalrec_host::bench::BenchTrain {
                model: model.clone(),
                rows: *rows,
                users: *users,
                inter: *inter,
                batch: *batch,
                negatives: *negatives,
                dim: *dim,
                modality_width: *modalities,
                steps: *steps,
                warmup: *warmup,
                seed: 7,
                phases: *phases,
            };
            let r = causalrec_host::bench::bench_train(&b, &reg, d)?;
            if *json {
                println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
            } else {
                println!(
                    "{} rows {} batch {} ({} examples/step, {dev}): {:.0} examples/s; step p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms; peak RSS {:.0} MB; setup {:.1} s",
                    r.model, r.rows, r.batch, r.examples_per_step, r.examples_per_second,
                    r.step_ms_p50, r.step_ms_p90, r.step_ms_p99, r.peak_rss_mb, r.setup_seconds
                );
                for (phase, ms) in r.phase_ms_p50.iter().flatten() {
                    println!("  {phase:<24} p50 {ms:8.3} ms");
                }
            }
            Ok(())
        }),
        Cmd::Bench {
            cmd:
                BenchCmd::Rank {
                    data,
                    users,
                    items,
                    inter,
                    dim,
                    k,
                    model,
                    json,
                },
        } => k
            .split(',')
            .map(|x| {
                x.trim()
                    .parse::<usize>()
                    .map_err(|_| format!("--k: '{x}' is not a cut-off"))
            })
            .collect::<Result<Vec<_>, _>>()
            .and_then(|ks| {
                let b = causalrec_host::bench::BenchRank {
                    data: data.clone(),
                    users: *users,
                    items: *items,
                    inter: *inter,
                    dim: *dim,
                    ks,
                    seed: 7,
                    model: model.clone(),
                };
                let reg = Registry::discover(&cli.plugin_dirs);
                let r = causalrec_host::bench::bench_rank(&b, &reg, &repo_root())?;
                if *json {
                    println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
                } else {
                    println!(
                        "all-ranking on {} ({}): {} users x {} items in {:.3} s ({:.0} users/s, {:.3e} scores/s); peak RSS {:.0} MB",
                        r.data, r.model.as_deref().unwrap_or("random MF embeddings"), r.users, r.items,
                        r.seconds, r.users_per_second, r.scores_per_second, r.peak_rss_mb
                    );
                }
                Ok(())
            }),
        Cmd::Report { runs, out, pair } => compare_runs(runs, out.clone(), pair.as_deref()),
        Cmd::Data {
            cmd:
                DataCmd::Gen {
                    scenario,
                    out,
                    seed,
                    set,
                },
        } => parse_sets(set).and_then(|sets| {
            let scenario = resolve_script(scenario, &repo_root(), "scenarios");
            let sets: Vec<(String, String)> = sets.into_iter().collect();
            causalrec_datasets::sim::generate(&scenario, out, *seed, &sets)
                .map(|report| println!("{report}"))
                .map_err(|e| e.to_string())
        }),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
