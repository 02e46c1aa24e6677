//! Background work that lives and stops with a server: projections, relays, consumers, jobs.

use std::fmt::Display;
use std::future::Future;

use tokio::sync::watch;
use tokio::task::JoinSet;

/// Tasks started beside a server and stopped together once it has drained.
pub struct Background {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Default for Background {
    fn default() -> Self {
        Self { stop: watch::channel(false).0, tasks: JoinSet::new() }
    }
}

impl Background {
    /// No tasks yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A future that resolves when [`Background::stop`] is called; hand one to each task.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.stop.subscribe();
        async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    }

    /// Runs `task`; an error it ends with is logged under `name` (it does not stop the server:
    /// health probes report what matters to callers).
    pub fn spawn<E: Display>(
        &mut self,
        name: &'static str,
        task: impl Future<Output = Result<(), E>> + Send + 'static,
    ) {
        self.tasks.spawn(async move {
            if let Err(error) = task.await {
                tracing::error!(task = name, %error, "Background task stopped.");
            }
        });
    }

    /// Signals every task to stop and waits until all have.
    pub async fn stop(mut self) {
        self.stop.send_replace(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[tokio::test]
    async fn stop_signals_every_task_and_waits_for_it() {
        let mut background = Background::new();
        let finished = Arc::new(AtomicBool::new(false));
        let (flag, stop) = (finished.clone(), background.stopped());
        background.spawn("waiter", async move {
            stop.await;
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            flag.store(true, Ordering::SeqCst);
            Ok::<(), std::convert::Infallible>(())
        });
        assert!(!finished.load(Ordering::SeqCst));
        background.stop().await;
        assert!(finished.load(Ordering::SeqCst), "stop waits for the task to finish");
    }
}
