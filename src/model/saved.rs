//! The network a run trained, kept as a `.safetensors` file: every parameter and batch-norm
//! statistic under the backbone's own names, and what the network is (architecture, classes,
//! resolution, the run it came from) as the file's metadata, so that a later run can probe it
//! again without training it (`model.weights`, `run --trained`).

use std::io::Read as _;
use std::path::Path;

use burn::store::{ModuleSnapshot, SafetensorsStore};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::arch::ArchSpec;
use super::backbone::Backbone;
use crate::error::{Error, Result};

/// The name of the file in a run folder.
pub const MODEL_FILE: &str = "model.safetensors";

/// The metadata key that holds [`SavedNetwork`] as JSON.
const METADATA_KEY: &str = "tunnelbench";

/// What a saved network is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedNetwork {
    /// The architecture as the run's scenario gave it.
    pub architecture: ArchSpec,
    /// Classes of its head.
    pub classes: usize,
    /// The input resolution it was trained at.
    pub resolution: usize,
    /// The scenario and ID data set it was trained in, and the scenario's seed.
    pub scenario: String,
    pub trained_on: String,
    pub seed: u64,
    /// The training epoch whose network this is (the best on the validation set), and its
    /// validation accuracy.
    pub epoch: usize,
    pub val_accuracy: Option<f64>,
    /// The version of tunnelbench that wrote the file.
    pub version: String,
}

/// Keys of the architecture that loading and probing may change without changing the network's
/// parameters: where it was loaded from, its regularisation, which tokens a probe averages.
const NOT_THE_STRUCTURE: [&str; 6] = [
    "weights",
    "key_prefix",
    "ignore_keys",
    "resample_positions",
    "drop_path",
    "probe_tokens",
];

impl SavedNetwork {
    /// The `.safetensors` bytes of `model` (a validation-mode network) with this description.
    pub fn to_bytes(&self, model: &Backbone) -> Result<Vec<u8>> {
        let about = serde_json::to_string(self).map_err(|e| Error::Internal(format!("saved network: {e}")))?;
        // Paths without enum variant names (`units.3.bn.gamma`), as checkpoints are applied.
        // One metadata entry: a map of several would be written in no fixed order, and the same
        // network would not always give the same bytes.
        let mut store = SafetensorsStore::from_bytes(None)
            .skip_enum_variants(true)
            .clear_metadata()
            .metadata(METADATA_KEY, about);
        model
            .save_into(&mut store)
            .map_err(|e| Error::Internal(format!("saving the trained network: {e}")))?;
        store
            .get_bytes()
            .map_err(|e| Error::Internal(format!("saving the trained network: {e}")))
    }

    /// The description in the metadata of the `.safetensors` file `path`; `None` for a file that
    /// tunnelbench did not write (a PyTorch export, say).
    pub fn read(path: &Path) -> Result<Option<SavedNetwork>> {
        let bad = |msg: String| Error::input(path, msg);
        let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut len = [0u8; 8];
        file.read_exact(&mut len)
            .map_err(|_| bad("not a .safetensors file: shorter than its 8-byte header length".into()))?;
        let len = u64::from_le_bytes(len);
        let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len > size.saturating_sub(8) || len > 100 << 20 {
            return Err(bad(format!(
                "not a .safetensors file: a header of {len} bytes in a file of {size}"
            )));
        }
        let mut header = vec![0u8; len as usize];
        file.read_exact(&mut header).map_err(|e| Error::io(path, e))?;
        let header: Value = serde_json::from_slice(&header)
            .map_err(|e| bad(format!("not a .safetensors file: its header is not JSON ({e})")))?;
        let Some(about) = header.pointer(&format!("/__metadata__/{METADATA_KEY}")) else {
            return Ok(None);
        };
        let about = about
            .as_str()
            .ok_or_else(|| bad(format!("metadata `{METADATA_KEY}` is not a string")))?;
        serde_json::from_str(about)
            .map(Some)
            .map_err(|e| bad(format!("metadata `{METADATA_KEY}` does not describe a network: {e}")))
    }

