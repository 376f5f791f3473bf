//! Plugin discovery and loading.
//!
//! Plugins are `.so` (`.dylib`, `.dll`) files exporting the SDK's root module.
//! They are searched in: the folder of the `host` executable, its `plugins/`
//! subfolder, every folder of `CAUSALREC_PLUGIN_PATH`, and `--plugin-dir`.
//! Built-in plugins load the same way as third-party ones. A file that fails to
//! load (not a plugin, or built against a changed interface) is reported with
//! its path and the reason, and the others still load.

use std::path::{Path, PathBuf};

use abi_stable::library::{lib_header_from_path, LibraryError};
use abi_stable::std_types::RResult;
use causalrec_sdk::abi::{ComponentInfo, ComponentKind};
use causalrec_sdk::ops::OP_SET_VERSION;
use causalrec_sdk::plugin::{ComponentBox, PluginModRef};
use serde::Serialize;

/// A loaded plugin.
pub struct LoadedPlugin {
    pub name: String,
    pub path: PathBuf,
    pub module: PluginModRef,
    pub components: Vec<ComponentInfo>,
}

/// A file that could not be loaded, and why.
#[derive(Clone, Debug, Serialize)]
pub struct LoadFailure {
    pub path: PathBuf,
    pub reason: String,
}

/// Every plugin found, and every failure.
#[derive(Default)]
pub struct Registry {
    pub plugins: Vec<LoadedPlugin>,
    pub failures: Vec<LoadFailure>,
}

/// One component as `host plugins --json` prints it.
#[derive(Serialize)]
pub struct ComponentRow {
    pub plugin: String,
    pub path: String,
    pub kind: String,
    pub name: String,
    pub description: String,
    /// Estimators: what they target (empty when undeclared).
    pub estimand: String,
    pub params: Vec<ParamRow>,
}

/// One parameter of a component.
#[derive(Serialize)]
pub struct ParamRow {
    pub name: String,
    pub default: String,
    pub help: String,
}

fn is_library(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("so" | "dylib" | "dll")
    )
}

/// The default search folders: the executable's folder, its `plugins/`, and `CAUSALREC_PLUGIN_PATH`.
pub fn default_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = exe_dir() {
        dirs.push(d.clone());
        dirs.push(d.join("plugins"));
    }
    if let Some(paths) = std::env::var_os("CAUSALREC_PLUGIN_PATH") {
        dirs.extend(std::env::split_paths(&paths));
    }
    dirs
}

fn exe_dir() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
}

/// In the executable's own folder (a build folder holds many libraries), only
/// `libcausalrec_*` files are candidates; every other folder is scanned whole.
fn candidate(dir: &Path, file: &Path) -> bool {
    if !is_library(file) {
        return false;
    }
    if Some(dir.to_path_buf()) == exe_dir() {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
        return name.starts_with("libcausalrec_") || name.starts_with("causalrec_");
    }
    true
}

fn describe_library_error(e: &LibraryError) -> String {
    match e {
        LibraryError::GetSymbolError { .. } => {
            "not a causalrec plugin: it exports no root module (built without causalrec_sdk::export_plugin!)".into()
        }
        LibraryError::AbiInstability(_) => format!(
            "built against a different plugin interface (rebuild it against this host's causalrec-sdk); layout report:\n{e}"
        ),
        LibraryError::IncompatibleVersionNumber { .. } => {
            format!("built against an incompatible causalrec-sdk version: {e}")
        }
        other => other.to_string(),
    }
}

/// Load one plugin file (errors say why, the caller names the file).
pub fn load_file(path: &Path) -> Result<LoadedPlugin, String> {
    if !path.exists() {
        return Err("no such file".into());
    }
    let header = lib_header_from_path(path).map_err(|e| describe_library_error(&e))?;
    let module = header
        .init_root_module::<PluginModRef>()
        .map_err(|e| describe_library_error(&e))?;
    let name = (module.plugin_name())().to_string();
    let needs = (module.op_set_version())();
    if needs > OP_SET_VERSION {
        return Err(format!(
            "plugin '{name}' needs op set v{needs}, this host implements v{OP_SET_VERSION}"
        ));
    }
    let components = match (module.components())() {
        RResult::ROk(c) => c.into_vec(),
        RResult::RErr(e) => {
            return Err(format!(
                "plugin '{name}' failed to list its components: {e}"
            ))
        }
    };
    Ok(LoadedPlugin {
        name,
        path: path.to_path_buf(),
        module,
        components,
    })
}

