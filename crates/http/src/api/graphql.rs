//! `POST /api/graphql`: the GraphQL queries GitHub's own clients send to learn who they are
//! logged in as — the GitHub CLI's `query UserCurrent{viewer{login}}` at `gh auth login` and
//! `gh auth status` (GitHub Enterprise Server's path, outside `/api/v3`).
//!
//! Not a GraphQL API. A query is parsed (`graphql-parser`) and answered only when every field
//! it selects is one Berth serves: `viewer` on the query root and `login` on it (with aliases,
//! and `__typename` on both). Anything else — another field, arguments, fragments,
//! directives, a mutation — is a GraphQL error in GitHub's shape (`{"errors":[{"message",
//! "locations", "path", "extensions"}]}`, HTTP 200, as GitHub answers query errors) naming
//! what Berth does not serve.
//!
//! Authentication and rate limits are the REST API's: the `limits` layer counts the request
//! against the caller's budget, [`Who`] resolves the token (a bad one is 401 "Bad
//! credentials"), and a request without one is 401 as on GitHub. Calls
//! [`berth_core::access::Access::current_user`] only.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use berth_core::access::{ManageError, Principal};
use graphql_parser::Pos;
use graphql_parser::query::{Definition, Selection};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{ApiResult, GitHubError, Who, answer, body};
use crate::AppState;

/// The parsed shapes, borrowing the query's text.
type Field<'a> = graphql_parser::query::Field<'a, &'a str>;
type SelectionSet<'a> = graphql_parser::query::SelectionSet<'a, &'a str>;
type OperationDefinition<'a> = graphql_parser::query::OperationDefinition<'a, &'a str>;

/// Where GitHub documents authenticating to its GraphQL API.
const AUTH_DOCS: &str =
    "https://docs.github.com/graphql/guides/forming-calls-with-graphql#authenticating-with-graphql";
/// The longest query parsed; a longer one is refused before parsing.
const MAX_QUERY_BYTES: usize = 16 * 1024;
/// The deepest nesting of brackets a query may have before parsing (the parser recurses).
const MAX_NESTING: usize = 16;
/// What the errors tell a client to use instead.
const SERVED: &str = "Berth's GraphQL endpoint answers only `viewer { login }`; use the REST API under /api/v3 for the rest";

/// The `/api/graphql` route (mounted beside `/api/v3`, with its rate limits).
pub fn router() -> Router<AppState> {
    Router::new().route("/api/graphql", post(query))
}

/// A GraphQL request body.
#[derive(Deserialize)]
struct Request {
    query: Option<Value>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
}

/// `POST /api/graphql`.
async fn query(State(state): State<AppState>, who: Who, bytes: Bytes) -> ApiResult {
    if matches!(who.principal, Principal::Anonymous) {
        return Err(GitHubError {
            documentation_url: AUTH_DOCS,
            ..GitHubError::new(
                StatusCode::UNAUTHORIZED,
                "This endpoint requires you to be authenticated.",
            )
        });
    }
    let request: Request = body(&bytes)?;
    let plan = match request.query {
        Some(Value::String(text)) => plan(&text, request.operation_name.as_deref()),
        _ => Err(vec![error(
            "A query attribute must be specified and must be a string.",
        )]),
    };
    let fields = match plan {
        Ok(fields) => fields,
        Err(errors) => return Ok(answer(StatusCode::OK, json!({ "errors": errors }))),
    };
    let viewer = if fields.iter().any(|(_, f)| matches!(f, Root::Viewer(_))) {
        match state.auth.access.current_user(&who.principal).await {
            Ok(user) => Some(user.login),
            Err(e @ (ManageError::Unauthenticated(_) | ManageError::Store(_))) => {
                return Err(e.into());
            }
            Err(refused) => {
                let message = GitHubError::from(refused).message;
                let error = json!({ "type": "FORBIDDEN", "path": ["viewer"], "message": message });
                return Ok(answer(
                    StatusCode::OK,
                    json!({ "data": null, "errors": [error] }),
                ));
            }
        }
    } else {
        None
    };
    let mut data = Map::new();
    for (key, field) in fields {
        let value = match field {
            Root::Typename => json!("Query"),
            Root::Viewer(user_fields) => {
                let login = viewer.as_deref().unwrap_or_default();
                let user: Map<String, Value> = user_fields
                    .into_iter()
                    .map(|(key, field)| match field {
                        UserField::Login => (key, json!(login)),
                        UserField::Typename => (key, json!("User")),
                    })
                    .collect();
                Value::Object(user)
            }
        };
        data.insert(key, value);
    }
    Ok(answer(StatusCode::OK, json!({ "data": data })))
}

/// A field of the query root Berth serves, under its response key.
#[derive(Debug)]
enum Root {
    /// `__typename`.
    Typename,
    /// `viewer { … }`, with the fields selected on it.
    Viewer(Vec<(String, UserField)>),
}

/// A field of `User` Berth serves.
#[derive(Debug)]
enum UserField {
    Login,
    Typename,
}

