//! Versioned op codes of the graph handle.
//!
//! An op is `(code, inputs, ints, floats)`. Codes are never reused or
//! renumbered: a newer host adds codes and bumps [`OP_SET_VERSION`]; a plugin
//! records the op-set version it was built with, and the host refuses a
//! plugin that needs a newer op set than it implements.
//!
//! Conventions: dims are `i64` and may be negative (counted from the end);
//! broadcasting follows numpy rules for the binary ops.

/// The op-set version this SDK describes.
pub const OP_SET_VERSION: u32 = 3;

macro_rules! op_codes {
    ($( $(#[$doc:meta])* $name:ident = $code:expr ),* $(,)?) => {
        $( $(#[$doc])* pub const $name: u32 = $code; )*
        /// Name of an op code, for error messages.
        pub fn op_name(code: u32) -> &'static str {
            match code { $( $code => stringify!($name), )* _ => "UNKNOWN" }
        }
        /// Every op code of this op set.
        pub const ALL: &[u32] = &[$($code),*];
    };
}

op_codes! {
    /// `a + b` (broadcast).
    ADD = 1,
    /// `a - b` (broadcast).
    SUB = 2,
    /// `a * b` (broadcast).
    MUL = 3,
    /// `a / b` (broadcast).
    DIV = 4,
    /// Batched matrix product `[.., m, k] x [.., k, n]`; leading dims broadcast.
    MATMUL = 5,
    /// `-a`.
    NEG = 6,
    /// `exp(a)`.
    EXP = 7,
    /// `ln(a)`.
    LOG = 8,
    /// `sqrt(a)`.
    SQRT = 9,
    /// `|a|`.
    ABS = 10,
    /// `a ^ floats[0]`.
    POW = 11,
    /// Logistic sigmoid.
    SIGMOID = 12,
    /// Hyperbolic tangent.
    TANH = 13,
    /// `max(a, 0)`.
    RELU = 14,
    /// Leaky ReLU with negative slope `floats[0]`.
    LEAKY_RELU = 15,
    /// GELU (tanh approximation).
    GELU = 16,
    /// `ln(1 + exp(a))`, computed stably.
    SOFTPLUS = 17,
    /// Sum over `ints[0]`; `ints[1] != 0` keeps the dim.
    SUM = 18,
    /// Mean over `ints[0]`; `ints[1] != 0` keeps the dim.
    MEAN = 19,
    /// Max over `ints[0]`; `ints[1] != 0` keeps the dim.
    MAX = 20,
    /// Softmax over `ints[0]`; optional `inputs[1]` mask (1 keep, 0 drop; broadcast).
    SOFTMAX = 21,
    /// Log-softmax over `ints[0]`; optional `inputs[1]` mask.
    LOG_SOFTMAX = 22,
    /// Concatenate all inputs along `ints[0]`.
    CONCAT = 23,
    /// Narrow `ints[0]` to `[ints[1], ints[1] + ints[2])`.
    NARROW = 24,
    /// Reshape to `ints` (one `-1` allowed).
    RESHAPE = 25,
    /// Swap dims `ints[0]` and `ints[1]`.
    TRANSPOSE = 26,
    /// Permute dims to the order `ints`.
    PERMUTE = 27,
    /// Insert a dim of size 1 at `ints[0]`.
    UNSQUEEZE = 28,
    /// Remove the size-1 dim `ints[0]`.
    SQUEEZE = 29,
    /// Broadcast to the shape `ints`.
    BROADCAST_AS = 30,
    /// `index_select(inputs[0], ids = inputs[1], dim = ints[0])`; ids 1-D integers.
    INDEX_SELECT = 31,
    /// `gather(inputs[0], ids = inputs[1], dim = ints[0])`; ids same rank as input.
    GATHER = 32,
    /// `index_add(init = inputs[0], ids = inputs[1], src = inputs[2], dim = ints[0])`:
    /// message passing (scatter-sum of rows of `src` into rows `ids` of `init`).
    INDEX_ADD = 33,
    /// `where(cond = inputs[0], a = inputs[1], b = inputs[2])`: `a` where cond != 0.
    WHERE = 34,
    /// `masked_fill(x = inputs[0], mask = inputs[1], value = floats[0])`: value where mask != 0.
    MASKED_FILL = 35,
    /// Inverted dropout with rate `floats[0]`; identity outside training.
    DROPOUT = 36,
    /// Layer norm over the last dim, eps `floats[0]`; optional `inputs[1]` gain, `inputs[2]` bias.
    LAYER_NORM = 37,
    /// Stop-gradient.
    DETACH = 38,
    /// Mean binary cross-entropy with logits: `(logits, labels[, weights])` -> scalar.
    BCE_WITH_LOGITS = 39,
    /// Mean squared error: `(pred, target[, weights])` -> scalar.
    MSE = 40,
    /// Bayesian personalised ranking: `(pos, neg)` -> mean of `-ln sigmoid(pos - neg)`.
    BPR = 41,
    /// Cross-entropy: `(logits [N, C], class ids [N])` -> scalar mean.
    CROSS_ENTROPY = 42,
    /// `a * floats[0] + floats[1]`.
    AFFINE = 43,
    /// Sum of all elements -> scalar.
    SUM_ALL = 44,
    /// Mean of all elements -> scalar.
    MEAN_ALL = 45,
    /// Min over `ints[0]`; `ints[1] != 0` keeps the dim.
    MIN = 46,
    /// Clamp to `[floats[0], floats[1]]`.
    CLAMP = 47,
    /// `a * a`.
    SQUARE = 48,
    /// Cast an integer tensor (ids, masks) to the float dtype of the graph.
    TO_FLOAT = 49,
    /// Element-wise max of two tensors (broadcast).
    MAXIMUM = 50,
    /// Element-wise min of two tensors (broadcast).
    MINIMUM = 51,
    /// FM's bi-interaction pooling of the inputs (fields of one shape `[.., d]`):
    /// `0.5 * ((sum_f x_f)^2 - sum_f x_f^2)` -> `[.., d]` (op set v2).
    BI_INTERACTION = 52,
    /// DIN's Dice (Zhou et al. 2018, Eq. 9) with the batch's statistics:
    /// `(s [N, H], alpha [H][, weight [N, 1]])`, `floats[0]` eps ->
    /// `s (alpha + p (1 - alpha))`, `p = sigmoid((s - E[s]) / sqrt(Var[s] + eps))`,
    /// `E`, `Var` per unit over the rows weighted by `weight` (op set v2).
    DICE = 53,
    /// Message passing as one op: `(x [N, d], sources [E], targets [E])`,
    /// `ints[0]` rows `T` -> `[T, d]`, row `t` the sum of `x[sources[e]]`
    /// over the edges `e` with `targets[e] = t`, in edge order (zero without
    /// edges); the gradient sums back along the same edges. The value of
    /// `zeros([T, d]).index_add(targets, x.index_select(sources))` without
    /// the `[E, d]` messages (op set v3).
    EDGE_SUM = 54,
}
