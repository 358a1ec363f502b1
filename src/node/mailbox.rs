//! A bounded queue for a thread that mostly sleeps: its receiver blocks on a
//! condition variable at once, without the spinning and `sched_yield`s a
//! crossbeam channel does before it parks. A channel spins because its
//! receivers are usually about to get more; the cluster thread wakes a few
//! times per round, and on a host running 150 nodes every yield is a
//! context switch (a third of its CPU at idle, measured).

use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Shared<T> {
    queue: Mutex<VecDeque<T>>,
    ready: Condvar,
    capacity: usize,
}

/// The sending side; clone it for every thread that sends.
pub struct MailboxSender<T>(Arc<Shared<T>>);

impl<T> Clone for MailboxSender<T> {
    fn clone(&self) -> Self {
        MailboxSender(self.0.clone())
    }
}

/// The receiving side (one thread).
pub struct Mailbox<T>(Arc<Shared<T>>);

/// A mailbox holding at most `capacity` messages, and a sender for it.
pub fn bounded<T>(capacity: usize) -> (MailboxSender<T>, Mailbox<T>) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(VecDeque::new()),
        ready: Condvar::new(),
        capacity,
    });
    (MailboxSender(shared.clone()), Mailbox(shared))
}

impl<T> MailboxSender<T> {
    /// Queues a message, or hands it back when the mailbox is full.
    pub fn try_send(&self, message: T) -> Result<(), T> {
        let mut queue = self.0.queue.lock();
        if queue.len() >= self.0.capacity {
            return Err(message);
        }
        queue.push_back(message);
        crate::invariant!(
            queue.len() <= self.0.capacity,
            "{} messages in a mailbox of {}",
            queue.len(),
            self.0.capacity
        );
        drop(queue);
        self.0.ready.notify_one();
        Ok(())
    }
}

impl<T> Mailbox<T> {
    /// The next message, waiting for one until `deadline` at the latest.
    pub fn recv_until(&self, deadline: Instant) -> Option<T> {
        let mut queue = self.0.queue.lock();
        loop {
            if let Some(message) = queue.pop_front() {
                return Some(message);
            }
            if self.0.ready.wait_until(&mut queue, deadline).timed_out() {
                return queue.pop_front();
            }
        }
    }

    /// The next message, if one is queued.
    pub fn try_recv(&self) -> Option<T> {
        self.0.queue.lock().pop_front()
    }

    /// The next message, waiting for one at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<T> {
        self.recv_until(Instant::now() + timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_out_in_order_up_to_the_bound() {
        let (sender, mailbox) = bounded(2);
        assert!(sender.try_send(1).is_ok());
        assert!(sender.try_send(2).is_ok());
        assert_eq!(sender.try_send(3), Err(3), "full");
        assert_eq!(mailbox.try_recv(), Some(1));
        assert_eq!(mailbox.recv_timeout(Duration::ZERO), Some(2));
        assert_eq!(mailbox.try_recv(), None);
    }

    #[test]
    fn a_waiting_receiver_is_woken_by_a_send() {
        let (sender, mailbox) = bounded(1);
        let waiter = std::thread::spawn(move || mailbox.recv_timeout(Duration::from_secs(30)));
        sender.try_send(7).unwrap();
        assert_eq!(waiter.join().unwrap(), Some(7));
    }

    #[test]
    fn an_empty_mailbox_times_out() {
        let (_sender, mailbox) = bounded::<u8>(1);
        let started = Instant::now();
        assert_eq!(mailbox.recv_timeout(Duration::from_millis(20)), None);
        assert!(started.elapsed() >= Duration::from_millis(20));
    }
}
