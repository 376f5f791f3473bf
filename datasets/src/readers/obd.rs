//! The Open Bandit Dataset (ZOZOTOWN, Saito et al.): one folder per logging
//! policy (`random/`, `bts/`), each with `all.csv` (the log) and
//! `item_context.csv` (item features).
//!
//! `all.csv` starts with an unnamed index column, then `timestamp`
//! (`2019-11-24 00:00:34.762830+00:00`), `item_id`, `position`, `click`,
//! `propensity_score`, `user_feature_0`..`user_feature_3` (hashed
//! categories) and `user-item_affinity_0`.. (one float per item).
//!
//! `inter` columns: `user` ([`Role::User`], see below), `item`
//! ([`Role::Item`], the raw `item_id`), `timestamp` ([`Role::Timestamp`]),
//! `position` (token, [`Role::Position`]), `click` ([`Role::Label`]),
//! `propensity_score` ([`Role::Propensity`]), `policy` (token, the folder
//! name), `user_feature_0`..`3` (tokens) and every `user-item_affinity_k`
//! (floats), these last as [`Role::Feature`]. The item table holds
//! `item_feature_0` (float) and `item_feature_1`..`3` (tokens).
//!
//! Users: OBD has no user id; every impression is its own context. The user
//! id is the four user features joined with `|`
//! (`uf0|uf1|uf2|uf3`), so impressions with the same context share a
//! user (240 such users in the `random` sample, 253 in `bts`).
//!
//! Timestamps: the `timestamp` column holds exact unix seconds (f64,
//! microseconds kept), parsed by [`parse_obd_timestamp`].
//!
//! [`load_obd_pair`] reads `bts/` (part `train`) and `random/` (part
//! `test`, the uniform-random policy) into one data set with one item
//! numbering.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::columns::{dataset, float_field, id_field, table, time_field, IdIndex, TokenCol};
use super::delimited::{days_from_civil, digits, Delim, DelimitedReader, Header};
use crate::error::{DataError, Result};
use crate::table::{Column, Dataset, FieldMeta, Role};

/// How to read one OBD policy folder.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObdOptions {
    /// The value of the `policy` column; default: the folder's name.
    pub policy: Option<String>,
}

const USER_FEATURES: [&str; 4] = [
    "user_feature_0",
    "user_feature_1",
    "user_feature_2",
    "user_feature_3",
];
const AFFINITY_PREFIX: &str = "user-item_affinity_";

/// Parses an OBD timestamp, `YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM|Z]`
/// (`T` also accepted between date and time), into unix seconds. `None`
/// if it is not one.
pub fn parse_obd_timestamp(s: &str) -> Option<f64> {
    let s = s.trim();
    let (date, rest) = s.split_at_checked(10)?;
    let rest = rest.strip_prefix([' ', 'T'])?;
    let mut d = date.split('-');
    let (y, mo, da) = (digits(d.next()?)?, digits(d.next()?)?, digits(d.next()?)?);
    if d.next().is_some() {
        return None;
    }
    // Split off the zone.
    let (clock, offset) = if let Some(c) = rest.strip_suffix('Z') {
        (c, 0)
    } else if let Some(p) = rest.rfind(['+', '-']) {
        let (c, z) = rest.split_at(p);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let (zh, zm) = z[1..].split_once(':')?;
        (c, sign * (digits(zh)? * 3600 + digits(zm)? * 60))
    } else {
        (rest, 0)
    };
    let (hms, frac) = match clock.split_once('.') {
        Some((a, f)) => {
            digits(f)?;
            (a, format!("0.{f}").parse::<f64>().ok()?)
        }
        None => (clock, 0.0),
    };
    let mut t = hms.split(':');
    let (h, mi, se) = (digits(t.next()?)?, digits(t.next()?)?, digits(t.next()?)?);
    if t.next().is_some() || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let days = days_from_civil(y, u32::try_from(mo).ok()?, u32::try_from(da).ok()?)?;
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset;
    Some(secs as f64 + frac)
}

/// One parsed `all.csv`.
struct Log {
    policy: String,
    time: Vec<f64>,
    item: Vec<String>,
    position: Vec<String>,
    click: Vec<f32>,
    propensity: Vec<f32>,
    user_features: [Vec<String>; 4],
    /// `(name, values)` of each affinity column, in file order.
    affinity: Vec<(String, Vec<f32>)>,
}

/// One parsed `item_context.csv`.
struct ItemContext {
    file: String,
    index: HashMap<String, usize>,
    f0: Vec<f32>,
    tokens: [Vec<String>; 3],
}

