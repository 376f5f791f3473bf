//! The values a scenario computes with: whole node arrays over entity axes.
//!
//! A [`Col`] is a dense `f64` array over zero, one or two entity axes
//! (a scalar, one value per user, one value per user-item pair). Binary
//! operations broadcast: a `[movie]` column combined with a `[user, movie]`
//! column is repeated over users, which is how a structural equation such as
//! `R = Q + eps` reads when `Q` lives on movies and `R` on pairs.
//! A [`Sets`] holds one list of integers per unit (a movie's tags, the tags
//! a user likes). Either may carry an observation mask, set when the value
//! is a proxy `X* = X where R_X = 1`.
//!
//! Everything here is plain Rust; the Rhai bindings live in
//! [`super::api`].

use std::collections::HashSet;

/// One entity axis: its name and size.
pub type Axis = (String, usize);

/// A dense numeric array over entity axes (row-major, last axis fastest).
#[derive(Debug, Clone, PartialEq)]
pub struct Col {
    /// The axes, outermost first (at most two).
    pub axes: Vec<Axis>,
    /// The values, `product(axis sizes)` of them.
    pub data: Vec<f64>,
    /// For proxies: which units are observed.
    pub mask: Option<Vec<bool>>,
}

/// One list of integers per unit, CSR style.
#[derive(Debug, Clone, PartialEq)]
pub struct Sets {
    /// The axes, outermost first (at most two).
    pub axes: Vec<Axis>,
    /// Unit `i` holds `values[offsets[i]..offsets[i + 1]]`.
    pub offsets: Vec<usize>,
    /// The elements of all units.
    pub values: Vec<i64>,
    /// For proxies: which units are observed.
    pub mask: Option<Vec<bool>>,
    /// For thinned proxies: the elements of observed units that were not
    /// reported (same layout as `self`).
    pub dropped: Option<Box<Sets>>,
}

/// The number of units of a list of axes.
pub fn n_units(axes: &[Axis]) -> usize {
    axes.iter().map(|a| a.1).product()
}

/// Describes axes as `[user x movie]` for messages.
pub fn axes_str(axes: &[Axis]) -> String {
    let names: Vec<String> = axes.iter().map(|(n, s)| format!("{n}:{s}")).collect();
    format!("[{}]", names.join(" x "))
}

/// The axes of the result of combining `a` and `b`: the longer list when
/// the other is part of it, or the outer product of two different single
/// axes (`a` outer). Errors otherwise.
fn broadcast_plan(a: &[Axis], b: &[Axis]) -> Result<Vec<Axis>, String> {
    if a.len() == 1 && b.len() == 1 && a[0].0 != b[0].0 {
        // outer product: [user] with [movie] gives [user x movie]
        return Ok(vec![a[0].clone(), b[0].clone()]);
    }
    let (big, small) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    let sub = small.iter().all(|s| big.contains(s));
    if !sub {
        return Err(format!(
            "cannot combine {} with {}: axes must match or one be a part of the other",
            axes_str(a),
            axes_str(b)
        ));
    }
    Ok(big.to_vec())
}

/// For result unit `k` over `out` axes, the unit index over `sub` axes.
pub(crate) fn index_map(out: &[Axis], sub: &[Axis]) -> Vec<usize> {
    let n = n_units(out);
    if sub.len() == out.len() {
        return (0..n).collect();
    }
    if sub.is_empty() {
        return vec![0; n];
    }
    // out has two axes, sub one of them
    let (n0, n1) = (out[0].1, out[1].1);
    let first = sub[0] == out[0];
    let mut idx = Vec::with_capacity(n);
    for i in 0..n0 {
        for j in 0..n1 {
            idx.push(if first { i } else { j });
        }
    }
    idx
}

impl Col {
    /// A column of `value` over `axes`.
    pub fn filled(axes: Vec<Axis>, value: f64) -> Col {
        let n = n_units(&axes);
        Col {
            axes,
            data: vec![value; n],
            mask: None,
        }
    }

