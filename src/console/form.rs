//! A posted console form (`application/x-www-form-urlencoded`), read with the same bounds
//! as an API body. A NUL anywhere is refused here, once for every form, as `/v1` bodies are.

use hyper::Request;
use hyper::body::Incoming;

use super::ConsoleState;
use crate::web::ApiError;
use crate::web::read_body;

#[derive(Debug, Default)]
pub(super) struct Form(Vec<(String, String)>);

impl Form {
    pub(super) async fn read(
        state: &ConsoleState,
        req: Request<Incoming>,
    ) -> Result<Self, ApiError> {
        let bytes = read_body(state.body_limits, req).await?;
        Self::parse(&bytes)
    }

    pub(super) fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(bytes).into_owned().collect();
        if let Some((key, _)) = pairs
            .iter()
            .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(ApiError::invalid(
                &key.replace('\0', "\\u0000"),
                "contains a NUL character, which cannot be stored",
            ));
        }
        Ok(Self(pairs))
    }

    /// The first value of `key`, as sent.
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key` trimmed, `None` when missing or blank.
    pub(super) fn text(&self, key: &str) -> Option<String> {
        self.get(key)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    /// A checkbox: present and not `off`.
    pub(super) fn checked(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| v != "off" && v != "false")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_decoded_and_a_nul_is_refused() {
        let form = Form::parse(b"a=+x+&b=1%2F2&c=&n=12&bad=x1").unwrap();
        assert_eq!(form.text("a").as_deref(), Some("x"));
        assert_eq!(form.get("b"), Some("1/2"));
        assert_eq!(form.text("c"), None);
        assert_eq!(form.text("n").as_deref(), Some("12"));
        assert_eq!(form.text("missing"), None);
        assert!(Form::parse(b"name=a%00b").is_err());
    }
}
