//! Where the alarm fields this guest reads sit among an alarm's members,
//! found in one pass when the alarm is read: each later read is a position,
//! not a scan of the members comparing keys (an alarm has about seventeen
//! members, and a transition reads its fields some forty times).

use monasca_guest_sdk::pyjson::Json;

/// The fields looked up by position; any other key is found by a scan.
const KNOWN: [&str; 14] = [
    "actionsEnabled",
    "alarmId",
    "alarmDefinitionId",
    "alarmName",
    "alarmDescription",
    "newState",
    "oldState",
    "stateChangeReason",
    "severity",
    "link",
    "lifecycleState",
    "tenantId",
    "timestamp",
    "metrics",
];

/// The slot of a known field.
fn slot(key: &str) -> Option<usize> {
    Some(match key {
        "actionsEnabled" => 0,
        "alarmId" => 1,
        "alarmDefinitionId" => 2,
        "alarmName" => 3,
        "alarmDescription" => 4,
        "newState" => 5,
        "oldState" => 6,
        "stateChangeReason" => 7,
        "severity" => 8,
        "link" => 9,
        "lifecycleState" => 10,
        "tenantId" => 11,
        "timestamp" => 12,
        "metrics" => 13,
        _ => return None,
    })
}

/// Positions of the known fields in one object (its first member of each
/// key, as [`Json::get`] finds).
#[derive(Debug, Clone, Copy, Default)]
pub struct Fields {
    /// Position + 1 per known field; 0: absent.
    at: [u32; KNOWN.len()],
}

impl Fields {
    /// Index `object` (anything but an object indexes nothing).
    pub fn of(object: &Json) -> Self {
        let mut fields = Fields::default();
        for (i, (key, _)) in object.as_object().unwrap_or_default().iter().enumerate() {
            if let Some(s) = slot(key) {
                if fields.at[s] == 0 {
                    fields.at[s] = u32::try_from(i + 1).unwrap_or(0);
                }
            }
        }
        fields
    }

    /// The position of `key` among `object`'s members (the object this
    /// index was made of), or `None` when absent.
    pub fn position(&self, object: &Json, key: &str) -> Option<usize> {
        let members = object.as_object()?;
        match slot(key) {
            Some(s) => match self.at[s] {
                0 => None,
                at => Some(at as usize - 1),
            },
            None => members.iter().position(|(k, _)| monasca_guest_sdk::compare::same_text(k, key)),
        }
    }

    /// The member `key` of `object`, as [`Json::get`].
    pub fn get<'j, 'a>(&self, object: &'j Json<'a>, key: &str) -> Option<&'j Json<'a>> {
        let at = self.position(object, key)?;
        object.as_object().and_then(|members| members.get(at)).map(|(_, v)| v)
    }

    /// The member `key` of `object`, or `null`, as [`Json::member`].
    pub fn member<'j, 'a>(&self, object: &'j Json<'a>, key: &str) -> &'j Json<'a> {
        static NULL: Json<'static> = Json::Null;
        self.get(object, key).unwrap_or(&NULL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_other_keys_are_found_as_json_get_finds_them() {
        let object = Json::parse_str(
            r#"{"x": 1, "alarmId": "a", "metrics": [], "link": null, "other": true, "timestamp": 5, "alarmName": "n"}"#,
        )
        .expect("parses");
        let fields = Fields::of(&object);
        for key in KNOWN.iter().copied().chain(["x", "other", "absent", ""]) {
            assert_eq!(fields.get(&object, key), object.get(key), "{key}");
            assert_eq!(fields.member(&object, key), object.member(key), "{key}");
        }
        for key in KNOWN {
            assert_eq!(slot(key).map(|s| KNOWN[s]), Some(key));
        }
        let not_an_object = Json::parse_str("[1]").expect("parses");
        assert_eq!(Fields::of(&not_an_object).get(&not_an_object, "alarmId"), None);
    }
}
