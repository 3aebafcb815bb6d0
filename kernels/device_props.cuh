// Properties of the current device that host code sizes launches by, queried
// once per device (device_props.cu).
#pragma once

namespace flashkmeans::kernels {

/// Streaming multiprocessors of the current device.
int sm_count();

}  // namespace flashkmeans::kernels
