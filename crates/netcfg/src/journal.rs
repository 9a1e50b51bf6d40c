//! The restore journal: one JSON file per interface, rewritten and fsynced before every change.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::nl::{AddrSpec, RouteSpec};

/// Version of the journal format.
const VERSION: u32 = 1;
/// Largest journal file we read (a journal holds a few dozen small entries).
const MAX_JOURNAL: u64 = 4 << 20;
/// File name suffix of journals.
pub(crate) const SUFFIX: &str = ".journal.json";

/// One change, recorded with what is needed to undo it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Entry {
    /// The link's MTU and up flag before we changed them.
    Link {
        /// Interface name.
        ifname: String,
        /// Interface index (a new device of the same name is left alone).
        ifindex: u32,
        /// Whether it was up.
        was_up: bool,
        /// Its MTU.
        mtu: u32,
    },
    /// An address we added.
    Addr(AddrSpec),
    /// A route we added.
    Route(RouteSpec),
    /// A file (resolv.conf) we rewrote in place.
    File {
        /// The path written.
        path: PathBuf,
        /// Its content before (hex).
        #[serde(with = "hexbytes")]
        old: Vec<u8>,
        /// What we wrote (hex).
        #[serde(with = "hexbytes")]
        new: Vec<u8>,
    },
    /// Per-link DNS given to systemd-resolved.
    Resolved {
        /// Interface name.
        ifname: String,
    },
    /// A resolvconf record we added.
    Resolvconf {
        /// The record name passed to `resolvconf -a`.
        record: String,
    },
    /// The nftables table we created.
    Nft {
        /// Table name (family inet).
        table: String,
    },
}

mod hexbytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

/// The journal file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JournalData {
    /// Format version.
    pub version: u32,
    /// Process that made the changes.
    pub pid: u32,
    /// Its start time (clock ticks since boot, /proc/PID/stat field 22).
    pub start_time: u64,
    /// Interface configured.
    pub ifname: String,
    /// Changes in the order they were made.
    pub entries: Vec<Entry>,
}

/// Start time of process `pid`, or `None` when it does not exist.
pub(crate) fn process_start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

impl JournalData {
    /// True when the process that wrote this journal still runs.
    pub(crate) fn owner_alive(&self) -> bool {
        process_start_time(self.pid) == Some(self.start_time)
    }
}

/// Path of the journal of `ifname` in `dir`.
pub(crate) fn path_for(dir: &Path, ifname: &str) -> PathBuf {
    dir.join(format!("{ifname}{SUFFIX}"))
}

/// Reads a journal.
pub(crate) fn load(path: &Path) -> Result<JournalData, Error> {
    let jerr = |msg: String| Error::Journal {
        path: path.to_owned(),
        msg,
    };
    let f = File::open(path).map_err(|e| jerr(e.to_string()))?;
    let len = f.metadata().map_err(|e| jerr(e.to_string()))?.len();
    if len > MAX_JOURNAL {
        return Err(jerr(format!("too large ({len} bytes)")));
    }
    let data: JournalData = serde_json::from_reader(std::io::BufReader::new(f))
        .map_err(|e| jerr(format!("unreadable: {e}")))?;
    if data.version != VERSION {
        return Err(jerr(format!("unknown version {}", data.version)));
    }
    Ok(data)
}

/// Writes `data` to `path` atomically (temp file, fsync, rename, fsync of the directory).
pub(crate) fn store(path: &Path, data: &JournalData) -> Result<(), Error> {
    let jerr = |e: std::io::Error| Error::Journal {
        path: path.to_owned(),
        msg: e.to_string(),
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{}.tmp", name.unwrap_or_default()));
    let bytes = serde_json::to_vec_pretty(data).map_err(|e| Error::Journal {
        path: path.to_owned(),
        msg: e.to_string(),
    })?;
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(jerr)?;
    f.write_all(&bytes).map_err(jerr)?;
    f.sync_all().map_err(jerr)?;
    drop(f);
    fs::rename(&tmp, path).map_err(jerr)?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(jerr)?;
    Ok(())
}

/// Removes a journal (and fsyncs the directory).
pub(crate) fn remove(path: &Path) -> Result<(), Error> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(Error::Journal {
                path: path.to_owned(),
                msg: e.to_string(),
            });
        }
    }
    if let Some(dir) = path.parent() {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// The live journal of this process for one interface.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    data: JournalData,
}

