//! `cargo xtask openapi`: the checked-in OpenAPI documents, generated from the services' code.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::Context;

/// One generated document and where it is checked in.
pub struct Document {
    /// Path relative to the workspace root, e.g. `openapi/game-service.json`.
    pub path: &'static str,
    pub contents: String,
}

/// The workspace root (this crate lives one level below it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// Both documents as they would be written: pretty JSON plus a trailing newline.
pub fn generate() -> anyhow::Result<Vec<Document>> {
    Ok(vec![
        Document {
            path: "openapi/im-service.json",
            contents: render(&im_service::openapi())
                .context("serializing the IM service document")?,
        },
        Document {
            path: "openapi/game-service.json",
            contents: render(&game_service::openapi())
                .context("serializing the game service document")?,
        },
    ])
}

fn render(doc: &impl serde::Serialize) -> serde_json::Result<String> {
    serde_json::to_string_pretty(doc).map(|json| json + "\n")
}

/// Writes every document under `root`; returns the paths written.
pub fn write(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for doc in generate()? {
        let path = root.join(doc.path);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        fs::write(&path, &doc.contents).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// The checked-in files under `root` that differ from (or lack) the generated documents.
pub fn drifted(root: &Path) -> anyhow::Result<Vec<&'static str>> {
    let mut drifted = Vec::new();
    for doc in generate()? {
        let on_disk = fs::read_to_string(root.join(doc.path)).ok();
        if on_disk.as_deref() != Some(doc.contents.as_str()) {
            drifted.push(doc.path);
        }
    }
    Ok(drifted)
}
