//! The causal simulator: generates data sets from scenario scripts that
//! describe m-graphs (CTAR, section 4) in Rhai.
//!
//! A scenario (`scripts/scenarios/*.rhai`) declares parameters, entities
//! and nodes of five kinds (observed `V_o`, partial `V_m`, latent `N`,
//! indicator `R`, proxy `V*`), each with a vectorised structural equation
//! over whole node arrays, and two closures that write the observed data and
//! the truth. [`generate`] runs the script, validates the graph (unknown
//! parents, cycles, proxies without indicator are errors naming the file,
//! line and node), classifies each missingness mechanism as MCAR / MAR /
//! MNAR ([`graph`]), evaluates the nodes in topological order with one
//! seeded ChaCha RNG, and writes `out/` (observed data), `out/truth/` and
//! `out/scenario.ron`. See `scripts/scenarios/README.md` for the script API.

pub mod api;
pub mod graph;
pub mod io;
pub mod value;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rhai::{Dynamic, Engine, EvalAltResult, FnPtr, Map, AST};

use crate::error::{DataError, Result};
use api::{NodeEq, ParamValue, Shared, State};
pub use graph::{Kind, MechanismInfo, Missingness};
use value::{axes_str, Col, Sets};

/// The seed used when the caller gives none.
pub const DEFAULT_SEED: u64 = 42;

/// One node of a generated scenario, for the report.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    /// The node name.
    pub name: String,
    /// Its kind.
    pub kind: Kind,
    /// Its parents.
    pub parents: Vec<String>,
    /// Its axes, e.g. `[user:1000 x movie:1000]`.
    pub shape: String,
}

/// What [`generate`] did: printable as a human summary (`Display`).
#[derive(Debug, Clone, PartialEq)]
pub struct GenReport {
    /// The scenario file.
    pub scenario: PathBuf,
    /// The output directory.
    pub out: PathBuf,
    /// The seed used.
    pub seed: u64,
    /// The resolved parameters, in declaration order.
    pub params: Vec<(String, String)>,
    /// Entities and their sizes.
    pub entities: Vec<(String, usize)>,
    /// The nodes, in evaluation order.
    pub nodes: Vec<NodeInfo>,
    /// The missingness mechanisms and their classes.
    pub mechanisms: Vec<MechanismInfo>,
    /// Files written (relative to `out`) and their row counts.
    pub tables: Vec<(PathBuf, usize)>,
    /// Wall-clock seconds of the whole generation.
    pub seconds: f64,
}

impl GenReport {
    /// The rows written to `rel` (a path relative to the output directory).
    pub fn rows(&self, rel: &str) -> Option<usize> {
        self.tables
            .iter()
            .find(|(p, _)| p == Path::new(rel))
            .map(|(_, n)| *n)
    }
}

impl fmt::Display for GenReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: usize = self.tables.iter().map(|(_, n)| n).sum();
        writeln!(
            f,
            "scenario {} (seed {}) -> {} in {:.2} s: {rows} rows written, {:.0} rows/s",
            self.scenario.display(),
            self.seed,
            self.out.display(),
            self.seconds,
            rows as f64 / self.seconds.max(1e-9)
        )?;
        writeln!(f, "parameters:")?;
        for (k, v) in &self.params {
            writeln!(f, "  {k} = {v}")?;
        }
        let ents: Vec<String> = self
            .entities
            .iter()
            .map(|(n, s)| format!("{n}={s}"))
            .collect();
        writeln!(f, "entities: {}", ents.join(", "))?;
        writeln!(f, "nodes:")?;
        for n in &self.nodes {
            writeln!(
                f,
                "  {:<16} {:<9} {:<28} <- {}",
                n.name,
                n.kind.as_str(),
                n.shape,
                if n.parents.is_empty() {
                    "-".to_string()
                } else {
                    n.parents.join(", ")
                }
            )?;
        }
        writeln!(f, "missingness:")?;
        for m in &self.mechanisms {
            writeln!(
                f,
                "  {} on {}: {} ({})",
                m.indicator, m.of, m.class, m.reason
            )?;
        }
        writeln!(f, "written:")?;
        for (p, n) in &self.tables {
            writeln!(f, "  {:<28} {n} rows", p.display())?;
        }
        Ok(())
    }
}

