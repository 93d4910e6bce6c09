//! Customer role names kept out of logs and unsealed columns. Role ARNs are sealed at rest,
//! but AWS error messages name them ("User: arn:aws:sts::…:assumed-role/NAME/… is not
//! authorized", "The role with name NAME cannot be found"), and those messages end up in
//! statuses, audit entries and logs: they pass through `text` first. The AWS account id
//! stays (the deployment names it anyway); the role's name and path do not.

/// The redacted form of a role name.
pub const REDACTED: &str = "<redacted>";

/// `text` with every IAM role or STS assumed-role ARN's name, and every "role with name X",
/// replaced by `<redacted>`.
pub fn text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("arn:") {
        // Only at the start of a token: "foo-arn:" is not an ARN.
        let at_token_start = rest[..i].chars().next_back().is_none_or(|c| !c.is_alphanumeric() && c != '-');
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let end = tail.find(|c: char| c.is_whitespace() || "\"',;()[]{}<>`".contains(c)).unwrap_or(tail.len());
        let token = &tail[..end];
        if at_token_start {
            out.push_str(&role_arn(token));
        } else {
            out.push_str(token);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    role_not_found(&role_with_name(&out))
}

/// A known role name removed from `text` wherever it appears (for messages about a role
/// whose ARN the caller holds), then the general redaction.
pub fn text_naming(text_in: &str, role_arn: &str) -> String {
    let name = role_arn.rsplit('/').next().unwrap_or_default();
    let once = if name.len() >= 2 { text_in.replace(name, REDACTED) } else { text_in.to_string() };
    text(&once)
}

/// "Role NAME not found" (IAM's and the emulator's wording): the name goes.
fn role_not_found(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    let mut search = 0;
    while let Some(i) = lower[search..].find("role ") {
        let name_start = search + i + "role ".len();
        let name_len = text[name_start..].find(char::is_whitespace).unwrap_or(text.len() - name_start);
        let after = &lower[name_start + name_len..];
        let is_name = name_len > 0
            && !text[name_start..name_start + name_len].eq_ignore_ascii_case("with")
            && [" not found", " cannot be found", " does not exist"].iter().any(|s| after.starts_with(s));
        if is_name {
            out.push_str(&text[from..name_start]);
            out.push_str(REDACTED);
            from = name_start + name_len;
        }
        search = name_start;
    }
    out.push_str(&text[from..]);
    out
}

/// An ARN with the role name redacted when it is an IAM role or an STS assumed role; any
/// other ARN unchanged.
pub fn role_arn(arn: &str) -> String {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [_, partition, service, region, account, resource] = parts.as_slice() else {
        return arn.to_string();
    };
    let kind = match (*service, resource.split_once('/')) {
        ("iam", Some(("role", _))) => "role",
        ("sts", Some(("assumed-role", _))) => "assumed-role",
        _ => return arn.to_string(),
    };
    format!("arn:{partition}:{service}:{region}:{account}:{kind}/{REDACTED}")
}

fn role_with_name(text: &str) -> String {
    const MARK: &str = "role with name ";
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    while let Some(i) = lower[from..].find(MARK) {
        let name_start = from + i + MARK.len();
        out.push_str(&text[from..name_start]);
        let name_len = text[name_start..]
            .find(|c: char| c.is_whitespace() || "\"',;()".contains(c))
            .unwrap_or(text.len() - name_start);
        // A trailing full stop ends the sentence, not the name.
        let name = &text[name_start..name_start + name_len];
        let kept_dot = name.ends_with('.');
        out.push_str(REDACTED);
        if kept_dot {
            out.push('.');
        }
        from = name_start + name_len;
    }
    out.push_str(&text[from..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn aws_messages_lose_role_names() {
        let m = "User: arn:aws:sts::210987654321:assumed-role/garrison-svc/garrison is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/SecretTeamRole";
        let r = text(m);
        assert!(!r.contains("SecretTeamRole") && !r.contains("garrison-svc"), "{r}");
        assert!(r.contains("arn:aws:iam::123456789012:role/<redacted>"), "{r}");
        assert!(r.contains("arn:aws:sts::210987654321:assumed-role/<redacted> is not"), "{r}");
        let m = "The role with name CustomerRole-9 cannot be found.";
        assert_eq!(text(m), "The role with name <redacted> cannot be found.");
        assert_eq!(text("NoSuchEntity: Role not-created-yet not found"), "NoSuchEntity: Role <redacted> not found");
        assert_eq!(
            text_naming("x: Secret-Role gone", "arn:aws:iam::123456789012:role/team/Secret-Role"),
            "x: <redacted> gone"
        );
        let m = "cannot assume arn:aws-us-gov:iam::123456789012:role/path/to/Name: AccessDenied";
        assert_eq!(text(m), "cannot assume arn:aws-us-gov:iam::123456789012:role/<redacted> AccessDenied");
        // Other ARNs stay as they are.
        let m = "bucket arn:aws:s3:::garrison-audit-1 and topic arn:aws:sns:us-east-1:123456789012:t";
        assert_eq!(text(m), m);
    }

    proptest! {
        // Whatever surrounds it, a role name never survives.
        #[test]
        fn no_role_name_survives(before in "[ -~]{0,30}", name in "[A-Za-z0-9+=,.@_-]{1,40}", after in "[ -~]{0,30}") {
            prop_assume!(!before.contains(&name) && !after.contains(&name));
            let m = format!("{before} arn:aws:iam::123456789012:role/{name} {after}");
            let r = text(&m);
            prop_assert!(!r.contains(&format!("role/{name}")), "{}", r);
        }
    }
}
