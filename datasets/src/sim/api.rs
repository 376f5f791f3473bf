//! The Rhai scenario API: the functions a scenario script calls, and the
//! state they record (parameters, entities, node declarations, outputs).
//!
//! All randomness goes through one seeded `ChaCha8Rng` held in [`State`];
//! scripts run in a sandboxed engine (no modules, no `eval`) whose only file
//! access is [`read_csv`](State::read_path) under the caller's data
//! directories and writes under the output directory.
//! See `scripts/scenarios/README.md` for the reference.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rhai::{Array, Dynamic, Engine, EvalAltResult, FnPtr, Map, NativeCallContext, INT};

use super::graph::{Kind, NodeDecl};
use super::value::{axes_str, n_units, Axis, Col, Sets, TCol, Table};

type RResult<T> = Result<T, Box<EvalAltResult>>;

/// An entity (a set of units such as users or movies), usable as a shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// Its name.
    pub name: String,
    /// Its number of units.
    pub n: usize,
}

/// A set of integer keys or key pairs (fast membership for test-set
/// construction).
#[derive(Debug, Clone, Default)]
pub struct KeySet(HashSet<(i64, i64)>);

/// The value of a scenario parameter.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum ParamValue {
    /// An integer.
    Int(i64),
    /// A real.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A string.
    Str(String),
    /// A data directory the script may read (resolved, absolute).
    Path(String),
}

impl std::fmt::Display for ParamValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamValue::Int(v) => write!(f, "{v}"),
            ParamValue::Float(v) => write!(f, "{v}"),
            ParamValue::Bool(v) => write!(f, "{v}"),
            ParamValue::Str(v) | ParamValue::Path(v) => write!(f, "{v}"),
        }
    }
}

/// How a node's value is produced.
#[derive(Clone)]
pub enum NodeEq {
    /// A closure `|p| ...` given the parents' values as a map.
    Fn(FnPtr),
    /// A proxy, computed by the host; `thin` optionally thins set units.
    Proxy {
        /// The optional thinning closure `|x| ...`.
        thin: Option<FnPtr>,
    },
}

/// What the scenario declared while its script ran.
pub struct State {
    /// The one random number generator.
    pub rng: ChaCha8Rng,
    /// `--set` overrides, consumed as parameters are declared.
    pub sets: HashMap<String, String>,
    /// Declared parameters, in order.
    pub params: Vec<(String, ParamValue)>,
    /// Declared entities.
    pub entities: Vec<Entity>,
    /// Declared nodes.
    pub nodes: Vec<NodeDecl>,
    /// Their equations, parallel to `nodes`.
    pub eqs: Vec<NodeEq>,
    /// Declared axes of each node, if given.
    pub on: Vec<Option<Vec<Axis>>>,
    /// The observed-output closure.
    pub outputs: Option<FnPtr>,
    /// The truth-output closure.
    pub truth: Option<FnPtr>,
    /// Directories the script may read.
    pub read_roots: Vec<PathBuf>,
    /// Where writes go now (None outside the output closures).
    pub write_root: Option<PathBuf>,
    /// Written files (relative to the output directory) and row counts.
    pub written: Vec<(PathBuf, usize)>,
    /// The output directory.
    pub out: PathBuf,
    /// The scenario file's directory.
    pub scenario_dir: PathBuf,
    /// Errors that are not script errors but must stop generation.
    pub errors: Vec<String>,
}

/// Shared handle to the state.
pub type Shared = Arc<Mutex<State>>;

