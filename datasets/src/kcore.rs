//! k-core filtering: repeatedly drops interactions of users with fewer
//! than `user_k` and items with fewer than `item_k` interactions until every
//! remaining user and item has enough, then renumbers ids densely with
//! their feature rows and the data set's parts kept aligned.

use std::collections::BTreeMap;

use crate::table::Dataset;

/// The `(user_k, item_k)`-core of `ds`: the largest set of interactions in
/// which every user has at least `user_k` and every item at least `item_k`
/// interactions (each interaction row counts, repeats included).
///
/// Removal is iterated until nothing changes (dropping an item can push a
/// user below `user_k`, and so on). The result is renumbered as
/// [`Dataset::compact`] does (by first appearance among the kept rows); the
/// user and item feature tables follow their ids, and each of
/// [`Dataset::parts`] keeps its surviving rows under their new indices.
/// `k_core(ds, 0, 0)` and `k_core(ds, 1, 1)` keep everything.
pub fn k_core(ds: &Dataset, user_k: usize, item_k: usize) -> Dataset {
    let users = ds.user_col();
    let items = ds.item_col();
    let mut keep = vec![true; ds.n_inter()];
    loop {
        let mut n_user = vec![0usize; ds.n_users];
        let mut n_item = vec![0usize; ds.n_items];
        for (r, _) in keep.iter().enumerate().filter(|(_, k)| **k) {
            n_user[users[r] as usize] += 1;
            n_item[items[r] as usize] += 1;
        }
        let mut changed = false;
        for (r, k) in keep.iter_mut().enumerate() {
            if *k && (n_user[users[r] as usize] < user_k || n_item[items[r] as usize] < item_k) {
                *k = false;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let rows: Vec<usize> = (0..keep.len()).filter(|&r| keep[r]).collect();
    let mut new_row = vec![usize::MAX; keep.len()];
    for (new, &old) in rows.iter().enumerate() {
        new_row[old] = new;
    }
    let parts: BTreeMap<String, Vec<usize>> = ds
        .parts
        .iter()
        .map(|(name, part)| {
            let kept = part
                .iter()
                .filter(|&&r| keep.get(r).copied().unwrap_or(false))
                .map(|&r| new_row[r])
                .collect();
            (name.clone(), kept)
        })
        .collect();
    Dataset {
        name: ds.name.clone(),
        inter: ds.inter.take(&rows),
        users: ds.users.clone(),
        items: ds.items.clone(),
        n_users: ds.n_users,
        n_items: ds.n_items,
        user_ids: ds.user_ids.clone(),
        item_ids: ds.item_ids.clone(),
        parts,
    }
    .compact()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{Column, FieldKind, FieldMeta, Role, Table};

    /// Users a..d, items w..z; interactions (rows 0..8)
    /// (a,x) (a,y) (a,z) (b,x) (b,y) (c,x) (c,w) (d,w); item feature
    /// `price` x=1 y=2 z=3 w=4; user feature `age` a=10 b=20 c=30 d=40;
    /// parts train = rows 0..4, test = rows 4..8.
    fn toy() -> Dataset {
        let user_ids: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let item_ids: Vec<String> = ["x", "y", "z", "w"].map(String::from).to_vec();
        let mut inter = Table::new();
        let mut um = FieldMeta::new("user_id", FieldKind::Token, Role::User);
        um.vocab = user_ids.clone();
        let mut im = FieldMeta::new("item_id", FieldKind::Token, Role::Item);
        im.vocab = item_ids.clone();
        inter
            .push(um, Column::Token(vec![0, 0, 0, 1, 1, 2, 2, 3]))
            .unwrap();
        inter
            .push(im, Column::Token(vec![0, 1, 2, 0, 1, 0, 3, 3]))
            .unwrap();
        inter
            .push(
                FieldMeta::new("timestamp", FieldKind::Float, Role::Timestamp),
                Column::Float64((0..8).map(|t| 1e9 + t as f64).collect()),
            )
            .unwrap();
        let mut items = Table::new();
        items
            .push(
                FieldMeta::new("price", FieldKind::Float, Role::Feature),
                Column::Float(vec![1.0, 2.0, 3.0, 4.0]),
            )
            .unwrap();
        let mut users = Table::new();
        users
            .push(
                FieldMeta::new("age", FieldKind::Float, Role::Feature),
                Column::Float(vec![10.0, 20.0, 30.0, 40.0]),
            )
            .unwrap();
        let ds = Dataset {
            name: "toy".into(),
            inter,
            users: Some(users),
            items: Some(items),
            n_users: 4,
            n_items: 4,
            user_ids,
            item_ids,
            parts: [
                ("train".to_string(), vec![0, 1, 2, 3]),
                ("test".to_string(), vec![4, 5, 6, 7]),
            ]
            .into(),
        };
        ds.validate().unwrap();
        ds
    }

    #[test]
    fn two_core_by_hand() {
        // Pass 1 drops (a,z) (z has 1) and (d,w) (d has 1); pass 2 drops
        // (c,w) (w now has 1); pass 3 drops (c,x) (c now has 1); pass 4
        // changes nothing. Left: (a,x) (a,y) (b,x) (b,y) = old rows 0 1 3 4.
        let ds = k_core(&toy(), 2, 2);
        ds.validate().unwrap();
        assert_eq!((ds.n_users, ds.n_items, ds.n_inter()), (2, 2, 4));
        assert_eq!(ds.user_ids, ["a", "b"]);
        assert_eq!(ds.item_ids, ["x", "y"]);
        assert_eq!(ds.user_col(), &[0, 0, 1, 1]);
        assert_eq!(ds.item_col(), &[0, 1, 0, 1]);
        assert_eq!(
            ds.timestamp_col().unwrap().as_ref(),
            &[1e9, 1e9 + 1.0, 1e9 + 3.0, 1e9 + 4.0]
        );
        let items = ds.items.as_ref().unwrap();
        assert_eq!(items.columns[0], Column::Float(vec![1.0, 2.0]));
        let users = ds.users.as_ref().unwrap();
        assert_eq!(users.columns[0], Column::Float(vec![10.0, 20.0]));
        assert_eq!(ds.parts["train"], [0, 1, 2]);
        assert_eq!(ds.parts["test"], [3]);
    }

    #[test]
    fn user_and_item_thresholds_differ() {
        // users with >= 3: only a; items then need >= 1: x y z stay.
        let ds = k_core(&toy(), 3, 1);
        assert_eq!(ds.user_ids, ["a"]);
        assert_eq!(ds.item_ids, ["x", "y", "z"]);
        assert_eq!(ds.n_inter(), 3);
        assert_eq!(
            ds.items.as_ref().unwrap().columns[0],
            Column::Float(vec![1.0, 2.0, 3.0])
        );
        assert_eq!(ds.parts["train"], [0, 1, 2]);
        assert!(ds.parts["test"].is_empty());
        // items with >= 3: only x; (a,x) (b,x) (c,x) each user 1 >= 1.
        let ds = k_core(&toy(), 1, 3);
        assert_eq!(ds.item_ids, ["x"]);
        assert_eq!(ds.user_ids, ["a", "b", "c"]);
        assert_eq!(
            ds.users.as_ref().unwrap().columns[0],
            Column::Float(vec![10.0, 20.0, 30.0])
        );
    }

    #[test]
    fn trivial_and_empty_cores() {
        let toy = toy();
        assert_eq!(k_core(&toy, 1, 1), toy);
        assert_eq!(k_core(&toy, 0, 0), toy);
        let empty = k_core(&toy, 5, 5);
        empty.validate().unwrap();
        assert_eq!((empty.n_users, empty.n_items, empty.n_inter()), (0, 0, 0));
        assert_eq!(empty.items.as_ref().unwrap().n_rows(), 0);
    }
}
