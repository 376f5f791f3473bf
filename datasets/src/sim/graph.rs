//! The m-graph of a scenario: node kinds, validation, evaluation order and
//! the classification of missingness mechanisms (CTAR, section 4).
//!
//! An m-graph partitions its nodes into fully observed `V_o`, partially
//! observed `V_m`, unobserved (latent) `N`, proxies `V*` and missingness
//! indicators `R`. Every proxy `X*` names its variable `X in V_m` and its
//! indicator `R_X`; `X* = X where R_X = 1`.
//!
//! Classification (a sufficient graph rule; CTAR section 4.2 defines the
//! classes by (conditional) independence):
//! - **MCAR** when no ancestor of `R_X` is in `V_o ∪ V_m ∪ N` (so
//!   `V_o ∪ V_m ∪ N ⊥ R_X` holds by d-separation);
//! - **MAR** when the ancestors of `R_X` in `V_o ∪ V_m ∪ N` all lie in
//!   `V_o`: every path from `V_m ∪ N` into `R_X` then enters through a
//!   fully observed parent chain, and conditioning on `V_o` blocks it. The
//!   rule assumes no `V_o` node is a common child of `R_X` and a `V_m`/`N`
//!   node (conditioning on such a collider would open a path); scenarios
//!   here do not have one;
//! - **MNAR** otherwise, e.g. when `R_X` depends on `X` itself or on a
//!   latent variable; a proxy whose reporting is thinned element by element
//!   (`thin`) depends on `X` and is MNAR as well.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

/// The kind of an m-graph node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Fully observed (`V_o`).
    Observed,
    /// Partially observed (`V_m`): has an indicator and a proxy.
    Partial,
    /// Unobserved (`N`).
    Latent,
    /// A missingness indicator (`R`).
    Indicator,
    /// A proxy `X*` (`V*`).
    Proxy,
}

impl Kind {
    /// The name used in scenarios and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Observed => "observed",
            Kind::Partial => "partial",
            Kind::Latent => "latent",
            Kind::Indicator => "indicator",
            Kind::Proxy => "proxy",
        }
    }
}

/// The class of a missingness mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missingness {
    /// Missing completely at random.
    Mcar,
    /// Missing at random (given the fully observed variables).
    Mar,
    /// Missing not at random.
    Mnar,
}

impl fmt::Display for Missingness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Missingness::Mcar => "MCAR",
            Missingness::Mar => "MAR",
            Missingness::Mnar => "MNAR",
        })
    }
}

/// The structure of one declared node (its equation lives elsewhere).
#[derive(Debug, Clone)]
pub struct NodeDecl {
    /// The node name.
    pub name: String,
    /// Its kind.
    pub kind: Kind,
    /// Its parents (for proxies: the variable and the indicator).
    pub parents: Vec<String>,
    /// For indicators and proxies: the partially observed variable.
    pub of: Option<String>,
    /// For proxies: the indicator.
    pub by: Option<String>,
    /// For proxies: whether reporting is thinned element by element.
    pub thinned: bool,
    /// The 1-based line of the declaration in the scenario file.
    pub line: Option<usize>,
}

/// The classification of one indicator.
#[derive(Debug, Clone, PartialEq)]
pub struct MechanismInfo {
    /// The indicator `R_X`.
    pub indicator: String,
    /// The variable `X` it masks.
    pub of: String,
    /// The class.
    pub class: Missingness,
    /// Why: the ancestors that decided it.
    pub reason: String,
}

/// A graph error: the message and the line of the node concerned.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphError {
    /// The 1-based declaration line of the offending node, if known.
    pub line: Option<usize>,
    /// What is wrong, naming the node.
    pub msg: String,
}

fn err(node: &NodeDecl, msg: String) -> GraphError {
    GraphError {
        line: node.line,
        msg,
    }
}

