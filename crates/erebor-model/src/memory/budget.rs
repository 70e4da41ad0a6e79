//! The memory a device offers, for the plan-time checks of training and evaluation steps: the
//! CPU's RAM (`/proc/meminfo`), or a CUDA device's memory as `nvidia-smi` reports it (80 GB,
//! marked assumed, when it does not answer). Estimates may use [`HEADROOM`] of it.

use crate::device::DeviceSpec;

/// Share of the budget an estimate may use: allocator slack and the framework's own workspace
/// are not counted.
pub const HEADROOM: f64 = 0.9;

/// Overrides the memory every device is taken to have, in GB (for a machine whose reading is
/// wrong, e.g. a container limit below the host's RAM, and for tests). Not part of any step's
/// fingerprint: it decides whether a step may run here, not what it computes.
pub const BUDGET_ENV: &str = "EREBOR_MEMORY_BUDGET_GB";

/// Bytes of memory `device` has, and where the figure comes from (`25 GB of RAM`,
/// `80 GB of cuda:0`, `80 GB of cuda:0 (assumed: nvidia-smi did not answer)`,
/// `2 GB (EREBOR_MEMORY_BUDGET_GB)`).
pub fn device_budget(device: DeviceSpec) -> (f64, String) {
    if let Some(gb) = std::env::var(BUDGET_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|gb| *gb > 0.0 && gb.is_finite())
    {
        return (gb * 1e9, format!("{gb} GB ({BUDGET_ENV})"));
    }
    if let DeviceSpec::Cuda(index) = device {
        return match cuda_memory(index) {
            Some(bytes) => (bytes, format!("{:.0} GB of {device}", bytes / 1e9)),
            None => (
                80e9,
                format!("80 GB of {device} (assumed: nvidia-smi did not answer)"),
            ),
        };
    }
    match total_ram() {
        Some(bytes) => (bytes, format!("{:.0} GB of RAM", bytes / 1e9)),
        None => (f64::INFINITY, "unknown RAM".into()),
    }
}

/// Total memory of CUDA device `index` as `nvidia-smi` reports it (MiB), in bytes.
fn cuda_memory(index: usize) -> Option<f64> {
    let output = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=memory.total",
            "--format=csv,noheader,nounits",
            &format!("--id={index}"),
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let mib: f64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .ok()?;
    Some(mib * 1024.0 * 1024.0)
}

fn total_ram() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}
