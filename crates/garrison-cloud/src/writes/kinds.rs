//! One implementation per resource kind of what garrison does with it in AWS: create,
//! delete, start, and for the kinds discovery does not list, a check that it still exists.
//! A kind's static facts are `garrison_model::protection::KINDS`; adding a kind is one row
//! there and one `kind!` here (`every_kind_has_its_implementation` fails until both exist
//! and agree).

use garrison_model::protection::{ResKind, Spec};

use super::{BoxFuture, Created, Ctx, audit, detect, feed, mirror, network};
use crate::CloudError;

/// A resource kind's AWS behaviour.
pub trait KindWrites: Sync {
    fn kind(&self) -> ResKind;
    /// Makes it from `spec` (`running`: appliances launched or stopped; `token`: the
    /// idempotency token a retry after a crash reuses).
    fn create<'a>(
        &'a self,
        c: &'a Ctx<'a>,
        spec: &'a Spec,
        running: bool,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Created, CloudError>>;
    fn delete<'a>(&'a self, c: &'a Ctx<'a>, id: &'a str) -> BoxFuture<'a, Result<(), CloudError>>;
    /// Starts it: an appliance, a trail's logging. Other kinds cannot be started.
    fn start<'a>(&'a self, _c: &'a Ctx<'a>, _id: &'a str) -> BoxFuture<'a, Result<(), CloudError>> {
        let what = format!("a {} cannot be started", self.kind().as_str());
        Box::pin(async move { Err(CloudError::terminal("garrison", "Start", "Unsupported", &what)) })
    }
    /// Changes it in place to `spec`: a mirror session's target, filter or number; a
    /// mirror filter's lost rules. Other kinds are replaced instead.
    fn modify<'a>(&'a self, _c: &'a Ctx<'a>, _id: &'a str, _spec: &'a Spec) -> BoxFuture<'a, Result<(), CloudError>> {
        let what = format!("a {} cannot be changed in place", self.kind().as_str());
        Box::pin(async move { Err(CloudError::terminal("garrison", "Modify", "Unsupported", &what)) })
    }
    /// Whether it still exists; None for the kinds discovery lists (its snapshot says).
    fn exists<'a>(&'a self, _c: &'a Ctx<'a>, _id: &'a str) -> Option<BoxFuture<'a, Result<bool, CloudError>>> {
        None
    }
}

fn mismatch(kind: ResKind, spec: &Spec) -> CloudError {
    let msg = format!("a {} spec given to the {} implementation", spec.kind().as_str(), kind.as_str());
    CloudError::terminal("garrison", "Create", "SpecMismatch", &msg)
}

macro_rules! kind {
    (
        $ty:ident, $kind:ident,
        create($c:ident, $spec:pat, $running:pat, $token:pat) => $create:expr,
        delete($dc:ident, $did:ident) => $delete:expr
        $(, start($sc:ident, $sid:ident) => $start:expr)?
        $(, modify($mc:ident, $mid:ident, $mspec:pat) => $modify:expr)?
        $(, exists($ec:ident, $eid:ident) => $exists:expr)?
        $(,)?
    ) => {
        struct $ty;

        impl KindWrites for $ty {
            fn kind(&self) -> ResKind {
                ResKind::$kind
            }

            fn create<'a>(
                &'a self,
                $c: &'a Ctx<'a>,
                spec: &'a Spec,
                $running: bool,
                $token: &'a str,
            ) -> BoxFuture<'a, Result<Created, CloudError>> {
                Box::pin(async move {
                    match spec {
                        $spec => $create,
                        #[allow(unreachable_patterns)]
                        other => Err(mismatch(ResKind::$kind, other)),
                    }
                })
            }

            fn delete<'a>(&'a self, $dc: &'a Ctx<'a>, $did: &'a str) -> BoxFuture<'a, Result<(), CloudError>> {
                Box::pin(async move { $delete })
            }

            $(fn start<'a>(&'a self, $sc: &'a Ctx<'a>, $sid: &'a str) -> BoxFuture<'a, Result<(), CloudError>> {
                Box::pin(async move { $start })
            })?

            $(fn modify<'a>(&'a self, $mc: &'a Ctx<'a>, $mid: &'a str, spec: &'a Spec) -> BoxFuture<'a, Result<(), CloudError>> {
                Box::pin(async move {
                    match spec {
                        $mspec => $modify,
                        #[allow(unreachable_patterns)]
                        other => Err(mismatch(ResKind::$kind, other)),
                    }
                })
            })?

            $(fn exists<'a>(&'a self, $ec: &'a Ctx<'a>, $eid: &'a str) -> Option<BoxFuture<'a, Result<bool, CloudError>>> {
                Some(Box::pin(async move { $exists }))
            })?
        }
    };
}

