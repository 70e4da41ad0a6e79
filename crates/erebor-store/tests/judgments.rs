//! The MT-Bench judgment cache on SQLite and Postgres: the first reply stands, keys differ by
//! endpoint, body hash and repeat index.

mod common;

use erebor_store::{JudgmentKey, Store};

fn key(endpoint: &str, sha: &str, repeat_index: u32) -> JudgmentKey {
    JudgmentKey {
        endpoint: endpoint.to_owned(),
        request_sha256: sha.to_owned(),
        repeat_index,
    }
}

async fn judgments_are_kept_once_per_key(store: Store) {
    let first = key("http://127.0.0.1:9/v1/chat/completions", "ab", 0);
    assert_eq!(store.judgment(&first).await.unwrap(), None);
    let body = r#"{"model":"gpt-4"}"#;
    assert!(
        store
            .put_judgment(&first, body, Some("gpt-4-0613"), "Rating: [[7]]")
            .await
            .unwrap()
    );
    // A second reply for the same key does not replace the first.
    assert!(
        !store
            .put_judgment(&first, body, Some("other"), "Rating: [[2]]")
            .await
            .unwrap()
    );
    let stored = store.judgment(&first).await.unwrap().unwrap();
    assert_eq!(stored.content, "Rating: [[7]]");
    assert_eq!(stored.response_model.as_deref(), Some("gpt-4-0613"));
    assert!(stored.created_at > 0);

    // Another repeat, another endpoint, another body: separate rows.
    for other in [
        key("http://127.0.0.1:9/v1/chat/completions", "ab", 1),
        key("http://127.0.0.1:10/v1/chat/completions", "ab", 0),
        key("http://127.0.0.1:9/v1/chat/completions", "cd", 0),
    ] {
        assert_eq!(store.judgment(&other).await.unwrap(), None, "{other:?}");
        assert!(
            store
                .put_judgment(&other, body, None, "no model")
                .await
                .unwrap()
        );
        let stored = store.judgment(&other).await.unwrap().unwrap();
        assert_eq!(stored.response_model, None);
    }
    assert_eq!(store.judgment_count(None).await.unwrap(), 4);
    assert_eq!(
        store
            .judgment_count(Some("http://127.0.0.1:9/v1/chat/completions"))
            .await
            .unwrap(),
        3
    );
}

on_both_backends!(judgments_are_kept_once_per_key);
