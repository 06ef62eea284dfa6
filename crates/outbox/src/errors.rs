//! Failures and their classes: what a handler returns, and which database errors are worth
//! retrying, which are the data's fault, and which mean the database is not there.

/// How a handler failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth trying again later.
    #[error("{0:#}")]
    Retryable(anyhow::Error),
    /// Will fail the same way every time: straight to dead letters.
    #[error("{0:#}")]
    Permanent(anyhow::Error),
    /// The input cannot be read (a payload that does not parse): permanent, and raised
    /// before the handler wrote anything, so the rest of its batch stands.
    #[error("{0:#}")]
    Unreadable(anyhow::Error),
}

impl JobError {
    pub fn retryable(error: impl Into<anyhow::Error>) -> Self {
        Self::Retryable(error.into())
    }

    pub fn permanent(error: impl Into<anyhow::Error>) -> Self {
        Self::Permanent(error.into())
    }

    /// The error inside, whatever its class.
    pub fn inner(&self) -> &anyhow::Error {
        let (Self::Retryable(error) | Self::Permanent(error) | Self::Unreadable(error)) = self;
        error
    }

    /// A handler's explicit refusal of an input.
    pub fn reject(reason: impl std::fmt::Display) -> Self {
        Self::Permanent(anyhow::anyhow!("rejected: {reason}"))
    }
}

impl From<sqlx::Error> for JobError {
    /// Data that Postgres refuses will be refused again: such errors are permanent, so an
    /// event carrying it goes to dead letters at once instead of holding its key's queue
    /// for the whole retry schedule. Everything else (connection loss, timeouts, deadlocks,
    /// serialization failures, and unique or foreign-key violations, which a concurrent
    /// writer can cause and a retry resolves) is retryable.
    fn from(error: sqlx::Error) -> Self {
        if is_data_error(&error) {
            Self::Permanent(error.into())
        } else {
            Self::Retryable(error.into())
        }
    }
}

/// SQLSTATE class 22 (data exception: a NUL in text, a number out of range, a bad encoding),
/// 23502 (not null) and 23514 (check): the same input fails the same way every time.
pub fn is_data_error(error: &sqlx::Error) -> bool {
    let Some(code) = error.as_database_error().and_then(|e| e.code()) else {
        return false;
    };
    code.starts_with("22") || code == "23502" || code == "23514"
}

/// Errors that mean "Postgres is not there right now" rather than "this query is wrong".
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => {
            // Class 08 (connection), 57P (operator intervention: shutdown), 53 (resources),
            // 3D000 (the database is gone).
            db.code().is_some_and(|c| {
                c.starts_with("08") || c.starts_with("57P") || c.starts_with("53") || c == "3D000"
            })
        }
        _ => false,
    }
}
