//! Bounded file reads and the "only you can read this secret" check.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use zeroize::Zeroizing;

use crate::{Error, MAX_FILE_LEN};

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Opens `path`, which must be a regular file of at most [`MAX_FILE_LEN`] bytes.
fn open_regular(path: &Path) -> Result<(File, std::fs::Metadata), Error> {
    let f = File::open(path).map_err(io(path))?;
    let meta = f.metadata().map_err(io(path))?;
    if !meta.is_file() {
        return Err(Error::NotAFile {
            path: path.to_path_buf(),
        });
    }
    if meta.len() > MAX_FILE_LEN {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            len: meta.len(),
            max: MAX_FILE_LEN,
        });
    }
    Ok((f, meta))
}

fn read_all(path: &Path, f: File) -> Result<Zeroizing<Vec<u8>>, Error> {
    let mut buf = Zeroizing::new(Vec::new());
    f.take(MAX_FILE_LEN + 1)
        .read_to_end(&mut buf)
        .map_err(io(path))?;
    if buf.len() as u64 > MAX_FILE_LEN {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            len: buf.len() as u64,
            max: MAX_FILE_LEN,
        });
    }
    Ok(buf)
}

/// Reads a whole regular file of at most [`MAX_FILE_LEN`] bytes.
pub(crate) fn read_bounded(path: &Path) -> Result<Zeroizing<Vec<u8>>, Error> {
    let (f, _) = open_regular(path)?;
    read_all(path, f)
}

/// The pure check: a file holding a secret must have no group/other permission bits and belong to
/// `euid` or root. `what` names the file in the message ("profile", "secret file").
pub fn check_private_mode(
    path: &Path,
    what: &'static str,
    mode: u32,
    owner: u32,
    euid: u32,
) -> Result<(), Error> {
    if owner != euid && owner != 0 {
        return Err(Error::Owner {
            what,
            path: path.to_path_buf(),
            owner,
            euid,
        });
    }
    if mode & 0o077 != 0 {
        return Err(Error::Permissions {
            what,
            path: path.to_path_buf(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

/// Checks the mode and owner of an existing file (following symlinks).
pub(crate) fn check_private_file(path: &Path, what: &'static str, euid: u32) -> Result<(), Error> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    check_private_mode(path, what, meta.mode(), meta.uid(), euid)
}

/// Reads a secret from a file: a regular file of at most [`MAX_FILE_LEN`] bytes, checked with
/// [`check_private_mode`] when `check` is true, in UTF-8; one trailing newline (`\n` or `\r\n`)
/// is removed. An empty secret is refused.
pub fn read_secret_file(path: &Path, euid: u32, check: bool) -> Result<Zeroizing<String>, Error> {
    let (f, meta) = open_regular(path)?;
    if check {
        check_private_mode(path, "secret file", meta.mode(), meta.uid(), euid)?;
    }
    let buf = read_all(path, f)?;
    let text = std::str::from_utf8(&buf).map_err(|_| Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the secret is not UTF-8 text",
        ),
    })?;
    let text = text
        .strip_suffix('\n')
        .map_or(text, |t| t.strip_suffix('\r').unwrap_or(t));
    if text.is_empty() {
        return Err(Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the file is empty; write the secret into it",
            ),
        });
    }
    Ok(Zeroizing::new(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    fn euid() -> u32 {
        nix::unistd::geteuid().as_raw()
    }

    fn secret_file(content: &[u8], mode: u32) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(content).unwrap();
        std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        f
    }

    #[test]
    fn pure_mode_check() {
        let p = Path::new("/x/y.toml");
        assert!(check_private_mode(p, "profile", 0o100600, 1000, 1000).is_ok());
        assert!(check_private_mode(p, "profile", 0o100400, 0, 1000).is_ok());
        let e = check_private_mode(p, "profile", 0o100644, 1000, 1000).unwrap_err();
        assert_eq!(
            e.to_string(),
            "profile /x/y.toml holds a secret and is readable by others (mode 0644); run: chmod 600 /x/y.toml"
        );
        assert!(check_private_mode(p, "profile", 0o100640, 1000, 1000).is_err());
        assert!(check_private_mode(p, "profile", 0o100601, 1000, 1000).is_err());
        let e = check_private_mode(p, "secret file", 0o100600, 1001, 1000).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Owner {
                    owner: 1001,
                    euid: 1000,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("chown 1000 /x/y.toml"));
    }

    #[test]
    fn reads_secret_and_strips_one_newline() {
        let f = secret_file(b"s3cret\n", 0o600);
        assert_eq!(
            read_secret_file(f.path(), euid(), true).unwrap().as_str(),
            "s3cret"
        );
        let f = secret_file(b"s3cret\r\n", 0o600);
        assert_eq!(
            read_secret_file(f.path(), euid(), true).unwrap().as_str(),
            "s3cret"
        );
        let f = secret_file(b"with space \n\n", 0o600);
        assert_eq!(
            read_secret_file(f.path(), euid(), true).unwrap().as_str(),
            "with space \n"
        );
    }

    #[test]
    fn refuses_readable_empty_and_non_files() {
        let f = secret_file(b"s3cret", 0o644);
        let e = read_secret_file(f.path(), euid(), true).unwrap_err();
        assert!(matches!(e, Error::Permissions { mode: 0o644, .. }), "{e}");
        assert!(read_secret_file(f.path(), euid(), false).is_ok());
        let f = secret_file(b"\n", 0o600);
        assert!(read_secret_file(f.path(), euid(), true).is_err());
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_secret_file(d.path(), euid(), true),
            Err(Error::NotAFile { .. })
        ));
        assert!(matches!(
            read_secret_file(&d.path().join("missing"), euid(), true),
            Err(Error::Io { .. })
        ));
    }

    #[test]
    fn refuses_large_files() {
        let f = secret_file(&vec![b'a'; MAX_FILE_LEN as usize + 1], 0o600);
        assert!(matches!(
            read_secret_file(f.path(), euid(), true),
            Err(Error::TooLarge { .. })
        ));
    }

    #[test]
    fn owner_is_checked_on_disk() {
        let f = secret_file(b"s3cret", 0o600);
        // The file belongs to us: a different "current user" that is not the owner is refused,
        // unless we are root (root-owned files are always accepted).
        let other = euid().wrapping_add(1);
        let r = read_secret_file(f.path(), other, true);
        if euid() == 0 {
            assert!(r.is_ok());
        } else {
            assert!(matches!(r, Err(Error::Owner { .. })));
        }
    }
}
