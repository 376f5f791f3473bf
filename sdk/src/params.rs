//! Component parameters: a schema of named parameters with defaults and help,
//! and typed access to the values a recipe passed (as RON text).

use std::collections::BTreeMap;

use ron::Value;

use crate::abi::ParamInfo;
use crate::model::Result;

/// One declared parameter: name, default (RON text) and help.
#[derive(Clone, Debug)]
pub struct ParamSpec {
    pub name: String,
    pub default_ron: String,
    pub help: String,
}

impl ParamSpec {
    /// Declare a parameter with a default value.
    pub fn new(name: &str, default: impl serde::Serialize, help: &str) -> ParamSpec {
        let default_ron =
            ron::to_string(&default).unwrap_or_else(|e| format!("<unserialisable: {e}>"));
        ParamSpec {
            name: name.into(),
            default_ron,
            help: help.into(),
        }
    }

    /// The boundary form.
    pub fn to_info(&self) -> ParamInfo {
        ParamInfo {
            name: self.name.as_str().into(),
            default_ron: self.default_ron.as_str().into(),
            help: self.help.as_str().into(),
        }
    }
}

/// Parameter values of one component: the recipe's values over the defaults.
#[derive(Clone, Debug)]
pub struct Params {
    component: String,
    values: BTreeMap<String, Value>,
}

fn parse_value(text: &str, what: &str) -> Result<Value> {
    ron::from_str::<Value>(text).map_err(|e| format!("{what}: not valid RON ({e}): {text}"))
}

impl Params {
    /// Parse `ron_text` (a map `{"name": value, ...}`, or empty) against `specs`.
    /// An unknown name is an error that lists the valid ones.
    pub fn parse(component: &str, specs: &[ParamSpec], ron_text: &str) -> Result<Params> {
        let mut values = BTreeMap::new();
        for s in specs {
            values.insert(
                s.name.clone(),
                parse_value(&s.default_ron, &format!("default of '{}'", s.name))?,
            );
        }
        let text = ron_text.trim();
        if !text.is_empty() {
            let given = match parse_value(text, &format!("parameters of {component}"))? {
                Value::Map(m) => m,
                Value::Unit => Default::default(),
                other => {
                    return Err(format!(
                        "parameters of {component}: expected a map, got {other:?}"
                    ))
                }
            };
            for (k, v) in given.into_iter() {
                let key = match k {
                    Value::String(s) => s,
                    other => {
                        return Err(format!(
                            "parameters of {component}: key {other:?} is not a name"
                        ))
                    }
                };
                if !values.contains_key(&key) {
                    let valid: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
                    return Err(format!(
                        "unknown parameter '{key}' for {component}; valid parameters: {}",
                        if valid.is_empty() {
                            "(none)".to_string()
                        } else {
                            valid.join(", ")
                        }
                    ));
                }
                values.insert(key, v);
            }
        }
        Ok(Params {
            component: component.into(),
            values,
        })
    }

    fn get(&self, name: &str) -> Result<&Value> {
        self.values
            .get(name)
            .ok_or_else(|| format!("{}: parameter '{name}' is not declared", self.component))
    }

    fn bad(&self, name: &str, expected: &str, v: &Value) -> String {
        format!(
            "{}: parameter '{name}' must be {expected}, got {v:?}",
            self.component
        )
    }

    /// A number.
    pub fn f64(&self, name: &str) -> Result<f64> {
        match self.get(name)? {
            Value::Number(n) => Ok(n.into_f64()),
            v => Err(self.bad(name, "a number", v)),
        }
    }

    /// A non-negative integer.
    pub fn usize(&self, name: &str) -> Result<usize> {
        let v = self.get(name)?;
        let x = match v {
            Value::Number(n) => n.into_f64(),
            _ => return Err(self.bad(name, "a non-negative integer", v)),
        };
        if x < 0.0 || x.fract() != 0.0 {
            return Err(self.bad(name, "a non-negative integer", v));
        }
        Ok(x as usize)
    }

    /// A boolean.
    pub fn bool(&self, name: &str) -> Result<bool> {
        match self.get(name)? {
            Value::Bool(b) => Ok(*b),
            v => Err(self.bad(name, "true or false", v)),
        }
    }

    /// A string.
    pub fn string(&self, name: &str) -> Result<String> {
        match self.get(name)? {
            Value::String(s) => Ok(s.clone()),
            v => Err(self.bad(name, "a string", v)),
        }
    }

