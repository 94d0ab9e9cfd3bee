//! What each feed remembers of its last deliveries, for `feeds list` and the dashboard: the
//! last failure and the last success, in memory (since this collector started).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::clock::now_ms;
use crate::service::FeedHealth;

/// Per feed, its last delivery and failure.
#[derive(Debug, Default)]
pub struct StatusBoard {
    feeds: Mutex<HashMap<String, FeedHealth>>,
}

impl StatusBoard {
    /// Something was delivered to `feed` just now.
    pub fn delivered(&self, feed: &str) {
        let mut feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        let h = feeds.entry(feed.to_owned()).or_default();
        h.last_delivery_at_ms = Some(now_ms());
        h.last_error.clear();
    }

    /// A delivery to `feed` failed just now.
    pub fn failed(&self, feed: &str, error: &str) {
        let mut feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        let h = feeds.entry(feed.to_owned()).or_default();
        h.last_error = error.chars().take(500).collect();
        h.last_error_at_ms = Some(now_ms());
    }

    pub fn get(&self, feed: &str) -> FeedHealth {
        let feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        feeds.get(feed).cloned().unwrap_or_default()
    }
}
