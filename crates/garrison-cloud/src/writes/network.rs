//! EC2: the security subnet with its gateway, route table and ACL, the appliances'
//! security groups, and the appliances themselves.

use std::time::Duration;

use aws_sdk_ec2::types::{
    Filter, InstanceStateName, InstanceType, IpPermission, IpRange, ResourceType, RuleAction, Tag, TagSpecification,
};
use garrison_model::protection::Perm;

use super::{Created, Ctx, absent, gone_ok};
use crate::CloudError;

/// garrison's tags (and the operator's) on a resource of type `rt` as it is created.
pub(super) fn tags(c: &Ctx<'_>, rt: ResourceType) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(rt)
        .set_tags(Some(c.tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()))
        .build()
}

pub(super) fn missing(op: &'static str, what: &str) -> CloudError {
    CloudError::terminal("ec2", op, "EmptyResponse", &format!("no {what} in the response"))
}

fn created(id: Option<&str>, op: &'static str, what: &str) -> Result<Created, CloudError> {
    Ok(Created { id: id.ok_or_else(|| missing(op, what))?.to_string(), arn: None })
}

pub async fn gateway(c: &Ctx<'_>, vpc: &str) -> Result<Created, CloudError> {
    let ec2 = c.aws.ec2();
    let out = c
        .call_made(
            "ec2",
            "CreateInternetGateway",
            vpc,
            ec2.create_internet_gateway().tag_specifications(tags(c, ResourceType::InternetGateway)).send(),
            |o: &aws_sdk_ec2::operation::create_internet_gateway::CreateInternetGatewayOutput| {
                o.internet_gateway().and_then(|g| g.internet_gateway_id())
            },
        )
        .await?;
    let id = created(out.internet_gateway().and_then(|g| g.internet_gateway_id()), "CreateInternetGateway", "gateway")?;
    c.call(
        "ec2",
        "AttachInternetGateway",
        &id.id,
        ec2.attach_internet_gateway().internet_gateway_id(&id.id).vpc_id(vpc).send(),
    )
    .await?;
    Ok(id)
}

pub async fn subnet(c: &Ctx<'_>, vpc: &str, zone: &str, cidr: &str) -> Result<Created, CloudError> {
    let out = c
        .call_made(
            "ec2",
            "CreateSubnet",
            cidr,
            c.aws
                .ec2()
                .create_subnet()
                .vpc_id(vpc)
                .availability_zone(zone)
                .cidr_block(cidr)
                .tag_specifications(tags(c, ResourceType::Subnet))
                .send(),
            |o: &aws_sdk_ec2::operation::create_subnet::CreateSubnetOutput| o.subnet().and_then(|s| s.subnet_id()),
        )
        .await?;
    created(out.subnet().and_then(|s| s.subnet_id()), "CreateSubnet", "subnet")
}

pub async fn route_table(c: &Ctx<'_>, vpc: &str, subnet: &str, gateway: &str) -> Result<Created, CloudError> {
    let ec2 = c.aws.ec2();
    let out = c
        .call_made(
            "ec2",
            "CreateRouteTable",
            vpc,
            ec2.create_route_table().vpc_id(vpc).tag_specifications(tags(c, ResourceType::RouteTable)).send(),
            |o: &aws_sdk_ec2::operation::create_route_table::CreateRouteTableOutput| {
                o.route_table().and_then(|r| r.route_table_id())
            },
        )
        .await?;
    let rt = created(out.route_table().and_then(|r| r.route_table_id()), "CreateRouteTable", "route table")?;
    c.call(
        "ec2",
        "CreateRoute",
        &rt.id,
        ec2.create_route().route_table_id(&rt.id).destination_cidr_block("0.0.0.0/0").gateway_id(gateway).send(),
    )
    .await?;
    c.call(
        "ec2",
        "AssociateRouteTable",
        &rt.id,
        ec2.associate_route_table().route_table_id(&rt.id).subnet_id(subnet).send(),
    )
    .await?;
    Ok(rt)
}

