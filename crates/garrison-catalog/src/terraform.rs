//! Terraform (HCL) rendering of a role definition, translated from the CloudFormation
//! template so the two cannot drift: the same trust policy (garrison's principal, the
//! tenant's ExternalId as a variable), the same managed-policy split, the same outputs.

use hcl::expr::{Expression, FuncCall, Object, ObjectKey, Traversal, Variable};
use hcl::{Attribute, Block, Body};
use serde_json::Value;

use crate::{RoleDef, cft};

/// `var.external_id`, `aws_iam_role.garrison.arn` and the like.
fn traversal(root: &str, attrs: &[&str]) -> Expression {
    let mut t = Traversal::builder(Variable::unchecked(root));
    for a in attrs {
        t = t.attr(*a);
    }
    Expression::from(t.build())
}

/// A JSON value as an HCL expression, CloudFormation's `{"Ref": "ExternalId"}` as the variable.
fn expr(v: &Value) -> Expression {
    match v {
        Value::Object(m) if m.len() == 1 && m.get("Ref") == Some(&Value::from("ExternalId")) => {
            traversal("var", &["external_id"])
        }
        Value::Object(m) => {
            let mut o = Object::new();
            for (k, v) in m {
                // Quoted keys: IAM's keys ("sts:ExternalId") are not all identifiers.
                o.insert(ObjectKey::Expression(Expression::String(k.clone())), expr(v));
            }
            Expression::Object(o)
        }
        Value::Array(a) => Expression::Array(a.iter().map(expr).collect()),
        Value::String(s) => Expression::String(s.clone()),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Expression::Number(i.into()),
            None => Expression::Number(hcl::Number::from_f64(n.as_f64().unwrap_or(0.0)).unwrap_or(0.into())),
        },
        Value::Bool(b) => Expression::Bool(*b),
        Value::Null => Expression::Null,
    }
}

/// `jsonencode(local.<name>)`: the document itself lives in `locals`, where it is laid out
/// over lines (function arguments are printed on one).
fn jsonencode_local(name: &str) -> Expression {
    Expression::from(FuncCall::builder("jsonencode").arg(traversal("local", &[name])).build())
}

fn string(s: &str) -> Expression {
    Expression::String(s.to_string())
}