impl Registry {
    /// Discover plugins in the default folders plus `extra` folders or files.
    pub fn discover(extra: &[PathBuf]) -> Registry {
        let mut dirs = default_dirs();
        dirs.extend(extra.iter().cloned());
        let mut reg = Registry::default();
        let mut seen = Vec::new();
        for d in dirs {
            let files: Vec<PathBuf> = if d.is_file() {
                vec![d.clone()]
            } else if let Ok(rd) = std::fs::read_dir(&d) {
                let mut f: Vec<PathBuf> = rd
                    .filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| candidate(&d, p))
                    .collect();
                f.sort();
                f
            } else {
                if extra.contains(&d) {
                    reg.failures.push(LoadFailure {
                        path: d.clone(),
                        reason: "no such plugin file or folder".into(),
                    });
                }
                continue;
            };
            for f in files {
                let canon = f.canonicalize().unwrap_or(f.clone());
                if seen.contains(&canon) {
                    continue;
                }
                seen.push(canon);
                reg.add_file(&f);
            }
        }
        reg
    }

    /// Load a file into the registry, recording a failure instead of stopping.
    pub fn add_file(&mut self, path: &Path) {
        match load_file(path) {
            Ok(p) => {
                if let Some(prev) = self.plugins.iter().find(|q| q.name == p.name) {
                    self.failures.push(LoadFailure {
                        path: path.to_path_buf(),
                        reason: format!(
                            "plugin '{}' already loaded from {}; this copy is ignored",
                            p.name,
                            prev.path.display()
                        ),
                    });
                } else {
                    tracing::debug!("loaded plugin '{}' from {}", p.name, path.display());
                    self.plugins.push(p);
                }
            }
            Err(reason) => self.failures.push(LoadFailure {
                path: path.to_path_buf(),
                reason,
            }),
        }
    }

    /// Every component, as rows.
    pub fn rows(&self) -> Vec<ComponentRow> {
        let mut rows = Vec::new();
        for p in &self.plugins {
            for c in &p.components {
                rows.push(ComponentRow {
                    plugin: p.name.clone(),
                    path: p.path.display().to_string(),
                    kind: c.kind.as_str().into(),
                    name: c.name.to_string(),
                    description: c.description.to_string(),
                    estimand: c.estimand.to_string(),
                    params: c
                        .params
                        .iter()
                        .map(|q| ParamRow {
                            name: q.name.to_string(),
                            default: q.default_ron.to_string(),
                            help: q.help.to_string(),
                        })
                        .collect(),
                });
            }
        }
        rows
    }

    /// Names of the components of a kind.
    pub fn names(&self, kind: ComponentKind) -> Vec<String> {
        let mut v: Vec<String> = self
            .plugins
            .iter()
            .flat_map(|p| {
                p.components
                    .iter()
                    .filter(|c| c.kind == kind)
                    .map(|c| c.name.to_string())
            })
            .collect();
        v.sort();
        v
    }

    /// Find a component; an unknown name lists the valid ones.
    pub fn find(
        &self,
        kind: ComponentKind,
        name: &str,
    ) -> Result<(&LoadedPlugin, &ComponentInfo), String> {
        for p in &self.plugins {
            if let Some(c) = p
                .components
                .iter()
                .find(|c| c.kind == kind && c.name.as_str() == name)
            {
                return Ok((p, c));
            }
        }
        let valid = self.names(kind);
        Err(format!(
            "unknown {} '{name}'; valid {}s: {}",
            kind.as_str(),
            kind.as_str(),
            if valid.is_empty() {
                "(none loaded — is the plugin folder right?)".to_string()
            } else {
                valid.join(", ")
            }
        ))
    }

    /// Check parameter names against a component's schema (before any training).
    pub fn check_params(
        &self,
        kind: ComponentKind,
        name: &str,
        given: &[String],
    ) -> Result<(), String> {
        let (_, c) = self.find(kind, name)?;
        let valid: Vec<String> = c.params.iter().map(|p| p.name.to_string()).collect();
        for g in given {
            if !valid.contains(g) {
                return Err(format!(
                    "unknown parameter '{g}' for {} '{name}'; valid parameters: {}",
                    kind.as_str(),
                    if valid.is_empty() {
                        "(none)".into()
                    } else {
                        valid.join(", ")
                    }
                ));
            }
        }
        Ok(())
    }

    /// Construct a component; errors name the plugin and the component.
    pub fn create(
        &self,
        kind: ComponentKind,
        name: &str,
        params_ron: &str,
    ) -> Result<ComponentBox, String> {
        let (p, _) = self.find(kind, name)?;
        match (p.module.create())(kind, name.into(), params_ron.into()) {
            RResult::ROk(c) => Ok(c),
            RResult::RErr(e) => Err(format!(
                "plugin '{}' ({}), {} '{name}': {e}",
                p.name,
                p.path.display(),
                kind.as_str()
            )),
        }
    }

    /// The plugin that provides a component (for error messages).
    pub fn provider(&self, kind: ComponentKind, name: &str) -> String {
        self.find(kind, name)
            .map(|(p, _)| p.name.clone())
            .unwrap_or_else(|_| "?".into())
    }
}
