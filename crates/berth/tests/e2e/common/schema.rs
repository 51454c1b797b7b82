//! GitHub's published descriptions as the judge of Berth's answers: every `/api/v3` answer the
//! suites' [`Api`](super::github::Api) client receives is validated against the response
//! schema GitHub's OpenAPI description (npm `@octokit/openapi`, api.github.com) gives its
//! operation and status (GitHub Enterprise Server 3.19's for operations only it has, such as
//! `POST /admin/users`), and every webhook payload the test receivers get against GitHub's
//! webhook schemas (npm `@octokit/openapi-webhooks`). Both are installed, at pinned versions,
//! by `scripts/test` into `tests/node/node_modules` (`npm ci` there does it by hand).
//!
//! Operations Berth has and GitHub does not (storage quotas, policies, admin) are Berth's own
//! and not judged here. An error status an operation does not list is judged against GitHub's
//! `basic-error` with a `message`; an unlisted success status is a violation.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use jsonschema::{Draft, Registry, Validator};
use serde_json::{Value, json};

/// Where the REST descriptions' components live for `$ref`s: api.github.com's, and GitHub
/// Enterprise Server's for the operations only it has (`POST /admin/users`, …).
const REST: &str = "https://rest.github.invalid/description";
const REST_GHES: &str = "https://ghes.github.invalid/description";
/// The GitHub Enterprise Server release whose description judges GHES-only operations.
const GHES: &str = "ghes-3.19";
/// Where the webhook description's components live.
const HOOKS: &str = "https://webhooks.github.invalid/description";

fn description(package: &str, file: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/node/node_modules/@octokit")
        .join(package)
        .join(format!("generated/{file}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "GitHub's description {} is missing ({e}): scripts/test installs it; by hand: \
             (cd crates/berth/tests/node && npm ci)",
            path.display()
        )
    });
    serde_json::from_str(&text).expect("GitHub's description is JSON")
}

/// Rewrites an OpenAPI 3.0 schema tree into JSON Schema: `nullable: true` allows `null`,
/// and local `$ref`s point into the registered document at `base`.
fn to_json_schema(value: &mut Value, base: &str, openapi_30: bool) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get_mut("$ref")
                && reference.starts_with("#/")
            {
                *reference = format!("{base}{reference}");
            }
            for child in map.values_mut() {
                to_json_schema(child, base, openapi_30);
            }
            if openapi_30 && map.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(Value::Array(choices)) = map.get_mut("enum")
                    && !choices.contains(&Value::Null)
                {
                    choices.push(Value::Null);
                }
                match map.get_mut("type") {
                    Some(Value::String(kind)) => {
                        let kind = std::mem::take(kind);
                        map.insert("type".into(), json!([kind, "null"]));
                    }
                    _ => {
                        let inner = Value::Object(std::mem::take(map));
                        map.insert("anyOf".into(), json!([inner, {"type": "null"}]));
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                to_json_schema(item, base, openapi_30);
            }
        }
        _ => {}
    }
}

struct Rest {
    /// Where its components are registered.
    base: &'static str,
    registry: Registry<'static>,
    /// Path template → its segments and its operations (method → responses, rewritten).
    paths: Vec<(Vec<String>, Value)>,
    responses: Value,
    parameters: Value,
    validators: Mutex<HashMap<String, &'static Validator>>,
}

struct Hooks {
    registry: Registry<'static>,
    /// The names of GitHub's webhook schemas (`webhook-package-published`, …).
    names: std::collections::HashSet<String>,
    validators: Mutex<HashMap<String, &'static Validator>>,
}

fn rest() -> &'static Rest {
    static DOTCOM: OnceLock<Rest> = OnceLock::new();
    DOTCOM.get_or_init(|| load_rest("api.github.com", REST))
}

fn ghes() -> &'static Rest {
    static ENTERPRISE: OnceLock<Rest> = OnceLock::new();
    ENTERPRISE.get_or_init(|| load_rest(GHES, REST_GHES))
}

fn load_rest(file: &str, base: &'static str) -> Rest {
    let mut document = description("openapi", file);
    to_json_schema(&mut document, base, true);
    let paths = document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .map(|(template, operations)| {
            let segments = template.split('/').map(str::to_owned).collect();
            (segments, operations.clone())
        })
        .collect();
    let responses = document["components"]["responses"].clone();
    let parameters = document["components"]["parameters"].clone();
    let root = json!({"components": {"schemas": document["components"]["schemas"].clone()}});
    let registry = Registry::new()
        .draft(Draft::Draft4)
        .add(base, root)
        .expect("GitHub's REST schemas register")
        .prepare()
        .expect("GitHub's REST schemas resolve");
    Rest {
        base,
        registry,
        paths,
        responses,
        parameters,
        validators: Mutex::new(HashMap::new()),
    }
}