impl Journal {
    /// Creates the (empty) journal of `ifname`, creating `dir` (mode 0700) if needed.
    /// The caller has made sure no journal of a live process exists there.
    pub(crate) fn create(dir: &Path, ifname: &str) -> Result<Journal, Error> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::Journal {
                path: dir.to_owned(),
                msg: e.to_string(),
            })?;
        let pid = std::process::id();
        let data = JournalData {
            version: VERSION,
            pid,
            start_time: process_start_time(pid).unwrap_or(0),
            ifname: ifname.to_owned(),
            entries: Vec::new(),
        };
        let j = Journal {
            path: path_for(dir, ifname),
            data,
        };
        store(&j.path, &j.data)?;
        Ok(j)
    }

    /// Wraps a journal read back from disk (for restore).
    pub(crate) fn from_disk(path: PathBuf, data: JournalData) -> Journal {
        Journal { path, data }
    }

    /// Records a change before it is made.
    pub(crate) fn push(&mut self, e: Entry) -> Result<(), Error> {
        self.data.entries.push(e);
        store(&self.path, &self.data)
    }

    /// Forgets the last entry (the change turned out not to be ours, or was undone).
    pub(crate) fn pop(&mut self) -> Result<(), Error> {
        self.data.entries.pop();
        store(&self.path, &self.data)
    }

    /// Replaces the recorded entries (after a partial restore) and persists them.
    pub(crate) fn set_entries(&mut self, entries: Vec<Entry>) -> Result<(), Error> {
        self.data.entries = entries;
        store(&self.path, &self.data)
    }

    /// The recorded entries, oldest first.
    pub(crate) fn entries(&self) -> &[Entry] {
        &self.data.entries
    }

    /// The journal's file.
    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Deletes the file.
    pub(crate) fn remove(self) -> Result<(), Error> {
        remove(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IpNet;

    #[test]
    fn roundtrip_and_pop() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("run/l2sec");
        let mut j = Journal::create(&sub, "l2sec9").unwrap();
        let route = Entry::Route(RouteSpec {
            dst: "0.0.0.0/1".parse::<IpNet>().unwrap(),
            gateway: None,
            oif: 7,
            table: 254,
        });
        let file = Entry::File {
            path: "/etc/resolv.conf".into(),
            old: b"nameserver 198.18.99.53\n\xff".to_vec(),
            new: b"nameserver 198.19.0.1\n".to_vec(),
        };
        j.push(route.clone()).unwrap();
        j.push(file.clone()).unwrap();
        let back = load(&path_for(&sub, "l2sec9")).unwrap();
        assert_eq!(back.entries, vec![route.clone(), file]);
        assert_eq!(back.pid, std::process::id());
        assert!(back.owner_alive());
        j.pop().unwrap();
        assert_eq!(load(j.path()).unwrap().entries, vec![route]);
        let p = j.path().to_owned();
        j.remove().unwrap();
        assert!(!p.exists());
    }

    #[test]
    fn rejects_garbage_and_dead_owner() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.journal.json");
        fs::write(&p, b"{not json").unwrap();
        assert!(matches!(load(&p), Err(Error::Journal { .. })));
        let d = JournalData {
            version: VERSION,
            pid: std::process::id(),
            start_time: process_start_time(std::process::id()).unwrap() + 1,
            ifname: "x".into(),
            entries: vec![],
        };
        assert!(!d.owner_alive());
        fs::write(
            &p,
            serde_json::to_vec(&JournalData { version: 99, ..d }).unwrap(),
        )
        .unwrap();
        assert!(matches!(load(&p), Err(Error::Journal { .. })));
    }
}
