//! The errors a user sees: one sentence, an optional hint, an exit code.
//!
//! Everything that can go wrong in front of a user ends up here, so `main`
//! can print it the same way every time and never panic or show a backtrace.

use std::fmt;

/// Exit codes, as documented in `muxtrace --help` and the README.
pub mod exit {
    /// Done, including "the traced process exited".
    pub const OK: u8 = 0;
    /// A runtime failure: the kernel refused, a tracepoint is missing, I/O failed.
    pub const RUNTIME: u8 = 1;
    /// Bad usage or bad input: no such pid, a bad flag, not permitted.
    pub const USAGE: u8 = 2;
}

/// A failure explained for the user.
#[derive(Debug)]
pub struct UserError {
    pub message: String,
    pub hint: Option<String>,
    pub code: u8,
}

impl UserError {
    pub fn usage(message: impl Into<String>) -> Self {
        UserError {
            message: message.into(),
            hint: None,
            code: exit::USAGE,
        }
    }

    pub fn runtime(message: impl Into<String>) -> Self {
        UserError {
            message: message.into(),
            hint: None,
            code: exit::RUNTIME,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for UserError {}

pub type Result<T, E = UserError> = std::result::Result<T, E>;
