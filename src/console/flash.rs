//! The outcome of an action, shown once on the page the action redirects to
//! (post/redirect/get): a signed cookie read and cleared by the next page.

use serde::{Deserialize, Serialize};

use hyper::header::HeaderMap;

use super::session::{self, Console};

const COOKIE: &str = "rc_console_flash";

/// What an action came to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Outcome {
    pub kind: Kind,
    pub message: String,
    /// A link to hand on (a checkout URL, a hosted invoice), with its label.
    pub link: Option<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    Done,
    /// Nothing was done, on purpose (an action not available yet).
    Notice,
    Failed,
}

impl Outcome {
    pub(crate) fn done(message: impl Into<String>) -> Self {
        Self::new(Kind::Done, message)
    }

    pub(crate) fn notice(message: impl Into<String>) -> Self {
        Self::new(Kind::Notice, message)
    }

    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self::new(Kind::Failed, message)
    }

    fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            link: None,
        }
    }

    pub(crate) fn with_link(mut self, label: &str, url: &str) -> Self {
        self.link = Some((label.to_owned(), url.to_owned()));
        self
    }
}

/// The `Set-Cookie` value that carries `outcome` to the next page.
pub(super) fn set(console: &Console, headers: &HeaderMap, outcome: &Outcome) -> String {
    let mut outcome = outcome.clone();
    if outcome.message.chars().count() > 600 {
        outcome.message = outcome.message.chars().take(600).collect::<String>() + "…";
    }
    let data = hex::encode(serde_json::to_vec(&outcome).expect("outcomes serialize"));
    let value = format!("{data}.{}", console.sign("flash", &data));
    session::set_cookie(headers, COOKIE, &value, "/console", 60)
}

/// The outcome the request carries, if any and ours.
pub(super) fn take(console: &Console, headers: &HeaderMap) -> Option<Outcome> {
    let (data, mac) = session::cookie(headers, COOKIE)?.split_once('.')?;
    if !console.verify("flash", data, mac) {
        return None;
    }
    serde_json::from_slice(&hex::decode(data).ok()?).ok()
}

/// The `Set-Cookie` value that clears it once shown.
pub(super) fn clear(headers: &HeaderMap) -> String {
    session::set_cookie(headers, COOKIE, "", "/console", 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use hyper::header;

    #[test]
    fn an_outcome_survives_the_redirect_and_only_when_signed() {
        let console = Console::new(&Secret::new("t"));
        let outcome = Outcome::done("Attached").with_link("Checkout", "https://x.test/c?a=1");
        let set = set(&console, &HeaderMap::new(), &outcome);
        let value = set.split(';').next().unwrap().to_owned();
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, value.parse().unwrap());
        assert_eq!(take(&console, &headers), Some(outcome));
        let forged = Console::new(&Secret::new("other"));
        assert_eq!(take(&forged, &headers), None);
    }
}
