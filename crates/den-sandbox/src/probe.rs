//! A deliberately tiny HTTP/1.1 client over a sandbox connection, for readiness checks,
//! benchmarks and tests. den's real OpenCode client lives in den-opencode.
//!
//! OpenCode accepts connections before it has initialised, and requests that arrive then never
//! get an answer, so every request here has its own short timeout and readiness is retried.

use std::time::{Duration, Instant};

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Result, SandboxError};
use crate::runtime::{BoxStream, SandboxRuntime};
use crate::spec::SandboxId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Basic-auth credentials (OpenCode's OPENCODE_SERVER_USERNAME / _PASSWORD).
#[derive(Debug, Clone)]
pub struct BasicAuth {
    pub user: String,
    pub password: String,
}

/// Sends one request (`Connection: close`) and reads the whole response.
pub async fn request(
    mut stream: BoxStream,
    method: &str,
    path: &str,
    auth: Option<&BasicAuth>,
    json_body: Option<&str>,
) -> std::io::Result<HttpResponse> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(a) = auth {
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", a.user, a.password));
        head.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    let body = json_body.unwrap_or("");
    if json_body.is_some() {
        head.push_str("Content-Type: application/json\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(head.as_bytes()).await?;
    // Read until the response is complete by its own framing: some servers keep the connection
    // open despite `Connection: close`, so EOF is only the fallback.
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(r) = parse(&raw, false) {
            return Ok(r);
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return parse(&raw, true).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed HTTP response")
            });
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

/// The response in `raw` if it is complete (or, at EOF, whatever body arrived).
fn parse(raw: &[u8], eof: bool) -> Option<HttpResponse> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split])
        .ok()?
        .to_ascii_lowercase();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let rest = &raw[split + 4..];
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(str::trim))
    };
    let body = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        dechunk(rest)?
    } else if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        rest.get(..len)?.to_vec()
    } else if eof || status == 204 || status == 304 {
        rest.to_vec()
    } else {
        return None;
    };
    Some(HttpResponse { status, body })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// A service inside a sandbox: where to connect and with which credentials.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub rt: &'a dyn SandboxRuntime,
    pub id: &'a SandboxId,
    pub port: u16,
    pub auth: Option<&'a BasicAuth>,
}

impl Target<'_> {
    /// One request, bounded by `timeout`.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        json_body: Option<&str>,
        timeout: Duration,
    ) -> Result<HttpResponse> {
        let what = format!("{method} {path} in {}", self.id);
        let fut = async {
            let stream = self.rt.connect(self.id, self.port).await?;
            request(stream, method, path, self.auth, json_body)
                .await
                .map_err(|source| SandboxError::Io {
                    what: what.clone(),
                    source,
                })
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| SandboxError::Timeout {
                what: what.clone(),
                secs: timeout.as_secs(),
            })?
    }

    /// Retries `GET path` (1 s per attempt) until it answers 200, the sandbox exits, or `total`
    /// passes. Returns how long it took.
    pub async fn wait_ready(&self, path: &str, total: Duration) -> Result<Duration> {
        let start = Instant::now();
        let mut status = self.rt.watch(self.id)?;
        loop {
            if let Ok(r) = self.call("GET", path, None, Duration::from_secs(1)).await
                && r.status == 200
            {
                return Ok(start.elapsed());
            }
            if let crate::SandboxStatus::Exited { reason } = &*status.borrow() {
                return Err(SandboxError::Host(format!(
                    "sandbox {} exited while waiting for port {}: {reason}",
                    self.id, self.port
                )));
            }
            if start.elapsed() > total {
                return Err(SandboxError::Timeout {
                    what: format!("waiting for {path} on port {} in {}", self.port, self.id),
                    secs: total.as_secs(),
                });
            }
            // Poll interval of a server that offers no readiness signal; an exit ends it early.
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = status.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_responses() {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", false).unwrap();
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhi", false),
            None
        );
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hi"[..]));
        let r = parse(b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", false).unwrap();
        assert_eq!((r.status, r.text()), (404, "abcde".to_owned()));
    }
}