    /// A list of non-negative integers.
    pub fn usize_list(&self, name: &str) -> Result<Vec<usize>> {
        match self.get(name)? {
            Value::Seq(items) => items
                .iter()
                .map(|v| match v {
                    Value::Number(n) if n.into_f64() >= 0.0 && n.into_f64().fract() == 0.0 => {
                        Ok(n.into_f64() as usize)
                    }
                    _ => Err(self.bad(name, "a list of non-negative integers", v)),
                })
                .collect(),
            v => Err(self.bad(name, "a list of non-negative integers", v)),
        }
    }

    /// Hidden layer sizes, as text (`"80,40"`) or as a list (`[80, 40]`):
    /// at least one size, none of them 0.
    pub fn layer_sizes(&self, name: &str) -> Result<Vec<usize>> {
        let sizes = match self.get(name)? {
            Value::String(text) => text
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<usize>().map_err(|_| {
                        format!(
                            "{}: parameter '{name}' ({text:?}): '{s}' is not a non-negative integer",
                            self.component
                        )
                    })
                })
                .collect::<Result<Vec<usize>>>()?,
            _ => self.usize_list(name)?,
        };
        if sizes.is_empty() || sizes.contains(&0) {
            return Err(format!(
                "{}: parameter '{name}' needs at least one layer size and no size 0, got {sizes:?}",
                self.component
            ));
        }
        Ok(sizes)
    }

    /// A finite number `>= 0` (a loss weight, an exponent).
    pub fn non_negative(&self, name: &str) -> Result<f64> {
        let x = self.f64(name)?;
        if !(x >= 0.0 && x.is_finite()) {
            return Err(format!(
                "{}: parameter '{name}' must be a finite number >= 0, got {x}",
                self.component
            ));
        }
        Ok(x)
    }

    /// A probability in `[0, 1)`.
    pub fn rate(&self, name: &str) -> Result<f64> {
        let p = self.f64(name)?;
        if !(0.0..1.0).contains(&p) {
            return Err(format!(
                "{}: parameter '{name}' must be in [0, 1), got {p}",
                self.component
            ));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs() -> Vec<ParamSpec> {
        vec![
            ParamSpec::new("dim", 64, "embedding size"),
            ParamSpec::new("dropout", 0.1, "dropout rate"),
            ParamSpec::new("layers", vec![64usize, 32], "hidden sizes"),
        ]
    }

    #[test]
    fn defaults_and_overrides() {
        let p = Params::parse("nfm", &specs(), r#"{"dim": 16}"#).unwrap();
        assert_eq!(p.usize("dim").unwrap(), 16);
        assert!((p.f64("dropout").unwrap() - 0.1).abs() < 1e-12);
        assert_eq!(p.usize_list("layers").unwrap(), vec![64, 32]);
    }

    #[test]
    fn unknown_name_lists_valid() {
        let e = Params::parse("nfm", &specs(), r#"{"dims": 16}"#).unwrap_err();
        assert!(e.contains("unknown parameter 'dims'"), "{e}");
        assert!(e.contains("dim, dropout, layers"), "{e}");
    }

    #[test]
    fn wrong_type_is_named() {
        let p = Params::parse("nfm", &specs(), r#"{"dim": 1.5}"#).unwrap();
        let e = p.usize("dim").unwrap_err();
        assert!(e.contains("'dim' must be a non-negative integer"), "{e}");
        let p = Params::parse("nfm", &specs(), r#"{"dropout": 1.0}"#).unwrap();
        assert!(p.rate("dropout").is_err());
        let p = Params::parse("nfm", &specs(), r#"{"dropout": -0.5}"#).unwrap();
        let e = p.non_negative("dropout").unwrap_err();
        assert!(
            e.contains("nfm: parameter 'dropout' must be a finite number >= 0"),
            "{e}"
        );
        assert_eq!(p.non_negative("dim").unwrap(), 64.0);
    }

    #[test]
    fn layer_sizes_from_text_or_list() {
        let specs = vec![
            ParamSpec::new("a", "80,40", ""),
            ParamSpec::new("b", vec![200, 80], ""),
            ParamSpec::new("c", "80,x", ""),
            ParamSpec::new("d", " 200 , 80 ,", ""),
            ParamSpec::new("e", "80,0", ""),
        ];
        let p = Params::parse("t", &specs, "{}").unwrap();
        assert_eq!(p.layer_sizes("a").unwrap(), vec![80, 40]);
        assert_eq!(p.layer_sizes("b").unwrap(), vec![200, 80]);
        assert_eq!(p.layer_sizes("d").unwrap(), vec![200, 80]);
        let e = p.layer_sizes("c").unwrap_err();
        assert!(e.contains("t: parameter 'c'") && e.contains("'x'"), "{e}");
        assert!(p.layer_sizes("e").unwrap_err().contains("no size 0"));
    }
}
