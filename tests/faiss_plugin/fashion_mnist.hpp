// Fashion-MNIST as installed by Debian's dataset-fashion-mnist package:
// gzip'ed IDX files (big-endian header, then uint8 pixels).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace flashkmeans::testing {

/// Where the Debian package puts the files.
inline const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/// The first `max_rows` images (28 x 28 = 784 floats in [0, 255]) of
/// `file` (e.g. "train-images-idx3-ubyte.gz") in `dir`. Returns false with
/// `why` set when the file is absent or unreadable (or zlib was missing
/// at build time); throws on a malformed file.
bool load_fashion_mnist(const std::string& dir, const std::string& file, int64_t max_rows,
                        std::vector<float>& images, int64_t& rows, std::string& why);

}  // namespace flashkmeans::testing
