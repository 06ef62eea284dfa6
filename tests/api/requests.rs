//! The durable-request mechanism (`stripe_reconciler::requests`) on its own: recording a
//! request queues its job once, and a repeat gets the earlier request. Attaches, whose
//! repeat is "a plan in flight" rather than an idempotency key, are the example; the API's
//! own paths (attach, plan changes, rewards) are tested through the API elsewhere.

use serde_json::json;
use stripe_reconciler::requests::{self, attach};
use stripe_reconciler::store::attaches::Attach;
use stripe_reconciler::store::{customers, requests as table};

use crate::helpers::*;

#[tokio::test]
async fn a_repeated_request_gets_the_first_and_queues_nothing_more() {
    let app = TestApp::spawn().await;
    app.create_customer(json!({"id": "u_req"})).await;
    app.create_customer(json!({"id": "u_payer"})).await;
    let mut tx = app.pool.begin().await.unwrap();
    let customer = customers::by_id(&mut tx, "u_req").await.unwrap().unwrap();
    // The job runs in the payer's order (an entity's attach is kept under its holder).
    let payer = customers::by_id(&mut tx, "u_payer").await.unwrap().unwrap();
    let new = attach::New {
        attach: new_attach(customer.pk, "pro"),
        payer_pk: payer.pk,
    };

    let (first, repeated) = requests::record::<Attach>(&mut tx, &new).await.unwrap();
    assert!(!repeated);
    assert_eq!(first.state, "pending");
    let (again, repeated) = requests::record::<Attach>(&mut tx, &new).await.unwrap();
    assert!(repeated, "the plan is in flight: the first attach answers");
    assert_eq!(again.id, first.id);
    tx.commit().await.unwrap();

    let jobs: Vec<(String, serde_json::Value)> =
        sqlx::query_as("SELECT job_key, args FROM jobs WHERE kind = 'attach.execute'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        jobs,
        [(
            format!("attach.execute:{}", first.id),
            json!({"attach_id": first.id, "customer_pk": payer.pk}),
        )],
        "one job, for the first"
    );

    // Once the first is no longer in flight, the same request is a new one.
    let mut tx = app.pool.begin().await.unwrap();
    assert!(
        table::fail::<Attach>(&mut tx, &first.id, "gave up")
            .await
            .unwrap()
    );
    let (second, repeated) = requests::record::<Attach>(&mut tx, &new).await.unwrap();
    tx.commit().await.unwrap();
    assert!(!repeated);
    assert_ne!(second.id, first.id);
    assert_eq!(
        app.count("SELECT count(*) FROM jobs WHERE kind = 'attach.execute'")
            .await,
        2
    );
}