kind!(Bucket, Bucket,
    create(c, Spec::Bucket { name }, _, _) => audit::bucket(c, name).await,
    delete(c, id) => audit::delete_bucket(c, id).await,
    exists(c, id) => audit::bucket_exists(c, id).await,
);
kind!(Topic, Topic,
    create(c, Spec::Topic { name, bucket }, _, _) => audit::topic(c, name, bucket).await,
    delete(c, id) => audit::delete_topic(c, id).await,
    exists(c, id) => audit::topic_exists(c, id).await,
);
kind!(Queue, Queue,
    create(c, Spec::Queue { name, topic }, _, _) => {
        let topic = match topic { Some(t) => Some(c.arn(t)?), None => None };
        audit::queue(c, name, topic.as_deref()).await
    },
    delete(c, id) => audit::delete_queue(c, id).await,
    exists(c, id) => audit::queue_exists(c, id).await,
);
kind!(Subscription, Subscription,
    create(c, Spec::Subscription { topic, queue }, _, _) => audit::subscribe(c, &c.arn(topic)?, &c.arn(queue)?).await,
    delete(c, id) => audit::unsubscribe(c, id).await,
    exists(c, id) => audit::subscription_exists(c, id).await,
);
kind!(BucketNotification, BucketNotification,
    create(c, Spec::BucketNotification { bucket, topic }, _, _) => audit::notify(c, &c.id(bucket)?, &c.arn(topic)?).await,
    delete(c, id) => audit::unnotify(c, id).await,
    exists(c, id) => audit::notification_exists(c, id).await,
);
kind!(Trail, Trail,
    create(c, Spec::Trail { name, bucket }, _, _) => audit::trail(c, name, &c.id(bucket)?).await,
    // By name, in its home region: some implementations ignore an ARN here.
    delete(c, id) => audit::delete_trail(c, id).await,
    start(c, id) => audit::start_logging(c, id).await,
);
kind!(Detector, Detector,
    create(c, Spec::Detector, _, _) => detect::detector(c).await,
    delete(c, id) => detect::delete_detector(c, id).await,
);
kind!(Recorder, Recorder,
    create(c, Spec::Recorder { name, bucket }, _, _) => detect::recorder(c, name, &c.id(bucket)?).await,
    delete(c, id) => detect::delete_recorder(c, id).await,
);
kind!(FlowLogs, FlowLogs,
    create(c, Spec::FlowLogs { vpc, bucket }, _, _) => detect::flow_logs(c, vpc, &c.id(bucket)?).await,
    delete(c, id) => detect::delete_flow_logs(c, id).await,
);
kind!(InternetGateway, InternetGateway,
    create(c, Spec::InternetGateway { vpc }, _, _) => network::gateway(c, vpc).await,
    delete(c, id) => network::delete_gateway(c, id).await,
);
kind!(Subnet, Subnet,
    create(c, Spec::Subnet { vpc, zone, cidr }, _, _) => network::subnet(c, vpc, zone, cidr).await,
    delete(c, id) => network::delete_subnet(c, id).await,
);
kind!(RouteTable, RouteTable,
    create(c, Spec::RouteTable { vpc, subnet, gateway }, _, _) =>
        network::route_table(c, vpc, &c.id(subnet)?, &c.id(gateway)?).await,
    delete(c, id) => network::delete_route_table(c, id).await,
);
kind!(NetworkAcl, NetworkAcl,
    create(c, Spec::NetworkAcl { vpc, subnet, vpc_cidr, peers }, _, _) => network::acl(c, vpc, &c.id(subnet)?, vpc_cidr, peers).await,
    delete(c, id) => network::delete_acl(c, id).await,
);
kind!(SecurityGroup, SecurityGroup,
    create(c, Spec::SecurityGroup { vpc, name, ingress, egress }, _, _) => network::group(c, vpc, name, ingress, egress).await,
    delete(c, id) => network::delete_group(c, id).await,
);
kind!(Appliance, Appliance,
    create(c, Spec::Appliance { instance_type, image, subnet, group, .. }, running, token) =>
        network::launch(c, instance_type, image, &c.id(subnet)?, &c.id(group)?, running, token).await,
    delete(c, id) => network::terminate(c, id).await,
    start(c, id) => network::start(c, id).await,
);
kind!(EventBus, EventBus,
    create(c, Spec::EventBus { name }, _, _) => feed::bus(c, name).await,
    delete(c, id) => feed::delete_bus(c, id).await,
    exists(c, id) => feed::bus_exists(c, id).await,
);
kind!(EventRule, EventRule,
    create(c, Spec::EventRule { name, bus, pattern, target, role }, _, _) => {
        let bus = match bus { Some(b) => Some(c.id(b)?), None => None };
        let role = match role { Some(r) => Some(c.arn(r)?), None => None };
        feed::rule(c, name, bus.as_deref(), pattern, &c.arn(target)?, role.as_deref()).await
    },
    delete(c, id) => feed::delete_rule(c, id).await,
    exists(c, id) => feed::rule_exists(c, id).await,
);
kind!(EventRole, EventRole,
    create(c, Spec::EventRole { name, bus }, _, _) => feed::role(c, name, &c.arn(bus)?).await,
    delete(c, id) => feed::delete_role(c, id).await,
    exists(c, id) => feed::role_exists(c, id).await,
);
kind!(QueuePolicy, QueuePolicy,
    create(c, Spec::QueuePolicy { queue, rule }, _, _) =>
        feed::allow_rule(c, &c.id(queue)?, &c.arn(queue)?, &c.arn(rule)?).await,
    delete(c, id) => feed::disallow_rule(c, id).await,
    exists(c, id) => feed::rule_allowed(c, id).await,
);

