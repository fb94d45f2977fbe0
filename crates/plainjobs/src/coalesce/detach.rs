//! A future that runs in place, in whoever awaits it, and is finished by a task of its own
//! if that caller goes away first: a batch's leader is one of the callers, and its being
//! cancelled must not leave the others without an answer. No task in the usual case.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

type Boxed = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

pub(super) struct Detach(Option<Boxed>);

impl Detach {
    pub(super) fn new(fut: impl Future<Output = ()> + Send + 'static) -> Detach {
        Detach(Some(Box::pin(fut)))
    }
}

impl Future for Detach {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(fut) = self.0.as_mut() else {
            return Poll::Ready(());
        };
        if fut.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.0 = None;
        Poll::Ready(())
    }
}

impl Drop for Detach {
    fn drop(&mut self) {
        if let Some(rest) = self.0.take() {
            // Without a runtime (it is shutting down) the rest is dropped: its callers are
            // told their rows may have been inserted (`unanswered`).
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(rest);
            }
        }
    }
}
