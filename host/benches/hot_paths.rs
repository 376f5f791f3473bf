//! Criterion benchmarks of the hot paths: row-sparse gather and row-wise Adam
//! update (independent of table size), top-K selection for all-ranking, and
//! history assembly (`history` / `history_mask` for a batch of 1024, L = 50),
//! and the executor's CPU kernels against candle's own ops (`exec::kernels`:
//! the sum over a leading dimension, which is a broadcast's backward, and a
//! materialised broadcast, on DIN's largest activation `[256 * 2 * 50, 80]`),
//! and the fused ops (FM's bi-interaction, dropout, Dice) against the same
//! math in candle's ops, forward and backward, and the evaluation
//! allocator's reuse of a freed large block against the system's fresh pages.
//! End-to-end throughput: `metrics.jsonl` of any run has `examples_per_second`.

use candle_core::{DType, Device, Shape, Tensor, Var};
use causalrec_host::eval::{auc_of_candidates, top_k};
use causalrec_host::exec::kernels;
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
        // A one-wide table (FM's and NFM's linear terms): per-row overhead.
        store.declare("w", rows, 1, Init::normal(0.1)).unwrap();
        let mut batch = ids(8192, rows);
        batch.sort_unstable();
        batch.dedup();
        let grads = vec![0.01f32; batch.len()];
        let table = store.tables.get_mut("w").unwrap();
        table.update(&batch, &grads, &cfg);
        group.bench_with_input(
            BenchmarkId::new("adam_update_8192x1", rows),
            &rows,
            |b, _| b.iter(|| table.update(&batch, &grads, &cfg)),
        );
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
    // One user's AUC over 10^6 items: few relevant items (the per-item
    // passes) and many (the binary search per item).
    let scores: Vec<f32> = ids(1_000_000, 1 << 24)
        .into_iter()
        .map(|x| x as f32)
        .collect();
    let excluded: Vec<u32> = (0..1_000_000).step_by(997).collect();
    for relevant in [10, 200, 1000] {
        let rel: Vec<u32> = (0..1_000_000).step_by(1_000_000 / relevant).collect();
        c.bench_function(&format!("auc_of_candidates_{relevant}_of_1m"), |b| {
            b.iter(|| auc_of_candidates(&scores, &excluded, &rel))
        });
    }
}

/// A score block's life in all-ranking: a 64 MiB buffer made, written
/// whole and freed, from the system (fresh pages each time) or inside an
/// `alloc_cache` scope (the freed block reused).
fn large_blocks(c: &mut Criterion) {
    use causalrec_host::alloc_cache::LargeBlockCache;
    use std::alloc::{GlobalAlloc, Layout, System};
    let layout = Layout::from_size_align(64 << 20, 64).unwrap();
    let cycle = |a: &dyn GlobalAlloc| {
        // SAFETY: the block is allocated, written within its size and freed
        // with the layout it was made with.
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            p.write_bytes(1, layout.size());
            // Kept, so the writes and the allocation are not elided.
            std::hint::black_box(p);
            a.dealloc(p, layout);
        }
    };
    let mut group = c.benchmark_group("block_64mib_alloc_write_free");
    group.bench_function("system", |b| b.iter(|| cycle(&System)));
    let cache = LargeBlockCache::new();
    cache.open();
    group.bench_function("alloc_cache", |b| b.iter(|| cycle(&cache)));
    cache.close();
    group.finish();
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

