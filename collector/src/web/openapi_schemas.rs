//! The JSON schemas of the OpenAPI document: one per domain type the API sends or takes. Their
//! property names are checked against the serialised types by `openapi`'s tests.

use serde_json::{Map, Value, json};

/// A schema for a property written as "integer", "string|null", "array:string", "ref:Ticket",
/// "array:ref:Ticket", "ref:AlertEvent|null", "object" or "object|null".
fn property(kind: &str) -> Value {
    if let Some(inner) = kind.strip_prefix("array:") {
        return json!({"type": "array", "items": property(inner)});
    }
    if let Some(name) = kind.strip_prefix("ref:") {
        if let Some(name) = name.strip_suffix("|null") {
            return json!({"anyOf": [
                {"$ref": format!("#/components/schemas/{name}")},
                {"type": "null"},
            ]});
        }
        return json!({"$ref": format!("#/components/schemas/{name}")});
    }
    match kind.split_once('|') {
        Some((ty, "null")) => json!({"type": [ty, "null"]}),
        _ => json!({"type": kind}),
    }
}

fn object(props: &[(&str, &str)]) -> Value {
    let mut p = Map::new();
    for (name, kind) in props {
        p.insert((*name).to_owned(), property(kind));
    }
    let required: Vec<&str> = props
        .iter()
        .filter(|(_, k)| !k.ends_with("|null"))
        .map(|(n, _)| *n)
        .collect();
    json!({"type": "object", "properties": p, "required": required})
}

/// Properties of a ticket.
pub const TICKET: &[(&str, &str)] = &[
    ("id", "integer"),
    ("agent_id", "string"),
    ("hostname", "string"),
    ("rule_id", "string"),
    ("subject", "string"),
    ("state", "string"),
    ("priority", "integer"),
    ("opened_priority", "integer"),
    ("title", "string"),
    ("occurrences", "integer"),
    ("opened_at_ms", "integer"),
    ("last_seen_at_ms", "integer"),
    ("resolved_at_ms", "integer|null"),
    ("last_value", "number"),
    ("tier", "integer"),
    ("escalated_at_ms", "integer|null"),
    ("assignee", "string"),
    ("acknowledged_at_ms", "integer|null"),
    ("response_due_ms", "integer"),
    ("resolve_due_ms", "integer"),
    ("kb", "string"),
    ("flapping", "boolean"),
    ("parent_id", "integer|null"),
    ("linked_hosts", "integer"),
];

/// Properties of a host.
pub const HOST: &[(&str, &str)] = &[
    ("agent_id", "string"),
    ("hostname", "string"),
    ("os", "string"),
    ("agent_version", "string"),
    ("enrolled_at_ms", "integer"),
    ("last_seen_at_ms", "integer|null"),
    ("last_seq", "integer"),
    ("spool_epoch", "integer"),
    ("snapshots_stored", "integer"),
    ("dropped_snapshots", "integer"),
    ("rejected_snapshots", "integer"),
    ("clock_adjusted_snapshots", "integer"),
    ("clock_skew_ms", "integer"),
    ("revoked", "boolean"),
    ("labels", "array:string"),
    ("same_machine_as", "array:string"),
    ("identity_conflict_at_ms", "integer|null"),
    ("identity_conflict", "string"),
    ("filesystems", "array:ref:Filesystem"),
    ("pending", "array:object"),
    ("system", "object|null"),
    ("patches", "object|null"),
    ("antivirus", "object|null"),
    ("connectivity", "object|null"),
    ("probe_status", "array:object"),
    ("uplink", "object|null"),
    ("last_uplink_failure", "object|null"),
    ("uplink_recovered_at_ms", "integer"),
];

pub const FILESYSTEM: &[(&str, &str)] = &[
    ("mount_point", "string"),
    ("device", "string"),
    ("fs_type", "string"),
    ("total_bytes", "integer"),
    ("used_bytes", "integer"),
    ("available_bytes", "integer"),
    ("used_percent", "number"),
    ("total_inodes", "integer"),
    ("used_inodes", "integer"),
    ("updated_at_ms", "integer"),
];

pub const EVENT: &[(&str, &str)] = &[
    ("cursor", "integer"),
    ("ticket_id", "integer"),
    ("at_ms", "integer"),
    ("kind", "string"),
    ("actor", "string"),
    ("detail", "string"),
    ("observed_at_ms", "integer"),
];

pub const DETAIL: &[(&str, &str)] = &[
    ("ticket", "ref:Ticket"),
    ("timeline", "array:ref:TicketEvent"),
    ("kb_markdown", "string"),
    ("linked", "array:ref:Ticket"),
];