fn scenario_err(file: &Path, line: Option<usize>, msg: impl Into<String>) -> DataError {
    DataError::Scenario {
        file: file.display().to_string(),
        line,
        msg: msg.into(),
    }
}

fn rhai_err(file: &Path, e: &EvalAltResult, context: &str) -> DataError {
    let line = e.position().line();
    let mut msg = e.to_string();
    // the position is reported as file:line already
    if let Some(i) = msg.rfind(" (line ") {
        msg.truncate(i);
    }
    scenario_err(file, line, format!("{context}{msg}"))
}

/// Calls a closure with one argument (or none, if it takes none).
fn call1(
    engine: &Engine,
    ast: &AST,
    f: &FnPtr,
    arg: Dynamic,
) -> std::result::Result<Dynamic, Box<EvalAltResult>> {
    match f.call::<Dynamic>(engine, ast, (arg,)) {
        Err(e)
            if matches!(*e, EvalAltResult::ErrorFunctionNotFound(..))
                && f.fn_name().starts_with("anon$") =>
        {
            f.call::<Dynamic>(engine, ast, ())
        }
        r => r,
    }
}

/// Generates the data of `scenario` into `out`.
///
/// `seed` drives the one RNG (default [`DEFAULT_SEED`]); `sets` overrides
/// parameters declared with `param` / `path_param` (an unknown key is an
/// error listing the valid ones). Writes the observed files under `out/`,
/// the truth under `out/truth/`, and `out/scenario.ron`. Errors name the
/// scenario file and, where known, the line.
pub fn generate(
    scenario: &Path,
    out: &Path,
    seed: Option<u64>,
    sets: &[(String, String)],
) -> Result<GenReport> {
    let t0 = Instant::now();
    let seed = seed.unwrap_or(DEFAULT_SEED);
    let text = std::fs::read_to_string(scenario).map_err(|e| DataError::Io {
        file: scenario.display().to_string(),
        source: e,
    })?;
    let dir = scenario.parent().unwrap_or(Path::new(".")).to_path_buf();
    let state: Shared = Arc::new(Mutex::new(State::new(seed, sets, out, &dir)));
    let engine = api::build_engine(&state);
    let ast = engine
        .compile(&text)
        .map_err(|e| scenario_err(scenario, e.position().line(), e.to_string()))?;
    engine
        .run_ast(&ast)
        .map_err(|e| rhai_err(scenario, &e, ""))?;

    let (nodes, eqs, ons, outputs, truth, params, entities) = {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        if !st.sets.is_empty() {
            let mut unknown: Vec<&String> = st.sets.keys().collect();
            unknown.sort();
            let valid: Vec<&str> = st.params.iter().map(|(n, _)| n.as_str()).collect();
            return Err(scenario_err(
                scenario,
                None,
                format!(
                    "unknown parameter(s) {}; valid: {}",
                    unknown
                        .iter()
                        .map(|s| format!("'{s}'"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    valid.join(", ")
                ),
            ));
        }
        (
            st.nodes.clone(),
            st.eqs.clone(),
            st.on.clone(),
            st.outputs.take(),
            st.truth.take(),
            st.params.clone(),
            st.entities.clone(),
        )
    };
    let order = graph::validate(&nodes).map_err(|e| scenario_err(scenario, e.line, e.msg))?;
    let mechanisms = graph::classify(&nodes);

    // Evaluate the nodes.
    let mut values = Map::new();
    let mut infos = Vec::new();
    for &i in &order {
        let n = &nodes[i];
        let at = |msg: String| scenario_err(scenario, n.line, format!("node '{}': {msg}", n.name));
        let value = match &eqs[i] {
            NodeEq::Fn(f) => {
                let mut parents = Map::new();
                for p in &n.parents {
                    parents.insert(p.as_str().into(), values[p.as_str()].clone());
                }
                call1(&engine, &ast, f, Dynamic::from_map(parents))
                    .map_err(|e| rhai_err(scenario, &e, &format!("node '{}': ", n.name)))?
            }
            NodeEq::Proxy { thin } => {
                let x = &values[n.of.as_deref().unwrap_or_default()];
                let r = &values[n.by.as_deref().unwrap_or_default()];
                let proxy = make_proxy(x, r).map_err(at)?;
                match thin {
                    None => proxy,
                    Some(f) => {
                        let thinned = call1(&engine, &ast, f, proxy).map_err(|e| {
                            rhai_err(scenario, &e, &format!("proxy '{}': thin: ", n.name))
                        })?;
                        if !thinned.is::<Sets>() {
                            return Err(at(
                                "thin must return the Sets it was given, thinned".into()
                            ));
                        }
                        thinned
                    }
                }
            }
        };
        let axes = if let Some(c) = value.clone().try_cast::<Col>() {
            c.axes
        } else if let Some(s) = value.clone().try_cast::<Sets>() {
            s.axes
        } else {
            return Err(at(format!(
                "the equation must return a Col or a Sets value, got {}",
                value.type_name()
            )));
        };
        if let Some(want) = &ons[i] {
            if *want != axes {
                return Err(at(format!(
                    "declared on {} but the equation returned {}",
                    axes_str(want),
                    axes_str(&axes)
                )));
            }
        }
        infos.push(NodeInfo {
            name: n.name.clone(),
            kind: n.kind,
            parents: n.parents.clone(),
            shape: axes_str(&axes),
        });
        values.insert(n.name.as_str().into(), value);
    }

    // Write.
    let all = Dynamic::from_map(values);
    for (f, root, what) in [
        (outputs, out.to_path_buf(), "outputs"),
        (truth, out.join("truth"), "truth"),
    ] {
        let Some(f) = f else {
            return Err(scenario_err(
                scenario,
                None,
                format!("the scenario declares no {what}(|v| ..) closure"),
            ));
        };
        state.lock().unwrap_or_else(|e| e.into_inner()).write_root = Some(root);
        let _ = call1(&engine, &ast, &f, all.clone())
            .map_err(|e| rhai_err(scenario, &e, &format!("{what}: ")))?;
    }
    let record = io::ScenarioRecord {
        scenario: scenario.display().to_string(),
        seed,
        params: params.clone(),
    };
    io::write_record(out, &record).map_err(|m| scenario_err(scenario, None, m))?;
    let written = state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .written
        .clone();
    Ok(GenReport {
        scenario: scenario.to_path_buf(),
        out: out.to_path_buf(),
        seed,
        params: params
            .iter()
            .map(|(k, v): &(String, ParamValue)| (k.clone(), v.to_string()))
            .collect(),
        entities: entities.iter().map(|e| (e.name.clone(), e.n)).collect(),
        nodes: infos,
        mechanisms,
        tables: written,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// `X* = X where R = 1`: `x` with the observation mask `r != 0`.
fn make_proxy(x: &Dynamic, r: &Dynamic) -> std::result::Result<Dynamic, String> {
    let r = r
        .clone()
        .try_cast::<Col>()
        .ok_or("the indicator must be a Col of 0/1")?;
    let mask: Vec<bool> = r.data.iter().map(|&v| v != 0.0).collect();
    if let Some(mut c) = x.clone().try_cast::<Col>() {
        if c.axes != r.axes {
            return Err(format!(
                "variable over {} but indicator over {}",
                axes_str(&c.axes),
                axes_str(&r.axes)
            ));
        }
        c.mask = Some(mask);
        return Ok(Dynamic::from(c));
    }
    let mut s = x
        .clone()
        .try_cast::<Sets>()
        .ok_or("the variable must be a Col or a Sets value")?;
    if s.axes != r.axes {
        return Err(format!(
            "variable over {} but indicator over {}",
            axes_str(&s.axes),
            axes_str(&r.axes)
        ));
    }
    s.mask = Some(mask);
    Ok(Dynamic::from(s))
}

#[cfg(test)]
mod tests;
