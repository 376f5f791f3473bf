//! The plugin root module, component definitions and the export macro.
//!
//! A plugin crate writes:
//!
//! ```ignore
//! fn components() -> Vec<ComponentDef> { vec![ComponentDef::backbone("mf", "...", specs, |p| Ok(Mf::new(p)?))] }
//! causalrec_sdk::export_plugin!("ctr", components);
//! ```
//!
//! The root module is an `abi_stable` prefix type, so fields can be appended
//! by a newer SDK; the host checks its layout when loading the `.so`.

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings,
    sabi_trait::TD_Opaque,
    sabi_types::VersionStrings,
    std_types::{RResult, RStr, RString, RVec},
    StableAbi,
};

use crate::abi::{ComponentInfo, ComponentKind};
use crate::component::{
    guard, BackboneAdapter, BackboneImpl, BackboneRef, Backbone_TO, EstimatorAdapter,
    EstimatorImpl, EstimatorRef, Estimator_TO, LossAdapter, LossImpl, LossRef, Loss_TO,
};
use crate::model::Result;
use crate::params::{ParamSpec, Params};

/// A constructed component, as it crosses the boundary.
#[repr(C)]
#[derive(StableAbi)]
pub enum ComponentBox {
    Backbone(BackboneRef),
    Estimator(EstimatorRef),
    Loss(LossRef),
}

/// The root module every plugin exports.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
#[sabi(missing_field(option))]
pub struct PluginMod {
    /// The plugin's name.
    pub plugin_name: extern "C" fn() -> RString,
    /// The op-set version the plugin was built against.
    pub op_set_version: extern "C" fn() -> u32,
    /// The components it exports.
    pub components: extern "C" fn() -> RResult<RVec<ComponentInfo>, RString>,
    /// Construct a component from parameters (RON text).
    #[sabi(last_prefix_field)]
    pub create: extern "C" fn(
        kind: ComponentKind,
        name: RStr<'_>,
        params_ron: RStr<'_>,
    ) -> RResult<ComponentBox, RString>,
}

impl RootModule for PluginModRef {
    declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "causalrec_plugin";
    const NAME: &'static str = "causalrec_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

type Maker = Box<dyn Fn(&Params) -> Result<ComponentBox> + Send + Sync>;

/// One component a plugin exports: its description and its constructor.
pub struct ComponentDef {
    pub kind: ComponentKind,
    pub name: String,
    pub description: String,
    pub params: Vec<ParamSpec>,
    /// See [`ComponentInfo::estimand`].
    pub estimand: String,
    make: Maker,
}

impl ComponentDef {
    /// A backbone.
    pub fn backbone<T: BackboneImpl>(
        name: &str,
        description: &str,
        params: Vec<ParamSpec>,
        make: fn(&Params) -> Result<T>,
    ) -> ComponentDef {
        ComponentDef {
            kind: ComponentKind::Backbone,
            name: name.into(),
            description: description.into(),
            params,
            estimand: String::new(),
            make: Box::new(move |p| {
                Ok(ComponentBox::Backbone(Backbone_TO::from_value(
                    BackboneAdapter(make(p)?),
                    TD_Opaque,
                )))
            }),
        }
    }

    /// An estimator.
    pub fn estimator<T: EstimatorImpl>(
        name: &str,
        description: &str,
        params: Vec<ParamSpec>,
        make: fn(&Params) -> Result<T>,
    ) -> ComponentDef {
        ComponentDef {
            kind: ComponentKind::Estimator,
            name: name.into(),
            description: description.into(),
            params,
            estimand: String::new(),
            make: Box::new(move |p| {
                Ok(ComponentBox::Estimator(Estimator_TO::from_value(
                    EstimatorAdapter(make(p)?),
                    TD_Opaque,
                )))
            }),
        }
    }

    /// A loss.
    pub fn loss<T: LossImpl>(
        name: &str,
        description: &str,
        params: Vec<ParamSpec>,
        make: fn(&Params) -> Result<T>,
    ) -> ComponentDef {
        ComponentDef {
            kind: ComponentKind::Loss,
            name: name.into(),
            description: description.into(),
            params,
            estimand: String::new(),
            make: Box::new(move |p| {
                Ok(ComponentBox::Loss(Loss_TO::from_value(
                    LossAdapter(make(p)?),
                    TD_Opaque,
                )))
            }),
        }
    }