pub const HANDOFF: &[(&str, &str)] = &[
    ("generated_at_ms", "integer"),
    ("since_ms", "integer"),
    ("critical_open", "array:ref:Ticket"),
    ("escalated", "array:ref:Ticket"),
    ("resolved_since", "array:ref:Ticket"),
    ("cut", "object"),
];

pub const SILENCE: &[(&str, &str)] = &[
    ("id", "integer"),
    ("matcher_kind", "string"),
    ("matcher_value", "string"),
    ("starts_at_ms", "integer"),
    ("ends_at_ms", "integer"),
    ("reason", "string"),
    ("created_by", "string"),
];

pub const ALERT_EVENT: &[(&str, &str)] = &[
    ("cursor", "integer"),
    ("at_ms", "integer"),
    ("kind", "string"),
    ("actor", "string"),
    ("detail", "string"),
    ("observed_at_ms", "integer"),
    ("labels", "array:string"),
    ("ticket", "ref:Ticket"),
];

pub const EVENT_PAGE: &[(&str, &str)] = &[
    ("events", "array:ref:AlertEvent"),
    ("next_cursor", "integer"),
];

pub const FEED: &[(&str, &str)] = &[
    ("name", "string"),
    ("kind", "string"),
    ("target", "string"),
    ("cursor", "integer"),
    ("lag", "integer"),
    ("pending", "integer"),
    ("dead_letters", "integer"),
    ("last_error", "string"),
    ("last_error_at_ms", "integer|null"),
    ("last_delivery_at_ms", "integer|null"),
];

pub const DEAD_LETTER: &[(&str, &str)] = &[
    ("feed", "string"),
    ("event_cursor", "integer"),
    ("attempts", "integer"),
    ("last_error", "string"),
    ("failed_at_ms", "integer"),
    ("event", "ref:AlertEvent|null"),
];

pub const FEED_TEST: &[(&str, &str)] = &[("delivered", "boolean"), ("detail", "string")];

/// Properties of the answer of "check now".
pub const CHECK_NOW: &[(&str, &str)] = &[
    ("status", "string"),
    ("agent_id", "string"),
    ("hostname", "string"),
    ("snapshot_at_ms", "integer|null"),
    ("last_seen_at_ms", "integer|null"),
    ("seconds", "number"),
    ("detail", "string"),
];

/// The answer of `POST /api/hosts/{host}/revoke`.
pub const REVOKED: &[(&str, &str)] = &[
    ("agent_id", "string"),
    ("hostname", "string"),
    ("revoked_certificates", "integer"),
];

/// A user (`/api/users`); role is viewer, technician or admin.
pub const USER: &[(&str, &str)] = &[
    ("name", "string"),
    ("role", "string"),
    ("disabled", "boolean"),
    ("created_at_ms", "integer"),
    ("disabled_at_ms", "integer|null"),
];

/// The signed-in caller (`/api/session`); csrf is null for an API token.
pub const SESSION: &[(&str, &str)] = &[
    ("name", "string"),
    ("role", "string"),
    ("csrf", "string|null"),
];

pub const CREATED_USER_TOKEN: &[(&str, &str)] = &[
    ("token", "string"),
    ("name", "string"),
    ("label", "string"),
    ("created_at_ms", "integer"),
];

pub const USER_TOKEN: &[(&str, &str)] = &[
    ("hash_prefix", "string"),
    ("label", "string"),
    ("created_at_ms", "integer"),
];

pub const ENROLLMENT_TOKEN: &[(&str, &str)] = &[
    ("hash", "string"),
    ("label", "string"),
    ("uses_left", "integer"),
    ("uses_total", "integer"),
    ("created_at_ms", "integer"),
    ("expires_at_ms", "integer"),
    ("state", "string"),
    ("revoked_at_ms", "integer|null"),
    ("host_labels", "array:string"),
];

pub const CERTIFICATE: &[(&str, &str)] = &[
    ("fingerprint", "string"),
    ("kind", "string"),
    ("subject", "string"),
    ("hostname", "string"),
    ("issued_at_ms", "integer"),
    ("not_after_ms", "integer"),
    ("revoked_at_ms", "integer|null"),
    ("state", "string"),
];

pub const CERTIFICATE_PAGE: &[(&str, &str)] = &[
    ("total", "integer"),
    ("offset", "integer"),
    ("certificates", "array:ref:Certificate"),
];

pub const CREATED_ENROLLMENT_TOKEN: &[(&str, &str)] = &[
    ("token", "string"),
    ("label", "string"),
    ("uses", "integer"),
    ("expires_at_ms", "integer"),
    ("host_labels", "array:string"),
];