fn hooks() -> &'static Hooks {
    static HOOKS_DESCRIPTION: OnceLock<Hooks> = OnceLock::new();
    HOOKS_DESCRIPTION.get_or_init(|| {
        let mut document = description("openapi-webhooks", "api.github.com");
        to_json_schema(&mut document, HOOKS, false);
        let schemas = document["components"]["schemas"].clone();
        let names = schemas
            .as_object()
            .expect("schemas")
            .keys()
            .cloned()
            .collect();
        let root = json!({"components": {"schemas": schemas}});
        let registry = Registry::new()
            .draft(Draft::Draft202012)
            .add(HOOKS, root)
            .expect("GitHub's webhook schemas register")
            .prepare()
            .expect("GitHub's webhook schemas resolve");
        Hooks {
            registry,
            names,
            validators: Mutex::new(HashMap::new()),
        }
    })
}

fn compiled(
    cache: &Mutex<HashMap<String, &'static Validator>>,
    key: &str,
    build: impl FnOnce() -> Validator,
) -> &'static Validator {
    let mut cache = cache.lock().expect("validator cache");
    cache
        .entry(key.to_owned())
        .or_insert_with(|| Box::leak(Box::new(build())))
}

fn violations(validator: &Validator, body: &Value) -> Option<String> {
    let errors: Vec<String> = validator
        .iter_errors(body)
        .take(12)
        .map(|error| format!("  at {}: {}", error.instance_path(), error))
        .collect();
    (!errors.is_empty()).then(|| errors.join("\n"))
}

/// GitHub's error object, with the `message` every GitHub error has.
fn basic_error(rest: &Rest) -> Value {
    json!({
        "allOf": [{"$ref": format!("{}#/components/schemas/basic-error", rest.base)}],
        "required": ["message"],
    })
}

/// Whether `segment` can be the path parameter `name` of `operation` (an operation without
/// this method, or a parameter without a schema, takes any segment): `/user/tokens` is not
/// GitHub's `/user/{account_id}`, whose id is an integer.
fn fits(rest: &Rest, operation: &Value, name: &str, segment: &str) -> bool {
    if segment.is_empty() {
        return false;
    }
    let declared = operation["parameters"].as_array().and_then(|parameters| {
        parameters
            .iter()
            .map(|p| match p["$ref"].as_str() {
                Some(reference) => &rest.parameters[reference.rsplit('/').next().unwrap_or("")],
                None => p,
            })
            .find(|p| p["name"] == name && p["in"] == "path")
    });
    match declared.map(|p| &p["schema"]["type"]) {
        Some(Value::String(kind)) if kind == "integer" => {
            segment.bytes().all(|b| b.is_ascii_digit())
        }
        _ => true,
    }
}

/// The schema GitHub's description gives `method path` answering `status`: `Ok(None)` when
/// GitHub has no such operation (Berth's own), `Ok(Some(None))` when the answer has no body.
fn response_schema(
    rest: &Rest,
    method: &str,
    path: &str,
    status: u16,
) -> Result<Option<Option<Value>>, String> {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    let method = method.to_ascii_lowercase();
    let matched = rest
        .paths
        .iter()
        .filter(|(template, operations)| {
            template.len() == segments.len()
                && template.iter().zip(&segments).all(|(t, s)| {
                    match t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                        Some(name) => fits(rest, &operations[&method], name, s),
                        None => t == s,
                    }
                })
        })
        // The most literal template wins: `/user/packages` over `/users/{username}`.
        .max_by_key(|(template, _)| template.iter().filter(|t| !t.starts_with('{')).count());
    let Some((template, operations)) = matched else {
        return Ok(None);
    };
    let Some(operation) = operations.get(&method) else {
        return Ok(None);
    };
    let mut response = operation["responses"].get(status.to_string()).cloned();
    if let Some(Value::String(reference)) = response.as_ref().and_then(|r| r.get("$ref")).cloned() {
        let name = reference.rsplit('/').next().unwrap_or_default();
        response = rest.responses.get(name).cloned();
    }
    let Some(response) = response else {
        if status >= 400 {
            return Ok(Some(Some(basic_error(rest))));
        }
        return Err(format!(
            "GitHub's {method} {} never answers {status}",
            template.join("/")
        ));
    };
    if response.get("content").is_none() && status >= 400 {
        // GitHub describes some refusals without a body; it sends its error object anyway.
        return Ok(Some(Some(basic_error(rest))));
    }
    let schema = response["content"].as_object().and_then(|content| {
        content
            .iter()
            .find(|(media, _)| media.contains("json"))
            .map(|(_, c)| c["schema"].clone())
    });
    Ok(Some(schema))
}

