//! Device selection on the LibTorch build: a CUDA device LibTorch cannot see is refused when
//! the device is selected, with an error naming it and what is missing, instead of a panic
//! inside LibTorch on the first tensor. Runs only with `--features tch`
//! (scripts/tch-cpu-check.sh).

#![cfg(feature = "tch")]

use burn::tensor::{Tensor, TensorData};
use erebor_model::{DeviceSpec, ModelError, cuda_device_count};

#[test]
fn a_cuda_device_libtorch_cannot_see_is_an_error_at_selection() {
    let count = cuda_device_count();
    let missing = format!("cuda:{count}");
    let spec: DeviceSpec = missing.parse().unwrap();
    let err = spec.device().unwrap_err();
    let ModelError::Device { device, message } = &err else {
        panic!("expected a device error, got {err}");
    };
    assert_eq!(device, &missing);
    if count == 0 {
        assert!(
            message.contains("CUDA is not available to LibTorch"),
            "{err}"
        );
    } else {
        assert!(
            message.contains(&format!("LibTorch sees {count} CUDA device(s)")),
            "{err}"
        );
    }
}

#[test]
fn every_cuda_device_libtorch_sees_holds_a_tensor() {
    if cuda_device_count() == 0 {
        eprintln!("skipped: LibTorch sees no CUDA device here");
        return;
    }
    for index in 0..cuda_device_count() {
        let device = DeviceSpec::Cuda(index).device().unwrap();
        let tensor = Tensor::<1>::from_data(TensorData::from([1.0f32, 2.0, 3.0]), &device);
        let back = tensor
            .mul_scalar(2.0)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(back, vec![2.0, 4.0, 6.0]);
    }
}
