//! Failures of a command: one message and an exit code.

use l2sec_engine::{ConnectError, ErrorKind};

/// Success, or disconnected by the user.
pub const EXIT_OK: u8 = 0;
/// Usage or profile error.
pub const EXIT_USAGE: u8 = 1;
/// Connect failed: the server refused or did not answer.
pub const EXIT_CONNECT: u8 = 2;
/// Connection lost and not reconnecting; for `status`: nothing is running.
pub const EXIT_LOST: u8 = 3;
/// Host configuration failed.
pub const EXIT_HOST: u8 = 4;
/// Internal error.
pub const EXIT_INTERNAL: u8 = 5;
/// Authentication failed: the PSK, certificate, user name or password was refused.
pub const EXIT_AUTH: u8 = 6;

/// Why a command failed: printed as is (one line per problem), then the process exits with `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Exit status.
    pub code: u8,
    /// What went wrong and how to fix it.
    pub message: String,
}

impl Failure {
    /// A usage error (exit 1).
    pub fn usage(msg: impl Into<String>) -> Self {
        Failure {
            code: EXIT_USAGE,
            message: msg.into(),
        }
    }

    /// A profile error (exit 1).
    pub fn profile(e: l2sec_profile::Error) -> Self {
        Failure::usage(e.to_string())
    }

    /// The terminal could not be read (exit 1).
    pub fn prompt(e: std::io::Error) -> Self {
        Failure::usage(format!(
            "cannot read from the terminal: {e}; set the secret in the profile instead"
        ))
    }

    /// A failure of the engine, with the exit code of its kind.
    pub fn connect(e: &ConnectError) -> Self {
        Failure {
            code: exit_code(e.kind),
            message: e.to_string(),
        }
    }

    /// An internal error (exit 5).
    pub fn internal(msg: impl Into<String>) -> Self {
        Failure {
            code: EXIT_INTERNAL,
            message: msg.into(),
        }
    }
}

/// The exit status for a kind of engine failure.
#[must_use]
pub fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Config => EXIT_USAGE,
        ErrorKind::Remote => EXIT_CONNECT,
        ErrorKind::Auth => EXIT_AUTH,
        ErrorKind::Lost => EXIT_LOST,
        ErrorKind::Host => EXIT_HOST,
        ErrorKind::Internal => EXIT_INTERNAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use l2sec_engine::Stage;

    #[test]
    fn codes_by_kind() {
        assert_eq!(exit_code(ErrorKind::Config), 1);
        assert_eq!(exit_code(ErrorKind::Remote), 2);
        assert_eq!(exit_code(ErrorKind::Auth), 6);
        assert_eq!(exit_code(ErrorKind::Lost), 3);
        assert_eq!(exit_code(ErrorKind::Host), 4);
        assert_eq!(exit_code(ErrorKind::Internal), 5);
    }

    #[test]
    fn connect_failure_is_one_line() {
        let e = ConnectError::new(
            Stage::IkePhase1,
            ErrorKind::Remote,
            "no answer from 198.18.0.1 after 5 tries",
        )
        .with_hint("try ike = [\"3des-sha1-modp1024\"]");
        let f = Failure::connect(&e);
        assert_eq!(f.code, EXIT_CONNECT);
        assert_eq!(
            f.message,
            "IKE phase 1: no answer from 198.18.0.1 after 5 tries — try ike = [\"3des-sha1-modp1024\"]"
        );
        assert!(!f.message.contains('\n'));
    }
}
