//! The operation table: every API operation with its method, path and parameters.
//! The CLI builds its `<service> <operation> --param …` grammar from it, and the
//! server's tests check that each entry has a route (and each route an entry).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Integer,
    Boolean,
    /// A JSON object (or `k=v,k2=v2` shorthand).
    Object,
    /// A JSON array.
    Array,
    /// Any JSON value.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum In {
    Path,
    Query,
    /// One top-level property of a JSON object body.
    Body,
    /// The whole body (e.g. `--data '["themis"]'`).
    WholeBody,
}

#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub location: In,
    pub required: bool,
    pub help: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub struct Operation {
    pub service: &'static str,
    pub name: &'static str,
    pub method: &'static str,
    /// Path template with `{param}` placeholders, as in the reference specs.
    pub path: &'static str,
    pub params: &'static [Param],
    pub summary: &'static str,
    /// False only for authenticate (HTTP Basic) and public documents.
    pub needs_token: bool,
    /// The permission it needs (`service:account:action:resource`, the service being the
    /// operation's own): the server checks it and the role matrix is derived from it.
    pub need: Need,
}

/// Who may call an operation besides the roles that allow its permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// Only a role that allows the permission.
    Role,
    /// Also any caller acting on its own user (`{user_id}` is the caller): reading itself,
    /// renaming itself, keeping its own access keys, reading its own roles and permissions.
    RoleOrOwnUser,
    /// Any authenticated caller (e.g. describing its own token).
    AnyCaller,
}

/// An operation's action and resource (see `permission`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    pub action: &'static str,
    pub resource: &'static str,
    pub by: By,
}

const fn need(action: &'static str, resource: &'static str) -> Need {
    Need { action, resource, by: By::Role }
}
const fn own_user(action: &'static str, resource: &'static str) -> Need {
    Need { action, resource, by: By::RoleOrOwnUser }
}
const fn anyone(action: &'static str, resource: &'static str) -> Need {
    Need { action, resource, by: By::AnyCaller }
}

const fn p(name: &'static str, help: &'static str) -> Param {
    Param { name, kind: Kind::String, location: In::Path, required: true, help }
}
const fn q(name: &'static str, kind: Kind, help: &'static str) -> Param {
    Param { name, kind, location: In::Query, required: false, help }
}
const fn b(name: &'static str, kind: Kind, required: bool, help: &'static str) -> Param {
    Param { name, kind, location: In::Body, required, help }
}

const ROLE_ID: Param = p("role_id", "role id (a global role's or one of the account's)");
const USER_ID: Param = p("user_id", "user id");
const ACCOUNT: Param = p("account_id", "garrison (AIMS) account id, 8 digits");
const DEPLOYMENT_BODY: [Param; 13] = [
    b("name", Kind::String, false, "deployment name"),
    b("platform", Kind::Object, false, "{\"type\": \"aws\", \"id\": \"<12-digit AWS account>\", \"monitor\": {...}}"),
    b("mode", Kind::String, false, "automatic | manual | readonly | guided | none (default automatic)"),
    b("enabled", Kind::Boolean, false, "whether the deployment is enabled (default true)"),
    b("discover", Kind::Boolean, false, "whether the account is discovered (default true)"),
    b("scan", Kind::Boolean, false, "whether hosts are scanned (default true)"),
    b(
        "scope",
        Kind::Object,
        false,
        "{\"include\": [{\"type\", \"key\", \"policy\": {\"id\"}}], \"exclude\": [{\"type\", \"key\"}]}",
    ),
    b("features", Kind::Object, false, "feature scopes {abs, scan, fim}"),
    b("cloud_defender", Kind::Object, false, "{\"enabled\": false}"),
    b("credentials", Kind::Array, false, "[{\"id\": \"<credential id>\", \"purpose\": \"discover\"}]"),
    b("version", Kind::Integer, false, "the version this update is based on (stale → 409)"),
    b("is_control_tower", Kind::Boolean, false, "Control Tower deployment (default false)"),
    b("control_tower", Kind::Object, false, "Control Tower details"),
];

/// `head` followed by the deployment body's properties.
const fn with_deployment_body<const N: usize>(head: &[Param]) -> [Param; N] {
    let mut a = [ACCOUNT; N];
    let mut i = 0;
    while i < head.len() {
        a[i] = head[i];
        i += 1;
    }
    let mut j = 0;
    while j < DEPLOYMENT_BODY.len() {
        a[head.len() + j] = DEPLOYMENT_BODY[j];
        j += 1;
    }
    a
}

const CREATE_DEPLOYMENT_PARAMS: [Param; 14] = with_deployment_body(&[ACCOUNT]);
const UPDATE_DEPLOYMENT_PARAMS: [Param; 15] = with_deployment_body(&[ACCOUNT, p("deployment_id", "deployment id")]);

macro_rules! params {
    ($($x:expr),* $(,)?) => { &[$($x),*] };
}

const ORG_ID: Param = p("organization_id", "organization enrollment id");
const CONNECTION_ID: Param = p("id", "connection id");
const SUBSCRIPTION_ID: Param = p("subscription_id", "subscription id");
const DRY_RUN: Param =
    q("dry_run", Kind::Boolean, "send a test notification to the target and return what it answered, storing nothing");
