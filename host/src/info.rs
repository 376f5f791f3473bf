//! `host data info`: a data set's statistics (sizes, density, each part
//! with its label balance), then the data set table of every seed paper
//! whose statistics the data supports, in the paper's layout:
//!
//! - HCR, Table 1 (#Users, #Items, #Clicks, #Likes): with a like column
//!   (the `--label` column, else a float column `like`, `liked` or
//!   `is_like`) or ratings (likes at or above `positive_threshold`); clicks
//!   are every interaction, or the rows of a `click` column at 1 when there
//!   is one (likes are then counted among the clicks).
//! - DecRS, Table 2 (#Users, #Items, #Interactions, #Features, #Group):
//!   with an item group field (role `group`, else a token field named like
//!   `genre`, `class`, `category`, `tags`), plus groups per item.
//! - CP2Rec, Table 2 (instances per part, user / item attributes,
//!   contextual and confounding-proxy features): with a proxy (role
//!   `proxy` or `proxy_*`), position or propensity field, plus the distinct
//!   positions and the propensity range. Attributes are the user / item
//!   fields, contextual features the interaction fields other than ids,
//!   outcomes (rating, label, click, like), time and propensity; proxies
//!   are counted there too, and once more, by name, as proxies.
//! - IV4Rec+, Table 1 (User, Item, Query, Interaction): with a query field
//!   (role `query` or named `query`), plus the search interactions (rows
//!   whose query is not empty).
//! - CTAR, Table 4 (records per file) for the CTAR release.
//!
//! Fields are found by role first and by name only where no field has the
//! role, so atomic files without role options are covered too.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;

use causalrec_datasets::{self as ds, Column, Dataset, FieldKind, FieldMeta, Role, PAD};

use crate::data::{label_column, resolve_source, source_format, DataConfig};

/// Everything `host data info` prints for a loaded data set: [`describe`]
/// and, for the CTAR release (reader `ctar`), its Table 4.
pub fn data_info(ds: &Dataset, cfg: &DataConfig, repo_root: &Path) -> Result<String, String> {
    let mut s = describe(ds, cfg.label.as_deref(), cfg.positive_threshold)?;
    if source_format(cfg) == "ctar" {
        let (dir, _) = resolve_source(&cfg.source, repo_root)?;
        let stats = ds::ctar_file_stats(&dir).map_err(|e| e.to_string())?;
        let _ = write!(
            s,
            "\nCTAR, Table 4 (the files of {}):\n{}",
            dir.display(),
            ds::ctar_table4(&stats)
        );
    }
    Ok(s)
}

/// A data set's statistics as a paper's data table: sizes and density,
/// then each part (rows, users, items and, with a `label` column, the
/// number and share of positive labels, label >= 0.5), then the seed
/// papers' tables the data supports (see the module documentation);
/// `like_rating` is the rating at or above which an interaction is a like
/// when there is no like column.
pub fn describe(
    ds: &Dataset,
    label: Option<&str>,
    like_rating: Option<f32>,
) -> Result<String, String> {
    let mut s = format!("{}\n{}\n", ds::DatasetStats::HEADER, ds.stats());
    let labels = label.map(|l| label_column(ds, l)).transpose()?;
    let all: Vec<usize> = (0..ds.n_inter()).collect();
    let mut parts: Vec<(&str, &[usize])> = vec![("(all)", &all)];
    parts.extend(ds.parts.iter().map(|(k, v)| (k.as_str(), v.as_slice())));
    s.push_str("\n| part | rows | users | items |");
    if labels.is_some() {
        s.push_str(" positives | positive share |");
    }
    s.push_str(if labels.is_some() {
        "\n|---|---:|---:|---:|---:|---:|\n"
    } else {
        "\n|---|---:|---:|---:|\n"
    });
    let (u, i) = (ds.user_col(), ds.item_col());
    for (name, rows) in parts {
        let users: HashSet<u32> = rows.iter().map(|&r| u[r]).collect();
        let items: HashSet<u32> = rows.iter().map(|&r| i[r]).collect();
        let _ = write!(
            s,
            "| {name} | {} | {} | {} |",
            rows.len(),
            users.len(),
            items.len()
        );
        if let Some(y) = &labels {
            let pos = rows.iter().filter(|&&r| y[r] >= 0.5).count();
            let _ = write!(s, " {pos} | {:.4} |", ratio(pos, rows.len()));
        }
        s.push('\n');
    }
    let fields = Fields::of(ds);
    let like = match (label, &labels) {
        (Some(l), Some(v)) if !CLICK_NAMES.contains(&l) => Some((l, v.as_slice())),
        _ => None,
    };
    for table in [
        hcr(ds, &fields, like, like_rating),
        decrs(ds, &fields),
        cp2rec(ds, &fields),
        iv4rec(ds, &fields),
    ]
    .into_iter()
    .flatten()
    {
        s.push('\n');
        s.push_str(&table);
    }
    Ok(s)
}