fn read_item_context(path: &Path) -> Result<ItemContext> {
    let csv = DelimitedReader::open(path, Delim::Csv, Header::FirstLine)?;
    let ci = csv.column("item_id")?;
    let c0 = csv.column("item_feature_0")?;
    let ct = [
        csv.column("item_feature_1")?,
        csv.column("item_feature_2")?,
        csv.column("item_feature_3")?,
    ];
    let mut ctx = ItemContext {
        file: csv.file().to_string(),
        index: HashMap::new(),
        f0: Vec::new(),
        tokens: Default::default(),
    };
    csv.for_each(|rec| {
        let id = rec.id(ci)?;
        if ctx.index.insert(id.to_string(), ctx.f0.len()).is_some() {
            return Err(rec.error(ci, format!("duplicate item id '{id}'")));
        }
        ctx.f0.push(rec.f32(c0)?);
        for (k, &c) in ct.iter().enumerate() {
            ctx.tokens[k].push(rec.get(c).to_string());
        }
        Ok(())
    })?;
    Ok(ctx)
}

fn read_log(path: &Path, policy: &str, items: &ItemContext) -> Result<Log> {
    let csv = DelimitedReader::open(path, Delim::Csv, Header::FirstLine)?;
    let ct = csv.column("timestamp")?;
    let ci = csv.column("item_id")?;
    let cp = csv.column("position")?;
    let cc = csv.column("click")?;
    let cq = csv.column("propensity_score")?;
    let cu = [
        csv.column(USER_FEATURES[0])?,
        csv.column(USER_FEATURES[1])?,
        csv.column(USER_FEATURES[2])?,
        csv.column(USER_FEATURES[3])?,
    ];
    let names = csv.names();
    let aff_cols: Vec<usize> = (0..names.len())
        .filter(|&c| names[c].starts_with(AFFINITY_PREFIX))
        .collect();
    let mut log = Log {
        policy: policy.to_string(),
        time: Vec::new(),
        item: Vec::new(),
        position: Vec::new(),
        click: Vec::new(),
        propensity: Vec::new(),
        user_features: Default::default(),
        affinity: aff_cols
            .iter()
            .map(|&c| (names[c].clone(), Vec::new()))
            .collect(),
    };
    csv.for_each(|rec| {
        let ts = rec.get(ct);
        let t = parse_obd_timestamp(ts).ok_or_else(|| {
            rec.error(
                ct,
                format!("'{ts}' is not a timestamp like 2019-11-24 00:00:34.762830+00:00"),
            )
        })?;
        let item = rec.id(ci)?;
        if !items.index.contains_key(item) {
            return Err(rec.error(
                ci,
                format!("unknown item id '{item}' (not in {})", items.file),
            ));
        }
        let click = rec.f32(cc)?;
        if click != 0.0 && click != 1.0 {
            return Err(rec.error(cc, format!("click {click} is not 0 or 1")));
        }
        let p = rec.f32(cq)?;
        if !(p > 0.0 && p <= 1.0) {
            return Err(rec.error(cq, format!("propensity {p} is not in (0, 1]")));
        }
        log.time.push(t);
        log.item.push(item.to_string());
        log.position.push(rec.id(cp)?.to_string());
        log.click.push(click);
        log.propensity.push(p);
        for (k, &c) in cu.iter().enumerate() {
            log.user_features[k].push(rec.id(c)?.to_string());
        }
        for (j, &c) in aff_cols.iter().enumerate() {
            log.affinity[j].1.push(rec.f32(c)?);
        }
        Ok(())
    })?;
    Ok(log)
}

fn folder_name(dir: &Path) -> String {
    dir.file_name()
        .map_or_else(|| "obd".to_string(), |n| n.to_string_lossy().into_owned())
}

/// Reads one OBD policy folder `dir` (`all.csv` and `item_context.csv`).
/// The data set is named `obd-{policy}` and gives no parts.
pub fn load_obd(dir: &Path, opts: &ObdOptions) -> Result<Dataset> {
    let policy = opts.policy.clone().unwrap_or_else(|| folder_name(dir));
    let items = read_item_context(&dir.join("item_context.csv"))?;
    let log = read_log(&dir.join("all.csv"), &policy, &items)?;
    build(format!("obd-{policy}"), &[log], &items, &[])
}

/// Reads `root/bts` (the Bernoulli Thompson Sampling log, part `train`) and
/// `root/random` (the uniform-random log, part `test`) into one data set
/// named `obd` with one item numbering. The item features are those of
/// `bts/item_context.csv`; `random/item_context.csv` must list the same
/// items with the same `item_feature_0` (its hashed categories are spelt
/// differently per folder).
pub fn load_obd_pair(root: &Path) -> Result<Dataset> {
    let train_dir = root.join("bts");
    let test_dir = root.join("random");
    let items = read_item_context(&train_dir.join("item_context.csv"))?;
    let test_items = read_item_context(&test_dir.join("item_context.csv"))?;
    for (id, &r) in &test_items.index {
        let same = items
            .index
            .get(id)
            .is_some_and(|&s| items.f0[s] == test_items.f0[r]);
        if !same {
            return Err(DataError::Schema {
                file: test_items.file.clone(),
                msg: format!(
                    "item '{id}' is missing from {} or has another item_feature_0 there",
                    items.file
                ),
            });
        }
    }
    let train = read_log(&train_dir.join("all.csv"), "bts", &items)?;
    let test = read_log(&test_dir.join("all.csv"), "random", &items)?;
    build(
        "obd".to_string(),
        &[train, test],
        &items,
        &["train", "test"],
    )
}

