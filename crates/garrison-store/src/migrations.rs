//! Schema migrations in the SQL subset SQLite and PostgreSQL share (TEXT, BIGINT,
//! `$n` placeholders). Each entry runs once, in order, recorded in `schema_migrations`.
//! A statement starting with `POSTGRES_ONLY` runs on PostgreSQL alone (SQLite has no
//! equivalent and needs none).

pub const POSTGRES_ONLY: &str = "postgres: ";

pub const MIGRATIONS: &[(i64, &str, &[&str])] = &[
    (
        1,
        "tenants, credentials, deployments",
        &[
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            "CREATE TABLE accounts (id TEXT PRIMARY KEY, name TEXT NOT NULL, parent_id TEXT, sealed_external_id TEXT NOT NULL, active BIGINT NOT NULL, version BIGINT NOT NULL, created_at BIGINT NOT NULL, created_by TEXT NOT NULL, modified_at BIGINT NOT NULL, modified_by TEXT NOT NULL)",
            "CREATE INDEX accounts_parent ON accounts (parent_id)",
            "CREATE TABLE users (id TEXT PRIMARY KEY, account_id TEXT NOT NULL, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE, created_at BIGINT NOT NULL, created_by TEXT NOT NULL)",
            "CREATE INDEX users_account ON users (account_id)",
            "CREATE TABLE access_keys (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, account_id TEXT NOT NULL, secret_hash TEXT NOT NULL, label TEXT, created_at BIGINT NOT NULL, created_by TEXT NOT NULL)",
            "CREATE INDEX access_keys_user ON access_keys (user_id)",
            "CREATE TABLE credentials (id TEXT PRIMARY KEY, account_id TEXT NOT NULL, name TEXT NOT NULL, aws_account_id TEXT NOT NULL, sealed_secret TEXT NOT NULL, created_at BIGINT NOT NULL, created_by TEXT NOT NULL)",
            "CREATE INDEX credentials_account ON credentials (account_id)",
            "CREATE TABLE deployments (id TEXT PRIMARY KEY, account_id TEXT NOT NULL, version BIGINT NOT NULL, body TEXT NOT NULL)",
            "CREATE INDEX deployments_account ON deployments (account_id)",
            "CREATE TABLE deployment_credentials (deployment_id TEXT NOT NULL, credential_id TEXT NOT NULL, PRIMARY KEY (deployment_id, credential_id))",
            "CREATE INDEX deployment_credentials_cred ON deployment_credentials (credential_id)",
        ],
    ),
    (
        2,
        "change counters for read caches",
        &[
            "CREATE TABLE change_counters (name TEXT PRIMARY KEY, generation BIGINT NOT NULL)",
            "INSERT INTO change_counters (name, generation) VALUES ('deployments', 0)",
        ],
    ),
    (
        3,
        "discovery snapshots",
        &[
            "CREATE TABLE snapshots (deployment_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, taken_at BIGINT NOT NULL, body TEXT NOT NULL)",
        ],
    ),
    (
        4,
        "protection: owned resources, audit log, reports and generations, removals",
        &[
            "CREATE TABLE owned_resources (deployment_id TEXT NOT NULL, key TEXT NOT NULL, account_id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (deployment_id, key))",
            "CREATE TABLE audit_log (id TEXT PRIMARY KEY, at_ms BIGINT NOT NULL, account_id TEXT NOT NULL, deployment_id TEXT NOT NULL, generation BIGINT NOT NULL, region TEXT NOT NULL, call TEXT NOT NULL, resource TEXT NOT NULL, outcome TEXT NOT NULL, message TEXT)",
            "CREATE INDEX audit_log_deployment ON audit_log (deployment_id, at_ms)",
            "CREATE TABLE protection (deployment_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, generation BIGINT NOT NULL, updated BIGINT NOT NULL, body TEXT)",
            "CREATE TABLE removals (deployment_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, requested_at BIGINT NOT NULL, requested_by TEXT NOT NULL, body TEXT NOT NULL)",
        ],
    ),
    (
        5,
        "collector: input set aside with the reason",
        &[
            "CREATE TABLE dead_letters (id TEXT PRIMARY KEY, at_ms BIGINT NOT NULL, account_id TEXT NOT NULL, deployment_id TEXT NOT NULL, source TEXT NOT NULL, reason TEXT NOT NULL, excerpt TEXT NOT NULL)",
            "CREATE INDEX dead_letters_deployment ON dead_letters (deployment_id, at_ms)",
        ],
    ),
    (
        6,
        "work leases: which worker reconciles a deployment, until when, under which fence; when it is due again",
        &[
            "CREATE TABLE leases (deployment_id TEXT PRIMARY KEY, holder TEXT NOT NULL, previous_holder TEXT, expires_at_ms BIGINT NOT NULL, fence BIGINT NOT NULL, done_version BIGINT NOT NULL, next_due_ms BIGINT NOT NULL)",
        ],
    ),
    (
        7,
        "rate budgets shared by every process: one token bucket per AWS account, region and service",
        &[
            "CREATE TABLE rate_budgets (key TEXT PRIMARY KEY, tokens DOUBLE PRECISION NOT NULL, at_ms DOUBLE PRECISION NOT NULL)",
        ],
    ),
    (
        8,
        "rate budgets are not logged: each AWS call takes a token, and a token bucket lost in a crash only refills",
        // Every AWS call of every worker writes here: without the write-ahead log a take
        // is not a durable commit (no flush to disk), which is all a rate budget needs.
        &["postgres: ALTER TABLE rate_budgets SET UNLOGGED"],
    ),
    (
        9,
        "every deployment has its work lease row from its creation; those created before get theirs",
        &[
            "INSERT INTO leases (deployment_id, holder, previous_holder, expires_at_ms, fence, done_version, next_due_ms) \
             SELECT d.id, '', NULL, 0, 0, -1, 0 FROM deployments d WHERE NOT EXISTS (SELECT 1 FROM leases l WHERE l.deployment_id = d.id)",
        ],
    ),
    (
        10,
        "users: a global role, active flag and version; emails unique within an account, not across tenants",
        // The old table made an email unique across every tenant, so creating a user told one
        // tenant that another used that address. Rebuilt (SQLite cannot drop a constraint).
        // The first user of each account is its Administrator (the reference's rule); others
        // keep what they could do bar managing other users: Power User.
        &[
            "CREATE TABLE users_v10 (id TEXT PRIMARY KEY, account_id TEXT NOT NULL, name TEXT NOT NULL, email TEXT NOT NULL, role_id TEXT NOT NULL, active BIGINT NOT NULL, version BIGINT NOT NULL, created_at BIGINT NOT NULL, created_by TEXT NOT NULL, modified_at BIGINT NOT NULL, modified_by TEXT NOT NULL, UNIQUE (account_id, email))",
            "INSERT INTO users_v10 (id, account_id, name, email, role_id, active, version, created_at, created_by, modified_at, modified_by) \
             SELECT u.id, u.account_id, u.name, u.email, \
               CASE WHEN u.id = (SELECT f.id FROM users f WHERE f.account_id = u.account_id ORDER BY f.created_at, f.id LIMIT 1) \
                 THEN '4389AB00-BBCC-4EB1-83E9-7A906A452BF0' ELSE '2A33175D-86EF-44B5-AA39-C9549F6306DF' END, \
               1, 1, u.created_at, u.created_by, u.created_at, u.created_by FROM users u",
            "DROP TABLE users",
            "ALTER TABLE users_v10 RENAME TO users",
            "CREATE INDEX users_account ON users (account_id)",
        ],
    ),
    (
        11,
        "audit log: the plan key of the resource a write is for (write-ahead entries are completed by id)",
        &["ALTER TABLE audit_log ADD COLUMN item_key TEXT"],
    ),
    (
        12,
        "what the collector last received per deployment and input path (EventBridge events, trail files)",
        &[
            "CREATE TABLE feed_seen (deployment_id TEXT NOT NULL, path TEXT NOT NULL, account_id TEXT NOT NULL, at_ms BIGINT NOT NULL, PRIMARY KEY (deployment_id, path))",
        ],
    ),
    (
        13,
        "organization enrollments: which units of an AWS organization a tenant protects, and how",
        &[
            "CREATE TABLE enrollments (id TEXT PRIMARY KEY, account_id TEXT NOT NULL, version BIGINT NOT NULL, body TEXT NOT NULL)",
            "CREATE INDEX enrollments_account ON enrollments (account_id)",
        ],
    ),
    (
        14,
        "security findings (GuardDuty, Inspector) per deployment, one row per finding however often it is said",
        &[
            "CREATE TABLE findings (deployment_id TEXT NOT NULL, id TEXT NOT NULL, account_id TEXT NOT NULL, source TEXT NOT NULL, severity BIGINT NOT NULL, status TEXT NOT NULL, last_seen_ms BIGINT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (deployment_id, id))",
            "CREATE INDEX findings_account ON findings (account_id, severity, last_seen_ms)",
        ],
    ),
    (
        15,
        "notifications: webhook connections (secrets sealed), subscriptions, and the delivery outbox with its dead letters",
        &[
            "CREATE TABLE connections (id TEXT PRIMARY KEY, account_id TEXT NOT NULL, body TEXT NOT NULL, sealed TEXT NOT NULL)",
            "CREATE INDEX connections_account ON connections (account_id)",
            "CREATE TABLE subscriptions (id TEXT PRIMARY KEY, account_id TEXT NOT NULL, notification_type TEXT NOT NULL, body TEXT NOT NULL)",
            "CREATE INDEX subscriptions_account ON subscriptions (account_id, notification_type)",
            "CREATE TABLE deliveries (id TEXT PRIMARY KEY, notice_id TEXT NOT NULL, account_id TEXT NOT NULL, connection_id TEXT NOT NULL, notice_type TEXT NOT NULL, body TEXT NOT NULL, state TEXT NOT NULL, attempts BIGINT NOT NULL, next_ms BIGINT NOT NULL, last_error TEXT, created_ms BIGINT NOT NULL, done_ms BIGINT)",
            "CREATE INDEX deliveries_due ON deliveries (state, next_ms)",
            "CREATE INDEX deliveries_account ON deliveries (account_id, state, created_ms)",
        ],
    ),
    (
        16,
        "tuning options (otis): one value per account, option name and scope",
        &[
            "CREATE TABLE tuning_options (account_id TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (account_id, id))",
        ],
    ),
    (
        17,
        "scan schedules (scan_scheduler v2) per deployment, and the scans expedited or stopped per asset",
        &[
            "CREATE TABLE scan_schedules (deployment_id TEXT NOT NULL, id TEXT NOT NULL, account_id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (deployment_id, id))",
            "CREATE TABLE scan_controls (deployment_id TEXT NOT NULL, asset_key TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (deployment_id, asset_key))",
        ],
    ),
    (
        18,
        "the appliance channel: one-time bootstrap tokens bound to their instances, registered appliances with their credentials (hashes only), refused registrations, health items per deployment, and the replacements of silent appliances in progress",
        &[
            "CREATE TABLE appliance_bootstraps (token_hash TEXT PRIMARY KEY, account_id TEXT NOT NULL, deployment_id TEXT NOT NULL, appliance_key TEXT NOT NULL, role TEXT NOT NULL, launch_token TEXT NOT NULL, instance_id TEXT, minted_ms BIGINT NOT NULL, expires_ms BIGINT NOT NULL, used_ms BIGINT)",
            "CREATE INDEX appliance_bootstraps_launch ON appliance_bootstraps (deployment_id, launch_token)",
            "CREATE TABLE appliances (id TEXT PRIMARY KEY, account_id TEXT NOT NULL, deployment_id TEXT NOT NULL, appliance_key TEXT NOT NULL, instance_id TEXT NOT NULL, role TEXT NOT NULL, registered_ms BIGINT NOT NULL, last_heartbeat_ms BIGINT, body TEXT NOT NULL, credential_hash TEXT NOT NULL UNIQUE, revoked_ms BIGINT)",
            "CREATE INDEX appliances_deployment ON appliances (deployment_id, revoked_ms)",
            "CREATE TABLE appliance_refusals (id TEXT PRIMARY KEY, account_id TEXT NOT NULL, deployment_id TEXT NOT NULL, instance_id TEXT NOT NULL, reason TEXT NOT NULL, at_ms BIGINT NOT NULL)",
            "CREATE INDEX appliance_refusals_deployment ON appliance_refusals (deployment_id, at_ms)",
            "CREATE TABLE health_items (deployment_id TEXT NOT NULL, item_key TEXT NOT NULL, account_id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (deployment_id, item_key))",
            "CREATE TABLE appliance_replacements (deployment_id TEXT NOT NULL, appliance_key TEXT NOT NULL, account_id TEXT NOT NULL, old_instance_id TEXT NOT NULL, tries BIGINT NOT NULL, state TEXT NOT NULL, updated_ms BIGINT NOT NULL, PRIMARY KEY (deployment_id, appliance_key))",
        ],
    ),
    (
        19,
        "aims roles of an account (custom roles: name and permissions); a user holds one role id, a global role's or one of these, or none",
        &[
            "CREATE TABLE roles (id TEXT PRIMARY KEY, account_id TEXT NOT NULL, name TEXT NOT NULL, permissions TEXT NOT NULL, version BIGINT NOT NULL, created_at BIGINT NOT NULL, created_by TEXT NOT NULL, modified_at BIGINT NOT NULL, modified_by TEXT NOT NULL, UNIQUE (account_id, name))",
            "CREATE INDEX users_role ON users (account_id, role_id)",
        ],
    ),
    (
        20,
        "single sign-on: logins in progress (by a hash of their state: each is taken once) and dashboard sessions (by a hash of their cookie), each with its CSRF token",
        &[
            "CREATE TABLE sso_logins (state_hash TEXT PRIMARY KEY, nonce TEXT NOT NULL, pkce_verifier TEXT NOT NULL, created_ms BIGINT NOT NULL)",
            "CREATE TABLE web_sessions (id_hash TEXT PRIMARY KEY, account_id TEXT NOT NULL, user_id TEXT NOT NULL, csrf TEXT NOT NULL, created_ms BIGINT NOT NULL, expires_ms BIGINT NOT NULL)",
            "CREATE INDEX web_sessions_user ON web_sessions (account_id, user_id)",
        ],
    ),
    (
        21,
        "an account's deployments and credentials read a page at a time in list order (keyset paging), whatever the account's size",
        &[
            "CREATE INDEX deployments_account_order ON deployments (account_id, id)",
            "DROP INDEX deployments_account",
            "CREATE INDEX credentials_account_order ON credentials (account_id, created_at, id)",
            "DROP INDEX credentials_account",
        ],
    ),
    (
        22,
        "owned resources of one kind across deployments (the collector's audit queues) found by their key, not by reading every deployment",
        &["CREATE INDEX owned_resources_key ON owned_resources (key, deployment_id)"],
    ),
    (
        23,
        "which shape of the deployment JSON a row's body was written in: a body in the current shape is answered as stored",
        &["ALTER TABLE deployments ADD COLUMN format BIGINT NOT NULL DEFAULT 0"],
    ),
];
