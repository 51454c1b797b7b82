//! Policies as a request writes them (JSON), parsed field by field so a refusal names the
//! field that is wrong: the API answers it as 422, `berth admin` prints it.

use serde_json::{Map, Value};

use super::{MAX_PATTERNS, Policies, Retention, TagPattern};

/// The longest `keep_latest` and the most days a rule may name (100 years).
const MAX_COUNT: u64 = 100_000;
const MAX_DAYS: u64 = 36_500;

/// A field of a policy document that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PolicyInputError {
    /// The field, dotted (`retention.keep_latest`).
    pub field: &'static str,
    /// What is wrong, for a person.
    pub message: String,
}

fn wrong(field: &'static str, message: impl Into<String>) -> PolicyInputError {
    PolicyInputError {
        field,
        message: message.into(),
    }
}

/// Parses `{"immutable_tags": [..], "retention": {..} | null}`; absent fields are unset.
pub fn parse_policies(value: &Value) -> Result<Policies, PolicyInputError> {
    let object = object(value, "policies")?;
    only(object, "policies", &["immutable_tags", "retention"])?;
    let immutable_tags = match object.get("immutable_tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(list) => patterns(list, "immutable_tags")?,
    };
    let retention = match object.get("retention") {
        None | Some(Value::Null) => None,
        Some(value) => Some(parse_retention(value)?),
    };
    Ok(Policies {
        immutable_tags,
        retention,
    })
}

fn parse_retention(value: &Value) -> Result<Retention, PolicyInputError> {
    let object = object(value, "retention")?;
    const FIELDS: [&str; 4] = [
        "keep_latest",
        "keep_tags",
        "delete_untagged_after_days",
        "delete_unpulled_after_days",
    ];
    only(object, "retention", &FIELDS)?;
    let keep_latest = number(object, "keep_latest", "retention.keep_latest", 1, MAX_COUNT)?;
    let keep_tags = match object.get("keep_tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(list) => patterns(list, "retention.keep_tags")?,
    };
    let untagged = number(
        object,
        "delete_untagged_after_days",
        "retention.delete_untagged_after_days",
        0,
        MAX_DAYS,
    )?;
    let unpulled = number(
        object,
        "delete_unpulled_after_days",
        "retention.delete_unpulled_after_days",
        0,
        MAX_DAYS,
    )?;
    if keep_latest.is_none() && untagged.is_none() && unpulled.is_none() {
        return Err(wrong(
            "retention",
            "a retention policy needs a rule that deletes: keep_latest, \
             delete_untagged_after_days or delete_unpulled_after_days (send `\"retention\": null` \
             to have none)",
        ));
    }
    Ok(Retention {
        keep_latest,
        keep_tags,
        delete_untagged_after_days: untagged,
        delete_unpulled_after_days: unpulled,
    })
}

fn object<'a>(
    value: &'a Value,
    field: &'static str,
) -> Result<&'a Map<String, Value>, PolicyInputError> {
    value
        .as_object()
        .ok_or_else(|| wrong(field, format!("must be a JSON object, not `{value}`")))
}

/// Refuses a key outside `known`, naming it (a misspelt rule must not pass unnoticed).
fn only(
    object: &Map<String, Value>,
    field: &'static str,
    known: &[&str],
) -> Result<(), PolicyInputError> {
    match object.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(key) => Err(wrong(
            field,
            format!(
                "`{key}` is not a field of {field}; the fields are {}",
                known.join(", ")
            ),
        )),
    }
}

fn number(
    object: &Map<String, Value>,
    key: &str,
    field: &'static str,
    min: u64,
    max: u64,
) -> Result<Option<u32>, PolicyInputError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match value.as_u64() {
            Some(n) if (min..=max).contains(&n) => {
                Ok(Some(u32::try_from(n).expect("bounded below u32::MAX")))
            }
            _ => Err(wrong(
                field,
                format!("must be a whole number from {min} to {max}, not `{value}`"),
            )),
        },
    }
}

fn patterns(value: &Value, field: &'static str) -> Result<Vec<TagPattern>, PolicyInputError> {
    let list = value.as_array().ok_or_else(|| {
        wrong(
            field,
            format!("must be a list of tag patterns such as [\"v*\"], not `{value}`"),
        )
    })?;
    if list.len() > MAX_PATTERNS {
        return Err(wrong(
            field,
            format!("holds {} patterns; at most {MAX_PATTERNS}", list.len()),
        ));
    }
    let mut parsed: Vec<TagPattern> = Vec::with_capacity(list.len());
    for item in list {
        let text = item
            .as_str()
            .ok_or_else(|| wrong(field, format!("`{item}` is not a string")))?;
        let pattern = TagPattern::parse(text).map_err(|m| wrong(field, m))?;
        if !parsed.contains(&pattern) {
            parsed.push(pattern);
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_full_document_parses_and_round_trips() {
        let doc = json!({
            "immutable_tags": ["v*", "v*"],
            "retention": {"keep_latest": 5, "keep_tags": ["release-*"],
                          "delete_untagged_after_days": 0, "delete_unpulled_after_days": 90}
        });
        let policies = parse_policies(&doc).unwrap();
        assert_eq!(policies.immutable_tags.len(), 1, "duplicates are dropped");
        let retention = policies.retention.clone().unwrap();
        assert_eq!(retention.keep_latest, Some(5));
        assert_eq!(retention.delete_untagged_after_days, Some(0));
        let stored = serde_json::to_string(&policies).unwrap();
        assert_eq!(serde_json::from_str::<Policies>(&stored).unwrap(), policies);
        assert!(parse_policies(&json!({})).unwrap().is_empty());
    }

    #[test]
    fn each_bad_field_is_named() {
        let field = |doc: Value| parse_policies(&doc).unwrap_err().field;
        assert_eq!(field(json!({"immutable_tags": "v*"})), "immutable_tags");
        assert_eq!(field(json!({"immutable_tags": ["a/b"]})), "immutable_tags");
        assert_eq!(field(json!({"immutable": ["v*"]})), "policies");
        assert_eq!(field(json!({"retention": 3})), "retention");
        assert_eq!(
            field(json!({"retention": {"keep_tags": ["x"]}})),
            "retention"
        );
        assert_eq!(
            field(json!({"retention": {"keep_latest": 0}})),
            "retention.keep_latest"
        );
        assert_eq!(
            field(json!({"retention": {"keep_latest": "5"}})),
            "retention.keep_latest"
        );
        assert_eq!(
            field(json!({"retention": {"delete_untagged_after_days": -1}})),
            "retention.delete_untagged_after_days"
        );
        assert_eq!(
            field(json!({"retention": {"delete_unpulled_after_days": 1.5}})),
            "retention.delete_unpulled_after_days"
        );
        assert_eq!(
            field(json!({"retention": {"keep_latest": 1, "keep_tags": [""]}})),
            "retention.keep_tags"
        );
        assert_eq!(
            field(json!({"retention": {"keep_latest": 1, "max_age": 3}})),
            "retention"
        );
    }
}
