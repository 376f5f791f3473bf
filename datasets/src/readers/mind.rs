//! MIND (Microsoft News Dataset): one split folder with `behaviors.tsv`
//! and `news.tsv`, tab-separated, no header line.
//!
//! - `behaviors.tsv`: `impression_id`, `user_id`, `time`
//!   (`11/15/2019 8:55:22 AM`), `history` (space-separated news ids, may be
//!   empty), `impressions` (space-separated `news_id-label`, label 0 or 1).
//! - `news.tsv`: `news_id`, `category`, `subcategory`, `title`, `abstract`,
//!   `url`, `title_entities`, `abstract_entities` (JSON lists of objects
//!   with a `WikidataId`; an empty cell is an empty list).
//!
//! `inter` has one row per (impression, candidate): `user`, `item` (the
//! candidate's news id), `label` ([`Role::Label`]), `impression` (token,
//! [`Role::Feature`]; group by it to evaluate per impression list),
//! `timestamp` ([`Role::Timestamp`], exact unix seconds from
//! [`parse_mind_time`]) and `history` (token_seq of
//! news ids, [`Role::Feature`], the impression's click history, repeated on
//! each candidate row). The item table (candidates only) holds `category`
//! ([`Role::Group`]), `subcategory` ([`Role::Feature`]) and `query`
//! ([`Role::Query`]): the IV4Rec+ query of the article, its category,
//! subcategory and the `WikidataId`s of its title and abstract entities, in
//! that order, each once; and `text` (token_seq, [`Role::Feature`]): the
//! words of the title, then of the abstract (the input of the paper's BERT
//! item embedding; `modalities: #{ text: #{ from: "text", hash: N } }`
//! makes it a hashed bag of words).
//!
//! Errors name the file, the 1-based line and the column: a wrong number of
//! cells (e.g. a comma-separated file), a bad time, label or entity list, a
//! duplicate news id, or a history / impression news id absent from
//! `news.tsv`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::columns::{
    dataset, float_field, id_field, table, time_field, IdIndex, SeqCol, TokenCol,
};
use super::delimited::{days_from_civil, digits, Delim, DelimitedReader, Header, Record};
use crate::error::Result;
use crate::table::{Dataset, Role};

/// How to read a MIND split (no options yet; kept for compatibility).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MindOptions {
    /// The data set's name; default `mind`.
    pub name: Option<String>,
}

const BEHAVIOR_COLS: [&str; 5] = ["impression_id", "user_id", "time", "history", "impressions"];
const NEWS_COLS: [&str; 8] = [
    "news_id",
    "category",
    "subcategory",
    "title",
    "abstract",
    "url",
    "title_entities",
    "abstract_entities",
];

