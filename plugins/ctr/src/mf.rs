//! MF: biased matrix factorisation, `y = <p_u, q_i> + b_u + b_i + b` (Koren et al. 2009);
//! `global_bias: false` drops `b` (the CTAR authors' MF).

use causalrec_sdk::{
    BackboneImpl, BackboneInfo, ComponentDef, Ctx, Emb, Init, ParamSpec, Params, Result, Var,
};

pub struct Mf {
    dim: usize,
    init_std: f64,
    global_bias: bool,
}

pub fn def() -> ComponentDef {
    ComponentDef::backbone(
        "mf",
        "Biased matrix factorisation: <p_u, q_i> + b_u + b_i + b",
        vec![
            ParamSpec::new("dim", 64, "embedding size d"),
            ParamSpec::new(
                "init_std",
                0.1,
                "standard deviation of the normal initialisation",
            ),
            ParamSpec::new(
                "global_bias",
                true,
                "add the global bias b (false: the user and item biases carry the mean)",
            ),
        ],
        |p: &Params| {
            Ok(Mf {
                dim: p.usize("dim")?,
                init_std: p.f64("init_std")?,
                global_bias: p.bool("global_bias")?,
            })
        },
    )
}

impl Mf {
    fn declare(&self, g: &Ctx<'_, '_>) {
        let s = g.schema();
        g.embedding(
            "user",
            s.n_users as usize,
            self.dim,
            Init::normal(self.init_std),
        );
        g.embedding(
            "item",
            s.n_items as usize,
            self.dim,
            Init::normal(self.init_std),
        );
        g.embedding("user_bias", s.n_users as usize, 1, Init::ZEROS);
        g.embedding("item_bias", s.n_items as usize, 1, Init::ZEROS);
    }
}

impl Mf {
    /// `y + b` with the global bias, or `y` without it.
    fn plus_global_bias<'c>(&self, g: &'c Ctx<'_, '_>, y: Var<'c>) -> Var<'c> {
        if self.global_bias {
            y + g.param("bias", &[1], Init::ZEROS)
        } else {
            y
        }
    }
}

impl BackboneImpl for Mf {
    fn info(&self) -> BackboneInfo {
        BackboneInfo {
            field_interaction: false,
            score_all: true,
            needs_history: false,
            dim: self.dim as u64,
        }
    }

    fn embed(&self, g: &Ctx<'_, '_>) -> Result<Emb> {
        self.declare(g);
        let u = g.input("user");
        let mut emb = Emb::default();
        emb.set("user", g.lookup("user", u).id);
        emb.set("user_bias", g.lookup("user_bias", u).squeeze(-1).id);
        // All-ranking batches carry users only.
        if let Some(i) = g.try_input("item") {
            emb.set("item", g.lookup("item", i).id);
            emb.set("item_bias", g.lookup("item_bias", i).squeeze(-1).id);
        }
        Ok(emb)
    }

    fn predict<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        user: Var<'c>,
        item: Var<'c>,
        emb: &Emb,
    ) -> Result<Var<'c>> {
        let y = (user * item).sum(-1) + g.get(emb, "user_bias")? + g.get(emb, "item_bias")?;
        Ok(self.plus_global_bias(g, y))
    }

    fn score_all<'c>(&self, g: &'c Ctx<'_, '_>, user: Var<'c>) -> Result<Option<Var<'c>>> {
        self.declare(g);
        let items = g.table_all("item");
        let item_bias = g.table_all("item_bias").transpose(0, 1);
        let user_bias = g.lookup("user_bias", g.input("user"));
        let y = user.matmul(items.transpose(0, 1)) + item_bias + user_bias;
        Ok(Some(self.plus_global_bias(g, y)))
    }
}
