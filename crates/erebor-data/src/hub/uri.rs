//! Parsing `hf://datasets/OWNER/NAME[@REVISION]/PATH`.

use super::HubError;
use crate::read::is_glob;

/// A parsed `hf://` dataset URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HubUri {
    /// The URI as written.
    pub original: String,
    /// Repository owner (user or organisation).
    pub owner: String,
    /// Repository name.
    pub name: String,
    /// Branch, tag or commit; `main` when not given.
    pub revision: String,
    /// Path inside the repository; may be a glob.
    pub path: String,
}

impl HubUri {
    /// Parses a URI; the revision may be written `@rev`, `@refs/convert/parquet`,
    /// `@refs/pr/3` or URL-encoded (`@refs%2Fconvert%2Fparquet`).
    pub(crate) fn parse(uri: &str) -> Result<Self, HubError> {
        let bad = |message: &str| HubError::BadUri {
            uri: uri.to_owned(),
            message: format!("{message}; expected hf://datasets/OWNER/NAME[@REVISION]/PATH"),
        };
        let rest = uri
            .strip_prefix("hf://")
            .ok_or_else(|| bad("not an hf:// URI"))?;
        let rest = rest
            .strip_prefix("datasets/")
            .ok_or_else(|| bad("only dataset repositories (hf://datasets/...) are supported"))?;
        let (owner, rest) = rest
            .split_once('/')
            .ok_or_else(|| bad("no repository name"))?;
        let (name_and_revision, mut path) =
            rest.split_once('/').ok_or_else(|| bad("no file path"))?;
        let (name, revision) = match name_and_revision.split_once('@') {
            Some((name, revision)) => {
                let revision = revision.replace("%2F", "/").replace("%2f", "/");
                if revision == "refs" {
                    // `@refs/convert/parquet/...`: the revision has two more segments.
                    let mut parts = path.splitn(3, '/');
                    let (Some(first), Some(second), Some(tail)) =
                        (parts.next(), parts.next(), parts.next())
                    else {
                        return Err(bad("an @refs/... revision needs two more segments"));
                    };
                    path = tail;
                    (name, format!("refs/{first}/{second}"))
                } else {
                    (name, revision)
                }
            }
            None => (name_and_revision, "main".to_owned()),
        };
        if owner.is_empty() || name.is_empty() || revision.is_empty() {
            return Err(bad("empty owner, name or revision"));
        }
        if path.is_empty() || path.split('/').any(|segment| segment == "..") {
            return Err(bad("empty path or a `..` segment"));
        }
        Ok(Self {
            original: uri.to_owned(),
            owner: owner.to_owned(),
            name: name.to_owned(),
            revision,
            path: path.to_owned(),
        })
    }

    /// `OWNER/NAME`.
    pub(crate) fn repo_id(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    /// The revision as it goes into a URL path (`/` encoded).
    pub(crate) fn revision_in_url(&self) -> String {
        self.revision.replace('/', "%2F")
    }

    /// Whether the path is a glob.
    pub(crate) fn is_glob(&self) -> bool {
        is_glob(&self.path)
    }

    /// The folder to list: the segments before the first one with glob syntax, or the file's
    /// parent folder for a plain path. Empty for the repository root.
    pub(crate) fn listing_prefix(&self) -> String {
        let segments: Vec<&str> = self.path.split('/').collect();
        let literal = if self.is_glob() {
            segments
                .iter()
                .take_while(|segment| !is_glob(segment))
                .count()
        } else {
            segments.len() - 1
        };
        segments[..literal].join("/")
    }

    /// The URI of one file of this repository and revision.
    pub(crate) fn file_uri(&self, path: &str) -> String {
        format!(
            "hf://datasets/{}/{}@{}/{}",
            self.owner, self.name, self.revision, path
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse_with_and_without_revisions() {
        let plain =
            HubUri::parse("hf://datasets/allenai/ai2_arc/ARC-Challenge/train.parquet").unwrap();
        assert_eq!(plain.repo_id(), "allenai/ai2_arc");
        assert_eq!(plain.revision, "main");
        assert_eq!(plain.path, "ARC-Challenge/train.parquet");
        assert_eq!(plain.listing_prefix(), "ARC-Challenge");
        assert!(!plain.is_glob());

        let converted =
            HubUri::parse("hf://datasets/o/n@refs/convert/parquet/default/train/*.parquet")
                .unwrap();
        assert_eq!(converted.revision, "refs/convert/parquet");
        assert_eq!(converted.revision_in_url(), "refs%2Fconvert%2Fparquet");
        assert_eq!(converted.path, "default/train/*.parquet");
        assert_eq!(converted.listing_prefix(), "default/train");
        let encoded =
            HubUri::parse("hf://datasets/o/n@refs%2Fconvert%2Fparquet/a.parquet").unwrap();
        assert_eq!(encoded.revision, "refs/convert/parquet");
        assert_eq!(encoded.path, "a.parquet");
        assert_eq!(encoded.listing_prefix(), "");

        let pinned = HubUri::parse("hf://datasets/o/n@0123abc/**/*.jsonl").unwrap();
        assert_eq!(pinned.revision, "0123abc");
        assert_eq!(pinned.listing_prefix(), "");
        assert_eq!(
            pinned.file_uri("x/y.jsonl"),
            "hf://datasets/o/n@0123abc/x/y.jsonl"
        );
    }

    #[test]
    fn bad_uris_say_what_is_expected() {
        for uri in [
            "hf://models/o/n/x.json",
            "hf://datasets/o",
            "hf://datasets/o/n",
            "hf://datasets/o/n/../secret",
            "s3://bucket/x",
        ] {
            let error = HubUri::parse(uri).unwrap_err().to_string();
            assert!(error.starts_with(uri), "{error}");
            assert!(
                error.contains("expected hf://datasets/OWNER/NAME"),
                "{error}"
            );
        }
    }
}
