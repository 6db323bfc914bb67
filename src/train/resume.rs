//! Training that survives an interruption. After every epoch the trainer writes what the next
//! epochs depend on to one file (`training.ckpt` in the run folder, atomically): the network after
//! the epoch (its parameter ids, which key the optimizer's state), the optimizer's moments, the
//! best validation epoch's network, the epoch log, the step count and where the stream of mixes
//! stands. Training started again with that file goes on after its last epoch and ends where the
//! uninterrupted run ends, to the bit: the data order is shuffled again through the epochs done,
//! the mixes are the stream's next draws, augmentation is seeded by the epoch, and the backend's
//! own stream (stochastic depth) is seeded anew at every epoch after the first (the first draws the
//! initial weights, which are drawn again before the saved ones replace them).
//!
//! The file: the 8 bytes `TBTRAIN1`, the length of a JSON header as a little-endian u64, the
//! header ([`Header`]), then the three records it gives the lengths of.

use std::io::Read as _;
use std::path::Path;

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

use super::EpochLog;
use crate::error::{Error, Result};
use crate::model::Backbone;

/// The name of the file in a run folder.
pub const STATE_FILE: &str = "training.ckpt";

const MAGIC: &[u8; 8] = b"TBTRAIN1";

/// Where the trainer keeps its state, and the resolved scenario it trains for (recorded, so that a
/// later run can tell whether the state is its own).
pub struct Checkpointing<'a> {
    pub path: &'a Path,
    pub scenario: &'a serde_json::Value,
}

#[derive(Serialize, Deserialize)]
struct Header {
    scenario: serde_json::Value,
    /// Epochs done, the optimizer steps and training images they took, and their seconds.
    epochs: usize,
    steps: usize,
    images: usize,
    secs: f64,
    /// Each epoch's log: its number, then the bits of its learning rate, training loss,
    /// validation accuracy and seconds (JSON numbers do not always read back to the same bits).
    logs: Vec<(usize, [u64; 4])>,
    best_epoch: usize,
    best_val_accuracy: u64,
    /// Word position of the mix stream (decimal: a u128).
    mix_position: Option<String>,
    /// Byte lengths of the network after the last epoch, of the best epoch's network, and of the
    /// optimizer's state.
    lengths: [u64; 3],
}

/// What training goes on from.
pub(super) struct State {
    pub epochs: usize,
    pub steps: usize,
    pub images: usize,
    pub secs: f64,
    pub logs: Vec<EpochLog>,
    pub best_epoch: usize,
    pub best_val_accuracy: f64,
    pub mix_position: Option<u128>,
    pub last: ModuleRecord,
    pub best: ModuleRecord,
    pub optimizer: Bytes,
}

/// The progress of training after an epoch, borrowed from the trainer.
pub(super) struct Progress<'a> {
    pub epochs: usize,
    pub steps: usize,
    pub images: usize,
    pub secs: f64,
    pub logs: &'a [EpochLog],
    pub best: (usize, f64, &'a Backbone),
    pub mix_position: Option<u128>,
}

fn internal(what: &str) -> impl Fn(burn::store::RecordError) -> Error + '_ {
    move |e| Error::Internal(format!("training checkpoint, {what}: {e}"))
}