    /// A scalar (no axes).
    pub fn scalar(v: f64) -> Col {
        Col::filled(Vec::new(), v)
    }

    /// The number of units.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the column has no units.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Applies `f` to every value.
    pub fn map(&self, mut f: impl FnMut(f64) -> f64) -> Col {
        Col {
            axes: self.axes.clone(),
            data: self.data.iter().map(|&x| f(x)).collect(),
            mask: None,
        }
    }

    /// Combines two columns element-wise with broadcasting.
    pub fn zip(&self, other: &Col, f: impl Fn(f64, f64) -> f64) -> Result<Col, String> {
        if self.axes == other.axes {
            let data = self
                .data
                .iter()
                .zip(&other.data)
                .map(|(&a, &b)| f(a, b))
                .collect();
            return Ok(Col {
                axes: self.axes.clone(),
                data,
                mask: None,
            });
        }
        let axes = broadcast_plan(&self.axes, &other.axes)?;
        let ia = index_map(&axes, &self.axes);
        let ib = index_map(&axes, &other.axes);
        let data = ia
            .iter()
            .zip(&ib)
            .map(|(&i, &j)| f(self.data[i], other.data[j]))
            .collect();
        Ok(Col {
            axes,
            data,
            mask: None,
        })
    }

    /// The value at `idx` (one index per axis).
    pub fn at(&self, idx: &[usize]) -> Result<f64, String> {
        flat_index(&self.axes, idx).map(|k| self.data[k])
    }

    /// Reduces axis `name` by the mean, keeping the other axis.
    pub fn mean_over(&self, name: &str) -> Result<Col, String> {
        let pos = self
            .axes
            .iter()
            .position(|a| a.0 == name)
            .ok_or_else(|| format!("no axis '{name}' in {}", axes_str(&self.axes)))?;
        let n = self.axes[pos].1.max(1) as f64;
        let keep: Vec<Axis> = self
            .axes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != pos)
            .map(|(_, a)| a.clone())
            .collect();
        let map = index_map(&self.axes, &keep);
        let mut out = vec![0.0; n_units(&keep)];
        for (k, &x) in self.data.iter().enumerate() {
            out[map[k]] += x;
        }
        out.iter_mut().for_each(|x| *x /= n);
        Ok(Col {
            axes: keep,
            data: out,
            mask: None,
        })
    }

    /// Ranks (1 = largest value), ties broken by position.
    pub fn rank_desc(&self) -> Col {
        let mut order: Vec<usize> = (0..self.data.len()).collect();
        order.sort_by(|&a, &b| self.data[b].total_cmp(&self.data[a]).then(a.cmp(&b)));
        let mut data = vec![0.0; self.data.len()];
        for (r, &i) in order.iter().enumerate() {
            data[i] = (r + 1) as f64;
        }
        Col {
            axes: self.axes.clone(),
            data,
            mask: None,
        }
    }
}

/// The flat unit index of `idx` over `axes`, checking bounds.
pub fn flat_index(axes: &[Axis], idx: &[usize]) -> Result<usize, String> {
    if idx.len() != axes.len() {
        return Err(format!(
            "{} indices given for a value over {}",
            idx.len(),
            axes_str(axes)
        ));
    }
    let mut k = 0;
    for (&i, (name, n)) in idx.iter().zip(axes) {
        if i >= *n {
            return Err(format!(
                "index {i} out of range for axis {name} of size {n}"
            ));
        }
        k = k * n + i;
    }
    Ok(k)
}

