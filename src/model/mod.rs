//! Backbones (VGGm, VGGm†, ResNet, ViT, MLP) with per-layer probe points and model surgery.

pub mod arch;
pub mod backbone;
mod build;
mod saved;
mod weights;

pub use arch::{ArchSpec, NAMED};
pub use backbone::{Backbone, LayerInfo, layer_names, parameter_count};
pub use saved::{MODEL_FILE, SavedNetwork};
pub use weights::Checkpoint;

use crate::error::Result;

/// Table 11 parameter counts (method §4.6), in millions, for a 100-class head.
pub fn table11_params_millions(name: &str) -> Option<f64> {
    Some(match name {
        "vggm-11" | "vggm-dagger-11" => 9.46,
        "vggm-17" | "vggm-dagger-17" => 20.08,
        "resnet-18" => 11.22,
        "resnet-34" => 21.33,
        "vit-t" => 5.61,
        "vit-t-plus" => 8.39,
        _ => return None,
    })
}

/// Parameters of the unused per-block halting-gate MLP that the paper's ViT counts include
/// (192 → 96 → 1 with biases: 18,625 per block; method §4.6).
pub const VIT_GATE_PARAMS_PER_BLOCK: usize = 192 * 96 + 96 + 96 + 1;

/// One row of `tunnelbench models`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ModelRow {
    pub name: String,
    pub parameters: usize,
    /// Parameters as the paper counts them (ViTs: plus the unused gate MLPs).
    pub paper_parameters: usize,
    pub table11_millions: Option<f64>,
    pub probed_layers: usize,
}

pub fn model_rows(classes: usize) -> Result<Vec<ModelRow>> {
    let device = burn::tensor::Device::flex();
    NAMED
        .iter()
        .map(|name| {
            let spec = ArchSpec::named(name);
            let model = Backbone::new(&spec, classes, spec.native_resolution(), &device)?;
            let parameters = parameter_count(&model);
            let table11_millions = table11_params_millions(name);
            let paper_parameters = if spec.is_transformer() && table11_millions.is_some() {
                parameters + model.n_layers() * VIT_GATE_PARAMS_PER_BLOCK
            } else {
                parameters
            };
            Ok(ModelRow {
                name: name.to_string(),
                parameters,
                paper_parameters,
                table11_millions,
                probed_layers: model.n_layers(),
            })
        })
        .collect()
}

pub fn models_table(classes: usize) -> Result<String> {
    let mut out = format!(
        "{:<16} {:>12} {:>14} {:>10} {:>8}  {}\n",
        "architecture", "parameters", "paper count", "Table 11", "probed", "layers"
    );
    for row in model_rows(classes)? {
        let names = layer_names(&ArchSpec::named(&row.name))?;
        let first = names.first().map(|l| l.name.as_str()).unwrap_or("");
        let last = names.last().map(|l| l.name.as_str()).unwrap_or("");
        out.push_str(&format!(
            "{:<16} {:>12} {:>14} {:>10} {:>8}  {first} .. {last}\n",
            row.name,
            row.parameters,
            row.paper_parameters,
            row.table11_millions.map_or("-".to_string(), |m| format!("{m:.2}M")),
            row.probed_layers
        ));
    }
    out.push_str(&format!(
        "(head of {classes} classes; ViT paper counts include the unused halting-gate MLP of {} parameters per block)\n",
        VIT_GATE_PARAMS_PER_BLOCK
    ));
    Ok(out)
}
