//! A seeded synthetic data set: the bundled quick-start data.
//!
//! [`generate`] builds a small latent-factor world. Users and items have
//! factors drawn from `N(0, 1/dim)`; each item has one or two genres (a
//! `genre` token_seq field with [`Role::Group`]) whose centroids shift its
//! factor; each user has an `age_group` (5 values) and a `gender`
//! (2 values) token feature correlated with the user factor. Item
//! popularity is Zipf-like. Each interaction picks a user uniformly (among
//! users with unseen items left), an unseen item with probability
//! proportional to `popularity * exp(1.5 * affinity)` where
//! `affinity = sqrt(dim) * (u . v)`, a rating in 1..=5 from
//! `round(3 + 1.3 * affinity + noise)`, and a strictly increasing
//! timestamp. Every (user, item) pair occurs at most once. The same config
//! gives the same data set (a [`ChaCha8Rng`] drives everything).
//!
//! The bundled copy lives in `datasets/bundled/synth-small/` (see
//! [`bundled_dir`], [`load_bundled`]).
//!
//! [`uniform_log`] is the benchmark's log: uniform random user-item pairs of
//! any size (no features), built without per-user world state so that
//! `host bench train` can ask for tables of 10^7 rows.

use std::path::PathBuf;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::atomic::{load_atomic, AtomicOptions};
use crate::error::Result;
use crate::table::{Column, Dataset, FieldKind, FieldMeta, Role, Table, PAD};

/// The name (file stem) of the bundled synthetic data set.
pub const BUNDLED_NAME: &str = "synth-small";

/// The labels of the `age_group` user feature, youngest first.
pub const AGE_GROUPS: [&str; 5] = ["18-24", "25-34", "35-44", "45-54", "55+"];

/// The parameters of [`generate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SynthConfig {
    /// The number of users drawn (users never sampled are dropped, as
    /// [`load_atomic`] would).
    pub n_users: usize,
    /// The number of items drawn (items never sampled are dropped).
    pub n_items: usize,
    /// The number of interactions; capped at `n_users * n_items` since a
    /// pair occurs at most once.
    pub n_inter: usize,
    /// The latent dimension (0 is treated as 1).
    pub dim: usize,
    /// The number of genres (0 gives items without genres).
    pub n_genres: usize,
    /// The random seed.
    pub seed: u64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            n_users: 600,
            n_items: 400,
            n_inter: 20_000,
            dim: 8,
            n_genres: 6,
            seed: 7,
        }
    }
}

/// A standard normal draw (Box-Muller; one of the pair is used).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn normal_vec(rng: &mut ChaCha8Rng, d: usize, scale: f64) -> Vec<f64> {
    (0..d).map(|_| normal(rng) * scale).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn unit(mut v: Vec<f64>) -> Vec<f64> {
    let n = dot(&v, &v).sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    v
}

