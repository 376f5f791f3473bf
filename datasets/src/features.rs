//! Dense item features derived from categorical item fields, for models that
//! read modality matrices (MMGCN) on data sets that ship none: a multi-hot
//! vector over a field's vocabulary (e.g. genres), or a hashed bag of words
//! over the words of a text field (e.g. titles). Rows are scaled to unit L2
//! norm (an item with no values keeps a zero row). The result is an item
//! field of kind `float_seq` and role [`Role::Modality`]. An item field that
//! is already dense (`float_seq`, or `float` = one dimension, e.g. the
//! features a simulator writes) becomes a modality as it is: its values are
//! copied unscaled (or, when the modality keeps the field's name, the field
//! itself takes the role).

use crate::table::{Column, Dataset, FieldKind, FieldMeta, Role};
use crate::{DataError, Result};

/// How a categorical field becomes a dense vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenseEncoding {
    /// One dimension per vocabulary entry (padding excluded).
    MultiHot,
    /// Word counts hashed (FNV-1a of the lower-cased word) into this many buckets.
    HashedWords(usize),
}

/// FNV-1a, 64 bit: a fixed hash, so features are the same on every machine.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Add item field `name` built from item field `from` with `enc`. `from`
/// may join several token fields with `+` (`"genre+movie_title"`, the
/// IV4Rec+ query of an item from its genres and title words): multi-hot
/// blocks are concatenated in that order, hashed words of all of them share
/// the buckets. A single dense `from` (float or float_seq) is taken as it
/// is; `enc` must then be [`DenseEncoding::MultiHot`], the default, since
/// there is nothing to hash.
pub fn add_dense_item_feature(
    ds: &mut Dataset,
    name: &str,
    from: &str,
    enc: DenseEncoding,
) -> Result<()> {
    let n_items = ds.n_items;
    let items = ds.items.as_mut().ok_or_else(|| {
        DataError::Config(format!(
            "dense feature '{name}': data set '{}' has no item features to build it from",
            ds.name
        ))
    })?;
    if !from.contains('+') {
        if let Some((idx, meta)) = items.field(from) {
            let dense = match &items.columns[idx] {
                Column::FloatSeq { offsets, values } => Some((offsets.clone(), values.clone())),
                Column::Float(v) => Some(((0..=v.len() as u32).collect(), v.clone())),
                _ => None,
            };
            if let Some((offsets, values)) = dense {
                if let DenseEncoding::HashedWords(_) = enc {
                    return Err(DataError::Config(format!(
                        "dense feature '{name}': item field '{from}' is {} (already dense); `hash` applies to token fields only",
                        meta.kind
                    )));
                }
                let widths: Vec<u32> = offsets.windows(2).map(|w| w[1] - w[0]).collect();
                let dim = widths.first().copied().unwrap_or(0) as usize;
                if let Some(r) = widths.iter().position(|&w| w as usize != dim) {
                    return Err(DataError::Config(format!(
                        "dense feature '{name}': item field '{from}' must have the same width on every item: item 0 has {dim}, item {r} has {}",
                        widths[r]
                    )));
                }
                if dim == 0 {
                    return Err(DataError::Config(format!(
                        "dense feature '{name}': item field '{from}' has zero width"
                    )));
                }
                if name == from {
                    let f = &mut items.fields[idx];
                    if f.kind == FieldKind::FloatSeq {
                        f.role = Role::Modality;
                        f.max_len = dim;
                        return Ok(());
                    }
                    return Err(DataError::Config(format!(
                        "dense feature '{name}': item field '{from}' is float; name the modality differently to build a float_seq copy"
                    )));
                }
                let mut field = FieldMeta::new(name, FieldKind::FloatSeq, Role::Modality);
                field.max_len = dim;
                return items.push(field, Column::FloatSeq { offsets, values });
            }
        }
    }
    // Per source field: its rows of token ids and its vocabulary.
    let mut sources = Vec::new();
    for src in from.split('+').map(str::trim) {
        let (idx, meta) = items.field(src).ok_or_else(|| {
            DataError::Config(format!(
                "dense feature '{name}': no item field '{src}' (item fields: {})",
                items.field_names()
            ))
        })?;
        let rows: Vec<&[u32]> = match &items.columns[idx] {
            Column::Token(v) => v.chunks(1).collect(),
            Column::TokenSeq { offsets, values } => offsets
                .windows(2)
                .map(|w| &values[w[0] as usize..w[1] as usize])
                .collect(),
            _ => {
                return Err(DataError::Config(format!(
                    "dense feature '{name}': item field '{src}' is {}, expected token or token_seq \
                     (a float or float_seq field is taken alone, not joined)",
                    meta.kind
                )))
            }
        };
        sources.push((src, rows, &meta.vocab));
    }
    // Each source's offset inside the vector, and the width.
    let mut starts = Vec::with_capacity(sources.len());
    let dim = match enc {
        DenseEncoding::MultiHot => {
            let mut w = 0;
            for (_, _, vocab) in &sources {
                starts.push(w);
                w += vocab.len().saturating_sub(1);
            }
            w
        }
        DenseEncoding::HashedWords(d) => {
            starts.resize(sources.len(), 0);
            d
        }
    };
    if dim == 0 {
        return Err(DataError::Config(format!(
            "dense feature '{name}': zero dimensions (empty vocabulary of '{from}' or hash size 0)"
        )));
    }
    let n = sources.first().map_or(n_items, |s| s.1.len());
    let mut values = vec![0f32; n * dim];
    for (k, (_, rows, vocab)) in sources.iter().enumerate() {
        for (r, ids) in rows.iter().enumerate() {
            let row = &mut values[r * dim..(r + 1) * dim];
            for &id in ids.iter().filter(|&&id| id != 0) {
                match enc {
                    DenseEncoding::MultiHot => row[starts[k] + id as usize - 1] = 1.0,
                    DenseEncoding::HashedWords(d) => {
                        for w in vocab[id as usize].split_whitespace() {
                            row[(fnv1a(&w.to_lowercase()) % d as u64) as usize] += 1.0;
                        }
                    }
                }
            }
        }
    }
    for row in values.chunks_mut(dim) {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|x| *x /= norm);
        }
    }
    let offsets = (0..=n).map(|r| (r * dim) as u32).collect();
    let mut field = FieldMeta::new(name, FieldKind::FloatSeq, Role::Modality);
    field.max_len = dim;
    items.push(field, Column::FloatSeq { offsets, values })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Table;

    fn with_items() -> Dataset {
        let mut ds = Dataset {
            name: "t".into(),
            inter: Table::new(),
            users: None,
            items: None,
            n_users: 0,
            n_items: 2,
            user_ids: Vec::new(),
            item_ids: vec!["a".into(), "b".into()],
            parts: Default::default(),
        };
        let mut genre = FieldMeta::new("genre", FieldKind::TokenSeq, Role::Group);
        genre.vocab = vec![
            "[PAD]".into(),
            "Action".into(),
            "Comedy".into(),
            "War".into(),
        ];
        let mut title = FieldMeta::new("title", FieldKind::TokenSeq, Role::Feature);
        title.vocab = vec!["[PAD]".into(), "Toy".into(), "Story".into(), "toy".into()];
        let mut t = Table::new();
        t.push(
            genre,
            Column::TokenSeq {
                offsets: vec![0, 2, 2],
                values: vec![1, 3],
            },
        )
        .unwrap();
        t.push(
            title,
            Column::TokenSeq {
                offsets: vec![0, 3, 3],
                values: vec![1, 2, 3],
            },
        )
        .unwrap();
        ds.items = Some(t);
        ds
    }

    fn column(ds: &Dataset, name: &str) -> Vec<f32> {
        let t = ds.items.as_ref().unwrap();
        match &t.columns[t.field(name).unwrap().0] {
            Column::FloatSeq { values, .. } => values.clone(),
            _ => panic!("not float_seq"),
        }
    }

    #[test]
    fn multi_hot_is_unit_norm_and_skips_padding() {
        let mut ds = with_items();
        add_dense_item_feature(&mut ds, "g", "genre", DenseEncoding::MultiHot).unwrap();
        let s = 1.0 / 2f32.sqrt();
        assert_eq!(column(&ds, "g"), vec![s, 0.0, s, 0.0, 0.0, 0.0]);
        let t = ds.items.as_ref().unwrap();
        let meta = t.field("g").unwrap().1;
        assert_eq!((meta.role, meta.dim()), (Role::Modality, 3));
    }

    #[test]
    fn dense_fields_become_modalities_as_they_are() {
        let mut ds = with_items();
        let items = ds.items.as_mut().unwrap();
        let mut cover = FieldMeta::new("cover", FieldKind::FloatSeq, Role::Feature);
        cover.max_len = 2;
        items
            .push(
                cover,
                Column::FloatSeq {
                    offsets: vec![0, 2, 4],
                    values: vec![3.0, -1.0, 0.5, 0.0],
                },
            )
            .unwrap();
        let price = FieldMeta::new("price", FieldKind::Float, Role::Feature);
        items.push(price, Column::Float(vec![9.5, 12.0])).unwrap();
        // a copy under a new name, unscaled
        add_dense_item_feature(&mut ds, "c2", "cover", DenseEncoding::MultiHot).unwrap();
        assert_eq!(column(&ds, "c2"), vec![3.0, -1.0, 0.5, 0.0]);
        // in place: the field takes the role
        add_dense_item_feature(&mut ds, "cover", "cover", DenseEncoding::MultiHot).unwrap();
        let meta = ds.items.as_ref().unwrap().field("cover").unwrap().1;
        assert_eq!((meta.role, meta.dim()), (Role::Modality, 2));
        // a float is one dimension
        add_dense_item_feature(&mut ds, "p", "price", DenseEncoding::MultiHot).unwrap();
        assert_eq!(column(&ds, "p"), vec![9.5, 12.0]);
        let e = add_dense_item_feature(&mut ds, "h", "cover", DenseEncoding::HashedWords(8))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'cover'") && e.contains("hash"), "{e}");
        let e = add_dense_item_feature(&mut ds, "price", "price", DenseEncoding::MultiHot)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'price'") && e.contains("float"), "{e}");
    }

    #[test]
    fn hashed_words_count_lower_cased_words() {
        let mut ds = with_items();
        add_dense_item_feature(&mut ds, "h", "title", DenseEncoding::HashedWords(16)).unwrap();
        let v = column(&ds, "h");
        let (toy, story) = ((fnv1a("toy") % 16) as usize, (fnv1a("story") % 16) as usize);
        assert_ne!(toy, story);
        // "Toy" and "toy" share a bucket: counts (2, 1) scaled to unit norm.
        let n = 5f32.sqrt();
        assert!((v[toy] - 2.0 / n).abs() < 1e-6 && (v[story] - 1.0 / n).abs() < 1e-6);
        assert!(v[16..].iter().all(|&x| x == 0.0));
    }

    #[test]
    fn joined_fields_concatenate_or_share_buckets() {
        let mut ds = with_items();
        // Multi-hot: genre (3 entries) then title (3 entries); item a has
        // Action, War and Toy, Story, toy (five ones), item b nothing.
        add_dense_item_feature(&mut ds, "q", "genre+title", DenseEncoding::MultiHot).unwrap();
        let s = 1.0 / 5f32.sqrt();
        let v = column(&ds, "q");
        assert_eq!(v.len(), 12);
        assert_eq!(&v[..6], &[s, 0.0, s, s, s, s]);
        assert!(v[6..].iter().all(|&x| x == 0.0));
        // Hashed: the genre words and the title words in the same buckets.
        add_dense_item_feature(
            &mut ds,
            "h",
            "genre + title",
            DenseEncoding::HashedWords(64),
        )
        .unwrap();
        let v = column(&ds, "h");
        let mut want = [0f32; 64];
        for w in ["action", "war", "toy", "story", "toy"] {
            want[(fnv1a(w) % 64) as usize] += 1.0;
        }
        let n = want.iter().map(|x| x * x).sum::<f32>().sqrt();
        for (a, b) in v[..64].iter().zip(want) {
            assert!((a - b / n).abs() < 1e-6);
        }
        let e = add_dense_item_feature(&mut ds, "y", "genre+nope", DenseEncoding::MultiHot);
        assert!(e.unwrap_err().to_string().contains("no item field 'nope'"));
    }

    #[test]
    fn bad_requests_name_the_field() {
        let mut ds = with_items();
        let e = add_dense_item_feature(&mut ds, "x", "nope", DenseEncoding::MultiHot);
        assert!(e.unwrap_err().to_string().contains("no item field 'nope'"));
        let e = add_dense_item_feature(&mut ds, "genre", "genre", DenseEncoding::MultiHot);
        assert!(e.unwrap_err().to_string().contains("already"));
        let e = add_dense_item_feature(&mut ds, "y", "title", DenseEncoding::HashedWords(0));
        assert!(e.unwrap_err().to_string().contains("zero dimensions"));
    }
}
