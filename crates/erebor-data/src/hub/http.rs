//! The HTTP side of [`super::HubClient`]: tree listing, downloads, retries, the cache.

use super::cache::{read_resolved, resolved_list_path, with_suffix, write_atomically};
use super::{HubClient, HubError, HubFile, HubUri};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// The outcome of one failed attempt: worth retrying or not.
enum Attempt {
    Retry(String),
    Fail(HubError),
}

#[derive(Debug, Deserialize)]
struct TreeEntry {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: u64,
    lfs: Option<LfsInfo>,
}

#[derive(Debug, Deserialize)]
struct LfsInfo {
    oid: String,
}

pub(super) fn fetch_blocking(client: &HubClient, uri: &HubUri) -> Result<Vec<HubFile>, HubError> {
    let resolved_path = resolved_list_path(client, uri);
    if !client.refresh
        && let Some(files) = read_resolved(&resolved_path)
    {
        tracing::debug!(uri = %uri.original, "using the cached download");
        return Ok(files);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| HubError::Cache {
            path: client.cache_dir.clone(),
            source,
        })?;
    let files = runtime.block_on(fetch(client, uri))?;
    let text = serde_json::to_vec_pretty(&files).map_err(|error| HubError::Cache {
        path: resolved_path.clone(),
        source: std::io::Error::other(error),
    })?;
    write_atomically(&resolved_path, &text)?;
    Ok(files)
}

async fn fetch(client: &HubClient, uri: &HubUri) -> Result<Vec<HubFile>, HubError> {
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_mins(2))
        .user_agent(concat!("erebor/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| HubError::Protocol {
            uri: uri.original.clone(),
            message: format!("cannot build an HTTP client: {error}"),
        })?;
    let entries = list_tree(client, &http, uri).await?;
    let options = glob::MatchOptions {
        require_literal_separator: true,
        ..Default::default()
    };
    let pattern = glob::Pattern::new(&uri.path).map_err(|error| HubError::BadUri {
        uri: uri.original.clone(),
        message: format!("invalid glob: {error}"),
    })?;
    let mut wanted: Vec<&TreeEntry> = entries
        .iter()
        .filter(|entry| entry.kind == "file")
        .filter(|entry| {
            if uri.is_glob() {
                pattern.matches_with(&entry.path, options)
            } else {
                entry.path == uri.path
            }
        })
        .collect();
    wanted.sort_by(|a, b| a.path.cmp(&b.path));
    if wanted.is_empty() {
        return Err(HubError::NotFound {
            uri: uri.original.clone(),
            detail: format!(
                "no file matches `{}` at revision `{}`",
                uri.path, uri.revision
            ),
        });
    }
    let mut files = Vec::with_capacity(wanted.len());
    for entry in wanted {
        files.push(download(client, &http, uri, entry).await?);
    }
    Ok(files)
}

fn classify(status: reqwest::StatusCode, uri: &HubUri, url: &str) -> Attempt {
    let code = status.as_u16();
    match code {
        404 => Attempt::Fail(HubError::NotFound {
            uri: uri.original.clone(),
            detail: format!("HTTP 404 from {url}"),
        }),
        401 | 403 => Attempt::Fail(HubError::Denied {
            uri: uri.original.clone(),
            status: code,
        }),
        408 | 429 | 500..=599 => Attempt::Retry(format!("HTTP {code} from {url}")),
        _ => Attempt::Fail(HubError::Protocol {
            uri: uri.original.clone(),
            message: format!("unexpected HTTP {code} from {url}"),
        }),
    }
}