/// Writes the state after an epoch (`model` and `optimizer` as they are after it).
pub(super) fn write(at: &Checkpointing, p: Progress, model: &Backbone, optimizer: &ModuleOptimizer) -> Result<()> {
    let last = model.clone().into_record().into_bytes().map_err(internal("network"))?;
    let best = p
        .best
        .2
        .clone()
        .into_record()
        .into_bytes()
        .map_err(internal("best network"))?;
    let optim = optimizer.into_bytes().map_err(internal("optimizer"))?;
    let header = Header {
        scenario: at.scenario.clone(),
        epochs: p.epochs,
        steps: p.steps,
        images: p.images,
        secs: p.secs,
        logs: p
            .logs
            .iter()
            .map(|l| (l.epoch, [l.lr, l.train_loss, l.val_accuracy, l.secs].map(f64::to_bits)))
            .collect(),
        best_epoch: p.best.0,
        best_val_accuracy: p.best.1.to_bits(),
        mix_position: p.mix_position.map(|m| m.to_string()),
        lengths: [last.len() as u64, best.len() as u64, optim.len() as u64],
    };
    let json = serde_json::to_vec(&header).map_err(|e| Error::Internal(format!("training checkpoint: {e}")))?;
    let mut bytes = Vec::with_capacity(16 + json.len() + last.len() + best.len() + optim.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(json.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&json);
    for part in [&last[..], &best[..], &optim[..]] {
        bytes.extend_from_slice(part);
    }
    Ok(tunnelbench_plot::write_atomic(at.path, &bytes)?)
}

fn not_a_state(path: &Path, what: &str) -> Error {
    Error::input(path, format!("not a training checkpoint of this version: {what}"))
}

/// The file at `path`, opened after its header, and the header; an error naming it when it is no
/// complete state file.
fn open(path: &Path) -> Result<(std::fs::File, Header)> {
    let bad = |what: &str| not_a_state(path, what);
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut head = [0u8; 16];
    if file.read_exact(&mut head).is_err() || &head[..8] != MAGIC {
        return Err(bad("no TBTRAIN1 header"));
    }
    let len = u64::from_le_bytes(head[8..16].try_into().expect("8 bytes"));
    if len > size - 16 {
        return Err(bad("truncated"));
    }
    let mut json = vec![0u8; len as usize];
    file.read_exact(&mut json).map_err(|e| Error::io(path, e))?;
    let header: Header = serde_json::from_slice(&json).map_err(|e| bad(&e.to_string()))?;
    let expected = header
        .lengths
        .iter()
        .try_fold(16 + len, |total, &n| total.checked_add(n))
        .ok_or_else(|| bad("truncated"))?;
    match expected.cmp(&size) {
        std::cmp::Ordering::Greater => Err(bad("truncated")),
        std::cmp::Ordering::Less => Err(bad("bytes after its records")),
        std::cmp::Ordering::Equal => Ok((file, header)),
    }
}

/// The resolved scenario that the state at `path` was trained for (its header alone is read);
/// `None` when there is no file.
pub fn recorded_scenario(path: &Path) -> Result<Option<serde_json::Value>> {
    if !path.is_file() {
        return Ok(None);
    }
    Ok(Some(open(path)?.1.scenario))
}

/// The state at `path`, if any.
pub(super) fn read(path: &Path) -> Result<Option<State>> {
    if !path.is_file() {
        return Ok(None);
    }
    let (mut file, h) = open(path)?;
    let [last, best, optimizer] = h.lengths.map(|n| {
        let mut part = vec![0u8; n as usize];
        file.read_exact(&mut part).map(|_| part)
    });
    let io = |e: std::io::Error| Error::io(path, e);
    let (last, best, optimizer) = (last.map_err(io)?, best.map_err(io)?, optimizer.map_err(io)?);
    let bad = |what: &str| not_a_state(path, what);
    let position = |s: &str| s.parse::<u128>().map_err(|_| bad("a stream position is not a number"));
    let record = |b: Vec<u8>| ModuleRecord::from_bytes(Bytes::from_bytes_vec(b)).map_err(|e| bad(&e.to_string()));
    Ok(Some(State {
        epochs: h.epochs,
        steps: h.steps,
        images: h.images,
        secs: h.secs,
        best_epoch: h.best_epoch,
        best_val_accuracy: f64::from_bits(h.best_val_accuracy),
        mix_position: h.mix_position.as_deref().map(position).transpose()?,
        logs: h
            .logs
            .into_iter()
            .map(|(epoch, bits)| {
                let [lr, train_loss, val_accuracy, secs] = bits.map(f64::from_bits);
                EpochLog {
                    epoch,
                    lr,
                    train_loss,
                    val_accuracy,
                    secs,
                }
            })
            .collect(),
        last: record(last)?,
        best: record(best)?,
        optimizer: Bytes::from_bytes_vec(optimizer),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ArchSpec;
    use crate::train::adamw::FusedAdamW;
    use crate::train::adamw::tests::flat as values;
    use burn::optim::GradientsParams;
    use burn::tensor::{Device, Distribution, Tensor};

    /// Steps of AdamW, the state written after two of them and read into a fresh network and
    /// optimizer: the third step from it equals the third step of the uninterrupted run.
    #[test]
    fn a_step_after_reading_the_state_is_the_step_without_the_interruption() {
        let device = Device::flex();
        device.seed(3);
        let ad = device.clone().autodiff();
        let spec = ArchSpec::named("vggm-11").with_width(0.125);
        let x = Tensor::<4>::random([4, 3, 32, 32], Distribution::Normal(0.0, 1.0), &ad);
        let step = |model: Backbone, optim: &mut ModuleOptimizer| {
            let grads = GradientsParams::from_grads(model.forward(x.clone()).powi_scalar(2).mean().backward(), &model);
            optim.step(1e-3, model, grads)
        };
        let mut model = Backbone::new(&spec, 5, 32, &ad).unwrap();
        let mut optim = FusedAdamW::init(1e-8, 0.05);
        for _ in 0..2 {
            model = step(model, &mut optim);
        }
        let dir = std::env::temp_dir().join(format!("tb-resume-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(STATE_FILE);
        let scenario = serde_json::json!({"name": "test"});
        let at = Checkpointing {
            path: &path,
            scenario: &scenario,
        };
        let valid = model.valid();
        let logs = Vec::new();
        let progress = Progress {
            epochs: 1,
            steps: 2,
            images: 8,
            secs: 1.0,
            logs: &logs,
            best: (1, 0.5, &valid),
            mix_position: Some(77),
        };
        write(&at, progress, &model, &optim).unwrap();
        let expected = values(&valid);
        let want = values(&step(model, &mut optim).valid());

        device.seed(9);
        let state = read(&path).unwrap().unwrap();
        assert_eq!((state.epochs, state.steps, state.mix_position), (1, 2, Some(77)));
        let fresh = Backbone::new(&spec, 5, 32, &ad).unwrap();
        let loaded = fresh.try_load_record(state.last).unwrap();
        assert_eq!(values(&loaded.valid()), expected);
        let mut optim = FusedAdamW::init(1e-8, 0.05).from_bytes(state.optimizer).unwrap();
        let got = values(&step(loaded, &mut optim).valid());
        let differ = got.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert_eq!(differ, 0, "{differ} of {} values differ", got.len());
        assert_eq!(recorded_scenario(&path).unwrap(), Some(scenario.clone()));
        // A cut or lengthened file is an input error naming it, never a state.
        let bytes = std::fs::read(&path).unwrap();
        for (cut, want) in [
            (&bytes[..bytes.len() - 1], "truncated"),
            (&bytes[..10], "no TBTRAIN1 header"),
            (&[&bytes[..], b"x"].concat()[..], "bytes after its records"),
        ] {
            std::fs::write(&path, cut).unwrap();
            let Err(err) = read(&path) else { panic!("{want}: read") };
            assert_eq!(err.exit_code(), 2);
            assert!(
                err.to_string().contains(want) && err.to_string().contains(STATE_FILE),
                "{err}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
