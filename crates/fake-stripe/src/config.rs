//! What a test (or `main`) chooses about the fake: where webhooks go and how they are signed
//! ([`FakeConfig`], [`WebhookSecret`]), whether they are sent ([`Delivery`]), a failure to
//! inject ([`Fault`]) and how a customer's payment method behaves ([`PaymentMethodKind`]).

use std::fmt;
use std::time::Duration;

/// Where the fake sends webhooks; with no URL, events are only recorded
/// ([`FakeStripe::events`](super::FakeStripe::events)).
#[derive(Clone, Debug, Default)]
pub struct FakeConfig {
    pub webhook_url: Option<String>,
    /// Signs deliveries like Stripe; without it they carry no `Stripe-Signature`.
    pub webhook_secret: Option<WebhookSecret>,
}

/// A webhook signing secret (`whsec_...`): `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A failure to inject with [`FakeStripe::fail_next`](super::FakeStripe::fail_next).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 500 `api_error` with `Stripe-Should-Retry: true`; the request has no effect.
    Status500,
    /// 429 `rate_limit`; the request has no effect.
    Status429,
    /// The request takes effect at once but its answer is held back this long.
    Delay(Duration),
    /// 400 `invalid_request_error` (a refusal no retry can change); no effect.
    Status400,
}

/// How a customer's payment method behaves when Stripe charges it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentMethodKind {
    /// Charges succeed at once (today's behaviour; `set_default_payment_method` gives this).
    Card,
    /// The first charge needs 3-D Secure: the PaymentIntent is `requires_action`. Once the
    /// customer authenticated ([`FakeStripe::pay_invoice`](super::FakeStripe::pay_invoice),
    /// or at checkout), it charges like a card.
    ThreeDSecure,
    /// Charges are declined (`card_declined`): the PaymentIntent is `requires_payment_method`.
    Declining,
    /// A bank debit (SEPA/ACH): the PaymentIntent is `processing` until
    /// [`FakeStripe::settle_async_payment`](super::FakeStripe::settle_async_payment) decides it.
    AsyncDebit,
}

/// Whether events reach the webhook URL
/// ([`FakeStripe::set_delivery`](super::FakeStripe::set_delivery)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Delivery {
    /// Events are sent to the webhook URL, in order (the default).
    #[default]
    Deliver,
    /// Events are generated, recorded and listed by `GET /v1/events`, but never sent: lost
    /// webhooks. Switching back to `Deliver` does not resend them.
    Drop,
}
