//! A Server-Sent Events client for the tests: reads `/api/v1/stream` on a thread of its own
//! and hands over each message as it arrives, so a test waits for messages with a deadline
//! instead of sleeping.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// One message: its `id`, `event` and `data` (as JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: Option<u64>,
    pub event: String,
    pub data: Value,
}

pub struct EventStream {
    messages: Receiver<Message>,
}

impl EventStream {
    /// Opens `url` with `req`'s credentials and headers; panics unless it answers 200 with
    /// `text/event-stream`.
    pub fn open(req: reqwest::blocking::RequestBuilder) -> EventStream {
        let response = req.send().unwrap();
        assert_eq!(response.status().as_u16(), 200, "the stream opens");
        let kind = response.headers()["content-type"].to_str().unwrap();
        assert!(kind.starts_with("text/event-stream"), "{kind}");
        let (tx, messages) = channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(response).lines();
            let (mut id, mut event, mut data) = (None, String::new(), String::new());
            while let Some(Ok(line)) = lines.next() {
                if line.is_empty() {
                    if !data.is_empty() {
                        let message = Message {
                            id,
                            event: std::mem::take(&mut event),
                            data: serde_json::from_str(&data).unwrap_or(Value::String(data)),
                        };
                        if tx.send(message).is_err() {
                            return;
                        }
                    }
                    (id, event, data) = (None, String::new(), String::new());
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
        });
        EventStream { messages }
    }

    /// The next message within `timeout`, `None` if none came or the stream ended.
    pub fn next(&self, timeout: Duration) -> Option<Message> {
        self.messages.recv_timeout(timeout).ok()
    }

    /// Messages until `done` holds for one (included); panics after `timeout`.
    pub fn until(&self, timeout: Duration, done: impl Fn(&Message) -> bool) -> Vec<Message> {
        let deadline = Instant::now() + timeout;
        let mut seen = vec![];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = self
                .next(left)
                .unwrap_or_else(|| panic!("the stream ended or stalled; seen: {seen:#?}"));
            let stop = done(&m);
            seen.push(m);
            if stop {
                return seen;
            }
        }
    }
}
