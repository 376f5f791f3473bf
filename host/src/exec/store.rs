//! Parameter storage and optimizers.
//!
//! - [`DenseStore`]: dense parameters as candle `Var`s, initialised from a seed
//!   derived from the run seed and the parameter's name (so declaration order
//!   does not matter), updated by [`DenseOptimizer`].
//! - [`TableStore`]: embedding tables in a row-sparse store. A lookup gathers
//!   the touched rows into a fresh leaf; after backward, the leaf's gradient is
//!   scattered into row-wise optimizer state. A step never touches or allocates
//!   a whole table. Tables are found by full name (`main/item`) or, when one
//!   matches, by the name after the role (`item`).

use std::collections::{BTreeMap, HashMap};

use super::init::{init_f32, init_values};
use candle_core::{DType, Device, Tensor, Var};
use causalrec_sdk::Init;
use serde::{Deserialize, Serialize};

/// Optimizer choice and hyper-parameters (shared by dense and sparse parts).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OptimConfig {
    /// `adam`, `adagrad` or `sgd`.
    pub kind: String,
    pub lr: f64,
    /// L2 penalty added to the gradient (`g += l2 * w`); for tables on the touched rows
    /// only, unless `dense_tables`.
    pub l2: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Update every row of every table at every step, untouched rows with a zero data
    /// gradient (so L2 decays them and Adam's moments move), as a dense PyTorch
    /// `nn.Embedding` under `torch.optim.Adam(weight_decay=..)` does. Costs O(table)
    /// per step: for reproducing papers trained that way on small tables; the default
    /// (false) touches only the batch's rows.
    #[serde(default)]
    pub dense_tables: bool,
    /// When a table's row-wise optimizer state is allocated (see [`TableState`]).
    #[serde(default)]
    pub table_state: TableState,
}

/// When a table's row-wise optimizer state (Adam's moments, Adagrad's
/// accumulator) is allocated. Either way the values and results are the
/// same to the bit; only memory and speed differ.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TableState {
    /// `eager` when the whole table's state fits in half of the memory the
    /// system reports available at the table's first update, else `lazy`.
    #[default]
    Auto,
    /// For every row at the table's first update, its pages faulted in then
    /// (as PyTorch's SparseAdam allocates its dense state at its first
    /// step): later steps never fault in fresh memory, whatever rows they touch.
    Eager,
    /// A slot per row when the row is first updated, so state memory grows
    /// with the rows a run touches: for tables whose state would not fit.
    Lazy,
}

impl TableState {
    /// Parse `auto`, `eager` or `lazy`.
    pub fn parse(s: &str) -> Result<TableState, String> {
        match s {
            "auto" => Ok(TableState::Auto),
            "eager" => Ok(TableState::Eager),
            "lazy" => Ok(TableState::Lazy),
            other => Err(format!(
                "table_state must be \"auto\", \"eager\" or \"lazy\", got \"{other}\""
            )),
        }
    }
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig {
            kind: "adam".into(),
            lr: 1e-3,
            l2: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            dense_tables: false,
            table_state: TableState::Auto,
        }
    }
}

impl OptimConfig {
    /// Check the kind and ranges.
    pub fn validate(&self) -> Result<(), String> {
        if !["adam", "adagrad", "sgd"].contains(&self.kind.as_str()) {
            return Err(format!(
                "unknown optimizer '{}' (valid: adam, adagrad, sgd)",
                self.kind
            ));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(format!("lr must be a positive number, got {}", self.lr));
        }
        if self.l2 < 0.0 {
            return Err(format!("l2 must be >= 0, got {}", self.l2));
        }
        Ok(())
    }
}