/// Checks the graph and returns the node indices in evaluation
/// (topological, declaration-stable) order.
///
/// Errors: a duplicate name, an unknown parent, an indicator or proxy whose
/// `of` is not a partially observed node, a proxy without an indicator, a
/// partially observed node without indicator or proxy, a cycle.
pub fn validate(nodes: &[NodeDecl]) -> Result<Vec<usize>, GraphError> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        if index.insert(&n.name, i).is_some() {
            return Err(err(n, format!("node '{}' is declared twice", n.name)));
        }
    }
    for n in nodes {
        for p in &n.parents {
            if !index.contains_key(p.as_str()) {
                return Err(err(n, format!("node '{}': unknown parent '{p}'", n.name)));
            }
        }
        let kind_of = |name: &str| index.get(name).map(|&i| nodes[i].kind);
        match n.kind {
            Kind::Indicator | Kind::Proxy => {
                let of = n.of.as_deref().unwrap_or("");
                if kind_of(of) != Some(Kind::Partial) {
                    return Err(err(
                        n,
                        format!(
                            "{} '{}': 'of' must name a partially observed node, got '{of}'",
                            n.kind.as_str(),
                            n.name
                        ),
                    ));
                }
                if n.kind == Kind::Proxy {
                    let by = n.by.as_deref().unwrap_or("");
                    let ok = index
                        .get(by)
                        .map(|&i| &nodes[i])
                        .is_some_and(|r| r.kind == Kind::Indicator && r.of.as_deref() == Some(of));
                    if !ok {
                        return Err(err(
                            n,
                            format!(
                                "proxy '{}' has no missingness indicator: 'by' must name an indicator of '{of}', got '{by}'",
                                n.name
                            ),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    for n in nodes.iter().filter(|n| n.kind == Kind::Partial) {
        let has_proxy = nodes
            .iter()
            .any(|p| p.kind == Kind::Proxy && p.of.as_deref() == Some(&n.name));
        if !has_proxy {
            return Err(err(
                n,
                format!(
                    "partially observed node '{}' has no proxy (declare an indicator and a proxy for it)",
                    n.name
                ),
            ));
        }
    }
    // Kahn's algorithm, always taking the earliest declared ready node.
    let mut indeg: Vec<usize> = nodes.iter().map(|n| n.parents.len()).collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        for p in &n.parents {
            children[index[p.as_str()]].push(i);
        }
    }
    let mut ready: BTreeSet<usize> = (0..nodes.len()).filter(|&i| indeg[i] == 0).collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &c in &children[i] {
            indeg[c] -= 1;
            if indeg[c] == 0 {
                ready.insert(c);
            }
        }
    }
    if order.len() < nodes.len() {
        let stuck: Vec<&str> = (0..nodes.len())
            .filter(|&i| indeg[i] > 0)
            .map(|i| nodes[i].name.as_str())
            .collect();
        let first = nodes
            .iter()
            .find(|n| n.name == stuck[0])
            .expect("stuck node exists");
        return Err(err(
            first,
            format!(
                "cycle through node '{}' (nodes on or after a cycle: {})",
                first.name,
                stuck.join(", ")
            ),
        ));
    }
    Ok(order)
}

/// The ancestors of node `i` (not including `i`).
fn ancestors(nodes: &[NodeDecl], i: usize) -> BTreeSet<usize> {
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let mut seen = BTreeSet::new();
    let mut stack = vec![i];
    while let Some(k) = stack.pop() {
        for p in &nodes[k].parents {
            let j = index[p.as_str()];
            if seen.insert(j) {
                stack.push(j);
            }
        }
    }
    seen
}

/// Classifies every indicator of a validated graph (see the module
/// documentation for the rule).
pub fn classify(nodes: &[NodeDecl]) -> Vec<MechanismInfo> {
    let mut out = Vec::new();
    for (i, r) in nodes.iter().enumerate() {
        if r.kind != Kind::Indicator {
            continue;
        }
        let of = r.of.clone().unwrap_or_default();
        let anc = ancestors(nodes, i);
        let of_kind = |kinds: &[Kind]| -> Vec<String> {
            anc.iter()
                .filter(|&&j| kinds.contains(&nodes[j].kind))
                .map(|&j| format!("{} ({})", nodes[j].name, nodes[j].kind.as_str()))
                .collect()
        };
        let unobserved = of_kind(&[Kind::Partial, Kind::Latent]);
        let observed = of_kind(&[Kind::Observed]);
        let thinned_by: Vec<&str> = nodes
            .iter()
            .filter(|p| p.kind == Kind::Proxy && p.by.as_deref() == Some(&r.name) && p.thinned)
            .map(|p| p.name.as_str())
            .collect();
        let (class, reason) = if !thinned_by.is_empty() {
            let mut why = format!(
                "proxy {} reports only part of each unit of '{of}' (depends on '{of}' itself)",
                thinned_by.join(", ")
            );
            if !unobserved.is_empty() {
                why.push_str(&format!("; ancestors {}", unobserved.join(", ")));
            }
            (Missingness::Mnar, why)
        } else if !unobserved.is_empty() {
            (
                Missingness::Mnar,
                format!("ancestors not fully observed: {}", unobserved.join(", ")),
            )
        } else if !observed.is_empty() {
            (
                Missingness::Mar,
                format!("ancestors all fully observed: {}", observed.join(", ")),
            )
        } else {
            (
                Missingness::Mcar,
                "no ancestors among observed, partially observed or latent nodes".to_string(),
            )
        };
        out.push(MechanismInfo {
            indicator: r.name.clone(),
            of,
            class,
            reason,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, kind: Kind, parents: &[&str], line: usize) -> NodeDecl {
        NodeDecl {
            name: name.into(),
            kind,
            parents: parents.iter().map(|s| s.to_string()).collect(),
            of: None,
            by: None,
            thinned: false,
            line: Some(line),
        }
    }

    /// CTAR's Figure 4 (without the test sets).
    fn ctar() -> Vec<NodeDecl> {
        let mut g = vec![
            node("pop", Kind::Observed, &[], 1),
            node("quality", Kind::Latent, &[], 2),
            node("tag_like", Kind::Partial, &[], 3),
            node("rating", Kind::Partial, &["quality", "tag_like"], 4),
            node("R_R", Kind::Indicator, &["pop"], 5),
            node("R_RCT", Kind::Indicator, &[], 6),
            node("R_O", Kind::Indicator, &["pop", "rating"], 7),
            node("rating_obs", Kind::Proxy, &["rating", "R_R"], 8),
            node("rct", Kind::Proxy, &["tag_like", "R_RCT"], 9),
            node("obs", Kind::Proxy, &["tag_like", "R_O"], 10),
        ];
        for (i, of, by) in [
            (4, "rating", None),
            (5, "tag_like", None),
            (6, "tag_like", None),
            (7, "rating", Some("R_R")),
            (8, "tag_like", Some("R_RCT")),
            (9, "tag_like", Some("R_O")),
        ] {
            g[i].of = Some(of.into());
            g[i].by = by.map(String::from);
        }
        g
    }

    #[test]
    fn ctar_mechanisms_classify_as_in_the_paper() {
        let g = ctar();
        let order = validate(&g).unwrap();
        assert_eq!(order.len(), g.len());
        let classes: Vec<(String, Missingness)> = classify(&g)
            .into_iter()
            .map(|m| (m.indicator, m.class))
            .collect();
        assert_eq!(
            classes,
            vec![
                ("R_R".to_string(), Missingness::Mar),
                ("R_RCT".to_string(), Missingness::Mcar),
                ("R_O".to_string(), Missingness::Mnar),
            ]
        );
    }

    #[test]
    fn errors_name_the_node_and_line() {
        let mut g = ctar();
        g[3].parents.push("nope".into());
        let e = validate(&g).unwrap_err();
        assert_eq!(e.line, Some(4));
        assert!(
            e.msg.contains("'rating'") && e.msg.contains("'nope'"),
            "{}",
            e.msg
        );

        let mut g = ctar();
        g[7].by = None;
        let e = validate(&g).unwrap_err();
        assert_eq!(e.line, Some(8));
        assert!(e
            .msg
            .contains("proxy 'rating_obs' has no missingness indicator"));

        let mut g = ctar();
        g[1].parents.push("rating".into());
        let e = validate(&g).unwrap_err();
        assert!(e.msg.contains("cycle through node 'quality'"), "{}", e.msg);
        assert_eq!(e.line, Some(2));
    }
}
