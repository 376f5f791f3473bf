//! The parallel row update of the row-sparse store (`Table::update`)
//! against one row at a time. In its own test binary: it keeps both cores
//! busy, which would disturb the step-time test of `sparse_store.rs`.

mod common;

use causalrec_host::exec::store::{OptimConfig, TableState};
use causalrec_sdk::Init;
use common::uniform_f32;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A large step of distinct rows (updated in parallel) gives the same bits
/// as the same rows updated one call at a time, for every optimizer and
/// either state policy (eager: a row's slot is the row; lazy: slots given
/// in order); and a large step that lists a row twice (updated in order)
/// gives the bits of the same occurrences updated one call at a time.
#[test]
fn parallel_row_updates_match_one_row_at_a_time() {
    use causalrec_host::exec::store::Table;
    let policies = [TableState::Eager, TableState::Lazy];
    for (kind, table_state) in ["adam", "adagrad", "sgd"]
        .into_iter()
        .flat_map(|k| policies.map(|p| (k, p)))
    {
        let cfg = OptimConfig {
            kind: kind.into(),
            lr: 0.05,
            l2: 0.1,
            table_state,
            ..OptimConfig::default()
        };
        // 5,000 rows of 32 floats: past the parallel threshold (2048 x 64 floats).
        let (rows, dim, n) = (20_000usize, 32usize, 5_000usize);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut pick: Vec<u32> = (0..rows as u32).collect();
        for step in 0..3u64 {
            // Distinct rows, then the same with one row repeated at the end.
            for i in 0..n {
                let j = rng.random_range(i..rows);
                pick.swap(i, j);
            }
            let mut ids = pick[..n].to_vec();
            if step == 2 {
                ids.push(ids[17]);
            }
            let g = uniform_f32(step, ids.len() * dim);
            let mut a = Table::new(rows, dim, Init::normal(0.1), 9);
            let mut b = Table::new(rows, dim, Init::normal(0.1), 9);
            for _ in 0..2 {
                a.update(&ids, &g, &cfg);
                for (k, &r) in ids.iter().enumerate() {
                    b.update(&[r], &g[k * dim..(k + 1) * dim], &cfg);
                }
            }
            assert_eq!(a.data(), b.data(), "{kind}, {table_state:?}, step {step}");
            if kind != "sgd" {
                assert_eq!(a.state_rows(), n, "{kind}, {table_state:?}");
            }
        }
    }
}
