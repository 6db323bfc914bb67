//! `tunnelbench infer`: a checkpoint's logits, and optionally every probed layer's features, on
//! images given as a NumPy array, so that an import can be checked against the framework that
//! saved the checkpoint.

use std::path::PathBuf;

use burn::tensor::{Tensor, TensorData};

use crate::backend::{BackendKind, floats};
use crate::data::formats::npy::{Array, read_npy, write_npz};
use crate::error::{Error, Result};
use crate::model::{ArchSpec, Backbone, Checkpoint, layer_names};

/// What `infer` reads and writes.
pub struct InferOptions {
    pub arch: ArchSpec,
    pub weights: PathBuf,
    /// Stripped from every checkpoint key (`module.`, `backbone.`).
    pub key_prefix: Option<String>,
    /// Checkpoint keys (after the prefix) starting with one of these are left out.
    pub ignore_keys: Vec<String>,
    /// `[N, 3, H, W]` float32, already normalised.
    pub input: PathBuf,
    pub out: PathBuf,
    /// Classes of the head (default: the checkpoint's).
    pub classes: Option<usize>,
    /// Also write each probed layer's features.
    pub layers: bool,
    pub backend: BackendKind,
    /// Images per forward pass.
    pub batch: usize,
}

/// The architecture `name` at `width`, with `KEY=VALUE` settings of any other `[model]` key.
pub fn arch_spec(name: &str, width: f64, sets: &[String]) -> Result<ArchSpec> {
    let mut table = toml::Table::new();
    table.insert("name".into(), name.into());
    table.insert("width".into(), width.into());
    for set in sets {
        crate::scenario::apply_option(&mut table, "--model", set)?;
    }
    let spec: ArchSpec = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let key = e.path().to_string();
        Error::usage(format!("--model: key `{key}`: {}", e.into_inner().message()))
    })?;
    spec.resolve()?;
    Ok(spec)
}

/// Runs the checkpoint on the images and writes `out`; returns a one-line summary.
pub fn infer(o: &InferOptions) -> Result<String> {
    if o.batch == 0 {
        return Err(Error::usage("--batch must be at least 1"));
    }
    if o.out.exists() {
        return Err(Error::usage(format!(
            "{} exists; remove it or give another --out (infer never overwrites a file)",
            o.out.display()
        )));
    }
    let input = read_npy(&o.input)?;
    let [n, c, h, w] = match input.shape[..] {
        [n, 3, h, w] if n > 0 => [n, 3, h, w],
        _ => {
            return Err(Error::input(
                &o.input,
                format!("shape {:?}: expected [N, 3, H, W] images with N > 0", input.shape),
            ));
        }
    };
    if let Some(i) = input.data.iter().position(|v| !v.is_finite()) {
        let per_image = c * h * w;
        return Err(Error::input(
            &o.input,
            format!(
                "image {} holds a non-finite value ({}): the logits of such an input say nothing",
                i / per_image,
                input.data[i]
            ),
        ));
    }
    if h != w {
        return Err(Error::input(
            &o.input,
            format!("{h}x{w} images: square images expected"),
        ));
    }
    o.arch
        .check_resolution(h)
        .map_err(|e| Error::input(&o.input, format!("{h}x{w} images: {e}")))?;
    let ck = Checkpoint::read(&o.weights, o.key_prefix.as_deref(), &o.ignore_keys)?;
    let head = ck.head_classes(&o.arch)?;
    let classes = match (o.classes, head) {
        (Some(k), _) => k,
        (None, Some(k)) => k,
        (None, None) => {
            return Err(Error::input(
                &o.weights,
                "the checkpoint has no classifier: give --classes",
            ));
        }
    };
    let device = o.backend.device();
    let mut model = Backbone::new(&o.arch, classes, h, &device)?;
    let with_head = head == Some(classes);
    ck.load_into(&mut model, &o.arch, with_head)?;
    let names = layer_names(&o.arch)?;
    let mut logits = Vec::with_capacity(n * classes);
    let mut features: Vec<Vec<f32>> = vec![Vec::new(); names.len()];
    let plane = c * h * w;
    for start in (0..n).step_by(o.batch) {
        let b = o.batch.min(n - start);
        let x = Tensor::<4>::from_data(
            TensorData::new(input.data[start * plane..(start + b) * plane].to_vec(), [b, c, h, w]),
            &device,
        );
        if o.layers {
            let out = model.forward_features(x);
            logits.extend(floats(out.logits)?);
            for (f, t) in features.iter_mut().zip(out.features) {
                f.extend(floats(t)?);
            }
        } else {
            logits.extend(floats(model.forward(x))?);
        }
    }
    let mut arrays = vec![(
        "logits".to_string(),
        Array {
            shape: vec![n, classes],
            data: logits,
        },
    )];
    if o.layers {
        for (info, data) in names.iter().zip(features) {
            let dim = data.len() / n;
            arrays.push((
                info.name.clone(),
                Array {
                    shape: vec![n, dim],
                    data,
                },
            ));
        }
    }
    write_npz(&o.out, &arrays)?;
    Ok(format!(
        "{}: {n} images of {h}x{w} through `{}` ({} head of {classes} classes){} -> {}",
        o.weights.display(),
        o.arch.name,
        if with_head { "the checkpoint's" } else { "a fresh" },
        if o.layers {
            format!(", {} probed layers", names.len())
        } else {
            String::new()
        },
        o.out.display()
    ))
}