    /// Declare what the estimator targets (see [`ComponentInfo::estimand`]).
    pub fn with_estimand(mut self, estimand: &str) -> ComponentDef {
        self.estimand = estimand.into();
        self
    }

    /// The boundary description.
    pub fn info(&self) -> ComponentInfo {
        ComponentInfo {
            kind: self.kind,
            name: self.name.as_str().into(),
            description: self.description.as_str().into(),
            params: self.params.iter().map(ParamSpec::to_info).collect(),
            estimand: self.estimand.as_str().into(),
        }
    }
}

/// Implementation of `PluginMod::components` (used by [`export_plugin!`]).
pub fn describe(defs: fn() -> Vec<ComponentDef>) -> RResult<RVec<ComponentInfo>, RString> {
    guard("components", || {
        Ok(defs().iter().map(ComponentDef::info).collect())
    })
}

/// Implementation of `PluginMod::create` (used by [`export_plugin!`]).
pub fn create(
    defs: fn() -> Vec<ComponentDef>,
    kind: ComponentKind,
    name: RStr<'_>,
    params_ron: RStr<'_>,
) -> RResult<ComponentBox, RString> {
    guard("create", || {
        let all = defs();
        let def = all
            .iter()
            .find(|d| d.kind == kind && d.name == name.as_str())
            .ok_or_else(|| {
                let valid: Vec<&str> = all
                    .iter()
                    .filter(|d| d.kind == kind)
                    .map(|d| d.name.as_str())
                    .collect();
                format!(
                    "no {} named '{}' (valid: {})",
                    kind.as_str(),
                    name,
                    valid.join(", ")
                )
            })?;
        let params = Params::parse(
            &format!("{} '{}'", kind.as_str(), def.name),
            &def.params,
            params_ron.as_str(),
        )?;
        (def.make)(&params)
    })
}

/// Build the root module value (used by [`export_plugin!`]).
pub fn root_module(
    plugin_name: extern "C" fn() -> RString,
    components: extern "C" fn() -> RResult<RVec<ComponentInfo>, RString>,
    create: extern "C" fn(ComponentKind, RStr<'_>, RStr<'_>) -> RResult<ComponentBox, RString>,
) -> PluginModRef {
    use abi_stable::prefix_type::PrefixTypeTrait;
    extern "C" fn op_set_version() -> u32 {
        crate::ops::OP_SET_VERSION
    }
    PluginMod {
        plugin_name,
        op_set_version,
        components,
        create,
    }
    .leak_into_prefix()
}

/// The symbol abi_stable's loader looks up (checked against abi_stable by a test).
pub const ROOT_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

/// Export a plugin: `export_plugin!("name", components_fn)` where
/// `components_fn: fn() -> Vec<ComponentDef>`.
#[macro_export]
macro_rules! export_plugin {
    ($name:expr, $defs:ident) => {
        #[doc(hidden)]
        pub mod __causalrec_plugin_export {
            use $crate::abi_stable as __abi;
            use $crate::abi_stable::std_types::{RResult, RStr, RString, RVec};

            extern "C" fn plugin_name() -> RString {
                RString::from($name)
            }
            extern "C" fn components() -> RResult<RVec<$crate::abi::ComponentInfo>, RString> {
                $crate::plugin::describe(super::$defs)
            }
            extern "C" fn create(
                kind: $crate::abi::ComponentKind,
                name: RStr<'_>,
                params: RStr<'_>,
            ) -> RResult<$crate::plugin::ComponentBox, RString> {
                $crate::plugin::create(super::$defs, kind, name, params)
            }
            fn root() -> $crate::plugin::PluginModRef {
                $crate::plugin::root_module(plugin_name, components, create)
            }

            #[export_name = "_1as_0lib_1header_0root_bmodule_bloader"]
            pub static __CAUSALREC_ROOT: __abi::library::LibHeader = {
                extern "C" fn erased() -> __abi::library::RootModuleResult {
                    __abi::library::__call_root_module_loader(root)
                }
                unsafe {
                    __abi::library::LibHeader::from_constructor::<$crate::plugin::PluginModRef>(
                        erased,
                        __abi::library::CheckTypeLayout::Yes,
                    )
                }
            };
        }
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_symbol_matches_abi_stable() {
        assert_eq!(
            super::ROOT_SYMBOL,
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }
}