/// Properties of one host of the fleet page.
pub const FLEET_HOST: &[(&str, &str)] = &[
    ("agent_id", "string"),
    ("hostname", "string"),
    ("os", "string"),
    ("agent_version", "string"),
    ("last_seen_at_ms", "integer|null"),
    ("clock_skew_ms", "integer"),
    ("labels", "array:string"),
    ("revoked", "boolean"),
    ("open_tickets", "integer"),
    ("worst_priority", "integer|null"),
    ("health", "string"),
];

/// Properties of the queue's counts (`/api/tickets/summary`).
pub const TICKET_SUMMARY: &[(&str, &str)] = &[
    ("total", "integer"),
    ("p1", "integer"),
    ("p2", "integer"),
    ("p3", "integer"),
    ("p4", "integer"),
    ("outages", "integer"),
];

pub const FLEET_PAGE: &[(&str, &str)] = &[
    ("hosts", "array:ref:FleetHost"),
    ("total", "integer"),
    ("page", "integer"),
    ("per_page", "integer"),
    ("pages", "integer"),
];

pub const DISK_POINT: &[(&str, &str)] = &[
    ("at_ms", "integer"),
    ("used_bytes", "integer"),
    ("available_bytes", "integer"),
    ("used_percent", "number"),
];

pub const MOUNT_HISTORY: &[(&str, &str)] = &[
    ("mount_point", "string"),
    ("samples", "array:ref:DiskPoint"),
    ("hours_to_full", "number|null"),
    ("full_at_ms", "integer|null"),
];

pub const DISK_HISTORY: &[(&str, &str)] = &[
    ("agent_id", "string"),
    ("hostname", "string"),
    ("days", "integer"),
    ("since_ms", "integer"),
    ("mounts", "array:ref:MountHistory"),
];

pub const RULE_TREND: &[(&str, &str)] = &[
    ("rule_id", "string"),
    ("openings", "integer"),
    ("hosts", "integer"),
];

pub const HOST_TREND: &[(&str, &str)] = &[
    ("agent_id", "string"),
    ("hostname", "string"),
    ("openings", "integer"),
    ("rules", "integer"),
];

pub const OUTAGE_TREND: &[(&str, &str)] = &[
    ("ticket_id", "integer"),
    ("title", "string"),
    ("rule_id", "string"),
    ("state", "string"),
    ("priority", "integer"),
    ("opened_at_ms", "integer"),
    ("resolved_at_ms", "integer|null"),
    ("hosts", "integer"),
];

pub const PRIORITY_TREND: &[(&str, &str)] = &[
    ("priority", "integer"),
    ("opened", "integer"),
    ("acknowledged", "integer"),
    ("mean_ack_ms", "integer|null"),
    ("ack_in_time", "integer"),
    ("response_sla_ms", "integer"),
    ("resolved", "integer"),
    ("mean_resolve_ms", "integer|null"),
    ("resolve_in_time", "integer"),
    ("resolve_sla_ms", "integer"),
];

pub const TRENDS: &[(&str, &str)] = &[
    ("generated_at_ms", "integer"),
    ("days", "integer"),
    ("since_ms", "integer"),
    ("rules", "array:ref:RuleTrend"),
    ("hosts", "array:ref:HostTrend"),
    ("outages", "array:ref:OutageTrend"),
    ("response", "array:ref:PriorityTrend"),
];

/// Every schema, by name.
pub fn schemas() -> Value {
    let mut all = base_schemas();
    if let (Value::Object(all), Value::Object(more)) = (&mut all, dashboard_schemas()) {
        all.extend(more);
    }
    all
}

/// The schemas of the dashboard's routes (`web::dashboard_api`, `web::stream`).
fn dashboard_schemas() -> Value {
    let mut all = json!({
        "FleetHost": object(FLEET_HOST),
        "FleetPage": object(FLEET_PAGE),
        "DiskPoint": object(DISK_POINT),
        "MountHistory": object(MOUNT_HISTORY),
        "DiskHistory": object(DISK_HISTORY),
        "RuleTrend": object(RULE_TREND),
        "HostTrend": object(HOST_TREND),
        "OutageTrend": object(OUTAGE_TREND),
        "PriorityTrend": object(PRIORITY_TREND),
        "Trends": object(TRENDS),
        "EventStream": {"type": "string",
            "description": "text/event-stream: `event: ticket`, `id: <cursor>`, `data: <AlertEvent JSON>`; \
                            first `event: hello` with the starting cursor; the connection ends after 20 s \
                            and EventSource resumes with Last-Event-ID"},
    });
    if let Value::Object(m) = &mut all {
        m.extend(account_schemas());
    }
    all
}

