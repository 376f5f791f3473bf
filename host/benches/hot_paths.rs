//! Criterion benchmarks of the hot paths: row-sparse gather and row-wise Adam
//! update (independent of table size), top-K selection for all-ranking, and
//! history assembly (`history` / `history_mask` for a batch of 1024, L = 50),
//! and the executor's CPU kernels against candle's own ops (`exec::kernels`:
//! the sum over a leading dimension, which is a broadcast's backward, and a
//! materialised broadcast, on DIN's largest activation `[256 * 2 * 50, 80]`).
//! End-to-end throughput: `metrics.jsonl` of any run has `examples_per_second`.

use candle_core::{DType, Device};
use causalrec_host::eval::top_k;
use causalrec_host::exec::store::{OptimConfig, TableStore};
use causalrec_host::exec::Batch;
use causalrec_host::history::{Histories, HistoryOf};
use causalrec_sdk::Init;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

fn ids(n: usize, rows: usize) -> Vec<u32> {
    // A fixed pseudo-random sequence (LCG) so runs compare.
    let mut x: u64 = 12345;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 33) % rows as u64) as u32
        })
        .collect()
}

fn sparse_store(c: &mut Criterion) {
    let mut group = c.benchmark_group("table");
    for rows in [10_000usize, 1_000_000] {
        let mut store = TableStore::new(1);
        store.declare("t", rows, 64, Init::normal(0.1)).unwrap();
        let cfg = OptimConfig::default();
        // 1024 rows (one thread) and 8192 (a field model's step: in parallel).
        for n in [1024usize, 8192] {
            let mut batch = ids(n, rows);
            batch.sort_unstable();
            batch.dedup();
            let grads = vec![0.01f32; batch.len() * 64];
            // First update allocates the optimizer state; keep it out of the timing.
            store
                .tables
                .get_mut("t")
                .unwrap()
                .update(&batch, &grads, &cfg);
            if n == 1024 {
                group.bench_with_input(BenchmarkId::new("gather_1024x64", rows), &rows, |b, _| {
                    b.iter(|| store.gather("t", &batch, DType::F32, &Device::Cpu).unwrap())
                });
            }
            group.bench_with_input(
                BenchmarkId::new(format!("adam_update_{n}x64"), rows),
                &rows,
                |b, _| {
                    b.iter(|| {
                        store
                            .tables
                            .get_mut("t")
                            .unwrap()
                            .update(&batch, &grads, &cfg)
                    })
                },
            );
        }
    }
    group.finish();
}

fn ranking(c: &mut Criterion) {
    let scores: Vec<f32> = ids(20_000, 1_000_000)
        .into_iter()
        .map(|x| x as f32)
        .collect();
    let excluded: Vec<u32> = (0..20_000).step_by(7).collect();
    c.bench_function("top_k_20_of_20000", |b| {
        b.iter(|| top_k(&scores, 20, &excluded))
    });
}

fn histories(c: &mut Criterion) {
    // 100k positives of 1,000 users over 10,000 items.
    let (users, items) = (ids(100_000, 1_000), ids(100_000, 10_000));
    let pos: Vec<(u32, u32, f64)> = users
        .iter()
        .zip(&items)
        .enumerate()
        .map(|(k, (&u, &i))| (u, i, k as f64))
        .collect();
    let h = Histories::build(1_000, &pos, 50);
    let keys: Vec<HistoryOf> = ids(1024, 100_000)
        .into_iter()
        .map(|k| HistoryOf::TrainPositive(k as usize))
        .collect();
    c.bench_function("history_batch_1024x50", |b| {
        b.iter(|| {
            let mut batch = Batch::default();
            h.add_to(&mut batch, &keys, &Device::Cpu).unwrap();
            batch
        })
    });
}

fn kernels(c: &mut Criterion) {
    use candle_core::{Shape, Tensor, Var};
    use causalrec_host::exec::kernels;
    let (n, h) = (256 * 2 * 50, 80);
    let v: Vec<f32> = ids(n * h, 1000)
        .into_iter()
        .map(|x| x as f32 * 1e-3)
        .collect();
    let x = Tensor::from_vec(v, (n, h), &Device::Cpu).unwrap();
    let mut group = c.benchmark_group("sum_dim0_25600x80");
    group.bench_function("kernel", |b| {
        b.iter(|| kernels::sum_keepdim(&x, 0).unwrap())
    });
    group.bench_function("candle", |b| b.iter(|| x.sum_keepdim(0).unwrap()));
    group.finish();
    // A broadcast's forward (materialised); its backward is the sum above.
    let bias = Var::from_tensor(&Tensor::ones(h, DType::F32, &Device::Cpu).unwrap()).unwrap();
    let shape = Shape::from((n, h));
    let mut group = c.benchmark_group("broadcast_80_to_25600x80");
    group.bench_function("kernel", |b| {
        b.iter(|| kernels::expand(bias.as_tensor(), &shape).unwrap())
    });
    group.bench_function("candle_contiguous", |b| {
        b.iter(|| {
            bias.as_tensor()
                .broadcast_as(&shape)
                .unwrap()
                .contiguous()
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, sparse_store, ranking, histories, kernels);
criterion_main!(benches);
