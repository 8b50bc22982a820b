//! The in-app channel: notifications on a broadcast stream that the caller or a dashboard reads.

use std::sync::{Arc, Mutex};

use futures::Stream;
use tokio::sync::broadcast;

use super::Notification;
use super::notifier::Notifier;
use super::notifier::NotifyError;

/// The notifier of an in-app channel: every notification goes to every current listener.
/// Delivery never fails and never waits; a listener that falls behind is told how many it missed.
#[derive(Debug, Clone)]
pub struct InAppNotifier {
    tx: Arc<Mutex<Option<broadcast::Sender<Arc<Notification>>>>>,
}

impl InAppNotifier {
    /// A channel keeping up to `buffer` notifications for slow listeners.
    #[must_use]
    pub fn new(buffer: usize) -> Self {
        Self {
            tx: Arc::new(Mutex::new(Some(broadcast::channel(buffer.max(1)).0))),
        }
    }

    /// Follows the notifications sent from now on.
    #[must_use]
    pub fn subscribe(&self) -> InAppStream {
        let rx = match &*self.tx.lock().expect("inapp lock") {
            Some(tx) => tx.subscribe(),
            None => broadcast::channel(1).1,
        };
        InAppStream { rx }
    }

    /// Ends every listener's stream (after their pending notifications).
    pub fn close(&self) {
        self.tx.lock().expect("inapp lock").take();
    }
}

#[async_trait::async_trait]
impl Notifier for InAppNotifier {
    async fn notify(&self, notification: &Notification) -> Result<(), NotifyError> {
        if let Some(tx) = &*self.tx.lock().expect("inapp lock") {
            // No listener is not a failure: the stream is for whoever reads it.
            let _ = tx.send(Arc::new(notification.clone()));
        }
        Ok(())
    }
}

/// One item of an [`InAppStream`].
#[derive(Debug, Clone, PartialEq)]
pub enum InAppEvent {
    /// A notification.
    Notification(Arc<Notification>),
    /// The listener fell behind and this many notifications were dropped for it.
    Skipped(u64),
}

/// A listener's view of an in-app channel; ends when the manager shuts down.
#[derive(Debug)]
pub struct InAppStream {
    rx: broadcast::Receiver<Arc<Notification>>,
}

impl InAppStream {
    /// The next notification; `None` once the channel is closed and everything was read.
    pub async fn next(&mut self) -> Option<InAppEvent> {
        match self.rx.recv().await {
            Ok(n) => Some(InAppEvent::Notification(n)),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(InAppEvent::Skipped(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The notifications as a `futures::Stream`.
    pub fn into_stream(self) -> impl Stream<Item = InAppEvent> + Send + Unpin {
        Box::pin(futures::stream::unfold(self, |mut s| async move {
            s.next().await.map(|e| (e, s))
        }))
    }
}
