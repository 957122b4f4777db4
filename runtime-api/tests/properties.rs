//! Property tests: id parsing and request JSON never panic, accept exactly
//! the documented charset, and round-trip.

use proptest::prelude::*;
use yoi_runtime_api::dto::{BusyPolicy, CreateWorkerRequest, InputRequest};
use yoi_runtime_api::{EventCursor, InputId, RuntimeId, WorkerId};

fn is_valid(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
        && value != "."
        && value != ".."
}

proptest! {
    #[test]
    fn any_string_parses_exactly_when_valid(value in any::<String>()) {
        let parsed = value.parse::<WorkerId>();
        prop_assert_eq!(parsed.is_ok(), is_valid(&value));
        if let Ok(id) = parsed {
            prop_assert_eq!(id.to_string(), value);
        }
    }

    #[test]
    fn charset_strings_parse_exactly_when_valid(value in "[A-Za-z0-9._:/ -]{0,130}") {
        prop_assert_eq!(value.parse::<WorkerId>().is_ok(), is_valid(&value));
    }

    #[test]
    fn valid_ids_round_trip_through_json(value in "[A-Za-z0-9._:-]{1,128}") {
        prop_assume!(value != "." && value != "..");
        let id: RuntimeId = value.parse().unwrap();
        let json = serde_json::to_string(&id).unwrap();
        let back: RuntimeId = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, id);
        prop_assert!(value.parse::<EventCursor>().is_ok());
    }

    #[test]
    fn near_miss_ids_are_rejected(prefix in "[a-z]{0,4}", bad in "[/\\\\ \t\n\r\u{0}-\u{1f}é?#%]", suffix in "[a-z]{0,4}") {
        let value = format!("{prefix}{bad}{suffix}");
        prop_assert!(value.parse::<InputId>().is_err());
    }

    #[test]
    fn arbitrary_json_never_panics_as_a_request(json in arbitrary_json()) {
        let text = json.to_string();
        let _ = serde_json::from_str::<InputRequest>(&text);
        let _ = serde_json::from_str::<CreateWorkerRequest>(&text);
    }

    #[test]
    fn input_requests_round_trip(text in ".{0,200}", client in proptest::option::of("[a-z0-9-]{1,20}"), policy in 0..3usize) {
        let request = InputRequest {
            text,
            client_input_id: client.map(|c| c.parse().unwrap()),
            on_busy: [BusyPolicy::Reject, BusyPolicy::Queue, BusyPolicy::Interrupt][policy],
        };
        let json = serde_json::to_string(&request).unwrap();
        let back: InputRequest = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, request);
    }
}

fn arbitrary_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        ".{0,20}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        let key = prop_oneof![
            Just("text".to_owned()),
            Just("on_busy".to_owned()),
            Just("client_input_id".to_owned()),
            Just("profile".to_owned()),
            "[a-z_]{1,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(key, inner, 0..5)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}