const PREVIEW: Param = q(
    "dry_run",
    Kind::Boolean,
    "plan every deployment the option reaches with it in place and show what would change and cost, storing nothing",
);
/// The whole connection as alcli sends it (`--data '{…}'`).
const CONNECTION_DATA: Param = Param {
    name: "data",
    kind: Kind::Object,
    location: In::WholeBody,
    required: true,
    help: "{\"name\", \"type\": \"webhook\" | \"slack\" | \"msteams\", \"target_url\", \"method\": \"POST\" | \"PUT\", \"headers\": \"Name: value, …\", \"auth_header\" (sealed, never shown), \"payload_type\", \"payload_conversion_type\": \"default\", \"payload_template\"}",
};
const fn subscription_body(required: bool) -> [Param; 7] {
    [
        b("name", Kind::String, required, "name of the subscription"),
        b("class", Kind::String, required, "event"),
        b(
            "notification_type",
            Kind::String,
            required,
            "findings/opened | findings/resolved | deployments/status | health/opened | health/concluded",
        ),
        b(
            "subscribers",
            Kind::Array,
            false,
            "[{\"subscriber\": \"<connection or user id>\", \"subscriber_type\": \"connection\"}]",
        ),
        b("active", Kind::Boolean, false, "whether notices are sent (default true)"),
        b("options", Kind::Object, false, "{\"min_severity\": \"high\"}: findings of this severity and above only"),
        b("filters", Kind::Object, false, "{\"deployment_id\": \"<id>\"}: this deployment's notices only"),
    ]
}
const fn enrollment_body(required: bool) -> [Param; 8] {
    [
        b("name", Kind::String, required, "name of the enrollment"),
        b(
            "credential_id",
            Kind::String,
            required,
            "the management account's credential (a role that reads the organization and runs the StackSet)",
        ),
        b(
            "include",
            Kind::Array,
            required,
            "units to enroll: [{\"unit\": \"ou-…\" or \"r-…\", \"children\": true|false}]",
        ),
        b("exclude_units", Kind::Array, false, "units left out, with everything below them"),
        b("exclude_accounts", Kind::Array, false, "AWS account ids left out"),
        b(
            "template",
            Kind::Object,
            required,
            "the deployment each enrolled account gets: a create_deployment body without platform.id and credentials",
        ),
        b(
            "stack_set",
            Kind::String,
            false,
            "name of the StackSet that puts garrison's role in each account (default garrison-role)",
        ),
        b(
            "event_feed",
            Kind::String,
            false,
            "per_account (default: a bus and queue in each account) | organization (one bus in the management account, one queue)",
        ),
    ]
}
const CREATE_ORG_PARAMS: [Param; 9] = {
    let body = enrollment_body(true);
    [ACCOUNT, body[0], body[1], body[2], body[3], body[4], body[5], body[6], body[7]]
};
const UPDATE_ORG_PARAMS: [Param; 11] = {
    let body = enrollment_body(false);
    [
        ACCOUNT,
        ORG_ID,
        body[0],
        body[1],
        body[2],
        body[3],
        body[4],
        body[5],
        body[6],
        body[7],
        b("version", Kind::Integer, false, "update only this version (else 409)"),
    ]
};

const CREATE_SUBSCRIPTION_PARAMS: [Param; 8] = {
    let b = subscription_body(true);
    [ACCOUNT, b[0], b[1], b[2], b[3], b[4], b[5], b[6]]
};
const UPDATE_SUBSCRIPTION_PARAMS: [Param; 9] = {
    let b = subscription_body(false);
    [ACCOUNT, SUBSCRIPTION_ID, b[0], b[1], b[2], b[3], b[4], b[5], b[6]]
};

/// An otis option whole, as alcli sends it.
const fn option_body(name: &'static str) -> Param {
    Param {
        name,
        kind: Kind::Object,
        location: In::WholeBody,
        required: true,
        help: "{\"name\": \"<option>\", \"scope\": {\"deployment_id\"?, \"region_key\"?, \"vpc_key\"?}, \"value\": …}",
    }
}
const OPTION_ID: Param = p("option_id", "option id (derived from its name and scope)");
const NETWORK_FILTERS: [Param; 4] = [
    ACCOUNT,
    q("deployment_id", Kind::String, "only this deployment's networks"),
    q("option_id", Kind::String, "only this option's"),
    q("vpc_key", Kind::String, "only this VPC (/aws/<region>/vpc/<vpc-id>)"),
];

const SCHED_DEPLOYMENT: Param = p("deployment_id", "deployment id");
const SCHEDULE_ID: Param = p("id", "scan schedule id");
const SCHEDULE_FIELDS: [Param; 8] = [
    b("name", Kind::String, false, "schedule name"),
    b("enabled", Kind::Boolean, false, "whether it is active (default true)"),
    b("type_of_scan", Kind::String, false, "vulnerability | external | discovery | abs (default vulnerability)"),
    b("timezone", Kind::String, false, "a time zone of list_timezones (default UTC)"),
    b("scan_frequency", Kind::String, false, "automatic | daily | weekly | fortnightly | monthly | quarterly | once"),
    b(
        "scan_windows",
        Kind::Array,
        false,
        "[{\"type\": \"days_of_week\", \"start_time\": \"22:00\", \"end_time\": \"02:00\", \"days_of_week\": [1, 2]}, …]",
    ),
    b(
        "scan_scope",
        Kind::Object,
        false,
        "{\"include_all_assets\": true} or {\"include\": [{\"type\": \"asset\", \"asset_type\": \"vpc\", \"key\": …}]}",
    ),
    b("scan_options", Kind::Array, false, "scan options (stored)"),
];
const SCHEDULE_CREATE: [Param; 10] = [
    ACCOUNT,
    SCHED_DEPLOYMENT,
    SCHEDULE_FIELDS[0],
    SCHEDULE_FIELDS[1],
    SCHEDULE_FIELDS[2],
    SCHEDULE_FIELDS[3],
    SCHEDULE_FIELDS[4],
    SCHEDULE_FIELDS[5],
    SCHEDULE_FIELDS[6],
    SCHEDULE_FIELDS[7],
];
const SCHEDULE_UPDATE: [Param; 11] = [
    ACCOUNT,
    SCHED_DEPLOYMENT,
    SCHEDULE_ID,
    SCHEDULE_FIELDS[0],
    SCHEDULE_FIELDS[1],
    SCHEDULE_FIELDS[2],
    SCHEDULE_FIELDS[3],
    SCHEDULE_FIELDS[4],
    SCHEDULE_FIELDS[5],
    SCHEDULE_FIELDS[6],
    SCHEDULE_FIELDS[7],
];
const SCAN_ASSET: [Param; 5] = [
    ACCOUNT,
    SCHED_DEPLOYMENT,
    b("type", Kind::String, true, "asset"),
    b("asset_type", Kind::String, true, "deployment | region | network | vpc | subnet | host"),
    b("key", Kind::String, true, "the asset key, e.g. /aws/us-east-1/vpc/vpc-0a1b2c3d"),
];
const EXPEDITE: [Param; 6] = [
    SCAN_ASSET[0],
    SCAN_ASSET[1],
    SCAN_ASSET[2],
    SCAN_ASSET[3],
    SCAN_ASSET[4],
    q("force", Kind::Boolean, "scan excluded targets too (accepted)"),
];

