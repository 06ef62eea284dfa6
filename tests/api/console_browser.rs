//! The console in a real headless Chromium (Debian's `chromium` + `chromium-driver`, driven
//! over WebDriver): sign in, search, open a customer, grant a balance and see it with its
//! timeline entry, retry a dead letter and see it applied, sign out. Screenshots of each
//! page go to `target/screenshots/` for review.

use serde_json::Value;

use crate::helpers::*;
use crate::stripe_side::World;
use crate::webdriver::Browser;

/// Refuses one invoice, as a constraint added by a migration might: its event goes dead
/// (a check violation is permanent) until the cause is removed.
const REFUSE_INVOICE: [&str; 2] = [
    "CREATE FUNCTION console_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
         IF NEW.stripe_id = 'in_console_dead' THEN
             RAISE EXCEPTION 'invoice in_console_dead refused on purpose' USING ERRCODE = 'check_violation';
         END IF;
         RETURN NEW;
     END $$",
    "CREATE TRIGGER console_test_refuse BEFORE INSERT OR UPDATE ON invoices
     FOR EACH ROW EXECUTE FUNCTION console_test_refuse()",
];

/// A world worth looking at: a paying customer with a plan, an add-on, an invoice, and a
/// dead letter; a few more customers for the list.
async fn arrange() -> (World, String) {
    let w = World::new().await;
    let stripe_id = w.paying_customer("u_ada").await;
    w.app
        .api(
            hyper::Method::PATCH,
            "/v1/customers/u_ada",
            Some(serde_json::json!({"name": "Ada Lovelace", "email": "ada@analytical.test"})),
        )
        .await;
    w.attach("u_ada", "pro").await;
    w.drain().await;
    w.attach("u_ada", "priority-support").await;
    w.drain().await;
    w.drain_retries().await;
    for (id, name, email) in [
        ("u_grace", "Grace Hopper", "grace@cobol.test"),
        ("u_alan", "Alan Turing", "alan@bletchley.test"),
        ("u_edsger", "Edsger Dijkstra", "ewd@eindhoven.test"),
    ] {
        w.app
            .create_customer(serde_json::json!({"id": id, "name": name, "email": email}))
            .await;
    }
    for sql in REFUSE_INVOICE {
        sqlx::query(sql).execute(&w.app.pool).await.unwrap();
    }
    let mut dead: Value =
        serde_json::from_slice(&std::fs::read(fixtures_dir().join("invoice.paid.json")).unwrap())
            .unwrap();
    dead["id"] = "evt_console_dead".into();
    dead["created"] = now().into();
    let invoice = &mut dead["data"]["object"];
    invoice["id"] = "in_console_dead".into();
    invoice["customer"] = stripe_id.as_str().into();
    invoice["billing_reason"] = "manual".into();
    invoice["parent"]["subscription_details"]["metadata"]["customer_id"] = "u_ada".into();
    let (status, body) = w.app.post_event(&serde_json::to_vec(&dead).unwrap()).await;
    assert!(status.is_success(), "{body}");
    w.drain().await;
    let (_, event) = w
        .app
        .get("/v1/events/evt_console_dead", Some(API_TOKEN))
        .await;
    assert_eq!(event["state"], "dead", "{event}");
    (w, stripe_id)
}

