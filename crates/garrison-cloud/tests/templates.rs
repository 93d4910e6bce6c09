//! Role templates published to S3 and run by CloudFormation, on the emulator: the stack
//! makes one role that trusts garrison's principal only with the ExternalId, carries the
//! role type's whole policy, and outputs RoleARN and IAMRole.

use std::collections::BTreeSet;

use aws_sdk_cloudformation::types::{Capability, Parameter, StackStatus};
use garrison_catalog::{Catalog, cft};
use garrison_cloud::emulator::Moto;
use garrison_cloud::{Aws, templates};
use serde_json::Value;

const PRINCIPAL: &str = "210987654321";

fn policy_json(doc: &str) -> Value {
    garrison_cloud::role_check::decode(doc)
}

fn actions(doc: &Value) -> BTreeSet<String> {
    doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| match &s["Action"] {
            Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect::<Vec<_>>(),
            Value::String(a) => vec![a.clone()],
            _ => vec![],
        })
        .collect()
}

#[tokio::test]
async fn published_template_builds_the_role_in_cloudformation() {
    let moto = Moto::start().expect("the AWS emulator is required for this test");
    let aws = Aws::from_config(moto.sdk_config("us-east-1").await);
    let bucket = "garrison-templates";
    aws.s3().create_bucket().bucket(bucket).send().await.unwrap();

    let catalog = Catalog::builtin();
    let roles: Vec<_> =
        catalog.latest().into_iter().chain([catalog.get("aws", "ci_full", "2020-01-10").unwrap()]).collect();
    let objects: Vec<(String, Vec<u8>)> = roles
        .iter()
        .map(|r| {
            (format!("{}/{}", r.role_type, r.version), serde_json::to_vec_pretty(&cft::render(r, PRINCIPAL)).unwrap())
        })
        .collect();
    let written = templates::publish(&aws, bucket, objects).await.unwrap();
    assert_eq!(written.len(), 7);
    let listed = aws.s3().list_objects_v2().bucket(bucket).send().await.unwrap();
    let keys: BTreeSet<String> = listed.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect();
    assert!(keys.contains("ci_full/2026-12-07") && keys.contains("ci_x_account_ct/2021-03-30"), "{keys:?}");

    let role = catalog.get("aws", "ci_full", "latest").unwrap();
    let cf = aws.cloudformation();
    cf.create_stack()
        .stack_name("garrison-ci-full")
        .template_url(templates::template_url(bucket, "ci_full/2026-12-07"))
        .parameters(Parameter::builder().parameter_key("ExternalId").parameter_value("ext-0123456789abcdef").build())
        .capabilities(Capability::CapabilityIam)
        .send()
        .await
        .unwrap();
    let mut outputs = std::collections::HashMap::new();
    for _ in 0..100 {
        let d = cf.describe_stacks().stack_name("garrison-ci-full").send().await.unwrap();
        let st = &d.stacks()[0];
        match st.stack_status() {
            Some(StackStatus::CreateComplete) => {
                for o in st.outputs() {
                    outputs.insert(o.output_key().unwrap().to_string(), o.output_value().unwrap().to_string());
                }
                break;
            }
            Some(StackStatus::CreateInProgress) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            other => panic!("stack ended {other:?}: {:?}", st.stack_status_reason()),
        }
    }
    let arn = outputs.get("RoleARN").expect("RoleARN output");
    let name = outputs.get("IAMRole").expect("IAMRole output");
    assert!(arn.starts_with("arn:aws:iam::") && arn.ends_with(&format!("/{name}")), "{arn} {name}");

    let iam = aws.iam();
    let r = iam.get_role().role_name(name).send().await.unwrap();
    let trust = policy_json(r.role().unwrap().assume_role_policy_document().unwrap());
    let st = &trust["Statement"][0];
    assert_eq!(st["Principal"]["AWS"], format!("arn:aws:iam::{PRINCIPAL}:root"));
    assert_eq!(st["Action"], "sts:AssumeRole");
    assert_eq!(st["Condition"]["StringEquals"]["sts:ExternalId"], "ext-0123456789abcdef");

    let attached = iam.list_attached_role_policies().role_name(name).send().await.unwrap();
    assert_eq!(attached.attached_policies().len(), 2, "ci_full is split in two managed policies");
    let mut granted = BTreeSet::new();
    for p in attached.attached_policies() {
        let parn = p.policy_arn().unwrap();
        let pol = iam.get_policy().policy_arn(parn).send().await.unwrap();
        let v = pol.policy().unwrap().default_version_id().unwrap().to_string();
        let doc = iam.get_policy_version().policy_arn(parn).version_id(v).send().await.unwrap();
        let doc = policy_json(doc.policy_version().unwrap().document().unwrap());
        assert!(cft::policy_size(&doc) <= cft::MANAGED_POLICY_LIMIT);
        granted.extend(actions(&doc));
    }
    assert_eq!(granted, actions(&role.policy_document));
}
