//! Layers for plugin code: `Linear`, `Mlp`, additive and scaled dot-product attention.
//! Each layer names its parameters under a prefix, so two instances never collide.

use crate::abi::Init;
use crate::model::{Ctx, Var};

/// Activation functions by name.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    Relu,
    Tanh,
    Sigmoid,
    Gelu,
    LeakyRelu(f64),
    Identity,
}

impl Act {
    /// Parse `relu`, `tanh`, `sigmoid`, `gelu`, `leaky_relu`, `identity`.
    pub fn parse(s: &str) -> Result<Act, String> {
        Ok(match s {
            "relu" => Act::Relu,
            "tanh" => Act::Tanh,
            "sigmoid" => Act::Sigmoid,
            "gelu" => Act::Gelu,
            "leaky_relu" => Act::LeakyRelu(0.01),
            "identity" | "none" => Act::Identity,
            other => {
                return Err(format!(
                "unknown activation '{other}' (relu, tanh, sigmoid, gelu, leaky_relu, identity)"
            ))
            }
        })
    }
    /// Apply.
    pub fn apply(self, x: Var<'_>) -> Var<'_> {
        match self {
            Act::Relu => x.relu(),
            Act::Tanh => x.tanh(),
            Act::Sigmoid => x.sigmoid(),
            Act::Gelu => x.gelu(),
            Act::LeakyRelu(s) => x.leaky_relu(s),
            Act::Identity => x,
        }
    }
}

/// `y = x W + b` over the last dim.
#[derive(Clone, Debug)]
pub struct Linear {
    pub name: String,
    pub input: usize,
    pub output: usize,
    pub bias: bool,
}

impl Linear {
    /// A layer named `name` from `input` to `output` features.
    pub fn new(name: &str, input: usize, output: usize) -> Linear {
        Linear {
            name: name.into(),
            input,
            output,
            bias: true,
        }
    }
    /// Without bias.
    pub fn no_bias(mut self) -> Linear {
        self.bias = false;
        self
    }
    /// Apply to `x` of shape `[.., input]`.
    pub fn forward<'c>(&self, g: &'c Ctx<'_, '_>, x: Var<'c>) -> Var<'c> {
        let w = g.param(
            &format!("{}.weight", self.name),
            &[self.input, self.output],
            Init::XAVIER,
        );
        let shape = x.shape();
        let y = if shape.len() == 2 {
            x.matmul(w)
        } else {
            let lead: Vec<i64> = shape[..shape.len().saturating_sub(1)]
                .iter()
                .map(|&d| d as i64)
                .collect();
            let mut out = lead.clone();
            out.push(self.output as i64);
            x.reshape(&[-1, self.input as i64]).matmul(w).reshape(&out)
        };
        if self.bias {
            y + g.param(&format!("{}.bias", self.name), &[self.output], Init::ZEROS)
        } else {
            y
        }
    }
}

/// A multi-layer perceptron: Linear -> act -> dropout per hidden layer, then an
/// optional linear output layer without activation.
#[derive(Clone, Debug)]
pub struct Mlp {
    pub layers: Vec<Linear>,
    pub act: Act,
    pub dropout: f64,
    /// Apply the activation after the last layer too.
    pub act_last: bool,
}

impl Mlp {
    /// Sizes `[input, h1, ..., out]`.
    pub fn new(name: &str, sizes: &[usize], act: Act, dropout: f64) -> Mlp {
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, w)| Linear::new(&format!("{name}.{i}"), w[0], w[1]))
            .collect();
        Mlp {
            layers,
            act,
            dropout,
            act_last: true,
        }
    }
    /// No activation after the last layer.
    pub fn linear_output(mut self) -> Mlp {
        self.act_last = false;
        self
    }
    /// Apply.
    pub fn forward<'c>(&self, g: &'c Ctx<'_, '_>, mut x: Var<'c>) -> Var<'c> {
        let n = self.layers.len();
        for (i, l) in self.layers.iter().enumerate() {
            x = l.forward(g, x);
            if i + 1 < n || self.act_last {
                x = self.act.apply(x);
                if self.dropout > 0.0 {
                    x = x.dropout(self.dropout);
                }
            }
        }
        x
    }
}

/// Additive attention pooling (Bahdanau-style, as in NRHUB/DIN-like pooling):
/// `a_l = softmax_l(q^T tanh(W k_l + b))` over masked positions; returns `sum_l a_l v_l`.
#[derive(Clone, Debug)]
pub struct AdditiveAttention {
    pub proj: Linear,
    pub query: String,
    pub hidden: usize,
}

impl AdditiveAttention {
    /// Keys of width `dim`, hidden size `hidden`.
    pub fn new(name: &str, dim: usize, hidden: usize) -> Self {
        AdditiveAttention {
            proj: Linear::new(&format!("{name}.proj"), dim, hidden),
            query: format!("{name}.query"),
            hidden,
        }
    }
    /// Pool `x: [B, L, d]` with `mask: [B, L]` into `[B, d]`.
    pub fn forward<'c>(&self, g: &'c Ctx<'_, '_>, x: Var<'c>, mask: Option<Var<'c>>) -> Var<'c> {
        let q = g.param(&self.query, &[self.hidden, 1], Init::XAVIER);
        let h = self.proj.forward(g, x).tanh();
        let b = x.dim(0) as i64;
        let l = x.dim(1) as i64;
        let scores = h
            .reshape(&[-1, self.hidden as i64])
            .matmul(q)
            .reshape(&[b, l]);
        let a = match mask {
            Some(m) => scores.masked_softmax(1, m),
            None => scores.softmax(1),
        };
        (a.unsqueeze(1).matmul(x)).squeeze(1)
    }
}

/// Scaled dot-product attention: `softmax(Q K^T / sqrt(d) [mask]) V`.
/// `q: [B, Lq, d]`, `k, v: [B, Lk, d]`, `mask: [B, Lk]` (1 = attend).
pub fn dot_attention<'c>(q: Var<'c>, k: Var<'c>, v: Var<'c>, mask: Option<Var<'c>>) -> Var<'c> {
    let d = q.dim(-1).max(1) as f64;
    let scores = q.matmul(k.transpose(1, 2)) * (1.0 / d.sqrt());
    let a = match mask {
        Some(m) => scores.masked_softmax(-1, m.unsqueeze(1)),
        None => scores.softmax(-1),
    };
    a.matmul(v)
}
