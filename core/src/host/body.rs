//! The request body limit (SECURITY-CHECKLIST G2) and the answers about a body
//! ([`BodyError`]): 413 beyond the limit (by `Content-Length` before reading, or while
//! streaming), 400 for a body that could not be read, 408 for one that did not arrive in time. [`Capped`] is the one
//! byte-counting buffer behind both the inbound limit and the outbound fetchers' (S5);
//! [`read`] streams any `http_body::Body` (hyper's, Spin's) through it.

use bytes::{Buf, Bytes};
use http::{header, HeaderMap, Response, StatusCode};

use crate::error::{Error, ErrorCode};
use crate::response::error_json;

/// Largest request body any host accepts and any router handles (G2).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The 413 answer for a body over [`MAX_BODY_BYTES`].
pub fn too_large() -> Response<Bytes> {
    error_json(&Error::new(
        ErrorCode::PayloadTooLarge,
        format!(
            "the request body is larger than {} KiB",
            MAX_BODY_BYTES / 1024
        ),
    ))
}

/// Why a request body was refused. [`BodyError::response`] is the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Over [`MAX_BODY_BYTES`] (declared or while reading): 413.
    #[error("the request body is larger than the limit")]
    TooLarge,
    /// The runtime failed to deliver it: 400.
    #[error("the request body could not be read")]
    Unreadable,
    /// It did not arrive in time (hosts with a body timeout): 408.
    #[error("the request body did not arrive in time")]
    TimedOut,
}

impl BodyError {
    /// The answer to the client.
    pub fn response(self) -> Response<Bytes> {
        match self {
            Self::TooLarge => too_large(),
            Self::Unreadable => error_json(&Error::invalid_request(self.to_string())),
            Self::TimedOut => {
                let mut resp = error_json(&Error::invalid_request(self.to_string()));
                *resp.status_mut() = StatusCode::REQUEST_TIMEOUT;
                resp
            }
        }
    }
}

/// The `Content-Length` a message declares, if it is a number.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// The limit was exceeded (declared or while reading).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exceeded;

/// A body read chunk by chunk up to `max` bytes.
#[derive(Debug)]
pub struct Capped {
    max: usize,
    buf: Vec<u8>,
}

impl Capped {
    /// A buffer for a body of at most `max` bytes; refused at once when `declared` (its
    /// `Content-Length`) is already larger.
    pub fn new(max: usize, declared: Option<u64>) -> Result<Self, Exceeded> {
        if declared.is_some_and(|n| n > max as u64) {
            return Err(Exceeded);
        }
        Ok(Self {
            max,
            buf: Vec::new(),
        })
    }

    /// Appends a chunk; refused when the body would exceed the limit.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), Exceeded> {
        if self.buf.len() + chunk.len() > self.max {
            return Err(Exceeded);
        }
        self.buf.extend_from_slice(chunk);
        Ok(())
    }

    /// The body read.
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

/// A request body read under [`MAX_BODY_BYTES`].
#[derive(Debug)]
pub struct RequestBody(Capped);

impl RequestBody {
    /// A buffer for the body of a request with `headers`; [`BodyError::TooLarge`] when its
    /// `Content-Length` is already over the limit.
    pub fn new(headers: &HeaderMap) -> Result<Self, BodyError> {
        Capped::new(MAX_BODY_BYTES, declared_length(headers))
            .map(Self)
            .map_err(|_| BodyError::TooLarge)
    }

    /// Appends a chunk; [`BodyError::TooLarge`] when the body goes over the limit.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), BodyError> {
        self.0.push(chunk).map_err(|_| BodyError::TooLarge)
    }

    /// The body read.
    pub fn finish(self) -> Bytes {
        Bytes::from(self.0.into_vec())
    }
}