/// Generates the synthetic data set described in the module documentation.
///
/// Users and items are numbered by first appearance in the interactions and
/// token vocabularies by first appearance in their table, exactly as
/// [`load_atomic`] numbers them, so that writing the result with
/// [`crate::atomic::write_atomic`] and reading it back with
/// [`synth_options`] gives an equal [`Dataset`] (up to its `name`).
pub fn generate(cfg: &SynthConfig) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let d = cfg.dim.max(1);
    let scale = 1.0 / (d as f64).sqrt();
    let (nu, ni, ng) = (cfg.n_users, cfg.n_items, cfg.n_genres);

    // Genres and items.
    let centroids: Vec<Vec<f64>> = (0..ng).map(|_| normal_vec(&mut rng, d, scale)).collect();
    let mut item_genres: Vec<Vec<u32>> = Vec::with_capacity(ni);
    let mut item_f: Vec<Vec<f64>> = Vec::with_capacity(ni);
    for _ in 0..ni {
        let mut genres = Vec::new();
        if ng > 0 {
            let g1 = rng.random_range(0..ng);
            genres.push(g1);
            if ng > 1 && rng.random_bool(0.5) {
                genres.push((g1 + 1 + rng.random_range(0..ng - 1)) % ng);
            }
        }
        let noise = normal_vec(&mut rng, d, scale);
        let v: Vec<f64> = (0..d)
            .map(|k| {
                let shift = if genres.is_empty() {
                    0.0
                } else {
                    genres.iter().map(|&g| centroids[g][k]).sum::<f64>() / genres.len() as f64
                };
                std::f64::consts::FRAC_1_SQRT_2 * (noise[k] + shift)
            })
            .collect();
        item_genres.push(genres.iter().map(|&g| g as u32 + 1).collect());
        item_f.push(v);
    }

    // Users and their demographic features.
    let age_dir = unit(normal_vec(&mut rng, d, 1.0));
    let gender_dir = unit(normal_vec(&mut rng, d, 1.0));
    let sd = (d as f64).sqrt();
    let mut user_f: Vec<Vec<f64>> = Vec::with_capacity(nu);
    let mut age: Vec<u32> = Vec::with_capacity(nu);
    let mut gender: Vec<u32> = Vec::with_capacity(nu);
    for _ in 0..nu {
        let u = normal_vec(&mut rng, d, scale);
        let z_age = dot(&u, &age_dir) * sd + 0.5 * normal(&mut rng);
        let bucket = [-0.84, -0.25, 0.25, 0.84]
            .iter()
            .filter(|&&edge| z_age > edge)
            .count();
        age.push(bucket as u32 + 1);
        let z_gender = dot(&u, &gender_dir) * sd + 0.5 * normal(&mut rng);
        gender.push(if z_gender > 0.0 { 1 } else { 2 });
        user_f.push(u);
    }

    // Zipf-like popularity over a random ranking of the items.
    let mut ranking: Vec<usize> = (0..ni).collect();
    ranking.shuffle(&mut rng);
    let mut pop = vec![0.0f64; ni];
    for (rank, &j) in ranking.iter().enumerate() {
        pop[j] = 1.0 / (rank as f64 + 1.0);
    }

    // Interactions.
    let n_inter = cfg.n_inter.min(nu.saturating_mul(ni));
    let mut weights: Vec<Option<Vec<f64>>> = vec![None; nu];
    let mut active: Vec<usize> = (0..nu).collect();
    let (mut users, mut items) = (Vec::with_capacity(n_inter), Vec::with_capacity(n_inter));
    let (mut ratings, mut times) = (Vec::with_capacity(n_inter), Vec::with_capacity(n_inter));
    let mut clock = 0u64;
    while users.len() < n_inter && !active.is_empty() {
        let slot = rng.random_range(0..active.len());
        let u = active[slot];
        let w = weights[u].get_or_insert_with(|| {
            (0..ni)
                .map(|j| pop[j] * (1.5 * sd * dot(&user_f[u], &item_f[j])).exp())
                .collect()
        });
        let total: f64 = w.iter().sum();
        if total <= 0.0 || !total.is_finite() {
            active.swap_remove(slot);
            continue;
        }
        let target = rng.random::<f64>() * total;
        let mut acc = 0.0;
        let mut pick = None;
        for (j, &x) in w.iter().enumerate() {
            if x > 0.0 {
                acc += x;
                pick = Some(j);
                if acc > target {
                    break;
                }
            }
        }
        let Some(j) = pick else {
            active.swap_remove(slot);
            continue;
        };
        w[j] = 0.0;
        let aff = sd * dot(&user_f[u], &item_f[j]);
        let rating = (3.0 + 1.3 * aff + 0.6 * normal(&mut rng))
            .round()
            .clamp(1.0, 5.0);
        clock += rng.random_range(1..=120u64);
        users.push(u as u32);
        items.push(j as u32);
        ratings.push(rating as f32);
        times.push(clock as f64); // exact: timestamps are f64 columns
    }

    // Assemble, then number everything as the atomic loader would.
    let user_ids: Vec<String> = (1..=nu).map(|u| u.to_string()).collect();
    let item_ids: Vec<String> = (1..=ni).map(|j| j.to_string()).collect();
    let mut inter = Table::new();
    let mut um = FieldMeta::new("user_id", FieldKind::Token, Role::User);
    um.vocab = user_ids.clone();
    let mut im = FieldMeta::new("item_id", FieldKind::Token, Role::Item);
    im.vocab = item_ids.clone();
    let columns = [
        (um, Column::Token(users)),
        (im, Column::Token(items)),
        (
            FieldMeta::new("rating", FieldKind::Float, Role::Rating),
            Column::Float(ratings),
        ),
        (
            FieldMeta::new("timestamp", FieldKind::Float, Role::Timestamp),
            Column::Float64(times),
        ),
    ];
    for (meta, col) in columns {
        inter.push(meta, col).expect("columns built equally long");
    }

    let mut user_table = Table::new();
    let mut am = FieldMeta::new("age_group", FieldKind::Token, Role::Feature);
    am.vocab.extend(AGE_GROUPS.iter().map(|s| s.to_string()));
    let mut gm = FieldMeta::new("gender", FieldKind::Token, Role::Feature);
    gm.vocab.extend(["F".to_string(), "M".to_string()]);
    user_table
        .push(am, Column::Token(age))
        .expect("fresh table");
    user_table
        .push(gm, Column::Token(gender))
        .expect("fresh table");

    let mut item_table = Table::new();
    let mut genre = FieldMeta::new("genre", FieldKind::TokenSeq, Role::Group);
    genre.vocab.extend((1..=ng).map(|g| format!("g{g}")));
    let mut offsets = vec![0u32];
    let mut values = Vec::new();
    for g in &item_genres {
        values.extend_from_slice(g);
        offsets.push(values.len() as u32);
    }
    item_table
        .push(genre, Column::TokenSeq { offsets, values })
        .expect("fresh table");

    let mut ds = Dataset {
        name: "synthetic".into(),
        inter,
        users: Some(user_table),
        items: Some(item_table),
        n_users: nu,
        n_items: ni,
        user_ids,
        item_ids,
        parts: Default::default(),
    }
    .compact();
    for t in [ds.users.as_mut(), ds.items.as_mut()].into_iter().flatten() {
        renumber_vocab(t);
    }
    ds
}

