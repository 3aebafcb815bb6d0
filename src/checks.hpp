// Validation of user input. Each check throws flashkmeans::Error naming the
// argument, what it got and what was expected.
#pragma once

#include <flashkmeans/array_view.hpp>
#include <flashkmeans/error.hpp>

#include <sstream>
#include <string>

namespace flashkmeans::detail {

template <class... Args>
[[noreturn]] void fail(const Args&... parts) {
    std::ostringstream s;
    (s << ... << parts);
    throw Error(s.str());
}

#define FLASHKMEANS_CHECK(cond, ...)                              \
    do {                                                          \
        if (!(cond)) ::flashkmeans::detail::fail(__VA_ARGS__);    \
    } while (0)

/// x must be non-null with `ndim` dimensions and sane strides. Dimension
/// `may_be_empty` (if >= 0) may be 0 (a rank's shard without points).
void check_data_array(const char* name, const ArrayView& x, int ndim, int may_be_empty = -1);

/// Throw when a host float array holds a NaN or an infinity.
void check_finite(const char* name, const ArrayView& x);

}  // namespace flashkmeans::detail