    /// An error naming `path` when `spec` is another network than this one (another architecture,
    /// width, depth, ...): the keys that differ, with both values.
    pub fn check_fits(&self, spec: &ArchSpec, path: &Path) -> Result<()> {
        let structure = |s: &ArchSpec| -> Result<serde_json::Map<String, Value>> {
            let mut v = match serde_json::to_value(s) {
                Ok(Value::Object(m)) => m,
                _ => return Err(Error::Internal("an architecture serialises to a JSON object".into())),
            };
            for key in NOT_THE_STRUCTURE {
                v.remove(key);
            }
            Ok(v)
        };
        let (saved, now) = (structure(&self.architecture)?, structure(spec)?);
        let differ: Vec<String> = saved
            .keys()
            .chain(now.keys().filter(|k| !saved.contains_key(*k)))
            .filter(|k| saved.get(*k) != now.get(*k))
            .map(|k| {
                let v = |m: &serde_json::Map<String, Value>| m.get(k).map_or("unset".into(), Value::to_string);
                format!("model.{k} = {} (the saved network's: {})", v(&now), v(&saved))
            })
            .collect();
        if differ.is_empty() {
            return Ok(());
        }
        Err(Error::input(
            path,
            format!(
                "this network was trained as `{}` (width {}); the scenario asks for another: {}",
                self.architecture.name,
                self.architecture.width,
                differ.join("; ")
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Checkpoint;
    use burn::module::Module;
    use burn::tensor::{Device, Distribution, Tensor};

    fn about(spec: &ArchSpec, classes: usize, resolution: usize) -> SavedNetwork {
        SavedNetwork {
            architecture: spec.clone(),
            classes,
            resolution,
            scenario: "test".into(),
            trained_on: "random".into(),
            seed: 7,
            epoch: 3,
            val_accuracy: Some(0.5),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }

    /// A trained-like network (batch-norm statistics moved off their initial values) written and
    /// read back gives the same outputs to the bit, for a CNN with batch norm, a ResNet and a ViT.
    #[test]
    fn saved_network_loads_back_to_the_bit() {
        let dir = std::env::temp_dir().join(format!("tb-saved-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, resolution) in [("vggm-11", 32), ("resnet-18", 32), ("vit-t", 32)] {
            let device = Device::flex();
            device.seed(11);
            let spec = ArchSpec::named(name).with_width(0.25);
            let ad = device.clone().autodiff();
            let model = Backbone::new(&spec, 5, resolution, &ad).unwrap();
            // A training-mode pass moves the batch-norm running statistics.
            let x = Tensor::<4>::random([4, 3, resolution, resolution], Distribution::Normal(0.0, 1.0), &ad);
            let _ = model.forward(x);
            let model = model.valid();
            let x = Tensor::<4>::random([3, 3, resolution, resolution], Distribution::Normal(0.0, 1.0), &device);
            let expected = model.forward(x.clone()).into_data().try_to_vec::<f32>().unwrap();

            let path = dir.join(format!("{name}.safetensors"));
            std::fs::write(&path, about(&spec, 5, resolution).to_bytes(&model).unwrap()).unwrap();
            assert_eq!(SavedNetwork::read(&path).unwrap(), Some(about(&spec, 5, resolution)));

            device.seed(99);
            let mut fresh = Backbone::new(&spec, 5, resolution, &device).unwrap();
            let ck = Checkpoint::read(&path, None, &[]).unwrap();
            assert_eq!(ck.head_classes(&spec).unwrap(), Some(5));
            let n = ck.load_into(&mut fresh, &spec, true).unwrap();
            assert!(n > 0);
            let got = fresh.forward(x).into_data().try_to_vec::<f32>().unwrap();
            assert_eq!(got, expected, "{name}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Another architecture or width is refused with the keys that differ; what loading or probing
    /// alone changes is not.
    #[test]
    fn another_network_is_refused_by_name() {
        let spec = ArchSpec::named("vggm-17").with_width(0.125);
        let saved = about(&spec, 10, 32);
        let path = Path::new("runs/quick/model.safetensors");
        let mut loaded = spec.clone();
        loaded.weights = Some("elsewhere.safetensors".into());
        assert!(saved.check_fits(&loaded, path).is_ok());
        let err = saved
            .check_fits(&ArchSpec::named("vggm-11").with_width(0.125), path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("runs/quick/model.safetensors"), "{err}");
        assert!(
            err.contains(r#"model.name = "vggm-11" (the saved network's: "vggm-17")"#),
            "{err}"
        );
        let err = saved
            .check_fits(&ArchSpec::named("vggm-17"), path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("model.width = 1.0 (the saved network's: 0.125)"), "{err}");
    }

    /// A file that is no safetensors file is an input error naming it; one without the metadata
    /// is a foreign checkpoint.
    #[test]
    fn headers_are_checked() {
        let dir = std::env::temp_dir().join(format!("tb-saved-h-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.safetensors");
        std::fs::write(&path, b"\xff\xff\xff\xff\xff\xff\xff\x7f{}").unwrap();
        let err = SavedNetwork::read(&path).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("bad.safetensors"), "{err}");
        let header = br#"{"__metadata__":{"format":"pt"}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header);
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(SavedNetwork::read(&path).unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
