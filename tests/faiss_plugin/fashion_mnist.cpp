#include "fashion_mnist.hpp"

#include <stdexcept>

#ifdef FLASHKMEANS_HAVE_ZLIB
#include <zlib.h>
#endif

namespace flashkmeans::testing {

#ifdef FLASHKMEANS_HAVE_ZLIB
namespace {

uint32_t big_endian_u32(const unsigned char* b) {
    return (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | b[3];
}

void read_exactly(gzFile f, void* dst, size_t bytes, const std::string& path) {
    if (gzread(f, dst, unsigned(bytes)) != int(bytes))
        throw std::runtime_error(path + ": truncated IDX file");
}

}  // namespace
#endif

bool load_fashion_mnist(const std::string& dir, const std::string& file, int64_t max_rows,
                        std::vector<float>& images, int64_t& rows, std::string& why) {
    const std::string path = dir + "/" + file;
#ifndef FLASHKMEANS_HAVE_ZLIB
    (void)max_rows, (void)images, (void)rows;
    why = "built without zlib, cannot read " + path;
    return false;
#else
    gzFile f = gzopen(path.c_str(), "rb");
    if (!f) {
        why = path + " not found (install the Debian package dataset-fashion-mnist)";
        return false;
    }
    try {
        // IDX3: magic 0x00000803, then the counts of images, rows, columns.
        unsigned char header[16];
        read_exactly(f, header, sizeof(header), path);
        if (big_endian_u32(header) != 0x803) throw std::runtime_error(path + ": not an IDX3 image file");
        const int64_t count = big_endian_u32(header + 4);
        const int64_t dim = int64_t(big_endian_u32(header + 8)) * big_endian_u32(header + 12);
        rows = std::min(count, max_rows);
        std::vector<unsigned char> pixels(rows * dim);
        read_exactly(f, pixels.data(), pixels.size(), path);
        images.assign(pixels.begin(), pixels.end());
    } catch (...) {
        gzclose(f);
        throw;
    }
    gzclose(f);
    return true;
#endif
}

}  // namespace flashkmeans::testing
