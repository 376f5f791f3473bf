//! The recipe sandbox: the Rhai engine's resource limits ([`Limits`]) and
//! the one place that decides whether a path a script names may be read,
//! written or imported ([`Folders`]). Paths are resolved through the file
//! system (`..` and symbolic links included) before they are compared with
//! the allowed folders, so neither `../../etc/passwd` nor a link pointing
//! out of an allowed folder gets through.

use std::path::{Component, Path, PathBuf};

use rhai::Engine;

/// Resource limits of a recipe's script engine. Exceeding one stops the
/// recipe with an error at the offending position (rhai's own checks).
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Script operations in all (a runaway loop ends here).
    pub operations: u64,
    /// Depth of nested function calls.
    pub call_levels: usize,
    /// Depth of nested expressions at top level and inside functions.
    pub expr_depth: (usize, usize),
    /// Bytes in one string.
    pub string_size: usize,
    /// Elements in one array.
    pub array_size: usize,
    /// Entries in one object map.
    pub map_size: usize,
    /// Modules one recipe may import.
    pub modules: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            operations: 2_000_000_000,
            call_levels: 64,
            expr_depth: (128, 64),
            string_size: 1 << 20,
            array_size: 1 << 20,
            map_size: 1 << 16,
            modules: 64,
        }
    }
}

impl Limits {
    /// Set every limit on `e`.
    pub fn apply(&self, e: &mut Engine) {
        e.set_max_operations(self.operations);
        e.set_max_call_levels(self.call_levels);
        e.set_max_expr_depths(self.expr_depth.0, self.expr_depth.1);
        e.set_max_string_size(self.string_size);
        e.set_max_array_size(self.array_size);
        e.set_max_map_size(self.map_size);
        e.set_max_modules(self.modules);
    }
}

/// The folders a recipe may touch: it reads inside the repository, the
/// shared data folder beside it (`../shared/data`) and its output folder,
/// writes only inside the output folder, and imports only `.rhai` files
/// under the repository's `scripts/`.
#[derive(Clone, Debug)]
pub struct Folders {
    pub repo_root: PathBuf,
    pub out: PathBuf,
}

impl Folders {
    /// The folders reads may resolve into.
    fn read_roots(&self) -> [PathBuf; 3] {
        [
            self.repo_root.clone(),
            self.repo_root.join("../shared/data"),
            self.out.clone(),
        ]
    }

    /// `p` resolved, if it lies inside a folder recipes may read. An
    /// atomic data set named by `folder/stem` is checked as
    /// `folder/stem.inter`. A path that does not exist is refused when it
    /// lies outside by its name alone (`..` taken lexically), so a refusal
    /// never says whether a file outside exists.
    pub fn readable(&self, p: &Path) -> Result<PathBuf, String> {
        let atomic = p.with_extension("inter");
        let p = if !p.exists() && atomic.is_file() {
            atomic.as_path()
        } else {
            p
        };
        let refused = |resolved: &Path| {
            format!(
                "{}: recipes may only read inside the repository, ../shared/data or the output folder \
                 (the path resolves to {})",
                p.display(),
                resolved.display()
            )
        };
        let roots = self.read_roots();
        let canon_roots: Vec<PathBuf> =
            roots.iter().filter_map(|r| r.canonicalize().ok()).collect();
        match p.canonicalize() {
            Ok(canon) if canon_roots.iter().any(|r| canon.starts_with(r)) => Ok(canon),
            Ok(canon) => Err(refused(&canon)),
            Err(e) => {
                let named = lexical(p);
                let inside = roots
                    .iter()
                    .map(|r| lexical(r))
                    .chain(canon_roots.iter().cloned())
                    .any(|r| named.starts_with(r));
                if inside {
                    Err(format!("{}: {e}", p.display()))
                } else {
                    Err(refused(&named))
                }
            }
        }
    }

    /// Where a recipe may write `file`: relative paths go into the output
    /// folder; absolute ones must lie inside it. No `..`, no escaping
    /// through links; missing folders are created.
    pub fn writable(&self, file: &str) -> Result<PathBuf, String> {
        if file.is_empty() {
            return Err("the output file name is empty".into());
        }
        let p = Path::new(file);
        let out = self
            .out
            .canonicalize()
            .map_err(|e| format!("{}: {e}", self.out.display()))?;
        let outside = || {
            format!(
                "{file}: recipes may only write inside the output folder {}",
                out.display()
            )
        };
        let rel = if p.is_absolute() {
            p.strip_prefix(&self.out)
                .or_else(|_| p.strip_prefix(&out))
                .map_err(|_| outside())?
        } else {
            p
        };
        if rel.as_os_str().is_empty()
            || rel.components().any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(format!(
                "{file}: an output file must be a plain path inside the output folder (no '..')"
            ));
        }
        let full = out.join(rel);
        let parent = full.parent().unwrap_or(&out).to_path_buf();
        // Resolve the existing part before creating anything, so a link
        // out of the folder never gets folders created through it.
        let mut existing = parent.as_path();
        while !existing.exists() {
            existing = existing.parent().unwrap_or(&out);
        }
        let resolved = existing
            .canonicalize()
            .map_err(|e| format!("{}: {e}", existing.display()))?;
        if !resolved.starts_with(&out) {
            return Err(outside());
        }
        std::fs::create_dir_all(&parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        let canon = parent
            .canonicalize()
            .map_err(|e| format!("{}: {e}", parent.display()))?;
        if !canon.starts_with(&out) {
            return Err(outside());
        }
        let target = canon.join(full.file_name().unwrap_or_default());
        // The file itself may be a link out of the folder (or a dangling one).
        let is_link = target
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink());
        if is_link && !target.canonicalize().is_ok_and(|t| t.starts_with(&out)) {
            return Err(outside());
        }
        Ok(target)
    }

    /// The scripts folder imports resolve in.
    pub fn scripts(&self) -> PathBuf {
        self.repo_root.join("scripts")
    }

    /// The file `import "path"` loads (`scripts/<path>.rhai`), if it lies
    /// inside `scripts/` once resolved.
    pub fn importable(&self, path: &str) -> Result<PathBuf, String> {
        let scripts = self.scripts();
        let outside = || format!("{path} (imports must stay under {})", scripts.display());
        let rel = Path::new(path);
        if rel.is_absolute() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(outside());
        }
        let file = scripts.join(rel).with_extension("rhai");
        let (Ok(root), Ok(canon)) = (scripts.canonicalize(), file.canonicalize()) else {
            return Err(format!("{path}: no file {}", file.display()));
        };
        if canon.starts_with(root) {
            Ok(canon)
        } else {
            Err(outside())
        }
    }
}

/// `p` made absolute with `.` and `..` taken by name (no file system
/// access, links not followed).
pub fn lexical(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}