/// Builds the data set of `logs` (rows in order); `parts[k]` names the rows
/// of `logs[k]` (no parts if empty).
fn build(name: String, logs: &[Log], items: &ItemContext, parts: &[&str]) -> Result<Dataset> {
    let first = logs[0].affinity.iter().map(|(n, _)| n);
    for log in &logs[1..] {
        if !log.affinity.iter().map(|(n, _)| n).eq(first.clone()) {
            return Err(DataError::Schema {
                file: name.clone(),
                msg: format!(
                    "the {} log has other user-item_affinity columns than the {} log",
                    log.policy, logs[0].policy
                ),
            });
        }
    }
    let (mut users, mut item_ids) = (IdIndex::default(), IdIndex::default());
    let (mut ucol, mut icol) = (Vec::new(), Vec::new());
    let mut time = Vec::new();
    let mut position = TokenCol::new("position", Role::Position);
    let mut policy = TokenCol::new("policy", Role::Feature);
    let (mut click, mut prop) = (Vec::new(), Vec::new());
    let mut uf: Vec<TokenCol> = USER_FEATURES
        .iter()
        .map(|n| TokenCol::new(n, Role::Feature))
        .collect();
    let mut aff: Vec<Vec<f32>> = vec![Vec::new(); logs[0].affinity.len()];
    let mut part_rows: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut row = 0;
    for (k, log) in logs.iter().enumerate() {
        let n = log.item.len();
        for r in 0..n {
            let key = format!(
                "{}|{}|{}|{}",
                log.user_features[0][r],
                log.user_features[1][r],
                log.user_features[2][r],
                log.user_features[3][r]
            );
            ucol.push(users.id(&key));
            icol.push(item_ids.id(&log.item[r]));
            time.push(log.time[r]);
            position.push(&log.position[r]);
            policy.push(&log.policy);
            for (j, col) in uf.iter_mut().enumerate() {
                col.push(&log.user_features[j][r]);
            }
        }
        click.extend_from_slice(&log.click);
        prop.extend_from_slice(&log.propensity);
        for (j, (_, v)) in log.affinity.iter().enumerate() {
            aff[j].extend_from_slice(v);
        }
        if let Some(p) = parts.get(k) {
            part_rows.insert((*p).to_string(), (row..row + n).collect());
        }
        row += n;
    }
    let mut cols = vec![
        id_field("user", Role::User, ucol, &users.raw),
        id_field("item", Role::Item, icol, &item_ids.raw),
        time_field("timestamp", time),
        position.finish(),
        float_field("click", Role::Label, click),
        float_field("propensity_score", Role::Propensity, prop),
        policy.finish(),
    ];
    cols.extend(uf.into_iter().map(TokenCol::finish));
    for ((name, _), v) in logs[0].affinity.iter().zip(aff) {
        cols.push(float_field(name, Role::Feature, v));
    }
    let inter = table(cols)?;

    // Item features in dense item order.
    let src: Vec<usize> = item_ids.raw.iter().map(|id| items.index[id]).collect();
    let mut item_cols: Vec<(FieldMeta, Column)> = vec![float_field(
        "item_feature_0",
        Role::Feature,
        src.iter().map(|&s| items.f0[s]).collect(),
    )];
    for (k, toks) in items.tokens.iter().enumerate() {
        let mut c = TokenCol::new(&format!("item_feature_{}", k + 1), Role::Feature);
        for &s in &src {
            c.push(&toks[s]);
        }
        item_cols.push(c.finish());
    }
    let item_table = table(item_cols)?;
    dataset(
        &name,
        inter,
        None,
        Some(item_table),
        users.raw,
        item_ids.raw,
        part_rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_to_exact_unix_seconds() {
        // 2019-11-24 is day 18224 since the epoch.
        let t = parse_obd_timestamp("2019-11-24 00:00:34.762830+00:00").unwrap();
        assert!((t - (18_224.0 * 86_400.0 + 34.762_83)).abs() < 1e-6);
        assert_eq!(
            parse_obd_timestamp("2019-11-24T01:00:00Z"),
            Some(1_574_557_200.0)
        );
        assert_eq!(
            parse_obd_timestamp("2019-11-24 01:00:00+01:00"),
            Some(1_574_553_600.0)
        );
        assert_eq!(
            parse_obd_timestamp("2019-11-24 00:00:00"),
            Some(1_574_553_600.0)
        );
        for bad in [
            "",
            "2019-11-24",
            "2019-13-24 00:00:00",
            "2019-11-24 25:00:00",
            "24/11/2019 00:00:00",
            "2019-11-24 00:00:0x",
        ] {
            assert_eq!(parse_obd_timestamp(bad), None, "{bad}");
        }
    }
}
