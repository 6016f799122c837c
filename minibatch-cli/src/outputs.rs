//! The files a run writes, checked before it trains: a run that cannot write its results learns it
//! in its first second, not after its last epoch.

use anyhow::{bail, Context};
use std::path::Path;

/// Checks that `path` (given with `flag`) can be written as a regular file: not a folder, not a
/// device or FIFO (whose replacement by a file would destroy it), in a folder that exists and
/// takes new files. A file already there is replaced when the run ends.
pub fn check_file(flag: &str, path: &Path) -> anyhow::Result<()> {
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => bail!("{flag} {shown}: is a folder; give a file name"),
        Ok(m) if !m.is_file() => bail!("{flag} {shown}: not a regular file (a device, FIFO or socket)"),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => bail!("{flag} {shown}: {e}"),
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        bail!("{flag} {shown}: the folder {} does not exist", folder.display());
    }
    check_writable(folder).with_context(|| format!("{flag} {shown}: cannot write in {}", folder.display()))
}

/// Checks that `path` names a PNG file that can be written.
pub fn check_png(flag: &str, path: &Path) -> anyhow::Result<()> {
    let png = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if !png {
        bail!("{flag} {}: plots are PNG images; give a name ending in .png", path.display());
    }
    check_file(flag, path)
}

/// Creates `dir` if need be and checks that files can be written in it.
pub fn check_folder(flag: &str, dir: &Path) -> anyhow::Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!("{flag} {}: is not a folder", dir.display());
    }
    // The folder itself is made, not the folders above it: a mistyped path is an error, as it
    // is for --save and --log, rather than a new tree.
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.exists() && !parent.is_dir() {
        let why = if parent.exists() { "is not a folder" } else { "does not exist" };
        bail!("{flag} {}: {} {why}", dir.display(), parent.display());
    }
    std::fs::create_dir(dir)
        .or_else(|e| if dir.is_dir() { Ok(()) } else { Err(e) })
        .with_context(|| format!("{flag} {}: cannot create the folder", dir.display()))?;
    check_writable(dir).with_context(|| format!("{flag} {}: cannot write in the folder", dir.display()))
}

/// Creates and removes a probe file in `folder`.
fn check_writable(folder: &Path) -> std::io::Result<()> {
    let probe = folder.join(format!(".minibatch-probe-{}", std::process::id()));
    std::fs::File::create(&probe)?;
    std::fs::remove_file(&probe)
}