kind!(MirrorFilter, MirrorFilter,
    create(c, Spec::MirrorFilter { vpc }, _, token) => mirror::filter(c, vpc, token).await,
    delete(c, id) => mirror::delete_filter(c, id).await,
    modify(c, id, Spec::MirrorFilter { .. }) => mirror::mend_filter(c, id).await,
);
kind!(MirrorTarget, MirrorTarget,
    create(c, Spec::MirrorTarget { appliance }, _, token) => mirror::target(c, &c.id(appliance)?, token).await,
    delete(c, id) => mirror::delete_target(c, id).await,
);
kind!(MirrorSession, MirrorSession,
    create(c, Spec::MirrorSession { interface, target, filter, number }, _, token) =>
        mirror::session(c, interface, (&c.id(target)?, &c.id(filter)?), *number, token).await,
    delete(c, id) => mirror::delete_session(c, id).await,
    modify(c, id, Spec::MirrorSession { target, filter, number, .. }) =>
        mirror::modify_session(c, id, (&c.id(target)?, &c.id(filter)?), *number).await,
);

/// The implementation of `kind`.
pub fn implementation(kind: ResKind) -> &'static dyn KindWrites {
    match kind {
        ResKind::Bucket => &Bucket,
        ResKind::Topic => &Topic,
        ResKind::Queue => &Queue,
        ResKind::Subscription => &Subscription,
        ResKind::BucketNotification => &BucketNotification,
        ResKind::Trail => &Trail,
        ResKind::Detector => &Detector,
        ResKind::Recorder => &Recorder,
        ResKind::FlowLogs => &FlowLogs,
        ResKind::InternetGateway => &InternetGateway,
        ResKind::Subnet => &Subnet,
        ResKind::RouteTable => &RouteTable,
        ResKind::NetworkAcl => &NetworkAcl,
        ResKind::SecurityGroup => &SecurityGroup,
        ResKind::Appliance => &Appliance,
        ResKind::EventBus => &EventBus,
        ResKind::EventRule => &EventRule,
        ResKind::EventRole => &EventRole,
        ResKind::QueuePolicy => &QueuePolicy,
        ResKind::MirrorFilter => &MirrorFilter,
        ResKind::MirrorTarget => &MirrorTarget,
        ResKind::MirrorSession => &MirrorSession,
    }
}
