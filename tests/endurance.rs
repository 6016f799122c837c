//! A short endurance run: epochs with two loader workers hold memory flat and the thread count
//! constant. (Its own test binary, so no other test's threads or memory mix in. The long run is
//! `minibatch train --epochs 30 --workers 2`.)

mod common;
use common::mnist_dir;
use minibatch::learner::{Callback, Ctx, Flow, Learner};
use minibatch::{get_dls_with, get_model, DlsOptions, Mnist};
use std::cell::RefCell;
use std::rc::Rc;

fn status(field: &str) -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

struct Watch(Rc<RefCell<Vec<(usize, usize)>>>);

impl Callback for Watch {
    fn after_epoch(&mut self, _: &mut Ctx) -> Flow {
        self.0.borrow_mut().push((status("VmRSS:"), status("Threads:")));
        Flow::Continue
    }
}

#[test]
fn memory_and_threads_stay_flat_across_epochs() {
    let data = Mnist::load(mnist_dir()).unwrap();
    let options = DlsOptions { workers: 2, ..Default::default() };
    let (train_dl, valid_dl) = get_dls_with(data.train.slice(0, 10_000).unwrap(), data.valid, 64, options).unwrap();
    let (model, opt) = get_model(784, 50, 10, 0.5, 0).unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let mut learn =
        Learner::new(model, minibatch::fast::cross_entropy, opt, train_dl, valid_dl).with_callback(Watch(seen.clone()));
    learn.fit(12).unwrap();
    let seen = seen.borrow();
    let (rss2, threads2) = seen[1];
    for (epoch, &(rss, threads)) in seen.iter().enumerate().skip(2) {
        assert_eq!(threads, threads2, "threads after epoch {}", epoch + 1);
        assert!(
            (rss as f64) <= rss2 as f64 * 1.10,
            "RSS after epoch {}: {rss} kB against {rss2} kB after epoch 2",
            epoch + 1
        );
    }
}