/// The fused ops (forward and backward) against the same math in candle's
/// ops: FM's bi-interaction of two `[8192, 64]` fields, dropout of
/// `[8192, 64]`, and Dice on DIN's largest activation `[25600, 80]`.
fn fused(c: &mut Criterion) {
    let ramp = |n: usize, scale: f32| -> Vec<f32> {
        ids(n, 1000)
            .into_iter()
            .map(|x| (x as f32 * 1e-3 - 0.5) * scale)
            .collect()
    };
    let var = |v: Vec<f32>, dims: &[usize]| {
        Var::from_tensor(&Tensor::from_vec(v, dims, &Device::Cpu).unwrap()).unwrap()
    };
    let backward = |y: &Tensor| y.sum_all().unwrap().backward().unwrap();

    let x = var(ramp(8192 * 2 * 64, 1.0), &[8192, 2, 64]);
    let mut group = c.benchmark_group("bi_interaction_8192x2x64_fwd_bwd");
    group.bench_function("kernel", |b| {
        b.iter(|| backward(&kernels::bi_interaction(x.as_tensor()).unwrap().unwrap()))
    });
    group.bench_function("candle", |b| {
        b.iter(|| {
            let s = x.sum(1).unwrap();
            let y = ((s.sqr().unwrap() - x.sqr().unwrap().sum(1).unwrap()).unwrap() * 0.5).unwrap();
            backward(&y)
        })
    });
    group.finish();

    let x = var(ramp(8192 * 64, 1.0), &[8192, 64]);
    let mut group = c.benchmark_group("dropout_8192x64_fwd_bwd");
    group.bench_function("kernel", |b| {
        b.iter(|| backward(&kernels::dropout(x.as_tensor(), 0.5, 7).unwrap().unwrap()))
    });
    group.bench_function("mask_tensor", |b| {
        b.iter(|| {
            let m = Tensor::from_vec(
                kernels::dropout_mask(8192 * 64, 0.5, 7),
                (8192, 64),
                &Device::Cpu,
            )
            .unwrap();
            backward(&(x.as_tensor() * m).unwrap())
        })
    });
    group.finish();

    let (n, h) = (25_600, 80);
    let s = var(ramp(n * h, 4.0), &[n, h]);
    let alpha = var(vec![0.25; h], &[h]);
    let w = Tensor::ones((n, 1), DType::F32, &Device::Cpu).unwrap();
    let mut group = c.benchmark_group("dice_25600x80_fwd_bwd");
    group.bench_function("kernel", |b| {
        b.iter(|| {
            backward(
                &kernels::dice(s.as_tensor(), alpha.as_tensor(), &w, 1e-8)
                    .unwrap()
                    .unwrap(),
            )
        })
    });
    group.bench_function("candle", |b| {
        b.iter(|| {
            let (s, a) = (s.as_tensor(), alpha.as_tensor());
            let mean = s.mean_keepdim(0).unwrap();
            let c = s.broadcast_sub(&mean).unwrap();
            let v = c.sqr().unwrap().mean_keepdim(0).unwrap();
            let r = (v + 1e-8).unwrap().powf(-0.5).unwrap();
            let z = c.broadcast_mul(&r).unwrap();
            let p = ((z.neg().unwrap().exp().unwrap() + 1.0).unwrap().recip()).unwrap();
            let gate = p
                .broadcast_mul(&a.affine(-1.0, 1.0).unwrap())
                .unwrap()
                .broadcast_add(a)
                .unwrap();
            backward(&(s * gate).unwrap())
        })
    });
    group.finish();

    // MMGCN's layer outputs: 14.7k rows x 64.
    let x = var(ramp(14_700 * 64, 1.0), &[14_700, 64]);
    let mut group = c.benchmark_group("leaky_relu_14700x64_fwd_bwd");
    group.bench_function("kernel", |b| {
        b.iter(|| backward(&kernels::leaky_relu(x.as_tensor(), 0.1).unwrap().unwrap()))
    });
    group.bench_function("candle", |b| {
        b.iter(|| {
            let t = x.as_tensor();
            let neg = (t.neg().unwrap().relu().unwrap() * 0.1).unwrap();
            backward(&(t.relu().unwrap() - neg).unwrap())
        })
    });
    group.finish();

    // A MMGCN first layer's batch subgraph (measured: about 30k source
    // nodes, 14.7k targets, 215k edges, d = 64), the edges in a fixed
    // pseudo-random order.
    let (nodes, rows, edges) = (30_000usize, 14_700usize, 215_000usize);
    let x = var(ramp(nodes * 64, 1.0), &[nodes, 64]);
    let src: Vec<u32> = (0..edges).map(|e| (e * 7_919 % nodes) as u32).collect();
    let tgt: Vec<u32> = (0..edges).map(|e| (e * 104_729 % rows) as u32).collect();
    let (src_t, tgt_t) = (
        Tensor::new(src.as_slice(), &Device::Cpu).unwrap(),
        Tensor::new(tgt.as_slice(), &Device::Cpu).unwrap(),
    );
    let mut group = c.benchmark_group("edge_sum_215k_edges_x64_fwd_bwd");
    group.bench_function("kernel", |b| {
        b.iter(|| {
            backward(
                &kernels::edge_sum(x.as_tensor(), &src, &tgt, rows)
                    .unwrap()
                    .unwrap(),
            )
        })
    });
    group.bench_function("candle_index_select_index_add", |b| {
        b.iter(|| {
            let msg = x.index_select(&src_t, 0).unwrap();
            let out = Tensor::zeros((rows, 64), DType::F32, &Device::Cpu)
                .unwrap()
                .index_add(&tgt_t, &msg, 0)
                .unwrap();
            backward(&out)
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    sparse_store,
    ranking,
    large_blocks,
    histories,
    kernels,
    fused
);
criterion_main!(benches);
