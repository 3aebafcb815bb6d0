// Registration functions, one per binding file, called from module.cpp.
#pragma once

#include <nanobind/nanobind.h>

namespace flashkmeans::python {

void bind_params(nanobind::module_& m);
void bind_fit(nanobind::module_& m);
void bind_assign(nanobind::module_& m);

}  // namespace flashkmeans::python