pub async fn acl(
    c: &Ctx<'_>,
    vpc: &str,
    subnet: &str,
    vpc_cidr: &str,
    peers: &[String],
) -> Result<Created, CloudError> {
    let ec2 = c.aws.ec2();
    let out = c
        .call_made(
            "ec2",
            "CreateNetworkAcl",
            vpc,
            ec2.create_network_acl().vpc_id(vpc).tag_specifications(tags(c, ResourceType::NetworkAcl)).send(),
            |o: &aws_sdk_ec2::operation::create_network_acl::CreateNetworkAclOutput| {
                o.network_acl().and_then(|a| a.network_acl_id())
            },
        )
        .await?;
    let acl = created(out.network_acl().and_then(|a| a.network_acl_id()), "CreateNetworkAcl", "network ACL")?;
    for e in garrison_model::protection::acl_entries(vpc_cidr, peers) {
        let mut req = ec2
            .create_network_acl_entry()
            .network_acl_id(&acl.id)
            .rule_number(e.rule)
            .egress(e.egress)
            .protocol(e.protocol)
            .cidr_block(&e.cidr)
            .rule_action(RuleAction::Allow);
        if let Some((from, to)) = e.ports {
            req = req.port_range(aws_sdk_ec2::types::PortRange::builder().from(from).to(to).build());
        }
        c.call("ec2", "CreateNetworkAclEntry", &acl.id, req.send()).await?;
    }
    // A read on the way: paced like the rest, but not an entry of the audit log (writes only).
    c.aws.pace("ec2").await;
    let assoc = ec2
        .describe_network_acls()
        .filters(Filter::builder().name("association.subnet-id").values(subnet).build())
        .send()
        .await
        .map_err(|e| CloudError::from_sdk("ec2", "DescribeNetworkAcls", e))?;
    let association = assoc
        .network_acls()
        .iter()
        .flat_map(|a| a.associations())
        .find(|a| a.subnet_id() == Some(subnet))
        .and_then(|a| a.network_acl_association_id())
        .ok_or_else(|| missing("DescribeNetworkAcls", "ACL association of the subnet"))?
        .to_string();
    c.call(
        "ec2",
        "ReplaceNetworkAclAssociation",
        subnet,
        ec2.replace_network_acl_association().association_id(association).network_acl_id(&acl.id).send(),
    )
    .await?;
    Ok(acl)
}

fn permissions(perms: &[Perm]) -> Vec<IpPermission> {
    perms
        .iter()
        .map(|p| {
            let mut b =
                IpPermission::builder().ip_protocol(&p.protocol).ip_ranges(IpRange::builder().cidr_ip(&p.cidr).build());
            if p.protocol != "-1" {
                b = b.from_port(p.from_port).to_port(p.to_port);
            }
            b.build()
        })
        .collect()
}

pub async fn group(
    c: &Ctx<'_>,
    vpc: &str,
    name: &str,
    ingress: &[Perm],
    egress: &[Perm],
) -> Result<Created, CloudError> {
    let ec2 = c.aws.ec2();
    let out = c
        .call_made(
            "ec2",
            "CreateSecurityGroup",
            name,
            ec2.create_security_group()
                .group_name(name)
                .description("garrison appliance security group")
                .vpc_id(vpc)
                .tag_specifications(tags(c, ResourceType::SecurityGroup))
                .send(),
            |o: &aws_sdk_ec2::operation::create_security_group::CreateSecurityGroupOutput| o.group_id(),
        )
        .await?;
    let g = created(out.group_id(), "CreateSecurityGroup", "group id")?;
    // A new group allows all egress; the appliance's rules replace it.
    let default_egress = [Perm::new("-1", 0, 0, "0.0.0.0/0")];
    let remove: &[Perm] = if egress.contains(&default_egress[0]) { &[] } else { &default_egress };
    set_rules(c, &g.id, (ingress, egress), (&[], remove)).await?;
    Ok(g)
}

pub async fn set_rules(
    c: &Ctx<'_>,
    id: &str,
    (add_in, add_out): (&[Perm], &[Perm]),
    (rm_in, rm_out): (&[Perm], &[Perm]),
) -> Result<(), CloudError> {
    let ec2 = c.aws.ec2();
    if !rm_out.is_empty() {
        c.call(
            "ec2",
            "RevokeSecurityGroupEgress",
            id,
            ec2.revoke_security_group_egress().group_id(id).set_ip_permissions(Some(permissions(rm_out))).send(),
        )
        .await?;
    }
    if !rm_in.is_empty() {
        c.call(
            "ec2",
            "RevokeSecurityGroupIngress",
            id,
            ec2.revoke_security_group_ingress().group_id(id).set_ip_permissions(Some(permissions(rm_in))).send(),
        )
        .await?;
    }
    if !add_out.is_empty() {
        c.call(
            "ec2",
            "AuthorizeSecurityGroupEgress",
            id,
            ec2.authorize_security_group_egress().group_id(id).set_ip_permissions(Some(permissions(add_out))).send(),
        )
        .await?;
    }
    if !add_in.is_empty() {
        c.call(
            "ec2",
            "AuthorizeSecurityGroupIngress",
            id,
            ec2.authorize_security_group_ingress().group_id(id).set_ip_permissions(Some(permissions(add_in))).send(),
        )
        .await?;
    }
    Ok(())
}