/// A seed for a named parameter: FNV-1a of the name mixed with the run seed.
pub fn name_seed(seed: u64, name: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325 ^ seed.wrapping_mul(0x9E3779B97F4A7C15);
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Dense parameters by full name.
pub struct DenseStore {
    pub params: BTreeMap<String, Var>,
    pub seed: u64,
    pub dtype: DType,
    pub device: Device,
}

impl DenseStore {
    pub fn new(seed: u64, dtype: DType, device: Device) -> Self {
        DenseStore {
            params: BTreeMap::new(),
            seed,
            dtype,
            device,
        }
    }

    /// Declare or fetch; a redeclaration with another shape is an error.
    pub fn get_or_init(&mut self, name: &str, shape: &[usize], init: Init) -> Result<Var, String> {
        if let Some(v) = self.params.get(name) {
            if v.dims() != shape {
                return Err(format!(
                    "parameter '{name}' redeclared with shape {shape:?}, it has {:?}",
                    v.dims()
                ));
            }
            return Ok(v.clone());
        }
        let vals = init_values(init, shape, name_seed(self.seed, name));
        let t = Tensor::from_vec(vals, shape, &self.device)
            .and_then(|t| t.to_dtype(self.dtype))
            .map_err(|e| e.to_string())?;
        let v = Var::from_tensor(&t).map_err(|e| e.to_string())?;
        self.params.insert(name.to_string(), v.clone());
        Ok(v)
    }
}

/// Optimizer state of one dense parameter.
struct DenseState {
    m: Tensor,
    v: Tensor,
}

/// Adam / Adagrad / SGD over dense parameters, on the parameters' device.
pub struct DenseOptimizer {
    pub cfg: OptimConfig,
    state: HashMap<String, DenseState>,
    step: u64,
}

impl DenseOptimizer {
    pub fn new(cfg: OptimConfig) -> Self {
        DenseOptimizer {
            cfg,
            state: HashMap::new(),
            step: 0,
        }
    }

    /// Apply one update from the gradients found for each named parameter.
    pub fn step(&mut self, grads: &[(String, Var, Tensor)]) -> candle_core::Result<()> {
        self.step += 1;
        let c = &self.cfg;
        let t = self.step as i32;
        for (name, var, g) in grads {
            let g = if c.l2 > 0.0 {
                (g + (var.as_tensor() * c.l2)?)?
            } else {
                g.clone()
            };
            let st = match self.state.get_mut(name) {
                Some(s) => s,
                None => {
                    let z = g.zeros_like()?;
                    self.state
                        .entry(name.clone())
                        .or_insert(DenseState { m: z.clone(), v: z })
                }
            };
            let upd = match c.kind.as_str() {
                "sgd" => (g * c.lr)?,
                "adagrad" => {
                    st.v = (&st.v + g.sqr()?)?;
                    (g / (st.v.sqrt()? + c.eps)?)?.affine(c.lr, 0.0)?
                }
                _ => {
                    st.m = ((&st.m * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
                    st.v = ((&st.v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
                    let mh = (&st.m / (1.0 - c.beta1.powi(t)))?;
                    let vh = (&st.v / (1.0 - c.beta2.powi(t)))?;
                    ((mh / (vh.sqrt()? + c.eps)?)? * c.lr)?
                }
            };
            var.set(&(var.as_tensor() - upd)?)?;
        }
        Ok(())
    }
}

/// One row-sparse embedding table with row-wise optimizer state.
///
/// The optimizer state is row-sparse: a row gets a slot the first time it
/// is updated (appended contiguously), and the slot holds all of the row's
/// moments in one record (Adam's `m` then `v`), so that a row's update
/// fetches its state in one run of cache lines. The slots' memory is
/// allocated for the whole table at its first update or grows with the
/// rows a run touches ([`TableState`]); no later step allocates or faults
/// in anything table-sized.
pub struct Table {
    pub rows: usize,
    pub dim: usize,
    /// The weights, row-major: read through [`Table::data`], written
    /// through the methods that drop [`Table::whole`].
    data: Vec<f32>,
    /// The whole table as a tensor (inference's `table_all`), made at the
    /// first ask and kept until the weights change: an evaluation asks for
    /// it once per block of users.
    whole: Option<Tensor>,
    /// Per row, its slot and Adam step count ([`SlotEntry`]), side by
    /// side so that a row's update finds both in one cache line.
    /// Zero-initialised, so its pages are mapped only where rows are touched.
    slot: Vec<SlotEntry>,
    /// Per slot, the row's moments: Adagrad's accumulator (`dim` floats),
    /// or Adam's first then second moment (`2 * dim`).
    state: SlotRows,
    /// Moments per slot in `state`: 1 (Adagrad), 2 (Adam); 0 before the
    /// first update by an adaptive rule.
    moments: usize,
    /// The dense-update scratch: the full gradient, zero between steps.
    scratch: Vec<f32>,
    /// One bit per row, all zero between steps ([`Table::distinct`]).
    seen: Vec<u64>,
    /// Whether [`Table::prepare_state`] has run since the state was made.
    state_prepared: bool,
    /// Adam's bias corrections by step count.
    bias: BiasCorrections,
}

impl Table {
    /// A table initialised from a seed.
    pub fn new(rows: usize, dim: usize, init: Init, seed: u64) -> Self {
        let data = init_f32(init, &[rows, dim], seed);
        Table {
            rows,
            dim,
            data,
            whole: None,
            slot: Vec::new(),
            state: SlotRows::new(0, rows),
            moments: 0,
            scratch: Vec::new(),
            seen: Vec::new(),
            state_prepared: false,
            bias: BiasCorrections::default(),
        }
    }

    /// Row `r`.
    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.dim..(r + 1) * self.dim]
    }

    /// The weights, row-major (`rows * dim`).
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The weights, to write.
    pub fn data_mut(&mut self) -> &mut [f32] {
        self.whole = None;
        &mut self.data
    }

    /// Replace the weights (`rows * dim` values, row-major).
    pub fn set_data(&mut self, data: Vec<f32>) -> Result<(), String> {
        if data.len() != self.rows * self.dim {
            return Err(format!(
                "{} values for a [{}, {}] table",
                data.len(),
                self.rows,
                self.dim
            ));
        }
        self.whole = None;
        self.data = data;
        Ok(())
    }

    /// Rows with optimizer state (updated at least once by Adam or Adagrad).
    pub fn state_rows(&self) -> usize {
        self.state.len()
    }

    /// No optimizer state, made for `moments` moments per row.
    fn reset_state(&mut self, moments: usize) {
        self.slot = Vec::new();
        self.state = SlotRows::new(self.dim * moments, self.rows);
        self.moments = moments;
        self.state_prepared = false;
    }

    /// Before an update by `kind`: state made for another rule's moments
    /// (an Adagrad checkpoint trained on with Adam) starts over, and before
    /// the first update, if `policy` makes the state eager, blocks for
    /// every row's state are made (the slot map comes with the first slot,
    /// [`Table::slot_of`]).
    fn prepare_state(&mut self, kind: RuleKind, policy: TableState) {
        let moments = kind.moments();
        if moments == 0 {
            return;
        }
        if self.moments != moments {
            if self.moments != 0 {
                tracing::warn!(
                    "a table's optimizer state holds {} moment(s) per row, the {kind:?} rule \
                     needs {moments}: its state starts over",
                    self.moments
                );
            }
            self.reset_state(moments);
        }
        if self.state_prepared {
            return;
        }
        self.state_prepared = true;
        let bytes = self.rows * self.dim * std::mem::size_of::<f32>() * moments;
        if eager_state(policy, bytes) {
            self.state.reserve(self.rows);
        }
    }

    /// The slot of row `r`, given one on first use.
    fn slot_of(&mut self, r: usize) -> usize {
        if self.slot.is_empty() {
            self.slot = vec![SlotEntry::default(); self.rows];
        }
        match self.slot[r].slot {
            0 => {
                let s = self.state.push_zeros();
                self.slot[r].slot = s as u32 + 1;
                s
            }
            s => s as usize - 1,
        }
    }

    /// Update every row: the rows `rows` with their summed gradients `grads`
    /// (`rows.len() * dim`), all others with a zero gradient (see
    /// [`OptimConfig::dense_tables`]). The full gradient lives in a scratch
    /// buffer kept between steps.
    pub fn update_dense(&mut self, rows: &[u32], grads: &[f32], c: &OptimConfig) {
        self.whole = None;
        let d = self.dim;
        self.prepare_state(Rule::of(c).kind, c.table_state);
        let mut full = std::mem::take(&mut self.scratch);
        full.resize(self.rows * d, 0.0);
        for (k, &r) in rows.iter().enumerate() {
            full[r as usize * d..(r as usize + 1) * d].copy_from_slice(&grads[k * d..(k + 1) * d]);
        }
        self.update_rows(0..self.rows as u32, &full, c);
        for &r in rows {
            full[r as usize * d..(r as usize + 1) * d].fill(0.0);
        }
        self.scratch = full;
    }

    /// Update the rows `rows` with the summed gradients `grads` (`rows.len() * dim`).
    /// Distinct rows (a step's touched rows) are updated with their lines
    /// fetched ahead, in parallel when the step is large enough; a row
    /// listed twice is updated twice, in order.
    pub fn update(&mut self, rows: &[u32], grads: &[f32], c: &OptimConfig) {
        self.whole = None;
        let rule = Rule::of(c);
        let d = self.dim;
        self.prepare_state(rule.kind, c.table_state);
        if !self.distinct(rows) {
            // One at a time, in order.
            self.update_rows(rows.iter().copied(), grads, c);
            return;
        }
        // Slots and step counts, in order (a slot is given on first use).
        // The rows are spread over the table: their entries are fetched
        // `PREFETCH_SLOTS` rows ahead.
        let slots: Vec<(usize, Corrections)> = (0..rows.len())
            .map(|k| {
                if rule.kind != RuleKind::Sgd {
                    if let Some(&ra) = rows.get(k + PREFETCH_SLOTS) {
                        prefetch_line(self.slot.as_ptr().wrapping_add(ra as usize));
                    }
                }
                self.advance(rows[k] as usize, &rule)
            })
            .collect();
        // Distinct rows: disjoint rows of `data` and disjoint slots of
        // `state`, so every row can be updated on its own thread.
        let data = SharedMut(self.data.as_mut_ptr());
        let state = self.state.shared();
        let (data, state) = (&data, &state);
        // Narrow rows are a line each: fetched from farther ahead.
        let ahead = if d >= 16 { PREFETCH } else { 4 * PREFETCH };
        let update_row = |(k, &r): (usize, &u32)| {
            // The rows are random: fetch a later row's lines ahead.
            if let (Some(&ra), Some(&(sa, _))) = (rows.get(k + ahead), slots.get(k + ahead)) {
                prefetch_row(data.0, ra as usize * d, d);
                // The rule's moments (none under SGD).
                prefetch_row(state.ptr(sa), 0, d * rule.kind.moments());
            }
            let (slot, corr) = slots[k];
            // SAFETY: `rows` are distinct (checked above) and in range
            // (`slot_of` indexed them), so each (row, slot) is written by
            // this iteration only; the slices lie inside `data` / `state`,
            // which are not resized until the loop ends.
            let (w, moments) = unsafe {
                (
                    data.slice(r as usize * d, d),
                    if rule.kind == RuleKind::Sgd {
                        &mut [][..]
                    } else {
                        state.slot(slot)
                    },
                )
            };
            let (m, v) = split_moments(moments, d, rule.kind);
            rule.apply(w, m, v, &grads[k * d..(k + 1) * d], corr);
        };
        let per_task = rows_per_task(
            rows.len(),
            d,
            self.data.len() * std::mem::size_of::<f32>() * (1 + self.moments),
        );
        if per_task >= rows.len() {
            rows.iter().enumerate().for_each(update_row);
        } else {
            use rayon::prelude::*;
            rows.par_iter()
                .enumerate()
                .with_min_len(per_task)
                .for_each(update_row);
        }
    }

    /// Whether `rows` (in range) holds no row twice: marked in a bit per
    /// table row (kept between steps, cleared again before returning), so
    /// the check costs the rows listed, not a sort.
    fn distinct(&mut self, rows: &[u32]) -> bool {
        if self.seen.is_empty() {
            self.seen = vec![0; self.rows.div_ceil(64)];
        }
        let mut all = true;
        let mut marked = 0;
        for &r in rows {
            assert!(
                (r as usize) < self.rows,
                "row {r} out of range for a table of {} rows",
                self.rows
            );
            let (word, bit) = (r as usize / 64, 1u64 << (r % 64));
            if self.seen[word] & bit != 0 {
                all = false;
                break;
            }
            self.seen[word] |= bit;
            marked += 1;
        }
        for &r in &rows[..marked] {
            self.seen[r as usize / 64] = 0;
        }
        all
    }

    /// Row `r`'s weights and, for the adaptive rules, its moments at `slot`.
    fn row_state(
        &mut self,
        r: usize,
        slot: usize,
        kind: RuleKind,
    ) -> (&mut [f32], &mut [f32], &mut [f32]) {
        let d = self.dim;
        let w = &mut self.data[r * d..(r + 1) * d];
        let moments = match kind {
            RuleKind::Sgd => &mut [][..],
            _ => self.state.row_mut(slot),
        };
        let (m, v) = split_moments(moments, d, kind);
        (w, m, v)
    }

    /// Row `r`'s moment slot (given on first use) and, under Adam, the bias
    /// corrections of its step count after this step (counted up here);
    /// slot 0 under SGD.
    fn advance(&mut self, r: usize, rule: &Rule) -> (usize, Corrections) {
        match rule.kind {
            RuleKind::Sgd => (0, Corrections::default()),
            RuleKind::Adagrad => (self.slot_of(r), Corrections::default()),
            RuleKind::Adam => {
                let s = self.slot_of(r);
                let t = &mut self.slot[r].t;
                *t += 1;
                (s, self.bias.get(rule, *t))
            }
        }
    }

    /// [`Table::update`] one row after another, in order (small steps,
    /// steps that list a row twice, and the dense-table mode).
    fn update_rows(&mut self, rows: impl Iterator<Item = u32>, grads: &[f32], c: &OptimConfig) {
        let rule = Rule::of(c);
        let d = self.dim;
        for (k, r) in rows.enumerate() {
            let r = r as usize;
            let (slot, corr) = self.advance(r, &rule);
            let (w, m, v) = self.row_state(r, slot, rule.kind);
            rule.apply(w, m, v, &grads[k * d..(k + 1) * d], corr);
        }
    }
}

/// A row's slot in [`Table::state`] and its Adam step count (bias
/// correction per row, as lazy/sparse Adam counts).
#[derive(Clone, Copy, Default)]
#[repr(C)]
struct SlotEntry {
    /// The slot + 1 (0: no slot yet).
    slot: u32,
    t: u32,
}

/// A slot's record as the rule's moments: Adagrad's accumulator, or Adam's
/// first and second moment (`dim` each); empty ones for what a rule lacks.
#[inline(always)]
fn split_moments(record: &mut [f32], dim: usize, kind: RuleKind) -> (&mut [f32], &mut [f32]) {
    match kind {
        RuleKind::Adam => record.split_at_mut(dim),
        _ => (record, &mut [][..]),
    }
}

/// Rows per parallel task when `n` rows of `dim` floats of a table whose
/// data (and state) take `bytes` are gathered or updated; `n` or more: one
/// thread. Work of fewer than [`PAR_FLOATS`] floats runs on one thread,
/// unless the table is larger than [`CACHE_BYTES`] and the rows are many:
/// then each row waits on memory, and threads wait side by side.
fn rows_per_task(n: usize, dim: usize, bytes: usize) -> usize {
    let dim = dim.max(1);
    if n * dim >= PAR_FLOATS {
        PAR_FLOATS / 4 / dim
    } else if bytes > CACHE_BYTES && n >= MEMORY_BOUND_ROWS {
        n.div_ceil(rayon::current_num_threads().max(1))
    } else {
        n
    }
}

/// Larger tables are taken to live in DRAM (a server's last-level cache is
/// tens of MB): 32 MiB.
const CACHE_BYTES: usize = 32 << 20;

/// Rows from which a DRAM-bound update or gather is split over the threads.
const MEMORY_BOUND_ROWS: usize = 2048;

/// Steps that update fewer floats than this (touched rows x width: 2048
/// rows of 64) update them on one thread: for narrower work, waking the
/// thread pool costs more than it saves (8192 one-wide rows: 123 us on one
/// thread, 228 us on two).
const PAR_FLOATS: usize = 2048 * 64;

/// Rows of `dim` floats by slot, in zeroed blocks of doubling size (block
/// `k` holds `FIRST_BLOCK << k` slots): a new slot never moves the old ones
/// (no reallocation copy as a growing `Vec` does), a fresh block comes
/// zeroed from the allocator (fresh pages, no memset), and a large table's
/// later blocks are big enough for malloc to map them on their own, outside
/// the heap the step's tensors reuse (small blocks interleaved with them
/// fragmented it: every step then faulted in fresh pages).
struct SlotRows {
    dim: usize,
    /// Slots there can ever be (the table's rows): the last block is cut
    /// to it.
    max_slots: usize,
    blocks: Vec<Box<[f32]>>,
    len: usize,
}

/// Whether a table whose whole state takes `bytes` gets it eagerly under
/// `policy` ([`TableState`]): under `auto`, when it fits in half of the
/// memory the system reports available (Linux `MemAvailable`), or, where
/// none is reported, in [`EAGER_STATE_BYTES_UNKNOWN_MEMORY`].
fn eager_state(policy: TableState, bytes: usize) -> bool {
    match policy {
        TableState::Eager => true,
        TableState::Lazy => false,
        TableState::Auto => match available_memory_bytes() {
            Some(avail) => bytes <= avail / 2,
            None => bytes <= EAGER_STATE_BYTES_UNKNOWN_MEMORY,
        },
    }
}

/// The `auto` state budget where the system reports no available memory: 1 GiB.
const EAGER_STATE_BYTES_UNKNOWN_MEMORY: usize = 1 << 30;

/// Memory available for new allocations (Linux `/proc/meminfo` `MemAvailable`).
fn available_memory_bytes() -> Option<usize> {
    crate::procfs::kib("/proc/meminfo", "MemAvailable").map(|kb| kb * 1024)
}

/// Slots in the first block of [`SlotRows`].
const FIRST_BLOCK: usize = 1024;

/// The block of slot `s` and the slot's index in it.
#[inline]
fn block_of(s: usize) -> (usize, usize) {
    // Block k starts at FIRST_BLOCK * (2^k - 1).
    let q = s / FIRST_BLOCK + 1;
    let k = (usize::BITS - 1 - q.leading_zeros()) as usize;
    (k, s - FIRST_BLOCK * ((1 << k) - 1))
}

impl SlotRows {
    fn new(dim: usize, max_slots: usize) -> Self {
        SlotRows {
            dim,
            max_slots,
            blocks: Vec::new(),
            len: 0,
        }
    }

    /// Slots in use.
    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A new slot of zeros; its index.
    fn push_zeros(&mut self) -> usize {
        let (k, _) = block_of(self.len);
        if k == self.blocks.len() {
            self.push_block();
        }
        self.len += 1;
        self.len - 1
    }

    /// The next block, zeroed (cut to `max_slots`).
    fn push_block(&mut self) {
        let k = self.blocks.len();
        let start = FIRST_BLOCK * ((1 << k) - 1);
        let slots = (FIRST_BLOCK << k).min(self.max_slots.saturating_sub(start));
        assert!(
            slots > 0,
            "slot {start} past the table's {} rows",
            self.max_slots
        );
        self.blocks
            .push(vec![0.0f32; slots * self.dim].into_boxed_slice());
    }

    /// Blocks for `slots` slots, allocated now and their pages faulted in
    /// (one write per 4 KiB, on all threads), so that later steps write
    /// into mapped memory.
    fn reserve(&mut self, slots: usize) {
        let slots = slots.min(self.max_slots);
        while FIRST_BLOCK * ((1 << self.blocks.len()) - 1) < slots {
            self.push_block();
            let block = self.blocks.last_mut().expect("a block was pushed");
            use rayon::prelude::*;
            block.par_chunks_mut(1 << 20).for_each(|chunk| {
                for x in chunk.iter_mut().step_by(1024) {
                    // SAFETY: `x` is a valid, aligned element of the block;
                    // the volatile write (of the zero it holds) keeps the
                    // compiler from dropping a store it can see changes nothing.
                    unsafe { std::ptr::write_volatile(x, 0.0) };
                }
            });
        }
    }

    fn row(&self, s: usize) -> &[f32] {
        let (k, i) = block_of(s);
        &self.blocks[k][i * self.dim..(i + 1) * self.dim]
    }

    fn row_mut(&mut self, s: usize) -> &mut [f32] {
        let (k, i) = block_of(s);
        &mut self.blocks[k][i * self.dim..(i + 1) * self.dim]
    }

    /// The blocks' base pointers, for a parallel loop over distinct slots.
    fn shared(&mut self) -> SharedSlots {
        SharedSlots {
            dim: self.dim,
            blocks: self
                .blocks
                .iter_mut()
                .map(|b| SharedMut(b.as_mut_ptr()))
                .collect(),
        }
    }
}

/// [`SlotRows`] shared by the threads of one row update.
struct SharedSlots {
    dim: usize,
    blocks: Vec<SharedMut>,
}

impl SharedSlots {
    /// Slot `s`'s first float (a dangling pointer when there are no blocks,
    /// as under SGD: only prefetched then, never read).
    fn ptr(&self, s: usize) -> *mut f32 {
        let (k, i) = block_of(s);
        match self.blocks.get(k) {
            Some(b) => b.0.wrapping_add(i * self.dim),
            None => std::ptr::NonNull::dangling().as_ptr(),
        }
    }

    /// # Safety
    /// `s` must be a slot in use, written by no other thread while the slice lives.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slot(&self, s: usize) -> &mut [f32] {
        let (k, i) = block_of(s);
        self.blocks[k].slice(i * self.dim, self.dim)
    }
}

/// How many rows ahead the parallel row update and the gather prefetch.
const PREFETCH: usize = 4;

/// How many rows ahead a row update fetches the rows' slots.
const PREFETCH_SLOTS: usize = 16;

/// Ask the CPU to bring the cache line of `ptr` in (a hint: never faults,
/// no effect on any value; nothing on other architectures).
#[inline(always)]
fn prefetch_line<T>(ptr: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never faults.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(ptr as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

/// Ask the CPU to bring `len` floats from `ptr + start` into the cache (a
/// hint: no effect on the values, nothing on other architectures).
#[inline(always)]
fn prefetch_row(ptr: *const f32, start: usize, len: usize) {
    // 16 floats per 64-byte line. `wrapping_add` and a prefetch never
    // dereference, so an address past the end is harmless.
    for off in (0..len).step_by(16) {
        prefetch_line(ptr.wrapping_add(start + off));
    }
}

/// A raw pointer shared by the threads of one row update; each thread
/// writes only its own rows.
struct SharedMut(*mut f32);

// SAFETY: used only inside `Table::update`'s parallel loop, where every
// thread touches disjoint ranges (see there).
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// # Safety
    /// `start..start + len` must lie inside the allocation and be written by
    /// no other thread while the slice lives.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice(&self, start: usize, len: usize) -> &mut [f32] {
        std::slice::from_raw_parts_mut(self.0.add(start), len)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RuleKind {
    Sgd,
    Adagrad,
    Adam,
}

/// One optimizer's row-wise update rule with its hyper-parameters.
#[derive(Clone, Copy)]
struct Rule {
    kind: RuleKind,
    lr: f32,
    l2: f32,
    b1: f32,
    b2: f32,
    eps: f32,
}

impl RuleKind {
    /// Moments the rule keeps per weight.
    fn moments(self) -> usize {
        match self {
            RuleKind::Sgd => 0,
            RuleKind::Adagrad => 1,
            RuleKind::Adam => 2,
        }
    }
}

impl Rule {
    fn of(c: &OptimConfig) -> Rule {
        Rule {
            kind: match c.kind.as_str() {
                "sgd" => RuleKind::Sgd,
                "adagrad" => RuleKind::Adagrad,
                _ => RuleKind::Adam,
            },
            lr: c.lr as f32,
            l2: c.l2 as f32,
            b1: c.beta1 as f32,
            b2: c.beta2 as f32,
            eps: c.eps as f32,
        }
    }

    /// Adam's bias corrections of step count `t`.
    fn corrections(&self, t: u32) -> Corrections {
        let (c1, c2) = (
            1.0 - pow_by_squaring(self.b1, t),
            1.0 - pow_by_squaring(self.b2, t),
        );
        Corrections {
            step: self.lr / c1,
            inv_sqrt_c2: 1.0 / c2.sqrt(),
        }
    }

    /// Update one row's weights `w` (and moments `m`, `v`) with its gradient
    /// `g`; under Adam `corr` holds the corrections of the row's step count
    /// after this step.
    fn apply(&self, w: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], corr: Corrections) {
        let (lr, l2) = (self.lr, self.l2);
        match self.kind {
            RuleKind::Sgd => {
                for (w, &g) in w.iter_mut().zip(g) {
                    *w -= lr * (g + l2 * *w);
                }
            }
            RuleKind::Adagrad => {
                for ((w, m), &g) in w.iter_mut().zip(m.iter_mut()).zip(g) {
                    let gj = g + l2 * *w;
                    *m += gj * gj;
                    *w -= lr * gj / (m.sqrt() + self.eps);
                }
            }
            RuleKind::Adam => {
                // As torch.optim.Adam: the bias corrections folded into the
                // step size and the denominator, one division per element.
                let k = AdamRow {
                    b1: self.b1,
                    b2: self.b2,
                    l2,
                    step: corr.step,
                    inv_sqrt_c2: corr.inv_sqrt_c2,
                    eps: self.eps,
                };
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("avx") {
                    // SAFETY: the CPU has AVX (checked just above).
                    return unsafe { k.apply_avx(w, m, v, g) };
                }
                k.apply(w, m, v, g);
            }
        }
    }
}

/// `x^n` by repeated squaring, in f32: the algorithm of the runtime's
/// `powi` (`__powisf2`), which `f32::powi` calls for an exponent unknown at
/// compile time, but written out so that a constant exponent, which LLVM
/// expands into other multiplications, gives the same bits as well.
fn pow_by_squaring(mut x: f32, mut n: u32) -> f32 {
    let mut y = 1.0f32;
    loop {
        if n & 1 != 0 {
            y *= x;
        }
        n >>= 1;
        if n == 0 {
            return y;
        }
        x *= x;
    }
}

/// Adam's bias corrections of one step count `t`, folded as
/// torch.optim.Adam folds them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Corrections {
    /// `lr / (1 - b1^t)`.
    step: f32,
    /// `1 / sqrt(1 - b2^t)`.
    inv_sqrt_c2: f32,
}

/// [`Rule::corrections`] by step count, kept for the rule they were made
/// with: rows' step counts repeat from step to step, and two powers, a
/// square root and two divisions per row cost as much as a short row's
/// update. From the step count where both `|beta^t|` are below 2^-26 on,
/// `1 - beta^t` is 1.0 in f32 for every later count as well (the powers
/// only shrink, by far more than their rounding), so the corrections stay
/// those of that count. Other step counts past the cache are computed (the
/// same bits).
#[derive(Default)]
struct BiasCorrections {
    /// The bits of the rule's (lr, beta1, beta2).
    key: [u32; 3],
    /// Entry `t`: the corrections of step count `t` (entry 0 unused).
    by_t: Vec<Corrections>,
    /// The step count from which the corrections no longer change.
    saturated_at: Option<u32>,
}

/// Step counts [`BiasCorrections`] keeps (256 KiB; beta2 = 0.999 saturates
/// at 18,014).
const BIAS_CACHE_STEPS: u32 = 1 << 15;

impl BiasCorrections {
    fn get(&mut self, rule: &Rule, t: u32) -> Corrections {
        let key = [rule.lr.to_bits(), rule.b1.to_bits(), rule.b2.to_bits()];
        if key != self.key || self.by_t.is_empty() {
            self.key = key;
            self.by_t.clear();
            self.by_t.push(Corrections::default());
            self.saturated_at = None;
        }
        if let Some(s) = self.saturated_at.filter(|&s| t >= s) {
            return self.by_t[s as usize];
        }
        if t >= BIAS_CACHE_STEPS {
            return rule.corrections(t);
        }
        while self.by_t.len() <= t as usize {
            let k = self.by_t.len() as u32;
            self.by_t.push(rule.corrections(k));
            let tiny = |b: f32| pow_by_squaring(b, k).abs() < 1.0 / (1u32 << 26) as f32;
            if tiny(rule.b1) && tiny(rule.b2) {
                self.saturated_at = Some(k);
                return self.by_t[k as usize];
            }
        }
        self.by_t[t as usize]
    }
}

/// Adam's update of one row with the step's constants.
struct AdamRow {
    b1: f32,
    b2: f32,
    l2: f32,
    /// `lr / (1 - b1^t)`.
    step: f32,
    /// `1 / sqrt(1 - b2^t)`.
    inv_sqrt_c2: f32,
    eps: f32,
}

impl AdamRow {
    #[inline(always)]
    fn apply(&self, w: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
        let n = w.len().min(m.len()).min(v.len()).min(g.len());
        let (w, m, v, g) = (&mut w[..n], &mut m[..n], &mut v[..n], &g[..n]);
        let (b1, b2) = (self.b1, self.b2);
        for j in 0..n {
            let gj = g[j] + self.l2 * w[j];
            m[j] = b1 * m[j] + (1.0 - b1) * gj;
            v[j] = b2 * v[j] + (1.0 - b2) * gj * gj;
            w[j] -= self.step * m[j] / (v[j].sqrt() * self.inv_sqrt_c2 + self.eps);
        }
    }

    /// [`AdamRow::apply`] compiled for 8-wide AVX vectors: the same IEEE
    /// operations in the same order (no fused multiply-add), so the same bits.
    ///
    /// # Safety
    /// The CPU must support AVX.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx")]
    unsafe fn apply_avx(&self, w: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
        self.apply(w, m, v, g)
    }
}

/// Every embedding table by full name.
pub struct TableStore {
    pub tables: BTreeMap<String, Table>,
    pub seed: u64,
}

impl TableStore {
    pub fn new(seed: u64) -> Self {
        TableStore {
            tables: BTreeMap::new(),
            seed,
        }
    }

    /// Declare a table (idempotent for the same shape).
    pub fn declare(
        &mut self,
        name: &str,
        rows: usize,
        dim: usize,
        init: Init,
    ) -> Result<(), String> {
        if let Some(t) = self.tables.get(name) {
            if t.rows != rows || t.dim != dim {
                return Err(format!(
                    "embedding '{name}' redeclared as [{rows}, {dim}], it is [{}, {}]",
                    t.rows, t.dim
                ));
            }
            return Ok(());
        }
        if rows == 0 || dim == 0 {
            return Err(format!(
                "embedding '{name}' needs rows > 0 and dim > 0, got [{rows}, {dim}]"
            ));
        }
        self.tables.insert(
            name.to_string(),
            Table::new(rows, dim, init, name_seed(self.seed, name)),
        );
        Ok(())
    }

    /// The table `name` by its full name (`main/item`), else the one table
    /// whose name ends in `/name` (`item`); errors list the tables.
    pub fn find(&self, name: &str) -> Result<(&str, &Table), String> {
        if let Some((k, t)) = self.tables.get_key_value(name) {
            return Ok((k, t));
        }
        let suffix = format!("/{name}");
        let found: Vec<(&String, &Table)> = self
            .tables
            .iter()
            .filter(|(k, _)| k.ends_with(&suffix))
            .collect();
        let names = || self.tables.keys().cloned().collect::<Vec<_>>().join(", ");
        match found.as_slice() {
            [(k, t)] => Ok((k, t)),
            [] => Err(format!("no embedding table '{name}' (tables: {})", names())),
            many => Err(format!(
                "embedding table name '{name}' is ambiguous: {}; give the full name",
                many.iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// Gather `rows` of table `name` into a `[rows.len(), dim]` variable
    /// (a lookup's gradient leaf).
    pub fn gather(
        &self,
        name: &str,
        rows: &[u32],
        dtype: DType,
        device: &Device,
    ) -> Result<Var, String> {
        let (out, d) = self.gather_values(name, rows)?;
        // A variable made from the buffer, not from a tensor (which candle
        // would copy once more).
        let shape = (rows.len(), d);
        if dtype == DType::F32 {
            Var::from_vec(out, shape, device)
        } else {
            Tensor::from_vec(out, shape, device)
                .and_then(|x| x.to_dtype(dtype))
                .and_then(|x| Var::from_tensor(&x))
        }
        .map_err(|e| e.to_string())
    }

    /// [`TableStore::gather`] into a plain tensor, which records no
    /// gradient graph (inference).
    pub fn gather_tensor(
        &self,
        name: &str,
        rows: &[u32],
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor, String> {
        let (out, d) = self.gather_values(name, rows)?;
        Tensor::from_vec(out, (rows.len(), d), device)
            .and_then(|x| x.to_dtype(dtype))
            .map_err(|e| e.to_string())
    }

    /// The values of `rows` of table `name`, row-major, and the row width.
    fn gather_values(&self, name: &str, rows: &[u32]) -> Result<(Vec<f32>, usize), String> {
        let t = self
            .tables
            .get(name)
            .ok_or_else(|| format!("embedding '{name}' is not declared"))?;
        if let Some(&r) = rows.iter().find(|&&r| r as usize >= t.rows) {
            return Err(format!(
                "id {r} out of range for embedding '{name}' with {} rows",
                t.rows
            ));
        }
        let d = t.dim;
        let mut out: Vec<f32> = Vec::with_capacity(rows.len() * d);
        // The rows are spread over the table: fetch a later one's lines
        // ahead, narrow rows from farther ahead (a line each).
        let ahead = if d >= 16 { 2 * PREFETCH } else { 8 * PREFETCH };
        let copy = |k0: usize, chunk: &mut [std::mem::MaybeUninit<f32>]| {
            for (j, dst) in chunk.chunks_exact_mut(d).enumerate() {
                let k = k0 + j;
                if let Some(&ra) = rows.get(k + ahead) {
                    prefetch_row(t.data.as_ptr(), ra as usize * d, d);
                }
                for (o, &x) in dst.iter_mut().zip(t.row(rows[k] as usize)) {
                    o.write(x);
                }
            }
        };
        let spare = &mut out.spare_capacity_mut()[..rows.len() * d];
        let per = rows_per_task(rows.len(), d, t.data.len() * std::mem::size_of::<f32>());
        if per >= rows.len() {
            copy(0, spare);
        } else {
            use rayon::prelude::*;
            spare
                .par_chunks_mut(per * d)
                .enumerate()
                .for_each(|(c, chunk)| copy(c * per, chunk));
        }
        // SAFETY: `copy` wrote every one of the first `rows.len() * d`
        // floats (one row per `d`-chunk, all chunks).
        unsafe { out.set_len(rows.len() * d) };
        Ok((out, d))
    }

    /// The whole table (inference): made once and kept until the table's
    /// weights change, so that every block of users of an evaluation gets
    /// the same tensor instead of a copy of the table each.
    pub fn all(&mut self, name: &str, dtype: DType, device: &Device) -> Result<Tensor, String> {
        let t = self
            .tables
            .get_mut(name)
            .ok_or_else(|| format!("embedding '{name}' is not declared"))?;
        if let Some(w) = &t.whole {
            if w.dtype() == dtype && w.device().same_device(device) {
                return Ok(w.clone());
            }
        }
        let w = Tensor::from_slice(&t.data, (t.rows, t.dim), device)
            .and_then(|x| x.to_dtype(dtype))
            .map_err(|e| e.to_string())?;
        t.whole = Some(w.clone());
        Ok(w)
    }
}

/// The optimizer state of one dense parameter, for checkpoints: Adam's
/// moments (Adagrad's accumulator is `v`), on the CPU.
pub struct DenseMoments {
    pub m: Tensor,
    pub v: Tensor,
}

impl DenseOptimizer {
    /// The step counter and every parameter's moments (checkpoints).
    pub fn export_state(&self) -> (u64, BTreeMap<String, DenseMoments>) {
        let state = self
            .state
            .iter()
            .map(|(k, s)| {
                let m = DenseMoments {
                    m: s.m.clone(),
                    v: s.v.clone(),
                };
                (k.clone(), m)
            })
            .collect();
        (self.step, state)
    }

    /// Restore what [`DenseOptimizer::export_state`] returned; the moments
    /// are moved to `device`.
    pub fn import_state(
        &mut self,
        step: u64,
        state: BTreeMap<String, DenseMoments>,
        device: &Device,
    ) -> candle_core::Result<()> {
        self.step = step;
        self.state.clear();
        for (k, s) in state {
            let (m, v) = (s.m.to_device(device)?, s.v.to_device(device)?);
            self.state.insert(k, DenseState { m, v });
        }
        Ok(())
    }
}

/// The row-wise optimizer state of one table, for checkpoints: first and
/// second moments (`rows * dim`, empty until the first adaptive update) and
/// per-row Adam step counts (`rows`, empty unless Adam).
pub struct RowState {
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    pub t: Vec<u32>,
}

impl Table {
    /// The row-wise optimizer state as whole-table arrays (rows never
    /// updated hold zeros), for checkpoints.
    pub fn export_state(&self) -> RowState {
        let d = self.dim;
        if self.state.is_empty() {
            return RowState {
                m: Vec::new(),
                v: Vec::new(),
                t: Vec::new(),
            };
        }
        let adam = self.moments == 2;
        let mut m = vec![0.0; self.rows * d];
        let mut v = if adam {
            vec![0.0; self.rows * d]
        } else {
            Vec::new()
        };
        let mut t = if adam { vec![0; self.rows] } else { Vec::new() };
        for (r, e) in self.slot.iter().enumerate() {
            if e.slot == 0 {
                continue;
            }
            let record = self.state.row(e.slot as usize - 1);
            m[r * d..(r + 1) * d].copy_from_slice(&record[..d]);
            if adam {
                v[r * d..(r + 1) * d].copy_from_slice(&record[d..]);
                t[r] = e.t;
            }
        }
        RowState { m, v, t }
    }

    /// Restore a row-wise optimizer state; lengths must fit the table.
    /// Rows with state (a step count, or any non-zero moment) get slots.
    pub fn import_state(&mut self, s: RowState) -> Result<(), String> {
        let (d, n) = (self.dim, self.rows * self.dim);
        for (what, len, want) in [
            ("first moments", s.m.len(), n),
            ("second moments", s.v.len(), n),
            ("step counts", s.t.len(), self.rows),
        ] {
            if len != 0 && len != want {
                return Err(format!(
                    "{what}: {len} values for a [{}, {}] table (expected {want} or none)",
                    self.rows, self.dim
                ));
            }
        }
        if s.m.is_empty() {
            self.reset_state(0);
            return Ok(());
        }
        let adam = !s.t.is_empty();
        self.reset_state(if adam { 2 } else { 1 });
        for r in 0..self.rows {
            let row = r * d..(r + 1) * d;
            let used = if adam {
                s.t[r] > 0
            } else {
                s.m[row.clone()].iter().any(|&x| x != 0.0)
            };
            if !used {
                continue;
            }
            let slot = self.slot_of(r);
            let record = self.state.row_mut(slot);
            record[..d].copy_from_slice(&s.m[row.clone()]);
            if adam {
                record[d..].copy_from_slice(&s.v[row]);
                self.slot[r].t = s.t[r];
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_fill_blocks_of_doubling_size_in_order() {
        // Block k holds FIRST_BLOCK << k slots, starting at FIRST_BLOCK * (2^k - 1).
        assert_eq!(block_of(0), (0, 0));
        assert_eq!(block_of(FIRST_BLOCK - 1), (0, FIRST_BLOCK - 1));
        assert_eq!(block_of(FIRST_BLOCK), (1, 0));
        assert_eq!(block_of(3 * FIRST_BLOCK - 1), (1, 2 * FIRST_BLOCK - 1));
        assert_eq!(block_of(3 * FIRST_BLOCK), (2, 0));
        assert_eq!(block_of(7 * FIRST_BLOCK + 5), (3, 5));
        // Every slot lands once, rows keep their values as blocks are added.
        let mut s = SlotRows::new(3, usize::MAX);
        for i in 0..(7 * FIRST_BLOCK + 2) {
            assert_eq!(s.push_zeros(), i);
            assert_eq!(s.row(i), &[0.0; 3]);
            s.row_mut(i).copy_from_slice(&[i as f32, 1.0, -(i as f32)]);
        }
        assert_eq!(s.blocks.len(), 4);
        for i in (0..s.len()).step_by(97) {
            assert_eq!(s.row(i), &[i as f32, 1.0, -(i as f32)]);
        }
        let shared = s.shared();
        // SAFETY: one thread, a slot in use.
        let last = unsafe { shared.slot(7 * FIRST_BLOCK + 1) };
        assert_eq!(last[0], (7 * FIRST_BLOCK + 1) as f32);
    }

    #[test]
    fn eager_state_is_allocated_for_every_row_at_the_first_update_lazy_state_as_rows_come() {
        let mut s = SlotRows::new(2, usize::MAX);
        s.reserve(5000);
        // 1024 + 2048 + 4096 slots cover 5000; pushing into them adds no block.
        assert_eq!(s.blocks.len(), 3);
        for _ in 0..7168 {
            s.push_zeros();
        }
        assert_eq!(s.blocks.len(), 3);
        s.push_zeros();
        assert_eq!(s.blocks.len(), 4);
        // The last block is cut to the table's rows.
        let mut cut = SlotRows::new(2, 5000);
        cut.reserve(usize::MAX);
        let sizes: Vec<usize> = cut.blocks.iter().map(|b| b.len() / 2).collect();
        assert_eq!(sizes, [1024, 2048, 5000 - 3072]);
        for i in 0..5000 {
            assert_eq!(cut.push_zeros(), i);
        }
        assert_eq!(cut.row(4999), &[0.0; 2]);

        let table_with = |policy: TableState, kind: &str| {
            let cfg = OptimConfig {
                table_state: policy,
                kind: kind.into(),
                ..OptimConfig::default()
            };
            let mut t = Table::new(3000, 4, Init::ZEROS, 1);
            t.update(&[7], &[0.1; 4], &cfg);
            t.update(&[2999], &[0.2; 4], &cfg);
            t
        };
        let eager = table_with(TableState::Eager, "adam");
        assert_eq!(eager.state.blocks.len(), 2);
        // A slot holds both of Adam's moments.
        assert_eq!(eager.state.blocks[1].len(), (3000 - 1024) * 4 * 2);
        assert_eq!(eager.state_rows(), 2);
        let adagrad = table_with(TableState::Eager, "adagrad");
        assert_eq!(adagrad.state.blocks.len(), 2);
        assert_eq!(adagrad.state.blocks[1].len(), (3000 - 1024) * 4);
        let lazy = table_with(TableState::Lazy, "adam");
        assert_eq!(lazy.state.blocks.len(), 1);
        assert_eq!(lazy.state_rows(), 2);
        // Same values either way.
        assert_eq!(eager.export_state().m, lazy.export_state().m);
        assert_eq!(eager.data(), lazy.data());
        // Auto: a small table's state fits in any machine's memory.
        let auto = table_with(TableState::Auto, "adam");
        assert_eq!(auto.state.blocks.len(), 2);
        assert!(eager_state(TableState::Auto, 1 << 20));
        assert!(!eager_state(TableState::Auto, usize::MAX));
        assert!(!eager_state(TableState::Lazy, 1));
        for (text, want) in [
            ("auto", TableState::Auto),
            ("eager", TableState::Eager),
            ("lazy", TableState::Lazy),
        ] {
            assert_eq!(TableState::parse(text), Ok(want));
        }
        let err = TableState::parse("dense").unwrap_err();
        assert!(
            err.contains("table_state") && err.contains("\"dense\""),
            "{err}"
        );
    }

    #[test]
    fn cached_bias_corrections_are_the_computed_ones_for_the_rule_asked() {
        let mut cache = BiasCorrections::default();
        let rule = Rule::of(&OptimConfig::default());
        let other = Rule::of(&OptimConfig {
            beta2: 0.99,
            ..OptimConfig::default()
        });
        for t in [
            1,
            2,
            3,
            17,
            1000,
            BIAS_CACHE_STEPS - 1,
            BIAS_CACHE_STEPS,
            1 << 20,
        ] {
            assert_eq!(cache.get(&rule, t), rule.corrections(t), "t = {t}");
            assert_eq!(cache.get(&other, t), other.corrections(t), "t = {t}");
        }
        // Past saturation (beta2 = 0.999 in f32: 18,014) every count gives the same
        // corrections, the ones computed: lr and 1.
        let _ = cache.get(&rule, 20_000);
        assert_eq!(cache.saturated_at, Some(18_014));
        for t in (18_014..200_000).step_by(997) {
            assert_eq!(cache.get(&rule, t), rule.corrections(t), "t = {t}");
        }
        assert_eq!(
            cache.get(&rule, 1 << 30),
            Corrections {
                step: 1e-3,
                inv_sqrt_c2: 1.0
            }
        );
        // A beta2 this close to 1 saturates past the cache: computed there.
        let slow = Rule::of(&OptimConfig {
            beta2: 0.99999,
            ..OptimConfig::default()
        });
        for t in [5, BIAS_CACHE_STEPS + 3, 3_000_000] {
            assert_eq!(cache.get(&slow, t), slow.corrections(t), "t = {t}");
        }
        assert_eq!(cache.saturated_at, None);
        // By hand: lr / (1 - 0.9), 1 / sqrt(1 - 0.999) at t = 1.
        let c = cache.get(&rule, 1);
        assert!((c.step - 1e-2).abs() < 1e-7, "{c:?}");
        assert!(
            (c.inv_sqrt_c2 - 1.0 / 0.001f32.sqrt()).abs() < 1e-3,
            "{c:?}"
        );
        assert!(cache.by_t.len() <= BIAS_CACHE_STEPS as usize);
        // The runtime's powi, bit for bit.
        for t in [0u32, 1, 2, 3, 7, 100, 4097, 65_535] {
            let n = std::hint::black_box(t as i32);
            for b in [0.9f32, 0.999, 0.99] {
                assert_eq!(
                    pow_by_squaring(b, t).to_bits(),
                    b.powi(n).to_bits(),
                    "{b}^{t}"
                );
            }
        }
    }

    #[test]
    fn distinct_rows_are_told_from_repeated_ones_and_the_marks_are_cleared() {
        let mut t = Table::new(200, 2, Init::ZEROS, 1);
        assert!(t.distinct(&[3, 64, 199, 0]));
        assert!(!t.distinct(&[5, 70, 5]));
        assert!(!t.distinct(&[128, 129, 128]));
        // No mark is left behind by either answer.
        assert!(t.seen.iter().all(|&w| w == 0));
        assert!(t.distinct(&[5, 70, 128, 129]));
    }

    #[test]
    fn a_gather_copies_the_rows_asked_on_one_thread_or_many() {
        let mut store = TableStore::new(3);
        store.declare("t", 5000, 64, Init::normal(0.1)).unwrap();
        let t = &store.tables["t"];
        // 4000 x 64 floats is past PAR_FLOATS (copied in parallel chunks),
        // 10 x 64 is not; rows out of order and repeated.
        for n in [10usize, 4000] {
            assert_eq!(n * 64 >= PAR_FLOATS, n == 4000);
            let rows: Vec<u32> = (0..n as u32).map(|k| (k * 7919) % 5000).collect();
            let got = store.gather("t", &rows, DType::F32, &Device::Cpu).unwrap();
            let got: Vec<Vec<f32>> = got.as_tensor().to_vec2().unwrap();
            for (k, &r) in rows.iter().enumerate() {
                assert_eq!(got[k], t.row(r as usize), "row {r} at {k}");
            }
        }
        let err = store
            .gather("t", &[1, 5000], DType::F32, &Device::Cpu)
            .unwrap_err();
        assert!(
            err.contains("id 5000") && err.contains("5000 rows"),
            "{err}"
        );
    }

    #[test]
    fn small_work_stays_on_one_thread_unless_the_table_is_out_of_cache() {
        let threads = rayon::current_num_threads();
        let small_table = 1 << 20;
        let big_table = CACHE_BYTES + 1;
        // 2048 x 64 floats: in parallel, 512 rows a task, any table.
        assert_eq!(rows_per_task(2048, 64, small_table), 512);
        assert_eq!(rows_per_task(2048, 64, big_table), 512);
        // 8192 one-wide rows: one thread in cache, split over the threads
        // when every row waits on DRAM.
        assert_eq!(rows_per_task(8192, 1, small_table), 8192);
        assert_eq!(
            rows_per_task(8192, 1, big_table),
            8192usize.div_ceil(threads)
        );
        // Too few rows to split either way.
        assert_eq!(rows_per_task(100, 1, big_table), 100);
    }

    #[test]
    fn a_rule_with_other_moments_starts_the_state_over() {
        let cfg = |kind: &str| OptimConfig {
            kind: kind.into(),
            ..OptimConfig::default()
        };
        let mut t = Table::new(100, 3, Init::ZEROS, 1);
        t.update(&[4, 9], &[0.5; 6], &cfg("adagrad"));
        assert_eq!((t.moments, t.state_rows()), (1, 2));
        let adagrad = t.export_state();
        assert!(adagrad.t.is_empty() && adagrad.v.is_empty());
        assert_eq!(adagrad.m[4 * 3], 0.25);
        // Adam needs two moments per row: its state starts empty, and its
        // first step is a first step (the same as on a fresh state).
        let w = t.data.clone();
        t.update(&[9], &[0.5; 3], &cfg("adam"));
        assert_eq!((t.moments, t.state_rows()), (2, 1));
        let mut fresh = Table::new(100, 3, Init::ZEROS, 1);
        fresh.data = w;
        fresh.update(&[9], &[0.5; 3], &cfg("adam"));
        assert_eq!(t.data, fresh.data);
        let adam = t.export_state();
        assert_eq!((adam.t[9], adam.t[4]), (1, 0));
        assert_eq!(adam.m, fresh.export_state().m);
        assert_eq!(adam.v, fresh.export_state().v);
        // An imported Adagrad state trained on with Adam starts over too.
        t.import_state(adagrad).unwrap();
        assert_eq!((t.moments, t.state_rows()), (1, 2));
        t.update(&[4], &[0.5; 3], &cfg("adam"));
        assert_eq!((t.moments, t.state_rows()), (2, 1));
    }
}