/// The Terraform configuration equivalent to `cft::render(role, principal)`.
pub fn render_body(role: &RoleDef, principal: &str) -> Body {
    let t = cft::render(role, principal);
    let param = &t["Parameters"]["ExternalId"];
    let (min, max) = (param["MinLength"].as_u64().unwrap_or(2), param["MaxLength"].as_u64().unwrap_or(1224));
    let pattern = param["AllowedPattern"].as_str().unwrap_or(".*");
    let validation = Block::builder("validation")
        .add_attribute(Attribute::new(
            "condition",
            format!(
                "length(var.external_id) >= {min} && length(var.external_id) <= {max} && can(regex({}, var.external_id))",
                hcl::format::to_string(&string(&format!("^{pattern}$"))).unwrap_or_default()
            )
            .parse::<Expression>()
            .expect("a valid condition"),
        ))
        .add_attribute(("error_message", format!("The external id is {min} to {max} characters of [\\w+=,.@:/-].")))
        .build();
    let mut body = Body::builder()
        .add_block(
            Block::builder("terraform")
                .add_block(
                    Block::builder("required_providers")
                        .add_attribute((
                            "aws",
                            expr(&serde_json::json!({"source": "hashicorp/aws", "version": ">= 4.0"})),
                        ))
                        .build(),
                )
                .build(),
        )
        .add_block(
            Block::builder("variable")
                .add_label("external_id")
                .add_attribute(("type", traversal("string", &[])))
                .add_attribute(("description", param["Description"].as_str().unwrap_or_default()))
                .add_block(validation)
                .build(),
        );
    let resources = t["Resources"].as_object().cloned().unwrap_or_default();
    let role_props = &resources["GarrisonRole"]["Properties"];
    let policies: Vec<(String, &Value)> = resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::IAM::ManagedPolicy")
        .map(|(name, r)| (policy_label(name), &r["Properties"]))
        .collect();
    let mut locals =
        Block::builder("locals").add_attribute(("trust_policy", expr(&role_props["AssumeRolePolicyDocument"])));
    for (label, p) in &policies {
        locals = locals.add_attribute((label.as_str(), expr(&p["PolicyDocument"])));
    }
    body = body.add_block(locals.build());
    let tags: serde_json::Map<String, Value> = role_props["Tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| (t["Key"].as_str().unwrap_or_default().to_string(), t["Value"].clone()))
        .collect();
    body = body.add_block(
        Block::builder("resource")
            .add_label("aws_iam_role")
            .add_label("garrison")
            .add_attribute(("name_prefix", "garrison-"))
            .add_attribute(("description", t["Description"].as_str().unwrap_or_default()))
            .add_attribute(("assume_role_policy", jsonencode_local("trust_policy")))
            .add_attribute(("max_session_duration", expr(&role_props["MaxSessionDuration"])))
            .add_attribute(("tags", expr(&Value::Object(tags))))
            .build(),
    );
    for (label, p) in &policies {
        body = body
            .add_block(
                Block::builder("resource")
                    .add_label("aws_iam_policy")
                    .add_label(label.as_str())
                    .add_attribute(("name_prefix", format!("{label}-").replace('_', "-")))
                    .add_attribute(("description", p["Description"].as_str().unwrap_or_default()))
                    .add_attribute(("policy", jsonencode_local(label)))
                    .build(),
            )
            .add_block(
                Block::builder("resource")
                    .add_label("aws_iam_role_policy_attachment")
                    .add_label(label.as_str())
                    .add_attribute(("role", traversal("aws_iam_role", &["garrison", "name"])))
                    .add_attribute(("policy_arn", traversal("aws_iam_policy", &[label.as_str(), "arn"])))
                    .build(),
            );
    }
    for (name, value) in [
        ("role_arn", traversal("aws_iam_role", &["garrison", "arn"])),
        ("iam_role", traversal("aws_iam_role", &["garrison", "name"])),
        ("external_id", traversal("var", &["external_id"])),
    ] {
        let description = match name {
            "role_arn" => &t["Outputs"]["RoleARN"]["Description"],
            "iam_role" => &t["Outputs"]["IAMRole"]["Description"],
            _ => &t["Outputs"]["ExternalID"]["Description"],
        };
        body = body.add_block(
            Block::builder("output")
                .add_label(name)
                .add_attribute(("description", description.as_str().unwrap_or_default()))
                .add_attribute(("value", value))
                .build(),
        );
    }
    body.build()
}

/// `GarrisonPolicy2` → `garrison_policy_2`.
fn policy_label(cfn_name: &str) -> String {
    format!("garrison_policy_{}", cfn_name.trim_start_matches("GarrisonPolicy"))
}

/// The configuration as HCL text, with a header saying how to use it.
pub fn render(role: &RoleDef, principal: &str) -> String {
    use hcl::format::{Format, Formatter};
    let mut f = Formatter::builder().prefer_ident_keys(true).build_vec();
    let body = render_body(role, principal).format_string(&mut f).unwrap_or_default();
    format!(
        "# garrison {} role, version {} (equivalent to the CloudFormation template).\n\
         # terraform apply -var external_id=<external_id from themis get_role>, then give the\n\
         # role_arn output to credentials create_credential.\n\n{body}",
        role.role_type, role.version
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Catalog;
    use hcl::eval::{Context, Evaluate, FuncArgs, FuncDef, ParamType};

    fn jsonencode_fn(args: FuncArgs) -> Result<hcl::Value, String> {
        serde_json::to_string(&args[0]).map(hcl::Value::from).map_err(|e| e.to_string())
    }

    /// Parses the HCL text and evaluates the policies with a given external id, as
    /// Terraform would before sending them to IAM.
    fn evaluated(text: &str, external_id: &str) -> serde_json::Value {
        let body: Body = hcl::from_str(text).expect("valid HCL");
        let mut ctx = Context::new();
        ctx.declare_var(
            "var",
            hcl::value::Map::from_iter([("external_id".to_string(), hcl::Value::from(external_id))]),
        );
        ctx.declare_func("jsonencode", FuncDef::builder().param(ParamType::Any).build(jsonencode_fn));
        let mut locals = hcl::value::Map::new();
        for b in body.blocks().filter(|b| b.identifier() == "locals") {
            for a in b.body().attributes() {
                locals.insert(a.key().to_string(), a.expr().evaluate(&ctx).expect("a local evaluates"));
            }
        }
        ctx.declare_var("local", locals);
        let mut out = serde_json::Map::new();
        for b in body.blocks().filter(|b| b.identifier() == "resource") {
            let labels: Vec<&str> = b.labels().iter().map(|l| l.as_str()).collect();
            for a in b.body().attributes() {
                if matches!(a.key(), "assume_role_policy" | "policy") {
                    let v = a.expr().evaluate(&ctx).expect("evaluates");
                    let doc: serde_json::Value = serde_json::from_str(v.as_str().unwrap()).unwrap();
                    out.insert(format!("{}.{}", labels[0], labels[1]), doc);
                }
            }
        }
        serde_json::Value::Object(out)
    }

    #[test]
    fn every_role_is_the_cloudformation_template_in_hcl() {
        let c = Catalog::builtin();
        for r in c.latest() {
            let text = render(r, "123456789012");
            let docs = evaluated(&text, "ext-123");
            let t = cft::render(r, "123456789012");
            let mut trust = t["Resources"]["GarrisonRole"]["Properties"]["AssumeRolePolicyDocument"].clone();
            trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"] = "ext-123".into();
            assert_eq!(docs["aws_iam_role.garrison"], trust, "{}", r.role_type);
            let parts = cft::split_policy(&r.policy_document, cft::MANAGED_POLICY_LIMIT);
            assert_eq!(docs.as_object().unwrap().len(), parts.len() + 1, "{}", r.role_type);
            for (i, p) in parts.iter().enumerate() {
                assert_eq!(&docs[format!("aws_iam_policy.garrison_policy_{}", i + 1)], p, "{}", r.role_type);
            }
            // Every policy is attached to the role, and the ARN is an output.
            for i in 1..=parts.len() {
                assert!(text.contains(&format!(
                    "resource \"aws_iam_role_policy_attachment\" \"garrison_policy_{i}\" {{\n  role = aws_iam_role.garrison.name\n  policy_arn = aws_iam_policy.garrison_policy_{i}.arn"
                )), "{text}");
            }
            assert!(text.contains("output \"role_arn\" {"), "{text}");
            assert!(text.contains("value = aws_iam_role.garrison.arn"), "{text}");
        }
    }

    #[test]
    fn the_external_id_is_validated_as_cloudformation_does() {
        let c = Catalog::builtin();
        let text = render(c.get("aws", "ci_full", "latest").unwrap(), "123456789012");
        assert!(text.contains("variable \"external_id\" {"), "{text}");
        assert!(text.contains("length(var.external_id) >= 2 && length(var.external_id) <= 1224"), "{text}");
        assert!(text.contains(r#"can(regex("^[\\w+=,.@:/-]*$", var.external_id))"#), "{text}");
    }
}