/// Sets and takes off the operator's tags on an EC2 resource (any id CreateTags takes).
pub async fn tag(
    c: &Ctx<'_>,
    id: &str,
    set: &std::collections::BTreeMap<String, String>,
    unset: &[String],
) -> Result<(), CloudError> {
    let ec2 = c.aws.ec2();
    if !unset.is_empty() {
        let keys = unset.iter().map(|k| Tag::builder().key(k).build()).collect();
        c.call("ec2", "DeleteTags", id, ec2.delete_tags().resources(id).set_tags(Some(keys)).send()).await?;
    }
    if !set.is_empty() {
        let tags = set.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
        c.call("ec2", "CreateTags", id, ec2.create_tags().resources(id).set_tags(Some(tags)).send()).await?;
    }
    Ok(())
}

pub async fn launch(
    c: &Ctx<'_>,
    instance_type: &str,
    image: &str,
    subnet: &str,
    group: &str,
    running: bool,
    token: &str,
) -> Result<Created, CloudError> {
    use base64::Engine as _;
    // An appliance's first boot, when garrison watches its health (`Ctx::user_data`).
    let user_data = c.user_data.as_deref().map(|u| base64::engine::general_purpose::STANDARD.encode(u));
    let out = c
        .call_made(
            "ec2",
            "RunInstances",
            subnet,
            c.aws
                .ec2()
                .run_instances()
                .image_id(image)
                .instance_type(InstanceType::from(instance_type))
                .min_count(1)
                .max_count(1)
                .subnet_id(subnet)
                .security_group_ids(group)
                .client_token(token)
                .set_user_data(user_data)
                .tag_specifications(tags(c, ResourceType::Instance))
                .tag_specifications(tags(c, ResourceType::Volume))
                .send(),
            |o: &aws_sdk_ec2::operation::run_instances::RunInstancesOutput| {
                o.instances().first().and_then(|i| i.instance_id())
            },
        )
        .await?;
    let id = created(out.instances().first().and_then(|i| i.instance_id()), "RunInstances", "instance")?;
    if !running {
        stop(c, &id.id).await?;
    }
    Ok(id)
}

pub async fn start(c: &Ctx<'_>, id: &str) -> Result<(), CloudError> {
    c.call("ec2", "StartInstances", id, c.aws.ec2().start_instances().instance_ids(id).send()).await.map(|_| ())
}

pub async fn stop(c: &Ctx<'_>, id: &str) -> Result<(), CloudError> {
    c.call("ec2", "StopInstances", id, c.aws.ec2().stop_instances().instance_ids(id).send()).await.map(|_| ())
}

/// Terminates and waits until the instance is gone, so that its subnet and group can go.
pub async fn terminate(c: &Ctx<'_>, id: &str) -> Result<(), CloudError> {
    let ec2 = c.aws.ec2();
    gone_ok(
        c.call("ec2", "TerminateInstances", id, ec2.terminate_instances().instance_ids(id).send()).await.map(|_| ()),
    )?;
    for attempt in 0..60u64 {
        c.aws.pace("ec2").await;
        let out = ec2
            .describe_instances()
            .instance_ids(id)
            .send()
            .await
            .map_err(|e| CloudError::from_sdk("ec2", "DescribeInstances", e));
        let state = match out {
            Ok(o) => o
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .find_map(|i| i.state().and_then(|s| s.name()).cloned()),
            Err(e) if absent(&e.code) => return Ok(()),
            Err(e) => return Err(e),
        };
        if matches!(state, None | Some(InstanceStateName::Terminated)) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200 * (attempt + 1).min(25))).await;
    }
    Err(CloudError::terminal("ec2", "TerminateInstances", "Timeout", &format!("{id} did not terminate")))
}

pub async fn delete_group(c: &Ctx<'_>, id: &str) -> Result<(), CloudError> {
    gone_ok(
        c.call("ec2", "DeleteSecurityGroup", id, c.aws.ec2().delete_security_group().group_id(id).send())
            .await
            .map(|_| ()),
    )
}

