//! Shared by the host's integration tests: plugin code run on the host
//! executor (an f64 CPU model and a training graph over a batch), and
//! fresh fixture folders under the target folder. Each test crate uses
//! the part it needs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::RVec;
use candle_core::{DType, Device};
use causalrec_host::exec::store::OptimConfig;
use causalrec_host::exec::{Batch, HostGraph, Model};
use causalrec_host::plugins::Registry;
use causalrec_host::recipe::{Session, SessionConfig};
use causalrec_sdk::{Ctx, GraphMut, Schema};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A schema of `n_users` x `n_items` without feature fields.
pub fn schema(n_users: u64, n_items: u64) -> Schema {
    Schema {
        n_users,
        n_items,
        fields: RVec::new(),
        history_len: 0,
    }
}

/// Call `f` with a context over `batch` and `schema` (model seed 3), then
/// require that no op failed.
pub fn on_graph<R>(batch: &Batch, schema: &Schema, f: impl FnOnce(&Ctx<'_, '_>) -> R) -> R {
    let mut model = Model::new(3, DType::F64, Device::Cpu, OptimConfig::default());
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut g = HostGraph::new(&mut model, batch, schema, true, &mut rng);
    let mut gm: GraphMut<'_> = causalrec_sdk::Graph_TO::from_ptr(&mut g, TD_Opaque);
    let ctx = Ctx::new(&mut gm);
    let r = f(&ctx);
    assert!(ctx.error().is_none(), "{:?}", ctx.error());
    r
}

/// [`on_graph`] over an empty batch and schema.
pub fn with_ctx<R>(f: impl FnOnce(&Ctx<'_, '_>) -> R) -> R {
    on_graph(&Batch::default(), &schema(0, 0), f)
}

/// A fresh, empty folder `<target tmp>/<stem>-<pid>-<n>/<sub>`, unique per call.
pub fn fresh_folder(stem: &str, sub: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{stem}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let folder = dir.join(sub);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&folder).unwrap();
    folder
}

/// A recipe session (no plugins, CPU) over `repo_root` writing into `out`:
/// the engine's functions with the sandbox of those folders.
pub fn recipe_session(recipe: &str, repo_root: &Path, out: &Path, seed: u64) -> Arc<Session> {
    let cfg = SessionConfig {
        recipe: PathBuf::from(recipe),
        repo_root: repo_root.to_path_buf(),
        out: out.to_path_buf(),
        seed,
        device: "cpu".into(),
        settings: Default::default(),
        check_only: false,
    };
    Session::new(cfg, Arc::new(Registry::default()), Device::Cpu).unwrap()
}

/// The repository root (the host crate's parent folder).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `n` gradients drawn uniformly from [-1, 1), seeded.
pub fn uniform_f32(seed: u64, n: usize) -> Vec<f32> {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| r.random::<f32>() * 2.0 - 1.0).collect()
}