/// Renumbers every token field of `t` by first appearance in row order
/// (padding stays 0), drops unused tokens, and sets `max_len` of sequence
/// fields to the longest row.
fn renumber_vocab(t: &mut Table) {
    for (meta, col) in t.fields.iter_mut().zip(t.columns.iter_mut()) {
        let ids: &mut Vec<u32> = match col {
            Column::Token(v) => v,
            Column::TokenSeq { values, .. } => values,
            _ => continue,
        };
        let mut new_of_old = vec![u32::MAX; meta.vocab.len()];
        new_of_old[0] = 0;
        let mut vocab = vec![PAD.to_string()];
        for id in ids.iter_mut() {
            let slot = &mut new_of_old[*id as usize];
            if *slot == u32::MAX {
                *slot = vocab.len() as u32;
                vocab.push(meta.vocab[*id as usize].clone());
            }
            *id = *slot;
        }
        meta.vocab = vocab;
        if meta.kind.is_seq() {
            meta.max_len = col.max_seq_len();
        }
    }
}

/// The loader options for the synthetic data: the defaults plus
/// `genre` as [`Role::Group`].
pub fn synth_options() -> AtomicOptions {
    AtomicOptions::default().with_role("genre", Role::Group)
}

/// The directory holding the bundled synthetic data set
/// (`datasets/bundled/synth-small` in the source tree).
pub fn bundled_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/bundled/",
        "synth-small"
    ))
}

/// Loads the bundled synthetic data set (`generate(&SynthConfig::default())`
/// as written to [`bundled_dir`]).
pub fn load_bundled() -> Result<Dataset> {
    load_atomic(&bundled_dir(), BUNDLED_NAME, &synth_options())
}

