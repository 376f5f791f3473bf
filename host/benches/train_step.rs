//! Criterion: one full training step (batch assembly with negative
//! sampling, forward, backward, row-sparse and dense Adam updates) of MF,
//! FM, NFM, DIN and MMGCN on a uniform random log, through the same
//! `host::bench::BenchSession` that `host bench train` times; FM also at
//! 10^4 and 10^6 item rows (the step must not grow with the table).
//!
//! The backbones are plugins: build them in release first,
//! `cargo build --release -p causalrec-plugin-ctr -p causalrec-plugin-seq -p causalrec-plugin-graph`,
//! then `cargo bench -p causalrec-host --bench train_step`. A model whose
//! plugin is not found is skipped with a note (`CAUSALREC_PLUGIN_PATH` adds
//! folders).

use std::path::PathBuf;

use candle_core::Device;
use causalrec_host::bench::{BenchSession, BenchTrain};
use causalrec_host::plugins::Registry;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn registry() -> Registry {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    Registry::discover(&[target.join("release")])
}

fn config(model: &str, rows: usize) -> BenchTrain {
    // Batches the size of the papers' (DIN and MMGCN are far slower per
    // example: smaller batches keep a sample short).
    let (batch, modality_width) = match model {
        "din" => (256, 0),
        "mmgcn" => (512, 64),
        _ => (2048, 0),
    };
    BenchTrain {
        model: model.into(),
        rows,
        users: 10_000,
        inter: 100_000,
        batch,
        negatives: 1,
        dim: 64,
        modality_width,
        steps: 0,
        warmup: 0,
        seed: 7,
        phases: false,
    }
}

fn train_step(c: &mut Criterion) {
    let reg = registry();
    let mut group = c.benchmark_group("train_step");
    group.sample_size(10);
    let cases = [
        ("mf", 100_000),
        ("fm", 10_000),
        ("fm", 100_000),
        ("fm", 1_000_000),
        ("nfm", 100_000),
        ("din", 100_000),
        ("mmgcn", 20_000),
    ];
    for (model, rows) in cases {
        let b = config(model, rows);
        let mut session = match BenchSession::new(&b, &reg, Device::Cpu) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("train_step/{model}: skipped: {e}");
                continue;
            }
        };
        // Warm-up outside the timing (first-touch of optimizer state).
        for _ in 0..3 {
            session.step().expect("warm-up step");
        }
        group.throughput(Throughput::Elements(session.examples_per_step as u64));
        group.bench_with_input(BenchmarkId::new(model, rows), &rows, |bench, _| {
            bench.iter(|| session.step().expect("training step"))
        });
    }
    group.finish();
}

criterion_group!(benches, train_step);
criterion_main!(benches);
