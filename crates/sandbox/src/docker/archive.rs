//! What goes into a job container's `/work`: the job's sources, and what a
//! compile step left in its `/work`, copied out of its container (a tar
//! archive from the engine) and re-packed for the run step.
//!
//! The entries travel in the header the container's init reads (see
//! `launch`), which writes them itself, as the job user, never following a
//! link: no host path and no archive extraction by the engine are involved.
//! Re-packing keeps only plain files and directories with plain names and
//! ordinary modes: a compile step cannot hand the run step a link, a device
//! node, a FIFO or a setuid file.

use std::io::Read;
use std::path::{Component, Path};

use crate::SandboxError;

/// Most entries a compile step may leave for the run step.
const MAX_ENTRIES: usize = 4096;

/// One file or directory of `/work`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Relative to `/work`, plain components joined by `/`.
    pub path: String,
    pub directory: bool,
    pub executable: bool,
    /// Written read-only (0444): a checker's test files.
    pub read_only: bool,
    pub contents: Vec<u8>,
}

impl Entry {
    pub(crate) fn file(path: &str, contents: &[u8]) -> Self {
        Self {
            path: path.to_owned(),
            directory: false,
            executable: false,
            read_only: false,
            contents: contents.to_vec(),
        }
    }

    /// A file the program may read but not write (as its owner it could
    /// still change the mode: the point is that it does not by mistake).
    pub(crate) fn read_only(path: &str, contents: &[u8]) -> Self {
        Self {
            read_only: true,
            ..Self::file(path, contents)
        }
    }

    pub(crate) fn mode(&self) -> u32 {
        if self.directory || self.executable {
            0o755
        } else if self.read_only {
            0o444
        } else {
            0o644
        }
    }
}

/// Re-packs the archive of a compile step's `/work` (as the engine sends it:
/// every name under `work/`) as entries for the run step's `/work`.
pub(crate) fn repack_work(archive: &[u8], max_bytes: u64) -> Result<Vec<Entry>, SandboxError> {
    let what = "re-pack the compile step's output";
    let mut reader = tar::Archive::new(archive);
    let mut out = Vec::new();
    let mut bytes = 0u64;
    for entry in reader.entries().map_err(SandboxError::setup(what))? {
        let mut entry = entry.map_err(SandboxError::setup(what))?;
        let Some(path) = inside_work(&entry.path().map_err(SandboxError::setup(what))?) else {
            continue;
        };
        let kind = entry.header().entry_type();
        if !kind.is_dir() && !kind.is_file() {
            continue; // links, devices, FIFOs and sockets stay behind
        }
        bytes += entry.size();
        if out.len() >= MAX_ENTRIES || bytes > max_bytes {
            return Err(SandboxError::setup(what)(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                format!("more than {MAX_ENTRIES} entries or {max_bytes} bytes"),
            )));
        }
        let executable = entry.header().mode().unwrap_or(0) & 0o111 != 0;
        let mut contents = Vec::new();
        if kind.is_file() {
            contents.reserve(entry.size() as usize);
            entry
                .read_to_end(&mut contents)
                .map_err(SandboxError::setup(what))?;
        }
        out.push(Entry {
            path,
            directory: kind.is_dir(),
            executable,
            read_only: false,
            contents,
        });
    }
    Ok(out)
}

/// The path below `work/`, when it is made of plain UTF-8 names.
fn inside_work(path: &Path) -> Option<String> {
    let mut components = path.components();
    match components.next()? {
        Component::Normal(first) if first == "work" => {}
        _ => return None,
    }
    let mut names = Vec::new();
    for component in components {
        match component {
            Component::Normal(name) => names.push(name.to_str()?),
            _ => return None,
        }
    }
    (!names.is_empty()).then(|| names.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_files_and_directories_cross_over() {
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |name: &str, kind: tar::EntryType, mode: u32, link: Option<&str>| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_size(if kind.is_file() { 2 } else { 0 });
            if let Some(link) = link {
                h.set_link_name(link).unwrap();
            }
            let data: &[u8] = if kind.is_file() { b"ab" } else { b"" };
            b.append_data(&mut h, name, data).unwrap();
        };
        add("work", tar::EntryType::Directory, 0o700, None);
        add("work/main", tar::EntryType::Regular, 0o4755, None);
        add("work/main.c", tar::EntryType::Regular, 0o600, None);
        add("work/pkg", tar::EntryType::Directory, 0o700, None);
        add("work/pkg/A.class", tar::EntryType::Regular, 0o644, None);
        add(
            "work/link",
            tar::EntryType::Symlink,
            0o777,
            Some("/etc/passwd"),
        );
        add("work/hard", tar::EntryType::Link, 0o644, Some("work/main"));
        add("work/fifo", tar::EntryType::Fifo, 0o644, None);
        add("other/x", tar::EntryType::Regular, 0o644, None);
        let archive = b.into_inner().unwrap();
        let entries = repack_work(&archive, 1 << 20).unwrap();
        let got: Vec<_> = entries
            .iter()
            .map(|e| (e.path.as_str(), e.mode(), e.contents.len()))
            .collect();
        assert_eq!(
            got,
            [
                ("main", 0o755, 2),
                ("main.c", 0o644, 2),
                ("pkg", 0o755, 0),
                ("pkg/A.class", 0o644, 2),
            ]
        );
        assert!(repack_work(&archive, 3).is_err(), "size cap");
    }
}
