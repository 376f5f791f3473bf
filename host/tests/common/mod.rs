//! Shared by the host's integration tests: an empty f64 CPU model and a
//! training graph over it, to run plugin code on the host executor.

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::RVec;
use candle_core::{DType, Device};
use causalrec_host::exec::store::OptimConfig;
use causalrec_host::exec::{Batch, HostGraph, Model};
use causalrec_sdk::{Ctx, GraphMut, Schema};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Call `f` with a context over an empty batch and schema (seed 3), then
/// require that no op failed.
pub fn with_ctx(f: impl FnOnce(&Ctx<'_, '_>)) {
    let mut model = Model::new(3, DType::F64, Device::Cpu, OptimConfig::default());
    let batch = Batch::default();
    let schema = Schema {
        n_users: 0,
        n_items: 0,
        fields: RVec::new(),
        history_len: 0,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut g = HostGraph::new(&mut model, &batch, &schema, true, &mut rng);
    let mut gm: GraphMut<'_> = causalrec_sdk::Graph_TO::from_ptr(&mut g, TD_Opaque);
    let ctx = Ctx::new(&mut gm);
    f(&ctx);
    assert!(ctx.error().is_none(), "{:?}", ctx.error());
}