/// Parses a MIND time, `M/D/YYYY h:mm:ss AM|PM`, into unix seconds (the
/// times carry no zone; they are read as UTC). `None` if it is not one.
pub fn parse_mind_time(s: &str) -> Option<i64> {
    let (date, rest) = s.trim().split_once(' ')?;
    let (clock, ampm) = rest.trim().split_once(' ')?;
    let mut d = date.split('/');
    let (mo, da, y) = (digits(d.next()?)?, digits(d.next()?)?, digits(d.next()?)?);
    let mut c = clock.split(':');
    let (h, mi, se) = (digits(c.next()?)?, digits(c.next()?)?, digits(c.next()?)?);
    if d.next().is_some() || c.next().is_some() || !(1..=12).contains(&h) || mi > 59 || se > 60 {
        return None;
    }
    let h = match ampm.trim() {
        "AM" => h % 12,
        "PM" => h % 12 + 12,
        _ => return None,
    };
    let days = days_from_civil(y, u32::try_from(mo).ok()?, u32::try_from(da).ok()?)?;
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

/// One article of `news.tsv`.
struct News {
    category: String,
    subcategory: String,
    query: Vec<String>,
    /// The words of the title, then of the abstract.
    text: Vec<String>,
}

/// Opens a MIND file: tab-separated, no quoting, no header line.
fn open(path: &Path, cols: &[&str]) -> Result<DelimitedReader> {
    DelimitedReader::open(path, Delim::Char('\t'), Header::Fixed(cols))
}

fn entity_ids(rec: &Record<'_>, c: usize) -> Result<Vec<String>> {
    let cell = rec.get(c);
    if cell.trim().is_empty() {
        return Ok(Vec::new());
    }
    let v: Vec<serde_json::Value> = serde_json::from_str(cell)
        .map_err(|e| rec.error(c, format!("not a JSON list of entities: {e}")))?;
    v.iter()
        .map(|e| match e.get("WikidataId").and_then(|w| w.as_str()) {
            Some(id) if !id.trim().is_empty() => Ok(id.to_string()),
            _ => Err(rec.error(c, format!("entity without a WikidataId string: {e}"))),
        })
        .collect()
}

fn read_news(path: &Path) -> Result<HashMap<String, News>> {
    let mut news: HashMap<String, News> = HashMap::new();
    let mut first_line: HashMap<String, usize> = HashMap::new();
    open(path, &NEWS_COLS)?.for_each(|rec| {
        let c = |k: usize| rec.get(k);
        let id = c(0).trim();
        if id.is_empty() {
            return Err(rec.error(0, "empty news id"));
        }
        if let Some(first) = first_line.insert(id.to_string(), rec.line()) {
            return Err(rec.error(
                0,
                format!("duplicate news id '{id}' (first on line {first})"),
            ));
        }
        let mut query: Vec<String> = Vec::new();
        let mut add = |t: &str| {
            let t = t.trim();
            if !t.is_empty() && !query.iter().any(|q| q == t) {
                query.push(t.to_string());
            }
        };
        add(c(1));
        add(c(2));
        for col in [6, 7] {
            for e in entity_ids(rec, col)? {
                add(&e);
            }
        }
        news.insert(
            id.to_string(),
            News {
                category: c(1).trim().to_string(),
                subcategory: c(2).trim().to_string(),
                query,
                text: c(3)
                    .split_whitespace()
                    .chain(c(4).split_whitespace())
                    .map(str::to_string)
                    .collect(),
            },
        );
        Ok(())
    })?;
    Ok(news)
}

/// Reads the MIND split in `dir` (`behaviors.tsv`, `news.tsv`). See the
/// module documentation. The data set gives no parts.
pub fn load_mind(dir: &Path, opts: &MindOptions) -> Result<Dataset> {
    let news = read_news(&dir.join("news.tsv"))?;
    let (mut users, mut items) = (IdIndex::default(), IdIndex::default());
    let (mut ucol, mut icol, mut label, mut time) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut impression = TokenCol::new("impression", Role::Feature);
    let mut history = SeqCol::new("history", Role::Feature);
    open(&dir.join("behaviors.tsv"), &BEHAVIOR_COLS)?.for_each(|rec| {
        let c = |k: usize| rec.get(k);
        let err = |col: usize, msg: String| rec.error(col, msg);
        let (imp, user) = (c(0).trim(), c(1).trim());
        if imp.is_empty() {
            return Err(err(0, "empty impression id".into()));
        }
        if user.is_empty() {
            return Err(err(1, "empty user id".into()));
        }
        let t = parse_mind_time(c(2)).ok_or_else(|| {
            err(
                2,
                format!("'{}' is not a time like 11/15/2019 8:55:22 AM", c(2)),
            )
        })?;
        let hist: Vec<&str> = c(3).split(' ').filter(|s| !s.is_empty()).collect();
        if let Some(h) = hist.iter().find(|h| !news.contains_key(**h)) {
            return Err(err(3, format!("unknown news id '{h}' (not in news.tsv)")));
        }
        let mut n_cand = 0;
        for cand in c(4).split(' ').filter(|s| !s.is_empty()) {
            let (id, l) = cand
                .rsplit_once('-')
                .ok_or_else(|| err(4, format!("'{cand}' is not news_id-label (e.g. N1234-1)")))?;
            let l = match l {
                "0" => 0.0,
                "1" => 1.0,
                _ => return Err(err(4, format!("label '{l}' of '{cand}' is not 0 or 1"))),
            };
            if !news.contains_key(id) {
                return Err(err(4, format!("unknown news id '{id}' (not in news.tsv)")));
            }
            ucol.push(users.id(user));
            icol.push(items.id(id));
            label.push(l);
            time.push(t as f64);
            impression.push(imp);
            history.push(hist.iter().copied());
            n_cand += 1;
        }
        if n_cand == 0 {
            return Err(err(4, "no candidate news".into()));
        }
        Ok(())
    })?;

    let inter = table(vec![
        id_field("user", Role::User, ucol, &users.raw),
        id_field("item", Role::Item, icol, &items.raw),
        float_field("label", Role::Label, label),
        impression.finish(),
        time_field("timestamp", time),
        history.finish(),
    ])?;
    let mut category = TokenCol::new("category", Role::Group);
    let mut subcategory = TokenCol::new("subcategory", Role::Feature);
    let mut query = SeqCol::new("query", Role::Query);
    let mut text = SeqCol::new("text", Role::Feature);
    for id in &items.raw {
        let n = &news[id];
        category.push(&n.category);
        subcategory.push(&n.subcategory);
        query.push(n.query.iter().map(String::as_str));
        text.push(n.text.iter().map(String::as_str));
    }
    let item_table = table(vec![
        category.finish(),
        subcategory.finish(),
        query.finish(),
        text.finish(),
    ])?;
    dataset(
        opts.name.as_deref().unwrap_or("mind"),
        inter,
        None,
        Some(item_table),
        users.raw,
        items.raw,
        BTreeMap::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mind_times() {
        // 2019-11-15 is day 18215.
        let day = 18_215 * 86_400;
        assert_eq!(
            parse_mind_time("11/15/2019 8:55:22 AM"),
            Some(day + 8 * 3600 + 55 * 60 + 22)
        );
        assert_eq!(parse_mind_time("11/15/2019 12:00:00 AM"), Some(day));
        assert_eq!(
            parse_mind_time("11/15/2019 12:30:00 PM"),
            Some(day + 12 * 3600 + 1800)
        );
        assert_eq!(
            parse_mind_time("11/15/2019 1:00:00 PM"),
            Some(day + 13 * 3600)
        );
        for bad in [
            "",
            "11/15/2019",
            "11/15/2019 13:00:00 PM",
            "2019-11-15 8:55:22 AM",
            "11/31/2019 8:55:22 AM",
            "11/15/2019 8:55:22",
        ] {
            assert_eq!(parse_mind_time(bad), None, "{bad}");
        }
    }
}