/// Checks one `/api/v3` answer (`path` below `/api/v3`, `body` `null` when empty) against
/// GitHub's description; what is wrong, if anything.
pub fn check_rest(method: &str, path: &str, status: u16, body: &Value) -> Option<String> {
    if status == 304 {
        return None;
    }
    // api.github.com's description first; GitHub Enterprise Server's for what only it has.
    let (rest, answer) = match response_schema(rest(), method, path, status) {
        Ok(None) => (ghes(), response_schema(ghes(), method, path, status)),
        answer => (rest(), answer),
    };
    let schema = match answer {
        Ok(None) => return None,
        Ok(Some(None)) => {
            return (!body.is_null()).then(|| {
                format!("{method} {path} {status}: GitHub answers no body, Berth sent {body}")
            });
        }
        Ok(Some(Some(schema))) => schema,
        Err(problem) => return Some(problem),
    };
    let key = format!(
        "{method} {} {status}",
        serde_json::to_string(&schema).unwrap()
    );
    let validator = compiled(&rest.validators, &key, || {
        jsonschema::options()
            .with_draft(Draft::Draft4)
            .with_registry(&rest.registry)
            .should_validate_formats(true)
            .build(&schema)
            .unwrap_or_else(|e| panic!("GitHub's schema for {method} {path} {status}: {e}"))
    });
    violations(validator, body).map(|found| {
        format!(
            "{method} /api/v3{path} {status} does not match GitHub's schema:\n{found}\nbody: {body}"
        )
    })
}

/// Checks one webhook payload of event `event` (the `X-GitHub-Event` header) against
/// GitHub's webhook schemas. Events or actions GitHub does not describe (Berth's `deleted`
/// package events) are Berth's own: `None`.
pub fn check_hook(event: &str, payload: &Value) -> Option<String> {
    let name = match payload["action"].as_str() {
        Some(action) => format!("webhook-{}-{action}", event.replace('_', "-")),
        None => format!("webhook-{}", event.replace('_', "-")),
    };
    let hooks = hooks();
    if !hooks.names.contains(&name) {
        return None;
    }
    let validator = compiled(&hooks.validators, &name, || {
        jsonschema::options()
            .with_draft(Draft::Draft202012)
            .with_registry(&hooks.registry)
            .should_validate_formats(true)
            .build(&json!({"$ref": format!("{HOOKS}#/components/schemas/{name}")}))
            .unwrap_or_else(|e| panic!("GitHub's webhook schema {name}: {e}"))
    });
    violations(validator, payload).map(|found| {
        format!("{event} payload does not match GitHub's {name}:\n{found}\npayload: {payload}")
    })
}

/// Panics (failing the test) when [`check_rest`] finds anything, unless
/// `BERTH_SCHEMA_REPORT` names a file to append findings to instead (a survey of a whole run).
pub fn assert_rest(method: &str, path: &str, status: u16, body: &Value) {
    if let Some(problem) = check_rest(method, path, status, body) {
        report(&problem);
    }
}

/// Fails the test with `problem`, or appends it to the file `BERTH_SCHEMA_REPORT` names.
pub fn report(problem: &str) {
    match std::env::var_os("BERTH_SCHEMA_REPORT") {
        Some(file) => {
            use std::io::Write;
            let mut out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
                .expect("schema report");
            writeln!(out, "{problem}\n---").expect("schema report");
        }
        None => panic!("{problem}"),
    }
}

/// `response` to `method path` (`path` below `/api/v3`), judged by [`check_rest`] when its
/// body is JSON (or empty), handed back unread: for tests that look at an answer's status and
/// headers through their own HTTP calls.
pub async fn judged(method: &str, path: &str, response: reqwest::Response) -> reqwest::Response {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("the answer's body");
    let body = if bytes.is_empty() {
        Some(Value::Null)
    } else {
        serde_json::from_slice(&bytes).ok()
    };
    if let Some(body) = body
        && let Some(problem) = check_rest(method, path, status.as_u16(), &body)
    {
        report(&problem);
    }
    let mut rebuilt = axum::http::Response::new(bytes);
    *rebuilt.status_mut() = status;
    *rebuilt.headers_mut() = headers;
    reqwest::Response::from(rebuilt)
}
