//! CloudTrail-format records and log files as AWS writes them, for the tests (the emulator
//! never writes CloudTrail files) and for the ingest benchmark's corpus.

use std::io::Write;

use serde_json::{Value, json};

/// A record of a successful call by `principal` (an IAM or STS ARN).
pub fn record(
    source: &str,
    name: &str,
    region: &str,
    account: &str,
    principal: &str,
    request: Value,
    response: Value,
) -> Value {
    let n = next_id();
    let uuid =
        format!("{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}", n as u32, n >> 48, n & 0xfff, (n >> 12) & 0xfff, n >> 16);
    let read_only = ["Describe", "Get", "List", "Lookup"].iter().any(|p| name.starts_with(p));
    json!({
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLEID:session",
            "arn": principal,
            "accountId": account,
            "accessKeyId": "ASIAEXAMPLEKEY",
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEID",
                    "arn": format!("arn:aws:iam::{account}:role/Admin"), "accountId": account, "userName": "Admin"},
                "attributes": {"creationDate": "2026-11-30T12:00:00Z", "mfaAuthenticated": "false"}
            }
        },
        "eventTime": format!("2026-11-30T12:{:02}:{:02}Z", (n >> 8) % 60, n % 60),
        "eventSource": format!("{source}.amazonaws.com"),
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": format!("{}.{}.{}.{}", 3 + (n >> 24) % 200, (n >> 16) % 256, (n >> 8) % 256, n % 256),
        "userAgent": "aws-cli/2.15.0 md/Botocore#1.34.0 ua/2.0 os/linux#6.1.0 md/arch#x86_64 lang/python#3.11.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe",
        "requestParameters": request,
        "responseElements": response,
        "requestID": uuid,
        "eventID": format!("{:016x}-{:016x}", fastrand(n), fastrand(n ^ 1)),
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": account,
        "eventCategory": "Management",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": format!("{source}.{region}.amazonaws.com")}
    })
}

/// The event EventBridge delivers to an SQS target for a CloudTrail `record` ("AWS API Call
/// via CloudTrail"): the account and region are the call's, also after the event crossed
/// to another account's bus (which the emulator does not keep: it puts the receiving
/// account's id there).
pub fn eventbridge_event(record: &Value) -> Value {
    let n = next_id();
    let service = record["eventSource"].as_str().unwrap_or_default().trim_end_matches(".amazonaws.com");
    json!({
        "version": "0",
        "id": format!("{:08x}-{:04x}-4{:03x}-b{:03x}-{:012x}", n as u32, n >> 48, n & 0xfff, (n >> 12) & 0xfff, n >> 16),
        "detail-type": "AWS API Call via CloudTrail",
        "source": format!("aws.{service}"),
        "account": record["recipientAccountId"],
        "time": record["eventTime"],
        "region": record["awsRegion"],
        "resources": [],
        "detail": record,
    })
}

/// `{"Records":[…]}` of `records`, gzipped as CloudTrail delivers it.
pub fn gzip(records: &[Value]) -> Vec<u8> {
    gzip_bytes(&serde_json::to_vec(&json!({ "Records": records })).expect("json"))
}

pub fn gzip_bytes(raw: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(raw).expect("gzip");
    gz.finish().expect("gzip")
}

/// Where CloudTrail puts a log file of `account` and `region`.
pub fn log_key(account: &str, region: &str, unique: &str) -> String {
    format!(
        "AWSLogs/{account}/CloudTrail/{region}/2026/11/30/{account}_CloudTrail_{region}_20261130T1200Z_{unique}.json.gz"
    )
}

/// Distinct ids for distinct records, reproducible from run to run.
fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    fastrand(N.fetch_add(1, Ordering::Relaxed))
}