/// The fields `query` selects on the root of operation `operation_name` (or of its only
/// operation), when Berth serves them all; otherwise the GraphQL errors saying why.
fn plan(query: &str, operation_name: Option<&str>) -> Result<Vec<(String, Root)>, Vec<Value>> {
    if query.len() > MAX_QUERY_BYTES || nesting(query) > MAX_NESTING {
        return Err(vec![error(format!(
            "the query is longer than {MAX_QUERY_BYTES} bytes or nests deeper than {MAX_NESTING} levels; {SERVED}"
        ))]);
    }
    let document = graphql_parser::parse_query::<&str>(query)
        .map_err(|e| vec![error(format!("Parse error: {e}").trim_end().to_owned())])?;
    let mut operations = Vec::new();
    for definition in &document.definitions {
        match definition {
            Definition::Operation(operation) => operations.push(operation),
            Definition::Fragment(fragment) => {
                return Err(vec![located(
                    format!(
                        "Fragments are not supported (fragment `{}`); {SERVED}",
                        fragment.name
                    ),
                    fragment.position,
                    &[],
                )]);
            }
        }
    }
    let operation = match operation_name {
        Some(name) => operations
            .into_iter()
            .find(|o| operation_name_of(o) == Some(name))
            .ok_or_else(|| vec![error(format!("No operation named \"{name}\""))])?,
        None if operations.len() == 1 => operations.remove(0),
        None => {
            return Err(vec![error(
                "An operation name is required when a document holds more than one operation",
            )]);
        }
    };
    let selection = match operation {
        graphql_parser::query::OperationDefinition::SelectionSet(selection) => selection,
        graphql_parser::query::OperationDefinition::Query(query) if query.directives.is_empty() => {
            &query.selection_set
        }
        graphql_parser::query::OperationDefinition::Query(query) => {
            return Err(vec![located(
                format!("Directives are not supported; {SERVED}"),
                query.position,
                &[],
            )]);
        }
        graphql_parser::query::OperationDefinition::Mutation(m) => {
            return Err(vec![located(
                format!("Mutations are not supported; {SERVED}"),
                m.position,
                &[],
            )]);
        }
        graphql_parser::query::OperationDefinition::Subscription(s) => {
            return Err(vec![located(
                format!("Subscriptions are not supported; {SERVED}"),
                s.position,
                &[],
            )]);
        }
    };
    let mut errors = Vec::new();
    let mut root = Vec::new();
    for field in fields(selection, &[], &mut errors) {
        let key = response_key(field);
        match field.name {
            "__typename" => leaf(field, &[], &mut errors).then(|| root.push((key, Root::Typename))),
            "viewer" => viewer(field, &mut errors).map(|user| root.push((key, Root::Viewer(user)))),
            other => {
                errors.push(undefined(field, "Query", other, &[]));
                None
            }
        };
    }
    if errors.is_empty() {
        Ok(root)
    } else {
        Err(errors)
    }
}

/// The fields selected on `viewer`, when Berth serves them all (else errors are pushed).
fn viewer(field: &Field<'_>, errors: &mut Vec<Value>) -> Option<Vec<(String, UserField)>> {
    let path = ["viewer"];
    let before = errors.len();
    plain(field, &[], errors);
    if field.selection_set.items.is_empty() {
        errors.push(located(
            "Field must have selections (field 'viewer' returns User but has no selections. Did you mean 'viewer { ... }'?)".into(),
            field.position,
            &[],
        ));
    }
    let mut user = Vec::new();
    for inner in fields(&field.selection_set, &path, errors) {
        let known = match inner.name {
            "login" => Some(UserField::Login),
            "__typename" => Some(UserField::Typename),
            other => {
                errors.push(undefined(inner, "User", other, &path));
                None
            }
        };
        if let Some(known) = known
            && leaf(inner, &path, errors)
        {
            user.push((response_key(inner), known));
        }
    }
    (errors.len() == before).then_some(user)
}

/// The fields of `selection` (fragments are refused with an error each).
fn fields<'s, 'a>(
    selection: &'s SelectionSet<'a>,
    path: &[&str],
    errors: &mut Vec<Value>,
) -> Vec<&'s Field<'a>> {
    let mut fields = Vec::new();
    for item in &selection.items {
        match item {
            Selection::Field(field) => fields.push(field),
            Selection::FragmentSpread(spread) => errors.push(located(
                format!("Fragments are not supported; {SERVED}"),
                spread.position,
                path,
            )),
            Selection::InlineFragment(fragment) => errors.push(located(
                format!("Fragments are not supported; {SERVED}"),
                fragment.position,
                path,
            )),
        }
    }
    fields
}

/// Whether `field` is a scalar selected plainly: no selections, arguments or directives.
fn leaf(field: &Field<'_>, path: &[&str], errors: &mut Vec<Value>) -> bool {
    let before = errors.len();
    plain(field, path, errors);
    if !field.selection_set.items.is_empty() {
        errors.push(located(
            format!(
                "Selections can't be made on scalars (field '{}' returns String but has selections)",
                field.name
            ),
            field.position,
            path,
        ));
    }
    errors.len() == before
}