/// `a / b`, 0 when `b` is 0.
fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Which table a field is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Inter,
    User,
    Item,
}

impl Side {
    fn as_str(self) -> &'static str {
        match self {
            Side::Inter => "interaction",
            Side::User => "user",
            Side::Item => "item",
        }
    }
}

/// A field of the data set with its table and column.
#[derive(Clone, Copy)]
struct Field<'a> {
    side: Side,
    meta: &'a FieldMeta,
    col: &'a Column,
}

impl Field<'_> {
    /// `item field \`genre\``.
    fn named(&self) -> String {
        format!("{} field `{}`", self.side.as_str(), self.meta.name)
    }

    /// The tokens of `row` without padding; empty for float fields.
    fn tokens(&self, row: usize) -> impl Iterator<Item = u32> + '_ {
        let pad = self.meta.vocab.first().map(String::as_str) == Some(PAD);
        self.col
            .row_tokens(row)
            .iter()
            .copied()
            .filter(move |&t| !(pad && t == 0))
    }

    /// The floats of a float field (`None` for other kinds).
    fn floats(&self) -> Option<Vec<f64>> {
        match self.col {
            Column::Float(v) => Some(v.iter().map(|&x| x as f64).collect()),
            Column::Float64(v) => Some(v.clone()),
            _ => None,
        }
    }

    /// The number of distinct values: token ids other than padding (over
    /// every row of a sequence field), or float values.
    fn distinct(&self) -> usize {
        match self.col {
            Column::Token(_) | Column::TokenSeq { .. } => (0..self.col.len())
                .flat_map(|r| self.tokens(r))
                .collect::<HashSet<u32>>()
                .len(),
            Column::Float(v) | Column::FloatSeq { values: v, .. } => {
                v.iter().map(|x| x.to_bits()).collect::<HashSet<_>>().len()
            }
            Column::Float64(v) => v.iter().map(|x| x.to_bits()).collect::<HashSet<_>>().len(),
        }
    }
}

/// Names that mark a click column (a label that is not a like).
const CLICK_NAMES: [&str; 3] = ["click", "clicked", "is_click"];

/// Names that mark a like column (HCR's like after a click).
const LIKE_NAMES: [&str; 3] = ["like", "liked", "is_like"];

/// The fields of a data set, searched by role, then by name.
struct Fields<'a>(Vec<Field<'a>>);

impl<'a> Fields<'a> {
    fn of(ds: &'a Dataset) -> Fields<'a> {
        let tables = [
            (Side::Inter, Some(&ds.inter)),
            (Side::User, ds.users.as_ref()),
            (Side::Item, ds.items.as_ref()),
        ];
        let mut out = Vec::new();
        for (side, t) in tables {
            if let Some(t) = t {
                out.extend(
                    t.fields
                        .iter()
                        .zip(&t.columns)
                        .filter(|(m, _)| !matches!(m.role, Role::User | Role::Item))
                        .map(|(meta, col)| Field { side, meta, col }),
                );
            }
        }
        Fields(out)
    }

    /// The fields on `sides` with `role`, or, if none has it, those whose
    /// name `named` accepts.
    fn find(&self, sides: &[Side], role: Role, named: fn(&str) -> bool) -> Vec<Field<'a>> {
        let on = |f: &&Field<'a>| sides.contains(&f.side);
        let by_role: Vec<Field<'a>> = self
            .0
            .iter()
            .filter(on)
            .filter(|f| f.meta.role == role)
            .copied()
            .collect();
        if !by_role.is_empty() {
            return by_role;
        }
        self.0
            .iter()
            .filter(on)
            .filter(|f| named(&f.meta.name.to_ascii_lowercase()))
            .copied()
            .collect()
    }