fn base_schemas() -> Value {
    let list = |item: &str| json!({"type": "array", "items": property(&format!("ref:{item}"))});
    json!({
        "Error": object(&[("error", "string")]),
        "Health": object(&[("status", "string")]),
        "OpenApi": {"type": "object"},
        "Metrics": {"type": "string",
            "description": "Prometheus text exposition format 0.0.4 (docs/metrics.md)"},
        "Ticket": object(TICKET),
        "TicketList": list("Ticket"),
        "TicketSummary": object(TICKET_SUMMARY),
        "TicketEvent": object(EVENT),
        "TicketDetail": object(DETAIL),
        "Host": object(HOST),
        "HostList": list("Host"),
        "Filesystem": object(FILESYSTEM),
        "Handoff": object(HANDOFF),
        "Silence": object(SILENCE),
        "SilenceList": list("Silence"),
        "AlertEvent": object(ALERT_EVENT),
        "EventPage": object(EVENT_PAGE),
        "Labels": object(&[("labels", "array:string")]),
        "Feed": object(FEED),
        "FeedList": list("Feed"),
        "FeedTest": object(FEED_TEST),
        "CheckNow": object(CHECK_NOW),
        "Revoked": object(REVOKED),
        "DeadLetter": object(DEAD_LETTER),
        "DeadLetterList": list("DeadLetter"),
        "Replayed": object(&[("replayed", "integer")]),
        "Replay": {
            "type": "object",
            "properties": {"event_cursor": {"type": "integer",
                "description": "only the dead letter of this event; absent: all of the feed"}},
        },
        "Action": {
            "type": "object",
            "properties": {
                "action": {"type": "string", "enum": ["acknowledge", "ack", "assign", "comment", "resolve", "reopen", "close"]},
                "text": {"type": "string", "maxLength": crate::tickets::MAX_ACTION_TEXT},
            },
            "required": ["action"],
        },
        "NewSilence": {
            "type": "object",
            "description": "exactly one of host, label, rule",
            "properties": {
                "host": {"type": "string"}, "label": {"type": "string"}, "rule": {"type": "string"},
                "starts_at_ms": {"type": "integer"}, "ends_at_ms": {"type": "integer"},
                "reason": {"type": "string"},
            },
            "required": ["ends_at_ms"],
        },
    })
}

/// The schemas of accounts, sessions and tokens (a macro of their own: one `json!` of every
/// schema would pass the macro recursion limit).
fn account_schemas() -> Map<String, Value> {
    let list = |item: &str| json!({"type": "array", "items": property(&format!("ref:{item}"))});
    let all = json!({
        "User": object(USER),
        "UserList": list("User"),
        "Session": object(SESSION),
        "SignedOut": object(&[("signed_out", "boolean")]),
        "CreatedUserToken": object(CREATED_USER_TOKEN),
        "UserToken": object(USER_TOKEN),
        "UserTokenList": list("UserToken"),
        "EnrollmentToken": object(ENROLLMENT_TOKEN),
        "EnrollmentTokenList": list("EnrollmentToken"),
        "CreatedEnrollmentToken": object(CREATED_ENROLLMENT_TOKEN),
        "Certificate": object(CERTIFICATE),
        "CertificatePage": object(CERTIFICATE_PAGE),
        "Login": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "password": {"type": "string"}},
            "required": ["name", "password"],
        },
        "NewUser": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 64,
                    "description": "letters, digits and . _ - @"},
                "role": {"type": "string", "enum": ["viewer", "technician", "admin"]},
                "password": {"type": "string", "minLength": 10, "maxLength": 1024},
            },
            "required": ["name", "role", "password"],
        },
        "NewUserToken": {
            "type": "object",
            "properties": {"label": {"type": "string", "maxLength": 255}},
        },
        "NewEnrollmentToken": {
            "type": "object",
            "properties": {
                "uses": {"type": "integer", "minimum": 1, "maximum": 100000,
                    "description": "how many agents may enroll with it (default 1)"},
                "ttl": {"type": "string", "description": "how long it is valid, e.g. 30m, 24h (default), 7d"},
                "label": {"type": "string", "maxLength": 255},
                "host_labels": {"type": "array", "maxItems": 32,
                    "items": {"type": "string", "maxLength": 64},
                    "description": "labels every agent enrolled with it starts with (its group)"},
            },
        },
    });
    match all {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
