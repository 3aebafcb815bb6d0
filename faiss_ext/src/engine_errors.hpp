// Engine errors (flashkmeans::Error, std::exception) surface through the
// plugin as faiss::FaissException, the one exception type Faiss users catch.
#pragma once

#include <faiss/impl/FaissException.h>

#include <exception>
#include <string>

namespace flashkmeans {

template <class F>
void with_faiss_errors(const char* where, F&& f) {
    try {
        f();
    } catch (const faiss::FaissException&) {
        throw;
    } catch (const std::exception& e) {
        throw faiss::FaissException(std::string("flashkmeans: ") + e.what(), where,
                                    __FILE__, __LINE__);
    }
}

}  // namespace flashkmeans