pub async fn delete_subnet(c: &Ctx<'_>, id: &str) -> Result<(), CloudError> {
    gone_ok(c.call("ec2", "DeleteSubnet", id, c.aws.ec2().delete_subnet().subnet_id(id).send()).await.map(|_| ()))
}

pub async fn delete_route_table(c: &Ctx<'_>, id: &str) -> Result<(), CloudError> {
    let ec2 = c.aws.ec2();
    c.aws.pace("ec2").await;
    let found = ec2
        .describe_route_tables()
        .route_table_ids(id)
        .send()
        .await
        .map_err(|e| CloudError::from_sdk("ec2", "DescribeRouteTables", e));
    let found = match found {
        Ok(f) => f,
        Err(e) if absent(&e.code) => return Ok(()),
        Err(e) => return Err(e),
    };
    for a in found.route_tables().iter().flat_map(|t| t.associations()) {
        if let Some(assoc) = a.route_table_association_id()
            && !a.main().unwrap_or(false)
        {
            gone_ok(
                c.call(
                    "ec2",
                    "DisassociateRouteTable",
                    id,
                    ec2.disassociate_route_table().association_id(assoc).send(),
                )
                .await
                .map(|_| ()),
            )?;
        }
    }
    gone_ok(c.call("ec2", "DeleteRouteTable", id, ec2.delete_route_table().route_table_id(id).send()).await.map(|_| ()))
}

/// Hands the ACL's subnets back to the VPC's default ACL, then removes it.
pub async fn delete_acl(c: &Ctx<'_>, id: &str) -> Result<(), CloudError> {
    let ec2 = c.aws.ec2();
    c.aws.pace("ec2").await;
    let found = match ec2.describe_network_acls().network_acl_ids(id).send().await {
        Ok(f) => f,
        Err(e) => {
            let e = CloudError::from_sdk("ec2", "DescribeNetworkAcls", e);
            return if absent(&e.code) { Ok(()) } else { Err(e) };
        }
    };
    let Some(acl) = found.network_acls().first() else { return Ok(()) };
    let associations: Vec<String> =
        acl.associations().iter().filter_map(|a| a.network_acl_association_id().map(str::to_string)).collect();
    if !associations.is_empty() {
        let vpc = acl.vpc_id().unwrap_or_default();
        c.aws.pace("ec2").await;
        let defaults = ec2
            .describe_network_acls()
            .filters(Filter::builder().name("vpc-id").values(vpc).build())
            .filters(Filter::builder().name("default").values("true").build())
            .send()
            .await
            .map_err(|e| CloudError::from_sdk("ec2", "DescribeNetworkAcls", e))?;
        let default = defaults
            .network_acls()
            .first()
            .and_then(|a| a.network_acl_id())
            .ok_or_else(|| missing("DescribeNetworkAcls", "default ACL of the VPC"))?
            .to_string();
        for assoc in associations {
            gone_ok(
                c.call(
                    "ec2",
                    "ReplaceNetworkAclAssociation",
                    id,
                    ec2.replace_network_acl_association().association_id(assoc).network_acl_id(&default).send(),
                )
                .await
                .map(|_| ()),
            )?;
        }
    }
    gone_ok(c.call("ec2", "DeleteNetworkAcl", id, ec2.delete_network_acl().network_acl_id(id).send()).await.map(|_| ()))
}

pub async fn delete_gateway(c: &Ctx<'_>, id: &str) -> Result<(), CloudError> {
    let ec2 = c.aws.ec2();
    c.aws.pace("ec2").await;
    let found = ec2
        .describe_internet_gateways()
        .internet_gateway_ids(id)
        .send()
        .await
        .map_err(|e| CloudError::from_sdk("ec2", "DescribeInternetGateways", e));
    let found = match found {
        Ok(f) => f,
        Err(e) if absent(&e.code) => return Ok(()),
        Err(e) => return Err(e),
    };
    for vpc in found.internet_gateways().iter().flat_map(|g| g.attachments()).filter_map(|a| a.vpc_id()) {
        gone_ok(
            c.call(
                "ec2",
                "DetachInternetGateway",
                id,
                ec2.detach_internet_gateway().internet_gateway_id(id).vpc_id(vpc).send(),
            )
            .await
            .map(|_| ()),
        )?;
    }
    gone_ok(
        c.call("ec2", "DeleteInternetGateway", id, ec2.delete_internet_gateway().internet_gateway_id(id).send())
            .await
            .map(|_| ()),
    )
}