    /// The first float interaction field named like `names`.
    fn float_named(&self, names: &[&str]) -> Option<(Field<'a>, Vec<f64>)> {
        self.0
            .iter()
            .filter(|f| f.side == Side::Inter && names.contains(&f.meta.name.as_str()))
            .find_map(|f| Some((*f, f.floats()?)))
    }
}

/// HCR, Table 1: clicks and likes; `label` is the `--label` column (not
/// a click column) with its values.
fn hcr(
    ds: &Dataset,
    fields: &Fields<'_>,
    label: Option<(&str, &[f32])>,
    like_rating: Option<f32>,
) -> Option<String> {
    let n = ds.n_inter();
    let click = fields.float_named(&CLICK_NAMES);
    let clicked = |r: usize| click.as_ref().is_none_or(|(_, v)| v[r] >= 0.5);
    let (likes, like_from): (Vec<bool>, String) = match (label, fields.float_named(&LIKE_NAMES)) {
        (Some((name, v)), _) => (
            v.iter().map(|&x| x >= 0.5).collect(),
            format!("`{name}` >= 0.5"),
        ),
        (_, Some((f, v))) => (
            v.iter().map(|&x| x >= 0.5).collect(),
            format!("`{}` >= 0.5", f.meta.name),
        ),
        _ => {
            let (r, t) = (ds.rating_col()?, like_rating?);
            (
                r.iter().map(|&x| x >= t).collect(),
                format!("rating >= {t}"),
            )
        }
    };
    let clicks = (0..n).filter(|&r| clicked(r)).count();
    let liked = (0..n).filter(|&r| clicked(r) && likes[r]).count();
    let click_from = match &click {
        Some((f, _)) => format!("`{}` >= 0.5, of {n} rows", f.meta.name),
        None => "every interaction".into(),
    };
    Some(format!(
        "HCR, Table 1 (clicks: {click_from}; likes: clicks with {like_from}):\n\
         | Dataset | #Users | #Items | #Clicks | #Likes | Likes/click |\n\
         |---|---:|---:|---:|---:|---:|\n\
         | {} | {} | {} | {clicks} | {liked} | {:.4} |\n",
        ds.name,
        ds.n_users,
        ds.n_items,
        ratio(liked, clicks)
    ))
}

/// DecRS, Table 2: item groups and the features an FM encodes.
fn decrs(ds: &Dataset, fields: &Fields<'_>) -> Option<String> {
    let group_names = |n: &str| {
        [
            "genre",
            "genres",
            "class",
            "category",
            "categories",
            "tag",
            "tags",
            "group",
        ]
        .contains(&n)
    };
    let g = fields
        .find(&[Side::Item], Role::Group, group_names)
        .into_iter()
        .find(|f| f.meta.kind.is_token())?;
    let per_item: Vec<usize> = (0..ds.n_items).map(|i| g.tokens(i).count()).collect();
    let memberships: usize = per_item.iter().sum();
    let without = per_item.iter().filter(|&&k| k == 0).count();
    // FM's one-hot features: every user and item id, every distinct value
    // of a user or item token field, one per float, `dim` per float_seq.
    let features: usize = ds.n_users
        + ds.n_items
        + fields
            .0
            .iter()
            .filter(|f| f.side != Side::Inter)
            .map(|f| match f.meta.kind {
                FieldKind::Token | FieldKind::TokenSeq => f.distinct(),
                FieldKind::Float => 1,
                FieldKind::FloatSeq => f.meta.dim(),
            })
            .sum::<usize>();
    Some(format!(
        "DecRS, Table 2 (#Group: the values of {}; #Features: user and item ids \
         and feature values):\n\
         | Dataset | #Users | #Items | #Interactions | #Features | #Group | Groups/item | Items without group |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n\
         | {} | {} | {} | {} | {features} | {} | {:.2} | {without} |\n",
        g.named(),
        ds.name,
        ds.n_users,
        ds.n_items,
        ds.n_inter(),
        g.distinct(),
        ratio(memberships, ds.n_items)
    ))
}