impl Sets {
    /// Sets from one list per unit.
    pub fn from_lists(axes: Vec<Axis>, lists: &[Vec<i64>]) -> Result<Sets, String> {
        if lists.len() != n_units(&axes) {
            return Err(format!(
                "{} lists given for {} units of {}",
                lists.len(),
                n_units(&axes),
                axes_str(&axes)
            ));
        }
        let mut offsets = Vec::with_capacity(lists.len() + 1);
        let mut values = Vec::new();
        offsets.push(0);
        for l in lists {
            values.extend_from_slice(l);
            offsets.push(values.len());
        }
        Ok(Sets {
            axes,
            offsets,
            values,
            mask: None,
            dropped: None,
        })
    }

    /// The number of units.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Whether there are no units.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements of unit `k` (flat index).
    pub fn unit(&self, k: usize) -> &[i64] {
        &self.values[self.offsets[k]..self.offsets[k + 1]]
    }

    /// The size of every unit.
    pub fn sizes(&self) -> Col {
        Col {
            axes: self.axes.clone(),
            data: self
                .offsets
                .windows(2)
                .map(|w| (w[1] - w[0]) as f64)
                .collect(),
            mask: None,
        }
    }

    /// For every unit of the broadcast axes, the elements of `b`'s unit
    /// that are also in `a`'s unit, in `b`'s order.
    pub fn intersect(a: &Sets, b: &Sets) -> Result<Sets, String> {
        let axes = broadcast_plan(&a.axes, &b.axes)?;
        let ia = index_map(&axes, &a.axes);
        let ib = index_map(&axes, &b.axes);
        let a_sets: Vec<HashSet<i64>> = (0..a.len())
            .map(|k| a.unit(k).iter().copied().collect())
            .collect();
        let mut offsets = Vec::with_capacity(ia.len() + 1);
        let mut values = Vec::new();
        offsets.push(0);
        for (&i, &j) in ia.iter().zip(&ib) {
            let set = &a_sets[i];
            values.extend(b.unit(j).iter().filter(|x| set.contains(x)));
            offsets.push(values.len());
        }
        Ok(Sets {
            axes,
            offsets,
            values,
            mask: None,
            dropped: None,
        })
    }

    /// Keeps, per unit, the elements for which `keep(unit, position)` is
    /// true; returns the kept and the dropped sets.
    pub fn split_by(&self, mut keep: impl FnMut(usize, usize) -> bool) -> (Sets, Sets) {
        let mut kept = Sets {
            axes: self.axes.clone(),
            offsets: vec![0],
            values: Vec::new(),
            mask: None,
            dropped: None,
        };
        let mut gone = kept.clone();
        for k in 0..self.len() {
            for (p, &x) in self.unit(k).iter().enumerate() {
                if keep(k, p) {
                    kept.values.push(x);
                } else {
                    gone.values.push(x);
                }
            }
            kept.offsets.push(kept.values.len());
            gone.offsets.push(gone.values.len());
        }
        (kept, gone)
    }
}

/// A column of a [`Table`].
#[derive(Debug, Clone, PartialEq)]
pub enum TCol {
    /// Integers.
    Int(Vec<i64>),
    /// Reals.
    Float(Vec<f64>),
    /// Text.
    Str(Vec<String>),
}

impl TCol {
    /// The number of rows.
    pub fn len(&self) -> usize {
        match self {
            TCol::Int(v) => v.len(),
            TCol::Float(v) => v.len(),
            TCol::Str(v) => v.len(),
        }
    }

    /// Whether the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cell `r` as CSV text (quoted when it holds a comma or a quote).
    pub fn cell(&self, r: usize) -> String {
        match self {
            TCol::Int(v) => v[r].to_string(),
            TCol::Float(v) => v[r].to_string(),
            TCol::Str(v) => {
                let s = &v[r];
                if s.contains([',', '"', '\n']) {
                    format!("\"{}\"", s.replace('"', "\"\""))
                } else {
                    s.clone()
                }
            }
        }
    }

    /// The rows listed in `rows`.
    pub fn take(&self, rows: &[usize]) -> TCol {
        match self {
            TCol::Int(v) => TCol::Int(rows.iter().map(|&r| v[r]).collect()),
            TCol::Float(v) => TCol::Float(rows.iter().map(|&r| v[r]).collect()),
            TCol::Str(v) => TCol::Str(rows.iter().map(|&r| v[r].clone()).collect()),
        }
    }