/// Pushes an error for each argument or directive on `field`.
fn plain(field: &Field<'_>, path: &[&str], errors: &mut Vec<Value>) {
    let mut here = path.to_vec();
    here.push(field.name);
    if let Some((argument, _)) = field.arguments.first() {
        errors.push(located(
            format!(
                "Field '{}' doesn't accept argument '{argument}' here; {SERVED}",
                field.name
            ),
            field.position,
            &here,
        ));
    }
    if !field.directives.is_empty() {
        errors.push(located(
            format!("Directives are not supported; {SERVED}"),
            field.position,
            &here,
        ));
    }
}

/// The key a field's value has in the answer: its alias, else its name.
fn response_key(field: &Field<'_>) -> String {
    field.alias.unwrap_or(field.name).to_owned()
}

fn operation_name_of<'a>(operation: &OperationDefinition<'a>) -> Option<&'a str> {
    match operation {
        graphql_parser::query::OperationDefinition::SelectionSet(_) => None,
        graphql_parser::query::OperationDefinition::Query(q) => q.name,
        graphql_parser::query::OperationDefinition::Mutation(m) => m.name,
        graphql_parser::query::OperationDefinition::Subscription(s) => s.name,
    }
}

/// GitHub's error for a field Berth does not serve on `type_name`.
fn undefined(field: &Field<'_>, type_name: &str, name: &str, path: &[&str]) -> Value {
    let mut error = located(
        format!("Field '{name}' doesn't exist on type '{type_name}' in Berth; {SERVED}"),
        field.position,
        &[path, &[name]].concat(),
    );
    error["extensions"] =
        json!({ "code": "undefinedField", "typeName": type_name, "fieldName": name });
    error
}

/// A GraphQL error at `position`, under `path` (below the operation).
fn located(message: String, position: Pos, path: &[&str]) -> Value {
    let mut error = error(message);
    error["locations"] = json!([{ "line": position.line, "column": position.column }]);
    if !path.is_empty() {
        error["path"] = json!([&["query"], path].concat());
    }
    error
}

/// A GraphQL error.
fn error(message: impl Into<String>) -> Value {
    json!({ "message": message.into() })
}

/// The deepest nesting of `{`, `[` and `(` in `text` (strings and comments included: an
/// over-count only refuses a query Berth would not answer anyway).
fn nesting(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for byte in text.bytes() {
        match byte {
            b'{' | b'[' | b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(query: &str) -> Vec<String> {
        plan(query, None)
            .unwrap_or_else(|e| panic!("{e:?}"))
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    fn refusal(query: &str, operation: Option<&str>) -> String {
        match plan(query, operation) {
            Ok(_) => panic!("{query} was answered"),
            Err(errors) => errors[0]["message"].as_str().unwrap().to_owned(),
        }
    }

    #[test]
    fn the_clis_query_and_its_spellings_are_served() {
        assert_eq!(keys("query UserCurrent{viewer{login}}"), ["viewer"]);
        assert_eq!(
            keys("{ me: viewer { who: login __typename } __typename }"),
            ["me", "__typename"]
        );
        assert_eq!(
            plan("query A{viewer{login}} query B{__typename}", Some("B")).map(|p| p.len()),
            Ok(1)
        );
    }

    #[test]
    fn what_berth_does_not_serve_is_named() {
        assert!(
            refusal("{viewer{login email}}", None).contains("'email' doesn't exist on type 'User'")
        );
        assert!(refusal("{repository(owner:\"a\",name:\"b\"){id}}", None).contains("'repository'"));
        assert!(refusal("mutation{addStar{clientMutationId}}", None).starts_with("Mutations"));
        assert!(refusal("{viewer{...F}} fragment F on User{login}", None).starts_with("Fragments"));
        assert!(refusal("{viewer}", None).starts_with("Field must have selections"));
        assert!(refusal("{viewer{login{x}}}", None).starts_with("Selections can't be made"));
        assert!(refusal("{viewer(a:1){login}}", None).contains("argument 'a'"));
        assert!(refusal("{viewer{login}", None).starts_with("Parse error"));
        assert!(
            refusal("query A{viewer{login}} query B{viewer{login}}", None)
                .contains("operation name")
        );
        assert!(refusal("query A{viewer{login}}", Some("C")).contains("No operation named"));
        let deep = format!("{}{}", "{viewer".repeat(100_000), "}".repeat(100_000));
        assert!(refusal(&deep, None).contains("nests deeper"));
    }

    #[test]
    fn an_unknown_field_carries_githubs_location_path_and_code() {
        let errors = plan("query Q {\n  viewer { name }\n}", None).unwrap_err();
        assert_eq!(
            errors[0],
            json!({
                "message": format!("Field 'name' doesn't exist on type 'User' in Berth; {SERVED}"),
                "locations": [{"line": 2, "column": 12}],
                "path": ["query", "viewer", "name"],
                "extensions": {"code": "undefinedField", "typeName": "User", "fieldName": "name"},
            })
        );
    }
}