/// CP2Rec, Table 2: instances per part, attributes, contextual and proxy
/// features; positions and propensities.
fn cp2rec(ds: &Dataset, fields: &Fields<'_>) -> Option<String> {
    let all = [Side::Inter, Side::User, Side::Item];
    let proxies = fields.find(&all, Role::Proxy, |n| n.starts_with("proxy_"));
    let positions = fields.find(&[Side::Inter], Role::Position, |n| {
        n == "position" || n == "pos"
    });
    let propensities = fields
        .find(&[Side::Inter], Role::Propensity, |n| {
            ["propensity", "propensity_score", "pscore"].contains(&n)
        })
        .into_iter()
        .filter_map(|f| Some((f, f.floats()?)))
        .collect::<Vec<_>>();
    if proxies.is_empty() && positions.is_empty() && propensities.is_empty() {
        return None;
    }
    let part = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| ds.parts.get(*n))
            .map_or("-".to_string(), |rows| rows.len().to_string())
    };
    let count = |side: Side| fields.0.iter().filter(|f| f.side == side).count();
    let outcome = |f: &Field<'_>| {
        let n = f.meta.name.as_str();
        matches!(
            f.meta.role,
            Role::Rating | Role::Label | Role::Timestamp | Role::Propensity
        ) || CLICK_NAMES.contains(&n)
            || LIKE_NAMES.contains(&n)
            || propensities.iter().any(|(p, _)| p.meta.name == n)
    };
    let context = fields
        .0
        .iter()
        .filter(|f| f.side == Side::Inter && !outcome(f))
        .count();
    let mut s = format!(
        "CP2Rec, Table 2:\n| Statistic | {} |\n|---|---:|\n\
         | #User | {} |\n| #Item | {} |\n\
         | #Training Instance | {} |\n| #Validation Instance | {} |\n| #Test Instance | {} |\n\
         | #User Attribute | {} |\n| #Item Attribute | {} |\n\
         | #Contextual Feature | {context} |\n| #Confounding Proxy Feature | {} |\n",
        ds.name,
        ds.n_users,
        ds.n_items,
        part(&["train"]),
        part(&["valid", "validation"]),
        part(&["test"]),
        count(Side::User),
        count(Side::Item),
        // a proxy copied into the interactions is still one feature
        proxies
            .iter()
            .map(|f| f.meta.name.as_str())
            .collect::<HashSet<_>>()
            .len(),
    );
    for p in &positions {
        let _ = writeln!(s, "| #Position (`{}`) | {} |", p.meta.name, p.distinct());
    }
    for (p, v) in &propensities {
        let (lo, hi) = v
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                (lo.min(x), hi.max(x))
            });
        let _ = writeln!(s, "| Propensity (`{}`) | {lo:.6} to {hi:.6} |", p.meta.name);
    }
    Some(s)
}

/// IV4Rec+, Table 1: users, items, queries and interactions.
fn iv4rec(ds: &Dataset, fields: &Fields<'_>) -> Option<String> {
    let all = [Side::Inter, Side::User, Side::Item];
    let q = *fields
        .find(&all, Role::Query, |n| {
            n == "query" || n == "queries" || n == "search_query"
        })
        .first()?;
    let (u, i) = (ds.user_col(), ds.item_col());
    let row_of = |r: usize| match q.side {
        Side::Inter => r,
        Side::User => u[r] as usize,
        Side::Item => i[r] as usize,
    };
    // A token query is its token list; a float query (a relevance score)
    // is present on every row and names no query.
    let (queries, search) = if q.meta.kind.is_token() {
        let distinct: HashSet<Vec<u32>> = (0..q.col.len())
            .map(|r| q.tokens(r).collect::<Vec<u32>>())
            .filter(|t| !t.is_empty())
            .collect();
        let search = (0..ds.n_inter())
            .filter(|&r| q.tokens(row_of(r)).next().is_some())
            .count();
        (distinct.len().to_string(), search)
    } else {
        ("-".to_string(), ds.n_inter())
    };
    Some(format!(
        "IV4Rec+, Table 1 (queries: {}; search interactions: interactions with a query):\n\
         | Dataset | User | Item | Query | Interaction | Search interactions |\n\
         |---|---:|---:|---:|---:|---:|\n\
         | {} | {} | {} | {queries} | {} | {search} |\n",
        q.named(),
        ds.name,
        ds.n_users,
        ds.n_items,
        ds.n_inter()
    ))
}
