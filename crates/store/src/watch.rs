//! A watch: the stream of changes under a prefix, one batch per revision.
//!
//! Every backend returns the same [`Watch`] type, built from its own stream.
//! Batches arrive in revision order with no gaps or duplicates. A watch ends
//! (`None`) after yielding an error; the usual recovery is to list the prefix
//! again and watch from the listing's revision + 1.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::{BoxStream, Stream, StreamExt};

use crate::{StoreError, WatchBatch};

/// A stream of [`WatchBatch`]es; drop it to stop watching.
pub struct Watch {
    stream: BoxStream<'static, Result<WatchBatch, StoreError>>,
    done: bool,
}

impl Watch {
    /// Wraps a backend's stream. The stream ends the watch when it returns `None`.
    pub fn from_stream(
        stream: impl Stream<Item = Result<WatchBatch, StoreError>> + Send + 'static,
    ) -> Self {
        Watch {
            stream: stream.boxed(),
            done: false,
        }
    }

    /// The next batch; `None` once the watch has ended.
    pub async fn recv(&mut self) -> Option<Result<WatchBatch, StoreError>> {
        self.next().await
    }
}

impl Stream for Watch {
    type Item = Result<WatchBatch, StoreError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let item = self.stream.poll_next_unpin(cx);
        if let Poll::Ready(Some(Err(_)) | None) = &item {
            self.done = true;
        }
        item
    }
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").field("done", &self.done).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ends_after_an_error() {
        let items = vec![
            Ok(WatchBatch {
                revision: 2,
                events: vec![],
            }),
            Err(StoreError::Closed),
            Ok(WatchBatch {
                revision: 3,
                events: vec![],
            }),
        ];
        let mut w = Watch::from_stream(futures::stream::iter(items));
        assert_eq!(w.recv().await.unwrap().unwrap().revision, 2);
        assert_eq!(w.recv().await, Some(Err(StoreError::Closed)));
        assert_eq!(w.recv().await, None);
    }
}
