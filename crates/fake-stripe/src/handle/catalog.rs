//! The catalog as a test sees it: the prices, and one lost.

use serde_json::Value;

use super::FakeStripe;

impl FakeStripe {
    /// The account loses a price (as when the key now points at another account, or test
    /// data was cleared): requests naming it get `No such price`.
    ///
    /// # Panics
    /// If there is no such price.
    pub fn delete_price(&self, price_id: &str) {
        let removed = self.fake.lock().prices.remove(price_id);
        assert!(removed.is_some(), "fake Stripe: no price {price_id}");
    }

    pub fn prices(&self) -> Vec<Value> {
        self.fake.lock().prices.values().cloned().collect()
    }
}