/// A log of `max(n_inter, n_users, n_items)` interactions over `n_users` x
/// `n_items` (raw ids are the decimal dense ids), rating 5, increasing
/// timestamps: row `t` has user `t` while `t < n_users` and item `t` while
/// `t < n_items` (every id occurs), the rest are uniform random; repeats
/// are possible. For throughput benchmarks.
pub fn uniform_log(n_users: usize, n_items: usize, n_inter: usize, seed: u64) -> Result<Dataset> {
    use crate::readers::columns::{dataset, float_field, id_field, table, time_field};
    if n_users == 0 || n_items == 0 || n_inter == 0 {
        return Err(crate::error::DataError::Config(format!(
            "uniform_log: users ({n_users}), items ({n_items}) and interactions ({n_inter}) must be > 0"
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n_inter = n_inter.max(n_users).max(n_items);
    let mut draw = |t: usize, n: usize| {
        let r = rng.random_range(0..n as u32);
        if t < n {
            t as u32
        } else {
            r
        }
    };
    let users: Vec<u32> = (0..n_inter).map(|t| draw(t, n_users)).collect();
    let items: Vec<u32> = (0..n_inter).map(|t| draw(t, n_items)).collect();
    let user_raw: Vec<String> = (0..n_users).map(|u| u.to_string()).collect();
    let item_raw: Vec<String> = (0..n_items).map(|i| i.to_string()).collect();
    let inter = table(vec![
        id_field("user_id", Role::User, users, &user_raw),
        id_field("item_id", Role::Item, items, &item_raw),
        float_field("rating", Role::Rating, vec![5.0; n_inter]),
        time_field("timestamp", (0..n_inter).map(|t| t as f64).collect()),
    ])?;
    dataset(
        "uniform-log",
        inter,
        None,
        None,
        user_raw,
        item_raw,
        Default::default(),
    )
}

/// Adds one dense item feature field per name (`float_seq` of `width`
/// standard-normal values per item, role `modality`, e.g. MMGCN's visual /
/// acoustic / textual features) to `ds`'s item table, creating the table if
/// there is none. For throughput benchmarks of multi-modal backbones.
pub fn add_random_modalities(
    ds: &mut Dataset,
    names: &[&str],
    width: usize,
    seed: u64,
) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = ds.n_items;
    let mut items = ds.items.take().unwrap_or_default();
    for name in names {
        let values: Vec<f32> = (0..n * width)
            .map(|_| {
                // Box-Muller.
                let u1: f64 = rng.random::<f64>().max(1e-300);
                let u2: f64 = rng.random::<f64>();
                ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
            })
            .collect();
        let offsets: Vec<u32> = (0..=n).map(|i| (i * width) as u32).collect();
        let mut meta = FieldMeta::new(*name, FieldKind::FloatSeq, Role::Modality);
        meta.max_len = width;
        items.push(meta, Column::FloatSeq { offsets, values })?;
    }
    ds.items = Some(items);
    ds.validate()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_modalities_are_dense_item_fields() {
        let mut ds = uniform_log(5, 7, 20, 1).unwrap();
        add_random_modalities(&mut ds, &["visual", "textual"], 4, 2).unwrap();
        let items = ds.items.as_ref().unwrap();
        for name in ["visual", "textual"] {
            let (_, meta) = items.field(name).unwrap();
            assert_eq!((meta.role, meta.max_len), (Role::Modality, 4));
            match items.column(name).unwrap() {
                Column::FloatSeq { offsets, values } => {
                    assert_eq!((offsets.len(), values.len()), (8, 28));
                    let mean = values.iter().sum::<f32>() / 28.0;
                    assert!(mean.abs() < 0.6 && values.iter().any(|&v| v != 0.0));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn uniform_log_covers_every_id() {
        let ds = uniform_log(5, 8, 6, 1).unwrap();
        // max(6, 5, 8) rows; every user and item occurs.
        assert_eq!((ds.n_users, ds.n_items, ds.n_inter()), (5, 8, 8));
        assert!(uniform_log(0, 8, 6, 1)
            .unwrap_err()
            .to_string()
            .contains("must be > 0"));
        let big = uniform_log(3, 4, 1000, 2).unwrap();
        assert_eq!(big.n_inter(), 1000);
    }
    use crate::atomic::write_atomic;

    fn small(seed: u64) -> SynthConfig {
        SynthConfig {
            n_users: 50,
            n_items: 40,
            n_inter: 600,
            dim: 4,
            n_genres: 3,
            seed,
        }
    }

    #[test]
    fn same_seed_same_data_different_seed_different() {
        assert_eq!(generate(&small(1)), generate(&small(1)));
        assert_ne!(generate(&small(1)).inter, generate(&small(2)).inter);
    }

    #[test]
    fn values_are_in_range_and_the_contract_holds() {
        let cfg = SynthConfig::default();
        let ds = generate(&cfg);
        ds.validate().unwrap();
        assert_eq!(ds.n_inter(), cfg.n_inter);
        assert!(ds.n_users <= cfg.n_users && ds.n_items <= cfg.n_items);
        assert!(ds.user_col().iter().all(|&u| (u as usize) < ds.n_users));
        assert!(ds.item_col().iter().all(|&i| (i as usize) < ds.n_items));
        let r = ds.rating_col().unwrap();
        assert!(r
            .iter()
            .all(|&x| (1.0..=5.0).contains(&x) && x.fract() == 0.0));
        for k in 1..=5 {
            assert!(r.contains(&(k as f32)), "rating {k} never drawn");
        }
        let t = ds.timestamp_col().unwrap();
        assert!(
            t.windows(2).all(|w| w[0] < w[1]),
            "timestamps strictly increase"
        );
        let mut pairs: Vec<(u32, u32)> = ds
            .user_col()
            .iter()
            .copied()
            .zip(ds.item_col().iter().copied())
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        assert_eq!(pairs.len(), ds.n_inter(), "pairs are unique");
        let groups = ds.items_of_role(Role::Group);
        assert_eq!(groups.len(), 1);
        let (meta, col) = groups[0];
        assert_eq!(meta.vocab_size(), 1 + cfg.n_genres);
        assert!((0..ds.n_items).all(|i| (1..=2).contains(&col.seq(i).len())));
        let users = ds.users.as_ref().unwrap();
        assert_eq!(users.field("age_group").unwrap().1.vocab_size(), 6);
        assert_eq!(users.field("gender").unwrap().1.vocab_size(), 3);
    }

    #[test]
    fn popularity_is_long_tailed() {
        let ds = generate(&SynthConfig::default());
        let mut counts = vec![0usize; ds.n_items];
        for &i in ds.item_col() {
            counts[i as usize] += 1;
        }
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let top: usize = counts[..counts.len() / 10].iter().sum();
        // the top 10% of items get far more than 10% of interactions
        assert!(top * 4 > ds.n_inter(), "top decile has {top}");
    }

    #[test]
    fn ratings_follow_affinity_features_follow_factors() {
        // Users of the two genders differ in which genres they rate highly
        // only through the shared factor; a weak but robust check is that
        // ratings are not constant per item.
        let ds = generate(&SynthConfig::default());
        let r = ds.rating_col().unwrap();
        let mean = r.iter().map(|&x| x as f64).sum::<f64>() / r.len() as f64;
        let var = r.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / r.len() as f64;
        assert!(var > 0.5, "rating variance {var}");
    }

    #[test]
    fn degenerate_configs_do_not_panic() {
        for cfg in [
            SynthConfig {
                n_users: 0,
                ..small(0)
            },
            SynthConfig {
                n_items: 0,
                ..small(0)
            },
            SynthConfig {
                dim: 0,
                n_genres: 0,
                ..small(0)
            },
            SynthConfig {
                n_users: 3,
                n_items: 2,
                n_inter: 100,
                n_genres: 1,
                ..small(0)
            },
        ] {
            let ds = generate(&cfg);
            ds.validate().unwrap();
            assert!(ds.n_inter() <= cfg.n_users * cfg.n_items);
        }
    }

    #[test]
    fn write_then_load_gives_the_same_data_set() {
        let ds = generate(&small(3));
        let dir = std::env::temp_dir().join(format!("causalrec-synth-rt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        write_atomic(&ds, &dir, "s").unwrap();
        let mut back = load_atomic(&dir, "s", &synth_options()).unwrap();
        back.name = ds.name.clone();
        assert_eq!(back, ds);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
