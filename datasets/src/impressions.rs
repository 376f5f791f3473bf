//! Impression lists for rating logs that have none (IV4Rec+'s protocol
//! evaluates per impression list: MIND's impressions, Kuaishou's refreshes).
//! On a rating log (MovieLens) the items a user rated within one
//! chronological window stand in for one list shown to the user: a rated
//! item was shown, a liked one (rating at or above a threshold) was
//! clicked. [`chrono_window_impressions`] adds the token column
//! `impression` (`<user>@<window>`, windows of `window` seconds counted from
//! the log's first timestamp) and the label column `click` (1 or 0).

use crate::table::{Column, Dataset, FieldKind, FieldMeta, Role};
use crate::{DataError, Result};

/// Add `impression` (token, [`Role::Feature`]) and `click` (float,
/// [`Role::Label`]) to `ds.inter`; see the module doc.
pub fn chrono_window_impressions(ds: &mut Dataset, window: f64, threshold: f32) -> Result<()> {
    if !(window > 0.0 && window.is_finite()) {
        return Err(DataError::Config(format!(
            "impressions: the window must be a positive number of seconds, got {window}"
        )));
    }
    for name in ["impression", "click"] {
        if ds.inter.field(name).is_some() {
            return Err(DataError::Config(format!(
                "impressions: data set '{}' already has an interaction column '{name}'",
                ds.name
            )));
        }
    }
    let ts = ds.timestamp_col().ok_or_else(|| {
        DataError::Config(format!(
            "impressions: data set '{}' has no timestamp column to cut windows from",
            ds.name
        ))
    })?;
    let ratings = ds.rating_col().ok_or_else(|| {
        DataError::Config(format!(
            "impressions: data set '{}' has no rating column to tell clicks from",
            ds.name
        ))
    })?;
    let start = ts.iter().copied().fold(f64::INFINITY, f64::min);
    let users = ds.user_col();
    let mut meta = FieldMeta::new("impression", FieldKind::Token, Role::Feature);
    let mut ids = std::collections::HashMap::new();
    let mut tokens = Vec::with_capacity(users.len());
    for (r, &u) in users.iter().enumerate() {
        let w = ((ts[r] - start) / window).floor() as u64;
        let next = meta.vocab.len() as u32;
        let id = *ids.entry((u, w)).or_insert_with(|| {
            meta.vocab.push(format!("{u}@{w}"));
            next
        });
        tokens.push(id);
    }
    let clicks: Vec<f32> = ratings
        .iter()
        .map(|&r| if r >= threshold { 1.0 } else { 0.0 })
        .collect();
    drop(ts);
    ds.inter.push(meta, Column::Token(tokens))?;
    ds.inter.push(
        FieldMeta::new("click", FieldKind::Float, Role::Label),
        Column::Float(clicks),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split::tests::ds;

    #[test]
    fn windows_per_user_and_clicks_from_ratings() {
        // (user, item, rating, time): windows of 100 s from t = 10.
        let mut d = ds(
            &[
                (0, 0, 5.0, 10.0),
                (0, 1, 2.0, 60.0),
                (1, 2, 4.0, 20.0),
                (0, 3, 4.0, 110.0),
                (1, 0, 1.0, 250.0),
            ],
            true,
        );
        chrono_window_impressions(&mut d, 100.0, 4.0).unwrap();
        let (_, meta) = d.inter.field("impression").unwrap();
        let Some(Column::Token(t)) = d.inter.column("impression") else {
            panic!("impression is not a token column")
        };
        let names: Vec<&str> = t.iter().map(|&i| meta.vocab[i as usize].as_str()).collect();
        assert_eq!(names, ["0@0", "0@0", "1@0", "0@1", "1@2"]);
        let Some(Column::Float(c)) = d.inter.column("click") else {
            panic!("click is not a float column")
        };
        assert_eq!(c, &[1.0, 0.0, 1.0, 1.0, 0.0]);
        // Twice is refused, naming the column.
        let e = chrono_window_impressions(&mut d, 100.0, 4.0).unwrap_err();
        assert!(e.to_string().contains("'impression'"), "{e}");
        let e =
            chrono_window_impressions(&mut ds(&[(0, 0, 5.0, 1.0)], false), 10.0, 4.0).unwrap_err();
        assert!(e.to_string().contains("no timestamp"), "{e}");
        let e =
            chrono_window_impressions(&mut ds(&[(0, 0, 5.0, 1.0)], true), 0.0, 4.0).unwrap_err();
        assert!(e.to_string().contains("positive number of seconds"), "{e}");
    }
}