fn fastrand(mut x: u64) -> u64 {
    x ^= 0x9e37_79b9_7f4a_7c15;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// A log file (not gzipped) of `n` records in the mix of a busy account: mostly reads by
/// people and services, some routine writes, and a few that change assets (launches with
/// their full response, tag and group changes).
pub fn busy_file(seed: u64, n: usize, account: &str, region: &str) -> Vec<u8> {
    let mut s = seed.wrapping_add(1);
    let mut records = Vec::with_capacity(n);
    let who = [
        format!("arn:aws:sts::{account}:assumed-role/Admin/alice"),
        format!("arn:aws:sts::{account}:assumed-role/ci/deploy"),
    ];
    for i in 0..n {
        s = fastrand(s);
        let p = &who[(s >> 8) as usize % who.len()];
        let id = format!("{:017x}", s & 0x000f_ffff_ffff_ffff);
        let r = match s % 100 {
            0..=29 => record(
                "ec2",
                "DescribeInstances",
                region,
                account,
                p,
                json!({"instancesSet": {}, "filterSet": {"items": [{"name": "tag:env", "valueSet": {"items": [{"value": "prod"}]}}]}}),
                Value::Null,
            ),
            30..=44 => record(
                "sts",
                "AssumeRole",
                region,
                account,
                p,
                json!({"roleArn": format!("arn:aws:iam::{account}:role/app"), "roleSessionName": format!("s{i}"), "durationSeconds": 3600}),
                json!({"credentials": {"accessKeyId": "ASIAEXAMPLE", "sessionToken": "IQoJb3JpZ2luX2VjEXAMPLETOKEN".repeat(8), "expiration": "Nov 30, 2026, 1:00:00 PM"}, "assumedRoleUser": {"assumedRoleId": "AROAEXAMPLE:s", "arn": p}}),
            ),
            45..=59 => record(
                "s3",
                "GetBucketAcl",
                region,
                account,
                p,
                json!({"bucketName": "app-data", "Host": "app-data.s3.amazonaws.com", "acl": ""}),
                Value::Null,
            ),
            60..=69 => record(
                "kms",
                "Decrypt",
                region,
                account,
                p,
                json!({"encryptionAlgorithm": "SYMMETRIC_DEFAULT", "encryptionContext": {"aws:lambda:FunctionArn": format!("arn:aws:lambda:{region}:{account}:function:f")}}),
                Value::Null,
            ),
            70..=79 => record(
                "logs",
                "CreateLogStream",
                region,
                account,
                p,
                json!({"logGroupName": "/aws/lambda/f", "logStreamName": format!("2026/11/30/[$LATEST]{id}")}),
                Value::Null,
            ),
            80..=87 => record(
                "ssm",
                "GetParameters",
                region,
                account,
                p,
                json!({"names": ["/app/db/host", "/app/db/port"], "withDecryption": true}),
                Value::Null,
            ),
            88..=91 => record(
                "ec2",
                "CreateTags",
                region,
                account,
                p,
                json!({"resourcesSet": {"items": [{"resourceId": format!("i-{id}")}]}, "tagSet": {"items": [{"key": "owner", "value": "team-a"}]}}),
                json!({"_return": true}),
            ),
            92..=94 => record(
                "ec2",
                "AuthorizeSecurityGroupIngress",
                region,
                account,
                p,
                json!({"groupId": format!("sg-{id}"), "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "ipRanges": {"items": [{"cidrIp": "10.0.0.0/8"}]}}]}}),
                json!({"_return": true}),
            ),
            95..=97 => record(
                "ec2",
                "RunInstances",
                region,
                account,
                p,
                json!({"instancesSet": {"items": [{"imageId": "ami-0abcdef1234567890", "minCount": 1, "maxCount": 1}]}, "instanceType": "t3.micro", "subnetId": format!("subnet-{id}")}),
                run_response(&id, region),
            ),
            _ => record(
                "ec2",
                "TerminateInstances",
                region,
                account,
                p,
                json!({"instancesSet": {"items": [{"instanceId": format!("i-{id}")}]}}),
                json!({"instancesSet": {"items": [{"instanceId": format!("i-{id}"), "currentState": {"code": 32, "name": "shutting-down"}, "previousState": {"code": 16, "name": "running"}}]}}),
            ),
        };
        records.push(r);
    }
    serde_json::to_vec(&json!({ "Records": records })).expect("json")
}

fn run_response(id: &str, region: &str) -> Value {
    json!({"requestId": "r", "reservationId": format!("r-{id}"), "ownerId": "111122223333", "groupSet": {},
        "instancesSet": {"items": [{"instanceId": format!("i-{id}"), "imageId": "ami-0abcdef1234567890",
            "instanceState": {"code": 0, "name": "pending"}, "privateDnsName": format!("ip-10-0-1-5.{region}.compute.internal"),
            "amiLaunchIndex": 0, "productCodes": {}, "instanceType": "t3.micro", "launchTime": 1_790_000_000_000u64,
            "placement": {"availabilityZone": format!("{region}a"), "tenancy": "default"}, "monitoring": {"state": "disabled"},
            "subnetId": format!("subnet-{id}"), "vpcId": format!("vpc-{id}"), "privateIpAddress": "10.0.1.5",
            "groupSet": {"items": [{"groupId": format!("sg-{id}"), "groupName": "default"}]},
            "architecture": "x86_64", "rootDeviceType": "ebs", "rootDeviceName": "/dev/xvda", "blockDeviceMapping": {},
            "virtualizationType": "hvm", "hypervisor": "xen", "networkInterfaceSet": {"items": [{"networkInterfaceId": format!("eni-{id}"),
                "subnetId": format!("subnet-{id}"), "vpcId": format!("vpc-{id}"), "status": "in-use", "privateIpAddress": "10.0.1.5"}]},
            "ebsOptimized": false, "enaSupport": true, "metadataOptions": {"state": "pending", "httpTokens": "required", "httpPutResponseHopLimit": 2}}]}})
}

/// A GuardDuty finding's `detail` as GuardDuty puts it on the default bus ("GuardDuty
/// Finding", schema 2.0) about `instance` in `vpc`. `count` 0 leaves GuardDuty's own count out.
#[allow(clippy::too_many_arguments)]
pub fn guardduty_finding(
    account: &str,
    region: &str,
    id: &str,
    instance: &str,
    vpc: &str,
    severity: f64,
    archived: bool,
    count: i64,
) -> Value {
    let mut service = json!({"serviceName": "guardduty", "detectorId": "12abc34d567e8fa901bc2d34e56789f0",
        "action": {"actionType": "NETWORK_CONNECTION"}, "resourceRole": "TARGET", "archived": archived,
        "eventFirstSeen": "2026-12-06T09:00:00.000Z", "eventLastSeen": "2026-12-06T09:59:00.000Z"});
    if count > 0 {
        service["count"] = json!(count);
    }
    json!({
        "schemaVersion": "2.0", "accountId": account, "region": region, "partition": "aws", "id": id,
        "arn": format!("arn:aws:guardduty:{region}:{account}:detector/12abc34d567e8fa901bc2d34e56789f0/finding/{id}"),
        "type": "UnauthorizedAccess:EC2/SSHBruteForce",
        "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": instance, "instanceType": "t3.micro",
            "networkInterfaces": [{"networkInterfaceId": "eni-0a1b2c3d4e5f60718", "vpcId": vpc,
                "securityGroups": [{"groupId": "sg-0a1b2c3d4e5f60718", "groupName": "web"}]}]}},
        "service": service, "severity": severity,
        "createdAt": "2026-12-06T09:00:00.000Z", "updatedAt": "2026-12-06T09:59:00.000Z",
        "title": format!("SSH brute force attacks against {instance}."),
        "description": format!("{instance} is being probed by SSH brute force attacks.")
    })
}

/// An Inspector finding's `detail` as Inspector puts it on the default bus ("Inspector2
/// Finding") about `instance` in `vpc`.
pub fn inspector_finding(account: &str, region: &str, id: &str, instance: &str, vpc: &str, status: &str) -> Value {
    json!({
        "awsAccountId": account, "description": "A heap overflow in openssl.",
        "findingArn": format!("arn:aws:inspector2:{region}:{account}:finding/{id}"),
        "firstObservedAt": "2026-12-06T08:00:00.000Z", "lastObservedAt": "2026-12-06T09:00:00.000Z",
        "updatedAt": "2026-12-06T09:00:00.000Z", "inspectorScore": 9.8, "severity": "CRITICAL", "status": status,
        "title": "CVE-2026-0001 - openssl", "type": "PACKAGE_VULNERABILITY",
        "resources": [{"id": instance, "type": "AWS_EC2_INSTANCE", "partition": "aws", "region": region,
            "details": {"awsEc2Instance": {"vpcId": vpc, "subnetId": "subnet-0a1b2c3d4e5f60718", "type": "t3.micro"}}}],
        "packageVulnerabilityDetails": {"vulnerabilityId": "CVE-2026-0001", "source": "NVD",
            "vulnerablePackages": [{"name": "openssl", "version": "3.0.2"}]}
    })
}

/// The same Inspector finding as `ListFindings` answers it (times in epoch seconds).
pub fn inspector_listed(account: &str, region: &str, id: &str, instance: &str, vpc: &str, status: &str) -> Value {
    let mut f = inspector_finding(account, region, id, instance, vpc, status);
    for k in ["firstObservedAt", "lastObservedAt", "updatedAt"] {
        let t = garrison_model::finding::parse_time(f[k].as_str().unwrap_or_default()).unwrap_or_default();
        f[k] = json!(t as f64 / 1000.0);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use garrison_trail::classify;
    use garrison_trail::log::read_gz;

    #[test]
    fn a_busy_file_reads_back_with_its_mix() {
        let raw = busy_file(7, 2000, "111122223333", "us-east-1");
        let gz = gzip_bytes(&raw);
        let (mut n, mut changes) = (0, 0);
        let stats = read_gz(&gz[..], |r| {
            let r = r.unwrap();
            n += 1;
            changes += classify(&r, None).len();
        })
        .unwrap();
        assert_eq!((n, stats.bad, stats.bytes), (2000, 0, raw.len() as u64));
        // About one record in ten changes assets.
        assert!((100..300).contains(&changes), "{changes}");
    }
}
