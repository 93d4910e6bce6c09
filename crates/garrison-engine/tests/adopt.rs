//! Adopting the customer's trail as it is on the emulator: its log files are in a bucket of
//! another region and encrypted with a KMS key, and it notifies its own SNS topic. The scope
//! is the one that once made garrison build a second trail: a VPC of a region that sorts
//! before the trail's home region, and the home region itself. garrison adopts trail and
//! topic (one trail in the account before and after), warns naming the key while the key
//! policy does not let its role decrypt, and reads the trail's files from the bucket's region
//! when CloudTrail announces them, as it would announce them on AWS.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::GARRISON;
use garrison_cloud::emulator::Moto;
use garrison_cloud::estate::{self, EstateSpec};
use garrison_cloud::{Aws, Sessions};
use garrison_engine::plan::desired::keys;
use garrison_engine::protect::reconcile;
use garrison_testkit::sample;
use serde_json::{Value, json};

const ALICE: &str = "arn:aws:sts::123456789012:assumed-role/Admin/alice";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_trail_with_a_bucket_elsewhere_and_kms_files_is_adopted_and_read() {
    common::init_log();
    let moto = Moto::start().expect("the AWS emulator is required for this test");
    let aws = Aws::from_config(moto.sdk_config("us-east-1").await);
    let sessions = Arc::new(Sessions::new(aws.clone()));
    let spec = EstateSpec::s_bare();
    let est = estate::build(&sessions, &spec).await.unwrap();
    // The trail's home region sorts after the other: discovery meets its shadow copy first.
    let (elsewhere, home) = (spec.regions[0].clone(), spec.regions[1].clone());
    assert!(elsewhere < home, "{elsewhere} {home}");
    let empty = est.vpcs().find(|v| v.instances.is_empty()).expect("estate S has an empty VPC").clone();

    // The customer's trail: homed in `home`, files in a bucket of `elsewhere`, SSE-KMS with
    // a key whose policy names another role only, notifications on its own topic.
    let bucket = "customer-trail-logs";
    let s3_far = aws.in_region(&elsewhere).s3();
    let mut create = s3_far.create_bucket().bucket(bucket);
    if elsewhere != "us-east-1" {
        create = create.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(elsewhere.as_str()))
                .build(),
        );
    }
    create.send().await.unwrap();
    let someone_else = json!({"Version": "2012-10-17", "Statement": [{"Sid": "Admins", "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{GARRISON}:role/KeyAdmins")}, "Action": "kms:*", "Resource": "*"}]});
    let kms = aws.in_region(&home).kms();
    let key = kms.create_key().policy(someone_else.to_string()).send().await.unwrap();
    let key_arn = key.key_metadata().unwrap().arn().unwrap().to_string();
    let sns = aws.in_region(&home).sns();
    let topic = sns.create_topic().name("customer-trail-topic").send().await.unwrap().topic_arn().unwrap().to_string();
    let ct = aws.in_region(&home).cloudtrail();
    ct.create_trail()
        .name("customer-trail")
        .s3_bucket_name(bucket)
        .is_multi_region_trail(true)
        .kms_key_id(&key_arn)
        .sns_topic_name("customer-trail-topic")
        .send()
        .await
        .unwrap();
    ct.start_logging().name("customer-trail").send().await.unwrap();

    let t = garrison_testkit::tenants::tenant(&aws, "full").await.unwrap();
    let store = t.store.clone();
    // A VPC of `elsewhere` (the empty one when it is there, where the host below starts)
    // and the whole of `home`.
    let vpc = est.vpcs().find(|v| v.region == elsewhere && (v.id == empty.id || empty.region != elsewhere)).unwrap();
    let include = vec![
        common::include("vpc", &format!("/aws/{elsewhere}/vpc/{}", vpc.id)),
        common::include("region", &format!("/aws/{home}")),
    ];
    let (d, e) = common::watched_with(&t, &sessions, "adopt", include, &home).await;

    // 1. Adopted, not doubled; the key policy named in the status.
    let first = reconcile(&e, &d).await.unwrap();
    assert!(first.outcomes.iter().all(|o| o.result == "done"), "{:#?}", first.outcomes);
    let trail = first.audit_source.trail.clone().unwrap();
    assert!(trail.adopted && trail.id == "customer-trail", "{trail:?}");
    let adopted_topic = first.audit_source.topic.clone().unwrap();
    assert!(adopted_topic.adopted && adopted_topic.id == topic);
    assert!(first.audit_source.bucket.is_none(), "no bucket of garrison's");
    let trails = ct.describe_trails().send().await.unwrap();
    assert_eq!(trails.trail_list().len(), 1, "one trail in the account: {:?}", trails.trail_list());
    let status = store.get_deployment(&d.account_id, &d.id).await.unwrap().unwrap().status;
    let msg = status.message.unwrap_or_default();
    assert!(msg.contains(&key_arn) && msg.contains("key policy does not let"), "{msg}");
    assert!(msg.contains(&format!("may not kms:Decrypt with its log files' key {key_arn}")), "{msg}");
    assert!(msg.contains(&format!("AuditLogKmsKeyArn={key_arn}")), "the remedy: {msg}");
    assert!(
        first.plan.notes.iter().any(|n| n.contains(&key_arn) && n.contains("AuditLogKmsKeyArn")),
        "{:?}",
        first.plan.notes
    );
    // The customer lets the account's roles use the key: the warning goes.
    let account_may = json!({"Version": "2012-10-17", "Statement": [{"Sid": "Account", "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{GARRISON}:root")}, "Action": "kms:*", "Resource": "*"}]});
    kms.put_key_policy().key_id(&key_arn).policy_name("default").policy(account_may.to_string()).send().await.unwrap();
    reconcile(&e, &d).await.unwrap();
    let msg = store.get_deployment(&d.account_id, &d.id).await.unwrap().unwrap().status.message.unwrap_or_default();
    assert!(!msg.contains("key policy does not let") && msg.contains("may not kms:Decrypt"), "{msg}");
    // The role's stack updated with the key: the policy the template's parameter adds.
    let tpl = garrison_catalog::cft::render(
        garrison_catalog::Catalog::builtin().get("aws", "ci_full", "latest").unwrap(),
        GARRISON,
    );
    let mut grant = tpl["Resources"]["GarrisonAuditLogKey"]["Properties"]["PolicyDocument"].clone();
    grant["Statement"][0]["Resource"] = json!(key_arn);
    aws.iam()
        .put_role_policy()
        .role_name("garrison-full")
        .policy_name("garrison-audit-log-key")
        .policy_document(grant.to_string())
        .send()
        .await
        .unwrap();
    reconcile(&e, &d).await.unwrap();
    let st = store.get_deployment(&d.account_id, &d.id).await.unwrap().unwrap().status;
    let msg = st.message.unwrap_or_default();
    assert!(!msg.contains("kms:Decrypt"), "{msg}");
    assert_eq!(st.status, garrison_model::deployment::StatusKind::Ok, "{msg}");

    // 2. CloudTrail writes a file (encrypted) to the far bucket and announces it on its topic.
    let collector = tokio::spawn(garrison_engine::collect::run(e.clone()));
    common::launch_host(&aws, &empty).await;
    let rec = sample::record("ec2", "RunInstances", &empty.region, GARRISON, ALICE, json!({}), Value::Null);
    let key = sample::log_key(GARRISON, &empty.region, "far");
    s3_far
        .put_object()
        .bucket(bucket)
        .key(&key)
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
        .ssekms_key_id(&key_arn)
        .body(sample::gzip(&[rec]).into())
        .send()
        .await
        .unwrap();
    sns.publish()
        .topic_arn(&topic)
        .message(json!({"s3Bucket": bucket, "s3ObjectKey": [key]}).to_string())
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let r = loop {
        let r = store.get_report(&d.account_id, &d.id).await.unwrap().unwrap();
        if r.vpcs.iter().any(|v| v.vpc_id == empty.id) {
            break r;
        }
        assert!(Instant::now() < deadline, "the adopted trail's file was not acted on");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let trigger = r.trigger.unwrap();
    assert_eq!(trigger.files, vec![format!("s3://{bucket}/{key}")]);
    assert!(trigger.changes.iter().any(|c| c.event == "RunInstances"));
    assert!(store.dead_letters(&d.account_id, &d.id, 10).await.unwrap().is_empty());
    // Still one trail, still the customer's, never changed.
    assert_eq!(ct.describe_trails().send().await.unwrap().trail_list().len(), 1);
    assert!(store.owned(&d.id).await.unwrap().get(keys::TRAIL).unwrap().adopted);
    collector.abort();
}