fn lock(s: &Shared) -> MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    /// A fresh state.
    pub fn new(seed: u64, sets: &[(String, String)], out: &Path, scenario_dir: &Path) -> State {
        State {
            rng: ChaCha8Rng::seed_from_u64(seed),
            sets: sets.iter().cloned().collect(),
            params: Vec::new(),
            entities: Vec::new(),
            nodes: Vec::new(),
            eqs: Vec::new(),
            on: Vec::new(),
            outputs: None,
            truth: None,
            read_roots: Vec::new(),
            write_root: None,
            written: Vec::new(),
            out: out.to_path_buf(),
            scenario_dir: scenario_dir.to_path_buf(),
            errors: Vec::new(),
        }
    }

    /// Checks that `path` lies under a readable root and returns it.
    fn read_path(&self, path: &str) -> Result<PathBuf, String> {
        let p = PathBuf::from(path);
        let canon = p
            .canonicalize()
            .map_err(|e| format!("read_csv('{path}'): {e}"))?;
        if self
            .read_roots
            .iter()
            .any(|r| r.canonicalize().is_ok_and(|r| canon.starts_with(r)))
        {
            Ok(canon)
        } else {
            Err(format!(
                "read_csv('{path}'): outside the readable directories (declare them with path_param): {}",
                self.read_roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
    }

    /// Resolves a relative write path under the current write root.
    fn write_path(&self, rel: &str) -> Result<(PathBuf, PathBuf), String> {
        let root = self
            .write_root
            .clone()
            .ok_or("files can be written only inside outputs(|v| ..) or truth(|v| ..)")?;
        let p = Path::new(rel);
        if p.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(format!(
                "write path '{rel}' must be relative without '..' (it is placed under the output directory)"
            ));
        }
        let full = root.join(p);
        let shown = full.strip_prefix(&self.out).unwrap_or(&full).to_path_buf();
        Ok((full, shown))
    }

    /// Resolves a path parameter: absolute as is; relative against the
    /// working directory, else against the scenario directory and its
    /// ancestors (the first that exists).
    fn resolve_dir(&self, value: &str) -> PathBuf {
        let p = PathBuf::from(value);
        if p.is_absolute() || p.exists() {
            return p;
        }
        let mut dir = Some(self.scenario_dir.as_path());
        while let Some(d) = dir {
            let cand = d.join(&p);
            if cand.exists() {
                return cand;
            }
            dir = d.parent();
        }
        p
    }
}

fn num(d: &Dynamic) -> Result<f64, String> {
    let d = d.flatten_clone();
    d.as_float()
        .or_else(|_| d.as_int().map(|i| i as f64))
        .map_err(|_| format!("expected a number, got {}", d.type_name()))
}

fn axes_of(d: &Dynamic) -> Result<Vec<Axis>, String> {
    let d = d.flatten_clone();
    if let Some(e) = d.clone().try_cast::<Entity>() {
        return Ok(vec![(e.name, e.n)]);
    }
    if let Ok(arr) = d.clone().into_array() {
        let axes = arr
            .iter()
            .map(|x| {
                x.flatten_clone()
                    .try_cast::<Entity>()
                    .map(|e| (e.name, e.n))
                    .ok_or_else(|| "a shape is an entity or an array of entities".to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        if axes.len() > 2 {
            return Err("at most two axes are supported".into());
        }
        return Ok(axes);
    }
    Err(format!(
        "a shape is an entity or an array of entities, got {}",
        d.type_name()
    ))
}

fn col_of(d: &Dynamic) -> Option<Col> {
    d.flatten_clone().try_cast::<Col>()
}

fn index(d: i64, what: &str) -> Result<usize, String> {
    usize::try_from(d).map_err(|_| format!("{what}: negative index {d}"))
}

fn std_normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box-Muller: u1 in (0, 1] so the log is finite.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// `k` distinct indices of `0..w.len()` drawn with probabilities
/// proportional to `w`, without replacement (Efraimidis-Spirakis keys,
/// equivalent to successive renormalised draws).
fn weighted_sample(rng: &mut ChaCha8Rng, w: &[f64], k: usize) -> Result<Vec<usize>, String> {
    let positive = w.iter().filter(|&&x| x > 0.0).count();
    if k > positive {
        return Err(format!(
            "cannot draw {k} distinct items from {positive} with positive weight"
        ));
    }
    let mut keys: Vec<(f64, usize)> = w
        .iter()
        .enumerate()
        .filter(|(_, &x)| x > 0.0)
        .map(|(i, &x)| {
            let u: f64 = 1.0 - rng.random::<f64>();
            (u.ln() / x, i)
        })
        .collect();
    keys.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    Ok(keys.into_iter().take(k).map(|(_, i)| i).collect())
}

/// `k` distinct indices of `0..n`, uniformly (partial Fisher-Yates).
fn uniform_sample(rng: &mut ChaCha8Rng, n: usize, k: usize) -> Result<Vec<usize>, String> {
    if k > n {
        return Err(format!("cannot draw {k} distinct items from {n}"));
    }
    let mut pool: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let j = rng.random_range(i..n);
        pool.swap(i, j);
    }
    pool.truncate(k);
    Ok(pool)
}

fn tcol_of(d: &Dynamic, n_hint: Option<usize>) -> Result<TCol, String> {
    let d = d.flatten_clone();
    if let Some(c) = d.clone().try_cast::<Col>() {
        let _ = n_hint;
        return Ok(TCol::Float(c.data));
    }
    let arr = d
        .into_array()
        .map_err(|t| format!("a table column is an array or a Col, got {t}"))?;
    let arr: Vec<Dynamic> = arr.into_iter().map(|x| x.flatten()).collect();
    if arr.iter().all(|x| x.is_int()) {
        return Ok(TCol::Int(
            arr.iter().map(|x| x.as_int().unwrap_or(0)).collect(),
        ));
    }
    if arr.iter().all(|x| x.is_int() || x.is_float()) {
        return arr
            .iter()
            .map(num)
            .collect::<Result<_, _>>()
            .map(TCol::Float);
    }
    Ok(TCol::Str(arr.iter().map(|x| x.to_string()).collect()))
}

fn tcol_to_array(c: &TCol) -> Array {
    match c {
        TCol::Int(v) => v.iter().map(|&x| Dynamic::from_int(x)).collect(),
        TCol::Float(v) => v.iter().map(|&x| Dynamic::from_float(x)).collect(),
        TCol::Str(v) => v.iter().map(|x| Dynamic::from(x.clone())).collect(),
    }
}

/// Integer-valued reals become [`TCol::Int`] (ratings print as `4`).
fn tidy(v: Vec<f64>) -> TCol {
    if v.iter().all(|x| x.fract() == 0.0 && x.abs() < 1e15) {
        TCol::Int(v.into_iter().map(|x| x as i64).collect())
    } else {
        TCol::Float(v)
    }
}

fn unit_indices(axes: &[Axis], k: usize) -> Vec<i64> {
    match axes.len() {
        0 => vec![],
        1 => vec![k as i64],
        _ => vec![(k / axes[1].1) as i64, (k % axes[1].1) as i64],
    }
}

fn names_of(d: Array, want: usize, what: &str) -> Result<Vec<String>, String> {
    let names: Vec<String> = d.into_iter().map(|x| x.to_string()).collect();
    if names.len() != want {
        return Err(format!(
            "{what}: {want} column names expected, got {}",
            names.len()
        ));
    }
    Ok(names)
}

/// One row per observed unit (per element for sets; `-1` for an empty set).
fn rows_of(v: &Dynamic, names: Array, dropped: bool) -> Result<Table, String> {
    let v = v.flatten_clone();
    let mut idx: Vec<Vec<i64>> = Vec::new();
    let mut table = Table::default();
    if let Some(c) = v.clone().try_cast::<Col>() {
        if dropped {
            return Err("dropped_rows needs a thinned set proxy".into());
        }
        let names = names_of(names, c.axes.len() + 1, "rows")?;
        idx.resize(c.axes.len(), Vec::new());
        let mut vals = Vec::new();
        for k in 0..c.len() {
            if c.mask.as_ref().is_none_or(|m| m[k]) {
                for (a, i) in unit_indices(&c.axes, k).into_iter().enumerate() {
                    idx[a].push(i);
                }
                vals.push(c.data[k]);
            }
        }
        for (a, ix) in idx.into_iter().enumerate() {
            table.push(&names[a], TCol::Int(ix))?;
        }
        table.push(&names[c.axes.len()], tidy(vals))?;
        return Ok(table);
    }
    let s = v
        .try_cast::<Sets>()
        .ok_or("rows: expected a Col or a Sets value")?;
    let names = names_of(names, s.axes.len() + 1, "rows")?;
    let src = if dropped {
        s.dropped
            .as_deref()
            .ok_or("dropped_rows needs a thinned set proxy")?
    } else {
        &s
    };
    idx.resize(s.axes.len(), Vec::new());
    let mut vals = Vec::new();
    for k in 0..s.len() {
        if !s.mask.as_ref().is_none_or(|m| m[k]) {
            continue;
        }
        let unit = src.unit(k);
        let elems: Vec<i64> = if unit.is_empty() && !dropped {
            vec![-1]
        } else {
            unit.to_vec()
        };
        for x in elems {
            for (a, i) in unit_indices(&s.axes, k).into_iter().enumerate() {
                idx[a].push(i);
            }
            vals.push(x);
        }
    }
    for (a, ix) in idx.into_iter().enumerate() {
        table.push(&names[a], TCol::Int(ix))?;
    }
    table.push(&names[s.axes.len()], TCol::Int(vals))?;
    Ok(table)
}

/// Builds the Rhai engine with the whole scenario API bound to `state`.
pub fn build_engine(state: &Shared) -> Engine {
    let mut engine = Engine::new();
    engine.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
    engine.disable_symbol("eval");
    engine.on_print(|s| eprintln!("{s}"));
    engine.set_max_expr_depths(256, 256);
    engine
        .register_type_with_name::<Entity>("Entity")
        .register_type_with_name::<Col>("Col")
        .register_type_with_name::<Sets>("Sets")
        .register_type_with_name::<Table>("Table")
        .register_type_with_name::<KeySet>("KeySet");
    register_decls(&mut engine, state);
    register_noise(&mut engine, state);
    register_cols(&mut engine);
    register_sets(&mut engine, state);
    register_tables(&mut engine, state);
    engine
}

fn declare(
    state: &Shared,
    ctx: &NativeCallContext,
    name: &str,
    kind: Kind,
    spec: Map,
) -> RResult<()> {
    let line = ctx.call_position().line();
    let mut parents: Vec<String> = match spec.get("parents") {
        Some(p) => p
            .clone()
            .into_array()
            .map_err(|_| format!("node '{name}': 'parents' must be an array of names"))?
            .into_iter()
            .map(|x| x.to_string())
            .collect(),
        None => Vec::new(),
    };
    let get_str = |k: &str| spec.get(k).map(|v| v.to_string());
    let of = get_str("of");
    let by = get_str("by");
    let on = match spec.get("on") {
        Some(d) => Some(axes_of(d).map_err(|e| format!("node '{name}': 'on': {e}"))?),
        None => None,
    };
    let fnptr = |k: &str| -> RResult<Option<FnPtr>> {
        match spec.get(k) {
            None => Ok(None),
            Some(d) => d.clone().try_cast::<FnPtr>().map(Some).ok_or_else(|| {
                format!("node '{name}': '{k}' must be a closure like |p| ...").into()
            }),
        }
    };
    let eq = if kind == Kind::Proxy {
        if let Some(o) = &of {
            parents.push(o.clone());
        }
        if let Some(b) = &by {
            parents.push(b.clone());
        }
        NodeEq::Proxy {
            thin: fnptr("thin")?,
        }
    } else {
        NodeEq::Fn(fnptr("eq")?.ok_or_else(|| format!("node '{name}': missing 'eq' closure"))?)
    };
    let thinned = matches!(eq, NodeEq::Proxy { thin: Some(_) });
    let mut st = lock(state);
    st.nodes.push(NodeDecl {
        name: name.to_string(),
        kind,
        parents,
        of,
        by,
        thinned,
        line,
    });
    st.eqs.push(eq);
    st.on.push(on);
    Ok(())
}

fn register_decls(engine: &mut Engine, state: &Shared) {
    for (fname, kind) in [
        ("observed", Kind::Observed),
        ("partial", Kind::Partial),
        ("latent", Kind::Latent),
        ("indicator", Kind::Indicator),
        ("proxy", Kind::Proxy),
    ] {
        let s = state.clone();
        engine.register_fn(
            fname,
            move |ctx: NativeCallContext, name: &str, spec: Map| {
                declare(&s, &ctx, name, kind, spec)
            },
        );
    }
    let s = state.clone();
    engine.register_fn("entity", move |name: &str, n: INT| -> RResult<Entity> {
        let n = index(n, "entity size")?;
        let mut st = lock(&s);
        if st.entities.iter().any(|e| e.name == name) {
            return Err(format!("entity '{name}' declared twice").into());
        }
        let e = Entity {
            name: name.to_string(),
            n,
        };
        st.entities.push(e.clone());
        Ok(e)
    });
    engine.register_get("n", |e: &mut Entity| e.n as INT);
    engine.register_get("name", |e: &mut Entity| e.name.clone());

    let param = {
        let s = state.clone();
        move |name: &str, default: Dynamic, is_path: bool| -> RResult<Dynamic> {
            let mut st = lock(&s);
            if st.params.iter().any(|(n, _)| n == name) {
                return Err(format!("parameter '{name}' declared twice").into());
            }
            let over = st.sets.remove(name);
            let bad = |v: &str, t: &str| -> Box<EvalAltResult> {
                format!("--set {name}={v}: expected {t}").into()
            };
            let value = if is_path {
                let raw = over.unwrap_or_else(|| default.to_string());
                let p = st.resolve_dir(&raw);
                let p = p.canonicalize().unwrap_or(p);
                st.read_roots.push(p.clone());
                ParamValue::Path(p.display().to_string())
            } else if default.is_int() {
                match over {
                    Some(v) => {
                        ParamValue::Int(v.trim().parse().map_err(|_| bad(&v, "an integer"))?)
                    }
                    None => ParamValue::Int(default.as_int().unwrap_or(0)),
                }
            } else if default.is_float() {
                match over {
                    Some(v) => {
                        ParamValue::Float(v.trim().parse().map_err(|_| bad(&v, "a number"))?)
                    }
                    None => ParamValue::Float(default.as_float().unwrap_or(0.0)),
                }
            } else if default.is_bool() {
                match over {
                    Some(v) => {
                        ParamValue::Bool(v.trim().parse().map_err(|_| bad(&v, "true or false"))?)
                    }
                    None => ParamValue::Bool(default.as_bool().unwrap_or(false)),
                }
            } else if default.is_string() {
                ParamValue::Str(over.unwrap_or_else(|| default.to_string()))
            } else {
                return Err(format!(
                    "parameter '{name}': default must be an integer, number, boolean or string"
                )
                .into());
            };
            let d = match &value {
                ParamValue::Int(v) => Dynamic::from_int(*v),
                ParamValue::Float(v) => Dynamic::from_float(*v),
                ParamValue::Bool(v) => Dynamic::from_bool(*v),
                ParamValue::Str(v) | ParamValue::Path(v) => Dynamic::from(v.clone()),
            };
            st.params.push((name.to_string(), value));
            Ok(d)
        }
    };
    let p1 = param.clone();
    engine.register_fn("param", move |name: &str, default: Dynamic| {
        p1(name, default, false)
    });
    let p2 = param.clone();
    engine.register_fn("param", move |name: &str, default: Dynamic, _doc: &str| {
        p2(name, default, false)
    });
    let p3 = param;
    engine.register_fn("path_param", move |name: &str, default: &str| {
        p3(name, Dynamic::from(default.to_string()), true)
    });
    let s = state.clone();
    engine.register_fn("outputs", move |f: FnPtr| {
        lock(&s).outputs = Some(f);
    });
    let s = state.clone();
    engine.register_fn("truth", move |f: FnPtr| {
        lock(&s).truth = Some(f);
    });
}

fn register_noise(engine: &mut Engine, state: &Shared) {
    // normal
    let s = state.clone();
    engine.register_fn(
        "normal",
        move |shape: Dynamic, mean: Dynamic, sd: Dynamic| -> RResult<Col> {
            let axes = axes_of(&shape)?;
            let (m, sd) = (num(&mean)?, num(&sd)?);
            let mut st = lock(&s);
            let n = n_units(&axes);
            let data = (0..n).map(|_| m + sd * std_normal(&mut st.rng)).collect();
            Ok(Col {
                axes,
                data,
                mask: None,
            })
        },
    );
    let s = state.clone();
    engine.register_fn(
        "normal",
        move |mean: Dynamic, sd: Dynamic| -> RResult<Dynamic> {
            let sd = num(&sd)?;
            let mut st = lock(&s);
            if let Some(c) = col_of(&mean) {
                let rng = &mut st.rng;
                return Ok(Dynamic::from(c.map(|m| m + sd * std_normal(rng))));
            }
            let m = num(&mean)?;
            Ok(Dynamic::from_float(m + sd * std_normal(&mut st.rng)))
        },
    );
    // uniform
    let s = state.clone();
    engine.register_fn(
        "uniform",
        move |shape: Dynamic, lo: Dynamic, hi: Dynamic| -> RResult<Col> {
            let axes = axes_of(&shape)?;
            let (lo, hi) = (num(&lo)?, num(&hi)?);
            let mut st = lock(&s);
            let n = n_units(&axes);
            let data = (0..n)
                .map(|_| lo + (hi - lo) * st.rng.random::<f64>())
                .collect();
            Ok(Col {
                axes,
                data,
                mask: None,
            })
        },
    );
    let s = state.clone();
    engine.register_fn("uniform", move |lo: Dynamic, hi: Dynamic| -> RResult<f64> {
        let (lo, hi) = (num(&lo)?, num(&hi)?);
        Ok(lo + (hi - lo) * lock(&s).rng.random::<f64>())
    });
    // bernoulli
    let s = state.clone();
    engine.register_fn("bernoulli", move |p: Dynamic| -> RResult<Dynamic> {
        let mut st = lock(&s);
        if let Some(c) = col_of(&p) {
            let rng = &mut st.rng;
            return Ok(Dynamic::from(
                c.map(|p| f64::from(u8::from(rng.random::<f64>() < p))),
            ));
        }
        let p = num(&p)?;
        Ok(Dynamic::from_bool(st.rng.random::<f64>() < p))
    });
    let s = state.clone();
    engine.register_fn(
        "bernoulli",
        move |shape: Dynamic, p: Dynamic| -> RResult<Col> {
            let axes = axes_of(&shape)?;
            let p = num(&p)?;
            let mut st = lock(&s);
            let n = n_units(&axes);
            let data = (0..n)
                .map(|_| f64::from(u8::from(st.rng.random::<f64>() < p)))
                .collect();
            Ok(Col {
                axes,
                data,
                mask: None,
            })
        },
    );
    // categorical: an index drawn with probability proportional to weights
    fn weights(d: &Dynamic) -> Result<Vec<f64>, String> {
        if let Some(c) = col_of(d) {
            return Ok(c.data);
        }
        d.flatten_clone()
            .into_array()
            .map_err(|t| format!("weights must be an array or a Col, got {t}"))?
            .iter()
            .map(num)
            .collect()
    }
    fn draw(rng: &mut ChaCha8Rng, w: &[f64], total: f64) -> usize {
        let mut u = rng.random::<f64>() * total;
        for (i, &x) in w.iter().enumerate() {
            if u < x {
                return i;
            }
            u -= x.max(0.0);
        }
        w.len() - 1
    }
    let s = state.clone();
    engine.register_fn("categorical", move |w: Dynamic| -> RResult<INT> {
        let w = weights(&w)?;
        let total: f64 = w.iter().filter(|x| **x > 0.0).sum();
        if total <= 0.0 {
            return Err("categorical: weights must have a positive sum".into());
        }
        Ok(draw(&mut lock(&s).rng, &w, total) as INT)
    });
    let s = state.clone();
    engine.register_fn(
        "categorical",
        move |shape: Dynamic, w: Dynamic| -> RResult<Col> {
            let axes = axes_of(&shape)?;
            let w = weights(&w)?;
            let total: f64 = w.iter().filter(|x| **x > 0.0).sum();
            if total <= 0.0 {
                return Err("categorical: weights must have a positive sum".into());
            }
            let mut st = lock(&s);
            let data = (0..n_units(&axes))
                .map(|_| draw(&mut st.rng, &w, total) as f64)
                .collect();
            Ok(Col {
                axes,
                data,
                mask: None,
            })
        },
    );
    // choice: k distinct items, uniformly or weighted
    let s = state.clone();
    engine.register_fn("choice", move |from: Dynamic, k: INT| -> RResult<Array> {
        let k = index(k, "choice")?;
        let mut st = lock(&s);
        if let Ok(n) = from.as_int() {
            let picked = uniform_sample(&mut st.rng, index(n, "choice")?, k)?;
            return Ok(picked
                .into_iter()
                .map(|i| Dynamic::from_int(i as INT))
                .collect());
        }
        let arr = from
            .into_array()
            .map_err(|t| format!("choice: expected an int or an array, got {t}"))?;
        let picked = uniform_sample(&mut st.rng, arr.len(), k)?;
        Ok(picked.into_iter().map(|i| arr[i].clone()).collect())
    });
    let s = state.clone();
    engine.register_fn(
        "choice",
        move |items: Array, w: Dynamic, k: INT| -> RResult<Array> {
            let w = weights(&w)?;
            if w.len() != items.len() {
                return Err(
                    format!("choice: {} items but {} weights", items.len(), w.len()).into(),
                );
            }
            let picked = weighted_sample(&mut lock(&s).rng, &w, index(k, "choice")?)?;
            Ok(picked.into_iter().map(|i| items[i].clone()).collect())
        },
    );
    let s = state.clone();
    engine.register_fn("randint", move |lo: INT, hi: INT| -> RResult<INT> {
        if hi < lo {
            return Err(format!("randint({lo}, {hi}): empty range").into());
        }
        Ok(lock(&s).rng.random_range(lo..=hi))
    });
    let s = state.clone();
    engine.register_fn("shuffle", move |mut arr: Array| -> Array {
        let mut st = lock(&s);
        for i in (1..arr.len()).rev() {
            let j = st.rng.random_range(0..=i);
            arr.swap(i, j);
        }
        arr
    });
}

fn register_cols(engine: &mut Engine) {
    macro_rules! binop {
        ($op:literal, $f:expr) => {
            engine.register_fn($op, |a: Col, b: Col| -> RResult<Col> { Ok(a.zip(&b, $f)?) });
            engine.register_fn($op, |a: Col, b: f64| a.map(|x| $f(x, b)));
            engine.register_fn($op, |a: f64, b: Col| b.map(|x| $f(a, x)));
            engine.register_fn($op, |a: Col, b: INT| a.map(|x| $f(x, b as f64)));
            engine.register_fn($op, |a: INT, b: Col| b.map(|x| $f(a as f64, x)));
        };
    }
    binop!("+", |a: f64, b: f64| a + b);
    binop!("-", |a: f64, b: f64| a - b);
    binop!("*", |a: f64, b: f64| a * b);
    binop!("/", |a: f64, b: f64| a / b);
    binop!("max", |a: f64, b: f64| a.max(b));
    binop!("min", |a: f64, b: f64| a.min(b));
    binop!("gt", |a: f64, b: f64| f64::from(u8::from(a > b)));
    binop!("lt", |a: f64, b: f64| f64::from(u8::from(a < b)));
    binop!("eq", |a: f64, b: f64| f64::from(u8::from(a == b)));
    engine.register_fn("-", |a: Col| a.map(|x| -x));
    engine.register_fn("exp", |a: Col| a.map(f64::exp));
    engine.register_fn("ln", |a: Col| a.map(f64::ln));
    engine.register_fn("abs", |a: Col| a.map(f64::abs));
    engine.register_fn("sigmoid", |a: Col| a.map(|x| 1.0 / (1.0 + (-x).exp())));
    engine.register_fn("sigmoid", |x: f64| 1.0 / (1.0 + (-x).exp()));
    // Python's round: halves to even.
    engine.register_fn("round", |a: Col| a.map(f64::round_ties_even));
    engine.register_fn("clip", |a: Col, lo: Dynamic, hi: Dynamic| -> RResult<Col> {
        let (lo, hi) = (num(&lo)?, num(&hi)?);
        Ok(a.map(|x| x.clamp(lo, hi)))
    });
    engine.register_fn("mean", |a: Col| {
        a.data.iter().sum::<f64>() / a.len().max(1) as f64
    });
    engine.register_fn("sum", |a: Col| a.data.iter().sum::<f64>());
    engine.register_fn("len", |a: &mut Col| a.len() as INT);
    engine.register_fn("mean_over", |a: Col, axis: &str| -> RResult<Col> {
        Ok(a.mean_over(axis)?)
    });
    engine.register_fn("rank_desc", |a: Col| a.rank_desc());
    engine.register_fn("sum_over", |a: Col, axis: &str| -> RResult<Col> {
        let n = a.axes.iter().find(|x| x.0 == axis).map_or(1, |x| x.1) as f64;
        Ok(a.mean_over(axis)?.map(|x| x * n))
    });
    // c over [A, B], idx over [C] holding indices into B: out[a, c] = c[a, idx[c]]
    engine.register_fn("take_along", |c: Col, idx: Col| -> RResult<Col> {
        if c.axes.len() != 2 || idx.axes.len() != 1 {
            return Err("take_along: needs a Col over two axes and an index Col over one".into());
        }
        let (na, nb) = (c.axes[0].1, c.axes[1].1);
        let ix = idx
            .data
            .iter()
            .map(|&x| {
                if x >= 0.0 && (x as usize) < nb {
                    Ok(x as usize)
                } else {
                    Err(format!(
                        "take_along: index {x} out of range for axis {}",
                        c.axes[1].0
                    ))
                }
            })
            .collect::<Result<Vec<_>, String>>()?;
        let mut data = Vec::with_capacity(na * ix.len());
        for a in 0..na {
            data.extend(ix.iter().map(|&b| c.data[a * nb + b]));
        }
        Ok(Col {
            axes: vec![c.axes[0].clone(), idx.axes[0].clone()],
            data,
            mask: None,
        })
    });
    // a over [A, K], b over [B, K]: out[a, b] = sum_k a[a, k] b[b, k]
    engine.register_fn("inner", |a: Col, b: Col| -> RResult<Col> {
        if a.axes.len() != 2 || b.axes.len() != 2 || a.axes[1] != b.axes[1] {
            return Err(format!(
                "inner: needs Cols over [A, K] and [B, K] with the same last axis, got {:?} and {:?}",
                a.axes, b.axes
            )
            .into());
        }
        let (na, nb, k) = (a.axes[0].1, b.axes[0].1, a.axes[1].1);
        let mut data = Vec::with_capacity(na * nb);
        for x in a.data.chunks(k.max(1)).take(na) {
            for y in b.data.chunks(k.max(1)).take(nb) {
                data.push(x.iter().zip(y).map(|(p, q)| p * q).sum());
            }
        }
        Ok(Col {
            axes: vec![a.axes[0].clone(), b.axes[0].clone()],
            data,
            mask: None,
        })
    });
    // c over [A, K]: one "x1 x2 .. xK" string per unit of A (a dense
    // float_seq cell of an atomic item file)
    engine.register_fn("vectors", |c: Col| -> RResult<Array> {
        if c.axes.len() != 2 {
            return Err("vectors: needs a Col over two axes".into());
        }
        let k = c.axes[1].1.max(1);
        Ok(c.data
            .chunks(k)
            .map(|r| {
                let cells: Vec<String> = r.iter().map(|x| format!("{x:.5}")).collect();
                Dynamic::from(cells.join(" "))
            })
            .collect())
    });
    engine.register_fn("row", |c: &mut Col, i: INT| -> RResult<Array> {
        if c.axes.len() != 2 {
            return Err("row: needs a Col over two axes".into());
        }
        let i = index(i, "row")?;
        let n = c.axes[1].1;
        if i >= c.axes[0].1 {
            return Err(format!("row {i} out of range for axis {}", c.axes[0].0).into());
        }
        Ok(c.data[i * n..(i + 1) * n]
            .iter()
            .map(|&x| Dynamic::from_float(x))
            .collect())
    });
    engine.register_fn("where", |c: Col, a: Col, b: Col| -> RResult<Col> {
        let ab = a.zip(&b, |x, _| x)?;
        let ba = b.zip(&a, |x, _| x)?;
        let mut out = c.zip(&ab, |c, x| if c != 0.0 { x } else { f64::NAN })?;
        let alt = c.zip(&ba, |c, y| if c != 0.0 { f64::NAN } else { y })?;
        for (o, y) in out.data.iter_mut().zip(alt.data) {
            if o.is_nan() {
                *o = y;
            }
        }
        Ok(out)
    });
    engine.register_fn("fill", |shape: Dynamic, v: Dynamic| -> RResult<Col> {
        Ok(Col::filled(axes_of(&shape)?, num(&v)?))
    });
    engine.register_fn("col", |shape: Dynamic, values: Array| -> RResult<Col> {
        let axes = axes_of(&shape)?;
        let data = values.iter().map(num).collect::<Result<Vec<_>, _>>()?;
        if data.len() != n_units(&axes) {
            return Err(format!(
                "col: {} values for {} units of {}",
                data.len(),
                n_units(&axes),
                axes_str(&axes)
            )
            .into());
        }
        Ok(Col {
            axes,
            data,
            mask: None,
        })
    });
    engine.register_fn("to_array", |a: Col| -> Array {
        a.data.into_iter().map(Dynamic::from_float).collect()
    });
    engine.register_fn("at", |a: &mut Col, i: INT| -> RResult<f64> {
        Ok(a.at(&[index(i, "at")?])?)
    });
    engine.register_fn("at", |a: &mut Col, i: INT, j: INT| -> RResult<f64> {
        Ok(a.at(&[index(i, "at")?, index(j, "at")?])?)
    });
    engine.register_fn("put", |a: &mut Col, i: INT, v: Dynamic| -> RResult<()> {
        let k = super::value::flat_index(&a.axes, &[index(i, "put")?])?;
        a.data[k] = num(&v)?;
        Ok(())
    });
    engine.register_fn(
        "put",
        |a: &mut Col, i: INT, j: INT, v: Dynamic| -> RResult<()> {
            let k = super::value::flat_index(&a.axes, &[index(i, "put")?, index(j, "put")?])?;
            a.data[k] = num(&v)?;
            Ok(())
        },
    );
    engine.register_fn("observed", |a: &mut Col, i: INT, j: INT| -> RResult<bool> {
        let k = super::value::flat_index(&a.axes, &[index(i, "observed")?, index(j, "observed")?])?;
        Ok(a.mask.as_ref().is_none_or(|m| m[k]))
    });
}

fn register_sets(engine: &mut Engine, state: &Shared) {
    engine.register_fn("sets", |shape: Dynamic, lists: Array| -> RResult<Sets> {
        let axes = axes_of(&shape)?;
        let lists = lists
            .into_iter()
            .map(|l| {
                l.flatten()
                    .into_array()
                    .map_err(|t| format!("sets: each unit is an array of ints, got {t}"))?
                    .into_iter()
                    .map(|x| {
                        x.as_int()
                            .map_err(|t| format!("sets: elements are ints, got {t}"))
                    })
                    .collect::<Result<Vec<i64>, String>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Sets::from_lists(axes, &lists)?)
    });
    engine.register_fn("intersect", |a: Sets, b: Sets| -> RResult<Sets> {
        Ok(Sets::intersect(&a, &b)?)
    });
    engine.register_fn("size", |a: Sets| a.sizes());
    engine.register_fn("len", |a: &mut Sets| a.len() as INT);
    engine.register_fn("get", |a: &mut Sets, i: INT| -> RResult<Array> {
        let k = super::value::flat_index(&a.axes, &[index(i, "get")?])?;
        Ok(a.unit(k).iter().map(|&x| Dynamic::from_int(x)).collect())
    });
    engine.register_fn("get", |a: &mut Sets, i: INT, j: INT| -> RResult<Array> {
        let k = super::value::flat_index(&a.axes, &[index(i, "get")?, index(j, "get")?])?;
        Ok(a.unit(k).iter().map(|&x| Dynamic::from_int(x)).collect())
    });
    let s = state.clone();
    engine.register_fn("keep_first_then", move |a: Sets, p: f64| -> Sets {
        let mut st = lock(&s);
        let mask = a.mask.clone();
        let (mut kept, gone) = a.split_by(|k, pos| {
            let observed = mask.as_ref().is_none_or(|m| m[k]);
            pos == 0 || !observed || st.rng.random::<f64>() < p
        });
        kept.dropped = Some(Box::new(gone));
        kept.mask = mask;
        kept
    });
}

fn register_tables(engine: &mut Engine, state: &Shared) {
    engine.register_fn("table", Table::default);
    engine.register_fn(
        "add",
        |t: &mut Table, name: &str, values: Dynamic| -> RResult<()> {
            let c = tcol_of(&values, Some(t.n_rows()))?;
            Ok(t.push(name, c)?)
        },
    );
    engine.register_fn("len", |t: &mut Table| t.n_rows() as INT);
    engine.register_fn("column", |t: &mut Table, name: &str| -> RResult<Array> {
        Ok(tcol_to_array(t.get(name)?))
    });
    engine.register_fn("take", |t: &mut Table, rows: Array| -> RResult<Table> {
        let rows = rows
            .iter()
            .map(|r| {
                let i = index(
                    r.as_int().map_err(|_| "take: rows are ints".to_string())?,
                    "take",
                )?;
                if i >= t.n_rows() {
                    return Err(format!("take: row {i} out of {}", t.n_rows()));
                }
                Ok(i)
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(t.take(&rows))
    });
    engine.register_fn("head", |t: &mut Table, n: INT| -> Table {
        let n = (n.max(0) as usize).min(t.n_rows());
        t.take(&(0..n).collect::<Vec<_>>())
    });
    engine.register_fn("concat", |a: Table, b: Table| -> RResult<Table> {
        if a.names != b.names {
            return Err(format!("concat: columns differ ({:?} vs {:?})", a.names, b.names).into());
        }
        let mut out = Table::default();
        for (i, name) in a.names.iter().enumerate() {
            let c = match (&a.cols[i], &b.cols[i]) {
                (TCol::Int(x), TCol::Int(y)) => TCol::Int(x.iter().chain(y).copied().collect()),
                (TCol::Str(x), TCol::Str(y)) => TCol::Str(x.iter().chain(y).cloned().collect()),
                (x, y) => TCol::Float(x.as_f64()?.into_iter().chain(y.as_f64()?).collect()),
            };
            out.push(name, c)?;
        }
        Ok(out)
    });
    engine.register_fn(
        "group_sum",
        |t: &mut Table, key: &str, val: &str| -> RResult<Table> {
            let keys = t.get(key)?.clone();
            let vals = t.get(val)?.as_f64()?;
            let TCol::Int(keys) = keys else {
                return Err(format!("group_sum: key column '{key}' must hold ints").into());
            };
            let mut pos: HashMap<i64, usize> = HashMap::new();
            let (mut ks, mut sums) = (Vec::new(), Vec::new());
            for (k, v) in keys.into_iter().zip(vals) {
                let i = *pos.entry(k).or_insert_with(|| {
                    ks.push(k);
                    sums.push(0.0);
                    ks.len() - 1
                });
                sums[i] += v;
            }
            let mut out = Table::default();
            out.push(key, TCol::Int(ks))?;
            out.push(val, tidy(sums))?;
            Ok(out)
        },
    );
    engine.register_fn("sort_desc", |t: &mut Table, col: &str| -> RResult<Table> {
        let v = t.get(col)?.as_f64()?;
        let mut order: Vec<usize> = (0..v.len()).collect();
        order.sort_by(|&a, &b| v[b].total_cmp(&v[a]));
        Ok(t.take(&order))
    });
    engine.register_fn(
        "group_lists",
        |t: &mut Table, key: &str, val: &str| -> RResult<Map> {
            let (TCol::Int(keys), TCol::Int(vals)) = (t.get(key)?, t.get(val)?) else {
                return Err("group_lists: both columns must hold ints".into());
            };
            let mut m = Map::new();
            for (k, v) in keys.iter().zip(vals) {
                let e = m
                    .entry(k.to_string().into())
                    .or_insert_with(|| Dynamic::from_array(Array::new()));
                if let Some(mut a) = e.write_lock::<Array>() {
                    a.push(Dynamic::from_int(*v));
                }
            }
            Ok(m)
        },
    );
    engine.register_fn("rows", |v: Dynamic, names: Array| -> RResult<Table> {
        Ok(rows_of(&v, names, false)?)
    });
    engine.register_fn(
        "dropped_rows",
        |v: Dynamic, names: Array| -> RResult<Table> { Ok(rows_of(&v, names, true)?) },
    );
    engine.register_fn("lists", |s: Sets, names: Array| -> RResult<Table> {
        if s.axes.len() != 1 {
            return Err("lists: needs sets over one axis".into());
        }
        let names = names_of(names, 2, "lists")?;
        let mut t = Table::default();
        t.push(&names[0], TCol::Int((0..s.len() as i64).collect()))?;
        let cells = (0..s.len())
            .map(|k| {
                s.unit(k)
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        t.push(&names[1], TCol::Str(cells))?;
        Ok(t)
    });
    // key sets
    engine.register_fn("keyset", KeySet::default);
    engine.register_fn("add", |k: &mut KeySet, a: INT| {
        k.0.insert((a, 0));
    });
    engine.register_fn("add", |k: &mut KeySet, a: INT, b: INT| {
        k.0.insert((a, b));
    });
    engine.register_fn("contains", |k: &mut KeySet, a: INT| k.0.contains(&(a, 0)));
    engine.register_fn("contains", |k: &mut KeySet, a: INT, b: INT| {
        k.0.contains(&(a, b))
    });
    engine.register_fn("len", |k: &mut KeySet| k.0.len() as INT);
    // files
    let s = state.clone();
    engine.register_fn("read_csv", move |path: &str| -> RResult<Table> {
        let p = lock(&s).read_path(path)?;
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(Table::from_csv(&text).map_err(|e| format!("{}: {e}", p.display()))?)
    });
    let s = state.clone();
    engine.register_fn("write_csv", move |path: &str, t: Table| -> RResult<()> {
        let mut st = lock(&s);
        let (full, shown) = st.write_path(path)?;
        super::io::write_text(&full, &t.to_csv())?;
        st.written.push((shown, t.n_rows()));
        Ok(())
    });
    let s = state.clone();
    engine.register_fn("write_tsv", move |path: &str, t: Table| -> RResult<()> {
        let mut st = lock(&s);
        let (full, shown) = st.write_path(path)?;
        let text = t
            .to_tsv()
            .map_err(|e| format!("write_tsv(\"{path}\"): {e}"))?;
        super::io::write_text(&full, &text)?;
        st.written.push((shown, t.n_rows()));
        Ok(())
    });
    let s = state.clone();
    engine.register_fn(
        "write_atomic",
        move |name: &str, inter: Table| -> RResult<()> {
            write_atomic_tables(&s, name, inter, None)
        },
    );
    let s = state.clone();
    engine.register_fn(
        "write_atomic",
        move |name: &str, inter: Table, items: Table| -> RResult<()> {
            write_atomic_tables(&s, name, inter, Some(items))
        },
    );
}

fn write_atomic_tables(s: &Shared, name: &str, inter: Table, items: Option<Table>) -> RResult<()> {
    let mut st = lock(s);
    let dir = st
        .write_root
        .clone()
        .ok_or("files can be written only inside outputs(|v| ..) or truth(|v| ..)")?;
    let shown = dir.strip_prefix(&st.out).unwrap_or(&dir).to_path_buf();
    let ds = super::io::to_dataset(name, &inter, items.as_ref())?;
    crate::atomic::write_atomic(&ds, &dir, name).map_err(|e| e.to_string())?;
    st.written
        .push((shown.join(format!("{name}.inter")), inter.n_rows()));
    if let Some(it) = &items {
        st.written
            .push((shown.join(format!("{name}.item")), it.n_rows()));
    }
    Ok(())
}
