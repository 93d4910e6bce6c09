//! Sessions in many accounts: credentials kept for every role, SDK clients only for the
//! most recent, policy documents kept once however many roles hold them.

use std::sync::Arc;

use garrison_cloud::emulator::Moto;
use garrison_cloud::session::CLIENTS_KEPT;
use garrison_cloud::{Aws, Sessions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_fleet_keeps_credentials_but_bounds_its_clients() {
    let moto = Moto::start().expect("the AWS emulator is required for this test");
    let sessions = Sessions::new(Aws::from_config(moto.sdk_config("us-east-1").await));
    let roles: Vec<String> = (0..CLIENTS_KEPT + 40)
        .map(|i| format!("arn:aws:iam::{}:role/garrison", 440_000_000_000u64 + i as u64))
        .collect();
    for r in &roles {
        sessions.assume(r, "ext").await.expect("assumed");
        assert!(sessions.with_clients() <= CLIENTS_KEPT, "clients bounded");
    }
    let calls = &sessions.base.calls;
    assert_eq!(calls.count("AssumeRole"), roles.len() as u64);
    // The first role's clients were let go; its credentials were not: no new AssumeRole,
    // and the session made again acts in its account.
    let first = sessions.assume(&roles[0], "ext").await.expect("assumed again");
    assert_eq!(calls.count("AssumeRole"), roles.len() as u64, "credentials reused");
    assert_eq!(first.account, "440000000000");
    let who = first.sts().get_caller_identity().send().await.expect("caller identity");
    assert_eq!(who.account(), Some("440000000000"), "the kept credentials are the role's");
    // Another ExternalId is another session; forgetting a role drops both its records.
    sessions.assume(&roles[0], "other").await.expect("assumed");
    assert_eq!(calls.count("AssumeRole"), roles.len() as u64 + 1);
    sessions.forget(&roles[0]);
    sessions.assume(&roles[0], "ext").await.expect("assumed");
    assert_eq!(calls.count("AssumeRole"), roles.len() as u64 + 2, "forgotten credentials are asked for again");
}

#[tokio::test]
async fn policy_documents_are_kept_once() {
    let sessions = Sessions::new(Aws::from_config(aws_config::SdkConfig::builder().build()));
    let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ec2:Describe*"],"Resource":"*"}]}"#;
    let a = sessions.document(text);
    // The same text in another buffer, as each role's answer arrives.
    let copy: String = text.chars().collect();
    let b = sessions.document(&copy);
    assert!(Arc::ptr_eq(&a, &b), "one copy for one text");
    assert_eq!(a["Statement"][0]["Action"][0], "ec2:Describe*");
    // IAM's URL-encoded form of the same document reads the same.
    let encoded = text.replace('{', "%7B").replace('}', "%7D").replace('"', "%22").replace(':', "%3A");
    assert_eq!(*sessions.document(&encoded), *a);
}
