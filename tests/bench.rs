//! The benchmark behind `minibatch bench`: its phases account for the epoch it times.

mod common;
use minibatch::benchmark::{configs, run, Engine};

#[test]
fn the_phases_of_an_epoch_add_up_to_it() {
    let data = minibatch::Mnist::load(common::mnist_dir()).unwrap();
    let notebook = configs().into_iter().find(|c| c.name == "notebook").unwrap();
    let r = run(&notebook, Engine::Fast, 2, &data).unwrap();
    let p = r.phase_seconds;
    let parts = [p.data, p.forward, p.loss, p.backward, p.step, p.other];
    assert!(parts.iter().all(|&v| v >= 0.0), "{p:?}");
    assert!(p.forward > 0.0 && p.backward > 0.0 && p.step > 0.0, "{p:?}");
    // Phases are the mean over the epochs; validation, between them, is in none.
    let (sum, epoch) = (parts.iter().sum::<f64>(), r.epoch_seconds.iter().sum::<f64>() / 2.0);
    assert!(sum <= epoch && sum > 0.9 * epoch, "phases {sum} s of an epoch of {epoch} s: {p:?}");
    assert!(r.valid_accuracy > 0.9, "{}", r.valid_accuracy);
}
