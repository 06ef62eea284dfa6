//! Same-second truth (issue 24, defects 1 and 2): changes made in Stripe within one second,
//! each as soon as the previous one answered, end in the store as Stripe has them. A read
//! that settles a tie is stamped with its own second, never later, so an event of that
//! second still counts.

use hyper::Method;
use serde_json::{Value, json};

use crate::plan_changes::{product, stripe_subscription, subscribed};
use crate::stripe_side::{World, settle};

/// Posts a change and runs it (its job and whatever is queued), at once.
async fn change(w: &World, route: &str, body: Value) {
    let (status, answer) = w.app.api(Method::POST, route, Some(body)).await;
    assert!(status.is_success(), "{route}: {status}: {answer}");
    w.drain().await;
}

#[tokio::test]
async fn quantities_then_cancel_now_in_one_second_leave_no_live_plan() {
    let w = World::new().await;
    for n in 0..3 {
        let customer = format!("u_ss1_{n}");
        let sub = subscribed(&w, &customer, "team", 1).await;
        for quantity in [2, 3, 4] {
            let body = json!({"customer_id": customer, "plan_id": "team", "quantity": quantity});
            change(&w, "/v1/quantity", body).await;
        }
        change(
            &w,
            "/v1/cancel",
            json!({"customer_id": customer, "plan_id": "team", "at": "now"}),
        )
        .await;
        settle(&w).await;
        assert_eq!(stripe_subscription(&w, &sub)["status"], "canceled");
        let view = w.customer(&customer).await;
        assert!(
            product(&view, "team").is_none(),
            "round {n}: team is still live: {view:#}"
        );
        let (_, check) = w
            .app
            .api(
                Method::POST,
                "/v1/check",
                Some(json!({"customer_id": customer, "feature_id": "seats"})),
            )
            .await;
        assert_eq!(check["allowed"], false, "round {n}: {check}");
    }
}

#[tokio::test]
async fn cancel_uncancel_then_quantity_in_quick_succession_keep_stripes_quantity() {
    let w = World::new().await;
    for n in 0..3 {
        let customer = format!("u_ss2_{n}");
        let sub = subscribed(&w, &customer, "team", 1).await;
        let body = |extra: Value| {
            let mut b = json!({"customer_id": customer, "plan_id": "team"});
            b.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            b
        };
        change(&w, "/v1/cancel", body(json!({"at": "period_end"}))).await;
        change(&w, "/v1/uncancel", body(json!({}))).await;
        change(&w, "/v1/quantity", body(json!({"quantity": 3}))).await;
        settle(&w).await;
        let stripe = stripe_subscription(&w, &sub);
        assert_eq!(stripe["items"]["data"][0]["quantity"], 3);
        let view = w.customer(&customer).await;
        let team =
            product(&view, "team").unwrap_or_else(|| panic!("round {n}: no team plan: {view:#}"));
        assert_eq!(team["quantity"], 3, "round {n}: {view:#}");
        assert_eq!(team["cancel_at_period_end"], false, "round {n}: {view:#}");
    }
}

/// Defect 4: a name changed in Stripe's dashboard, then ours changed a moment later; the
/// dashboard's webhook arrives after our change. Both sides end with ours (our push came
/// last), whether the two changes fell in one second or not.
#[tokio::test]
async fn a_dashboard_name_change_then_ours_moments_later_end_the_same_on_both_sides() {
    let w = World::new().await;
    for n in 0..3 {
        let customer = format!("u_ss4_{n}");
        let stripe_id = w.paying_customer(&customer).await;
        settle(&w).await;
        w.stripe.set_delivery(fake_stripe::Delivery::Drop);
        let before = w.stripe.events().len();
        w.stripe
            .update_customer_in_dashboard(&stripe_id, Some("Dashboard Dana"), None)
            .await
            .unwrap();
        let dashboard: Vec<Value> = w.stripe.events()[before..].to_vec();
        assert_eq!(dashboard.len(), 1, "{dashboard:#?}");
        w.stripe.set_delivery(fake_stripe::Delivery::Deliver);
        let (status, answer) = w
            .app
            .api(
                Method::PATCH,
                &format!("/v1/customers/{customer}"),
                Some(json!({"name": "Our Olive"})),
            )
            .await;
        assert!(status.is_success(), "{answer}");
        // Our push runs, then the dashboard's webhook arrives late.
        w.drain().await;
        w.app.post_event(dashboard[0].to_string().as_bytes()).await;
        settle(&w).await;
        let stripe_name = stripe_name(&w, &stripe_id);
        assert_eq!(stripe_name, "Our Olive", "round {n}");
        let ours = w.customer(&customer).await;
        assert_eq!(ours["name"], stripe_name, "round {n}: {ours:#}");
    }
}

/// Two name changes in Stripe's dashboard within one second, their webhooks delivered in
/// reverse: the payloads cannot say which came last, so the later-arriving one is not
/// copied over the other; the customer is read from Stripe and ours ends as Stripe's.
#[tokio::test]
async fn two_dashboard_name_changes_of_one_second_delivered_in_reverse_end_as_stripe() {
    let w = World::new().await;
    let customer = "u_ss_names";
    let stripe_id = w.paying_customer(customer).await;
    settle(&w).await;
    w.stripe.set_delivery(fake_stripe::Delivery::Drop);
    let before = w.stripe.events().len();
    for name in ["First Fay", "Second Sid"] {
        w.stripe
            .update_customer_in_dashboard(&stripe_id, Some(name), None)
            .await
            .unwrap();
    }
    let dashboard: Vec<Value> = w.stripe.events()[before..].to_vec();
    assert_eq!(dashboard.len(), 2, "{dashboard:#?}");
    assert_eq!(
        dashboard[0]["created"], dashboard[1]["created"],
        "the fake's clock does not step: both changes are of one second"
    );
    w.stripe.set_delivery(fake_stripe::Delivery::Deliver);
    for event in dashboard.iter().rev() {
        w.app.post_event(event.to_string().as_bytes()).await;
        w.drain().await;
    }
    settle(&w).await;
    let ours = w.customer(customer).await;
    assert_eq!(ours["name"], "Second Sid", "{ours:#}");
}

/// Our name changed, changed again, and changed back (as fast as the API answers): each is a
/// push of its own, so Stripe ends with the last one, as ours does (a push keyed by its
/// content alone was taken for the first one's and never made).
#[tokio::test]
async fn a_name_changed_and_changed_back_is_pushed_again() {
    let w = World::new().await;
    let customer = "u_ss_back";
    let stripe_id = w.paying_customer(customer).await;
    settle(&w).await;
    for name in ["Back Bea", "Forth Flo", "Back Bea"] {
        let (status, answer) = w
            .app
            .api(
                Method::PATCH,
                &format!("/v1/customers/{customer}"),
                Some(json!({"name": name})),
            )
            .await;
        assert!(status.is_success(), "{answer}");
        w.drain().await;
    }
    settle(&w).await;
    let stripe_name = stripe_name(&w, &stripe_id);
    assert_eq!(stripe_name, "Back Bea");
    let ours = w.customer(customer).await;
    assert_eq!(ours["name"], "Back Bea", "{ours:#}");
}

/// The name the fake Stripe holds for `stripe_id`.
fn stripe_name(w: &World, stripe_id: &str) -> Value {
    w.stripe
        .customers()
        .into_iter()
        .find(|c| c["id"] == stripe_id)
        .unwrap()["name"]
        .clone()
}