/// Reads the body of a request with `headers` under [`MAX_BODY_BYTES`], frame by frame:
/// refused as soon as it is (or declares to be) larger, or when the runtime fails to
/// deliver it. Trailers are ignored.
pub async fn read<B: http_body::Body>(headers: &HeaderMap, body: B) -> Result<Bytes, BodyError> {
    let mut buf = RequestBody::new(headers)?;
    let mut body = std::pin::pin!(body);
    while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let Ok(mut data) = frame.map_err(|_| BodyError::Unreadable)?.into_data() else {
            continue;
        };
        while data.has_remaining() {
            let chunk = data.chunk();
            let n = chunk.len();
            buf.push(chunk)?;
            data.advance(n);
        }
    }
    Ok(buf.finish())
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn with_length(n: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_str(n).unwrap());
        h
    }

    fn error_of(resp: &Response<Bytes>) -> String {
        let v: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
        v["error"].as_str().unwrap().to_owned()
    }

    #[test]
    fn g2_declared_length_over_the_limit_is_413_before_reading() {
        let err = RequestBody::new(&with_length(&(MAX_BODY_BYTES + 1).to_string())).unwrap_err();
        let resp = err.response();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(error_of(&resp), "payload_too_large");
        assert!(RequestBody::new(&with_length(&MAX_BODY_BYTES.to_string())).is_ok());
        // A malformed length is not believed either way: the stream decides.
        assert!(RequestBody::new(&with_length("lots")).is_ok());
    }

    #[test]
    fn g2_streamed_body_is_413_at_the_first_byte_over_the_limit() {
        let mut body = RequestBody::new(&HeaderMap::new()).unwrap();
        let chunk = vec![b'a'; 16 * 1024];
        for _ in 0..4 {
            body.push(&chunk).unwrap();
        }
        assert_eq!(body.push(b"a").unwrap_err(), BodyError::TooLarge);
        let mut exact = RequestBody::new(&HeaderMap::new()).unwrap();
        exact.push(&vec![b'b'; MAX_BODY_BYTES]).unwrap();
        assert_eq!(exact.finish().len(), MAX_BODY_BYTES);
    }

    #[test]
    fn capped_counts_every_chunk() {
        let mut c = Capped::new(5, None).unwrap();
        c.push(b"ab").unwrap();
        c.push(b"cde").unwrap();
        assert_eq!(c.push(b"f"), Err(Exceeded));
        assert_eq!(Capped::new(5, Some(6)).unwrap_err(), Exceeded);
        let mut c = Capped::new(5, Some(5)).unwrap();
        c.push(b"hello").unwrap();
        assert_eq!(c.into_vec(), b"hello");
    }

    /// A body delivered in `chunks`, then failing when `fail` is set.
    struct Chunks {
        chunks: Vec<&'static [u8]>,
        fail: bool,
    }

    impl http_body::Body for Chunks {
        type Data = Bytes;
        type Error = &'static str;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, &'static str>>> {
            let next = if self.chunks.is_empty() {
                self.fail.then_some(Err("connection reset"))
            } else {
                let c = self.chunks.remove(0);
                Some(Ok(http_body::Frame::data(Bytes::from_static(c))))
            };
            std::task::Poll::Ready(next)
        }
    }

    #[test]
    fn read_streams_frames_under_the_limit() {
        let run = |chunks: Vec<&'static [u8]>, fail: bool| {
            futures::executor::block_on(read(&HeaderMap::new(), Chunks { chunks, fail }))
        };
        assert_eq!(run(vec![b"a=1", b"&b=2"], false).unwrap(), "a=1&b=2");
        let big: &'static [u8] = Box::leak(vec![b'x'; 40 * 1024].into_boxed_slice());
        assert_eq!(run(vec![big, big], false).unwrap_err(), BodyError::TooLarge);
        assert_eq!(run(vec![b"a"], true).unwrap_err(), BodyError::Unreadable);
        let declared = with_length("70000");
        let resp = futures::executor::block_on(read(
            &declared,
            Chunks {
                chunks: vec![b"a"],
                fail: false,
            },
        ))
        .unwrap_err();
        assert_eq!(resp, BodyError::TooLarge);
    }

    #[test]
    fn other_body_answers() {
        let unreadable = BodyError::Unreadable.response();
        assert_eq!(unreadable.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error_of(&unreadable), "invalid_request");
        let late = BodyError::TimedOut.response();
        assert_eq!(late.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(error_of(&late), "invalid_request");
        assert_eq!(
            BodyError::TooLarge.response().status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }
}
