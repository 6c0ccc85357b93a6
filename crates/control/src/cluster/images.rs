//! Which image version an assigned instance runs, and what its layers must hash to: the
//! record of that version in the cluster store (`/images/<name>/<version>`, written by
//! whoever made the version, see docs/cluster.md "Images and code"). The leader puts it in
//! the assignment ([`App::image_record`]); a node with shared storage mounts the version's
//! layers only once its copies verify against it, and refuses a version without one.

use hako_model::{App, ImageRecord};
use hako_store::{Store, StoreError, StoreExt, keys};

/// The record of the image version `app` runs now — the version it names, or the highest
/// version recorded; `None` when the store records none (a node with shared storage then
/// refuses to start it, saying so; a node without, which verifies nothing, runs its own) —
/// and the store's revision it was read at (what a start watches from).
pub(crate) async fn record_at(
    store: &dyn Store,
    app: &App,
) -> Result<(Option<ImageRecord>, i64), StoreError> {
    let listing = store
        .list(&keys::image_versions(&app.spec.image.name))
        .await?;
    let records = listing
        .kvs
        .iter()
        .map(|kv| hako_store::decode::<ImageRecord>(&kv.key, &kv.value))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((pick(records.into_iter(), app), listing.revision))
}

/// The record among `records` that `app`'s image reference names.
fn pick(records: impl Iterator<Item = ImageRecord>, app: &App) -> Option<ImageRecord> {
    let image = &app.spec.image;
    let mine = records.filter(|r| r.name == image.name);
    match image.version {
        Some(v) => mine.into_iter().find(|r| r.version == v),
        None => mine.max_by_key(|r| r.version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, version: u32) -> ImageRecord {
        ImageRecord {
            name: name.into(),
            version,
            created_unix: u64::from(version),
            host: false,
            layers: vec![],
        }
    }

    fn app(image: &str) -> App {
        let spec: hako_model::AppSpec = serde_json::from_value(serde_json::json!({
            "name": "blog", "hosts": ["blog.example"], "image": image, "cmd": "x"
        }))
        .unwrap();
        App {
            spec,
            uid: String::new(),
            release: None,
            release_digest: None,
            image_record: None,
            generation: 0,
            created_unix: 0,
            updated_unix: 0,
            database_grant: None,
            tenant: None,
        }
    }

    #[test]
    fn the_named_version_or_the_highest_recorded() {
        // Stored keys sort as text: 10 comes before 9.
        let all = || [record("php", 1), record("php", 10), record("php", 9)].into_iter();
        assert_eq!(pick(all(), &app("php")).unwrap().version, 10);
        assert_eq!(pick(all(), &app("php:9")).unwrap().version, 9);
        assert_eq!(pick(all(), &app("php:2")), None);
        assert_eq!(pick(all(), &app("other")), None);
        assert_eq!(pick(std::iter::empty(), &app("php")), None);
    }
}