pub static OPERATIONS: &[Operation] = &[
    // aims
    Operation {
        service: "aims",
        name: "authenticate",
        method: "POST",
        path: "/aims/v1/authenticate",
        params: &[],
        summary: "Exchange an access key (HTTP Basic) for a token",
        needs_token: false,
        need: need("get", "token"),
    },
    Operation {
        service: "aims",
        name: "get_token_info",
        method: "GET",
        path: "/aims/v1/token_info",
        params: &[],
        summary: "Describe the caller's token",
        needs_token: true,
        need: anyone("get", "token"),
    },
    Operation {
        service: "aims",
        name: "get_account_details",
        method: "GET",
        path: "/aims/v1/{account_id}/account",
        params: params![ACCOUNT],
        summary: "Get an account",
        needs_token: true,
        need: need("get", "account"),
    },
    Operation {
        service: "aims",
        name: "list_accounts_by_relationship",
        method: "GET",
        path: "/aims/v1/{account_id}/accounts/{relationship}",
        params: params![ACCOUNT, p("relationship", "managed | managing")],
        summary: "List managed (child) or managing (parent) accounts",
        needs_token: true,
        need: need("list", "account"),
    },
    Operation {
        service: "aims",
        name: "create_managed_account",
        method: "POST",
        path: "/aims/v1/{account_id}/managed_accounts",
        params: params![ACCOUNT, b("name", Kind::String, true, "name of the new child account")],
        summary: "Create a child account managed by this one (garrison extension)",
        needs_token: true,
        need: need("create", "account"),
    },
    Operation {
        service: "aims",
        name: "create_user",
        method: "POST",
        path: "/aims/v1/{account_id}/users",
        params: params![
            ACCOUNT,
            b("name", Kind::String, true, "user's name"),
            b("email", Kind::String, true, "user's email (also the username)"),
            b(
                "role_id",
                Kind::String,
                false,
                "role id: a global role (aims list_global_roles; Power User by default) or one of the account's"
            ),
            b("active", Kind::Boolean, false, "whether the user may sign in (default true)"),
            b("notifications_only", Kind::Boolean, false, "a user that receives notifications only: it holds no role"),
        ],
        summary: "Create a user in an account (aims:…:create:user)",
        needs_token: true,
        need: need("create", "user"),
    },
    Operation {
        service: "aims",
        name: "list_users",
        method: "GET",
        path: "/aims/v1/{account_id}/users",
        params: params![ACCOUNT],
        summary: "List an account's users",
        needs_token: true,
        need: need("list", "user"),
    },
    Operation {
        service: "aims",
        name: "get_user_details",
        method: "GET",
        path: "/aims/v1/{account_id}/users/{user_id}",
        params: params![ACCOUNT, p("user_id", "user id")],
        summary: "Get a user",
        needs_token: true,
        need: own_user("get", "user"),
    },
    Operation {
        service: "aims",
        name: "update_user_details",
        method: "POST",
        path: "/aims/v1/{account_id}/users/{user_id}",
        params: params![
            ACCOUNT,
            p("user_id", "user id"),
            b("name", Kind::String, false, "new name"),
            b("email", Kind::String, false, "new email"),
            b("active", Kind::Boolean, false, "false disables the user: their tokens stop at once (not oneself)")
        ],
        summary: "Update a user (aims:…:update:user; users may rename themselves)",
        needs_token: true,
        need: own_user("update", "user"),
    },
    Operation {
        service: "aims",
        name: "delete_user",
        method: "DELETE",
        path: "/aims/v1/{account_id}/users/{user_id}",
        params: params![ACCOUNT, p("user_id", "user id")],
        summary: "Delete a user and their access keys (aims:…:delete:user)",
        needs_token: true,
        need: need("delete", "user"),
    },
    Operation {
        service: "aims",
        name: "create_access_key",
        method: "POST",
        path: "/aims/v1/{account_id}/users/{user_id}/access_keys",
        params: params![ACCOUNT, p("user_id", "user id"), b("label", Kind::String, false, "label for the key")],
        summary: "Create an access key (the secret is shown once)",
        needs_token: true,
        need: own_user("create", "access_key"),
    },
    Operation {
        service: "aims",
        name: "list_access_keys",
        method: "GET",
        path: "/aims/v1/{account_id}/users/{user_id}/access_keys",
        params: params![ACCOUNT, p("user_id", "user id"), q("out", Kind::String, "ids_only | full")],
        summary: "List a user's access keys",
        needs_token: true,
        need: own_user("list", "access_key"),
    },
    Operation {
        service: "aims",
        name: "get_access_key",
        method: "GET",
        path: "/aims/v1/{account_id}/users/{user_id}/access_keys/{access_key_id}",
        params: params![ACCOUNT, p("user_id", "user id"), p("access_key_id", "access key id")],
        summary: "Get an access key (never its secret)",
        needs_token: true,
        need: own_user("get", "access_key"),
    },
    Operation {
        service: "aims",
        name: "delete_access_key",
        method: "DELETE",
        path: "/aims/v1/{account_id}/users/{user_id}/access_keys/{access_key_id}",
        params: params![ACCOUNT, p("user_id", "user id"), p("access_key_id", "access key id")],
        summary: "Delete an access key",
        needs_token: true,
        need: own_user("delete", "access_key"),
    },
    Operation {
        service: "aims",
        name: "list_global_roles",
        method: "GET",
        path: "/aims/v1/roles",
        params: &[],
        summary: "List the global roles (shared by every account) with their permissions",
        needs_token: true,
        need: need("list", "role"),
    },
    Operation {
        service: "aims",
        name: "get_global_role_details",
        method: "GET",
        path: "/aims/v1/roles/{role_id}",
        params: params![ROLE_ID],
        summary: "Get a global role",
        needs_token: true,
        need: need("get", "role"),
    },
    Operation {
        service: "aims",
        name: "create_role",
        method: "POST",
        path: "/aims/v1/{account_id}/roles",
        params: params![
            ACCOUNT,
            b("name", Kind::String, true, "role name, unique in the account"),
            b("permissions", Kind::Object, true, "{\"service:own|managed:action:resource\": \"allowed\" | \"denied\"}"),
        ],
        summary: "Create a role of the account",
        needs_token: true,
        need: need("create", "role"),
    },
    Operation {
        service: "aims",
        name: "list_roles",
        method: "GET",
        path: "/aims/v1/{account_id}/roles",
        params: params![ACCOUNT],
        summary: "List the account's roles and the global ones",
        needs_token: true,
        need: need("list", "role"),
    },
    Operation {
        service: "aims",
        name: "get_role_details",
        method: "GET",
        path: "/aims/v1/{account_id}/roles/{role_id}",
        params: params![ACCOUNT, ROLE_ID],
        summary: "Get a role of the account (or a global one)",
        needs_token: true,
        need: need("get", "role"),
    },
    Operation {
        service: "aims",
        name: "update_role_details",
        method: "POST",
        path: "/aims/v1/{account_id}/roles/{role_id}",
        params: params![
            ACCOUNT,
            ROLE_ID,
            b("name", Kind::String, false, "new name"),
            b("permissions", Kind::Object, false, "the role's permissions, replaced whole"),
        ],
        summary: "Change a role's name or permissions",
        needs_token: true,
        need: need("update", "role"),
    },
    Operation {
        service: "aims",
        name: "delete_role",
        method: "DELETE",
        path: "/aims/v1/{account_id}/roles/{role_id}",
        params: params![ACCOUNT, ROLE_ID],
        summary: "Delete a role of the account (refused while a user holds it)",
        needs_token: true,
        need: need("delete", "role"),
    },
    Operation {
        service: "aims",
        name: "get_assigned_roles",
        method: "GET",
        path: "/aims/v1/{account_id}/users/{user_id}/roles",
        params: params![ACCOUNT, USER_ID],
        summary: "The roles granted to a user",
        needs_token: true,
        need: own_user("get", "user_role"),
    },
    Operation {
        service: "aims",
        name: "get_assigned_role_ids",
        method: "GET",
        path: "/aims/v1/{account_id}/users/{user_id}/role_ids",
        params: params![ACCOUNT, USER_ID],
        summary: "The ids of the roles granted to a user",
        needs_token: true,
        need: own_user("get", "user_role"),
    },
    Operation {
        service: "aims",
        name: "get_user_permissions",
        method: "GET",
        path: "/aims/v1/{account_id}/users/{user_id}/permissions",
        params: params![ACCOUNT, USER_ID],
        summary: "A user's permissions, from the roles granted",
        needs_token: true,
        need: own_user("get", "user_permission"),
    },
    Operation {
        service: "aims",
        name: "grant_user_role",
        method: "PUT",
        path: "/aims/v1/{account_id}/users/{user_id}/roles/{role_id}",
        params: params![ACCOUNT, USER_ID, ROLE_ID],
        summary: "Grant a role to a user (it replaces the role held)",
        needs_token: true,
        need: need("grant", "role"),
    },
    Operation {
        service: "aims",
        name: "revoke_user_role",
        method: "DELETE",
        path: "/aims/v1/{account_id}/users/{user_id}/roles/{role_id}",
        params: params![ACCOUNT, USER_ID, ROLE_ID],
        summary: "Revoke a user's role",
        needs_token: true,
        need: need("revoke", "role"),
    },
    // endpoints
    Operation {
        service: "endpoints",
        name: "get_endpoint",
        method: "GET",
        path: "/endpoints/v1/{account_id}/residency/{residency}/services/{service_name}/endpoint",
        params: params![
            ACCOUNT,
            p("residency", "default | us | emea"),
            p("service_name", "service name, e.g. deployments")
        ],
        summary: "The host serving a service for an account",
        needs_token: true,
        need: need("get", "endpoint"),
    },
    Operation {
        service: "endpoints",
        name: "get_endpoints",
        method: "POST",
        path: "/endpoints/v1/{account_id}/residency/{residency}/endpoints",
        params: params![
            ACCOUNT,
            p("residency", "default | us | emea"),
            Param {
                name: "data",
                kind: Kind::Array,
                location: In::WholeBody,
                required: true,
                help: "[\"service\", …]"
            }
        ],
        summary: "Hosts for several services",
        needs_token: true,
        need: need("get", "endpoint"),
    },
    // themis
    Operation {
        service: "themis",
        name: "get_role",
        method: "GET",
        path: "/themis/v1/{account_id}/roles/{platform_type}/{role_type}/{role_version}",
        params: params![
            ACCOUNT,
            p("platform_type", "aws"),
            p("role_type", "ci_full | ci_manual | ci_essentials | ci_readonly | ci_x_account_ct | ci_organization"),
            p("role_version", "YYYY-MM-DD[.N] or latest"),
            q("format", Kind::String, "json (default) | terraform (HCL text)")
        ],
        summary: "The IAM role to create for garrison, with its CloudFormation template (or as Terraform)",
        needs_token: true,
        need: need("get", "role"),
    },
    Operation {
        service: "themis",
        name: "get_roles",
        method: "GET",
        path: "/themis/v1/{account_id}/roles",
        params: params![ACCOUNT, q("platform_type", Kind::String, "aws")],
        summary: "The latest version of every role",
        needs_token: true,
        need: need("list", "role"),
    },
    Operation {
        service: "themis",
        name: "get_role_template",
        method: "GET",
        path: "/themis/v1/templates/{platform_type}/{role_type}/{role_version}",
        params: params![
            p("platform_type", "aws"),
            p("role_type", "role type"),
            p("role_version", "YYYY-MM-DD[.N] or latest")
        ],
        summary: "The CloudFormation template of a role version (public)",
        needs_token: false,
        need: need("get", "template"),
    },
    Operation {
        service: "themis",
        name: "validate_credentials",
        method: "POST",
        path: "/themis/v1/validate/{platform_type}/{role_type}",
        params: params![
            p("platform_type", "aws"),
            p("role_type", "role type"),
            b(
                "credential",
                Kind::Object,
                true,
                "{\"platform_type\", \"role_type\", \"arn\", \"external_id\", \"role_version\"}"
            )
        ],
        summary: "Check a customer's role against the role type",
        needs_token: true,
        need: need("get", "validation"),
    },
    // credentials
    Operation {
        service: "credentials",
        name: "create_credential",
        method: "POST",
        path: "/credentials/v2/{account_id}/credentials",
        params: params![
            ACCOUNT,
            b("name", Kind::String, true, "credential name"),
            b("secrets", Kind::Object, true, "{\"type\": \"aws_iam_role\", \"arn\": \"arn:aws:iam::…:role/…\"}")
        ],
        summary: "Store an IAM role garrison will assume",
        needs_token: true,
        need: need("create", "credential"),
    },
    Operation {
        service: "credentials",
        name: "list_credentials",
        method: "GET",
        path: "/credentials/v2/{account_id}/credentials",
        params: params![ACCOUNT],
        summary: "List credentials",
        needs_token: true,
        need: need("list", "credential"),
    },
    Operation {
        service: "credentials",
        name: "get_credential",
        method: "GET",
        path: "/credentials/v2/{account_id}/credentials/{credential_id}",
        params: params![ACCOUNT, p("credential_id", "credential id")],
        summary: "Get a credential",
        needs_token: true,
        need: need("get", "credential"),
    },
    Operation {
        service: "credentials",
        name: "delete_credential",
        method: "DELETE",
        path: "/credentials/v2/{account_id}/credentials/{credential_id}",
        params: params![ACCOUNT, p("credential_id", "credential id")],
        summary: "Delete a credential (refused while a deployment uses it)",
        needs_token: true,
        need: need("delete", "credential"),
    },
    // policies
    Operation {
        service: "policies",
        name: "list_policies",
        method: "GET",
        path: "/policies/v1/{account_id}/policies",
        params: params![ACCOUNT],
        summary: "List protection policies",
        needs_token: true,
        need: need("list", "policy"),
    },
    Operation {
        service: "policies",
        name: "get_policy",
        method: "GET",
        path: "/policies/v1/{account_id}/policies/{policy_id}",
        params: params![ACCOUNT, p("policy_id", "policy id")],
        summary: "Get a protection policy",
        needs_token: true,
        need: need("get", "policy"),
    },
    // assets_query
    Operation {
        service: "assets_query",
        name: "query_assets",
        method: "GET",
        path: "/assets_query/v1/{account_id}/assets",
        params: params![
            ACCOUNT,
            q("asset_types", Kind::String, "r:region,v:vpc,s:subnet,h:host (types joined along the hierarchy)"),
            q("scope", Kind::Boolean, "only in-scope assets"),
            q("page_size", Kind::Integer, "rows per page, at most 10000"),
            q("continue", Kind::String, "token of the next page")
        ],
        summary: "Assets of all deployments, paged",
        needs_token: true,
        need: need("list", "asset"),
    },
    Operation {
        service: "assets_query",
        name: "query_deployment_assets",
        method: "GET",
        path: "/assets_query/v1/{account_id}/deployments/{deployment_id}/assets",
        params: params![
            ACCOUNT,
            p("deployment_id", "deployment id"),
            q("asset_types", Kind::String, "r:region,v:vpc,s:subnet,h:host"),
            q("scope", Kind::Boolean, "only in-scope assets")
        ],
        summary: "Assets of one deployment",
        needs_token: true,
        need: need("list", "asset"),
    },
    Operation {
        service: "assets_query",
        name: "query_topology",
        method: "GET",
        path: "/assets_query/v1/{account_id}/deployments/{deployment_id}/topology",
        params: params![ACCOUNT, p("deployment_id", "deployment id")],
        summary: "region → vpc → subnet → host paths of a deployment",
        needs_token: true,
        need: need("get", "topology"),
    },
    // deployments
    Operation {
        service: "deployments",
        name: "create_deployment",
        method: "POST",
        path: "/deployments/v1/{account_id}/deployments",
        params: &CREATE_DEPLOYMENT_PARAMS,
        summary: "Create a deployment",
        needs_token: true,
        need: need("create", "deployment"),
    },
    Operation {
        service: "deployments",
        name: "create_organization",
        method: "POST",
        path: "/deployments/v1/{account_id}/organizations",
        params: &CREATE_ORG_PARAMS,
        summary: "Enroll units of an AWS organization: their accounts are protected as they come and go",
        needs_token: true,
        need: need("create", "organization"),
    },
    Operation {
        service: "deployments",
        name: "list_organizations",
        method: "GET",
        path: "/deployments/v1/{account_id}/organizations",
        params: params![ACCOUNT],
        summary: "List organization enrollments",
        needs_token: true,
        need: need("list", "organization"),
    },
    Operation {
        service: "deployments",
        name: "get_organization",
        method: "GET",
        path: "/deployments/v1/{account_id}/organizations/{organization_id}",
        params: params![ACCOUNT, ORG_ID],
        summary: "Get an organization enrollment with its status per account",
        needs_token: true,
        need: need("get", "organization"),
    },
    Operation {
        service: "deployments",
        name: "update_organization",
        method: "PUT",
        path: "/deployments/v1/{account_id}/organizations/{organization_id}",
        params: &UPDATE_ORG_PARAMS,
        summary: "Update an organization enrollment (fields given replace, others stay)",
        needs_token: true,
        need: need("update", "organization"),
    },
    Operation {
        service: "deployments",
        name: "delete_organization",
        method: "DELETE",
        path: "/deployments/v1/{account_id}/organizations/{organization_id}",
        params: params![ACCOUNT, ORG_ID],
        summary: "Stop enrolling (the deployments it made stay)",
        needs_token: true,
        need: need("delete", "organization"),
    },
    Operation {
        service: "deployments",
        name: "list_organization_audit_log",
        method: "GET",
        path: "/deployments/v1/{account_id}/organizations/{organization_id}/audit",
        params: params![
            ACCOUNT,
            ORG_ID,
            q("limit", Kind::Integer, "at most this many entries per page (default 1000)"),
            q("continue", Kind::String, "the continue token of the previous page")
        ],
        summary: "Every AWS write made for an organization enrollment itself (StackSet, stack instances), newest first, paged",
        needs_token: true,
        need: need("list", "audit"),
    },
    Operation {
        service: "deployments",
        name: "list_deployments",
        method: "GET",
        path: "/deployments/v1/{account_id}/deployments",
        params: params![ACCOUNT],
        summary: "List deployments",
        needs_token: true,
        need: need("list", "deployment"),
    },
    Operation {
        service: "deployments",
        name: "get_deployment",
        method: "GET",
        path: "/deployments/v1/{account_id}/deployments/{deployment_id}",
        params: params![ACCOUNT, p("deployment_id", "deployment id")],
        summary: "Get a deployment",
        needs_token: true,
        need: need("get", "deployment"),
    },
    Operation {
        service: "deployments",
        name: "update_deployment",
        method: "PUT",
        path: "/deployments/v1/{account_id}/deployments/{deployment_id}",
        params: &UPDATE_DEPLOYMENT_PARAMS,
        summary: "Update a deployment (fields given replace, others stay)",
        needs_token: true,
        need: need("update", "deployment"),
    },
    Operation {
        service: "deployments",
        name: "delete_deployment",
        method: "DELETE",
        path: "/deployments/v1/{account_id}/deployments/{deployment_id}",
        params: params![ACCOUNT, p("deployment_id", "deployment id")],
        summary: "Delete a deployment (garrison removes what it built first)",
        needs_token: true,
        need: need("delete", "deployment"),
    },
    Operation {
        service: "deployments",
        name: "list_health",
        method: "GET",
        path: "/deployments/v1/{account_id}/deployments/{deployment_id}/health",
        params: params![
            ACCOUNT,
            p("deployment_id", "deployment id"),
            q("status", Kind::String, "unhealthy | concluded (default: both)")
        ],
        summary: "What weakens a deployment's protection, with the remedy (open and concluded), and its appliances' health",
        needs_token: true,
        need: need("list", "health"),
    },
    Operation {
        service: "deployments",
        name: "plan_deployment",
        method: "GET",
        path: "/deployments/v1/{account_id}/deployments/{deployment_id}/plan",
        params: params![
            ACCOUNT,
            p("deployment_id", "deployment id"),
            q("format", Kind::String, "json (default) | cloudformation")
        ],
        summary: "What protection would create, change or remove now (nothing is written)",
        needs_token: true,
        need: need("get", "plan"),
    },
    Operation {
        service: "deployments",
        name: "get_protection",
        method: "GET",
        path: "/deployments/v1/{account_id}/deployments/{deployment_id}/protection",
        params: params![ACCOUNT, p("deployment_id", "deployment id")],
        summary: "The latest protection report: appliances per VPC, audit source, cost, outcomes",
        needs_token: true,
        need: need("get", "protection"),
    },
    Operation {
        service: "deployments",
        name: "list_audit_log",
        method: "GET",
        path: "/deployments/v1/{account_id}/deployments/{deployment_id}/audit",
        params: params![
            ACCOUNT,
            p("deployment_id", "deployment id"),
            q("limit", Kind::Integer, "at most this many entries per page (default 1000)"),
            q("continue", Kind::String, "the continue token of the previous page")
        ],
        summary: "Every AWS write made for a deployment, newest first, paged",
        needs_token: true,
        need: need("list", "audit"),
    },
    Operation {
        service: "deployments",
        name: "get_coverage",
        method: "GET",
        path: "/deployments/v1/{account_id}/deployments/{deployment_id}/coverage",
        params: params![ACCOUNT, p("deployment_id", "deployment id")],
        summary: "Regions, VPCs and zones of the latest snapshot: protected, unprotected, excluded or idle",
        needs_token: true,
        need: need("get", "coverage"),
    },
    Operation {
        service: "deployments",
        name: "list_dead_letters",
        method: "GET",
        path: "/deployments/v1/{account_id}/deployments/{deployment_id}/dead_letters",
        params: params![
            ACCOUNT,
            p("deployment_id", "deployment id"),
            q("limit", Kind::Integer, "at most this many entries (default 100)")
        ],
        summary: "Audit-queue input the collector set aside, newest first, with the reason",
        needs_token: true,
        need: need("list", "dead_letter"),
    },
    Operation {
        service: "deployments",
        name: "list_removals",
        method: "GET",
        path: "/deployments/v1/{account_id}/removals",
        params: params![ACCOUNT],
        summary: "Deleted deployments whose resources are still being removed",
        needs_token: true,
        need: need("list", "removal"),
    },
    // findings (garrison's own service)
    Operation {
        service: "findings",
        name: "list_findings",
        method: "GET",
        path: "/findings/v1/{account_id}/findings",
        params: params![
            ACCOUNT,
            q("deployment_id", Kind::String, "only this deployment's findings"),
            q("severity", Kind::String, "this severity and above: informational, low, medium, high, critical"),
            q("status", Kind::String, "active | resolved"),
            q("source", Kind::String, "guardduty | inspector2"),
            q("since", Kind::String, "last seen at or after (RFC 3339, or milliseconds since the epoch)"),
            q("page_size", Kind::Integer, "findings per page, 1 to 1000 (default 100)"),
            q("continue", Kind::String, "token of the next page")
        ],
        summary: "Security findings (GuardDuty, Inspector) of the account's deployments, highest severity first",
        needs_token: true,
        need: need("list", "finding"),
    },
    Operation {
        service: "findings",
        name: "get_finding",
        method: "GET",
        path: "/findings/v1/{account_id}/findings/{finding_id}",
        params: params![ACCOUNT, p("finding_id", "finding id (gd-… or in-…)")],
        summary: "One security finding",
        needs_token: true,
        need: need("get", "finding"),
    },
    // connectors: webhook connections and the notifications' dead letters
    Operation {
        service: "connectors",
        name: "create_connection",
        method: "POST",
        path: "/v1/{account_id}/connections",
        params: params![ACCOUNT, DRY_RUN, CONNECTION_DATA],
        summary: "Create a webhook connection (its signing secret is shown once), or test one with dry_run",
        needs_token: true,
        need: need("create", "connection"),
    },
    Operation {
        service: "connectors",
        name: "list_connections",
        method: "GET",
        path: "/v1/{account_id}/connections",
        params: params![ACCOUNT],
        summary: "The account's connections",
        needs_token: true,
        need: need("list", "connection"),
    },
    Operation {
        service: "connectors",
        name: "get_connection",
        method: "GET",
        path: "/v1/{account_id}/connections/{id}",
        params: params![ACCOUNT, CONNECTION_ID],
        summary: "One connection",
        needs_token: true,
        need: need("get", "connection"),
    },
    Operation {
        service: "connectors",
        name: "update_connection",
        method: "PUT",
        path: "/v1/{account_id}/connections/{id}",
        params: params![ACCOUNT, CONNECTION_ID, DRY_RUN, CONNECTION_DATA],
        summary: "Replace a connection's settings (its secret stays), or test them with dry_run",
        needs_token: true,
        need: need("update", "connection"),
    },
    Operation {
        service: "connectors",
        name: "delete_connection",
        method: "DELETE",
        path: "/v1/{account_id}/connections/{id}",
        params: params![ACCOUNT, CONNECTION_ID],
        summary: "Delete a connection and what it is still owed",
        needs_token: true,
        need: need("delete", "connection"),
    },
    Operation {
        service: "connectors",
        name: "list_dlq_messages",
        method: "GET",
        path: "/v1/connections/management/dlq_messages/{key}",
        params: params![
            p("key", "notifications"),
            q("max", Kind::Integer, "the most to return, 1 to 1000 (default 100)")
        ],
        summary: "Notifications the caller's account's connections refused for good or kept failing, with the last error",
        needs_token: true,
        need: need("list", "dlq_message"),
    },
    Operation {
        service: "connectors",
        name: "reenqueue_dlq",
        method: "POST",
        path: "/v1/connections/management/reenqueue",
        params: params![
            b("key", Kind::String, true, "notifications"),
            b("max_messages", Kind::Integer, false, "the most to send again (default all, up to 1000)")
        ],
        summary: "Send the caller's account's dead letters again",
        needs_token: true,
        need: need("update", "dlq_message"),
    },
    Operation {
        service: "connectors",
        name: "delete_dlq_message",
        method: "DELETE",
        path: "/v1/connections/management/delete_message",
        params: params![
            b("key", Kind::String, true, "notifications"),
            b("receipt_handles", Kind::Array, true, "ids of the dead letters to drop")
        ],
        summary: "Drop dead letters",
        needs_token: true,
        need: need("delete", "dlq_message"),
    },
    // herald: what is notified, to whom
    Operation {
        service: "herald",
        name: "get_notification_types",
        method: "GET",
        path: "/herald/v2/notification_types",
        params: params![],
        summary: "The notification types garrison sends",
        needs_token: true,
        need: need("list", "notification_type"),
    },
    Operation {
        service: "herald",
        name: "create_subscription",
        method: "POST",
        path: "/herald/v2/{account_id}/subscriptions",
        params: &CREATE_SUBSCRIPTION_PARAMS,
        summary: "Subscribe connections (and users) to a notification type",
        needs_token: true,
        need: need("create", "subscription"),
    },
    Operation {
        service: "herald",
        name: "get_account_subscriptions",
        method: "GET",
        path: "/herald/v2/{account_id}/subscriptions",
        params: params![
            ACCOUNT,
            q("notification_type", Kind::String, "only this type's"),
            q("include_subscribers", Kind::Boolean, "with their subscribers")
        ],
        summary: "The account's subscriptions",
        needs_token: true,
        need: need("list", "subscription"),
    },
    Operation {
        service: "herald",
        name: "get_account_subscription",
        method: "GET",
        path: "/herald/v2/{account_id}/subscriptions/{subscription_id}",
        params: params![ACCOUNT, SUBSCRIPTION_ID, q("include_subscribers", Kind::Boolean, "with its subscribers")],
        summary: "One subscription",
        needs_token: true,
        need: need("get", "subscription"),
    },
    Operation {
        service: "herald",
        name: "update_subscription",
        method: "POST",
        path: "/herald/v2/{account_id}/subscriptions/{subscription_id}",
        params: &UPDATE_SUBSCRIPTION_PARAMS,
        summary: "Change a subscription (what it does not name stays)",
        needs_token: true,
        need: need("update", "subscription"),
    },
    Operation {
        service: "herald",
        name: "batch_delete_subscriptions",
        method: "POST",
        path: "/herald/v2/{account_id}/subscriptions/batch/delete",
        params: params![ACCOUNT, b("ids", Kind::Array, true, "subscription ids")],
        summary: "Delete subscriptions, all or none",
        needs_token: true,
        need: need("delete", "subscription"),
    },
    Operation {
        service: "herald",
        name: "get_account_subscription_subscribers",
        method: "GET",
        path: "/herald/v2/{account_id}/subscriptions/{subscription_id}/subscribers",
        params: params![ACCOUNT, SUBSCRIPTION_ID],
        summary: "A subscription's subscribers",
        needs_token: true,
        need: need("list", "subscriber"),
    },
    Operation {
        service: "herald",
        name: "add_subscriber",
        method: "POST",
        path: "/herald/v2/{account_id}/subscriptions/{subscription_id}/subscribers",
        params: params![
            ACCOUNT,
            SUBSCRIPTION_ID,
            b("subscriber", Kind::String, true, "connection or user id"),
            b("subscriber_type", Kind::String, true, "connection | user")
        ],
        summary: "Add a subscriber",
        needs_token: true,
        need: need("update", "subscription"),
    },
    Operation {
        service: "herald",
        name: "remove_subscriber",
        method: "DELETE",
        path: "/herald/v2/{account_id}/subscriptions/{subscription_id}/subscribers/{subscriber_type}/{subscriber}",
        params: params![ACCOUNT, SUBSCRIPTION_ID, p("subscriber_type", "connection | user"), p("subscriber", "its id")],
        summary: "Remove a subscriber",
        needs_token: true,
        need: need("update", "subscription"),
    },
    // scan_scheduler v2: scan schedules and scan control
    Operation {
        service: "scan_scheduler",
        name: "list_timezones",
        method: "GET",
        path: "/scheduler/v2/timezones",
        params: &[],
        summary: "The time zones a scan schedule may name",
        needs_token: true,
        need: need("list", "timezone"),
    },
    Operation {
        service: "scan_scheduler",
        name: "list_schedules",
        method: "GET",
        path: "/scheduler/v2/{account_id}/{deployment_id}/schedules",
        params: params![
            ACCOUNT,
            SCHED_DEPLOYMENT,
            q("return_fields", Kind::String, "only these fields, comma separated")
        ],
        summary: "A deployment's scan schedules, its default one first",
        needs_token: true,
        need: need("list", "schedule"),
    },
    Operation {
        service: "scan_scheduler",
        name: "create_schedule",
        method: "POST",
        path: "/scheduler/v2/{account_id}/{deployment_id}/schedules",
        params: &SCHEDULE_CREATE,
        summary: "Create a scan schedule (scope, time zone, windows, frequency)",
        needs_token: true,
        need: need("create", "schedule"),
    },
    Operation {
        service: "scan_scheduler",
        name: "get_schedule",
        method: "GET",
        path: "/scheduler/v2/{account_id}/{deployment_id}/schedules/{id}",
        params: params![ACCOUNT, SCHED_DEPLOYMENT, SCHEDULE_ID],
        summary: "A scan schedule",
        needs_token: true,
        need: need("get", "schedule"),
    },
    Operation {
        service: "scan_scheduler",
        name: "update_schedule",
        method: "PUT",
        path: "/scheduler/v2/{account_id}/{deployment_id}/schedules/{id}",
        params: &SCHEDULE_UPDATE,
        summary: "Change a scan schedule (what is not given stays)",
        needs_token: true,
        need: need("update", "schedule"),
    },
    Operation {
        service: "scan_scheduler",
        name: "delete_schedule",
        method: "DELETE",
        path: "/scheduler/v2/{account_id}/{deployment_id}/schedules/{id}",
        params: params![ACCOUNT, SCHED_DEPLOYMENT, SCHEDULE_ID],
        summary: "Delete a scan schedule (not the default one)",
        needs_token: true,
        need: need("delete", "schedule"),
    },
    Operation {
        service: "scan_scheduler",
        name: "stop_scan_schedule",
        method: "PUT",
        path: "/scheduler/v2/{account_id}/{deployment_id}/schedules/{id}/stop",
        params: params![ACCOUNT, SCHED_DEPLOYMENT, SCHEDULE_ID],
        summary: "Stop a schedule's scans until its open window closes",
        needs_token: true,
        need: need("update", "schedule"),
    },
    Operation {
        service: "scan_scheduler",
        name: "get_schedule_summary",
        method: "GET",
        path: "/scheduler/v2/{account_id}/{deployment_id}/schedules/{id}/summary",
        params: params![
            ACCOUNT,
            SCHED_DEPLOYMENT,
            SCHEDULE_ID,
            q("return_fields", Kind::String, "only these fields, comma separated")
        ],
        summary: "A schedule's state now, assets in scope and next window",
        needs_token: true,
        need: need("get", "schedule"),
    },
    Operation {
        service: "scan_scheduler",
        name: "expedite_scan",
        method: "PUT",
        path: "/scheduler/v2/{account_id}/{deployment_id}/scan",
        params: &EXPEDITE,
        summary: "Scan an asset now: its scanners run whatever the windows",
        needs_token: true,
        need: need("update", "scan"),
    },
    Operation {
        service: "scan_scheduler",
        name: "stop_scan_assets",
        method: "PUT",
        path: "/scheduler/v2/{account_id}/{deployment_id}/stop",
        params: &SCAN_ASSET,
        summary: "Stop an asset's scans until the open window closes",
        needs_token: true,
        need: need("update", "scan"),
    },
    // otis: tuning options
    Operation {
        service: "otis",
        name: "create_option",
        method: "POST",
        path: "/otis/v3/{account_id}/options",
        params: &[ACCOUNT, option_body("option"), PREVIEW],
        summary: "Create a tuning option (one per name and scope), or preview its effect with dry_run",
        needs_token: true,
        need: need("create", "option"),
    },
    Operation {
        service: "otis",
        name: "list_options",
        method: "GET",
        path: "/otis/v3/{account_id}/options",
        params: params![ACCOUNT],
        summary: "The account's tuning options, each saying whether garrison applies it",
        needs_token: true,
        need: need("list", "option"),
    },
    Operation {
        service: "otis",
        name: "get_option",
        method: "GET",
        path: "/otis/v3/{account_id}/options/{option_id}",
        params: params![ACCOUNT, OPTION_ID],
        summary: "One tuning option",
        needs_token: true,
        need: need("get", "option"),
    },
    Operation {
        service: "otis",
        name: "update_option",
        method: "PUT",
        path: "/otis/v3/{account_id}/options/{option_id}",
        params: &[ACCOUNT, OPTION_ID, option_body("data"), PREVIEW],
        summary: "Change a tuning option's value, or preview its effect with dry_run",
        needs_token: true,
        need: need("update", "option"),
    },
    Operation {
        service: "otis",
        name: "delete_option",
        method: "DELETE",
        path: "/otis/v3/{account_id}/options/{option_id}",
        params: params![ACCOUNT, OPTION_ID],
        summary: "Delete a tuning option",
        needs_token: true,
        need: need("delete", "option"),
    },
    Operation {
        service: "otis",
        name: "list_cross_protected_networks",
        method: "GET",
        path: "/otis/v3/{account_id}/cross_protected_networks",
        params: &NETWORK_FILTERS,
        summary: "Networks protected from another network (cross_network_protection), with their protector",
        needs_token: true,
        need: need("list", "network"),
    },
    Operation {
        service: "otis",
        name: "list_cross_protecting_networks",
        method: "GET",
        path: "/otis/v3/{account_id}/cross_protecting_networks",
        params: &NETWORK_FILTERS,
        summary: "Networks that protect others, with what they protect",
        needs_token: true,
        need: need("list", "network"),
    },
];