    /// The column as reals (text cells that do not parse are an error).
    pub fn as_f64(&self) -> Result<Vec<f64>, String> {
        match self {
            TCol::Int(v) => Ok(v.iter().map(|&x| x as f64).collect()),
            TCol::Float(v) => Ok(v.clone()),
            TCol::Str(v) => v
                .iter()
                .map(|s| s.parse().map_err(|_| format!("not a number: '{s}'")))
                .collect(),
        }
    }
}

/// A small named-column table: what a scenario reads and writes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Column names, in order.
    pub names: Vec<String>,
    /// Columns, parallel to `names`.
    pub cols: Vec<TCol>,
}

impl Table {
    /// The number of rows (0 without columns).
    pub fn n_rows(&self) -> usize {
        self.cols.first().map_or(0, TCol::len)
    }

    /// Appends a column; errors on a length mismatch or a duplicate name.
    pub fn push(&mut self, name: &str, col: TCol) -> Result<(), String> {
        if self.names.iter().any(|n| n == name) {
            return Err(format!("table already has a column '{name}'"));
        }
        if !self.cols.is_empty() && col.len() != self.n_rows() {
            return Err(format!(
                "column '{name}' has {} rows, the table {}",
                col.len(),
                self.n_rows()
            ));
        }
        self.names.push(name.to_string());
        self.cols.push(col);
        Ok(())
    }

    /// The column called `name`.
    pub fn get(&self, name: &str) -> Result<&TCol, String> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| &self.cols[i])
            .ok_or_else(|| format!("no column '{name}' (columns: {})", self.names.join(", ")))
    }

    /// The rows listed in `rows`.
    pub fn take(&self, rows: &[usize]) -> Table {
        Table {
            names: self.names.clone(),
            cols: self.cols.iter().map(|c| c.take(rows)).collect(),
        }
    }

    /// The table as CSV text with a header line.
    pub fn to_csv(&self) -> String {
        let mut s = self.names.join(",");
        s.push('\n');
        for r in 0..self.n_rows() {
            let cells: Vec<String> = self.cols.iter().map(|c| c.cell(r)).collect();
            s.push_str(&cells.join(","));
            s.push('\n');
        }
        s
    }

    /// Tab-separated text without a header line (MIND's `behaviors.tsv`
    /// and `news.tsv`); an error names the column and row of a cell holding
    /// a tab or a line break.
    pub fn to_tsv(&self) -> Result<String, String> {
        let mut s = String::new();
        for r in 0..self.n_rows() {
            for (k, c) in self.cols.iter().enumerate() {
                // text as it is (no CSV quoting)
                let cell = match c {
                    TCol::Str(v) => v[r].clone(),
                    _ => c.cell(r),
                };
                if cell.contains(['\t', '\n', '\r']) {
                    return Err(format!(
                        "column '{}' row {}: a tab-separated cell cannot hold a tab or a line break",
                        self.names[k],
                        r + 1
                    ));
                }
                if k > 0 {
                    s.push('\t');
                }
                s.push_str(&cell);
            }
            s.push('\n');
        }
        Ok(s)
    }

    /// Parses CSV text (a header line, comma-separated cells, double-quoted
    /// cells may hold commas). Columns whose cells all parse as integers are
    /// [`TCol::Int`], else as reals [`TCol::Float`], else [`TCol::Str`].
    pub fn from_csv(text: &str) -> Result<Table, String> {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header = lines.next().ok_or("empty file")?;
        let names: Vec<String> = split_csv(header)
            .into_iter()
            .map(|s| s.trim().to_string())
            .collect();
        let mut raw: Vec<Vec<String>> = vec![Vec::new(); names.len()];
        for (i, line) in lines.enumerate() {
            let cells = split_csv(line);
            if cells.len() != names.len() {
                return Err(format!(
                    "line {}: {} cells, header has {}",
                    i + 2,
                    cells.len(),
                    names.len()
                ));
            }
            for (c, cell) in cells.into_iter().enumerate() {
                raw[c].push(cell);
            }
        }
        let cols = raw
            .into_iter()
            .map(|cells| {
                if let Ok(v) = cells.iter().map(|s| s.trim().parse::<i64>()).collect() {
                    TCol::Int(v)
                } else if let Ok(v) = cells.iter().map(|s| s.trim().parse::<f64>()).collect() {
                    TCol::Float(v)
                } else {
                    TCol::Str(cells)
                }
            })
            .collect();
        Ok(Table { names, cols })
    }
}

