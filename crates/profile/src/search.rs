//! Finding profiles by name in the search path.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::Error;

/// Environment variable replacing the search path: directories separated by `:`.
pub const PROFILE_PATH_ENV: &str = "L2SEC_PROFILE_PATH";

/// The system-wide profile directory.
pub const SYSTEM_DIR: &str = "/etc/l2sec/profiles";

/// Most directory entries looked at per directory by [`list_in`].
const MAX_ENTRIES: usize = 4096;

/// The directories searched, in order: `$L2SEC_PROFILE_PATH` if set, otherwise
/// `~/.config/l2sec/profiles` (per the XDG rules of the `directories` crate) and
/// `/etc/l2sec/profiles`.
#[must_use]
pub fn search_path() -> Vec<PathBuf> {
    let user =
        directories::ProjectDirs::from("", "", "l2sec").map(|d| d.config_dir().join("profiles"));
    search_path_from(std::env::var_os(PROFILE_PATH_ENV).as_deref(), user)
}

/// [`search_path`] from explicit inputs: the value of `$L2SEC_PROFILE_PATH` and the user's
/// profile directory.
#[must_use]
pub fn search_path_from(env: Option<&OsStr>, user_dir: Option<PathBuf>) -> Vec<PathBuf> {
    if let Some(v) = env.filter(|v| !v.is_empty()) {
        return std::env::split_paths(v)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
    }
    let mut v: Vec<PathBuf> = user_dir.into_iter().collect();
    v.push(PathBuf::from(SYSTEM_DIR));
    v
}

/// A profile found in the search path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileEntry {
    /// Name (file stem).
    pub name: String,
    /// Full path.
    pub path: PathBuf,
    /// True when a profile of the same name earlier in the search path hides this one.
    pub shadowed: bool,
}

/// Resolves `name` with [`search_path`]; see [`find_in`].
pub fn find(name: &str) -> Result<PathBuf, Error> {
    find_in(&search_path(), name)
}

/// Resolves a profile name or path: a value holding a `/` is a path and returned as is (it must
/// exist); otherwise the first `DIR/NAME.toml` (or `DIR/NAME` when NAME ends in `.toml`) of `dirs`.
pub fn find_in(dirs: &[PathBuf], name: &str) -> Result<PathBuf, Error> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return match std::fs::metadata(&p) {
            Ok(_) => Ok(p),
            Err(source) => Err(Error::Io { path: p, source }),
        };
    }
    let file = if name.ends_with(".toml") {
        name.to_owned()
    } else {
        format!("{name}.toml")
    };
    if !name.is_empty() && !name.starts_with('.') {
        for d in dirs {
            let p = d.join(&file);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(Error::NotFound {
        name: name.to_owned(),
        searched: dirs.to_vec(),
    })
}

/// Lists the profiles of [`search_path`]; see [`list_in`].
#[must_use]
pub fn list() -> Vec<ProfileEntry> {
    list_in(&search_path())
}

/// Lists the `*.toml` files of `dirs` (missing or unreadable directories are skipped), sorted by
/// name, then by search order; a name already seen in an earlier directory is marked shadowed.
#[must_use]
pub fn list_in(dirs: &[PathBuf]) -> Vec<ProfileEntry> {
    let mut out: Vec<(usize, ProfileEntry)> = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        let Ok(rd) = std::fs::read_dir(d) else {
            continue;
        };
        let mut names: Vec<(String, PathBuf)> = rd
            .take(MAX_ENTRIES)
            .filter_map(Result::ok)
            .filter_map(|e| entry(&e.path()))
            .collect();
        names.sort();
        for (name, path) in names {
            let shadowed = out.iter().any(|(_, e)| e.name == name);
            out.push((
                i,
                ProfileEntry {
                    name,
                    path,
                    shadowed,
                },
            ));
        }
    }
    out.sort_by(|a, b| a.1.name.cmp(&b.1.name).then(a.0.cmp(&b.0)));
    out.into_iter().map(|(_, e)| e).collect()
}

fn entry(path: &Path) -> Option<(String, PathBuf)> {
    if path.extension() != Some(OsStr::new("toml")) || !path.is_file() {
        return None;
    }
    let stem = path.file_stem()?.to_str()?;
    if stem.is_empty() || stem.starts_with('.') {
        return None;
    }
    Some((stem.to_owned(), path.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_from_env_or_defaults() {
        let v = search_path_from(
            Some(OsStr::new("/a:/b::/c")),
            Some("/home/u/.config/l2sec/profiles".into()),
        );
        assert_eq!(v, vec![PathBuf::from("/a"), "/b".into(), "/c".into()]);
        let v = search_path_from(None, Some("/home/u/.config/l2sec/profiles".into()));
        assert_eq!(
            v,
            vec![
                PathBuf::from("/home/u/.config/l2sec/profiles"),
                SYSTEM_DIR.into()
            ]
        );
        let v = search_path_from(Some(OsStr::new("")), None);
        assert_eq!(v, vec![PathBuf::from(SYSTEM_DIR)]);
    }

    #[test]
    fn find_and_list() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::write(a.path().join("office.toml"), "server = \"a\"").unwrap();
        std::fs::write(b.path().join("office.toml"), "server = \"b\"").unwrap();
        std::fs::write(b.path().join("home.toml"), "server = \"b\"").unwrap();
        std::fs::write(b.path().join("notes.txt"), "x").unwrap();
        std::fs::write(b.path().join(".hidden.toml"), "x").unwrap();
        std::fs::create_dir(b.path().join("dir.toml")).unwrap();
        let dirs = vec![
            a.path().to_path_buf(),
            b.path().to_path_buf(),
            "/nonexistent-l2sec".into(),
        ];

        assert_eq!(
            find_in(&dirs, "office").unwrap(),
            a.path().join("office.toml")
        );
        assert_eq!(
            find_in(&dirs, "office.toml").unwrap(),
            a.path().join("office.toml")
        );
        assert_eq!(find_in(&dirs, "home").unwrap(), b.path().join("home.toml"));
        let e = find_in(&dirs, "nope").unwrap_err();
        assert!(
            matches!(&e, Error::NotFound { name, .. } if name == "nope"),
            "{e}"
        );
        assert!(e.to_string().contains("l2sec profile list"));
        assert!(find_in(&dirs, ".hidden").is_err());
        assert!(find_in(&dirs, "dir").is_err());
        let direct = b.path().join("home.toml");
        assert_eq!(find_in(&[], direct.to_str().unwrap()).unwrap(), direct);
        assert!(matches!(
            find_in(&[], "/nonexistent-l2sec/x.toml"),
            Err(Error::Io { .. })
        ));

        let l = list_in(&dirs);
        let got: Vec<(&str, bool)> = l.iter().map(|e| (e.name.as_str(), e.shadowed)).collect();
        assert_eq!(
            got,
            vec![("home", false), ("office", false), ("office", true)]
        );
        assert_eq!(l[1].path, a.path().join("office.toml"));
    }
}
