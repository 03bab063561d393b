//! The one reader of server-sent events: a small incremental parser for `text/event-stream`
//! (the part of the WHATWG rules we need: `event:`, multi-line `data:`, comments, CR/LF/CRLF
//! line ends), for hitl-extauth's `/events` ([`crate::extauth::client`]) and the A2A
//! stream the scenes read from kagent. The parser does no I/O: feed it bytes as they arrive;
//! [`events`] (feature `client`) feeds it an HTTP response.

/// The media type of an event stream.
pub const CONTENT_TYPE: &str = "text/event-stream";

/// One dispatched server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; `message` when absent.
    pub event: String,
    /// The `data:` lines joined by `\n`.
    pub data: String,
}

/// Feed bytes in as they arrive; take complete events out.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
    /// The previous chunk ended in `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
}

/// A line longer than this (1 MiB) means the peer is not speaking SSE; drop the connection.
pub const MAX_LINE: usize = 1 << 20;

/// The stream broke the protocol.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("server-sent event line longer than {MAX_LINE} bytes")]
pub struct LineTooLong;

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `chunk`; returns the events it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, LineTooLong> {
        let mut events = Vec::new();
        for &byte in chunk {
            if std::mem::take(&mut self.after_cr) && byte == b'\n' {
                continue;
            }
            match byte {
                b'\r' | b'\n' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.buffer);
                    if let Some(event) = self.line(&String::from_utf8_lossy(&line)) {
                        events.push(event);
                    }
                }
                _ => {
                    if self.buffer.len() >= MAX_LINE {
                        return Err(LineTooLong);
                    }
                    self.buffer.push(byte);
                }
            }
        }
        Ok(events)
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let event = self.event.take();
            return self.data.take().map(|data| SseEvent {
                event: event.unwrap_or_else(|| "message".into()),
                data,
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            _ => {} // `id`, `retry` and unknown fields: not needed here.
        }
        None
    }
}

/// Reading an event stream from the network failed.
#[cfg(feature = "client")]
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The connection broke mid-stream.
    #[error("event stream broke: {0}")]
    Broke(#[source] reqwest::Error),
    #[error(transparent)]
    TooLong(#[from] LineTooLong),
}

/// The events of `response`'s body as they arrive (its status and content type are the
/// caller's to check first). The stream ends with the body, or after its first error.
#[cfg(feature = "client")]
pub fn events(
    response: reqwest::Response,
) -> impl futures::Stream<Item = Result<SseEvent, StreamError>> + Send {
    use futures::StreamExt as _;
    let mut parser = SseParser::new();
    let mut failed = false;
    response
        .bytes_stream()
        .map(move |chunk| -> Vec<Result<SseEvent, StreamError>> {
            let parsed = chunk
                .map_err(StreamError::Broke)
                .and_then(|chunk| Ok(parser.push(&chunk)?));
            match parsed {
                Ok(events) => events.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            }
        })
        .flat_map(futures::stream::iter)
        .take_while(move |item| {
            let go_on = !failed;
            failed |= item.is_err();
            std::future::ready(go_on)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn events_split_across_chunks() {
        let mut parser = SseParser::new();
        assert_eq!(parser.push(b"event: par").unwrap(), vec![]);
        assert_eq!(parser.push(b"ked\ndata: {\"a\":").unwrap(), vec![]);
        assert_eq!(
            parser.push(b"1}\n\nevent:decided\ndata:x\n\n").unwrap(),
            vec![ev("parked", "{\"a\":1}"), ev("decided", "x")]
        );
    }

    #[test]
    fn comments_multiline_data_and_line_endings() {
        let mut parser = SseParser::new();
        let events = parser
            .push(b": keep-alive\r\n\r\ndata: a\r\ndata: b\r\rdata:c\r")
            .unwrap();
        assert_eq!(events, vec![ev("message", "a\nb")]);
        // CR at a chunk's end followed by LF at the next one's start is one line end.
        assert_eq!(parser.push(b"\n\n").unwrap(), vec![ev("message", "c")]);
    }

    #[test]
    fn event_without_data_is_not_dispatched() {
        let mut parser = SseParser::new();
        assert_eq!(
            parser.push(b"event: x\n\nid: 3\ndata\n\n").unwrap(),
            vec![ev("message", "")]
        );
    }

    #[test]
    fn runaway_line_is_an_error() {
        let mut parser = SseParser::new();
        let big = vec![b'a'; MAX_LINE + 1];
        assert_eq!(parser.push(&big), Err(LineTooLong));
    }
}

#[cfg(all(test, feature = "client"))]
mod stream_tests {
    use futures::StreamExt as _;

    use super::*;

    fn response(body: Vec<u8>) -> reqwest::Response {
        reqwest::Response::from(http::Response::new(body))
    }

    #[test]
    fn a_response_yields_its_complete_events_and_not_a_torn_last_one() {
        let body =
            b"event: parked\ndata: {\"a\":1}\n\n: keep-alive\n\ndata: x\n\ndata: torn".to_vec();
        let events: Vec<_> = futures::executor::block_on(events(response(body)).collect());
        let events: Vec<_> = events.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            events,
            [
                SseEvent {
                    event: "parked".into(),
                    data: "{\"a\":1}".into()
                },
                SseEvent {
                    event: "message".into(),
                    data: "x".into()
                },
            ]
        );
    }

    #[test]
    fn a_line_too_long_is_one_error_and_the_end_of_the_stream() {
        let mut body = b"data: ok\n\n".to_vec();
        body.extend(std::iter::repeat_n(b'x', MAX_LINE + 1));
        body.extend(b"\n\ndata: after\n\n");
        let items: Vec<_> = futures::executor::block_on(events(response(body)).collect());
        // Nothing after the error: the peer is not speaking SSE.
        assert!(
            matches!(items.last(), Some(Err(StreamError::TooLong(LineTooLong)))),
            "{items:?}"
        );
        assert!(
            !items
                .iter()
                .any(|i| matches!(i, Ok(e) if e.data == "after")),
            "{items:?}"
        );
    }
}