/// Splits one CSV line, honouring double quotes.
fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ax(n: &str, s: usize) -> Axis {
        (n.to_string(), s)
    }

    #[test]
    fn broadcasting_repeats_the_smaller_column() {
        let q = Col {
            axes: vec![ax("movie", 3)],
            data: vec![1.0, 2.0, 3.0],
            mask: None,
        };
        let u = Col {
            axes: vec![ax("user", 2)],
            data: vec![10.0, 20.0],
            mask: None,
        };
        let pair = Col::filled(vec![ax("user", 2), ax("movie", 3)], 0.5);
        let r = pair.zip(&q, |a, b| a + b).unwrap();
        assert_eq!(r.data, vec![1.5, 2.5, 3.5, 1.5, 2.5, 3.5]);
        let r = r.zip(&u, |a, b| a + b).unwrap();
        assert_eq!(r.data, vec![11.5, 12.5, 13.5, 21.5, 22.5, 23.5]);
        assert_eq!(r.mean_over("user").unwrap().data, vec![16.5, 17.5, 18.5]);
        let outer = u.zip(&q, |a, b| a + b).unwrap();
        assert_eq!(outer.axes, vec![ax("user", 2), ax("movie", 3)]);
        assert_eq!(outer.data, vec![11.0, 12.0, 13.0, 21.0, 22.0, 23.0]);
        let other = Col::filled(vec![ax("item", 2), ax("movie", 3)], 0.0);
        assert!(u.zip(&other, |a, b| a + b).is_err());
    }

    #[test]
    fn intersect_keeps_the_second_order_and_ranks_descend() {
        let users = Sets::from_lists(vec![ax("user", 2)], &[vec![3, 1], vec![]]).unwrap();
        let movies = Sets::from_lists(vec![ax("movie", 2)], &[vec![1, 2, 3], vec![4]]).unwrap();
        let tl = Sets::intersect(&users, &movies).unwrap();
        assert_eq!(tl.axes, vec![ax("user", 2), ax("movie", 2)]);
        assert_eq!(tl.unit(0), &[1, 3]);
        assert_eq!(tl.sizes().data, vec![2.0, 0.0, 0.0, 0.0]);
        let c = Col {
            axes: vec![ax("m", 3)],
            data: vec![5.0, 9.0, 5.0],
            mask: None,
        };
        assert_eq!(c.rank_desc().data, vec![2.0, 1.0, 3.0]);
    }

    #[test]
    fn csv_round_trip_quotes_lists() {
        let mut t = Table::default();
        t.push("movieid", TCol::Int(vec![0, 1])).unwrap();
        t.push("taglist", TCol::Str(vec!["0,1".into(), "2".into()]))
            .unwrap();
        let text = t.to_csv();
        assert_eq!(text, "movieid,taglist\n0,\"0,1\"\n1,2\n");
        let back = Table::from_csv(&text).unwrap();
        assert_eq!(
            back.get("taglist").unwrap(),
            &TCol::Str(vec!["0,1".into(), "2".into()])
        );
        assert!(t.push("x", TCol::Int(vec![1])).is_err());
    }
}
