//! Test-only: exports a root module named like causalrec's but with a changed
//! layout (an old/forked SDK), so the host must refuse it with a layout report.

use abi_stable::{
    declare_root_module_statics, export_root_module, library::RootModule, package_version_strings,
    prefix_type::PrefixTypeTrait, sabi_types::VersionStrings, std_types::RString, StableAbi,
};

#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
#[sabi(missing_field(option))]
pub struct PluginMod {
    pub plugin_name: extern "C" fn() -> RString,
    /// Changed: the op-set version is a u64 here, a u32 in the real SDK.
    #[sabi(last_prefix_field)]
    pub op_set_version: extern "C" fn() -> u64,
}

impl RootModule for PluginModRef {
    declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "causalrec_plugin";
    const NAME: &'static str = "causalrec_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

extern "C" fn plugin_name() -> RString {
    "bad_abi".into()
}
extern "C" fn op_set_version() -> u64 {
    1
}

#[export_root_module]
pub fn root() -> PluginModRef {
    PluginMod {
        plugin_name,
        op_set_version,
    }
    .leak_into_prefix()
}
