// Python arrays (numpy, or anything with __dlpack__: torch, cupy, jax) as
// engine ArrayViews, with zero copies: the view points at the caller's memory
// and carries its strides, dtype and device.
#pragma once

#include <flashkmeans/array_view.hpp>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <optional>

namespace flashkmeans::python {

/// Read-only input of any dtype/device; dtype and device are checked here.
using InputArray = nanobind::ndarray<nanobind::ro>;

/// The engine's view of `a`; throws flashkmeans::Error naming `name` for an
/// unsupported dtype (only float32/float16/bfloat16) or device.
ArrayView to_view(const InputArray& a, const char* name);

/// Like to_view, for an optional argument given as None.
ArrayView to_optional_view(const std::optional<InputArray>& a, const char* name);

}  // namespace flashkmeans::python