#[tokio::test]
async fn an_operator_signs_in_grants_a_balance_retries_a_dead_letter_and_signs_out() {
    let (w, _) = arrange().await;
    let browser = Browser::start(1280, 900).await;
    let url = |path: &str| w.app.url(path);

    // Without a session: the sign-in page, which brings us back afterwards.
    browser.goto(&url("/console/customers")).await;
    browser.find("input[name=token]").await;
    browser.screenshot("01-login").await;
    browser.type_into("input[name=token]", API_TOKEN).await;
    browser.click("form[action='/console/login'] button").await;
    browser.wait_for_text("h1", "Customers").await;
    assert!(browser.url().await.ends_with("/console/customers"));
    let list = browser.text("table").await.unwrap();
    for name in ["Ada Lovelace", "Grace Hopper", "Alan Turing"] {
        assert!(list.contains(name), "{name} in {list}");
    }
    browser.screenshot("02-customers").await;

    // Search.
    browser
        .type_into("input[name=search]", "lovelace\u{e007}")
        .await;
    browser.wait_for_url("search=lovelace").await;
    browser.wait_for_text("table", "Ada Lovelace").await;
    let found = browser.text("table").await.unwrap();
    assert!(!found.contains("Grace Hopper"), "{found}");
    browser.screenshot("03-search").await;

    // Open the customer.
    browser.click("a.customer").await;
    browser.wait_for_text("h1", "Ada Lovelace").await;
    let plans = browser.text("#plans").await.unwrap();
    for text in ["Pro", "Priority support", "$20.00 / month", "active"] {
        assert!(plans.contains(text), "{text} in {plans}");
    }
    let usage = browser.text("#usage").await.unwrap();
    assert!(
        usage.contains("messages") && usage.contains("of 1,000 used"),
        "{usage}"
    );
    browser.screenshot("04-customer").await;

    // Grant a balance through its sheet.
    browser
        .click("tr[data-feature=messages] details.edit-balance summary")
        .await;
    browser
        .type_into("tr[data-feature=messages] input[name=amount]", "250")
        .await;
    browser
        .type_into(
            "tr[data-feature=messages] input[name=reason]",
            "goodwill credit",
        )
        .await;
    browser.screenshot("05-balance-sheet").await;
    browser
        .click("tr[data-feature=messages] button[type=submit]")
        .await;
    let outcome = browser
        .wait_for_text("#outcome", "Granted 250 messages")
        .await;
    assert!(outcome.contains("the balance is now 1,250"), "{outcome}");
    let row = browser.text("tr[data-feature=messages]").await.unwrap();
    assert!(
        row.contains("1,250") && row.contains("of 1,250 used"),
        "{row}"
    );
    let timeline = browser.text("#timeline").await.unwrap();
    assert!(
        timeline.contains("Granted 250 messages") && timeline.contains("goodwill credit"),
        "{timeline}"
    );
    let events = browser.text("#events").await.unwrap();
    assert!(
        events.contains("invoice.paid") && events.contains("dead"),
        "{events}"
    );
    browser.screenshot("06-balance-granted").await;

    // The outbox: the dead letter, retried once its cause is gone.
    browser.click("header nav a[href='/console/outbox']").await;
    browser.wait_for_text("h1", "Outbox").await;
    let dead = browser.text("#dead").await.unwrap();
    assert!(
        dead.contains("evt_console_dead") && dead.contains("refused on purpose"),
        "{dead}"
    );
    browser.find("svg.chart").await;
    browser.screenshot("07-outbox").await;
    sqlx::query("DROP TRIGGER console_test_refuse ON invoices")
        .execute(&w.app.pool)
        .await
        .unwrap();
    browser
        .click("tr[data-key=evt_console_dead] button[type=submit]")
        .await;
    browser.wait_for_text("#outcome", "queued again").await;
    w.drain().await;
    browser.goto(&url("/console/events/evt_console_dead")).await;
    let state = browser.wait_for_text("#state", "applied").await;
    assert_eq!(state.trim(), "applied");
    let payload = browser.text("#payload").await.unwrap();
    assert!(
        payload.contains("\"id\": \"in_console_dead\""),
        "pretty-printed: {payload}"
    );
    browser.screenshot("08-event-applied").await;
    browser.goto(&url("/console/outbox")).await;
    browser.wait_for_text("#dead", "No dead letters.").await;

    // Sign out: back to the sign-in page, and the console is closed again.
    browser.click("form.signout button").await;
    browser.wait_for_text("#outcome", "Signed out.").await;
    browser.screenshot("09-signed-out").await;
    browser.goto(&url("/console/customers/u_ada")).await;
    browser.find("input[name=token]").await;
    assert!(browser.url().await.contains("/console/login?next="));
}
