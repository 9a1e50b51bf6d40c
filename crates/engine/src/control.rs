//! The control socket: a running `l2sec connect` answers `status` and `disconnect` on a Unix
//! socket, one JSON request and one JSON reply per connection.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};

use crate::api::{Stage, UpInfo};

/// What `status` reports.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatusReply {
    /// Profile name.
    pub profile: String,
    /// Server as configured.
    pub server: String,
    /// Current stage ("up", "IKE phase 1", ...).
    pub state: String,
    /// Process id of the connection.
    pub pid: u32,
    /// Address, DNS and MTU when up.
    pub up: Option<UpStatus>,
    /// Bytes sent through the tunnel.
    pub bytes_out: u64,
    /// Bytes received through the tunnel.
    pub bytes_in: u64,
    /// Reconnects so far.
    pub reconnects: u32,
}

/// The part of [`StatusReply`] that exists while up.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UpStatus {
    /// TUN interface.
    pub interface: String,
    /// Our tunnel address.
    pub local: String,
    /// Peer tunnel address.
    pub peer: String,
    /// DNS servers.
    pub dns: Vec<String>,
    /// MTU.
    pub mtu: u16,
    /// Negotiated IKE proposal.
    pub ike: Option<String>,
    /// Negotiated ESP proposal.
    pub esp: Option<String>,
}

impl From<&UpInfo> for UpStatus {
    fn from(u: &UpInfo) -> Self {
        Self {
            interface: u.interface.clone(),
            local: u.local.to_string(),
            peer: u.peer.to_string(),
            dns: u.dns.iter().map(ToString::to_string).collect(),
            mtu: u.mtu,
            ike: u.ike.clone(),
            esp: u.esp.clone(),
        }
    }
}

impl StatusReply {
    pub(crate) fn set_stage(&mut self, stage: Stage) {
        self.state = stage.to_string();
        if stage != Stage::Up {
            self.up = None;
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
enum Request {
    Status,
    Disconnect,
}

#[derive(Debug, Serialize, Deserialize)]
struct Ack {
    ok: bool,
}

/// Where the control socket lives: `$L2SEC_CONTROL_SOCKET` if set, else
/// `$XDG_RUNTIME_DIR/l2sec/control.sock` for a user session, `/run/l2sec/control.sock` otherwise
/// (root, services).
#[must_use]
pub fn default_socket_path() -> PathBuf {
    if let Some(p) = std::env::var_os("L2SEC_CONTROL_SOCKET").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let is_root = nix_geteuid() == 0;
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !is_root => PathBuf::from(d).join("l2sec/control.sock"),
        _ => PathBuf::from("/run/l2sec/control.sock"),
    }
}

fn nix_geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    unsafe {
        libc::geteuid()
    }
}

async fn request(path: &Path, req: &Request) -> std::io::Result<String> {
    let stream = tokio::time::timeout(Duration::from_secs(3), UnixStream::connect(path))
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "control socket timed out")
        })??;
    let (r, mut w) = stream.into_split();
    let mut line = serde_json::to_string(req).map_err(std::io::Error::other)?;
    line.push('\n');
    w.write_all(line.as_bytes()).await?;
    let mut reply = String::new();
    tokio::time::timeout(
        Duration::from_secs(5),
        BufReader::new(r).take(64 * 1024).read_line(&mut reply),
    )
    .await
    .map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::TimedOut, "no reply on control socket")
    })??;
    Ok(reply)
}

/// Asks a running connection for its status.
///
/// # Errors
/// When no connection listens at `path` or the reply is malformed.
pub async fn status(path: &Path) -> std::io::Result<StatusReply> {
    let reply = request(path, &Request::Status).await?;
    serde_json::from_str(&reply).map_err(std::io::Error::other)
}

/// Asks a running connection to disconnect; returns once it acknowledged.
///
/// # Errors
/// When no connection listens at `path`.
pub async fn disconnect(path: &Path) -> std::io::Result<()> {
    let reply = request(path, &Request::Disconnect).await?;
    let ack: Ack = serde_json::from_str(&reply).map_err(std::io::Error::other)?;
    if ack.ok {
        Ok(())
    } else {
        Err(std::io::Error::other("disconnect refused"))
    }
}

/// A bound control socket; the socket file is removed on drop.
pub(crate) struct Server {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds the control socket at `path` (mode 0600, directory 0700) and serves it until dropped.
pub(crate) async fn serve(
    path: &Path,
    status: watch::Receiver<StatusReply>,
    disconnect: mpsc::Sender<()>,
) -> std::io::Result<Server> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    if path.exists() {
        // A live connection answers; a stale socket from a crash does not.
        if UnixStream::connect(path).await.is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!(
                    "another l2sec connection is running (control socket {})",
                    path.display()
                ),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let status = status.clone();
            let disconnect = disconnect.clone();
            tokio::spawn(async move {
                let _ = handle(stream, status, disconnect).await;
            });
        }
    });
    Ok(Server {
        path: path.to_path_buf(),
        task,
    })
}

async fn handle(
    stream: UnixStream,
    status: watch::Receiver<StatusReply>,
    disconnect: mpsc::Sender<()>,
) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(5),
        BufReader::new(r).take(4096).read_line(&mut line),
    )
    .await
    .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let reply = match serde_json::from_str::<Request>(line.trim()) {
        Ok(Request::Status) => serde_json::to_string(&*status.borrow()),
        Ok(Request::Disconnect) => {
            let _ = disconnect.try_send(());
            serde_json::to_string(&Ack { ok: true })
        }
        Err(_) => serde_json::to_string(&Ack { ok: false }),
    }
    .map_err(std::io::Error::other)?;
    w.write_all(reply.as_bytes()).await?;
    w.write_all(b"\n").await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn status_and_disconnect_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l2sec/control.sock");
        let st = StatusReply {
            profile: "lab".into(),
            server: "198.18.0.1".into(),
            state: "up".into(),
            pid: 42,
            bytes_in: 7,
            ..StatusReply::default()
        };
        let (_tx, rx) = watch::channel(st.clone());
        let (dtx, mut drx) = mpsc::channel(1);
        let server = serve(&path, rx, dtx).await.unwrap();
        assert_eq!(status(&path).await.unwrap(), st);
        disconnect(&path).await.unwrap();
        assert_eq!(drx.recv().await, Some(()));
        // A second server on the same live path is refused.
        let (_tx2, rx2) = watch::channel(StatusReply::default());
        let (dtx2, _drx2) = mpsc::channel(1);
        assert!(serve(&path, rx2, dtx2).await.is_err());
        drop(server);
        assert!(!path.exists());
        assert!(status(&path).await.is_err());
    }
}