/// Runs `attempt` until it succeeds, fails for good, or runs out of retries.
async fn with_retries<T, F, Fut>(
    client: &HubClient,
    uri: &HubUri,
    mut attempt: F,
) -> Result<T, HubError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Attempt>>,
{
    let attempts = client.retries + 1;
    let mut delay = client.backoff;
    for number in 1..=attempts {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(Attempt::Fail(error)) => return Err(error),
            Err(Attempt::Retry(message)) if number == attempts => {
                return Err(HubError::Transient {
                    uri: uri.original.clone(),
                    message,
                    attempts,
                });
            }
            Err(Attempt::Retry(message)) => {
                tracing::warn!(uri = %uri.original, attempt = number, "{message}; retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    unreachable!("the last attempt returns")
}

fn request(client: &HubClient, http: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
    let builder = http.get(url);
    match client.token() {
        Some(token) => builder.bearer_auth(token),
        None => builder,
    }
}

async fn list_tree(
    client: &HubClient,
    http: &reqwest::Client,
    uri: &HubUri,
) -> Result<Vec<TreeEntry>, HubError> {
    let prefix = uri.listing_prefix();
    let mut url = format!(
        "{}/api/datasets/{}/tree/{}",
        client.endpoint,
        uri.repo_id(),
        uri.revision_in_url()
    );
    if !prefix.is_empty() {
        url = format!("{url}/{prefix}");
    }
    url.push_str("?recursive=true");
    let mut entries = Vec::new();
    let mut next = Some(url);
    while let Some(page_url) = next.take() {
        let (page, link) = with_retries(client, uri, || async {
            let response = request(client, http, &page_url)
                .send()
                .await
                .map_err(|error| Attempt::Retry(format!("cannot reach {page_url}: {error}")))?;
            if !response.status().is_success() {
                return Err(classify(response.status(), uri, &page_url));
            }
            let link = response
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|value| value.to_str().ok())
                .and_then(next_link);
            let body = response.bytes().await.map_err(|error| {
                Attempt::Retry(format!("listing {page_url} broke off: {error}"))
            })?;
            let page: Vec<TreeEntry> = serde_json::from_slice(&body).map_err(|error| {
                Attempt::Fail(HubError::Protocol {
                    uri: uri.original.clone(),
                    message: format!("{page_url} did not answer with a file list: {error}"),
                })
            })?;
            Ok((page, link))
        })
        .await?;
        entries.extend(page);
        next = link;
    }
    Ok(entries)
}

/// The `rel="next"` target of a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

async fn download(
    client: &HubClient,
    http: &reqwest::Client,
    uri: &HubUri,
    entry: &TreeEntry,
) -> Result<HubFile, HubError> {
    let local_path = client
        .cache_dir
        .join("hf/datasets")
        .join(&uri.owner)
        .join(&uri.name)
        .join(uri.revision_in_url())
        .join(&entry.path);
    let sidecar = with_suffix(&local_path, ".sha256");
    let file_uri = uri.file_uri(&entry.path);
    let expected_sha = entry.lfs.as_ref().map(|lfs| lfs.oid.to_ascii_lowercase());
    if let (Ok(meta), Ok(recorded)) = (
        std::fs::metadata(&local_path),
        std::fs::read_to_string(&sidecar),
    ) {
        let recorded = recorded.trim().to_owned();
        if meta.len() == entry.size && expected_sha.as_ref().is_none_or(|sha| *sha == recorded) {
            return Ok(HubFile {
                uri: file_uri,
                local_path,
                sha256: recorded,
                bytes: entry.size,
            });
        }
    }
    let parent = local_path.parent().unwrap_or(&client.cache_dir).to_owned();
    std::fs::create_dir_all(&parent).map_err(|source| HubError::Cache {
        path: parent.clone(),
        source,
    })?;
    let url = format!(
        "{}/datasets/{}/resolve/{}/{}",
        client.endpoint,
        uri.repo_id(),
        uri.revision_in_url(),
        entry.path
    );
    tracing::info!(uri = %file_uri, bytes = entry.size, "downloading");
    let part = with_suffix(&local_path, ".part");
    let sha256 = with_retries(client, uri, || {
        stream_to_file(
            client,
            http,
            uri,
            &url,
            &part,
            entry.size,
            expected_sha.as_deref(),
        )
    })
    .await?;
    write_atomically(&sidecar, format!("{sha256}\n").as_bytes())?;
    std::fs::rename(&part, &local_path).map_err(|source| HubError::Cache {
        path: local_path.clone(),
        source,
    })?;
    Ok(HubFile {
        uri: file_uri,
        local_path,
        sha256,
        bytes: entry.size,
    })
}

async fn stream_to_file(
    client: &HubClient,
    http: &reqwest::Client,
    uri: &HubUri,
    url: &str,
    part: &Path,
    size: u64,
    expected_sha: Option<&str>,
) -> Result<String, Attempt> {
    let cache_error = |source| {
        Attempt::Fail(HubError::Cache {
            path: part.to_owned(),
            source,
        })
    };
    let mut response = request(client, http, url)
        .send()
        .await
        .map_err(|error| Attempt::Retry(format!("cannot reach {url}: {error}")))?;
    if !response.status().is_success() {
        return Err(classify(response.status(), uri, url));
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(part).map_err(cache_error)?);
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    loop {
        let chunk = response.chunk().await.map_err(|error| {
            Attempt::Retry(format!(
                "download of {url} broke off after {received} of {size} bytes: {error}"
            ))
        })?;
        let Some(chunk) = chunk else { break };
        hasher.update(&chunk);
        received += chunk.len() as u64;
        out.write_all(&chunk).map_err(cache_error)?;
    }
    if received != size {
        return Err(Attempt::Retry(format!(
            "download of {url} is truncated: {received} of {size} bytes"
        )));
    }
    let file = out
        .into_inner()
        .map_err(|error| cache_error(error.into_error()))?;
    file.sync_all().map_err(cache_error)?;
    let sha256 = hex::encode(hasher.finalize());
    if let Some(expected) = expected_sha
        && expected != sha256
    {
        return Err(Attempt::Retry(format!(
            "download of {url} has sha256 {sha256}, the Hub lists {expected}"
        )));
    }
    Ok(sha256)
}

#[cfg(test)]
mod tests {
    use super::next_link;

    #[test]
    fn the_next_page_comes_from_the_link_header() {
        let header = "<https://hub.test/api/datasets/o/n/tree/main?cursor=abc>; rel=\"next\"";
        assert_eq!(
            next_link(header).as_deref(),
            Some("https://hub.test/api/datasets/o/n/tree/main?cursor=abc")
        );
        assert_eq!(next_link("<https://x>; rel=\"prev\""), None);
    }
}