pub fn find(service: &str, name: &str) -> Option<&'static Operation> {
    OPERATIONS.iter().find(|o| o.service == service && o.name == name)
}

pub fn services() -> Vec<&'static str> {
    let mut s: Vec<&str> = OPERATIONS.iter().map(|o| o.service).collect();
    s.dedup();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_params_are_declared_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for op in OPERATIONS {
            assert!(seen.insert((op.service, op.name)), "duplicate {}.{}", op.service, op.name);
            let placeholders: Vec<&str> =
                op.path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
            let declared: Vec<&str> = op.params.iter().filter(|p| p.location == In::Path).map(|p| p.name).collect();
            assert_eq!(placeholders, declared, "{}.{}", op.service, op.name);
        }
    }

    /// Reads are `list`/`get`, whatever the method (a POST that only reads, like
    /// `get_endpoints`, needs no write permission); writes never hide behind a read action.
    #[test]
    fn every_operation_declares_a_fitting_permission() {
        for op in OPERATIONS {
            let n = op.need;
            assert!(crate::permission::ACTIONS.contains(&n.action), "{}: {}", op.name, n.action);
            assert!(!n.resource.is_empty() && n.resource.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            if op.method == "GET" {
                assert!(matches!(n.action, "list" | "get"), "{} reads but needs {}", op.name, n.action);
            }
            if op.method == "DELETE" {
                assert!(
                    matches!(n.action, "delete" | "revoke" | "update"),
                    "{} deletes but needs {}",
                    op.name,
                    n.action
                );
            }
            if n.by == By::RoleOrOwnUser {
                assert!(op.path.contains("{user_id}"), "{}: only a user's own routes are open to that user", op.name);
            }
            let writes = [
                "create_",
                "update_",
                "delete_",
                "grant_",
                "revoke_",
                "add_",
                "remove_",
                "stop_",
                "expedite_",
                "batch_",
                "reenqueue_",
            ];
            if writes.iter().any(|w| op.name.starts_with(w)) {
                assert!(!matches!(n.action, "list" | "get"), "{} writes but needs only {}", op.name, n.action);
            }
        }
        let anyone: Vec<&str> = OPERATIONS.iter().filter(|o| o.need.by == By::AnyCaller).map(|o| o.name).collect();
        assert_eq!(anyone, ["get_token_info"], "only describing one's own token is open to every caller");
    }
}
